-- Who the caller is and what they may see: membership helpers for policies and RPCs, and the activity
-- log every change writes to.

-- Membership helpers used by policies and RPCs. SECURITY DEFINER so a policy on organization_members
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

-- The caller's organizations (with one of p_roles, when given), as one array. Every policy asks
--   organization_id = any ((select shopsync.my_organization_ids())::uuid[])
-- an uncorrelated sub-select, so PostgreSQL runs it once per statement (an InitPlan, never per row) and the
-- rows are matched with plain, leakproof equality that an index can serve. PL/pgSQL so its query plan is
-- cached (a SQL function with a fixed search_path is planned again on every call). SECURITY DEFINER for the
-- same reason as is_member.
create or replace function shopsync.my_organization_ids(p_roles text[] default null) returns uuid[]
  language plpgsql stable security definer set search_path = ''
  as $$
  begin
    return array(select m.organization_id from shopsync.organization_members m
                  where m.user_id = auth.uid() and (p_roles is null or m.role = any (p_roles)));
  end
  $$;

create or replace function shopsync_private.require_user() returns uuid
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_uid uuid := auth.uid();
  begin
    if v_uid is null then
      raise exception 'not authenticated' using errcode = '42501';
    end if;
    return v_uid;
  end
  $$;

-- The store, if the caller is a member of its organization with one of p_roles.
create or replace function shopsync_private.store_for_caller(p_store_id uuid, p_roles text[])
  returns shopsync.stores
  language plpgsql stable security definer set search_path = ''
  as $$
  declare
    v_store shopsync.stores;
    v_role text;
  begin
    perform shopsync_private.require_user();
    select s.* into v_store from shopsync.stores s where s.id = p_store_id;
    if found then
      select m.role into v_role from shopsync.organization_members m
        where m.organization_id = v_store.organization_id and m.user_id = auth.uid();
    end if;
    if v_role is null then
      raise exception 'unknown store %', coalesce(p_store_id::text, 'null') using errcode = 'P0002';
    end if;
    if not v_role = any (p_roles) then
      raise exception 'your role % in this organization cannot do this (needs %)', v_role,
        array_to_string(p_roles, ' or ') using errcode = '42501';
    end if;
    return v_store;
  end
  $$;

create or replace function shopsync_private.log_activity(
  p_organization_id uuid, p_store_id uuid, p_action text, p_details jsonb default '{}'::jsonb
) returns void
  language sql security definer set search_path = ''
  as $$
    insert into shopsync.activity_log (organization_id, store_id, actor_user_id, action, details)
    values (p_organization_id, p_store_id, auth.uid(), p_action, coalesce(p_details, '{}'::jsonb))
  $$;
