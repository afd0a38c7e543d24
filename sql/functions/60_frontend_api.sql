-- RPCs for the app's frontend (supabase-js, role `authenticated`). Each checks who is calling:
-- a store the caller cannot see is reported as unknown (no existence leak), a role too weak for
-- the change gets 42501, bad values get 22023, a store in the wrong state gets 55000.

create or replace function shopsync.my_organizations()
  returns table (organization_id uuid, name text, role text, personal boolean, created_at timestamptz)
  language sql stable security definer set search_path = ''
  as $$
    select o.id, o.name, m.role, o.personal, o.created_at
      from shopsync.organization_members m join shopsync.organizations o on o.id = m.organization_id
     where m.user_id = shopsync_private.require_user()
     order by o.personal desc, o.name
  $$;

create or replace function shopsync.create_organization(p_name text) returns uuid
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_uid uuid := shopsync_private.require_user();
    v_org uuid;
  begin
    if p_name is null or length(btrim(p_name)) not between 1 and 200 then
      raise exception 'organization name must be 1 to 200 characters' using errcode = '22023';
    end if;
    insert into shopsync.organizations (name, created_by) values (btrim(p_name), v_uid) returning id into v_org;
    insert into shopsync.organization_members (organization_id, user_id, role) values (v_org, v_uid, 'owner');
    perform shopsync_private.log_activity(v_org, null, 'organization.created', jsonb_build_object('name', p_name));
    return v_org;
  end
  $$;

-- The caller's stores. access_policies holds every catalog resource's policy; products_policy,
-- customers_policy and orders_policy repeat three of them for frontends written before it existed.
create or replace function shopsync.my_stores(p_organization_id uuid default null)
  returns table (
    store_id uuid, organization_id uuid, platform text, shop_key text, display_name text, status text,
    status_reason text, sync_status text, sync_started_at timestamptz, sync_completed_at timestamptz,
    last_sync_error text, enabled boolean, frequency text, next_sync_at timestamptz,
    products_policy text, customers_policy text, orders_policy text, created_at timestamptz,
    access_policies jsonb)
  language plpgsql stable security definer set search_path = ''
  as $$
  declare
    v_uid uuid := shopsync_private.require_user();
  begin
    if p_organization_id is not null and not shopsync.is_member(p_organization_id) then
      raise exception 'you are not a member of organization %', p_organization_id using errcode = '42501';
    end if;
    return query
      select s.id, s.organization_id, s.platform, s.shop_key, s.display_name, s.status, s.status_reason,
             s.sync_status, s.sync_started_at, s.sync_completed_at, s.last_sync_error, c.enabled, c.frequency,
             c.next_sync_at, p.policies ->> 'products', p.policies ->> 'customers', p.policies ->> 'orders',
             s.created_at, p.policies
        from shopsync.stores s
        cross join lateral (select shopsync_private.store_policies(s.id) as policies) p
        join shopsync.organization_members m on m.organization_id = s.organization_id and m.user_id = v_uid
        left join shopsync.store_sync_config c on c.store_id = s.id
       where p_organization_id is null or s.organization_id = p_organization_id
       order by s.created_at;
  end
  $$;

create or replace function shopsync.trigger_sync(
  p_store_id uuid, p_resources text[] default null, p_mode text default 'incremental'
) returns bigint[]
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_store shopsync.stores := shopsync_private.store_for_caller(p_store_id, array['owner', 'admin', 'member']);
    v_ids bigint[];
  begin
    if p_mode is null or p_mode not in ('full', 'incremental') then
      raise exception 'invalid sync mode %: expected full or incremental', coalesce(p_mode, 'null')
        using errcode = '22023';
    end if;
    if p_resources is not null and cardinality(p_resources) = 0 then
      raise exception 'resources must be null (all) or name at least one of products, customers, orders'
        using errcode = '22023';
    end if;
    v_ids := shopsync.request_sync(v_store.id, p_resources, p_mode, 'manual', 50);
    perform shopsync_private.log_activity(v_store.organization_id, v_store.id, 'sync.requested',
      jsonb_build_object('resources', coalesce(to_jsonb(p_resources), '"all"'::jsonb), 'mode', p_mode, 'jobs', v_ids));
    return v_ids;
  end
  $$;

-- Shared by the frontend RPCs and the SQL admin helpers: validate, apply, log.
create or replace function shopsync_private.apply_sync_frequency(p_store shopsync.stores, p_frequency text,
                                                                 p_by text) returns timestamptz
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_next timestamptz;
  begin
    perform shopsync_private.assert_frequency(p_frequency);
    update shopsync.store_sync_config c set frequency = p_frequency where c.store_id = p_store.id
      returning c.next_sync_at into v_next;
    perform shopsync_private.log_activity(p_store.organization_id, p_store.id, 'sync.frequency',
                                          jsonb_build_object('frequency', p_frequency, 'by', p_by));
    return v_next;
  end
  $$;

create or replace function shopsync_private.apply_sync_enabled(p_store shopsync.stores, p_enabled boolean,
                                                               p_by text) returns void
  language plpgsql security definer set search_path = ''
  as $$
  begin
    if p_enabled is null then
      raise exception 'enabled must be true or false' using errcode = '22023';
    end if;
    if p_store.status = 'disconnected' and p_enabled then
      raise exception 'store % is disconnected: connect it again first', p_store.id using errcode = '55000';
    end if;
    update shopsync.store_sync_config c set enabled = p_enabled where c.store_id = p_store.id;
    perform shopsync_private.log_activity(p_store.organization_id, p_store.id, 'sync.enabled',
                                          jsonb_build_object('enabled', p_enabled, 'by', p_by));
  end
  $$;

create or replace function shopsync.set_sync_frequency(p_store_id uuid, p_frequency text) returns timestamptz
  language sql security definer set search_path = ''
  as $$
    select shopsync_private.apply_sync_frequency(
      shopsync_private.store_for_caller(p_store_id, array['owner', 'admin']), p_frequency, 'user')
  $$;

create or replace function shopsync.set_sync_enabled(p_store_id uuid, p_enabled boolean) returns void
  language sql security definer set search_path = ''
  as $$
    select shopsync_private.apply_sync_enabled(
      shopsync_private.store_for_caller(p_store_id, array['owner', 'admin']), p_enabled, 'user')
  $$;

create or replace function shopsync.set_access_policy(p_store_id uuid, p_resource text, p_policy text)
  returns integer
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_store shopsync.stores := shopsync_private.store_for_caller(p_store_id, array['owner', 'admin']);
    v_purged integer := 0;
  begin
    perform shopsync_private.assert_resource(p_resource);
    if p_policy is null or p_policy not in ('sync', 'api_only', 'not_allowed') then
      raise exception 'invalid access policy %: expected sync, api_only or not_allowed', coalesce(p_policy, 'null')
        using errcode = '22023';
    end if;
    insert into shopsync.store_access_policies as a (store_id, resource, organization_id, policy)
      values (v_store.id, p_resource, v_store.organization_id, p_policy)
      on conflict (store_id, resource) do update set policy = excluded.policy, updated_at = now();
    if p_policy <> 'sync' then
      -- cancel first: this waits for an in-flight write of a running sync to commit, and every write
      -- after it is refused (assert_job_held), so nothing lands after the purge. A running job keeps
      -- its store lock until its lease runs out (see cancel_job).
      update shopsync.jobs j set state = 'cancelled', finished_at = now(), last_error = 'access policy changed'
       where j.store_id = v_store.id and j.resource = p_resource and j.state in ('queued', 'running');
      v_purged := shopsync_private.purge_store_resource(v_store.id, p_resource);
    end if;
    perform shopsync_private.log_activity(v_store.organization_id, v_store.id, 'access_policy.changed',
      jsonb_build_object('resource', p_resource, 'policy', p_policy, 'rows_removed', v_purged));
    return v_purged;
  end
  $$;

-- Disconnect: syncing stops, queued work is cancelled, and a <platform>.disconnect job removes shopsync's
-- webhooks from the store, then deletes its credentials. Synced data stays until the organization deletes
-- it (or a platform redact request arrives).
create or replace function shopsync.disconnect_store(p_store_id uuid) returns void
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_store shopsync.stores := shopsync_private.store_for_caller(p_store_id, array['owner', 'admin']);
  begin
    if v_store.status = 'disconnected' then
      raise exception 'store % is already disconnected', p_store_id using errcode = '55000';
    end if;
    update shopsync.stores s set status = 'disconnected', status_reason = 'disconnected by a user',
                                 sync_status = case when s.sync_status = 'syncing' then 'idle' else s.sync_status end
     where s.id = v_store.id;
    update shopsync.store_sync_config c set enabled = false where c.store_id = v_store.id;
    -- running jobs keep their store lock until their lease runs out (see cancel_job)
    -- GDPR requests still run: the synced data stays after a disconnect, and so does the obligation
    update shopsync.jobs j set state = 'cancelled', finished_at = now(), last_error = 'store disconnected'
     where j.store_id = v_store.id and j.state in ('queued', 'running')
       and j.kind <> shopsync_private.core_job_kind('gdpr.process');
    if v_store.status = 'uninstalled' then
      -- the platform removed the app and its webhooks itself: only the credentials are left to delete
      delete from shopsync_private.store_credentials c where c.store_id = v_store.id;
    else
      -- the platform's disconnect job removes what shopsync created at the store (its webhooks) with the
      -- store's credentials, then deletes them (forget_store_credentials)
      perform shopsync.enqueue_job(shopsync_private.platform_job_kind(v_store.platform, 'disconnect'), '{}'::jsonb,
                                   p_store_id => v_store.id, p_dedupe_key => 'disconnect:' || v_store.id,
                                   p_priority => 20, p_max_attempts => 8);
    end if;
    perform shopsync_private.log_activity(v_store.organization_id, v_store.id, 'store.disconnected', '{}'::jsonb);
  end
  $$;

-- Claim a parked install for one of the caller's organizations. Installs started on the platform's
-- side may be claimed by any owner/admin holding the claim token; installs started with begin_install
-- only by the user who began them, for that organization — so a consent screen forwarded to someone
-- else cannot connect their shop to the sender's organization.
create or replace function shopsync.claim_pending_install(
  p_install_id uuid, p_claim_token text, p_organization_id uuid
) returns uuid
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_user uuid := shopsync_private.require_user();
    v_install shopsync_private.pending_installs;
    v_store uuid;
  begin
    if not shopsync.has_org_role(p_organization_id, array['owner', 'admin']) then
      raise exception 'only owners and admins of organization % can connect stores', p_organization_id
        using errcode = '42501';
    end if;
    select * into v_install from shopsync_private.pending_installs p
     where p.id = p_install_id
       and p.claim_token_hash = encode(sha256(convert_to(coalesce(p_claim_token, ''), 'UTF8')), 'hex')
       for update;
    if not found or v_install.claimed_at is not null or v_install.expires_at < now()
       or coalesce((v_install.details ->> 'user_id')::uuid, v_user) <> v_user then
      raise exception 'unknown, expired or already claimed install' using errcode = 'P0002';
    end if;
    if coalesce((v_install.details ->> 'organization_id')::uuid, p_organization_id) <> p_organization_id then
      raise exception 'this install was started for another organization' using errcode = '42501';
    end if;
    v_store := shopsync.upsert_store(p_organization_id, v_install.platform, v_install.shop_key, null, 'connecting');
    update shopsync_private.pending_installs p set claimed_at = now(), claimed_by_organization = p_organization_id,
                                                   store_id = v_store
     where p.id = p_install_id;
    perform shopsync.enqueue_job(shopsync_private.platform_job_kind(v_install.platform, 'install_claimed'),
                                 jsonb_build_object('install_id', p_install_id),
                                 p_store_id => v_store, p_dedupe_key => 'install:' || p_install_id, p_priority => 10);
    return v_store;
  end
  $$;

-- Begin connecting a store through the platform's OAuth: validates the shop, creates a single-use
-- expiring state bound to the caller and the organization, and returns the URL to send the browser
-- to. The URL template, shop pattern and state lifetime come from the platform's published config.
create or replace function shopsync.begin_install(
  p_organization_id uuid, p_platform text, p_shop text, p_return_to text default null
) returns jsonb
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_user uuid := shopsync_private.require_user();
    v_config jsonb := shopsync_private.platform_config(p_platform);
    v_shop text := lower(btrim(coalesce(p_shop, '')));
    v_ttl integer;
    v_nonce text;
  begin
    if not shopsync.has_org_role(p_organization_id, array['owner', 'admin']) then
      raise exception 'only owners and admins of organization % can connect stores', p_organization_id
        using errcode = '42501';
    end if;
    if v_config is null or v_config ->> 'authorize_url' is null then
      raise exception '% installs are not configured: start shopsync with the platform''s app credentials',
        coalesce(p_platform, 'null') using errcode = '55000';
    end if;
    if length(v_shop) > 255 or v_shop !~ (v_config ->> 'shop_pattern') then
      raise exception 'not a valid % shop: %', p_platform, left(p_shop, 60)
        using errcode = '22023', hint = coalesce(v_config ->> 'shop_hint', '');
    end if;
    if p_return_to is not null and length(p_return_to) > 2000 then
      raise exception 'return_to is too long' using errcode = '22023';
    end if;
    v_ttl := coalesce((v_config ->> 'state_ttl_seconds')::integer, 600);
    v_nonce := shopsync.create_oauth_state(p_platform, p_organization_id, v_user, v_shop, p_return_to, v_ttl);
    perform shopsync_private.log_activity(p_organization_id, null, 'store.install_started',
                                          jsonb_build_object('platform', p_platform, 'shop', v_shop));
    return jsonb_build_object(
      'platform', p_platform, 'shop', v_shop,
      'authorize_url', replace(v_config ->> 'authorize_url', '{shop}', v_shop) || '&state=' || v_nonce,
      'expires_at', now() + make_interval(secs => v_ttl));
  end
  $$;
