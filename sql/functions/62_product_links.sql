-- Product links (migration 0014): a source variant's price and stock pushed to a target SKU (TikTok Shop).
--
-- * Requesting pushes: a change of a linked variant's price, stock or deletion (triggers on product_variants and
--   inventory_levels, so syncs, webhook applies and admin writes all count) or of a link bumps the target
--   product's row in link_push_queue and enqueues one links.push job unless one is queued already. The job reads
--   the values at push time (begin_link_push), so the newest stored value wins however the changes arrived, and
--   records the sequence number it pushed (finish_link_push): a change that landed meanwhile gets its own job.
--   A change re-arms links in action_required (not retried until the link or the source changes).
-- * Frontend RPCs: create / update / pause / delete a link, auto-link two stores by SKU (with a dry run).
-- * Statistics: product_link_statistics (per link), store_link_statistics (per target store).
-- * Reconciliation: enqueue_link_reconciles() (from the due-sync schedule) asks for a read-back of every target
--   store with links; note_link_readback() turns what the target shows into pushes where it drifted.

-- --- requesting pushes ---------------------------------------------------------------------------------------

-- One coalesced push of a target product: bump its sequence and the time of its last change; make sure a
-- links.push job of the target store is queued (one per store: it pushes every product that is due, see
-- link_push_due; a running job does not count, it may be about to finish). Returns the job that will push.
create or replace function shopsync_private.request_link_push(p_target_store_id uuid, p_product_id text)
  returns bigint
  language plpgsql set search_path = ''
  as $$
  declare
    v_job bigint;
  begin
    insert into shopsync_private.link_push_queue as q (target_store_id, product_id, requested_seq, requested_at)
      values (p_target_store_id, p_product_id, 1, clock_timestamp())
      on conflict (target_store_id, product_id) do update
        set requested_seq = q.requested_seq + 1, requested_at = clock_timestamp()
      returning q.job_id into v_job;
    if v_job is not null and exists (select 1 from shopsync.jobs j where j.id = v_job and j.state = 'queued') then
      return v_job;
    end if;
    select j.id into v_job from shopsync.jobs j
     where j.store_id = p_target_store_id and j.state = 'queued' and j.kind = 'links.push'
     limit 1;
    if v_job is null then
      v_job := shopsync.enqueue_job(shopsync_private.core_job_kind('links.push'), '{}'::jsonb,
                                    p_store_id => p_target_store_id, p_priority => 20, p_max_attempts => 20,
                                    p_concurrency_key => 'links.push:' || p_target_store_id);
    end if;
    update shopsync_private.link_push_queue q set job_id = v_job
     where q.target_store_id = p_target_store_id and q.product_id = p_product_id;
    return v_job;
  end
  $$;

-- A source variant (or, with p_item_id, its inventory item) changed: re-arm its links that wait for a change
-- and request one push per target product. Plan cached (plpgsql): it runs inside webhook applies.
create or replace function shopsync_private.request_source_pushes(p_store_id uuid, p_variant_id text,
                                                                  p_item_id text default null) returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_target record;
    v_count integer := 0;
  begin
    for v_target in
      update shopsync.product_links l
         set status = case when l.status = 'action_required' then 'active' else l.status end,
             status_reason = case when l.status = 'action_required' then null else l.status_reason end
       where l.source_store_id = p_store_id and l.status <> 'paused'
         and (l.source_variant_id = p_variant_id
              or (p_item_id is not null and l.source_inventory_item_id = p_item_id))
      returning l.target_store_id, l.target_product_id
    loop
      perform shopsync_private.request_link_push(v_target.target_store_id, v_target.target_product_id);
      v_count := v_count + 1;
    end loop;
    return v_count;
  end
  $$;

-- The target's own synced copy changed (its sync or webhooks saw it: an order sold stock there, a price was
-- edited in its admin) to something other than what the link last confirmed: the link takes what the target
-- shows as confirmed and a push is requested (it sends what differs from the source after the rules). Our own
-- pushes read back unchanged and request nothing.
create or replace function shopsync_private.note_target_change(p_store_id uuid, p_sku_id text, p_price numeric,
                                                               p_quantity integer) returns void
  language plpgsql set search_path = ''
  as $$
  declare
    v_product text;
  begin
    update shopsync.product_links l
       set last_pushed_price = case when l.sync_price then p_price else l.last_pushed_price end,
           last_pushed_quantity = case when l.sync_inventory then p_quantity else l.last_pushed_quantity end,
           updated_at = now()
     where l.target_store_id = p_store_id and l.target_sku_id = p_sku_id and l.status in ('active', 'error')
       and ((l.sync_price and l.last_pushed_price is distinct from p_price)
            or (l.sync_inventory and l.last_pushed_quantity is distinct from p_quantity))
    returning l.target_product_id into v_product;
    if v_product is not null then
      perform shopsync_private.request_link_push(p_store_id, v_product);
    end if;
  end
  $$;

create or replace function shopsync_private.on_linked_variant_changed() returns trigger
  language plpgsql set search_path = ''
  as $$
  begin
    if exists (select 1 from shopsync.product_links l
                where l.source_store_id = new.store_id and l.source_variant_id = new.id) then
      perform shopsync_private.request_source_pushes(new.store_id, new.id);
    end if;
    if exists (select 1 from shopsync.product_links l
                where l.target_store_id = new.store_id and l.target_sku_id = new.id) and new.deleted_at is null then
      perform shopsync_private.note_target_change(new.store_id, new.id, new.price, new.inventory_quantity);
    end if;
    return null;
  end
  $$;

create or replace function shopsync_private.on_linked_level_changed() returns trigger
  language plpgsql set search_path = ''
  as $$
  begin
    if exists (select 1 from shopsync.product_links l
                where l.source_store_id = new.store_id and l.source_inventory_item_id = new.inventory_item_id) then
      perform shopsync_private.request_source_pushes(new.store_id, null, new.inventory_item_id);
    end if;
    return null;
  end
  $$;

-- --- link options ------------------------------------------------------------------------------------------

-- p_options applied to a link row: every key must be known and every value valid (22023 naming the key).
create or replace function shopsync_private.apply_link_options(p_link shopsync.product_links, p_options jsonb)
  returns shopsync.product_links
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_key text;
    v_value jsonb;
    v_link shopsync.product_links := p_link;
  begin
    if p_options is null or jsonb_typeof(p_options) <> 'object' then
      raise exception 'link options must be a JSON object' using errcode = '22023';
    end if;
    for v_key, v_value in select e.key, e.value from jsonb_each(p_options) e loop
      begin
        case v_key
          when 'sync_price' then v_link.sync_price := (v_value #>> '{}')::boolean;
          when 'sync_inventory' then v_link.sync_inventory := (v_value #>> '{}')::boolean;
          when 'price_multiplier' then v_link.price_multiplier := (v_value #>> '{}')::numeric;
          when 'price_offset' then v_link.price_offset := (v_value #>> '{}')::numeric;
          when 'price_rounding' then v_link.price_rounding := v_value #>> '{}';
          when 'inventory_percentage' then v_link.inventory_percentage := (v_value #>> '{}')::numeric;
          when 'inventory_zero_below' then v_link.inventory_zero_below := (v_value #>> '{}')::integer;
          when 'inventory_cap' then v_link.inventory_cap := (v_value #>> '{}')::integer;
          else raise exception 'unknown link option %: expected sync_price, sync_inventory, price_multiplier, '
                 'price_offset, price_rounding, inventory_percentage, inventory_zero_below or inventory_cap', v_key
                 using errcode = '22023';
        end case;
      exception when invalid_text_representation or numeric_value_out_of_range or datatype_mismatch then
        raise exception 'invalid value for link option %: %', v_key, left(v_value::text, 40) using errcode = '22023';
      end;
    end loop;
    if v_link.sync_price is null or v_link.sync_inventory is null or v_link.price_multiplier is null
       or v_link.price_multiplier <= 0 or v_link.price_offset is null then
      raise exception 'sync_price and sync_inventory are true or false; price_multiplier is above 0; '
        'price_offset is a number' using errcode = '22023';
    end if;
    if v_link.price_rounding is not null and v_link.price_rounding !~ '^\.[0-9]{2}$' then
      raise exception 'price_rounding is the cents a price ends with, like ".99" (or null for none)'
        using errcode = '22023';
    end if;
    if v_link.inventory_percentage is null or v_link.inventory_percentage not between 0 and 100
       or v_link.inventory_zero_below is null or v_link.inventory_zero_below < 0
       or coalesce(v_link.inventory_cap, 0) < 0 then
      raise exception 'inventory_percentage is 0 to 100; inventory_zero_below and inventory_cap are 0 or more'
        using errcode = '22023';
    end if;
    return v_link;
  end
  $$;

-- The write capabilities a platform's connector published (its public config), e.g. {set_price, set_inventory}.
create or replace function shopsync_private.platform_writes(p_platform text) returns text[]
  language sql stable set search_path = ''
  as $$
    select coalesce(array(select jsonb_array_elements_text(shopsync_private.platform_config(p_platform) -> 'writes')),
                    '{}')
  $$;

create or replace function shopsync_private.assert_link_target(p_target shopsync.stores, p_price boolean,
                                                               p_inventory boolean) returns void
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_writes text[] := shopsync_private.platform_writes(p_target.platform);
  begin
    if (p_price and not 'set_price' = any (v_writes)) or (p_inventory and not 'set_inventory' = any (v_writes)) then
      raise exception '% stores cannot receive pushed %', p_target.platform,
        case when p_price and p_inventory then 'prices and stock' when p_price then 'prices' else 'stock' end
        using errcode = '22023', hint = 'link to a store of a platform that accepts them (tiktok)';
    end if;
  end
  $$;

-- Both stores of a link, for the caller (owner/admin), in one organization.
create or replace function shopsync_private.link_stores_for_caller(p_source_store_id uuid, p_target_store_id uuid)
  returns shopsync.stores[]
  language plpgsql stable security definer set search_path = ''
  as $$
  declare
    v_source shopsync.stores := shopsync_private.store_for_caller(p_source_store_id, array['owner', 'admin']);
    v_target shopsync.stores := shopsync_private.store_for_caller(p_target_store_id, array['owner', 'admin']);
  begin
    if v_source.organization_id <> v_target.organization_id then
      raise exception 'a link joins two stores of one organization: store % and store % belong to different ones',
        p_source_store_id, p_target_store_id using errcode = '42501';
    end if;
    if v_source.id = v_target.id then
      raise exception 'a store cannot be linked to itself' using errcode = '22023';
    end if;
    return array[v_source, v_target];
  end
  $$;

-- --- frontend RPCs ------------------------------------------------------------------------------------------

create or replace function shopsync.create_product_link(
  p_source_store_id uuid, p_source_variant_id text, p_target_store_id uuid, p_target_sku_id text,
  p_options jsonb default '{}'::jsonb
) returns uuid
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_stores shopsync.stores[] := shopsync_private.link_stores_for_caller(p_source_store_id, p_target_store_id);
    v_link shopsync.product_links;
    v_item text;
    v_product text;
  begin
    select v.inventory_item_id into v_item from shopsync.product_variants v
     where v.store_id = p_source_store_id and v.id = p_source_variant_id and v.deleted_at is null;
    if not found then
      raise exception 'unknown variant % in store %', left(p_source_variant_id, 60), p_source_store_id
        using errcode = 'P0002';
    end if;
    select v.product_id into v_product from shopsync.product_variants v
     where v.store_id = p_target_store_id and v.id = p_target_sku_id and v.deleted_at is null;
    if v_product is null then
      raise exception 'unknown SKU % in store % (sync its products first)', left(p_target_sku_id, 60),
        p_target_store_id using errcode = 'P0002';
    end if;
    v_link := shopsync_private.apply_link_options(
      row(gen_random_uuid(), v_stores[1].organization_id, p_source_store_id, p_source_variant_id, v_item,
          p_target_store_id, v_product, p_target_sku_id, true, true, 1, 0, null, 100, 0, null, 'active', null,
          null, null, null, null, null, null, null, null, null, auth.uid(), now(), now())::shopsync.product_links,
      coalesce(p_options, '{}'::jsonb));
    perform shopsync_private.assert_link_target(v_stores[2], v_link.sync_price, v_link.sync_inventory);
    begin
      insert into shopsync.product_links select v_link.*;
    exception when unique_violation then
      raise exception 'SKU % of store % is linked already', left(p_target_sku_id, 60), p_target_store_id
        using errcode = '23505';
    end;
    perform shopsync_private.request_link_push(p_target_store_id, v_product);
    perform shopsync_private.log_activity(v_link.organization_id, p_target_store_id, 'link.created',
      jsonb_build_object('link_id', v_link.id, 'source_store_id', p_source_store_id, 'target_sku_id', p_target_sku_id));
    return v_link.id;
  end
  $$;

-- The link, for the caller with one of p_roles (P0002 when they cannot see it).
create or replace function shopsync_private.link_for_caller(p_link_id uuid, p_roles text[])
  returns shopsync.product_links
  language plpgsql stable security definer set search_path = ''
  as $$
  declare
    v_link shopsync.product_links;
  begin
    perform shopsync_private.require_user();
    select l.* into v_link from shopsync.product_links l where l.id = p_link_id;
    if not found then
      raise exception 'unknown link %', coalesce(p_link_id::text, 'null') using errcode = 'P0002';
    end if;
    begin
      perform shopsync_private.store_for_caller(v_link.target_store_id, p_roles);
    exception when no_data_found then     -- P0002: a link of a store the caller cannot see is unknown too
      raise exception 'unknown link %', p_link_id using errcode = 'P0002';
    end;
    return v_link;
  end
  $$;

create or replace function shopsync.update_product_link(p_link_id uuid, p_options jsonb) returns void
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_link shopsync.product_links := shopsync_private.link_for_caller(p_link_id, array['owner', 'admin']);
  begin
    v_link := shopsync_private.apply_link_options(v_link, p_options);
    perform shopsync_private.assert_link_target((select s from shopsync.stores s where s.id = v_link.target_store_id),
                                                v_link.sync_price, v_link.sync_inventory);
    update shopsync.product_links l
       set sync_price = v_link.sync_price, sync_inventory = v_link.sync_inventory,
           price_multiplier = v_link.price_multiplier, price_offset = v_link.price_offset,
           price_rounding = v_link.price_rounding, inventory_percentage = v_link.inventory_percentage,
           inventory_zero_below = v_link.inventory_zero_below, inventory_cap = v_link.inventory_cap,
           status = case when l.status = 'paused' then 'paused' else 'active' end,    -- a change re-arms it
           status_reason = case when l.status = 'paused' then l.status_reason end, updated_at = now()
     where l.id = p_link_id;
    if v_link.status <> 'paused' then
      perform shopsync_private.request_link_push(v_link.target_store_id, v_link.target_product_id);
    end if;
    perform shopsync_private.log_activity(v_link.organization_id, v_link.target_store_id, 'link.updated',
                                          jsonb_build_object('link_id', p_link_id, 'options', p_options));
  end
  $$;

create or replace function shopsync.pause_product_link(p_link_id uuid, p_paused boolean default true) returns void
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_link shopsync.product_links := shopsync_private.link_for_caller(p_link_id, array['owner', 'admin']);
  begin
    if p_paused is null then
      raise exception 'paused must be true or false' using errcode = '22023';
    end if;
    update shopsync.product_links l
       set status = case when p_paused then 'paused' else 'active' end, status_reason = null, updated_at = now()
     where l.id = p_link_id;
    if not p_paused then
      perform shopsync_private.request_link_push(v_link.target_store_id, v_link.target_product_id);
    end if;
    perform shopsync_private.log_activity(v_link.organization_id, v_link.target_store_id,
                                          case when p_paused then 'link.paused' else 'link.resumed' end,
                                          jsonb_build_object('link_id', p_link_id));
  end
  $$;

create or replace function shopsync.delete_product_link(p_link_id uuid) returns void
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_link shopsync.product_links := shopsync_private.link_for_caller(p_link_id, array['owner', 'admin']);
  begin
    delete from shopsync.product_links l where l.id = p_link_id;
    perform shopsync_private.log_activity(v_link.organization_id, v_link.target_store_id, 'link.deleted',
                                          jsonb_build_object('link_id', p_link_id, 'target_sku_id', v_link.target_sku_id));
  end
  $$;

-- Link every SKU found exactly once on each side (trimmed, case-sensitive, live variants); never guess:
-- SKUs that repeat on either side are reported, not linked. p_dry_run (the default) changes nothing.
create or replace function shopsync.auto_link_by_sku(
  p_source_store_id uuid, p_target_store_id uuid, p_dry_run boolean default true, p_options jsonb default '{}'::jsonb
) returns jsonb
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_stores shopsync.stores[] := shopsync_private.link_stores_for_caller(p_source_store_id, p_target_store_id);
    v_template shopsync.product_links;
    v_result jsonb;
    v_created integer := 0;
    v_product text;
  begin
    v_template := shopsync_private.apply_link_options(
      row(null, null, null, null, null, null, null, null, true, true, 1, 0, null, 100, 0, null, 'active', null,
          null, null, null, null, null, null, null, null, null, null, now(), now())::shopsync.product_links,
      coalesce(p_options, '{}'::jsonb));
    perform shopsync_private.assert_link_target(v_stores[2], v_template.sync_price, v_template.sync_inventory);
    create temporary table if not exists pg_temp.auto_link_pairs (sku text, source_variant_id text, source_item text,
                                                                  target_product_id text, target_sku_id text)
      on commit drop;
    truncate pg_temp.auto_link_pairs;
    with src as (
      select btrim(v.sku) as sku, v.id, v.inventory_item_id, count(*) over (partition by btrim(v.sku)) as n
        from shopsync.product_variants v
       where v.store_id = p_source_store_id and v.deleted_at is null and nullif(btrim(v.sku), '') is not null
    ), tgt as (
      select btrim(v.sku) as sku, v.id, v.product_id, count(*) over (partition by btrim(v.sku)) as n
        from shopsync.product_variants v
       where v.store_id = p_target_store_id and v.deleted_at is null and nullif(btrim(v.sku), '') is not null
    ), pairs as (
      select s.sku, s.id as source_variant_id, s.inventory_item_id, t.product_id, t.id as target_sku_id
        from src s join tgt t on t.sku = s.sku where s.n = 1 and t.n = 1
    ), counted as (
      select jsonb_build_object(
        'missing_in_target', coalesce((select jsonb_agg(distinct s.sku order by s.sku) from src s
                                         where not exists (select 1 from tgt t where t.sku = s.sku)), '[]'),
        'missing_in_source', coalesce((select jsonb_agg(distinct t.sku order by t.sku) from tgt t
                                         where not exists (select 1 from src s where s.sku = t.sku)), '[]'),
        'duplicates', jsonb_build_object(
          'source', coalesce((select jsonb_agg(distinct s.sku order by s.sku) from src s where s.n > 1), '[]'),
          'target', coalesce((select jsonb_agg(distinct t.sku order by t.sku) from tgt t where t.n > 1), '[]'))) as c
    ), kept as (
      insert into pg_temp.auto_link_pairs
      select p.sku, p.source_variant_id, p.inventory_item_id, p.product_id, p.target_sku_id from pairs p
      returning 1
    )
    select c || jsonb_build_object('considered', (select count(*) from kept)) into v_result from counted;
    -- pairs whose target SKU is linked already stay as they are
    delete from pg_temp.auto_link_pairs p using shopsync.product_links l
     where l.target_store_id = p_target_store_id and l.target_sku_id = p.target_sku_id;
    v_result := v_result || jsonb_build_object(
      'dry_run', coalesce(p_dry_run, true),
      'already_linked', (v_result ->> 'considered')::integer - (select count(*) from pg_temp.auto_link_pairs),
      'matches', coalesce((select jsonb_agg(jsonb_build_object('sku', p.sku, 'source_variant_id', p.source_variant_id,
                                                                'target_product_id', p.target_product_id,
                                                                'target_sku_id', p.target_sku_id) order by p.sku)
                             from pg_temp.auto_link_pairs p), '[]'));
    v_result := v_result - 'considered';
    if not coalesce(p_dry_run, true) then
      insert into shopsync.product_links (organization_id, source_store_id, source_variant_id, source_inventory_item_id,
                                          target_store_id, target_product_id, target_sku_id, sync_price,
                                          sync_inventory, price_multiplier, price_offset, price_rounding,
                                          inventory_percentage, inventory_zero_below, inventory_cap, created_by)
      select v_stores[1].organization_id, p_source_store_id, p.source_variant_id, p.source_item, p_target_store_id,
             p.target_product_id, p.target_sku_id, v_template.sync_price, v_template.sync_inventory,
             v_template.price_multiplier, v_template.price_offset, v_template.price_rounding,
             v_template.inventory_percentage, v_template.inventory_zero_below, v_template.inventory_cap, auth.uid()
        from pg_temp.auto_link_pairs p
      on conflict (target_store_id, target_sku_id) do nothing;
      get diagnostics v_created = row_count;
      for v_product in select distinct p.target_product_id from pg_temp.auto_link_pairs p loop
        perform shopsync_private.request_link_push(p_target_store_id, v_product);
      end loop;
      perform shopsync_private.log_activity(v_stores[1].organization_id, p_target_store_id, 'link.auto_linked',
        jsonb_build_object('source_store_id', p_source_store_id, 'created', v_created));
    end if;
    return v_result || jsonb_build_object('created', v_created);
  end
  $$;

-- --- the worker's side -----------------------------------------------------------------------------------------

-- What one push of a target product needs, read in one snapshot: the sequence it covers and every link of the
-- product that may push (active or error), with its rules, the last confirmed values, the source's current
-- price and stock (the sum over its locations when the source keeps stock per location, else the variant's
-- figure) and the target SKU's currency and warehouses (the default first).
create or replace function shopsync.begin_link_push(p_target_store_id uuid, p_product_id text) returns jsonb
  language plpgsql stable set search_path = ''
  as $$
  begin
    return jsonb_build_object(
      'seq', coalesce((select q.requested_seq from shopsync_private.link_push_queue q
                        where q.target_store_id = p_target_store_id and q.product_id = p_product_id), 0),
      'links', coalesce((
        select jsonb_agg(jsonb_build_object(
                 'link_id', l.id, 'status', l.status, 'target_sku_id', l.target_sku_id,
                 'sync_price', l.sync_price, 'sync_inventory', l.sync_inventory,
                 'price_multiplier', l.price_multiplier, 'price_offset', l.price_offset,
                 'price_rounding', l.price_rounding, 'inventory_percentage', l.inventory_percentage,
                 'inventory_zero_below', l.inventory_zero_below, 'inventory_cap', l.inventory_cap,
                 'last_pushed_price', l.last_pushed_price, 'last_pushed_quantity', l.last_pushed_quantity,
                 'source_found', v.id is not null and v.deleted_at is null,
                 'source_price', v.price,
                 'source_quantity', case when lv.n > 0 then lv.available else v.inventory_quantity end,
                 'target_currency', t.currency,
                 'warehouses', coalesce(w.ids, '[]'::jsonb)) order by l.target_sku_id)
          from shopsync.product_links l
          left join shopsync.product_variants v on v.store_id = l.source_store_id and v.id = l.source_variant_id
          cross join lateral (select count(*) as n, sum(il.available)::integer as available
                                from shopsync.inventory_levels il
                               where il.store_id = l.source_store_id and il.inventory_item_id = v.inventory_item_id
                                 and il.deleted_at is null) lv
          left join shopsync.product_variants t on t.store_id = l.target_store_id and t.id = l.target_sku_id
          cross join lateral (select jsonb_agg(il.location_id order by coalesce((loc.raw ->> 'is_default')::boolean,
                                                                                false) desc, il.location_id) as ids
                                from shopsync.inventory_levels il
                                left join shopsync.inventory_locations loc on loc.store_id = il.store_id
                                                                          and loc.id = il.location_id
                               where il.store_id = l.target_store_id and il.inventory_item_id = l.target_sku_id
                                 and il.deleted_at is null) w
         where l.target_store_id = p_target_store_id and l.target_product_id = p_product_id
           and l.status in ('active', 'error')), '[]'::jsonb));
  end
  $$;

drop function if exists shopsync.link_push_pending(uuid, text);

-- The target store's products with changes not pushed yet (at most p_limit, longest quiet first), for its
-- links.push job to decide which are due: each with the sequence requested now, the seconds since its own last
-- change (quiet_s), and whether a source store of its links is in a storm of catalog webhook deliveries right
-- now (at least p_storm_deliveries about products, variants, inventory or stock received in the last
-- p_storm_seconds, e.g. a bulk edit in its admin, whose deliveries reach us in any order: the product's newest
-- value may still be on its way). Order deliveries do not count: a busy shop must not hold its pushes back.
create or replace function shopsync.link_push_due(p_target_store_id uuid, p_limit integer default 1000,
                                                  p_storm_deliveries integer default 6,
                                                  p_storm_seconds double precision default 2)
  returns jsonb
  language plpgsql volatile set search_path = ''
  as $$
  declare
    v_now timestamptz := clock_timestamp();
    v_storming uuid[];
  begin
    select coalesce(array_agg(s.source_store_id), '{}') into v_storming
      from (select distinct l.source_store_id from shopsync.product_links l
             where l.target_store_id = p_target_store_id and l.status in ('active', 'error')) s
     where (select count(*) from (select 1 from shopsync.webhook_inbox w
                                   where w.store_id = s.source_store_id
                                     and w.received_at > v_now - make_interval(secs => p_storm_seconds)
                                     and w.topic ~* '(product|variant|inventory|stock)'
                                   limit greatest(p_storm_deliveries, 1)) recent) >= greatest(p_storm_deliveries, 1);
    return coalesce((
      select jsonb_agg(jsonb_build_object(
               'product_id', q.product_id, 'seq', q.requested_seq,
               'quiet_s', extract(epoch from v_now - q.requested_at),
               'storming', exists (select 1 from shopsync.product_links l
                                    where l.target_store_id = p_target_store_id and l.target_product_id = q.product_id
                                      and l.source_store_id = any (v_storming)))
             order by q.requested_at)
        from (select * from shopsync_private.link_push_queue q
               where q.target_store_id = p_target_store_id and q.requested_seq > q.done_seq
               order by q.requested_at limit greatest(p_limit, 1)) q), '[]'::jsonb);
  end
  $$;

-- The push's outcome. p_results: [{link_id, field: price|inventory, old, new, result: pushed|failed|refused|
-- action_required|retry, code, reason, message, duration_ms, levels}]. Confirmed values, statuses
-- (action_required emits link.action_required once per transition), the link log, and the target store's synced
-- copy of what was pushed (its price, stock and stock per warehouse: no webhook reports our own change back);
-- then, with p_done, the sequence pushed. Returns {"requeued": bool}: whether a change arrived meanwhile (the
-- product stays pending; the store's job, still running, pushes it again).
create or replace function shopsync.finish_link_push(
  p_target_store_id uuid, p_product_id text, p_seq bigint, p_results jsonb, p_job_id bigint default null,
  p_done boolean default true
) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_link record;
    v_requested bigint;
    v_requeued boolean := false;
  begin
    if jsonb_typeof(coalesce(p_results, '[]'::jsonb)) <> 'array' then
      raise exception 'results must be a JSON array' using errcode = '22023';
    end if;
    insert into shopsync.product_link_log (organization_id, link_id, target_store_id, field, old_value, new_value,
                                           result, error_code, error_message, duration_ms, job_id)
    select l.organization_id, r.link_id, p_target_store_id, r.field, r.old, r.new, r.result,
           coalesce(r.code, r.reason), left(r.message, 500), r.duration_ms, p_job_id
      from jsonb_to_recordset(coalesce(p_results, '[]'::jsonb))
             as r(link_id uuid, field text, old text, new text, result text, code text, reason text, message text,
                  duration_ms integer)
      join shopsync.product_links l on l.id = r.link_id and l.target_store_id = p_target_store_id;
    for v_link in
      select l.id, l.organization_id, l.status as was, l.target_sku_id,
             bool_or(r.result = 'pushed') as pushed,
             (array_agg(r.reason order by r.field) filter (where r.result = 'action_required'))[1] as action_reason,
             (array_agg(coalesce(r.message, r.reason) order by r.field)
                filter (where r.result in ('action_required', 'failed', 'refused', 'retry')))[1] as error_message,
             (array_agg(coalesce(r.code, r.reason) order by r.field)
                filter (where r.result in ('action_required', 'failed', 'refused', 'retry')))[1] as error_code,
             bool_or(r.result in ('failed', 'refused')) as failed,
             (array_agg(r.new) filter (where r.result = 'pushed' and r.field = 'price'))[1] as price,
             (array_agg(r.new) filter (where r.result = 'pushed' and r.field = 'inventory'))[1] as quantity,
             (array_agg(r.levels) filter (where r.result = 'pushed' and r.field = 'inventory'))[1] as levels
        from jsonb_to_recordset(coalesce(p_results, '[]'::jsonb))
               as r(link_id uuid, field text, new text, result text, code text, reason text, message text,
                    levels jsonb)
        join shopsync.product_links l on l.id = r.link_id and l.target_store_id = p_target_store_id
       group by l.id
    loop
      update shopsync.product_links l
         set last_pushed_price = coalesce(v_link.price::numeric, l.last_pushed_price),
             last_price_pushed_at = case when v_link.price is not null then now() else l.last_price_pushed_at end,
             last_pushed_quantity = coalesce(v_link.quantity::integer, l.last_pushed_quantity),
             last_quantity_pushed_at = case when v_link.quantity is not null then now()
                                            else l.last_quantity_pushed_at end,
             last_attempt_at = now(),
             last_success_at = case when v_link.pushed then now() else l.last_success_at end,
             status = case when l.status = 'paused' then 'paused'
                           when v_link.action_reason is not null then 'action_required'
                           when v_link.failed then 'error'
                           when v_link.error_message is null then 'active' else l.status end,
             status_reason = case when l.status = 'paused' then l.status_reason
                                  when v_link.action_reason is not null then v_link.action_reason
                                  when v_link.failed then v_link.error_code
                                  when v_link.error_message is null then null else l.status_reason end,
             last_error = case when v_link.error_message is not null then v_link.error_message
                               when v_link.pushed then null else l.last_error end,
             last_error_code = case when v_link.error_message is not null then v_link.error_code
                                    when v_link.pushed then null else l.last_error_code end,
             last_error_at = case when v_link.error_message is not null then now() else l.last_error_at end,
             updated_at = now()
       where l.id = v_link.id;
      if v_link.price is not null or v_link.quantity is not null then
        update shopsync.product_variants t
           set price = coalesce(v_link.price::numeric, t.price),
               inventory_quantity = coalesce(v_link.quantity::integer, t.inventory_quantity)
         where t.store_id = p_target_store_id and t.id = v_link.target_sku_id;
        update shopsync.inventory_levels il set available = (v_link.levels ->> il.location_id)::integer
         where il.store_id = p_target_store_id and il.inventory_item_id = v_link.target_sku_id
           and v_link.levels ? il.location_id;
      end if;
      if v_link.action_reason is not null and v_link.was <> 'action_required' then
        perform shopsync_private.emit_event(v_link.organization_id, p_target_store_id, 'link.action_required',
          v_link.action_reason, jsonb_build_object('link_id', v_link.id, 'target_sku_id', v_link.target_sku_id,
                                                   'reason', v_link.action_reason,
                                                   'code', v_link.error_code,
                                                   'message', left(v_link.error_message, 300)));
      end if;
    end loop;
    if coalesce(p_done, true) then
      update shopsync_private.link_push_queue q set done_seq = greatest(q.done_seq, p_seq)
       where q.target_store_id = p_target_store_id and q.product_id = p_product_id
      returning q.requested_seq into v_requested;
      -- a change that arrived meanwhile keeps the product pending: the store's running job pushes it next
      v_requeued := v_requested > p_seq;
    end if;
    return jsonb_build_object('requeued', v_requeued);
  end
  $$;

-- --- reconciliation ------------------------------------------------------------------------------------------

-- Target products with links that push (active or error), for a read-back.
create or replace function shopsync.linked_target_products(p_target_store_id uuid) returns text[]
  language sql stable set search_path = ''
  as $$
    select coalesce(array_agg(distinct l.target_product_id order by l.target_product_id), '{}')
      from shopsync.product_links l
     where l.target_store_id = p_target_store_id and l.status in ('active', 'error')
  $$;

-- What the target shows now for a product's linked SKUs (p_observed: {sku_id: {"price", "quantity"}}; a SKU
-- missing from it is gone at the target). Where it differs from what was last confirmed, the link takes the
-- observed value as the confirmed one; then a push is requested (it sends only what differs from the source
-- after the rules — nothing, usually). Returns how many links drifted.
create or replace function shopsync.note_link_readback(p_target_store_id uuid, p_product_id text, p_observed jsonb)
  returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_count integer;
  begin
    with drifted as (
      update shopsync.product_links l
         set last_pushed_price = case when l.sync_price then (p_observed -> l.target_sku_id ->> 'price')::numeric
                                      else l.last_pushed_price end,
             last_pushed_quantity = case when l.sync_inventory
                                         then (p_observed -> l.target_sku_id ->> 'quantity')::integer
                                         else l.last_pushed_quantity end,
             updated_at = now()
       where l.target_store_id = p_target_store_id and l.target_product_id = p_product_id
         and l.status in ('active', 'error')
         and ((l.sync_price and l.last_pushed_price is distinct from (p_observed -> l.target_sku_id ->> 'price')::numeric)
              or (l.sync_inventory and l.last_pushed_quantity is distinct from
                                       (p_observed -> l.target_sku_id ->> 'quantity')::integer))
      returning 1)
    select count(*) into v_count from drifted;
    if exists (select 1 from shopsync.product_links l where l.target_store_id = p_target_store_id
                 and l.target_product_id = p_product_id and l.status in ('active', 'error')) then
      perform shopsync_private.request_link_push(p_target_store_id, p_product_id);
    end if;
    return v_count;
  end
  $$;

-- Called with the due-sync schedule: a links.reconcile job for every active target store with links whose last
-- one is older than p_every. Returns how many were enqueued.
create or replace function shopsync.enqueue_link_reconciles(p_every interval default '1 hour') returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_store uuid;
    v_count integer := 0;
  begin
    for v_store in
      select distinct l.target_store_id from shopsync.product_links l
        join shopsync.stores s on s.id = l.target_store_id
       where s.status = 'active' and l.status in ('active', 'error')
         and not exists (select 1 from shopsync.jobs j
                          where j.store_id = l.target_store_id and j.kind = 'links.reconcile'
                            and j.created_at > now() - p_every)
       limit 200
    loop
      perform shopsync.enqueue_job(shopsync_private.core_job_kind('links.reconcile'), '{}'::jsonb,
                                   p_store_id => v_store, p_dedupe_key => 'links.reconcile:' || v_store,
                                   p_priority => 150);
      v_count := v_count + 1;
    end loop;
    return v_count;
  end
  $$;

-- Retention of the link log (prune_history calls this): rows older than the 'product_link_log' age.
create or replace function shopsync_private.prune_product_link_log() returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_count integer;
  begin
    delete from shopsync.product_link_log g
     where g.occurred_at < now() - coalesce((select s.value ->> 'product_link_log' from shopsync_private.settings s
                                              where s.key = 'retention'), '30 days')::interval;
    get diagnostics v_count = row_count;
    return v_count;
  end
  $$;

create or replace function shopsync.set_link_log_retention(p_age interval) returns void
  language plpgsql set search_path = ''
  as $$
  begin
    if p_age is null or p_age < interval '1 hour' or p_age > interval '10 years' then
      raise exception 'the link log is kept between 1 hour and 10 years' using errcode = '22023';
    end if;
    update shopsync_private.settings s set value = s.value || jsonb_build_object('product_link_log', p_age::text),
                                           updated_at = now()
     where s.key = 'retention';
  end
  $$;

-- --- statistics (security invoker: members see their organization's) ---------------------------------------

create or replace view shopsync.product_link_statistics with (security_invoker = true) as
select l.id as link_id, l.organization_id, l.source_store_id, l.target_store_id, l.target_product_id, l.target_sku_id,
       l.status, l.status_reason,
       count(g.id) filter (where g.result = 'pushed') as pushed,
       count(g.id) filter (where g.result in ('failed', 'refused', 'retry')) as failed,
       count(g.id) filter (where g.result = 'action_required') as action_required,
       l.last_success_at, l.last_attempt_at, l.last_error_code
  from shopsync.product_links l
  left join shopsync.product_link_log g on g.link_id = l.id
 group by l.id;

create or replace view shopsync.store_link_statistics with (security_invoker = true) as
select s.id as store_id, s.organization_id, s.platform,
       count(*) as links,
       count(*) filter (where l.status = 'active') as active,
       count(*) filter (where l.status = 'paused') as paused,
       count(*) filter (where l.status = 'error') as error,
       count(*) filter (where l.status = 'action_required') as action_required,
       (select count(*) from shopsync.product_link_log g where g.target_store_id = s.id and g.result = 'pushed')
         as pushed,
       (select count(*) from shopsync.product_link_log g
         where g.target_store_id = s.id and g.result in ('failed', 'refused', 'retry')) as failed,
       max(l.last_success_at) as last_success_at
  from shopsync.stores s join shopsync.product_links l on l.target_store_id = s.id
 group by s.id;
