-- Reconciliation: a connector compares the ids the platform still has with the live ids stored here
-- and soft-deletes the difference (mark_synced_deleted). Keyset-paged by id so a 100k-row table is read
-- in bounded pages without OFFSET.

create or replace function shopsync.list_synced_ids(p_table text, p_store_id uuid, p_after text default null,
                                                    p_limit integer default 10000) returns text[]
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_ids text[];
  begin
    if p_table is null or p_table not in ('products', 'product_variants', 'customers', 'orders') then
      raise exception 'not a soft-deletable synced table: %', coalesce(p_table, 'null') using errcode = '22023';
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
