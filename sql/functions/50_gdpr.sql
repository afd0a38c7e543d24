-- GDPR / privacy requests (Shopify's compliance topics; other platforms later): record a request, then
-- run it as a `gdpr.process` job. Each operation is one function call, so one transaction: it re-checks
-- the job's lease, does the work, and records the outcome. Personal data never leaves the database
-- through the job: payloads carry the request id only, job results carry counts only, and the export
-- lands in gdpr_requests.result (owners and admins only, see 0005).

-- A platform id as text: numbers and strings alike, a gid's trailing number (gid://shopify/Order/12 → 12).
create or replace function shopsync_private.gdpr_id(p_value text) returns text
  language sql immutable set search_path = ''
  as $$
    select nullif(coalesce(substring(btrim(p_value) from '^gid://[^/]+/[^/]+/([0-9]+)(?:\?.*)?$'), btrim(p_value)), '')
  $$;

-- Phones compare by their digits ("+1 (555) 010-0001" = "15550100001"); too few digits identify nobody.
create or replace function shopsync_private.gdpr_phone(p_value text) returns text
  language sql immutable set search_path = ''
  as $$
    select case when length(regexp_replace(coalesce(p_value, ''), '[^0-9]', '', 'g')) >= 6
                then regexp_replace(p_value, '[^0-9]', '', 'g') end
  $$;

-- A subject field as a text array: an array (null elements dropped), a single scalar, or nothing.
create or replace function shopsync_private.gdpr_text_array(p_value jsonb, p_field text) returns text[]
  language plpgsql immutable set search_path = ''
  as $$
  begin
    case coalesce(jsonb_typeof(p_value), 'null')
      when 'null' then return '{}';
      when 'array' then
        if exists (select 1 from jsonb_array_elements(p_value) e where jsonb_typeof(e) in ('object', 'array')) then
          raise exception 'subject.% must hold strings or numbers', p_field using errcode = '22023';
        end if;
        return coalesce((select array_agg(e) from jsonb_array_elements_text(p_value) e
                          where e is not null and btrim(e) <> ''), '{}');
      when 'object' then
        raise exception 'subject.% must be a list of strings or numbers', p_field using errcode = '22023';
      else
        return array[p_value #>> '{}'];
    end case;
  end
  $$;

-- The subject in its stored shape: {"customer_id": "123", "emails": [...], "phones": [...],
-- "order_ids": [...]}, absent parts left out; emails lowercased and trimmed, ids as text.
create or replace function shopsync_private.gdpr_normalize_subject(p_subject jsonb) returns jsonb
  language plpgsql immutable set search_path = ''
  as $$
  declare
    v_subject jsonb := coalesce(p_subject, '{}'::jsonb);
    v_customer text;
    v_emails text[];
    v_phones text[];
    v_orders text[];
  begin
    if jsonb_typeof(v_subject) <> 'object' then
      raise exception 'subject must be a JSON object' using errcode = '22023';
    end if;
    if jsonb_typeof(v_subject -> 'customer_id') in ('object', 'array') then
      raise exception 'subject.customer_id must be a string or a number' using errcode = '22023';
    end if;
    v_customer := shopsync_private.gdpr_id(v_subject ->> 'customer_id');
    v_emails := array(select distinct lower(btrim(e))
                        from unnest(shopsync_private.gdpr_text_array(v_subject -> 'emails', 'emails')) e order by 1);
    v_phones := array(select distinct btrim(p)
                        from unnest(shopsync_private.gdpr_text_array(v_subject -> 'phones', 'phones')) p order by 1);
    v_orders := array(select distinct shopsync_private.gdpr_id(o)
                        from unnest(shopsync_private.gdpr_text_array(v_subject -> 'order_ids', 'order_ids')) o
                       order by 1);
    return jsonb_strip_nulls(jsonb_build_object(
      'customer_id', v_customer,
      'emails', case when cardinality(v_emails) > 0 then to_jsonb(v_emails) end,
      'phones', case when cardinality(v_phones) > 0 then to_jsonb(v_phones) end,
      'order_ids', case when cardinality(v_orders) > 0 then to_jsonb(v_orders) end));
  end
  $$;

-- Keys whose values are personal data wherever they appear in a stored platform object (REST
-- snake_case and GraphQL camelCase alike: compared lowercased without underscores). Whole objects
-- go with their key (customer, addresses); `name`/`formatted` only inside address-like objects,
-- because an order's or a line item's name is not personal.
create or replace function shopsync_private.gdpr_is_pii_key(p_key text) returns boolean
  language sql immutable set search_path = ''
  as $$
    select lower(replace(p_key, '_', '')) in (
      'email', 'phone', 'firstname', 'lastname', 'displayname', 'address1', 'address2', 'zip', 'postcode',
      'city', 'company', 'latitude', 'longitude', 'customer', 'billingaddress', 'shippingaddress',
      'defaultaddress', 'addresses', 'displayaddress', 'destination', 'note', 'noteattributes',
      'customattributes', 'contactemail', 'customeremail', 'browserip', 'clientip', 'clientdetails',
      'customeripaddress', 'customeruseragent', 'customernote')
  $$;

-- `p_value` with every personal key removed, recursively (objects inside arrays too).
create or replace function shopsync_private.gdpr_strip_pii(p_value jsonb) returns jsonb
  language plpgsql immutable set search_path = ''
  as $$
  declare
    v_address_like boolean;
    v_out jsonb;
  begin
    case jsonb_typeof(p_value)
      when 'object' then
        v_address_like := exists (
          select 1 from jsonb_object_keys(p_value) k
           where lower(replace(k, '_', '')) in ('address1', 'address2', 'zip', 'postcode', 'city', 'firstname',
                                                'lastname'));
        select coalesce(jsonb_object_agg(e.key, case when jsonb_typeof(e.value) in ('object', 'array')
                                                     then shopsync_private.gdpr_strip_pii(e.value)
                                                     else e.value end), '{}'::jsonb)
          into v_out
          from jsonb_each(p_value) e
         where not shopsync_private.gdpr_is_pii_key(e.key)
           and not (v_address_like and lower(replace(e.key, '_', '')) in ('name', 'formatted', 'formattedarea'));
        return v_out;
      when 'array' then
        select coalesce(jsonb_agg(case when jsonb_typeof(a.value) in ('object', 'array')
                                       then shopsync_private.gdpr_strip_pii(a.value)
                                       else a.value end order by a.ord), '[]'::jsonb)
          into v_out
          from jsonb_array_elements(p_value) with ordinality as a(value, ord);
        return v_out;
      else
        return p_value;
    end case;
  end
  $$;

-- Who the subject is in one store: the matching customers (by id, email case-insensitively, or
-- phone digits) and their orders (by customer id, email or phone — the subject's and the matched
-- customers' own — plus the order ids the platform named).
create or replace function shopsync_private.gdpr_scope(
  p_store_id uuid, p_subject jsonb, out customer_ids text[], out order_ids text[], out emails text[],
  out phones text[]
)
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_subject jsonb := shopsync_private.gdpr_normalize_subject(p_subject);
    v_customer text := v_subject ->> 'customer_id';
    v_emails text[] := shopsync_private.gdpr_text_array(v_subject -> 'emails', 'emails');
    v_phones text[] := array(select shopsync_private.gdpr_phone(p)
                               from unnest(shopsync_private.gdpr_text_array(v_subject -> 'phones', 'phones')) p
                              where shopsync_private.gdpr_phone(p) is not null);
    v_orders text[] := shopsync_private.gdpr_text_array(v_subject -> 'order_ids', 'order_ids');
  begin
    customer_ids := array(
      select c.id from shopsync.customers c where c.store_id = p_store_id and c.id = v_customer
      union
      select c.id from shopsync.customers c where c.store_id = p_store_id and c.email_normalized = any (v_emails)
      union
      select c.id from shopsync.customers c where c.store_id = p_store_id and c.phone_normalized = any (v_phones)
      order by 1);
    -- the customers' own addresses also find their guest checkouts
    select v_emails || coalesce(array_agg(distinct lower(btrim(c.email))) filter (where c.email is not null), '{}'),
           v_phones || coalesce(array_agg(distinct shopsync_private.gdpr_phone(c.phone))
                                  filter (where shopsync_private.gdpr_phone(c.phone) is not null), '{}')
      into v_emails, v_phones
      from shopsync.customers c where c.store_id = p_store_id and c.id = any (customer_ids);
    order_ids := array(
      select o.id from shopsync.orders o
       where o.store_id = p_store_id and o.customer_id = any (customer_ids || v_customer)
      union
      select o.id from shopsync.orders o where o.store_id = p_store_id and o.email_normalized = any (v_emails)
      union
      select o.id from shopsync.orders o where o.store_id = p_store_id and o.id = any (v_orders)
      union
      select o.id from shopsync.orders o where o.store_id = p_store_id and o.phone_normalized = any (v_phones)
      order by 1);
    emails := v_emails;      -- lowercased
    phones := v_phones;      -- digits only
  end
  $$;

-- The job of a request: no personal data in the payload; one per request while queued or running;
-- serialized with the store's syncs (concurrency key) so a sync page fetched before a redaction is
-- not written after it by a job running at the same time.
create or replace function shopsync_private.enqueue_gdpr_job(p_request_id bigint) returns bigint
  language sql set search_path = ''
  as $$
    select shopsync.enqueue_job(shopsync_private.core_job_kind('gdpr.process'), jsonb_build_object('request_id', g.id), p_store_id => g.store_id,
                                p_dedupe_key => 'gdpr:' || g.id, p_concurrency_key => 'store:' || g.store_id)
      from shopsync.gdpr_requests g where g.id = p_request_id
  $$;

-- Record a privacy request and enqueue its job. Deduplicated on (platform, platform_request_id) when
-- that id is given; a repeat of a request that has not completed re-enqueues it (a no-op while its
-- job is queued or running). Returns the request id and whether it was a duplicate.
create or replace function shopsync.record_gdpr_request(
  p_platform text,
  p_store_id uuid,
  p_request_type text,
  p_platform_request_id text default null,
  p_subject jsonb default '{}'::jsonb
) returns table (request_id bigint, duplicate boolean)
  language plpgsql set search_path = ''
  as $$
  declare
    v_store shopsync.stores;
    v_subject jsonb;
    v_id bigint;
    v_status text;
  begin
    if p_request_type is null or p_request_type not in ('data_request', 'customer_redact', 'shop_redact') then
      raise exception 'invalid request type %: expected data_request, customer_redact or shop_redact',
        coalesce(p_request_type, 'null') using errcode = '22023';
    end if;
    select * into v_store from shopsync.stores s where s.id = p_store_id;
    if not found then
      raise exception 'unknown store %', p_store_id using errcode = 'P0002';
    end if;
    if p_platform is distinct from v_store.platform then
      raise exception 'store % belongs to platform %, not %', p_store_id, v_store.platform, coalesce(p_platform, 'null')
        using errcode = '22023';
    end if;
    if p_request_type = 'shop_redact' then
      v_subject := '{}'::jsonb;                -- the whole shop: no data subject
    else
      v_subject := shopsync_private.gdpr_normalize_subject(p_subject);
      if v_subject = '{}'::jsonb then
        raise exception 'a % request needs subject.customer_id, emails, phones or order_ids', p_request_type
          using errcode = '22023';
      end if;
    end if;
    insert into shopsync.gdpr_requests as g (store_id, organization_id, platform, platform_request_id, request_type,
                                             subject)
      values (v_store.id, v_store.organization_id, p_platform, nullif(btrim(p_platform_request_id), ''),
              p_request_type, v_subject)
      on conflict (platform, platform_request_id) do nothing
      returning g.id into v_id;
    if v_id is null then
      select g.id, g.status into v_id, v_status from shopsync.gdpr_requests g
       where g.platform = p_platform and g.platform_request_id = btrim(p_platform_request_id);
      if v_status <> 'completed' and exists (select 1 from shopsync.gdpr_requests g
                                               where g.id = v_id and g.store_id is not null) then
        perform shopsync_private.enqueue_gdpr_job(v_id);
      end if;
      return query select v_id, true;
      return;
    end if;
    perform shopsync_private.enqueue_gdpr_job(v_id);
    return query select v_id, false;
  end
  $$;

-- The request a job works on, locked; P0002 when unknown. Re-checks the job's lease first.
create or replace function shopsync_private.gdpr_request_for_job(p_request_id bigint, p_job_id bigint, p_worker text)
  returns shopsync.gdpr_requests
  language plpgsql set search_path = ''
  as $$
  declare
    v_request shopsync.gdpr_requests;
  begin
    perform shopsync_private.assert_job_held(p_job_id, p_worker);
    select * into v_request from shopsync.gdpr_requests g where g.id = p_request_id for update;
    if not found then
      raise exception 'unknown gdpr request %', p_request_id using errcode = 'P0002';
    end if;
    return v_request;
  end
  $$;

-- What the job returns: counts and states, never personal data.
create or replace function shopsync_private.gdpr_summary(p_request shopsync.gdpr_requests, p_already boolean)
  returns jsonb
  language sql immutable set search_path = ''
  as $$
    select jsonb_build_object('request_id', p_request.id, 'request_type', p_request.request_type,
                              'status', p_request.status, 'counts', coalesce(p_request.result -> 'counts', '{}'),
                              'already_completed', p_already)
  $$;

create or replace function shopsync_private.gdpr_complete(p_request_id bigint, p_result jsonb) returns shopsync.gdpr_requests
  language sql set search_path = ''
  as $$
    -- the subject is kept only while the request is open; the customer id alone stays for the record
    update shopsync.gdpr_requests g
       set status = 'completed', completed_at = now(), started_at = coalesce(g.started_at, now()), error = null,
           result = p_result,
           subject = jsonb_strip_nulls(jsonb_build_object('customer_id', g.subject -> 'customer_id'))
     where g.id = p_request_id
    returning g.*
  $$;

-- A job starts on its request: status processing. A completed request stays completed (the job ran
-- before and is being delivered again). Returns the request's facts (no subject).
create or replace function shopsync.start_gdpr_request(p_request_id bigint, p_job_id bigint default null,
                                                       p_worker text default null)
  returns table (request_id bigint, request_type text, status text, store_id uuid, organization_id uuid,
                 platform text)
  language plpgsql set search_path = ''
  as $$
  declare
    v_request shopsync.gdpr_requests := shopsync_private.gdpr_request_for_job(p_request_id, p_job_id, p_worker);
  begin
    if v_request.status <> 'completed' then
      update shopsync.gdpr_requests g set status = 'processing', started_at = now(), completed_at = null, error = null
       where g.id = p_request_id;
      v_request.status := 'processing';
    end if;
    return query select v_request.id, v_request.request_type, v_request.status, v_request.store_id,
                        v_request.organization_id, v_request.platform;
  end
  $$;

-- Record how a request ended when its operation could not: failed with the (already redacted)
-- error, or completed. A completed request is never turned into a failed one. Returns the status.
create or replace function shopsync.finish_gdpr_request(
  p_request_id bigint, p_status text, p_error text default null, p_result jsonb default null,
  p_job_id bigint default null, p_worker text default null
) returns text
  language plpgsql set search_path = ''
  as $$
  declare
    v_request shopsync.gdpr_requests;
  begin
    if p_status is null or p_status not in ('completed', 'failed') then
      raise exception 'invalid gdpr request status %: expected completed or failed', coalesce(p_status, 'null')
        using errcode = '22023';
    end if;
    v_request := shopsync_private.gdpr_request_for_job(p_request_id, p_job_id, p_worker);
    if v_request.status = 'completed' then
      return 'completed';
    end if;
    if p_status = 'completed' then
      perform shopsync_private.gdpr_complete(p_request_id, coalesce(p_result, v_request.result, '{}'::jsonb));
    else
      update shopsync.gdpr_requests g
         set status = 'failed', completed_at = now(), error = left(coalesce(p_error, 'unknown error'), 4000)
       where g.id = p_request_id;
    end if;
    return p_status;
  end
  $$;

create or replace function shopsync_private.gdpr_assert_type(p_request shopsync.gdpr_requests, p_type text) returns void
  language plpgsql immutable set search_path = ''
  as $$
  begin
    if p_request.request_type <> p_type then
      raise exception 'gdpr request % is a %, not a %', p_request.id, p_request.request_type, p_type
        using errcode = '22023';
    end if;
  end
  $$;

-- The catalog tables that hold a data subject's rows, with the ids that find them in one store: the
-- subject's customers for tables linked by customer, their orders for tables linked by order.
create or replace function shopsync_private.gdpr_subject_tables(p_customer_ids text[], p_order_ids text[])
  returns table (table_name text, subject_column text, subject_link text, ids text[], redaction text,
                 personal_columns text[], order_by text, has_redacted_at boolean)
  language sql stable set search_path = ''
  as $$
    select t.table_name, t.subject_column, t.subject_link,
           case t.subject_link when 'customer' then p_customer_ids else p_order_ids end,
           t.redaction, t.personal_columns,
           (select string_agg(format('t.%I', c), ', ')
              from unnest(array[t.subject_column] || t.key_columns[2:]) c),
           exists (select 1 from pg_attribute a
                    where a.attrelid = format('shopsync.%I', t.table_name)::regclass and a.attname = 'redacted_at'
                      and not a.attisdropped)
      from shopsync_private.synced_tables t
     where t.subject_link is not null
     order by t.position
  $$;

-- data_request: everything stored about the subject in the request's store — every catalog table that
-- links rows to a subject (customers, their orders, those orders' line items and fulfillments, ...), raw
-- included — into gdpr_requests.result: {"generated_at", "<table>": [rows], "counts": {"<table>": n}}.
create or replace function shopsync.gdpr_data_request(p_request_id bigint, p_job_id bigint default null,
                                                      p_worker text default null) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_request shopsync.gdpr_requests := shopsync_private.gdpr_request_for_job(p_request_id, p_job_id, p_worker);
    v_scope record;
    v_table record;
    v_rows jsonb;
    v_export jsonb := jsonb_build_object('generated_at', now());
    v_counts jsonb := '{}'::jsonb;
  begin
    perform shopsync_private.gdpr_assert_type(v_request, 'data_request');
    if v_request.status = 'completed' then
      return shopsync_private.gdpr_summary(v_request, true);   -- the export exists; the subject is gone
    end if;
    select * into v_scope from shopsync_private.gdpr_scope(v_request.store_id, v_request.subject);
    for v_table in select * from shopsync_private.gdpr_subject_tables(v_scope.customer_ids, v_scope.order_ids) loop
      execute format('select coalesce(jsonb_agg(to_jsonb(t) order by %s), ''[]'') from shopsync.%I t
                       where t.store_id = $1 and t.%I = any ($2)',
                     v_table.order_by, v_table.table_name, v_table.subject_column)
        into v_rows using v_request.store_id, v_table.ids;
      v_export := v_export || jsonb_build_object(v_table.table_name, v_rows);
      v_counts := v_counts || jsonb_build_object(v_table.table_name, jsonb_array_length(v_rows));
    end loop;
    v_export := v_export || jsonb_build_object('counts', v_counts);
    v_request := shopsync_private.gdpr_complete(p_request_id, v_export);
    perform shopsync_private.log_activity(v_request.organization_id, v_request.store_id, 'gdpr.data_request',
                                          jsonb_build_object('request_id', v_request.id, 'counts', v_counts));
    return shopsync_private.gdpr_summary(v_request, false);
  end
  $$;

-- customer_redact: in every catalog table linked to a subject, the subject's rows are deleted
-- (redaction 'delete': customers) or scrubbed (redaction 'scrub': orders stay, so revenue figures
-- survive, with their personal columns cleared, redacted_at set where the table has it, and personal keys
-- stripped from raw — line items and fulfillments too). Webhook deliveries that carry the subject:
-- customer topics are deleted (they would re-create the customer), the others (orders, the compliance
-- request itself) are stripped. Running it again changes nothing more.
create or replace function shopsync.gdpr_customer_redact(p_request_id bigint, p_job_id bigint default null,
                                                         p_worker text default null) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_request shopsync.gdpr_requests := shopsync_private.gdpr_request_for_job(p_request_id, p_job_id, p_worker);
    v_store uuid := v_request.store_id;
    v_scope record;
    v_table record;
    v_customer text := v_request.subject ->> 'customer_id';
    v_gone text[];
    v_deleted bigint;
    v_counts jsonb := '{}'::jsonb;
    v_n bigint;
  begin
    perform shopsync_private.gdpr_assert_type(v_request, 'customer_redact');
    if v_request.status = 'completed' then
      return shopsync_private.gdpr_summary(v_request, true);
    end if;
    -- writes of this store under way finish first; later ones see what this redacts (lock_store_writes)
    perform shopsync_private.lock_store_writes(v_store, true);
    select * into v_scope from shopsync_private.gdpr_scope(v_store, v_request.subject);
    for v_table in select * from shopsync_private.gdpr_subject_tables(v_scope.customer_ids, v_scope.order_ids) loop
      if v_table.redaction = 'delete' then
        execute format('with gone as (delete from shopsync.%I t where t.store_id = $1 and t.%I = any ($2)
                                      returning t.id)
                        select coalesce(array_agg(g.id), ''{}'') from gone g',
                       v_table.table_name, v_table.subject_column)
          into v_gone using v_store, v_table.ids;
        v_counts := v_counts || jsonb_build_object(v_table.table_name || '_deleted', cardinality(v_gone));
        -- remembered, so no later page or delivery with data as old as the request brings them back (the
        -- subject's own id too, when the request names one this store has not stored yet)
        insert into shopsync_private.redacted_rows as r (store_id, table_name, row_id, redacted_at)
        select distinct v_store, v_table.table_name, i, v_request.received_at
          from unnest(v_gone || case when v_table.subject_column = 'id' and v_table.subject_link = 'customer'
                                          and v_customer is not null then array[v_customer] else '{}' end) i
        on conflict (store_id, table_name, row_id)
          do update set redacted_at = greatest(r.redacted_at, excluded.redacted_at);
      else
        -- only rows that still hold something personal (or are not marked yet) are rewritten
        execute format(
          'update shopsync.%1$I t set %2$s raw = shopsync_private.gdpr_strip_pii(t.raw)
            where t.store_id = $1 and t.%3$I = any ($2)
              and (%4$s t.raw is distinct from shopsync_private.gdpr_strip_pii(t.raw))',
          v_table.table_name,
          (select coalesce(string_agg(format('%I = null, ', c), ''), '') from unnest(v_table.personal_columns) c)
            || case when v_table.has_redacted_at then 'redacted_at = coalesce(t.redacted_at, now()), ' else '' end,
          v_table.subject_column,
          (select coalesce(string_agg(format('t.%I is not null or ', c), ''), '') from unnest(v_table.personal_columns) c)
            || case when v_table.has_redacted_at then 't.redacted_at is null or ' else '' end)
          using v_store, v_table.ids;
        get diagnostics v_n = row_count;
        v_counts := v_counts || jsonb_build_object(v_table.table_name || '_redacted', v_n);
      end if;
    end loop;
    -- webhook deliveries of this store that carry the subject
    with hits as (
      select w.id, w.topic ~* '^customers?[/.]' and jsonb_typeof(w.payload -> 'customer') is distinct from 'object'
                   as about_customer
        from shopsync.webhook_inbox w
       where w.store_id = v_store
         and ((w.topic ~* '^customers?[/.]'
               and shopsync_private.gdpr_id(w.payload ->> 'id') = any (v_scope.customer_ids || v_customer))
              or shopsync_private.gdpr_id(w.payload ->> 'customer_id') = any (v_scope.customer_ids || v_customer)
              or shopsync_private.gdpr_id(w.payload -> 'customer' ->> 'id') = any (v_scope.customer_ids || v_customer)
              or (w.topic ~* '^orders?[/.]' and shopsync_private.gdpr_id(w.payload ->> 'id') = any (v_scope.order_ids))
              or lower(btrim(w.payload ->> 'email')) = any (v_scope.emails)
              or lower(btrim(w.payload ->> 'contact_email')) = any (v_scope.emails)
              or lower(btrim(w.payload -> 'customer' ->> 'email')) = any (v_scope.emails)
              or lower(btrim(w.payload -> 'billing' ->> 'email')) = any (v_scope.emails)
              or shopsync_private.gdpr_phone(w.payload ->> 'phone') = any (v_scope.phones)
              or shopsync_private.gdpr_phone(w.payload -> 'customer' ->> 'phone') = any (v_scope.phones))
    ), deleted as (
      delete from shopsync.webhook_inbox w using hits h where w.id = h.id and h.about_customer returning w.id
    ), scrubbed as (
      update shopsync.webhook_inbox w set payload = shopsync_private.gdpr_strip_pii(w.payload)
        from hits h
       where w.id = h.id and not h.about_customer
         and w.payload is distinct from shopsync_private.gdpr_strip_pii(w.payload)
      returning w.id
    )
    select (select count(*) from deleted), (select count(*) from scrubbed) into v_deleted, v_n;
    v_counts := v_counts || jsonb_build_object('webhook_inbox_deleted', v_deleted, 'webhook_inbox_scrubbed', v_n);

    v_request := shopsync_private.gdpr_complete(p_request_id, jsonb_build_object('counts', v_counts));
    perform shopsync_private.log_activity(v_request.organization_id, v_store, 'gdpr.customer_redact',
                                          jsonb_build_object('request_id', v_request.id, 'counts', v_counts));
    return shopsync_private.gdpr_summary(v_request, false);
  end
  $$;

-- shop_redact: every row of the store goes, in every table with a store_id column (found in the
-- catalog, so a table added later is covered), then the store row itself (anything left cascades).
-- Kept: this request (store_id becomes null), the activity log and the events (the organization's own
-- record, without personal data; their store_id becomes null).
-- The job running this request would cascade away with the store; it is detached first so the worker
-- completes it normally. Other open requests of the store are complete with it.
create or replace function shopsync.gdpr_shop_redact(p_request_id bigint, p_job_id bigint default null,
                                                     p_worker text default null) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_request shopsync.gdpr_requests := shopsync_private.gdpr_request_for_job(p_request_id, p_job_id, p_worker);
    v_store shopsync.stores;
    v_table record;
    v_counts jsonb := '{}'::jsonb;
    v_n bigint;
  begin
    perform shopsync_private.gdpr_assert_type(v_request, 'shop_redact');
    if v_request.status = 'completed' then
      return shopsync_private.gdpr_summary(v_request, true);
    end if;
    -- FOR UPDATE also makes writers that are inserting rows of this store finish first (their
    -- foreign-key checks hold KEY SHARE on it) and keeps new ones out until we commit
    select * into v_store from shopsync.stores s where s.id = v_request.store_id for update;
    if found then
      update shopsync.jobs j set store_id = null where j.id = p_job_id;
      update shopsync.gdpr_requests g
         set status = 'completed', completed_at = now(), started_at = coalesce(g.started_at, now()), error = null,
             result = jsonb_build_object('counts', '{}'::jsonb, 'superseded_by', p_request_id),
             subject = jsonb_strip_nulls(jsonb_build_object('customer_id', g.subject -> 'customer_id'))
       where g.store_id = v_store.id and g.id <> p_request_id and g.status <> 'completed';
      get diagnostics v_n = row_count;
      if v_n > 0 then
        v_counts := v_counts || jsonb_build_object('gdpr_requests_superseded', v_n);
      end if;
      for v_table in
        select n.nspname as schema_name, c.relname as table_name
          from pg_attribute a
          join pg_class c on c.oid = a.attrelid
          join pg_namespace n on n.oid = c.relnamespace
         where a.attname = 'store_id' and not a.attisdropped and c.relkind in ('r', 'p')
           and n.nspname in ('shopsync', 'shopsync_private')
           and c.relname not in ('stores', 'gdpr_requests', 'activity_log', 'events')
         order by n.nspname, c.relname
      loop
        if v_table.schema_name = 'shopsync' and v_table.table_name = 'jobs' then
          delete from shopsync.jobs j where j.store_id = v_store.id and j.id is distinct from p_job_id;
        else
          execute format('delete from %I.%I t where t.store_id = $1', v_table.schema_name, v_table.table_name)
            using v_store.id;
        end if;
        get diagnostics v_n = row_count;
        if v_n > 0 then
          v_counts := v_counts || jsonb_build_object(
            case when v_table.schema_name = 'shopsync' then v_table.table_name
                 else v_table.schema_name || '.' || v_table.table_name end, v_n);
        end if;
      end loop;
      -- OAuth states carry the shop, not the store id
      delete from shopsync_private.oauth_states o
       where o.platform = v_store.platform and o.shop_key = v_store.shop_key
         and o.organization_id is not distinct from v_store.organization_id;
      delete from shopsync.stores s where s.id = v_store.id;
      v_counts := v_counts || jsonb_build_object('stores', 1);
    end if;
    v_request := shopsync_private.gdpr_complete(p_request_id, jsonb_build_object('counts', v_counts));
    perform shopsync_private.log_activity(v_request.organization_id, null, 'gdpr.shop_redact',
                                          jsonb_build_object('request_id', v_request.id, 'platform', v_request.platform,
                                                             'store_id', v_store.id, 'counts', v_counts));
    return shopsync_private.gdpr_summary(v_request, false);
  end
  $$;
