-- Connecting stores, shared by every platform: OAuth states, installs parked until an organization
-- claims them, connections made with keys a user pasted, and uninstalls.

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

-- The platform says its app was uninstalled from a shop: every store of the shop (in any organization)
-- is marked uninstalled, unclaimed installs are dropped, and — when p_delete_after is given — each
-- store's data is deleted that much later unless it was reinstalled meanwhile (store.purge_uninstalled).
create or replace function shopsync.uninstall_shop(
  p_platform text, p_shop_key text, p_reason text, p_delete_after interval default null,
  p_as_of timestamptz default null
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
         -- a store connected again after the platform's call is a newer installation: left alone
         and (p_as_of is null or coalesce(s.connected_at, s.created_at) <= p_as_of)
    loop
      if v_store.status <> 'uninstalled' then
        perform shopsync.set_store_status(v_store.id, 'uninstalled', p_reason);
      end if;
      if p_delete_after is not null then
        perform shopsync.enqueue_job(shopsync_private.core_job_kind('store.purge_uninstalled'),
                                     jsonb_build_object('uninstalled_at', now()), p_store_id => v_store.id,
                                     p_dedupe_key => 'purge_uninstalled:' || v_store.id,
                                     p_run_at => now() + p_delete_after, p_priority => 200);
      end if;
      v_count := v_count + 1;
    end loop;
    return v_count;
  end
  $$;
