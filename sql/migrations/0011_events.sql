-- Events: facts worth telling people about (a job died, a store needs re-authorization, ...), written in
-- the same transaction as the fact itself, so none is lost and none is told about a change that rolled
-- back. The notification channels deliver from here (they keep their own delivery state); members of the
-- organization read them under RLS. shopsync_private.event_types is the list of types, each with its
-- default severity; shopsync_private.emit_event refuses any other type.

create table shopsync_private.event_types (
  type text primary key check (type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
  severity text not null check (severity in ('info', 'warning', 'error', 'critical')),
  description text not null
);
insert into shopsync_private.event_types (type, severity, description) values
  ('job.dead', 'error', 'a job failed for good (a permanent error, or its last attempt)'),
  ('store.needs_reauth', 'error', 'the platform refused the store''s credentials: connect it again'),
  ('store.uninstalled', 'warning', 'the app was uninstalled from the store'),
  ('sync.record_errors', 'warning', 'a sync finished, but some records could not be stored'),
  ('webhooks.recreated', 'warning', 'the platform had dropped webhook subscriptions; they were created again');

create table shopsync.events (
  id bigint generated always as identity primary key,
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  store_id uuid references shopsync.stores (id) on delete set null,
  type text not null references shopsync_private.event_types (type),
  severity text not null check (severity in ('info', 'warning', 'error', 'critical')),
  subject text check (length(subject) <= 200),     -- what repeats of one fact share (a job kind, a flow, ...)
  details jsonb not null default '{}'::jsonb check (jsonb_typeof(details) = 'object'),   -- never personal data
  occurred_at timestamptz not null default now()
);
create index events_org_idx on shopsync.events (organization_id, occurred_at desc);
create index events_store_idx on shopsync.events (store_id);
create index events_type_idx on shopsync.events (type);
alter table shopsync.events enable row level security;

update shopsync_private.settings set value = value || '{"events": "90 days"}'::jsonb where key = 'retention';

-- set_retention takes the events' age too (a new argument: the old signature goes)
drop function if exists shopsync.set_retention(interval, interval, interval, interval, interval);
