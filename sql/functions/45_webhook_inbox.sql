-- The webhook inbox, shared by every platform: a delivery is recorded once (platform + delivery id)
-- and applied by a `<platform>.webhook` job, which reads it back and records how it ended.

-- Record a webhook delivery once (platform + delivery id) and enqueue its processing.
-- Returns the inbox id and whether it was a duplicate.
create or replace function shopsync.record_webhook(
  p_platform text, p_delivery_id text, p_store_id uuid, p_topic text, p_payload jsonb,
  p_event_id text default null, p_triggered_at timestamptz default null
) returns table (inbox_id bigint, duplicate boolean)
  language plpgsql set search_path = ''
  as $$
  declare
    v_id bigint;
    v_org uuid;
  begin
    select s.organization_id into v_org from shopsync.stores s where s.id = p_store_id;
    insert into shopsync.webhook_inbox (platform, delivery_id, store_id, organization_id, topic, event_id,
                                        triggered_at, payload)
      values (p_platform, p_delivery_id, p_store_id, v_org, p_topic, p_event_id, p_triggered_at, p_payload)
      on conflict (platform, delivery_id) do nothing
      returning id into v_id;
    if v_id is null then
      return query select w.id, true from shopsync.webhook_inbox w
        where w.platform = p_platform and w.delivery_id = p_delivery_id;
      return;
    end if;
    perform shopsync.enqueue_job(shopsync_private.platform_job_kind(p_platform, 'webhook'), jsonb_build_object('inbox_id', v_id),
                                 p_store_id => p_store_id, p_priority => 50, p_max_attempts => 8);
    return query select v_id, false;
  end
  $$;

-- The web process's one call per webhook delivery: find the shop's store (as find_store) and record
-- the delivery once (as record_webhook). No row when no store has that shop.
create or replace function shopsync.receive_webhook(
  p_platform text, p_shop_key text, p_delivery_id text, p_topic text, p_payload jsonb,
  p_event_id text default null, p_triggered_at timestamptz default null
) returns table (store_id uuid, inbox_id bigint, duplicate boolean)
  language plpgsql set search_path = ''
  as $$
  declare
    v_store uuid;
  begin
    select f.store_id into v_store from shopsync.find_store(p_platform, p_shop_key) f;
    if v_store is null then
      return;
    end if;
    return query select v_store, r.inbox_id, r.duplicate
      from shopsync.record_webhook(p_platform, p_delivery_id, v_store, p_topic, p_payload, p_event_id,
                                   p_triggered_at) r;
  end
  $$;

-- An inbox delivery with what processing needs to know: the store's status and access policies, and
-- whether the same platform event was already applied under another delivery id (one event, several
-- deliveries).
create or replace function shopsync.get_webhook(p_inbox_id bigint)
  returns table (id bigint, platform text, store_id uuid, organization_id uuid, topic text, event_id text,
                 triggered_at timestamptz, payload jsonb, status text, store_status text, shop_key text,
                 access_policies jsonb, event_already_applied boolean, received_at timestamptz)
  language plpgsql stable set search_path = ''   -- plpgsql: its plan is cached (one call per delivery)
  as $$
  begin
    return query
      select w.id, w.platform, w.store_id, w.organization_id, w.topic, w.event_id, w.triggered_at, w.payload,
             w.status, s.status, s.shop_key, shopsync_private.store_policies(w.store_id),
             w.event_id is not null and exists (
               select 1 from shopsync.webhook_inbox o
                where o.platform = w.platform and o.store_id = w.store_id and o.event_id = w.event_id
                  and o.id <> w.id and o.status = 'processed'),
             w.received_at
        from shopsync.webhook_inbox w left join shopsync.stores s on s.id = w.store_id
       where w.id = p_inbox_id;
  end
  $$;

create or replace function shopsync.finish_webhook(p_inbox_id bigint, p_status text, p_error text default null)
  returns void
  language plpgsql set search_path = ''
  as $$
  begin
    if p_status is null or p_status not in ('processed', 'failed', 'ignored') then
      raise exception 'invalid webhook status %: expected processed, failed or ignored', coalesce(p_status, 'null')
        using errcode = '22023';
    end if;
    update shopsync.webhook_inbox w set status = p_status, error = left(p_error, 2000), processed_at = now()
     where w.id = p_inbox_id;
  end
  $$;
