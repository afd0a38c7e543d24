-- Who may read which table: row level security, its policies and the table grants, generated on every
-- migrate from one list — every catalog table (so a synced table added later is covered by
-- construction) plus the core tables below. Members of an organization read its rows; rows that name
-- data subjects (GDPR requests, raw webhook deliveries) only its owners and admins. Clients write
-- nothing directly: every change goes through an RPC or the worker.
--
-- Every policy has one form: organization_id = any ((select shopsync.my_organization_ids(...))::uuid[]).
-- The sub-select is evaluated once per statement, not once per row, and the comparison is leakproof, so a
-- member's query uses the same indexes as the service role's (see docs/database.md, "Reading under RLS").

create or replace function shopsync_private.define_access() returns void
  language plpgsql set search_path = ''
  as $$
  declare
    v_table record;
    v_name text;
    v_using text;
    v_comment text;
  begin
    for v_table in
      select t.table_name, t.table_name || '_member_select' as policy, 'organization_id' as org_column,
             null::text[] as roles
        from shopsync_private.synced_tables t
      union all
      select c.table_name, c.policy, c.org_column, c.roles from (values
        ('organizations', 'organizations_select', 'id', null::text[]),
        ('organization_members', 'organization_members_select', 'organization_id', null),
        ('stores', 'stores_member_select', 'organization_id', null),
        ('store_sync_config', 'store_sync_config_member_select', 'organization_id', null),
        ('store_access_policies', 'store_access_policies_member_select', 'organization_id', null),
        ('jobs', 'jobs_member_select', 'organization_id', null),
        ('sync_runs', 'sync_runs_member_select', 'organization_id', null),
        ('sync_state', 'sync_state_member_select', 'organization_id', null),
        ('activity_log', 'activity_log_member_select', 'organization_id', null),
        ('events', 'events_member_select', 'organization_id', null),
        ('lookup_audit', 'lookup_audit_member_select', 'organization_id', null),
        ('product_links', 'product_links_member_select', 'organization_id', null),
        ('product_link_log', 'product_link_log_member_select', 'organization_id', null),
        ('notification_channels', 'notification_channels_member_select', 'organization_id', null),
        ('notification_rules', 'notification_rules_member_select', 'organization_id', null),
        ('notification_settings', 'notification_settings_member_select', 'organization_id', null),
        ('notifications', 'notifications_member_select', 'organization_id', null),
        ('notification_events', 'notification_events_member_select', 'organization_id', null),
        ('webhook_inbox', 'webhook_inbox_admin_select', 'organization_id', array['owner', 'admin']),
        ('gdpr_requests', 'gdpr_requests_admin_select', 'organization_id', array['owner', 'admin']))
        as c(table_name, policy, org_column, roles)
    loop
      v_name := v_table.policy;
      -- the cast keeps "= any" an array comparison (not "any (subquery)"), whose sub-select is an InitPlan
      v_using := format('%I = any ((select shopsync.my_organization_ids(%s))::uuid[])', v_table.org_column,
                        coalesce(quote_literal(v_table.roles::text) || '::text[]', ''));
      v_comment := 'shopsync: select to authenticated using (' || v_using || ')';
      execute format('alter table shopsync.%I enable row level security', v_table.table_name);
      execute format('grant select on shopsync.%I to authenticated', v_table.table_name);
      -- recreated only when it differs: a policy change takes a lock on a table apps are reading
      if (select obj_description(p.oid, 'pg_policy') from pg_policy p
           where p.polrelid = format('shopsync.%I', v_table.table_name)::regclass and p.polname = v_name)
         is distinct from v_comment then
        if exists (select 1 from pg_policy p where p.polname = v_name
                     and p.polrelid = format('shopsync.%I', v_table.table_name)::regclass) then
          execute format('drop policy %I on shopsync.%I', v_name, v_table.table_name);
        end if;
        execute format('create policy %I on shopsync.%I for select to authenticated using (%s)', v_name,
                       v_table.table_name, v_using);
        execute format('comment on policy %I on shopsync.%I is %L', v_name, v_table.table_name, v_comment);
      end if;
    end loop;
    -- every table of both schemas: RLS on (no policy = no client access), the service role may do anything
    for v_table in select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                    where n.nspname in ('shopsync', 'shopsync_private') and c.relkind in ('r', 'p') loop
      execute format('alter table %I.%I enable row level security', v_table.nspname, v_table.relname);
      execute format('grant all on %I.%I to service_role', v_table.nspname, v_table.relname);
    end loop;
  end
  $$;

select shopsync_private.define_access();
