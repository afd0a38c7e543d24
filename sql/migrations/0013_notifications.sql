-- Notifications: telling the right people about events (shopsync.events, 0011), once per channel.
--
-- * notification_channels: where an organization hears things (SMTP, Resend, Mailgun, a signed webhook).
--   Members read them; their secrets (SMTP password, API key, signing secret) are sealed by shopsync's
--   processes and kept apart in shopsync_private.notification_channel_secrets.
-- * notification_rules: which events go to which channel (types, minimum severity, one store or all),
--   grouped in windows of group_window_seconds (0: each event on its own, at once).
-- * notification_settings: an organization's time zone and its daily summary hour.
-- * notifications: one message to one channel (what was sent, when, how often tried, the provider's id or
--   error); notification_events ties each event to the one message that carries it to a channel, and its
--   primary key (channel_id, event_id) is what makes "never twice to a channel" true.
-- * notification_inbox: events not yet matched against the rules, filled by a trigger on shopsync.events.
-- See docs/notifications.md.

create table shopsync.notification_channels (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  name text not null check (length(name) between 1 and 100),
  kind text not null check (kind in ('smtp', 'resend', 'mailgun', 'webhook')),
  config jsonb not null default '{}'::jsonb check (jsonb_typeof(config) = 'object'),   -- never a secret
  status text not null default 'active' check (status in ('active', 'failing')),
  status_reason text check (length(status_reason) <= 500),    -- the provider's words while failing
  status_changed_at timestamptz not null default now(),
  last_sent_at timestamptz,
  created_by uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index notification_channels_org_idx on shopsync.notification_channels (organization_id);

create table shopsync_private.notification_channel_secrets (
  channel_id uuid primary key references shopsync.notification_channels (id) on delete cascade,
  key_id text not null,
  sealed text not null check (sealed like 'v1.%'),
  version integer not null default 1,
  updated_at timestamptz not null default now()
);

create table shopsync.notification_rules (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  channel_id uuid not null references shopsync.notification_channels (id) on delete cascade,
  event_types text[] check (cardinality(event_types) between 1 and 100),     -- null: every type
  min_severity text not null default 'warning' check (min_severity in ('info', 'warning', 'error', 'critical')),
  store_id uuid references shopsync.stores (id) on delete cascade,           -- null: every store
  group_window_seconds integer not null default 300 check (group_window_seconds between 0 and 86400),
  enabled boolean not null default true,
  created_by uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index notification_rules_org_idx on shopsync.notification_rules (organization_id);
create index notification_rules_channel_idx on shopsync.notification_rules (channel_id);
create index notification_rules_store_idx on shopsync.notification_rules (store_id);

create table shopsync.notification_settings (
  organization_id uuid primary key references shopsync.organizations (id) on delete cascade,
  time_zone text not null default 'UTC',
  summary_hour smallint check (summary_hour between 0 and 23),     -- null: no daily summary
  summary_skip_empty boolean not null default true,
  last_summary_at timestamptz,          -- the end of the period the last summary covered
  updated_at timestamptz not null default now()
);

create table shopsync.notifications (
  id bigint generated always as identity primary key,
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  channel_id uuid not null references shopsync.notification_channels (id) on delete cascade,
  rule_id uuid references shopsync.notification_rules (id) on delete set null,
  kind text not null check (kind in ('events', 'test')),
  dedupe_key text not null,
  event_type text,                      -- when every event in it has this type
  store_id uuid references shopsync.stores (id) on delete set null,   -- when every event is of this store
  severity text not null default 'info' check (severity in ('info', 'warning', 'error', 'critical')),
  event_count integer not null default 0,
  window_start timestamptz,
  window_end timestamptz,
  status text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'held')),
  send_after timestamptz not null default now(),
  attempts integer not null default 0,
  provider_message_id text,
  last_error text check (length(last_error) <= 1000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  sent_at timestamptz,
  unique (channel_id, dedupe_key)
);
create index notifications_org_idx on shopsync.notifications (organization_id, created_at desc);
create index notifications_unsent_idx on shopsync.notifications (send_after) where status <> 'sent';
create index notifications_rule_idx on shopsync.notifications (rule_id);
create index notifications_store_idx on shopsync.notifications (store_id);
create index notifications_sent_idx on shopsync.notifications (sent_at) where status = 'sent';

create table shopsync.notification_events (
  channel_id uuid not null references shopsync.notification_channels (id) on delete cascade,
  event_id bigint not null references shopsync.events (id) on delete cascade,
  notification_id bigint not null references shopsync.notifications (id) on delete cascade,
  organization_id uuid not null references shopsync.organizations (id) on delete cascade,
  primary key (channel_id, event_id)
);
create index notification_events_notification_idx on shopsync.notification_events (notification_id);
create index notification_events_event_idx on shopsync.notification_events (event_id);
create index notification_events_org_idx on shopsync.notification_events (organization_id);

create table shopsync_private.notification_inbox (
  event_id bigint primary key references shopsync.events (id) on delete cascade,
  queued_at timestamptz not null default now()
);

-- The webhook topics each store was last seen subscribed to, so a check can tell subscriptions a platform
-- dropped (re-created: an event) from a store's first ones or ones a policy change added (no event).
create table shopsync_private.webhook_subscriptions_seen (
  store_id uuid primary key references shopsync.stores (id) on delete cascade,
  topics text[] not null,
  checked_at timestamptz not null default now()
);

-- Is a dispatch already waiting? Asked on every event insert: this keeps the answer one tiny index probe.
create index jobs_notify_dispatch_queued_idx on shopsync.jobs (id) where kind = 'notify.dispatch' and state = 'queued';

insert into shopsync_private.event_types (type, severity, description) values
  ('summary.daily', 'info', 'the organization''s daily summary: syncs, records changed, orders, failures, items waiting'),
  ('notification.channel_failing', 'error',
   'a notification channel''s provider refused a message (bad address, domain not verified, key revoked); '
   || 'it sends nothing more until fixed');

insert into shopsync_private.job_kinds (kind, scope, required_when, enqueued_by, description) values
  ('notify.dispatch', 'core', 'always', 'the trigger on shopsync.events, run_maintenance(''notify'')',
   'match new events against the notification rules and group them into messages'),
  ('notify.send', 'core', 'always', 'collect_notifications, finish_notification_send, test_notification_channel, '
   || 'resume_notification_channel, run_maintenance(''notify'')', 'send one notification to its channel');

-- The triggers' functions are defined here for the trigger definitions, and again (the same) in
-- sql/functions/52_notifications.sql, which every migrate re-applies.
create or replace function shopsync_private.on_event_for_notifications() returns trigger
  language plpgsql security definer set search_path = ''
  as $$ begin return null; end $$;
create trigger shopsync_events_notify after insert on shopsync.events
  for each row execute function shopsync_private.on_event_for_notifications();

create or replace function shopsync_private.on_store_left_active() returns trigger
  language plpgsql security definer set search_path = ''
  as $$ begin return null; end $$;
create trigger shopsync_stores_left_active after update of status on shopsync.stores
  for each row when (old.status = 'active' and new.status <> 'active')
  execute function shopsync_private.on_store_left_active();
