-- Who may call what. Functions default to EXECUTE for PUBLIC; take that away and grant precisely:
-- the frontend RPCs to `authenticated`, everything to `service_role` (the worker on the supabase
-- path). `anon` gets nothing.
revoke execute on all functions in schema shopsync from public, anon, authenticated;
revoke execute on all functions in schema shopsync_private from public, anon, authenticated;

grant execute on function
  shopsync.is_member(uuid),
  shopsync.has_org_role(uuid, text[]),
  shopsync.my_organization_ids(text[]),
  shopsync.my_organizations(),
  shopsync.create_organization(text),
  shopsync.my_stores(uuid),
  shopsync.trigger_sync(uuid, text[], text),
  shopsync.set_sync_frequency(uuid, text),
  shopsync.set_sync_enabled(uuid, boolean),
  shopsync.set_access_policy(uuid, text, text),
  shopsync.disconnect_store(uuid),
  shopsync.claim_pending_install(uuid, text, uuid),
  shopsync.begin_install(uuid, text, text, text),
  shopsync.synced_record_counts(uuid),
  shopsync.create_api_key(uuid, text, uuid[], text[], timestamptz, double precision, integer),
  shopsync.list_api_keys(uuid),
  shopsync.revoke_api_key(uuid),
  shopsync.create_product_link(uuid, text, uuid, text, jsonb),
  shopsync.update_product_link(uuid, jsonb),
  shopsync.pause_product_link(uuid, boolean),
  shopsync.delete_product_link(uuid),
  shopsync.auto_link_by_sku(uuid, uuid, boolean, jsonb),
  shopsync.notification_event_types(),
  shopsync.create_notification_rule(uuid, text[], text, uuid, integer, boolean),
  shopsync.update_notification_rule(uuid, text[], text, uuid, integer, boolean),
  shopsync.delete_notification_rule(uuid),
  shopsync.delete_notification_channel(uuid),
  shopsync.resume_notification_channel(uuid),
  shopsync.test_notification_channel(uuid),
  shopsync.set_notification_settings(uuid, text, integer, boolean)
to authenticated;

grant execute on all functions in schema shopsync, shopsync_private to service_role;
grant usage, select on all sequences in schema shopsync, shopsync_private to service_role;
grant select on shopsync.store_sync_statistics to authenticated, service_role;
grant select on shopsync.product_link_statistics, shopsync.store_link_statistics to authenticated, service_role;
