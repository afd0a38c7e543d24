-- Service-side pieces of connecting stores and receiving webhooks, shared by every platform:
-- the non-secret platform configuration the frontend's begin_install reads, store lookup by shop,
-- pending-install credentials, the refresh lease on rotating tokens, and inbox reads/writes.

-- What a platform's processes publish at start-up (client id, scopes, redirect URL, shop pattern,
-- authorize URL template). Never secrets: the frontend-facing begin_install builds URLs from it.
create or replace function shopsync.set_platform_config(p_platform text, p_config jsonb) returns void
  language plpgsql set search_path = ''
  as $$
  begin
    if p_platform is null or p_platform !~ '^[a-z][a-z0-9_]{1,31}$' or jsonb_typeof(p_config) <> 'object' then
      raise exception 'platform config needs a platform name and a JSON object' using errcode = '22023';
    end if;
    insert into shopsync_private.settings (key, value) values ('platform:' || p_platform, p_config)
      on conflict (key) do update set value = excluded.value, updated_at = now();
  end
  $$;

create or replace function shopsync_private.platform_config(p_platform text) returns jsonb
  language sql stable set search_path = ''
  as $$ select s.value from shopsync_private.settings s where s.key = 'platform:' || p_platform $$;

-- The store a platform's webhook or install is about: the active one first, then the most recently
-- changed (a shop reinstalled into another organization leaves an uninstalled store behind).
create or replace function shopsync.find_store(p_platform text, p_shop_key text)
  returns table (store_id uuid, organization_id uuid, status text)
  language plpgsql stable set search_path = ''   -- plpgsql: its plan is cached (every webhook asks)
  as $$
  begin
    return query
      select s.id, s.organization_id, s.status from shopsync.stores s
       where s.platform = p_platform and s.shop_key = lower(p_shop_key)
       order by (s.status = 'active') desc, s.updated_at desc
       limit 1;
  end
  $$;

-- Every store of a shop, in any organization and state: GDPR requests must reach all of them.
create or replace function shopsync.stores_of_shop(p_platform text, p_shop_key text)
  returns table (store_id uuid, organization_id uuid, status text)
  language sql stable set search_path = ''
  as $$
    select s.id, s.organization_id, s.status from shopsync.stores s
     where s.platform = p_platform and s.shop_key = lower(p_shop_key)
     order by s.created_at
  $$;

-- Tokens of an install nobody has claimed yet, sealed for the install (not a store). Returns the
-- store id when the install was claimed meanwhile, so the caller can finish connecting it.
create or replace function shopsync.put_pending_install_credentials(p_install_id uuid, p_credentials jsonb)
  returns uuid
  language plpgsql set search_path = ''
  as $$
  declare
    v_found boolean;
    v_store uuid;
  begin
    if p_credentials ->> 'sealed' is null or p_credentials ->> 'sealed' not like 'v1.%' then
      raise exception 'credentials must be sealed before they are stored' using errcode = '22023';
    end if;
    update shopsync_private.pending_installs p set credentials = p_credentials
     where p.id = p_install_id returning true, p.store_id into v_found, v_store;
    if v_found is null then
      raise exception 'unknown pending install %', p_install_id using errcode = 'P0002';
    end if;
    return v_store;
  end
  $$;

create or replace function shopsync.get_pending_install(p_install_id uuid)
  returns table (platform text, shop_key text, details jsonb, credentials jsonb, store_id uuid,
                 organization_id uuid, expires_at timestamptz)
  language sql stable set search_path = ''
  as $$
    select p.platform, p.shop_key, p.details, p.credentials, p.store_id, p.claimed_by_organization, p.expires_at
      from shopsync_private.pending_installs p where p.id = p_install_id
  $$;

-- Once the tokens live with the store, the install keeps no copy.
create or replace function shopsync.clear_pending_install_credentials(p_install_id uuid) returns void
  language sql set search_path = ''
  as $$ update shopsync_private.pending_installs p set credentials = null where p.id = p_install_id $$;

-- The refresh lease: true when p_owner holds it (taken now, or already held). Free again when it runs
-- out, so a worker that dies mid-refresh blocks the store for at most p_seconds.
create or replace function shopsync.lock_credentials_refresh(p_store_id uuid, p_owner text,
                                                             p_seconds double precision default 30)
  returns boolean
  language sql set search_path = ''
  as $$
    with taken as (
      update shopsync_private.store_credentials c
         set refresh_lock_owner = p_owner, refresh_locked_until = now() + make_interval(secs => p_seconds)
       where c.store_id = p_store_id
         and (c.refresh_lock_owner is null or c.refresh_lock_owner = p_owner or c.refresh_locked_until < now())
      returning 1)
    select exists (select 1 from taken)
  $$;

create or replace function shopsync.unlock_credentials_refresh(p_store_id uuid, p_owner text) returns void
  language sql set search_path = ''
  as $$
    update shopsync_private.store_credentials c set refresh_lock_owner = null, refresh_locked_until = null
     where c.store_id = p_store_id and c.refresh_lock_owner = p_owner
  $$;

-- An inbox delivery with what processing needs to know: the store's status and whether the same
-- platform event was already applied under another delivery id (one event, several deliveries).
drop function if exists shopsync.get_webhook(bigint);   -- its columns changed before release
create or replace function shopsync.get_webhook(p_inbox_id bigint)
  returns table (id bigint, platform text, store_id uuid, organization_id uuid, topic text, event_id text,
                 triggered_at timestamptz, payload jsonb, status text, store_status text, shop_key text,
                 products_policy text, customers_policy text, orders_policy text, event_already_applied boolean)
  language plpgsql stable set search_path = ''   -- plpgsql: its plan is cached (one call per delivery)
  as $$
  begin
    return query
      select w.id, w.platform, w.store_id, w.organization_id, w.topic, w.event_id, w.triggered_at, w.payload,
             w.status, s.status, s.shop_key, c.products_policy, c.customers_policy, c.orders_policy,
             w.event_id is not null and exists (
               select 1 from shopsync.webhook_inbox o
                where o.platform = w.platform and o.store_id = w.store_id and o.event_id = w.event_id
                  and o.id <> w.id and o.status = 'processed')
        from shopsync.webhook_inbox w left join shopsync.stores s on s.id = w.store_id
        left join shopsync.store_sync_config c on c.store_id = w.store_id
       where w.id = p_inbox_id;
  end
  $$;

create or replace function shopsync.finish_webhook(p_inbox_id bigint, p_status text, p_error text default null)
  returns void
  language plpgsql set search_path = ''
  as $$
  begin
    if p_status is null or p_status not in ('processed', 'failed', 'ignored') then
      raise exception 'invalid webhook status %: expected processed, failed or ignored', coalesce(p_status, 'null')
        using errcode = '22023';
    end if;
    update shopsync.webhook_inbox w set status = p_status, error = left(p_error, 2000), processed_at = now()
     where w.id = p_inbox_id;
  end
  $$;

-- What a connector's store-level jobs need to know about a store.
create or replace function shopsync.get_store(p_store_id uuid)
  returns table (id uuid, organization_id uuid, platform text, shop_key text, status text,
                 products_policy text, customers_policy text, orders_policy text, platform_info jsonb)
  language sql stable set search_path = ''
  as $$
    select s.id, s.organization_id, s.platform, s.shop_key, s.status, c.products_policy, c.customers_policy,
           c.orders_policy, s.platform_info
      from shopsync.stores s left join shopsync.store_sync_config c on c.store_id = s.id
     where s.id = p_store_id
  $$;

-- Checks that keep active stores correct beyond the incremental schedule: a reconciliation per
-- synced resource (finds what vanished at the source without a delete webhook) and a re-check of
-- webhook subscriptions (platforms drop them after failed deliveries). Called every minute with the
-- due-sync task; each check is enqueued at most once per interval and deduplicated per store.
create or replace function shopsync.enqueue_periodic_checks(
  p_reconcile_every interval default '1 day', p_webhook_check_every interval default '6 hours'
) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_row record;
    v_reconciles integer := 0;
    v_checks integer := 0;
  begin
    for v_row in
      select st.store_id, st.resource from shopsync.sync_state st
        join shopsync.stores s on s.id = st.store_id
        join shopsync.store_sync_config c on c.store_id = st.store_id
       where s.status = 'active' and c.enabled and st.last_full_sync_at is not null and st.checkpoint is null
         and coalesce(st.last_reconciled_at, st.last_full_sync_at) < now() - p_reconcile_every
         and case st.resource when 'products' then c.products_policy when 'customers' then c.customers_policy
                              else c.orders_policy end = 'sync'
       limit 200
    loop
      perform shopsync.request_sync(v_row.store_id, array[v_row.resource], 'reconcile', 'schedule', 200);
      v_reconciles := v_reconciles + 1;
    end loop;
    for v_row in
      select s.id, s.platform from shopsync.stores s
       where s.status = 'active'
         and not exists (select 1 from shopsync.jobs j
                          where j.store_id = s.id and j.kind = s.platform || '.check_webhooks'
                            and j.created_at > now() - p_webhook_check_every)
       limit 200
    loop
      perform shopsync.enqueue_job(v_row.platform || '.check_webhooks', '{}'::jsonb, p_store_id => v_row.id,
                                   p_dedupe_key => 'check_webhooks:' || v_row.id, p_priority => 150);
      v_checks := v_checks + 1;
    end loop;
    return jsonb_build_object('reconciliations', v_reconciles, 'webhook_checks', v_checks);
  end
  $$;

-- The web process's one call per webhook delivery: find the shop's store (as find_store) and record
-- the delivery once (as record_webhook). No row when no store has that shop.
create or replace function shopsync.receive_webhook(
  p_platform text, p_shop_key text, p_delivery_id text, p_topic text, p_payload jsonb,
  p_event_id text default null, p_triggered_at timestamptz default null
) returns table (store_id uuid, inbox_id bigint, duplicate boolean)
  language plpgsql set search_path = ''
  as $$
  declare
    v_store uuid;
  begin
    select f.store_id into v_store from shopsync.find_store(p_platform, p_shop_key) f;
    if v_store is null then
      return;
    end if;
    return query select v_store, r.inbox_id, r.duplicate
      from shopsync.record_webhook(p_platform, p_delivery_id, v_store, p_topic, p_payload, p_event_id,
                                   p_triggered_at) r;
  end
  $$;

-- Connecting a store with keys the user pasted (WooCommerce): the web process verified the user's
-- Supabase token and calls these with the service role. First: may this user connect stores in this
-- organization, and which store id would the connection have (the existing one on a reconnect)?
create or replace function shopsync.prepare_store_connection(
  p_user_id uuid, p_organization_id uuid, p_platform text, p_shop_key text
) returns uuid
  language plpgsql stable set search_path = ''
  as $$
  begin
    if not exists (select 1 from shopsync.organization_members m
                    where m.organization_id = p_organization_id and m.user_id = p_user_id
                      and m.role in ('owner', 'admin')) then
      raise exception 'only owners and admins of organization % can connect stores', p_organization_id
        using errcode = '42501';
    end if;
    return (select s.id from shopsync.stores s
             where s.organization_id = p_organization_id and s.platform = p_platform
               and s.shop_key = lower(p_shop_key));
  end
  $$;

-- Then, once the keys worked and webhooks exist: the store (with the id its webhook URLs name), its
-- sealed credentials, active, and its first full sync — in one transaction.
create or replace function shopsync.connect_store_for_user(
  p_user_id uuid, p_organization_id uuid, p_platform text, p_shop_key text, p_store_id uuid,
  p_credentials jsonb, p_display_name text default null, p_platform_info jsonb default '{}'::jsonb
) returns uuid
  language plpgsql set search_path = ''
  as $$
  declare
    v_existing uuid := shopsync.prepare_store_connection(p_user_id, p_organization_id, p_platform, p_shop_key);
    v_store uuid;
  begin
    if v_existing is not null and v_existing <> p_store_id then
      raise exception 'the store was connected concurrently; try again' using errcode = '40001';
    end if;
    if v_existing is null then
      insert into shopsync.stores (id, organization_id, platform, shop_key, status)
        values (p_store_id, p_organization_id, p_platform, lower(p_shop_key), 'connecting');
    end if;
    v_store := shopsync.upsert_store(p_organization_id, p_platform, p_shop_key, p_display_name, 'connecting', null,
                                     p_platform_info);
    perform shopsync.put_store_credentials(v_store, p_credentials ->> 'kind', p_credentials ->> 'key_id',
                                           p_credentials ->> 'sealed');
    perform shopsync.set_store_status(v_store, 'active');
    perform shopsync.request_sync(v_store, null, 'full', 'connect', 50);
    return v_store;
  end
  $$;

-- The web process's lookup for a webhook addressed to one store (its URL names the store): the
-- store's state and its sealed secrets (the per-store webhook secret is among them).
create or replace function shopsync.store_webhook_credentials(p_store_id uuid)
  returns table (platform text, status text, key_id text, sealed text)
  language sql stable set search_path = ''
  as $$
    select s.platform, s.status, c.key_id, c.sealed
      from shopsync.stores s left join shopsync_private.store_credentials c on c.store_id = s.id
     where s.id = p_store_id
  $$;

-- Installs that start in a platform's admin (ShopRenter) reach the frontend through the admin's signed
-- entry call, not the install redirect: a fresh claim token for the shop's newest unclaimed install
-- (the earlier token is void). No row when nothing waits to be claimed.
create or replace function shopsync.reissue_pending_install_claim(p_platform text, p_shop_key text)
  returns table (install_id uuid, claim_token text)
  language plpgsql set search_path = ''
  as $$
  declare
    v_token text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
    v_id uuid;
  begin
    update shopsync_private.pending_installs p
       set claim_token_hash = encode(sha256(convert_to(v_token, 'UTF8')), 'hex')
     where p.id = (select q.id from shopsync_private.pending_installs q
                    where q.platform = p_platform and q.shop_key = lower(p_shop_key) and q.claimed_at is null
                      and q.expires_at > now()
                    order by q.created_at desc limit 1)
    returning p.id into v_id;
    if v_id is not null then
      return query select v_id, v_token;
    end if;
  end
  $$;

-- The platform says its app was uninstalled from a shop: every store of the shop (in any organization)
-- is marked uninstalled, unclaimed installs are dropped, and — when p_delete_after is given — each
-- store's data is deleted that much later unless it was reinstalled meanwhile (store.purge_uninstalled).
create or replace function shopsync.uninstall_shop(
  p_platform text, p_shop_key text, p_reason text, p_delete_after interval default null
) returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_store record;
    v_count integer := 0;
  begin
    delete from shopsync_private.pending_installs p
     where p.platform = p_platform and p.shop_key = lower(p_shop_key) and p.claimed_at is null;
    for v_store in
      select s.id, s.status from shopsync.stores s
       where s.platform = p_platform and s.shop_key = lower(p_shop_key) and s.status <> 'disconnected'
    loop
      if v_store.status <> 'uninstalled' then
        perform shopsync.set_store_status(v_store.id, 'uninstalled', p_reason);
      end if;
      if p_delete_after is not null then
        perform shopsync.enqueue_job('store.purge_uninstalled', jsonb_build_object('uninstalled_at', now()),
                                     p_store_id => v_store.id, p_dedupe_key => 'purge_uninstalled:' || v_store.id,
                                     p_run_at => now() + p_delete_after, p_priority => 200);
      end if;
      v_count := v_count + 1;
    end loop;
    return v_count;
  end
  $$;
