-- Store lifecycle, credentials, OAuth states, pending installs, sync requests and sync runs:
-- the service-side building blocks connectors and the worker call.

create or replace function shopsync_private.log_activity(
  p_organization_id uuid, p_store_id uuid, p_action text, p_details jsonb default '{}'::jsonb
) returns void
  language sql security definer set search_path = ''
  as $$
    insert into shopsync.activity_log (organization_id, store_id, actor_user_id, action, details)
    values (p_organization_id, p_store_id, auth.uid(), p_action, coalesce(p_details, '{}'::jsonb))
  $$;

create or replace function shopsync_private.assert_resource(p_resource text) returns void
  language plpgsql immutable
  as $$
  begin
    if p_resource is null or p_resource not in ('products', 'customers', 'orders') then
      raise exception 'unknown resource %: expected products, customers or orders', coalesce(p_resource, 'null')
        using errcode = '22023';
    end if;
  end
  $$;

create or replace function shopsync_private.assert_sync_mode(p_mode text) returns void
  language plpgsql immutable
  as $$
  begin
    if p_mode is null or p_mode not in ('full', 'incremental', 'reconcile') then
      raise exception 'invalid sync mode %: expected full, incremental or reconcile', coalesce(p_mode, 'null')
        using errcode = '22023';
    end if;
  end
  $$;

create or replace function shopsync_private.assert_frequency(p_frequency text) returns void
  language plpgsql immutable
  as $$
  begin
    if shopsync_private.frequency_interval(p_frequency) is null then
      raise exception 'invalid frequency %: expected one of 15min, 30min, hourly, 6hours, daily',
        coalesce(p_frequency, 'null') using errcode = '22023';
    end if;
  end
  $$;

-- Create or reactivate the store a connection refers to (reinstalling a known shop keeps its id
-- and data). Returns the store id.
create or replace function shopsync.upsert_store(
  p_organization_id uuid,
  p_platform text,
  p_shop_key text,
  p_display_name text default null,
  p_status text default 'active',
  p_external_id text default null,
  p_platform_info jsonb default null
) returns uuid
  language plpgsql set search_path = ''
  as $$
  declare
    v_id uuid;
    v_was text;
  begin
    select s.status into v_was from shopsync.stores s
     where s.organization_id = p_organization_id and s.platform = p_platform and s.shop_key = lower(p_shop_key);
    if not exists (select 1 from shopsync.organizations o where o.id = p_organization_id) then
      raise exception 'unknown organization %', p_organization_id using errcode = 'P0002';
    end if;
    insert into shopsync.stores as s (organization_id, platform, shop_key, display_name, status, external_id,
                                      platform_info)
      values (p_organization_id, p_platform, lower(p_shop_key), p_display_name, p_status, p_external_id,
              coalesce(p_platform_info, '{}'::jsonb))
      on conflict (organization_id, platform, shop_key) do update
        set status = excluded.status,
            status_reason = null,
            display_name = coalesce(excluded.display_name, s.display_name),
            external_id = coalesce(excluded.external_id, s.external_id),
            platform_info = s.platform_info || excluded.platform_info
      returning s.id into v_id;
    if v_was in ('disconnected', 'uninstalled') and p_status in ('connecting', 'active') then
      -- reconnecting turns syncing back on (disconnecting had turned it off)
      update shopsync.store_sync_config c set enabled = true where c.store_id = v_id;
    end if;
    perform shopsync_private.log_activity(p_organization_id, v_id, 'store.connected',
                                          jsonb_build_object('platform', p_platform, 'shop', lower(p_shop_key)));
    return v_id;
  end
  $$;

create or replace function shopsync.set_store_status(p_store_id uuid, p_status text, p_reason text default null)
  returns void
  language plpgsql set search_path = ''
  as $$
  declare
    v_org uuid;
  begin
    update shopsync.stores s set status = p_status, status_reason = p_reason
      where s.id = p_store_id returning s.organization_id into v_org;
    if v_org is null then
      raise exception 'unknown store %', p_store_id using errcode = 'P0002';
    end if;
    if p_status in ('needs_reauth', 'uninstalled', 'disconnected') then
      -- its queued syncs cannot succeed now; they come back with the next schedule after reconnecting
      update shopsync.jobs j set state = 'cancelled', finished_at = now(),
                                 last_error = 'store is ' || p_status
        where j.store_id = p_store_id and j.state = 'queued'
          and j.kind = (select s.platform from shopsync.stores s where s.id = p_store_id) || '.sync';
    end if;
    perform shopsync_private.log_activity(v_org, p_store_id, 'store.status',
                                          jsonb_build_object('status', p_status, 'reason', p_reason));
  end
  $$;

-- Credentials arrive sealed; this function only stores them. p_expected_version guards rotating
-- refresh tokens: a writer that read version N only succeeds if nobody wrote since.
create or replace function shopsync.put_store_credentials(
  p_store_id uuid,
  p_kind text,
  p_key_id text,
  p_sealed text,
  p_access_expires_at timestamptz default null,
  p_refresh_expires_at timestamptz default null,
  p_expected_version integer default null
) returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_version integer;
  begin
    if p_sealed is null or p_sealed not like 'v1.%' then
      raise exception 'credentials must be sealed before they are stored' using errcode = '22023';
    end if;
    if p_expected_version is null then
      insert into shopsync_private.store_credentials as c (store_id, kind, key_id, sealed, access_expires_at,
                                                           refresh_expires_at)
        values (p_store_id, p_kind, p_key_id, p_sealed, p_access_expires_at, p_refresh_expires_at)
        on conflict (store_id) do update
          set kind = excluded.kind, key_id = excluded.key_id, sealed = excluded.sealed,
              access_expires_at = excluded.access_expires_at, refresh_expires_at = excluded.refresh_expires_at,
              version = c.version + 1, updated_at = now()
        returning c.version into v_version;
    else
      update shopsync_private.store_credentials c
         set kind = p_kind, key_id = p_key_id, sealed = p_sealed, access_expires_at = p_access_expires_at,
             refresh_expires_at = p_refresh_expires_at, version = c.version + 1, updated_at = now()
       where c.store_id = p_store_id and c.version = p_expected_version
      returning c.version into v_version;
      if v_version is null then
        raise exception 'credentials of store % changed concurrently', p_store_id using errcode = '40001';
      end if;
    end if;
    return v_version;
  end
  $$;

create or replace function shopsync.get_store_credentials(p_store_id uuid)
  returns table (store_id uuid, kind text, key_id text, sealed text, access_expires_at timestamptz,
                 refresh_expires_at timestamptz, version integer)
  language sql stable set search_path = ''
  as $$
    select c.store_id, c.kind, c.key_id, c.sealed, c.access_expires_at, c.refresh_expires_at, c.version
      from shopsync_private.store_credentials c where c.store_id = p_store_id
  $$;

-- For `shopsync rotate-key`: credentials not sealed with the active key, a page at a time.
create or replace function shopsync.credentials_to_reseal(p_active_key_id text, p_limit integer default 100)
  returns table (store_id uuid, key_id text, sealed text, version integer)
  language sql stable set search_path = ''
  as $$
    select c.store_id, c.key_id, c.sealed, c.version from shopsync_private.store_credentials c
     where c.key_id <> p_active_key_id order by c.store_id limit p_limit
  $$;

create or replace function shopsync.reseal_store_credentials(
  p_store_id uuid, p_expected_version integer, p_key_id text, p_sealed text
) returns boolean
  language sql set search_path = ''
  as $$
    with u as (
      update shopsync_private.store_credentials c
         set key_id = p_key_id, sealed = p_sealed, updated_at = now()   -- same secret: version unchanged
       where c.store_id = p_store_id and c.version = p_expected_version and p_sealed like 'v1.%'
      returning 1)
    select exists (select 1 from u)
  $$;

-- OAuth state: the nonce goes to the platform, only its hash is stored; consuming is single-use.
create or replace function shopsync.create_oauth_state(
  p_platform text, p_organization_id uuid, p_user_id uuid, p_shop_key text,
  p_return_to text default null, p_ttl_seconds integer default 600
) returns text
  language plpgsql set search_path = ''
  as $$
  declare
    v_nonce text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
  begin
    insert into shopsync_private.oauth_states (state_hash, platform, organization_id, user_id, shop_key,
                                               return_to, expires_at)
      values (encode(sha256(convert_to(v_nonce, 'UTF8')), 'hex'), p_platform, p_organization_id, p_user_id,
              lower(p_shop_key), p_return_to, now() + make_interval(secs => p_ttl_seconds));
    return v_nonce;
  end
  $$;

create or replace function shopsync.consume_oauth_state(p_platform text, p_nonce text, p_shop_key text)
  returns table (organization_id uuid, user_id uuid, return_to text)
  language sql set search_path = ''
  as $$
    update shopsync_private.oauth_states o set consumed_at = now()
     where o.state_hash = encode(sha256(convert_to(coalesce(p_nonce, ''), 'UTF8')), 'hex')
       and o.platform = p_platform and o.shop_key = lower(p_shop_key)
       and o.consumed_at is null and o.expires_at > now()
    returning o.organization_id, o.user_id, o.return_to
  $$;

-- A platform-initiated install waits here; returns (install id, claim token for the browser).
create or replace function shopsync.park_pending_install(
  p_platform text, p_shop_key text, p_details jsonb default '{}'::jsonb, p_ttl_seconds integer default 86400
) returns table (install_id uuid, claim_token text)
  language plpgsql set search_path = ''
  as $$
  declare
    v_token text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
    v_id uuid;
  begin
    insert into shopsync_private.pending_installs (platform, shop_key, claim_token_hash, details, expires_at)
      values (p_platform, lower(p_shop_key), encode(sha256(convert_to(v_token, 'UTF8')), 'hex'),
              coalesce(p_details, '{}'::jsonb), now() + make_interval(secs => p_ttl_seconds))
      returning id into v_id;
    return query select v_id, v_token;
  end
  $$;

create or replace function shopsync.mark_store_needs_reauth(p_store_id uuid, p_reason text) returns void
  language sql set search_path = ''
  as $$ select shopsync.set_store_status(p_store_id, 'needs_reauth', left(p_reason, 500)) $$;

-- Record a webhook delivery once (platform + delivery id) and enqueue its processing.
-- Returns the inbox id and whether it was a duplicate.
create or replace function shopsync.record_webhook(
  p_platform text, p_delivery_id text, p_store_id uuid, p_topic text, p_payload jsonb,
  p_event_id text default null, p_triggered_at timestamptz default null
) returns table (inbox_id bigint, duplicate boolean)
  language plpgsql set search_path = ''
  as $$
  declare
    v_id bigint;
    v_org uuid;
  begin
    select s.organization_id into v_org from shopsync.stores s where s.id = p_store_id;
    insert into shopsync.webhook_inbox (platform, delivery_id, store_id, organization_id, topic, event_id,
                                        triggered_at, payload)
      values (p_platform, p_delivery_id, p_store_id, v_org, p_topic, p_event_id, p_triggered_at, p_payload)
      on conflict (platform, delivery_id) do nothing
      returning id into v_id;
    if v_id is null then
      return query select w.id, true from shopsync.webhook_inbox w
        where w.platform = p_platform and w.delivery_id = p_delivery_id;
      return;
    end if;
    perform shopsync.enqueue_job(p_platform || '.webhook', jsonb_build_object('inbox_id', v_id),
                                 p_store_id => p_store_id, p_priority => 50, p_max_attempts => 8);
    return query select v_id, false;
  end
  $$;

-- Enqueue sync jobs for a store: one per resource whose access policy is 'sync'. Deduped per
-- store and resource (at most one queued or running), and serialized per store by the concurrency
-- key. Returns the job ids (existing ones when deduplicated).
create or replace function shopsync.request_sync(
  p_store_id uuid,
  p_resources text[] default null,
  p_mode text default 'incremental',
  p_reason text default 'manual',
  p_priority integer default 100
) returns bigint[]
  language plpgsql set search_path = ''
  as $$
  declare
    v_store shopsync.stores;
    v_cfg shopsync.store_sync_config;
    v_resource text;
    v_policy text;
    v_ids bigint[] := '{}';
  begin
    perform shopsync_private.assert_sync_mode(p_mode);
    select * into v_store from shopsync.stores s where s.id = p_store_id;
    if not found then
      raise exception 'unknown store %', p_store_id using errcode = 'P0002';
    end if;
    if v_store.status <> 'active' then
      raise exception 'store % is %; it must be active to sync', p_store_id, v_store.status
        using errcode = '55000', hint = coalesce(v_store.status_reason, '');
    end if;
    select * into v_cfg from shopsync.store_sync_config c where c.store_id = p_store_id;
    foreach v_resource in array coalesce(p_resources, array['products', 'customers', 'orders']) loop
      perform shopsync_private.assert_resource(v_resource);
      v_policy := case v_resource when 'products' then v_cfg.products_policy
                                  when 'customers' then v_cfg.customers_policy
                                  else v_cfg.orders_policy end;
      continue when v_policy <> 'sync';
      v_ids := v_ids || shopsync.enqueue_job(
        v_store.platform || '.sync',
        jsonb_build_object('mode', p_mode, 'reason', p_reason),
        p_store_id => p_store_id, p_resource => v_resource,
        p_dedupe_key => 'sync:' || p_store_id || ':' || v_resource,
        p_concurrency_key => 'store:' || p_store_id,
        p_priority => p_priority);
    end loop;
    return v_ids;
  end
  $$;

-- Called every minute (pg_cron or the worker): enqueue syncs for stores whose next_sync_at has
-- come. A store whose last sync finished within min_interval is skipped (its schedule still
-- advances). Returns the number of stores synced.
create or replace function shopsync.enqueue_due_syncs(p_limit integer default 1000) returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_row record;
    v_count integer := 0;
  begin
    for v_row in
      select c.store_id, c.frequency, c.min_interval, s.sync_completed_at
        from shopsync.store_sync_config c
        join shopsync.stores s on s.id = c.store_id
       where c.enabled and c.next_sync_at <= now() and s.status = 'active'
       order by c.next_sync_at
       limit p_limit
         for update of c skip locked
    loop
      if v_row.sync_completed_at is null or v_row.sync_completed_at + v_row.min_interval <= now() then
        perform shopsync.request_sync(v_row.store_id, null, 'incremental', 'schedule');
        update shopsync.store_sync_config c set last_sync_enqueued_at = now(),
               next_sync_at = now() + shopsync_private.frequency_interval(v_row.frequency)
         where c.store_id = v_row.store_id;
        v_count := v_count + 1;
      else
        update shopsync.store_sync_config c
           set next_sync_at = now() + shopsync_private.frequency_interval(v_row.frequency)
         where c.store_id = v_row.store_id;
      end if;
    end loop;
    return v_count;
  end
  $$;

-- A sync run starts: recorded, and the store shows 'syncing' to the frontend.
create or replace function shopsync.start_sync_run(
  p_store_id uuid, p_resource text, p_mode text, p_job_id bigint default null
) returns bigint
  language plpgsql set search_path = ''
  as $$
  declare
    v_id bigint;
  begin
    perform shopsync_private.assert_resource(p_resource);
    perform shopsync_private.assert_sync_mode(p_mode);
    insert into shopsync.sync_runs (store_id, organization_id, resource, mode, job_id)
      select s.id, s.organization_id, p_resource, p_mode, p_job_id from shopsync.stores s where s.id = p_store_id
      returning id into v_id;
    if v_id is null then
      raise exception 'unknown store %', p_store_id using errcode = 'P0002';
    end if;
    -- a run left 'running' by a worker that died is over: this one supersedes it
    update shopsync.sync_runs r set status = 'failed', finished_at = now(),
                                    error = 'superseded: its worker stopped before finishing'
     where r.store_id = p_store_id and r.resource = p_resource and r.status = 'running' and r.id <> v_id;
    update shopsync.stores s set sync_status = 'syncing', sync_started_at = now() where s.id = p_store_id;
    return v_id;
  end
  $$;

create or replace function shopsync.finish_sync_run(
  p_run_id bigint,
  p_status text,
  p_created integer default 0,
  p_updated integer default 0,
  p_deleted integer default 0,
  p_failed integer default 0,
  p_error text default null,
  p_checkpoint jsonb default null
) returns void
  language plpgsql set search_path = ''
  as $$
  declare
    v_store uuid;
  begin
    if p_status not in ('succeeded', 'failed', 'cancelled') then
      raise exception 'invalid sync run status %', p_status using errcode = '22023';
    end if;
    update shopsync.sync_runs r
       set status = p_status, finished_at = now(), created_count = p_created, updated_count = p_updated,
           deleted_count = p_deleted, failed_count = p_failed, error = left(p_error, 4000),
           checkpoint = coalesce(p_checkpoint, r.checkpoint)
     where r.id = p_run_id and r.status = 'running'
    returning r.store_id into v_store;
    if v_store is null then
      return;  -- already finished (a retried job finishing twice changes nothing)
    end if;
    if not exists (select 1 from shopsync.sync_runs r where r.store_id = v_store and r.status = 'running') then
      update shopsync.stores s
         set sync_status = case when p_status = 'failed' then 'error' else 'completed' end,
             sync_completed_at = now(),
             last_sync_error = case when p_status = 'failed' then left(p_error, 4000) end
       where s.id = v_store;
    end if;
  end
  $$;

create or replace function shopsync.save_sync_state(
  p_store_id uuid, p_resource text, p_high_watermark timestamptz default null, p_checkpoint jsonb default null,
  p_full_sync_done boolean default false, p_reconciled boolean default false, p_job_id bigint default null,
  p_worker text default null
) returns void
  language sql set search_path = ''
  as $$
    select shopsync_private.assert_job_held(p_job_id, p_worker);
    insert into shopsync.sync_state as st (store_id, resource, organization_id, high_watermark, checkpoint,
                                           last_full_sync_at, last_reconciled_at)
    select s.id, p_resource, s.organization_id, p_high_watermark, p_checkpoint,
           case when p_full_sync_done then now() end, case when p_reconciled then now() end
      from shopsync.stores s where s.id = p_store_id
    on conflict (store_id, resource) do update
      set high_watermark = greatest(st.high_watermark, excluded.high_watermark),
          checkpoint = excluded.checkpoint,
          last_full_sync_at = coalesce(excluded.last_full_sync_at, st.last_full_sync_at),
          last_reconciled_at = coalesce(excluded.last_reconciled_at, st.last_reconciled_at),
          updated_at = now()
  $$;

-- Everything a sync job needs to know about its store and resource, in one call.
create or replace function shopsync.get_sync_context(p_store_id uuid, p_resource text)
  returns table (store_id uuid, organization_id uuid, platform text, shop_key text, status text, policy text,
                 high_watermark timestamptz, checkpoint jsonb, last_full_sync_at timestamptz)
  language plpgsql stable set search_path = ''
  as $$
  begin
    perform shopsync_private.assert_resource(p_resource);
    return query
      select s.id, s.organization_id, s.platform, s.shop_key, s.status,
             case p_resource when 'products' then c.products_policy when 'customers' then c.customers_policy
                             else c.orders_policy end,
             st.high_watermark, st.checkpoint, st.last_full_sync_at
        from shopsync.stores s
        join shopsync.store_sync_config c on c.store_id = s.id
        left join shopsync.sync_state st on st.store_id = s.id and st.resource = p_resource
       where s.id = p_store_id;
    if not found then
      raise exception 'unknown store %', p_store_id using errcode = 'P0002';
    end if;
  end
  $$;
