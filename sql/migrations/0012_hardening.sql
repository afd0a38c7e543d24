-- Hardening: credentials refused and the job's failure in one transaction, leases that expire in seconds
-- (kept alive by heartbeats), redactions that stay final, ties between updates of the same second resolved
-- by when the platform's state was observed, stale uninstalls ignored, and disconnects that clean up.

-- fail_job takes p_needs_reauth (the store is marked in the same transaction): the old signature goes
drop function if exists shopsync.fail_job(text, bigint, text, boolean, double precision);

-- Redactions that stay final: rows a customer_redact deleted are remembered here, and no sync page, webhook
-- or reconciliation brings them back with data no newer than the redaction request.
create table shopsync_private.redacted_rows (
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  table_name text not null references shopsync_private.synced_tables (table_name),
  row_id text not null,
  redacted_at timestamptz not null,     -- when the platform asked: data no newer than this stays out
  primary key (store_id, table_name, row_id)
);
create index redacted_rows_table_idx on shopsync_private.redacted_rows (table_name);
alter table shopsync_private.redacted_rows enable row level security;

-- Ties: two versions of a row with the same updated_at second are ordered by when the platform's state in
-- each was observed (a webhook's event time, a page's fetch time): the catalog names that column.
alter table shopsync_private.synced_tables add column observed_column text;
alter table shopsync.products add column source_observed_at timestamptz;
alter table shopsync.product_variants add column source_observed_at timestamptz;
alter table shopsync.inventory_locations add column source_observed_at timestamptz;
alter table shopsync.inventory_levels add column source_observed_at timestamptz;
alter table shopsync.customers add column source_observed_at timestamptz;
alter table shopsync.orders add column source_observed_at timestamptz;
alter table shopsync.order_line_items add column source_observed_at timestamptz;
alter table shopsync.order_fulfillments add column source_observed_at timestamptz;
update shopsync_private.synced_tables set observed_column = 'source_observed_at';

-- A sync's records that could not be stored: the platform's id and why, kept on the run (the first 100).
alter table shopsync.sync_runs add column record_errors jsonb not null default '[]'::jsonb;

-- When the store was last connected (or reconnected): a platform's uninstall older than this is stale.
-- Stores connected before this release have none (their created_at stands in; rows are not rewritten).
alter table shopsync.stores add column connected_at timestamptz;

-- Disconnecting runs a job of the platform's (remove the webhooks shopsync created, then forget the keys).
insert into shopsync_private.job_kinds (kind, scope, required_when, enqueued_by, description) values
  ('disconnect', 'platform', 'always', 'disconnect_store',
   'remove what shopsync created at the store (webhooks), then delete its credentials');

-- uninstall_shop takes the time of the platform's call (a stale one does not touch a newer installation)
drop function if exists shopsync.uninstall_shop(text, text, text, interval);
drop function if exists shopsync_private.gdpr_subject_tables(text[], text[]);   -- a new result column
-- new arguments or result columns: the old definitions go, the functions phase creates the new ones
drop function if exists shopsync.finish_sync_run(bigint, text, integer, integer, integer, integer, text, jsonb);
drop function if exists shopsync.apply_synced_changes(uuid, jsonb, jsonb, timestamptz, jsonb, bigint, text, bigint);
drop function if exists shopsync.get_webhook(bigint);
drop function if exists shopsync.synced_catalog();
drop function if exists shopsync.enqueue_due_syncs(integer);       -- now batches until none is due
