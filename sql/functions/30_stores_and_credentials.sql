-- Stores and their credentials: the store lifecycle, sealed credentials and the refresh lease on
-- rotating tokens, store lookups for connectors and the web process, and each platform's published
-- (non-secret) configuration.

-- stores' trigger: updated_at on every change.
create or replace function shopsync_private.touch_updated_at() returns trigger
  language plpgsql set search_path = ''
  as $$ begin new.updated_at := now(); return new; end $$;

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
                                      platform_info, connected_at)
      values (p_organization_id, p_platform, lower(p_shop_key), p_display_name, p_status, p_external_id,
              coalesce(p_platform_info, '{}'::jsonb), now())
      on conflict (organization_id, platform, shop_key) do update
        set status = excluded.status,
            status_reason = null,
            -- a (re)connection: a platform's uninstall from before it no longer applies
            connected_at = case when s.status in ('disconnected', 'uninstalled', 'needs_reauth')
                                     and excluded.status in ('connecting', 'active') then now()
                                else s.connected_at end,
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
    v_was text;
  begin
    select s.status into v_was from shopsync.stores s where s.id = p_store_id for update;
    update shopsync.stores s set status = p_status, status_reason = p_reason
      where s.id = p_store_id returning s.organization_id into v_org;
    if v_org is null then
      raise exception 'unknown store %', p_store_id using errcode = 'P0002';
    end if;
    if p_status in ('needs_reauth', 'uninstalled') and v_was is distinct from p_status then
      perform shopsync_private.emit_event(v_org, p_store_id, 'store.' || p_status, p_status,
                                          jsonb_build_object('reason', left(p_reason, 300)));
    end if;
    if p_status in ('needs_reauth', 'uninstalled', 'disconnected') then
      -- its queued syncs cannot succeed now; they come back with the next schedule after reconnecting
      update shopsync.jobs j set state = 'cancelled', finished_at = now(),
                                 last_error = 'store is ' || p_status
        where j.store_id = p_store_id and j.state = 'queued'
          and j.kind = shopsync_private.platform_job_kind((select s.platform from shopsync.stores s
                                                            where s.id = p_store_id), 'sync');
    end if;
    perform shopsync_private.log_activity(v_org, p_store_id, 'store.status',
                                          jsonb_build_object('status', p_status, 'reason', p_reason));
  end
  $$;

-- The platform says its app was uninstalled, at p_as_of (the event's time): the store is marked, unless it
-- was connected again after that (a delayed or retried uninstall must not touch a newer installation).
-- Returns whether it was marked.
create or replace function shopsync.mark_store_uninstalled(p_store_id uuid, p_reason text,
                                                           p_as_of timestamptz default null) returns boolean
  language plpgsql set search_path = ''
  as $$
  declare
    v_store shopsync.stores;
  begin
    select * into v_store from shopsync.stores s where s.id = p_store_id for update;
    if not found then
      raise exception 'unknown store %', coalesce(p_store_id::text, 'null') using errcode = 'P0002';
    end if;
    if v_store.status in ('uninstalled', 'disconnected')
       or (p_as_of is not null and coalesce(v_store.connected_at, v_store.created_at) > p_as_of) then
      return false;
    end if;
    perform shopsync.set_store_status(p_store_id, 'uninstalled', p_reason);
    return true;
  end
  $$;

create or replace function shopsync.mark_store_needs_reauth(p_store_id uuid, p_reason text) returns void
  language sql set search_path = ''
  as $$ select shopsync.set_store_status(p_store_id, 'needs_reauth', left(p_reason, 500)) $$;

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

-- The end of a disconnect: the store's credentials go, once its disconnect job has removed what it could.
-- Only for a store still disconnected (a store connected again meanwhile keeps its new credentials).
-- Returns whether they were deleted.
create or replace function shopsync.forget_store_credentials(p_store_id uuid, p_note text default null)
  returns boolean
  language plpgsql set search_path = ''
  as $$
  declare
    v_store shopsync.stores;
  begin
    select * into v_store from shopsync.stores s where s.id = p_store_id for update;
    if not found or v_store.status <> 'disconnected' then
      return false;
    end if;
    delete from shopsync_private.store_credentials c where c.store_id = p_store_id;
    if p_note is not null then
      update shopsync.stores s set status_reason = left(p_note, 500) where s.id = p_store_id;
    end if;
    perform shopsync_private.log_activity(v_store.organization_id, p_store_id, 'store.credentials_deleted',
                                          jsonb_build_object('note', left(p_note, 500)));
    return true;
  end
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

-- What a connector's store-level jobs need to know about a store. access_policies: every catalog
-- resource's policy, {"products": "sync", ...}.
create or replace function shopsync.get_store(p_store_id uuid)
  returns table (id uuid, organization_id uuid, platform text, shop_key text, status text, access_policies jsonb,
                 platform_info jsonb)
  language sql stable set search_path = ''
  as $$
    select s.id, s.organization_id, s.platform, s.shop_key, s.status, shopsync_private.store_policies(s.id),
           s.platform_info
      from shopsync.stores s
     where s.id = p_store_id
  $$;

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
