-- One description of the synced data, access policies per resource, and the job kinds SQL enqueues.
--
-- * shopsync_private.synced_resources / synced_tables: the catalog. Every function that needs the
--   list of synced tables (writes, deletes, reconciliation, GDPR, access policies, statistics, RLS)
--   reads it, and the functions phase of every migrate generates what is per table (row mergers,
--   policies, grants) from it. Adding a synced table = a migration that creates the table and
--   inserts its row here; `shopsync_private.check_catalog()` (run by every migrate) says clearly what
--   an entry gets wrong.
-- * shopsync.store_access_policies: sync / api_only / not_allowed per store and catalog resource,
--   replacing the three fixed columns of store_sync_config (their values move here).
-- * shopsync_private.job_kinds: the job kinds SQL functions enqueue. Workers check at start that each
--   has a handler, so a kind cannot queue forever unnoticed.

create table shopsync_private.synced_resources (
  resource text primary key check (resource ~ '^[a-z][a-z0-9_]{1,31}$'),
  position smallint not null unique,
  default_policy text not null default 'sync' check (default_policy in ('sync', 'api_only', 'not_allowed')),
  description text not null
);

create table shopsync_private.synced_tables (
  table_name text primary key check (table_name ~ '^[a-z][a-z0-9_]{0,62}$'),   -- shopsync.<table_name>
  resource text not null references shopsync_private.synced_resources (resource),
  position smallint not null unique,
  key_columns text[] not null,          -- the primary key, store_id first
  version_column text,                  -- the platform's own updated_at: the staleness guard; null = last write wins
  soft_delete boolean not null default false,   -- the platform deletes rows: deleted_at is set (webhooks, reconciliation)
  parent_table text references shopsync_private.synced_tables (table_name),
  parent_column text,                   -- a parent deleted at the source takes these rows with it
  reconcile boolean not null default false,     -- its ids are compared with the platform's (vanished rows soft-deleted)
  subject_link text check (subject_link in ('customer', 'order')),  -- how a row belongs to a GDPR data subject
  subject_column text,                  -- the column holding that customer / order id
  redaction text check (redaction in ('delete', 'scrub')),  -- customer_redact: delete the rows, or scrub them
  personal_columns text[] not null default '{}',   -- set to null by a scrub; raw is always stripped of personal keys
  description text not null,
  check (key_columns[1] = 'store_id'),
  check ((parent_table is null) = (parent_column is null)),
  check ((subject_link is null) = (subject_column is null) and (subject_link is null) = (redaction is null)),
  check (not soft_delete or 'id' = any (key_columns))
);

insert into shopsync_private.synced_resources (resource, position, description) values
  ('products', 1, 'catalog: products, variants, inventory locations and levels'),
  ('customers', 2, 'customer records'),
  ('orders', 3, 'orders, their line items and fulfillments');

insert into shopsync_private.synced_tables
  (table_name, resource, position, key_columns, version_column, soft_delete, parent_table, parent_column, reconcile,
   subject_link, subject_column, redaction, personal_columns, description) values
  ('products', 'products', 10, '{store_id,id}', 'source_updated_at', true, null, null, true,
   null, null, null, '{}', 'products'),
  ('product_variants', 'products', 11, '{store_id,id}', 'source_updated_at', true, 'products', 'product_id', true,
   null, null, null, '{}', 'variants (SKUs) of products, with price and total stock'),
  ('inventory_locations', 'products', 12, '{store_id,id}', 'source_updated_at', true, null, null, false,
   null, null, null, '{}', 'stock locations'),
  ('inventory_levels', 'products', 13, '{store_id,inventory_item_id,location_id}', 'source_updated_at', false, null,
   null, false, null, null, null, '{}', 'stock of an inventory item at a location'),
  ('customers', 'customers', 20, '{store_id,id}', 'source_updated_at', true, null, null, true,
   'customer', 'id', 'delete', '{email,phone,first_name,last_name,default_address}', 'customers'),
  ('orders', 'orders', 30, '{store_id,id}', 'source_updated_at', true, null, null, true,
   'order', 'id', 'scrub', '{email,phone,shipping_address,billing_address}', 'orders'),
  ('order_line_items', 'orders', 31, '{store_id,id}', 'source_updated_at', false, null, null, false,
   'order', 'order_id', 'scrub', '{}', 'line items of orders'),
  ('order_fulfillments', 'orders', 32, '{store_id,id}', 'source_updated_at', false, null, null, false,
   'order', 'order_id', 'scrub', '{}', 'fulfillments (shipments, tracking) of orders');

create table shopsync.store_access_policies (
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  resource text not null references shopsync_private.synced_resources (resource),
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  policy text not null check (policy in ('sync', 'api_only', 'not_allowed')),
  updated_at timestamptz not null default now(),
  primary key (store_id, resource)
);
create index store_access_policies_org_idx on shopsync.store_access_policies (organization_id);
alter table shopsync.store_access_policies enable row level security;

-- every existing value moves, defaults included: a store keeps exactly what it had
insert into shopsync.store_access_policies (store_id, resource, organization_id, policy)
select c.store_id, r.resource, c.organization_id,
       case r.resource when 'products' then c.products_policy when 'customers' then c.customers_policy
                       else c.orders_policy end
  from shopsync.store_sync_config c cross join shopsync_private.synced_resources r;

alter table shopsync.store_sync_config drop column products_policy, drop column customers_policy,
  drop column orders_policy;

create table shopsync_private.job_kinds (
  kind text primary key check (kind ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
  scope text not null check (scope in ('platform', 'core')),   -- platform kinds are enqueued as '<platform>.<kind>'
  required_when text not null default 'always' check (required_when in ('always', 'installs')),
  enqueued_by text not null,
  description text not null
);
insert into shopsync_private.job_kinds (kind, scope, required_when, enqueued_by, description) values
  ('sync', 'platform', 'always', 'request_sync (trigger_sync, the schedule, connects, reconciliations)',
   'full / incremental / reconcile sync of one resource of a store'),
  ('webhook', 'platform', 'always', 'record_webhook, receive_webhook', 'apply one webhook inbox delivery'),
  ('check_webhooks', 'platform', 'always', 'enqueue_periodic_checks',
   'keep the store''s webhook subscriptions as they should be'),
  ('install_claimed', 'platform', 'installs', 'claim_pending_install',
   'finish connecting a store whose install an organization claimed'),
  ('gdpr.process', 'core', 'always', 'record_gdpr_request', 'run one privacy request'),
  ('store.purge_uninstalled', 'core', 'always', 'uninstall_shop',
   'delete the data of a store still uninstalled after the grace period');

-- Functions whose result columns changed: CREATE OR REPLACE cannot change them, so they go here and
-- the functions phase of this migrate creates them anew.
drop function if exists shopsync.my_stores(uuid);
drop function if exists shopsync.get_webhook(bigint);
drop function if exists shopsync.get_store(uuid);
-- Superseded signatures, dropped here rather than beside the functions (kept from earlier releases).
drop function if exists shopsync_private.merge_staged(text, text, bigint, text);
drop function if exists shopsync_private.merge_staged(text, text, bigint, text, text[]);
drop function if exists shopsync.upsert_synced(text, jsonb, bigint, text);
