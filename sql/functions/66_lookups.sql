-- Look-ups for agents (docs/agents.md): the organization API keys owners and admins manage (frontend RPCs),
-- what the web process asks before each look-up (who is calling, may they, which access policy routes it, is
-- the caller over its rate: begin_lookup), the answers from the synced tables (lookup_synced), and the audit
-- (record_lookup). The values an agent looks up (an email, a phone number) never reach a table or a log: they
-- are arguments of lookup_synced only.

-- --- API keys (frontend RPCs, owners and admins) -------------------------------------------------------------

-- A new key for the organization: the key itself is in the answer and nowhere else (only its SHA-256 is kept).
create or replace function shopsync.create_api_key(
  p_organization_id uuid, p_name text, p_store_ids uuid[] default null, p_resources text[] default null,
  p_expires_at timestamptz default null, p_requests_per_second double precision default null,
  p_burst integer default null
) returns jsonb
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_user uuid := shopsync_private.require_user();
    v_resources text[];
    v_resource text;
    v_stores uuid[];
    v_missing uuid;
    v_secret text;
    v_key text;
    v_row shopsync_private.api_keys;
  begin
    if not shopsync.has_org_role(p_organization_id, array['owner', 'admin']) then
      raise exception 'only owners and admins of organization % can create API keys', p_organization_id
        using errcode = '42501';
    end if;
    if p_name is null or length(btrim(p_name)) not between 1 and 100 then
      raise exception 'an API key name is 1 to 100 characters' using errcode = '22023';
    end if;
    if p_store_ids is not null then
      v_stores := array(select distinct s from unnest(p_store_ids) s where s is not null);
      if cardinality(v_stores) not between 1 and 1000 then
        raise exception 'store_ids is null (every store of the organization) or 1 to 1000 stores'
          using errcode = '22023';
      end if;
      select s.sid into v_missing from unnest(v_stores) s(sid)
       where not exists (select 1 from shopsync.stores t where t.id = s.sid and t.organization_id = p_organization_id)
       limit 1;
      if v_missing is not null then
        raise exception 'unknown store %', v_missing using errcode = 'P0002';
      end if;
    end if;
    v_resources := array(select distinct r from unnest(coalesce(p_resources, shopsync_private.catalog_resources())) r);
    if cardinality(v_resources) = 0 then
      raise exception 'resources is null (every resource) or names at least one of %',
        shopsync_private.catalog_resources_text() using errcode = '22023';
    end if;
    foreach v_resource in array v_resources loop
      perform shopsync_private.assert_resource(v_resource);
    end loop;
    if p_expires_at is not null and p_expires_at <= now() then
      raise exception 'expires_at must be in the future' using errcode = '22023';
    end if;
    if p_requests_per_second is not null and not (p_requests_per_second > 0 and p_requests_per_second <= 1000) then
      raise exception 'requests_per_second must be more than 0 and at most 1000' using errcode = '22023';
    end if;
    if p_burst is not null and p_burst not between 1 and 10000 then
      raise exception 'burst must be between 1 and 10000' using errcode = '22023';
    end if;
    for v_attempt in 1..3 loop
      -- two random UUIDs (244 random bits) through SHA-256: 64 hex digits, 12 of them the visible prefix
      v_secret := encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex');
      v_key := 'ssk_' || substr(v_secret, 1, 12) || '_' || substr(v_secret, 13);
      begin
        insert into shopsync_private.api_keys (organization_id, name, prefix, key_hash, store_ids, resources,
                                               requests_per_second, burst, created_by, expires_at)
          values (p_organization_id, btrim(p_name), 'ssk_' || substr(v_secret, 1, 12),
                  encode(sha256(convert_to(v_key, 'UTF8')), 'hex'), v_stores, v_resources,
                  coalesce(p_requests_per_second, 10), coalesce(p_burst, 20), v_user, p_expires_at)
          returning * into v_row;
        exit;
      exception when unique_violation then
        if v_attempt = 3 then
          raise;
        end if;     -- a prefix already taken (48 bits): draw again
      end;
    end loop;
    perform shopsync_private.log_activity(p_organization_id, null, 'api_key.created',
                                          jsonb_build_object('key_id', v_row.id, 'prefix', v_row.prefix,
                                                             'name', v_row.name));
    return jsonb_build_object('key_id', v_row.id, 'key', v_key, 'prefix', v_row.prefix, 'name', v_row.name,
                              'store_ids', to_jsonb(v_row.store_ids), 'resources', to_jsonb(v_row.resources),
                              'requests_per_second', v_row.requests_per_second, 'burst', v_row.burst,
                              'expires_at', v_row.expires_at, 'created_at', v_row.created_at);
  end
  $$;

create or replace function shopsync.list_api_keys(p_organization_id uuid)
  returns table (key_id uuid, name text, prefix text, store_ids uuid[], resources text[],
                 requests_per_second double precision, burst integer, status text, created_by uuid,
                 created_at timestamptz, expires_at timestamptz, revoked_at timestamptz, last_used_at timestamptz)
  language plpgsql stable security definer set search_path = ''
  as $$
  begin
    perform shopsync_private.require_user();
    if not shopsync.has_org_role(p_organization_id, array['owner', 'admin']) then
      raise exception 'only owners and admins of organization % can list its API keys', p_organization_id
        using errcode = '42501';
    end if;
    return query
      select k.id, k.name, k.prefix, k.store_ids, k.resources, k.requests_per_second, k.burst,
             case when k.revoked_at is not null then 'revoked'
                  when k.expires_at is not null and k.expires_at <= now() then 'expired' else 'active' end,
             k.created_by, k.created_at, k.expires_at, k.revoked_at, k.last_used_at
        from shopsync_private.api_keys k
       where k.organization_id = p_organization_id
       order by k.created_at desc;
  end
  $$;

create or replace function shopsync.revoke_api_key(p_key_id uuid) returns void
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_user uuid := shopsync_private.require_user();
    v_key shopsync_private.api_keys;
  begin
    select * into v_key from shopsync_private.api_keys k where k.id = p_key_id for update;
    if not found or not shopsync.is_member(v_key.organization_id) then
      raise exception 'unknown API key %', coalesce(p_key_id::text, 'null') using errcode = 'P0002';
    end if;
    if not shopsync.has_org_role(v_key.organization_id, array['owner', 'admin']) then
      raise exception 'only owners and admins can revoke API keys' using errcode = '42501';
    end if;
    if v_key.revoked_at is not null then
      raise exception 'API key % was already revoked at %', v_key.prefix, v_key.revoked_at using errcode = '55000';
    end if;
    update shopsync_private.api_keys k set revoked_at = now(), revoked_by = v_user where k.id = p_key_id;
    perform shopsync_private.log_activity(v_key.organization_id, null, 'api_key.revoked',
                                          jsonb_build_object('key_id', v_key.id, 'prefix', v_key.prefix));
  end
  $$;

-- --- before a look-up (web process, service role) -------------------------------------------------------------

-- Who is calling and may they: one row, always. refusal is null when the look-up may go ahead, else
-- no_caller, unknown_key, revoked_key, expired_key, rate_limited (retry_after seconds), unknown_store (also a
-- store of another organization, or outside the key's stores: the same answer as "does not exist") or
-- resource_not_in_scope. organization_id is known whenever the refusal can be audited: the key's organization,
-- or for a user the store's. policy is the store's access policy for p_resource; when it is sync and p_lookup is
-- given, answer is lookup_synced's (one round trip for the whole look-up); when it is api_only, credentials is the
-- store's sealed credentials row for the connector (still sealed: opened by the web process). A caller's requests are
-- admitted by a GCRA in shopsync_private.rate_limits (the table the platforms' limiter uses): a refused request
-- reserves nothing, so a caller over its rate gets its requests back as soon as the rate allows.
create or replace function shopsync.begin_lookup(
  p_store_id uuid, p_resource text, p_key_hash text default null, p_user_id uuid default null,
  p_user_requests_per_second double precision default 10, p_user_burst integer default 20,
  p_lookup text default null, p_values text[] default null, p_limit integer default 10
) returns table (refusal text, organization_id uuid, platform text, shop_key text, store_status text, policy text,
                 key_id uuid, retry_after double precision, answer json, credentials json)
  language plpgsql set search_path = ''
  as $$
  declare
    v_now timestamptz := clock_timestamp();
    v_key shopsync_private.api_keys;
    v_store shopsync.stores;
    v_org uuid;
    v_limit_key text;
    v_rate double precision;
    v_burst integer;
    v_interval interval;
    v_next timestamptz;
    v_policy text;
  begin
    if p_resource is not null then
      perform shopsync_private.assert_resource(p_resource);
    end if;
    if p_key_hash is not null then
      select * into v_key from shopsync_private.api_keys k where k.key_hash = p_key_hash;
      if not found then
        return query select 'unknown_key', null::uuid, null, null, null, null, null::uuid, 0::float8, null::json,
                            null::json;
        return;
      end if;
      v_org := v_key.organization_id;
      if v_key.revoked_at is not null or v_key.expires_at <= v_now then
        return query select case when v_key.revoked_at is not null then 'revoked_key' else 'expired_key' end,
                            v_org, null, null, null, null, v_key.id, 0::float8, null::json, null::json;
        return;
      end if;
      v_limit_key := 'lookups:key:' || v_key.id;
      v_rate := v_key.requests_per_second;
      v_burst := v_key.burst;
    elsif p_user_id is not null then
      v_limit_key := 'lookups:user:' || p_user_id;
      v_rate := p_user_requests_per_second;
      v_burst := p_user_burst;
    else
      return query select 'no_caller', null::uuid, null, null, null, null, null::uuid, 0::float8, null::json,
                          null::json;
      return;
    end if;
    if p_store_id is not null then
      select * into v_store from shopsync.stores s where s.id = p_store_id;
      if v_key.id is null and found and exists (
          select 1 from shopsync.organization_members m
           where m.organization_id = v_store.organization_id and m.user_id = p_user_id) then
        v_org := v_store.organization_id;
      end if;
    end if;
    -- the rate first: probing for stores counts too
    v_interval := make_interval(secs => 1.0 / v_rate);
    insert into shopsync_private.rate_limits as r (key, next_free_at, updated_at)
      values (v_limit_key, v_now + v_interval, v_now)
      on conflict (key) do update
        set next_free_at = greatest(r.next_free_at, v_now) + v_interval, updated_at = v_now
        where greatest(r.next_free_at, v_now) + v_interval <= v_now + v_interval * v_burst
      returning r.next_free_at into v_next;
    if v_next is null then
      return query
        select 'rate_limited', v_org, null, null, null, null, v_key.id,
               greatest(0.001, extract(epoch from (greatest(r.next_free_at, v_now) + v_interval
                                                   - v_interval * v_burst - v_now))::float8), null::json, null::json
          from shopsync_private.rate_limits r where r.key = v_limit_key;
      return;
    end if;
    if v_key.id is not null and (v_key.last_used_at is null or v_key.last_used_at < v_now - interval '1 minute') then
      update shopsync_private.api_keys k set last_used_at = v_now where k.id = v_key.id;   -- once a minute at most
    end if;
    if p_store_id is null then
      return query select null::text, v_org, null, null, null, null, v_key.id, 0::float8, null::json, null::json;
      return;
    end if;
    if v_store.id is null or (v_key.id is not null and (v_store.organization_id <> v_key.organization_id
                                                         or not coalesce(v_store.id = any (v_key.store_ids), true)))
       or (v_key.id is null and v_org is null) then
      return query select 'unknown_store', v_org, null, null, null, null, v_key.id, 0::float8, null::json, null::json;
      return;
    end if;
    if v_key.id is not null and p_resource is not null and not p_resource = any (v_key.resources) then
      return query select 'resource_not_in_scope', v_org, v_store.platform, null, null, null, v_key.id, 0::float8,
                          null::json, null::json;
      return;
    end if;
    v_policy := case when p_resource is null then null else shopsync_private.store_policy(v_store.id, p_resource) end;
    return query select null::text, v_org, v_store.platform, v_store.shop_key, v_store.status, v_policy, v_key.id,
                        0::float8, case when v_policy = 'sync' and p_lookup is not null
                                        then shopsync.lookup_synced(v_store.id, p_lookup, p_values, p_limit) end,
                        case when v_policy = 'api_only' and p_lookup is not null then (
                          select json_build_object('kind', c.kind, 'key_id', c.key_id, 'sealed', c.sealed,
                                                   'access_expires_at', c.access_expires_at,
                                                   'refresh_expires_at', c.refresh_expires_at, 'version', c.version)
                            from shopsync_private.store_credentials c where c.store_id = v_store.id) end;
  end
  $$;

-- A key's state without using its rate (the MCP endpoint refuses a dead key before any tool runs): active,
-- revoked, expired, or null for a key that does not exist.
create or replace function shopsync.lookup_key_status(p_key_hash text) returns text
  language plpgsql stable set search_path = ''
  as $$
  begin
    return (select case when k.revoked_at is not null then 'revoked'
                        when k.expires_at <= now() then 'expired' else 'active' end
              from shopsync_private.api_keys k where k.key_hash = p_key_hash);
  end
  $$;

-- The stores a caller may look up (its key's, or every store of the user's organizations) with the access
-- policy of each resource it may look up. Call begin_lookup first: this only lists.
create or replace function shopsync.lookup_stores(p_key_hash text default null, p_user_id uuid default null)
  returns table (store_id uuid, organization_id uuid, platform text, shop_key text, display_name text, status text,
                 policies jsonb)
  language plpgsql stable set search_path = ''
  as $$
  begin
    return query
      select s.id, s.organization_id, s.platform, s.shop_key, s.display_name, s.status,
             (select coalesce(jsonb_object_agg(p.key, p.value), '{}')
                from jsonb_each(shopsync_private.store_policies(s.id)) p
               where k.id is null or p.key = any (k.resources))
        from shopsync.stores s
        left join shopsync_private.api_keys k on k.key_hash = p_key_hash
       where case when p_key_hash is not null
                  then k.id is not null and k.revoked_at is null and coalesce(k.expires_at > now(), true)
                       and s.organization_id = k.organization_id and coalesce(s.id = any (k.store_ids), true)
                  else exists (select 1 from shopsync.organization_members m
                                where m.organization_id = s.organization_id and m.user_id = p_user_id) end
       order by s.organization_id, s.created_at, s.id;
  end
  $$;

-- --- answers from the synced tables ------------------------------------------------------------------------------

-- Rows as a look-up answers them: the columns of the canonical model's answer (never raw, which can be large, nor
-- the organization or the search columns), built as json (cheaper than jsonb for an answer that is only sent on).

create or replace function shopsync_private.lookup_customers_json(p_store_id uuid, p_ids text[]) returns json
  language plpgsql stable set search_path = ''
  as $$
  begin
    return json_build_object('customers', coalesce((
      select json_agg(json_build_object(
               'id', c.id, 'email', c.email, 'phone', c.phone, 'first_name', c.first_name, 'last_name', c.last_name,
               'state', c.state, 'accepts_marketing', c.accepts_marketing, 'orders_count', c.orders_count,
               'total_spent', c.total_spent, 'currency', c.currency, 'tags', c.tags,
               'default_address', c.default_address,
               'source_created_at', c.source_created_at, 'source_updated_at', c.source_updated_at)
             order by array_position(p_ids, c.id))
        from shopsync.customers c where c.store_id = p_store_id and c.id = any (p_ids)), '[]'));
  end
  $$;

-- Orders with their lines and fulfillments, in the order of p_ids.
create or replace function shopsync_private.lookup_orders_json(p_store_id uuid, p_ids text[]) returns json
  language plpgsql stable set search_path = ''
  as $$
  begin
    return json_build_object(
      'orders', coalesce((
        select json_agg(json_build_object(
                 'id', o.id, 'name', o.name, 'order_number', o.order_number, 'customer_id', o.customer_id,
                 'email', o.email, 'phone', o.phone, 'financial_status', o.financial_status,
                 'fulfillment_status', o.fulfillment_status, 'currency', o.currency, 'subtotal_price', o.subtotal_price,
                 'total_tax', o.total_tax, 'total_discounts', o.total_discounts, 'total_shipping', o.total_shipping,
                 'total_price', o.total_price, 'total_refunded', o.total_refunded,
                 'shipping_address', o.shipping_address, 'billing_address', o.billing_address, 'tags', o.tags,
                 'processed_at', o.processed_at, 'cancelled_at', o.cancelled_at, 'closed_at', o.closed_at,
                 'source_created_at', o.source_created_at, 'source_updated_at', o.source_updated_at)
               order by array_position(p_ids, o.id))
          from shopsync.orders o where o.store_id = p_store_id and o.id = any (p_ids)), '[]'),
      'order_line_items', coalesce((
        select json_agg(json_build_object(
                 'id', l.id, 'order_id', l.order_id, 'product_id', l.product_id, 'variant_id', l.variant_id,
                 'sku', l.sku, 'title', l.title, 'quantity', l.quantity, 'price', l.price,
                 'total_discount', l.total_discount) order by l.order_id, l.id)
          from shopsync.order_line_items l where l.store_id = p_store_id and l.order_id = any (p_ids)), '[]'),
      'order_fulfillments', coalesce((
        select json_agg(json_build_object(
                 'id', f.id, 'order_id', f.order_id, 'status', f.status, 'tracking_company', f.tracking_company,
                 'tracking_numbers', f.tracking_numbers, 'tracking_urls', f.tracking_urls,
                 'source_created_at', f.source_created_at, 'source_updated_at', f.source_updated_at)
               order by f.order_id, f.source_created_at, f.id)
          from shopsync.order_fulfillments f where f.store_id = p_store_id and f.order_id = any (p_ids)), '[]'));
  end
  $$;

-- Products with their live variants (those in p_variant_ids only, when given), in the order of p_ids.
create or replace function shopsync_private.lookup_products_json(p_store_id uuid, p_ids text[],
                                                                 p_variant_ids text[] default null) returns json
  language plpgsql stable set search_path = ''
  as $$
  begin
    return json_build_object(
      'products', coalesce((
        select json_agg(json_build_object(
                 'id', p.id, 'title', p.title, 'handle', p.handle, 'status', p.status, 'vendor', p.vendor,
                 'product_type', p.product_type, 'tags', p.tags) order by array_position(p_ids, p.id))
          from shopsync.products p where p.store_id = p_store_id and p.id = any (p_ids)), '[]'),
      'product_variants', coalesce((
        select json_agg(json_build_object(
                 'id', v.id, 'product_id', v.product_id, 'title', v.title, 'sku', v.sku, 'barcode', v.barcode,
                 'price', v.price, 'compare_at_price', v.compare_at_price, 'currency', v.currency,
                 'position', v.position, 'inventory_quantity', v.inventory_quantity)
               order by v.product_id, v.position nulls last, v.id)
          from shopsync.product_variants v
         where v.store_id = p_store_id and v.product_id = any (p_ids) and v.deleted_at is null
           and (p_variant_ids is null or v.id = any (p_variant_ids))), '[]'));
  end
  $$;

-- One look-up in a store's synced tables, answered as canonical rows by table ({"customers": [...]}, or
-- {"orders", "order_line_items", "order_fulfillments"}, or {"products", "product_variants"}). p_values are
-- already normalized by the caller: a lowercased email; the digit strings a phone number may be stored as;
-- an order name with and without '#'; the words of a product search (all must be in the title).
create or replace function shopsync.lookup_synced(p_store_id uuid, p_lookup text, p_values text[],
                                                  p_limit integer default 10) returns json
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_limit integer := least(greatest(coalesce(p_limit, 10), 1), 100);
    v_ids text[];
    v_variants text[];
  begin
    if p_values is null or cardinality(p_values) not between 1 and 10 or array_position(p_values, null) is not null then
      raise exception 'a look-up takes 1 to 10 values' using errcode = '22023';
    end if;
    case p_lookup
    when 'customers_by_email' then
      return shopsync_private.lookup_customers_json(p_store_id, array(
        select c.id from shopsync.customers c
         where c.store_id = p_store_id and c.email_normalized = p_values[1] and c.deleted_at is null
         order by c.source_updated_at desc nulls last, c.id limit v_limit));
    when 'customers_by_phone' then
      return shopsync_private.lookup_customers_json(p_store_id, array(
        select c.id from shopsync.customers c
         where c.store_id = p_store_id and c.phone_normalized = any (p_values) and c.deleted_at is null
         order by c.source_updated_at desc nulls last, c.id limit v_limit));
    when 'orders_by_customer' then
      v_ids := array(select o.id from shopsync.orders o
                      where o.store_id = p_store_id and o.customer_id = p_values[1] and o.deleted_at is null
                      order by coalesce(o.processed_at, o.source_created_at) desc nulls last, o.id desc limit v_limit);
    when 'orders_by_email' then
      v_ids := array(select o.id from shopsync.orders o
                      where o.store_id = p_store_id and o.email_normalized = p_values[1] and o.deleted_at is null
                      order by coalesce(o.processed_at, o.source_created_at) desc nulls last, o.id desc limit v_limit);
    when 'orders_by_phone' then
      v_ids := array(select o.id from shopsync.orders o
                      where o.store_id = p_store_id and o.phone_normalized = any (p_values) and o.deleted_at is null
                      order by coalesce(o.processed_at, o.source_created_at) desc nulls last, o.id desc limit v_limit);
    when 'orders_by_number' then
      v_ids := array(select o.id from shopsync.orders o
                      where o.store_id = p_store_id and o.name = any (p_values) and o.deleted_at is null
                      order by coalesce(o.processed_at, o.source_created_at) desc nulls last, o.id desc limit v_limit);
    when 'order_by_id' then
      v_ids := array(select o.id from shopsync.orders o
                      where o.store_id = p_store_id and o.id = p_values[1] and o.deleted_at is null);
    when 'variants_by_sku' then
      select coalesce(array_agg(v.id), '{}'), coalesce(array_agg(distinct v.product_id), '{}') into v_variants, v_ids
        from (select v.id, v.product_id from shopsync.product_variants v
               where v.store_id = p_store_id and v.sku = p_values[1] and v.deleted_at is null
               order by v.product_id, v.id limit v_limit) v;
      return shopsync_private.lookup_products_json(p_store_id, v_ids, v_variants);
    when 'products_by_text' then
      v_ids := array(select p.id from shopsync.products p
                      where p.store_id = p_store_id and p.deleted_at is null
                        and not exists (select 1 from unnest(p_values) w
                                         where p.title is null or p.title not ilike
                                           '%' || replace(replace(replace(w, '\', '\\'), '%', '\%'), '_', '\_') || '%')
                      order by p.title, p.id limit v_limit);
      return shopsync_private.lookup_products_json(p_store_id, v_ids);
    else
      raise exception 'unknown look-up %', coalesce(p_lookup, 'null') using errcode = '22023';
    end case;
    return shopsync_private.lookup_orders_json(p_store_id, v_ids);
  end
  $$;

-- --- the audit ----------------------------------------------------------------------------------------------

-- One look-up's trace: who, where, which look-up, how it went. Never the values asked for or the answer.
create or replace function shopsync.record_lookup(
  p_organization_id uuid, p_interface text, p_lookup text, p_outcome text, p_status integer,
  p_latency_ms double precision, p_store_id uuid default null, p_key_id uuid default null,
  p_user_id uuid default null, p_resource text default null, p_policy text default null,
  p_result_count integer default 0
) returns void
  language plpgsql set search_path = ''
  as $$
  begin
    insert into shopsync.lookup_audit (organization_id, store_id, key_id, key_prefix, user_id, interface, lookup,
                                       resource, policy, outcome, status, result_count, latency_ms)
      values (p_organization_id, p_store_id, p_key_id,
              (select k.prefix from shopsync_private.api_keys k where k.id = p_key_id), p_user_id, p_interface,
              p_lookup, p_resource, p_policy, p_outcome, p_status, coalesce(p_result_count, 0),
              greatest(coalesce(p_latency_ms, 0), 0));
  end
  $$;

-- Retention (run by prune_history): audit rows older than settings.retention.lookup_audit (30 days).
create or replace function shopsync_private.prune_lookup_audit() returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_age interval := coalesce((select (s.value ->> 'lookup_audit')::interval from shopsync_private.settings s
                                 where s.key = 'retention'), interval '30 days');
    v_count integer;
  begin
    delete from shopsync.lookup_audit a where a.occurred_at < now() - v_age;
    get diagnostics v_count = row_count;
    return jsonb_build_object('lookup_audit', v_count);
  end
  $$;

-- How long the look-up audit is kept (admin; 1 hour to 10 years); returns the retention settings.
create or replace function shopsync.set_lookup_audit_retention(p_age interval) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_new jsonb;
  begin
    if p_age is null or p_age < interval '1 hour' or p_age > interval '10 years' then
      raise exception 'retention for lookup_audit must be between 1 hour and 10 years, got %', p_age
        using errcode = '22023';
    end if;
    update shopsync_private.settings s set value = s.value || jsonb_build_object('lookup_audit', p_age::text),
                                           updated_at = now()
      where s.key = 'retention'
      returning s.value into v_new;
    return v_new;
  end
  $$;
