-- Request pacing shared by every worker: one row per limited key (e.g. a ShopRenter shop or a
-- WooCommerce store). `next_free_at` is the GCRA "theoretical arrival time": each request reserves
-- the next slot in one row update, so workers on different machines never exceed a store's limit
-- together and nobody polls. Service role only (shopsync_private).
create table shopsync_private.rate_limits (
  key text primary key check (length(key) between 1 and 200),
  next_free_at timestamptz not null,
  updated_at timestamptz not null default now()
);
grant select, insert, update, delete on shopsync_private.rate_limits to service_role;
-- like every table: row level security on, no policies (only service_role, which bypasses it, may use it)
alter table shopsync_private.rate_limits enable row level security;
