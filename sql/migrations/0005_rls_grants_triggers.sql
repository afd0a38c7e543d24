-- Row-level security on every table, the grants clients get, and the triggers that keep derived
-- rows in step (personal organization on sign-up, sync config per store, job wake-ups).

-- Membership helpers used by every policy. SECURITY DEFINER so a policy on organization_members
-- can consult organization_members without recursing into its own policy.
create or replace function shopsync.is_member(p_organization_id uuid) returns boolean
  language sql stable security definer set search_path = ''
  as $$
    select exists (select 1 from shopsync.organization_members m
                   where m.organization_id = p_organization_id and m.user_id = auth.uid())
  $$;

create or replace function shopsync.has_org_role(p_organization_id uuid, p_roles text[]) returns boolean
  language sql stable security definer set search_path = ''
  as $$
    select exists (select 1 from shopsync.organization_members m
                   where m.organization_id = p_organization_id and m.user_id = auth.uid()
                     and m.role = any (p_roles))
  $$;

revoke execute on function shopsync.is_member(uuid), shopsync.has_org_role(uuid, text[]) from public, anon;
grant execute on function shopsync.is_member(uuid), shopsync.has_org_role(uuid, text[]) to authenticated, service_role;

-- A personal organization for every user who signs up.
create or replace function shopsync_private.on_auth_user_created() returns trigger
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_org uuid;
  begin
    insert into shopsync.organizations (name, personal, created_by)
      values (left(coalesce(nullif(btrim(new.raw_user_meta_data ->> 'full_name'), ''), nullif(btrim(new.email), ''),
                            'Personal'), 200),
              true, new.id)
      returning id into v_org;
    insert into shopsync.organization_members (organization_id, user_id, role) values (v_org, new.id, 'owner');
    return new;
  exception when others then
    -- never block a sign-up on our account: the user can create an organization later
    raise warning 'shopsync: no personal organization for user %: %', new.id, sqlerrm;
    return new;
  end
  $$;
create trigger shopsync_on_auth_user_created after insert on auth.users
  for each row execute function shopsync_private.on_auth_user_created();

-- Users who signed up before shopsync was installed get their personal organization now.
do $$
declare
  v_user record;
  v_org uuid;
begin
  for v_user in select u.id, u.email, u.raw_user_meta_data from auth.users u
                 where not exists (select 1 from shopsync.organization_members m where m.user_id = u.id) loop
    insert into shopsync.organizations (name, personal, created_by)
      values (left(coalesce(nullif(btrim(v_user.raw_user_meta_data ->> 'full_name'), ''),
                            nullif(btrim(v_user.email), ''), 'Personal'), 200), true, v_user.id)
      returning id into v_org;
    insert into shopsync.organization_members (organization_id, user_id, role) values (v_org, v_user.id, 'owner');
  end loop;
end
$$;

create or replace function shopsync_private.frequency_interval(p_frequency text) returns interval
  language sql immutable
  as $$
    select case p_frequency
      when '15min' then interval '15 minutes'
      when '30min' then interval '30 minutes'
      when 'hourly' then interval '1 hour'
      when '6hours' then interval '6 hours'
      when 'daily' then interval '1 day'
    end
  $$;

-- Every store gets its sync config; next_sync_at always follows enabled + frequency.
create or replace function shopsync_private.on_store_created() returns trigger
  language plpgsql security definer set search_path = ''
  as $$
  begin
    insert into shopsync.store_sync_config (store_id, organization_id) values (new.id, new.organization_id);
    return new;
  end
  $$;
create trigger shopsync_on_store_created after insert on shopsync.stores
  for each row execute function shopsync_private.on_store_created();

create or replace function shopsync_private.touch_updated_at() returns trigger
  language plpgsql
  as $$ begin new.updated_at := now(); return new; end $$;
create trigger shopsync_stores_touch before update on shopsync.stores
  for each row execute function shopsync_private.touch_updated_at();

create or replace function shopsync_private.sync_config_schedule() returns trigger
  language plpgsql
  as $$
  begin
    new.updated_at := now();
    if not new.enabled then
      new.next_sync_at := null;
    elsif tg_op = 'INSERT' or new.next_sync_at is null or new.frequency is distinct from old.frequency
          or new.enabled is distinct from old.enabled then
      new.next_sync_at := greatest(now(), coalesce(new.last_sync_enqueued_at, now())
                                           + shopsync_private.frequency_interval(new.frequency));
      if tg_op = 'INSERT' then
        new.next_sync_at := now();   -- a new store syncs at once
      end if;
    end if;
    return new;
  end
  $$;
create trigger shopsync_sync_config_schedule before insert or update on shopsync.store_sync_config
  for each row execute function shopsync_private.sync_config_schedule();

-- One wake-up per enqueue statement: NOTIFY for LISTENing workers, and a Realtime broadcast on
-- Supabase (realtime.send exists there) for workers on the supabase path.
create or replace function shopsync_private.wake_workers() returns void
  language plpgsql security definer set search_path = ''
  as $$
  begin
    perform pg_notify('shopsync_jobs', '');
    if to_regprocedure('realtime.send(jsonb,text,text,boolean)') is not null then
      perform realtime.send('{}'::jsonb, 'enqueued', 'shopsync_jobs', false);
    end if;
  end
  $$;

create or replace function shopsync_private.notify_jobs_enqueued() returns trigger
  language plpgsql security definer set search_path = ''
  as $$
  begin
    perform shopsync_private.wake_workers();
    return null;
  end
  $$;
create trigger shopsync_jobs_enqueued after insert on shopsync.jobs
  for each statement execute function shopsync_private.notify_jobs_enqueued();

-- ---- RLS ----------------------------------------------------------------------------------------
do $$
declare
  t record;
begin
  for t in select schemaname, tablename from pg_tables where schemaname in ('shopsync', 'shopsync_private') loop
    execute format('alter table %I.%I enable row level security', t.schemaname, t.tablename);
  end loop;
end
$$;

create policy organizations_select on shopsync.organizations for select to authenticated
  using (shopsync.is_member(id));
create policy organization_members_select on shopsync.organization_members for select to authenticated
  using (shopsync.is_member(organization_id));

-- Tenant tables: members read their organization's rows; all writes go through RPCs or the worker.
do $$
declare
  t text;
begin
  foreach t in array array['stores', 'store_sync_config', 'jobs', 'sync_runs', 'sync_state',
                           'activity_log', 'products', 'product_variants', 'inventory_locations',
                           'inventory_levels', 'customers', 'orders', 'order_line_items',
                           'order_fulfillments'] loop
    execute format('create policy %I on shopsync.%I for select to authenticated using (shopsync.is_member(organization_id))',
                   t || '_member_select', t);
  end loop;
end
$$;
-- GDPR requests and raw webhook deliveries (which carry redact payloads) name data subjects:
-- owners and admins only.
create policy webhook_inbox_admin_select on shopsync.webhook_inbox for select to authenticated
  using (shopsync.has_org_role(organization_id, array['owner', 'admin']));
create policy gdpr_requests_admin_select on shopsync.gdpr_requests for select to authenticated
  using (shopsync.has_org_role(organization_id, array['owner', 'admin']));

-- ---- grants -------------------------------------------------------------------------------------
revoke all on all tables in schema shopsync from public, anon, authenticated;
revoke all on all tables in schema shopsync_private from public, anon, authenticated;
grant select on all tables in schema shopsync to authenticated;
grant all on all tables in schema shopsync, shopsync_private to service_role;
grant usage, select on all sequences in schema shopsync to service_role;
-- Supabase grants new objects to anon/authenticated by default privileges; take that back here.
alter default privileges in schema shopsync revoke all on tables from anon;
alter default privileges in schema shopsync revoke execute on functions from public, anon;
alter default privileges in schema shopsync_private revoke all on tables from public, anon, authenticated;
alter default privileges in schema shopsync_private revoke execute on functions from public, anon, authenticated;

-- Realtime: let the frontend watch stores (sync status) and sync runs change, where Supabase
-- Realtime's publication exists.
do $$
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    alter publication supabase_realtime add table shopsync.stores, shopsync.sync_runs;
  else
    raise notice 'supabase_realtime publication not found: skipped (frontend Realtime for stores/sync_runs)';
  end if;
end
$$;
