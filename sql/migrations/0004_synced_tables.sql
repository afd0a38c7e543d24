-- Canonical synced tables shared by every platform. Typed columns for what apps query, `raw` for
-- the source object, `source_updated_at` for the staleness guard, `deleted_at` for soft deletes.
-- Primary keys include the store; ids are the platform's own, as text. No foreign keys between
-- synced entities: they arrive in any order.

create table shopsync.products (
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  id text not null,
  organization_id uuid not null,
  title text,
  handle text,
  status text,
  vendor text,
  product_type text,
  tags text[] not null default '{}',
  source_created_at timestamptz,
  source_updated_at timestamptz,
  deleted_at timestamptz,
  raw jsonb not null default '{}'::jsonb,
  synced_at timestamptz not null default now(),
  primary key (store_id, id)
);
create index products_org_idx on shopsync.products (organization_id);

create table shopsync.product_variants (
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  id text not null,
  product_id text not null,
  organization_id uuid not null,
  title text,
  sku text,
  barcode text,
  price numeric(20, 4),
  compare_at_price numeric(20, 4),
  currency text,
  position integer,
  inventory_item_id text,
  inventory_quantity integer,
  source_updated_at timestamptz,
  deleted_at timestamptz,
  raw jsonb not null default '{}'::jsonb,
  synced_at timestamptz not null default now(),
  primary key (store_id, id)
);
create index product_variants_product_idx on shopsync.product_variants (store_id, product_id);
create index product_variants_sku_idx on shopsync.product_variants (store_id, sku);
create index product_variants_org_idx on shopsync.product_variants (organization_id);

create table shopsync.inventory_locations (
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  id text not null,
  organization_id uuid not null,
  name text,
  active boolean,
  source_updated_at timestamptz,
  deleted_at timestamptz,
  raw jsonb not null default '{}'::jsonb,
  synced_at timestamptz not null default now(),
  primary key (store_id, id)
);
create index inventory_locations_org_idx on shopsync.inventory_locations (organization_id);

create table shopsync.inventory_levels (
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  inventory_item_id text not null,
  location_id text not null,
  organization_id uuid not null,
  available integer,
  on_hand integer,
  source_updated_at timestamptz,
  deleted_at timestamptz,
  raw jsonb not null default '{}'::jsonb,
  synced_at timestamptz not null default now(),
  primary key (store_id, inventory_item_id, location_id)
);
create index inventory_levels_org_idx on shopsync.inventory_levels (organization_id);

create table shopsync.customers (
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  id text not null,
  organization_id uuid not null,
  email text,
  phone text,
  first_name text,
  last_name text,
  state text,
  accepts_marketing boolean,
  orders_count integer,
  total_spent numeric(20, 4),
  currency text,
  tags text[] not null default '{}',
  default_address jsonb,
  source_created_at timestamptz,
  source_updated_at timestamptz,
  deleted_at timestamptz,
  redacted_at timestamptz,
  raw jsonb not null default '{}'::jsonb,
  synced_at timestamptz not null default now(),
  primary key (store_id, id)
);
create index customers_email_idx on shopsync.customers (store_id, lower(email));
create index customers_phone_idx on shopsync.customers (store_id, phone);
create index customers_org_idx on shopsync.customers (organization_id);

create table shopsync.orders (
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  id text not null,
  organization_id uuid not null,
  name text,
  order_number text,
  customer_id text,
  email text,
  phone text,
  financial_status text,
  fulfillment_status text,
  currency text,
  subtotal_price numeric(20, 4),
  total_tax numeric(20, 4),
  total_discounts numeric(20, 4),
  total_shipping numeric(20, 4),
  total_price numeric(20, 4),
  total_refunded numeric(20, 4) not null default 0,   -- refunds summary
  refunds_count integer not null default 0,
  shipping_address jsonb,
  billing_address jsonb,
  tags text[] not null default '{}',
  processed_at timestamptz,
  cancelled_at timestamptz,
  closed_at timestamptz,
  source_created_at timestamptz,
  source_updated_at timestamptz,
  deleted_at timestamptz,
  redacted_at timestamptz,
  raw jsonb not null default '{}'::jsonb,
  synced_at timestamptz not null default now(),
  primary key (store_id, id)
);
create index orders_customer_idx on shopsync.orders (store_id, customer_id);
create index orders_email_idx on shopsync.orders (store_id, lower(email));
create index orders_updated_idx on shopsync.orders (store_id, source_updated_at);
create index orders_org_idx on shopsync.orders (organization_id);

create table shopsync.order_line_items (
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  id text not null,
  order_id text not null,
  organization_id uuid not null,
  product_id text,
  variant_id text,
  sku text,
  title text,
  quantity integer,
  price numeric(20, 4),
  total_discount numeric(20, 4),
  raw jsonb not null default '{}'::jsonb,
  synced_at timestamptz not null default now(),
  primary key (store_id, id)
);
create index order_line_items_order_idx on shopsync.order_line_items (store_id, order_id);
create index order_line_items_org_idx on shopsync.order_line_items (organization_id);

create table shopsync.order_fulfillments (
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  id text not null,
  order_id text not null,
  organization_id uuid not null,
  status text,
  tracking_company text,
  tracking_numbers text[] not null default '{}',
  tracking_urls text[] not null default '{}',
  source_created_at timestamptz,
  source_updated_at timestamptz,
  raw jsonb not null default '{}'::jsonb,
  synced_at timestamptz not null default now(),
  primary key (store_id, id)
);
create index order_fulfillments_order_idx on shopsync.order_fulfillments (store_id, order_id);
create index order_fulfillments_org_idx on shopsync.order_fulfillments (organization_id);

create table shopsync.gdpr_requests (
  id bigint generated always as identity primary key,
  store_id uuid references shopsync.stores (id) on delete set null,
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  platform text not null,
  platform_request_id text,
  request_type text not null check (request_type in ('data_request', 'customer_redact', 'shop_redact')),
  -- identifies the data subject (customer id / email / phone) until the request completes
  subject jsonb not null default '{}'::jsonb,
  status text not null default 'received' check (status in ('received', 'processing', 'completed', 'failed')),
  received_at timestamptz not null default now(),
  due_at timestamptz not null default now() + interval '30 days',
  started_at timestamptz,
  completed_at timestamptz,
  result jsonb,
  error text,
  unique (platform, platform_request_id)
);
create index gdpr_requests_org_idx on shopsync.gdpr_requests (organization_id, received_at desc);
