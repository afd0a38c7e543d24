-- The synced-resource catalog (shopsync_private.synced_resources / synced_tables, migration 0009): how
-- the rest of the SQL reads it, and the check every migrate runs so a wrong entry fails loudly here
-- instead of a table silently escaping GDPR redaction, reconciliation or an access policy.

-- One catalog entry; P0002-free: null when the table is not a synced table.
create or replace function shopsync_private.synced_table(p_table text) returns shopsync_private.synced_tables
  language plpgsql stable set search_path = ''   -- plpgsql: its plan is cached (every write asks)
  as $$
  declare
    v_entry shopsync_private.synced_tables;
  begin
    select * into v_entry from shopsync_private.synced_tables t where t.table_name = p_table;
    return v_entry;
  end
  $$;

create or replace function shopsync_private.synced_table_key(p_table text) returns text[]
  language plpgsql stable set search_path = ''
  as $$ begin return (shopsync_private.synced_table(p_table)).key_columns; end $$;

-- The catalog's resources in their display order (products, customers, orders, ...).
create or replace function shopsync_private.catalog_resources() returns text[]
  language plpgsql stable set search_path = ''
  as $$
  begin
    return (select coalesce(array_agg(r.resource order by r.position), '{}') from shopsync_private.synced_resources r);
  end
  $$;

-- The resources as a reader would list them: "products, customers or orders".
create or replace function shopsync_private.catalog_resources_text() returns text
  language sql stable set search_path = ''
  as $$
    select case when cardinality(r) <= 1 then coalesce(r[1], 'none')
                else array_to_string(r[1:cardinality(r) - 1], ', ') || ' or ' || r[cardinality(r)] end
      from shopsync_private.catalog_resources() r
  $$;

create or replace function shopsync_private.resource_tables(p_resource text) returns text[]
  language sql stable set search_path = ''
  as $$
    select coalesce(array_agg(t.table_name order by t.position), '{}')
      from shopsync_private.synced_tables t where t.resource = p_resource
  $$;

create or replace function shopsync_private.assert_resource(p_resource text) returns void
  language plpgsql stable set search_path = ''
  as $$
  begin
    if p_resource is null
       or not exists (select 1 from shopsync_private.synced_resources r where r.resource = p_resource) then
      raise exception 'unknown resource %: expected %', coalesce(p_resource, 'null'),
        shopsync_private.catalog_resources_text() using errcode = '22023';
    end if;
  end
  $$;

-- A store's access policy for a resource: what was set, else the resource's default. (These lookups are
-- PL/pgSQL, not SQL functions: with a fixed search_path a SQL function is planned on every call, and
-- they sit on the webhook and sync paths.)
create or replace function shopsync_private.store_policy(p_store_id uuid, p_resource text) returns text
  language plpgsql stable set search_path = ''
  as $$
  begin
    return (select coalesce(p.policy, r.default_policy)
              from shopsync_private.synced_resources r
              left join shopsync.store_access_policies p on p.store_id = p_store_id and p.resource = r.resource
             where r.resource = p_resource);
  end
  $$;

-- Every resource's policy for a store, as {"products": "sync", "customers": "api_only", ...}.
create or replace function shopsync_private.store_policies(p_store_id uuid) returns jsonb
  language plpgsql stable set search_path = ''
  as $$
  begin
    return (select coalesce(jsonb_object_agg(r.resource, coalesce(p.policy, r.default_policy) order by r.position),
                            '{}')
              from shopsync_private.synced_resources r
              left join shopsync.store_access_policies p on p.store_id = p_store_id and p.resource = r.resource);
  end
  $$;

-- The catalog for shopsync's processes (connectors are checked against it at start) and SQL admins.
create or replace function shopsync.synced_catalog()
  returns table (table_name text, resource text, key_columns text[], version_column text, soft_delete boolean,
                 parent_table text, parent_column text, reconcile boolean, subject_link text, redaction text,
                 personal_columns text[], description text, observed_column text)
  language sql stable set search_path = ''
  as $$
    select t.table_name, t.resource, t.key_columns, t.version_column, t.soft_delete, t.parent_table, t.parent_column,
           t.reconcile, t.subject_link, t.redaction, t.personal_columns, t.description, t.observed_column
      from shopsync_private.synced_tables t join shopsync_private.synced_resources r on r.resource = t.resource
     order by r.position, t.position
  $$;

-- Live rows of a store per synced table, {"products": 50, ...}: the statistics view's counts. Generated
-- from the catalog on every migrate (static SQL: no catalog read at call time, so members may call it).
-- Security invoker: a member counts only what RLS lets them read.
create or replace function shopsync_private.define_record_counts() returns void
  language plpgsql set search_path = ''
  as $$
  declare
    v_body text;
  begin
    select 'select jsonb_build_object(' || coalesce(string_agg(format(
             '%L, (select count(*) from shopsync.%I t where t.store_id = p_store_id%s)', t.table_name, t.table_name,
             case when exists (select 1 from pg_attribute a
                                where a.attrelid = format('shopsync.%I', t.table_name)::regclass
                                  and a.attname = 'deleted_at' and not a.attisdropped)
                  then ' and t.deleted_at is null' else '' end), ', ' order by t.position), '') || ')'
      into v_body
      from shopsync_private.synced_tables t;
    execute format('create or replace function shopsync.synced_record_counts(p_store_id uuid) returns jsonb
                      language sql stable set search_path = %L as %L', '', v_body);
  end
  $$;

-- What every entry must be true to: the table exists in shopsync with the columns every synced table
-- has, and every column the entry names exists with the right type. Raises 22023 naming the entry and
-- what to fix. Run at the start of every migrate's functions phase (below).
create or replace function shopsync_private.check_catalog() returns void
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_entry shopsync_private.synced_tables;
    v_rel regclass;
    v_cols jsonb;
    v_col text;
    v_pk text[];
    v_problems text[] := '{}';
  begin
    for v_entry in select * from shopsync_private.synced_tables t order by t.position loop
      v_rel := to_regclass(format('shopsync.%I', v_entry.table_name));
      if v_rel is null then
        v_problems := v_problems || format('%s: no table shopsync.%s', v_entry.table_name, v_entry.table_name);
        continue;
      end if;
      select jsonb_object_agg(a.attname, format_type(a.atttypid, a.atttypmod)) into v_cols
        from pg_attribute a where a.attrelid = v_rel and a.attnum > 0 and not a.attisdropped;
      foreach v_col in array array['store_id', 'organization_id', 'raw', 'synced_at'] loop
        if not v_cols ? v_col then
          v_problems := v_problems || format('%s: every synced table needs a %s column', v_entry.table_name, v_col);
        end if;
      end loop;
      select array_agg(a.attname::text order by k.ord) into v_pk
        from pg_index i cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
        join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
       where i.indrelid = v_rel and i.indisprimary;
      if v_pk is distinct from v_entry.key_columns then
        v_problems := v_problems || format('%s: key_columns %s must be the primary key (%s)', v_entry.table_name,
                                           v_entry.key_columns, coalesce(v_pk::text, 'none'));
      end if;
      if v_entry.version_column is not null
         and v_cols ->> v_entry.version_column is distinct from 'timestamp with time zone' then
        v_problems := v_problems || format('%s: version_column %s must be a timestamptz column', v_entry.table_name,
                                           v_entry.version_column);
      end if;
      if v_entry.soft_delete and v_cols ->> 'deleted_at' is distinct from 'timestamp with time zone' then
        v_problems := v_problems || format('%s: soft_delete needs a deleted_at timestamptz column', v_entry.table_name);
      end if;
      if v_entry.soft_delete and v_entry.version_column is null then
        v_problems := v_problems || format('%s: soft_delete needs a version_column (deletes are versioned too)',
                                           v_entry.table_name);
      end if;
      foreach v_col in array array_remove(array[v_entry.parent_column, v_entry.subject_column], null)
                             || v_entry.personal_columns loop
        if not v_cols ? v_col then
          v_problems := v_problems || format('%s: no column %s', v_entry.table_name, v_col);
        end if;
      end loop;
      if v_entry.parent_table is not null
         and not (select t.soft_delete from shopsync_private.synced_tables t where t.table_name = v_entry.parent_table) then
        v_problems := v_problems || format('%s: parent_table %s is not soft-deleted, so it never takes children along',
                                           v_entry.table_name, v_entry.parent_table);
      end if;
      if v_entry.redaction = 'delete' and not 'id' = any (v_entry.key_columns) then
        v_problems := v_problems || format('%s: redaction delete needs an id key column (redacted ids are remembered)',
                                           v_entry.table_name);
      end if;
      if v_entry.parent_table is not null and not v_entry.soft_delete then
        v_problems := v_problems || format('%s: a table with a parent_table must be soft_delete', v_entry.table_name);
      end if;
    end loop;
    if cardinality(v_problems) > 0 then
      raise exception 'the synced-resource catalog is wrong: %', array_to_string(v_problems, '; ')
        using errcode = '22023', hint = 'fix the entries in shopsync_private.synced_tables (see docs/database.md)';
    end if;
  end
  $$;

select shopsync_private.check_catalog();
select shopsync_private.define_record_counts();
