-- Install flows, serialized token refreshes, and versions on order line items.

-- Installs that start on the platform's side (an app store) can finish OAuth before an organization
-- claims them: their state is bound to no organization, and their sealed tokens wait on the pending
-- install (service role only) until the claim.
alter table shopsync_private.oauth_states alter column organization_id drop not null;
alter table shopsync_private.pending_installs add column credentials jsonb;   -- {kind, key_id, sealed, ...}

-- A rotating refresh token must be used by one process at a time: whoever holds this lease refreshes,
-- the others wait for the new version. A lease (not an advisory lock) so it works through PostgREST.
alter table shopsync_private.store_credentials
  add column refresh_lock_owner text,
  add column refresh_locked_until timestamptz;

-- Line items carry their order's version, so a stale order delivery cannot overwrite newer items.
alter table shopsync.order_line_items add column source_updated_at timestamptz;

-- Webhook processing skips events already applied (one event may arrive under several delivery ids).
create index webhook_inbox_event_idx on shopsync.webhook_inbox (platform, store_id, event_id)
  where event_id is not null;
