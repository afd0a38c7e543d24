-- Tenancy (organizations, members), stores, sealed credentials, per-store sync configuration,
-- OAuth states and pending installs.
--
-- Schema `shopsync` holds what clients may see (under RLS) and the RPCs; `shopsync_private` holds
-- what no client role may ever touch (credentials, OAuth nonces, queue internals). Keeping our
-- tables out of `public` avoids colliding with the app's own `products` or `orders`.

create schema if not exists shopsync;
create schema if not exists shopsync_private;
revoke all on schema shopsync_private from public;
grant usage on schema shopsync to anon, authenticated, service_role;
grant usage on schema shopsync_private to service_role;

create table shopsync.organizations (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(btrim(name)) between 1 and 200),
  personal boolean not null default false,
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now()
);

create table shopsync.organization_members (
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null check (role in ('owner', 'admin', 'member')),
  created_at timestamptz not null default now(),
  primary key (organization_id, user_id)
);
create index organization_members_user_idx on shopsync.organization_members (user_id);

create table shopsync.stores (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  platform text not null check (platform ~ '^[a-z][a-z0-9_]{1,31}$'),
  -- the platform's identity of the store: a shop domain or a normalized store URL
  shop_key text not null check (length(shop_key) between 1 and 255),
  display_name text,
  external_id text,
  status text not null default 'connecting'
    check (status in ('connecting', 'active', 'needs_reauth', 'uninstalled', 'disconnected')),
  status_reason text,
  sync_status text not null default 'idle' check (sync_status in ('idle', 'syncing', 'completed', 'error')),
  sync_started_at timestamptz,
  sync_completed_at timestamptz,
  last_sync_error text,
  platform_info jsonb not null default '{}'::jsonb,   -- versions, plan, scopes: never secrets
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, platform, shop_key)
);
create index stores_platform_shop_idx on shopsync.stores (platform, shop_key);

-- Sealed by shopsync's processes (AES-GCM) before they arrive here; key_id names the sealing key.
create table shopsync_private.store_credentials (
  store_id uuid primary key references shopsync.stores (id) on delete cascade,
  kind text not null check (kind ~ '^[a-z][a-z0-9_]{1,31}$'),
  key_id text not null,
  sealed text not null,
  access_expires_at timestamptz,
  refresh_expires_at timestamptz,
  version integer not null default 1,     -- bumped on every write: optimistic guard for rotations
  updated_at timestamptz not null default now()
);

create table shopsync.store_sync_config (
  store_id uuid primary key references shopsync.stores (id) on delete cascade,
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  enabled boolean not null default true,
  frequency text not null default 'hourly' check (frequency in ('15min', '30min', 'hourly', '6hours', 'daily')),
  -- a scheduled sync is skipped when the last one finished less than this long ago
  min_interval interval not null default '5 minutes'
    check (min_interval >= interval '0' and min_interval <= interval '1 day'),
  next_sync_at timestamptz,
  last_sync_enqueued_at timestamptz,
  products_policy text not null default 'sync' check (products_policy in ('sync', 'api_only', 'not_allowed')),
  customers_policy text not null default 'sync' check (customers_policy in ('sync', 'api_only', 'not_allowed')),
  orders_policy text not null default 'sync' check (orders_policy in ('sync', 'api_only', 'not_allowed')),
  updated_at timestamptz not null default now()
);
create index store_sync_config_due_idx on shopsync.store_sync_config (next_sync_at) where enabled;

-- Single-use, expiring OAuth states; only the SHA-256 of the nonce is kept.
create table shopsync_private.oauth_states (
  state_hash text primary key,
  platform text not null,
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  user_id uuid references auth.users (id) on delete cascade,
  shop_key text not null,
  return_to text,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  consumed_at timestamptz
);

-- Installs that start on the platform's side (an app store): parked until an organization
-- claims them with the claim token handed to the browser.
create table shopsync_private.pending_installs (
  id uuid primary key default gen_random_uuid(),
  platform text not null,
  shop_key text not null,
  claim_token_hash text not null,
  details jsonb not null default '{}'::jsonb,   -- non-secret facts of the install
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  claimed_at timestamptz,
  claimed_by_organization uuid references shopsync.organizations (id) on delete set null,
  store_id uuid references shopsync.stores (id) on delete set null
);
create index pending_installs_shop_idx on shopsync_private.pending_installs (platform, shop_key);

-- Runtime settings that admins may tune (retention ages, ...).
create table shopsync_private.settings (
  key text primary key,
  value jsonb not null,
  updated_at timestamptz not null default now()
);
insert into shopsync_private.settings (key, value) values
  ('retention', '{"finished_jobs": "14 days", "dead_jobs": "30 days", "webhook_inbox": "7 days", "sync_runs": "90 days", "activity_log": "180 days"}');
