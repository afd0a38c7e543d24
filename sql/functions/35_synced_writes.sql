-- Writes into the canonical synced tables. Every path (COPY on the direct path, JSON through RPC on
-- the supabase path) stages rows in a temp table shaped like the target, then merge_staged() applies
-- them in one statement with the staleness guard: a stored row is only overwritten by data at least
-- as new by the platform's own updated_at. A tie overwrites, so of two deliveries of the same
-- version the later one wins instead of being dropped — unless nothing differs, then nothing is written.

create or replace function shopsync_private.synced_table_key(p_table text) returns text[]
  language sql immutable
  as $$
    select case p_table
      when 'inventory_levels' then array['store_id', 'inventory_item_id', 'location_id']
      when 'products' then array['store_id', 'id']
      when 'product_variants' then array['store_id', 'id']
      when 'inventory_locations' then array['store_id', 'id']
      when 'customers' then array['store_id', 'id']
      when 'orders' then array['store_id', 'id']
      when 'order_line_items' then array['store_id', 'id']
      when 'order_fulfillments' then array['store_id', 'id']
    end
  $$;

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
    v_key text[] := shopsync_private.synced_table_key(p_table);
    v_cols text[];
    v_has_updated boolean;
    v_update text[];     -- the non-key columns an update may change (organization_id never changes)
  begin
    select array_agg(a.attname::text order by a.attnum) into v_cols
      from pg_attribute a
     where a.attrelid = format('shopsync.%I', p_table)::regclass and a.attnum > 0 and not a.attisdropped
       and a.attname <> 'synced_at';
    v_has_updated := 'source_updated_at' = any (v_cols);
    v_update := array(select c from unnest(v_cols) c where c <> all (v_key));
    return format(
      'with merged as (
         insert into shopsync.%1$I as t (%2$s, synced_at)
         select distinct on (%8$s) %6$s, now()
           from %3$s st join shopsync.stores s on s.id = st.store_id
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
      case when v_has_updated then ', st.source_updated_at desc nulls last' else '' end,
      (select string_agg(format('st.%I', c), ', ') from unnest(v_key) c),
      -- the staleness guard: never overwrite newer data with older
      case when v_has_updated then
        'where (t.source_updated_at is null or excluded.source_updated_at is null
               or t.source_updated_at <= excluded.source_updated_at)' else 'where true' end
      -- a row redacted for GDPR stays redacted: later syncs or deliveries must not bring the data back
      || case when 'redacted_at' = any (v_cols) then ' and t.redacted_at is null' else '' end
      -- an unchanged row is not rewritten (no WAL, no Realtime event; counted as skipped)
      || format(' and (%s) is distinct from (%s)',
                (select string_agg(format('t.%I', c), ', ') from unnest(v_update) c where c <> 'organization_id'),
                (select string_agg(format('case when %2$L = any (%3$s) then t.%1$I else excluded.%1$I end', c, c,
                                          p_keep), ', ')
                   from unnest(v_update) c where c <> 'organization_id')));
  end
  $$;

-- One function per synced table, shopsync_private.merge_json_<table>(p_rows jsonb, p_keep text[]),
-- holding that table's merge of a JSON array as static SQL. Every migration re-applies this file, so
-- the functions always match the tables' current columns.
create or replace function shopsync_private.define_row_mergers() returns void
  language plpgsql set search_path = ''
  as $$
  declare
    v_table text;
  begin
    foreach v_table in array array['inventory_locations', 'products', 'product_variants', 'inventory_levels',
                                   'customers', 'orders', 'order_line_items', 'order_fulfillments'] loop
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
drop function if exists shopsync_private.merge_staged(text, text, bigint, text);
drop function if exists shopsync_private.merge_staged(text, text, bigint, text, text[]);
create or replace function shopsync_private.merge_staged(p_table text, p_stage text, p_job_id bigint default null,
                                                         p_worker text default null, p_keep text[] default null,
                                                         p_rows jsonb default null)
  returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_staged bigint;
    v_result jsonb;
  begin
    if shopsync_private.synced_table_key(p_table) is null then
      raise exception 'not a synced table: %', coalesce(p_table, 'null') using errcode = '22023';
    end if;
    perform shopsync_private.assert_job_held(p_job_id, p_worker);
    if p_rows is null then
      execute format('select count(*) from pg_temp.%I', p_stage) into v_staged;
      execute shopsync_private.merge_statement(p_table, format('pg_temp.%I', p_stage),
                                               quote_literal(coalesce(p_keep, '{}')) || '::text[]')
        into v_result;
    else
      v_staged := jsonb_array_length(p_rows);
      execute format('select shopsync_private.%I($1, $2)', 'merge_json_' || p_table) into v_result
        using p_rows, p_keep;
    end if;
    return v_result || jsonb_build_object(
      'skipped', v_staged - (v_result ->> 'inserted')::bigint - (v_result ->> 'updated')::bigint);
  end
  $$;

-- The supabase path: rows as a JSON array of objects with the table's columns.
drop function if exists shopsync.upsert_synced(text, jsonb, bigint, text);
create or replace function shopsync.upsert_synced(p_table text, p_rows jsonb, p_job_id bigint default null,
                                                  p_worker text default null, p_keep text[] default null)
  returns jsonb
  language plpgsql set search_path = ''
  as $$
  begin
    if shopsync_private.synced_table_key(p_table) is null then
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
    v_count integer;
  begin
    execute format('update shopsync.%I t set deleted_at = $3, source_updated_at = greatest(t.source_updated_at, $3)
                     where t.store_id = $1 and t.%I = any ($2) and t.deleted_at is null
                       and (t.source_updated_at is null or t.source_updated_at <= $3)', p_table, p_column)
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
    if p_table is null or p_table not in ('products', 'product_variants', 'inventory_locations', 'customers',
                                          'orders') then
      raise exception 'not a soft-deletable synced table: %', coalesce(p_table, 'null') using errcode = '22023';
    end if;
    perform shopsync_private.assert_job_held(p_job_id, p_worker);
    return shopsync_private.soft_delete(p_table, 'id', p_store_id, p_ids, p_deleted_at);
  end
  $$;

-- A parent deleted at the source takes its children with it (a products/delete webhook carries only
-- the product id; its variants would otherwise stay live until the next reconciliation).
create or replace function shopsync.mark_synced_children_deleted(
  p_table text, p_store_id uuid, p_parent_ids text[], p_deleted_at timestamptz default now(),
  p_job_id bigint default null, p_worker text default null
) returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_parent text := case p_table when 'product_variants' then 'product_id' end;
  begin
    if v_parent is null then
      raise exception 'no parent to delete children of in %', coalesce(p_table, 'null') using errcode = '22023';
    end if;
    perform shopsync_private.assert_job_held(p_job_id, p_worker);
    return shopsync_private.soft_delete(p_table, v_parent, p_store_id, p_parent_ids, p_deleted_at);
  end
  $$;

-- Everything one change (typically a webhook delivery) does to the synced tables, in one transaction
-- and one round trip: guarded upserts per table (p_keep: columns the source did not send), guarded
-- soft deletes (a deleted product takes its variants), and, with p_inbox_id, the inbox row marked
-- processed with it. p_writes {table: [rows]}, p_deletes {table: [ids]}, p_keep {table: [columns]}.
create or replace function shopsync.apply_synced_changes(
  p_store_id uuid, p_writes jsonb default '{}'::jsonb, p_deletes jsonb default '{}'::jsonb,
  p_deleted_at timestamptz default null, p_keep jsonb default '{}'::jsonb, p_job_id bigint default null,
  p_worker text default null, p_inbox_id bigint default null
) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_table text;
    v_value jsonb;
    v_ids text[];
    v_writes jsonb := '{}'::jsonb;
    v_deleted integer := 0;
  begin
    for v_table, v_value in select e.key, e.value from jsonb_each(coalesce(p_writes, '{}'::jsonb)) e loop
      v_writes := v_writes || jsonb_build_object(v_table, shopsync.upsert_synced(
        v_table, v_value, p_job_id, p_worker,
        array(select jsonb_array_elements_text(coalesce(p_keep -> v_table, '[]'::jsonb)))));
    end loop;
    for v_table, v_value in select e.key, e.value from jsonb_each(coalesce(p_deletes, '{}'::jsonb)) e loop
      v_ids := array(select jsonb_array_elements_text(v_value));
      v_deleted := v_deleted + shopsync.mark_synced_deleted(v_table, p_store_id, v_ids,
                                                            coalesce(p_deleted_at, now()), p_job_id, p_worker);
      if v_table = 'products' then
        v_deleted := v_deleted + shopsync.mark_synced_children_deleted('product_variants', p_store_id, v_ids,
                                                                       coalesce(p_deleted_at, now()), p_job_id,
                                                                       p_worker);
      end if;
    end loop;
    if p_inbox_id is not null then
      perform shopsync.finish_webhook(p_inbox_id, 'processed');
    end if;
    return jsonb_build_object('writes', v_writes, 'deleted', v_deleted);
  end
  $$;
