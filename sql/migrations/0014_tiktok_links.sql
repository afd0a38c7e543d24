-- Product links: a variant of one store (any platform with variants) pushes its price and stock to a SKU of
-- another store whose connector can take them (TikTok Shop first). Functions and views: sql/functions/
-- 62_product_links.sql.
--
-- * shopsync.product_links: one row per linked target SKU, with its rules, status and the last values the target
--   confirmed. Members read their organization's links under RLS; every change goes through an RPC.
-- * shopsync.product_link_log: every push attempt (field, old → new, result, error code, duration), kept
--   'product_link_log' long (shopsync_private.settings 'retention', default 30 days).
-- * shopsync_private.link_push_queue: one row per target product with pushes pending — a change bumps
--   requested_seq (and enqueues one links.push job unless one is queued); the job records the seq it pushed.
--   That makes pushes coalesce per product and never lose a change that lands while a push runs.
-- * Triggers on the synced tables hook every write path (sync COPY merges, webhook applies, admin tools) into
--   the links, only when a price, a stock figure or a deletion actually changed.

insert into shopsync_private.event_types (type, severity, description) values
  ('link.action_required', 'warning',
   'a product link cannot push until someone acts: a promotion lock, a product under review or not live, a deleted SKU'),
  ('store.authorization_expiring', 'warning',
   'the platform says the store''s authorization expires soon: the merchant should authorize the app again');

insert into shopsync_private.job_kinds (kind, scope, required_when, enqueued_by, description) values
  ('links.push', 'core', 'always',
   'request_link_push (a linked variant''s price or stock changed, a link was created or changed)',
   'push the changed prices and stock of one target product''s linked SKUs'),
  ('links.reconcile', 'core', 'always', 'enqueue_link_reconciles (the due-sync schedule)',
   'read back the linked SKUs of one target store and push what drifted');

create table shopsync.product_links (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  source_store_id uuid not null references shopsync.stores (id) on delete cascade,
  source_variant_id text not null,
  source_inventory_item_id text,           -- the variant's inventory item, for stock changes per location
  target_store_id uuid not null references shopsync.stores (id) on delete cascade,
  target_product_id text not null,
  target_sku_id text not null,
  sync_price boolean not null default true,
  sync_inventory boolean not null default true,
  price_multiplier numeric(12, 6) not null default 1 check (price_multiplier > 0),
  price_offset numeric(20, 4) not null default 0,
  price_rounding text check (price_rounding ~ '^\.[0-9]{2}$'),   -- the cents a pushed price ends with, e.g. .99
  inventory_percentage numeric(6, 2) not null default 100 check (inventory_percentage between 0 and 100),
  inventory_zero_below integer not null default 0 check (inventory_zero_below >= 0),
  inventory_cap integer check (inventory_cap >= 0),
  status text not null default 'active' check (status in ('active', 'paused', 'error', 'action_required')),
  status_reason text,
  last_pushed_price numeric(20, 4),        -- what the target confirmed last (or showed when read back)
  last_pushed_quantity integer,
  last_price_pushed_at timestamptz,
  last_quantity_pushed_at timestamptz,
  last_attempt_at timestamptz,
  last_success_at timestamptz,
  last_error text,
  last_error_code text,
  last_error_at timestamptz,
  created_by uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (target_store_id, target_sku_id),  -- one source per target SKU
  check (source_store_id <> target_store_id)
);
create index product_links_org_idx on shopsync.product_links (organization_id);
create index product_links_source_idx on shopsync.product_links (source_store_id, source_variant_id);
create index product_links_source_item_idx on shopsync.product_links (source_store_id, source_inventory_item_id)
  where source_inventory_item_id is not null;
create index product_links_target_product_idx on shopsync.product_links (target_store_id, target_product_id);
alter table shopsync.product_links enable row level security;

create table shopsync.product_link_log (
  id bigint generated always as identity primary key,
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  link_id uuid not null references shopsync.product_links (id) on delete cascade,
  target_store_id uuid not null,
  field text not null check (field in ('price', 'inventory')),
  old_value text,
  new_value text,
  result text not null check (result in ('pushed', 'failed', 'refused', 'action_required', 'retry')),
  error_code text,
  error_message text,
  duration_ms integer,
  job_id bigint,
  occurred_at timestamptz not null default now()
);
create index product_link_log_link_idx on shopsync.product_link_log (link_id, occurred_at desc);
create index product_link_log_org_idx on shopsync.product_link_log (organization_id, occurred_at desc);
create index product_link_log_store_idx on shopsync.product_link_log (target_store_id, occurred_at desc);
create index product_link_log_time_idx on shopsync.product_link_log (occurred_at);
alter table shopsync.product_link_log enable row level security;

create table shopsync_private.link_push_queue (
  target_store_id uuid not null references shopsync.stores (id) on delete cascade,
  product_id text not null,
  requested_seq bigint not null default 0,
  done_seq bigint not null default 0,
  job_id bigint,
  requested_at timestamptz not null default now(),
  primary key (target_store_id, product_id)
);
alter table shopsync_private.link_push_queue enable row level security;

update shopsync_private.settings set value = value || '{"product_link_log": "30 days"}'::jsonb where key = 'retention';

-- The triggers' functions are defined in sql/functions/62_product_links.sql (re-applied on every migrate);
-- these stand-ins only let the triggers be created here.
create or replace function shopsync_private.on_linked_variant_changed() returns trigger
  language plpgsql set search_path = '' as $$ begin return null; end $$;
create or replace function shopsync_private.on_linked_level_changed() returns trigger
  language plpgsql set search_path = '' as $$ begin return null; end $$;

-- Row triggers whose WHEN is evaluated before any function call: an unchanged row (most rows of an
-- incremental sync) costs nothing, and inserts (a first full sync) fire nothing — a link names a variant
-- that exists already.
create trigger shopsync_links_variant_changed after update on shopsync.product_variants for each row
  when (old.price is distinct from new.price or old.inventory_quantity is distinct from new.inventory_quantity
        or old.deleted_at is distinct from new.deleted_at)
  execute function shopsync_private.on_linked_variant_changed();
create trigger shopsync_links_level_changed after update on shopsync.inventory_levels for each row
  when (old.available is distinct from new.available or old.deleted_at is distinct from new.deleted_at)
  execute function shopsync_private.on_linked_level_changed();
