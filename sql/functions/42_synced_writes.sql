-- Writes into the canonical synced tables. Every path (COPY on the direct path, JSON through RPC on
-- the supabase path) stages rows in a temp table shaped like the target, then merge_staged() applies
-- them in one statement with the staleness guard: a stored row is only overwritten by data at least
-- as new by the platform's own updated_at. A tie overwrites, so of two deliveries of the same
-- version the later one wins instead of being dropped — unless nothing differs, then nothing is written.

-- The merge statement for one synced table. Reading from pg_temp.<p_stage> (the COPY path) it is run
-- with EXECUTE, planned once per batch of thousands of rows. Reading from a JSON array (p_rows) it is
-- compiled into its own function (define_row_mergers) so that its plan is cached per session: small
-- writes (a webhook's product and variants) would otherwise spend more time planning than merging.
-- One row per key (the newest when a page repeats an object), in key order (fewer deadlocks against
-- concurrent writers); organization_id always comes from the store, never the caller. Columns named in
-- p_keep (an expression: a text[] literal for COPY, p_keep for JSON) keep their stored value on update:
-- the source did not send them (e.g. totals a webhook payload lacks).
create or replace function shopsync_private.merge_statement(p_table text, p_source text, p_keep text) returns text
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_entry shopsync_private.synced_tables := shopsync_private.synced_table(p_table);
    v_key text[] := v_entry.key_columns;
    v_version text := v_entry.version_column;     -- the staleness guard's column (catalog), or none
    v_observed text := v_entry.observed_column;   -- its tie-breaker: when the platform's state was observed
    v_cols text[];
    v_update text[];     -- the non-key columns an update may change (organization_id never changes)
    v_compared text[];   -- the columns whose change makes a row worth rewriting
  begin
    select array_agg(a.attname::text order by a.attnum) into v_cols
      from pg_attribute a
     where a.attrelid = format('shopsync.%I', p_table)::regclass and a.attnum > 0 and not a.attisdropped
       and a.attname <> 'synced_at' and a.attgenerated = '';   -- generated columns follow their sources
    v_update := array(select c from unnest(v_cols) c where c <> all (v_key));
    v_compared := array(select c from unnest(v_update) c
                         where c <> 'organization_id' and c is distinct from v_observed);
    return format(
      'with merged as (
         insert into shopsync.%1$I as t (%2$s, synced_at)
         select distinct on (%8$s) %6$s, now()
           from %3$s st join shopsync.stores s on s.id = st.store_id %10$s
          order by %8$s %7$s
         on conflict (%4$s) do update set %5$s, synced_at = now() %9$s
         returning (xmax = 0) as inserted)
       select jsonb_build_object(''inserted'', count(*) filter (where inserted),
                                 ''updated'', count(*) filter (where not inserted)) from merged',
      p_table,
      (select string_agg(format('%I', c), ', ') from unnest(v_cols) c),
      p_source,
      (select string_agg(format('%I', c), ', ') from unnest(v_key) c),
      (select string_agg(format('%1$I = case when %2$L = any (%3$s) then t.%1$I else excluded.%1$I end', c, c,
                                p_keep), ', ') from unnest(v_update) c),
      (select string_agg(case c when 'organization_id' then 's.organization_id' else format('st.%I', c) end, ', ')
         from unnest(v_cols) c),
      case when v_version is not null then format(', st.%I desc nulls last', v_version) else '' end
        || case when v_observed is not null then format(', st.%I desc nulls last', v_observed) else '' end,
      (select string_agg(format('st.%I', c), ', ') from unnest(v_key) c),
      -- the staleness guard: never overwrite newer data with older; within one updated_at (platforms give
      -- seconds), the state observed later wins (a webhook's event time, a page's fetch time)
      case when v_version is not null then
        format('where (t.%1$I is null or excluded.%1$I is null or t.%1$I < excluded.%1$I
                       or (t.%1$I = excluded.%1$I%2$s))', v_version,
               case when v_observed is not null then
                 format(' and (t.%1$I is null or excluded.%1$I is null or t.%1$I <= excluded.%1$I)', v_observed)
               else '' end)
      else 'where true' end
      -- a row redacted for GDPR stays redacted: only data the platform changed after the redaction comes in
      || case when 'redacted_at' = any (v_cols) and v_version is not null then
           format(' and (t.redacted_at is null or excluded.%I > t.redacted_at)', v_version)
         when 'redacted_at' = any (v_cols) then ' and t.redacted_at is null' else '' end
      -- an unchanged row is not rewritten (no WAL, no Realtime event; counted as skipped)
      || format(' and (%s) is distinct from (%s)',
                (select string_agg(format('t.%I', c), ', ') from unnest(v_compared) c),
                (select string_agg(format('case when %2$L = any (%3$s) then t.%1$I else excluded.%1$I end', c, c,
                                          p_keep), ', ')
                   from unnest(v_compared) c)),
      -- rows a redaction deleted stay out, unless the platform changed them after the redaction
      case when v_entry.redaction = 'delete' then
        format('where not exists (select 1 from shopsync_private.redacted_rows r
                                   where r.store_id = st.store_id and r.table_name = %L and r.row_id = st.id%s)',
               p_table, case when v_version is not null then
                          format(' and (st.%1$I is null or st.%1$I <= r.redacted_at)', v_version) else '' end)
      else '' end);
  end
  $$;

-- One function per catalog table, shopsync_private.merge_json_<table>(p_rows jsonb, p_keep text[]),
-- holding that table's merge of a JSON array as static SQL. Every migrate re-applies this file, so
-- the functions always match the catalog and the tables' current columns.
create or replace function shopsync_private.define_row_mergers() returns void
  language plpgsql set search_path = ''
  as $$
  declare
    v_table text;
  begin
    for v_table in select t.table_name from shopsync_private.synced_tables t order by t.position loop
      execute format(
        'create or replace function shopsync_private.%I(p_rows jsonb, p_keep text[]) returns jsonb
           language plpgsql set search_path = %L
           as %L',
        'merge_json_' || v_table, '',
        format(E'declare v_result jsonb;\nbegin\n%s into v_result;\nreturn v_result;\nend',
               shopsync_private.merge_statement(v_table,
                 format('jsonb_populate_recordset(null::shopsync.%I, p_rows)', v_table), 'p_keep')));
    end loop;
  end
  $$;

select shopsync_private.define_row_mergers();

-- Merge rows into shopsync.<p_table>: from pg_temp.<p_stage> (the COPY path), or from p_rows, a JSON
-- array of row objects, read in place (small writes: no temp table to create and drop).
-- Returns {"inserted", "updated", "skipped"}. p_keep names columns the source did not send: an update
-- keeps their stored values instead of nulling them.
-- Writes of synced rows and GDPR redactions of one store are ordered: every write transaction holds this
-- lock shared, a redaction holds it exclusively. So a redaction waits for writes under way (and then sees
-- their rows), and a write that comes after it sees what it redacted (and its tombstones) — neither can
-- slip a row past the other. Transaction-scoped; keyed by the store.
create or replace function shopsync_private.lock_store_writes(p_store_id uuid, p_exclusive boolean default false)
  returns void
  language plpgsql set search_path = ''
  as $$
  begin
    if p_store_id is null then
      return;
    elsif p_exclusive then
      perform pg_advisory_xact_lock(1936224115, hashtext(p_store_id::text));     -- 1936224115: 'shop' as int4
    else
      perform pg_advisory_xact_lock_shared(1936224115, hashtext(p_store_id::text));
    end if;
  end
  $$;

create or replace function shopsync_private.merge_staged(p_table text, p_stage text, p_job_id bigint default null,
                                                         p_worker text default null, p_keep text[] default null,
                                                         p_rows jsonb default null)
  returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_staged bigint;
    v_result jsonb;
    v_store uuid;
  begin
    if (shopsync_private.synced_table(p_table)).table_name is null then
      raise exception 'not a synced table: %', coalesce(p_table, 'null') using errcode = '22023';
    end if;
    perform shopsync_private.assert_job_held(p_job_id, p_worker);
    if p_rows is null then
      execute format('select store_id from pg_temp.%I limit 1', p_stage) into v_store;
      perform shopsync_private.lock_store_writes(v_store);
      execute format('select count(*) from pg_temp.%I', p_stage) into v_staged;
      execute shopsync_private.merge_statement(p_table, format('pg_temp.%I', p_stage),
                                               quote_literal(coalesce(p_keep, '{}')) || '::text[]')
        into v_result;
    else
      perform shopsync_private.lock_store_writes((p_rows -> 0 ->> 'store_id')::uuid);
      v_staged := jsonb_array_length(p_rows);
      execute format('select shopsync_private.%I($1, $2)', 'merge_json_' || p_table) into v_result
        using p_rows, p_keep;
    end if;
    return v_result || jsonb_build_object(
      'skipped', v_staged - (v_result ->> 'inserted')::bigint - (v_result ->> 'updated')::bigint);
  end
  $$;

-- The supabase path: rows as a JSON array of objects with the table's columns.
create or replace function shopsync.upsert_synced(p_table text, p_rows jsonb, p_job_id bigint default null,
                                                  p_worker text default null, p_keep text[] default null)
  returns jsonb
  language plpgsql set search_path = ''
  as $$
  begin
    if (shopsync_private.synced_table(p_table)).table_name is null then
      raise exception 'not a synced table: %', coalesce(p_table, 'null') using errcode = '22023';
    end if;
    if jsonb_typeof(p_rows) is distinct from 'array' then
      raise exception 'rows must be a JSON array of objects' using errcode = '22023';
    end if;
    -- missing columns come through as null and fail in the merge with the real table's error
    return shopsync_private.merge_staged(p_table, null, p_job_id, p_worker, p_keep, p_rows);
  end
  $$;

-- Soft delete, guarded like writes: rows of p_store_id whose p_column is in p_ids. The delete moves the
-- version forward, so an older page fetched before it cannot revive the row, and a delete older than
-- the stored version does not hide a newer re-creation.
create or replace function shopsync_private.soft_delete(p_table text, p_column text, p_store_id uuid, p_ids text[],
                                                        p_deleted_at timestamptz) returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_version text := (shopsync_private.synced_table(p_table)).version_column;
    v_count integer;
  begin
    execute format('update shopsync.%1$I t set deleted_at = $3, %3$I = greatest(t.%3$I, $3)
                     where t.store_id = $1 and t.%2$I = any ($2) and t.deleted_at is null
                       and (t.%3$I is null or t.%3$I <= $3)', p_table, p_column, v_version)
      using p_store_id, p_ids, p_deleted_at;
    get diagnostics v_count = row_count;
    return v_count;
  end
  $$;

-- Deletes the platform reported (delete webhooks, reconciliation).
create or replace function shopsync.mark_synced_deleted(
  p_table text, p_store_id uuid, p_ids text[], p_deleted_at timestamptz default now(), p_job_id bigint default null,
  p_worker text default null
) returns integer
  language plpgsql set search_path = ''
  as $$
  begin
    if not coalesce((shopsync_private.synced_table(p_table)).soft_delete, false) then
      raise exception 'not a soft-deletable synced table: %', coalesce(p_table, 'null') using errcode = '22023';
    end if;
    perform shopsync_private.assert_job_held(p_job_id, p_worker);
    return shopsync_private.soft_delete(p_table, 'id', p_store_id, p_ids, p_deleted_at);
  end
  $$;

-- A parent deleted at the source takes its children with it (a products/delete webhook carries only
-- the product id; its variants would otherwise stay live until the next reconciliation). p_table is
-- the child table; its catalog entry names the parent column.
create or replace function shopsync.mark_synced_children_deleted(
  p_table text, p_store_id uuid, p_parent_ids text[], p_deleted_at timestamptz default now(),
  p_job_id bigint default null, p_worker text default null
) returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_parent text := (shopsync_private.synced_table(p_table)).parent_column;
  begin
    if v_parent is null then
      raise exception 'no parent to delete children of in %', coalesce(p_table, 'null') using errcode = '22023';
    end if;
    perform shopsync_private.assert_job_held(p_job_id, p_worker);
    return shopsync_private.soft_delete(p_table, v_parent, p_store_id, p_parent_ids, p_deleted_at);
  end
  $$;

-- Everything one change (typically a webhook delivery) does to the synced tables, in one transaction
-- and one round trip (p_observed_at: when the platform's state was observed, stamped on every row):
-- guarded upserts per table (p_keep: columns the source did not send), guarded
-- soft deletes (a deleted row takes its catalog children: a product its variants), and, with p_inbox_id, the inbox row marked
-- processed with it. p_writes {table: [rows]}, p_deletes {table: [ids]}, p_keep {table: [columns]}.
create or replace function shopsync.apply_synced_changes(
  p_store_id uuid, p_writes jsonb default '{}'::jsonb, p_deletes jsonb default '{}'::jsonb,
  p_deleted_at timestamptz default null, p_keep jsonb default '{}'::jsonb, p_job_id bigint default null,
  p_worker text default null, p_inbox_id bigint default null, p_observed_at timestamptz default null
) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_table text;
    v_value jsonb;
    v_ids text[];
    v_child text;
    v_writes jsonb := '{}'::jsonb;
    v_deleted integer := 0;
  begin
    for v_table, v_value in select e.key, e.value from jsonb_each(coalesce(p_writes, '{}'::jsonb)) e loop
      if p_observed_at is not null and jsonb_typeof(v_value) = 'array' then
        -- when the platform's state in these rows was observed: the tie-breaker within one updated_at
        v_value := (select coalesce(jsonb_agg(r || jsonb_build_object('source_observed_at', p_observed_at)), '[]')
                      from jsonb_array_elements(v_value) r);
      end if;
      v_writes := v_writes || jsonb_build_object(v_table, shopsync.upsert_synced(
        v_table, v_value, p_job_id, p_worker,
        array(select jsonb_array_elements_text(coalesce(p_keep -> v_table, '[]'::jsonb)))));
    end loop;
    for v_table, v_value in select e.key, e.value from jsonb_each(coalesce(p_deletes, '{}'::jsonb)) e loop
      v_ids := array(select jsonb_array_elements_text(v_value));
      v_deleted := v_deleted + shopsync.mark_synced_deleted(v_table, p_store_id, v_ids,
                                                            coalesce(p_deleted_at, now()), p_job_id, p_worker);
      for v_child in select t.table_name from shopsync_private.synced_tables t where t.parent_table = v_table loop
        v_deleted := v_deleted + shopsync.mark_synced_children_deleted(v_child, p_store_id, v_ids,
                                                                       coalesce(p_deleted_at, now()), p_job_id,
                                                                       p_worker);
      end loop;
    end loop;
    if p_inbox_id is not null then
      perform shopsync.finish_webhook(p_inbox_id, 'processed');
    end if;
    return jsonb_build_object('writes', v_writes, 'deleted', v_deleted);
  end
  $$;

-- Reconciliation: a connector compares the ids the platform still has with the live ids stored here
-- and soft-deletes the difference (mark_synced_deleted) in the catalog's reconcile tables. Keyset-paged
-- by id so a 100k-row table is read in bounded pages without OFFSET.
create or replace function shopsync.list_synced_ids(p_table text, p_store_id uuid, p_after text default null,
                                                    p_limit integer default 10000) returns text[]
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_ids text[];
  begin
    if not coalesce((shopsync_private.synced_table(p_table)).reconcile, false) then
      raise exception 'not a reconciled synced table: %', coalesce(p_table, 'null') using errcode = '22023';
    end if;
    if p_store_id is null then
      raise exception 'a store id is required' using errcode = '22023';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 100000 then
      raise exception 'limit must be between 1 and 100000, got %', coalesce(p_limit::text, 'null')
        using errcode = '22023';
    end if;
    -- ordered like the primary key index (store_id, id), so each page is an index range scan
    execute format('select coalesce(array_agg(page.id order by page.id), ''{}'')
                      from (select t.id from shopsync.%I t
                             where t.store_id = $1 and t.deleted_at is null and ($2::text is null or t.id > $2)
                             order by t.id limit $3) page', p_table)
      into v_ids using p_store_id, p_after, p_limit;
    return v_ids;
  end
  $$;

-- Switching a resource away from 'sync' removes what was stored of it: api_only and not_allowed
-- data must not sit in the database.
create or replace function shopsync_private.purge_store_resource(p_store_id uuid, p_resource text) returns integer
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_count integer := 0;
    v_n integer;
    v_table text;
  begin
    foreach v_table in array shopsync_private.resource_tables(p_resource) loop
      execute format('delete from shopsync.%I where store_id = $1', v_table) using p_store_id;
      get diagnostics v_n = row_count;
      v_count := v_count + v_n;
    end loop;
    delete from shopsync.sync_state st where st.store_id = p_store_id and st.resource = p_resource;
    return v_count;
  end
  $$;
