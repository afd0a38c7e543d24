-- Look-ups for AI agents (docs/agents.md): organization API keys and the audit of every look-up.
--
-- * shopsync_private.api_keys: a key is shown once when it is created; only its SHA-256 is kept (a key is
--   256 random bits, so a plain hash cannot be reversed) with a visible prefix to tell keys apart. A key
--   belongs to one organization, may be limited to some of its stores and resources, has its own request
--   rate, may expire, and is revoked rather than deleted (its audit rows keep naming it).
-- * shopsync.lookup_audit: one row per look-up — who (key or user), which store, resource and look-up,
--   the policy that routed it, the outcome, how many results and how long it took. Never the values asked
--   for and never the answers. Members of the organization read it; kept 30 days by default.

create table shopsync_private.api_keys (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  name text not null check (length(name) between 1 and 100),
  prefix text not null unique check (prefix ~ '^ssk_[0-9a-f]{12}$'),
  key_hash text not null unique check (key_hash ~ '^[0-9a-f]{64}$'),
  store_ids uuid[] check (store_ids is null or cardinality(store_ids) between 1 and 1000),   -- null: every store
  resources text[] not null check (cardinality(resources) >= 1),
  requests_per_second double precision not null default 10
    check (requests_per_second > 0 and requests_per_second <= 1000),
  burst integer not null default 20 check (burst between 1 and 10000),
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  revoked_by uuid references auth.users (id) on delete set null,
  last_used_at timestamptz
);
create index api_keys_org_idx on shopsync_private.api_keys (organization_id);
create index api_keys_created_by_idx on shopsync_private.api_keys (created_by);
create index api_keys_revoked_by_idx on shopsync_private.api_keys (revoked_by);
alter table shopsync_private.api_keys enable row level security;

create table shopsync.lookup_audit (
  id bigint generated always as identity primary key,
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  store_id uuid,            -- no foreign keys to the store and the key: the audit outlives what it names, and
  key_id uuid,              -- an append-only table written at agents' rate pays no row locks on hot rows
  key_prefix text,
  user_id uuid,
  interface text not null check (interface in ('http', 'mcp')),
  lookup text not null check (lookup ~ '^[a-z][a-z_]{1,40}$'),
  resource text,
  policy text check (policy in ('sync', 'api_only', 'not_allowed')),
  outcome text not null check (outcome in ('answered', 'refused', 'unsupported', 'invalid', 'rate_limited',
                                           'timeout', 'failed')),
  status smallint not null check (status between 100 and 599),
  result_count integer not null default 0 check (result_count >= 0),
  latency_ms real not null check (latency_ms >= 0),
  occurred_at timestamptz not null default now(),
  check ((key_id is null) <> (user_id is null) or outcome <> 'answered')
);
create index lookup_audit_org_idx on shopsync.lookup_audit (organization_id, occurred_at desc);
create index lookup_audit_store_idx on shopsync.lookup_audit (store_id);
create index lookup_audit_key_idx on shopsync.lookup_audit (key_id);
alter table shopsync.lookup_audit enable row level security;

update shopsync_private.settings set value = value || '{"lookup_audit": "30 days"}'::jsonb where key = 'retention';
