-- The jobs queue, the webhook inbox, sync runs and cursors, the activity log.
-- Every state change of a job goes through the functions in sql/functions/20_queue.sql.

create table shopsync.jobs (
  id bigint generated always as identity primary key,
  kind text not null check (kind ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
  organization_id uuid references shopsync.organizations (id) on delete cascade,
  store_id uuid references shopsync.stores (id) on delete cascade,
  resource text,
  payload jsonb not null default '{}'::jsonb check (jsonb_typeof(payload) = 'object'),
  state text not null default 'queued' check (state in ('queued', 'running', 'succeeded', 'dead', 'cancelled')),
  priority smallint not null default 100,
  run_at timestamptz not null default now(),
  attempts integer not null default 0,
  max_attempts integer not null default 10 check (max_attempts between 1 and 100),
  dedupe_key text,          -- at most one queued-or-running job per key
  concurrency_key text,     -- at most one running job per key (e.g. one sync per store)
  lease_owner text,
  lease_expires_at timestamptz,
  last_error text,
  result jsonb,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz
);
create unique index jobs_dedupe_idx on shopsync.jobs (dedupe_key)
  where dedupe_key is not null and state in ('queued', 'running');
create index jobs_claim_idx on shopsync.jobs (priority, run_at, id) where state = 'queued';
create index jobs_lease_idx on shopsync.jobs (lease_expires_at) where state = 'running';
create index jobs_store_idx on shopsync.jobs (store_id, state) where store_id is not null;
create index jobs_finished_idx on shopsync.jobs (finished_at) where state in ('succeeded', 'dead', 'cancelled');

-- Holds the concurrency keys of running jobs; its primary key is what closes the race between
-- two workers claiming two jobs of the same store at the same moment.
create table shopsync_private.job_concurrency_locks (
  concurrency_key text primary key,
  job_id bigint not null references shopsync.jobs (id) on delete cascade,
  locked_at timestamptz not null default now()
);
create index job_concurrency_locks_job_idx on shopsync_private.job_concurrency_locks (job_id);

-- One row per periodic task: when it last ran (the in-worker scheduler and pg_cron share it).
create table shopsync_private.maintenance_runs (
  task text primary key,
  last_run_at timestamptz not null,
  last_result jsonb
);

create table shopsync.webhook_inbox (
  id bigint generated always as identity primary key,
  platform text not null,
  delivery_id text not null check (length(delivery_id) between 1 and 200),
  store_id uuid references shopsync.stores (id) on delete cascade,
  organization_id uuid references shopsync.organizations (id) on delete cascade,
  topic text not null check (length(topic) between 1 and 200),
  event_id text,
  triggered_at timestamptz,
  payload jsonb not null,
  status text not null default 'pending' check (status in ('pending', 'processed', 'failed', 'ignored')),
  error text,
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  unique (platform, delivery_id)
);
create index webhook_inbox_store_idx on shopsync.webhook_inbox (store_id, received_at);
create index webhook_inbox_received_idx on shopsync.webhook_inbox (received_at);

create table shopsync.sync_runs (
  id bigint generated always as identity primary key,
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  resource text not null,
  mode text not null check (mode in ('full', 'incremental', 'reconcile')),
  status text not null default 'running' check (status in ('running', 'succeeded', 'failed', 'cancelled')),
  job_id bigint,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  created_count integer not null default 0,
  updated_count integer not null default 0,
  deleted_count integer not null default 0,
  failed_count integer not null default 0,
  checkpoint jsonb,
  error text
);
create index sync_runs_store_idx on shopsync.sync_runs (store_id, resource, started_at desc);

-- Where each resource's incremental sync stands: the high-water mark of source updated_at and the
-- checkpoint of an unfinished full sync, so a killed sync resumes where it stopped.
create table shopsync.sync_state (
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  resource text not null,
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  high_watermark timestamptz,
  checkpoint jsonb,
  last_full_sync_at timestamptz,
  last_reconciled_at timestamptz,
  updated_at timestamptz not null default now(),
  primary key (store_id, resource)
);

create table shopsync.activity_log (
  id bigint generated always as identity primary key,
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  store_id uuid references shopsync.stores (id) on delete set null,
  actor_user_id uuid,
  action text not null,
  details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
create index activity_log_org_idx on shopsync.activity_log (organization_id, created_at desc);
