-- Syncs: requesting them (by hand, on schedule, periodic reconciliations and webhook checks), the runs
-- the worker records, and where each resource's sync stands.

create or replace function shopsync_private.frequency_interval(p_frequency text) returns interval
  language sql immutable set search_path = ''
  as $$
    select case p_frequency
      when '15min' then interval '15 minutes'
      when '30min' then interval '30 minutes'
      when 'hourly' then interval '1 hour'
      when '6hours' then interval '6 hours'
      when 'daily' then interval '1 day'
    end
  $$;

-- store_sync_config's trigger: next_sync_at always follows enabled + frequency.
create or replace function shopsync_private.sync_config_schedule() returns trigger
  language plpgsql set search_path = ''
  as $$
  begin
    new.updated_at := now();
    if not new.enabled then
      new.next_sync_at := null;
    elsif tg_op = 'INSERT' or new.next_sync_at is null or new.frequency is distinct from old.frequency
          or new.enabled is distinct from old.enabled then
      new.next_sync_at := greatest(now(), coalesce(new.last_sync_enqueued_at, now())
                                           + shopsync_private.frequency_interval(new.frequency));
      if tg_op = 'INSERT' then
        new.next_sync_at := now();   -- a new store syncs at once
      end if;
    end if;
    return new;
  end
  $$;

create or replace function shopsync_private.assert_sync_mode(p_mode text) returns void
  language plpgsql immutable set search_path = ''
  as $$
  begin
    if p_mode is null or p_mode not in ('full', 'incremental', 'reconcile') then
      raise exception 'invalid sync mode %: expected full, incremental or reconcile', coalesce(p_mode, 'null')
        using errcode = '22023';
    end if;
  end
  $$;

create or replace function shopsync_private.assert_frequency(p_frequency text) returns void
  language plpgsql immutable set search_path = ''
  as $$
  begin
    if shopsync_private.frequency_interval(p_frequency) is null then
      raise exception 'invalid frequency %: expected one of 15min, 30min, hourly, 6hours, daily',
        coalesce(p_frequency, 'null') using errcode = '22023';
    end if;
  end
  $$;

-- Enqueue sync jobs for a store: one per catalog resource (or per one named) whose access policy is
-- 'sync'. Deduped per store and resource (at most one queued or running), and serialized per store by
-- the concurrency key. Returns the job ids (existing ones when deduplicated).
create or replace function shopsync.request_sync(
  p_store_id uuid,
  p_resources text[] default null,
  p_mode text default 'incremental',
  p_reason text default 'manual',
  p_priority integer default 100
) returns bigint[]
  language plpgsql set search_path = ''
  as $$
  declare
    v_store shopsync.stores;
    v_resource text;
    v_ids bigint[] := '{}';
  begin
    perform shopsync_private.assert_sync_mode(p_mode);
    select * into v_store from shopsync.stores s where s.id = p_store_id;
    if not found then
      raise exception 'unknown store %', p_store_id using errcode = 'P0002';
    end if;
    if v_store.status <> 'active' then
      raise exception 'store % is %; it must be active to sync', p_store_id, v_store.status
        using errcode = '55000', hint = coalesce(v_store.status_reason, '');
    end if;
    foreach v_resource in array coalesce(p_resources, shopsync_private.catalog_resources()) loop
      perform shopsync_private.assert_resource(v_resource);
      continue when shopsync_private.store_policy(p_store_id, v_resource) <> 'sync';
      v_ids := v_ids || shopsync.enqueue_job(
        shopsync_private.platform_job_kind(v_store.platform, 'sync'),
        jsonb_build_object('mode', p_mode, 'reason', p_reason),
        p_store_id => p_store_id, p_resource => v_resource,
        p_dedupe_key => 'sync:' || p_store_id || ':' || v_resource,
        p_concurrency_key => 'store:' || p_store_id,
        p_priority => p_priority);
    end loop;
    return v_ids;
  end
  $$;

-- Called every minute (pg_cron or the worker): enqueue the incremental syncs of every store whose
-- next_sync_at has come, p_batch stores per statement (set-based: one insert of jobs, one update of the
-- schedules), batch after batch until none is due or p_budget has been spent (the rest are next minute's,
-- and the lag shows in queue_metrics' schedule_lag_seconds). A store whose last sync finished within its
-- min_interval is skipped (its schedule still advances). The next run is one frequency later, +-10%
-- at random, so stores that connected together drift apart instead of all firing in the same minute.
-- Returns the number of stores synced.
create or replace function shopsync.enqueue_due_syncs(p_batch integer default 5000,
                                                      p_budget interval default '20 seconds') returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_started timestamptz := clock_timestamp();
    v_count integer := 0;
    v_due integer;
    v_synced integer;
  begin
    loop
      with due as (
        select c.store_id, c.frequency, s.platform,
               (s.sync_completed_at is null or s.sync_completed_at + c.min_interval <= now()) as ready
          from shopsync.store_sync_config c
          join shopsync.stores s on s.id = c.store_id
         where c.enabled and c.next_sync_at <= now() and s.status = 'active'
         order by c.next_sync_at
         limit p_batch
           for update of c skip locked
      ), enqueued as (
        insert into shopsync.jobs (kind, organization_id, store_id, resource, payload, priority, dedupe_key,
                                   concurrency_key)
        select shopsync_private.platform_job_kind(d.platform, 'sync'), s.organization_id, d.store_id, r.resource,
               '{"mode": "incremental", "reason": "schedule"}'::jsonb, 100,
               'sync:' || d.store_id || ':' || r.resource, 'store:' || d.store_id
          from due d
          join shopsync.stores s on s.id = d.store_id
          cross join lateral unnest(shopsync_private.catalog_resources()) r(resource)
         where d.ready and shopsync_private.store_policy(d.store_id, r.resource) = 'sync'
        on conflict (dedupe_key) where dedupe_key is not null and state in ('queued', 'running') do nothing
        returning 1
      ), scheduled as (
        update shopsync.store_sync_config c
           set next_sync_at = now() + shopsync_private.frequency_interval(d.frequency) * (0.9 + 0.2 * random()),
               last_sync_enqueued_at = case when d.ready then now() else c.last_sync_enqueued_at end
          from due d
         where c.store_id = d.store_id
        returning d.ready
      )
      select count(*), count(*) filter (where sc.ready) into v_due, v_synced from scheduled sc;
      v_count := v_count + v_synced;
      exit when v_due < p_batch or clock_timestamp() - v_started > p_budget;
    end loop;
    return v_count;
  end
  $$;

-- Checks that keep active stores correct beyond the incremental schedule: a reconciliation per
-- synced resource (finds what vanished at the source without a delete webhook) and a re-check of
-- webhook subscriptions (platforms drop them after failed deliveries). Called every minute with the
-- due-sync task; each check is enqueued at most once per interval and deduplicated per store.
create or replace function shopsync.enqueue_periodic_checks(
  p_reconcile_every interval default '1 day', p_webhook_check_every interval default '6 hours'
) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_row record;
    v_reconciles integer := 0;
    v_checks integer := 0;
  begin
    for v_row in
      select st.store_id, st.resource from shopsync.sync_state st
        join shopsync.stores s on s.id = st.store_id
        join shopsync.store_sync_config c on c.store_id = st.store_id
       where s.status = 'active' and c.enabled and st.last_full_sync_at is not null and st.checkpoint is null
         and coalesce(st.last_reconciled_at, st.last_full_sync_at) < now() - p_reconcile_every
         and shopsync_private.store_policy(st.store_id, st.resource) = 'sync'
       limit 200
    loop
      perform shopsync.request_sync(v_row.store_id, array[v_row.resource], 'reconcile', 'schedule', 200);
      v_reconciles := v_reconciles + 1;
    end loop;
    for v_row in
      select s.id, s.platform from shopsync.stores s
       where s.status = 'active'
         and not exists (select 1 from shopsync.jobs j
                          where j.store_id = s.id and j.kind = s.platform || '.check_webhooks'
                            and j.created_at > now() - p_webhook_check_every)
       limit 200
    loop
      perform shopsync.enqueue_job(shopsync_private.platform_job_kind(v_row.platform, 'check_webhooks'), '{}'::jsonb, p_store_id => v_row.id,
                                   p_dedupe_key => 'check_webhooks:' || v_row.id, p_priority => 150);
      v_checks := v_checks + 1;
    end loop;
    return jsonb_build_object('reconciliations', v_reconciles, 'webhook_checks', v_checks);
  end
  $$;

-- A sync run starts: recorded, and the store shows 'syncing' to the frontend.
create or replace function shopsync.start_sync_run(
  p_store_id uuid, p_resource text, p_mode text, p_job_id bigint default null
) returns bigint
  language plpgsql set search_path = ''
  as $$
  declare
    v_id bigint;
  begin
    perform shopsync_private.assert_resource(p_resource);
    perform shopsync_private.assert_sync_mode(p_mode);
    insert into shopsync.sync_runs (store_id, organization_id, resource, mode, job_id)
      select s.id, s.organization_id, p_resource, p_mode, p_job_id from shopsync.stores s where s.id = p_store_id
      returning id into v_id;
    if v_id is null then
      raise exception 'unknown store %', p_store_id using errcode = 'P0002';
    end if;
    -- a run left 'running' by a worker that died is over: this one supersedes it
    update shopsync.sync_runs r set status = 'failed', finished_at = now(),
                                    error = 'superseded: its worker stopped before finishing'
     where r.store_id = p_store_id and r.resource = p_resource and r.status = 'running' and r.id <> v_id;
    update shopsync.stores s set sync_status = 'syncing', sync_started_at = now() where s.id = p_store_id;
    return v_id;
  end
  $$;

create or replace function shopsync.finish_sync_run(
  p_run_id bigint,
  p_status text,
  p_created integer default 0,
  p_updated integer default 0,
  p_deleted integer default 0,
  p_failed integer default 0,
  p_error text default null,
  p_checkpoint jsonb default null,
  p_record_errors jsonb default null
) returns void
  language plpgsql set search_path = ''
  as $$
  declare
    v_store uuid;
  begin
    if p_status not in ('succeeded', 'failed', 'cancelled') then
      raise exception 'invalid sync run status %', p_status using errcode = '22023';
    end if;
    update shopsync.sync_runs r
       set status = p_status, finished_at = now(), created_count = p_created, updated_count = p_updated,
           deleted_count = p_deleted, failed_count = p_failed, error = left(p_error, 4000),
           checkpoint = coalesce(p_checkpoint, r.checkpoint),
           -- the records that could not be stored: {"id", "error"}, the first 100
           record_errors = case when jsonb_typeof(p_record_errors) = 'array'
                                then (select coalesce(jsonb_agg(e), '[]') from
                                        (select e from jsonb_array_elements(p_record_errors) e limit 100) x)
                                else r.record_errors end
     where r.id = p_run_id and r.status = 'running'
    returning r.store_id into v_store;
    if v_store is null then
      return;  -- already finished (a retried job finishing twice changes nothing)
    end if;
    if p_status = 'succeeded' and coalesce(p_failed, 0) > 0 then
      perform shopsync_private.emit_event(
        (select s.organization_id from shopsync.stores s where s.id = v_store), v_store, 'sync.record_errors',
        (select r.resource from shopsync.sync_runs r where r.id = p_run_id),
        jsonb_build_object('run_id', p_run_id, 'failed', p_failed, 'created', p_created, 'updated', p_updated));
    end if;
    if not exists (select 1 from shopsync.sync_runs r where r.store_id = v_store and r.status = 'running') then
      update shopsync.stores s
         set sync_status = case when p_status = 'failed' then 'error' else 'completed' end,
             sync_completed_at = now(),
             last_sync_error = case when p_status = 'failed' then left(p_error, 4000) end
       where s.id = v_store;
    end if;
  end
  $$;

create or replace function shopsync.save_sync_state(
  p_store_id uuid, p_resource text, p_high_watermark timestamptz default null, p_checkpoint jsonb default null,
  p_full_sync_done boolean default false, p_reconciled boolean default false, p_job_id bigint default null,
  p_worker text default null
) returns void
  language sql set search_path = ''
  as $$
    select shopsync_private.assert_job_held(p_job_id, p_worker);
    insert into shopsync.sync_state as st (store_id, resource, organization_id, high_watermark, checkpoint,
                                           last_full_sync_at, last_reconciled_at)
    select s.id, p_resource, s.organization_id, p_high_watermark, p_checkpoint,
           case when p_full_sync_done then now() end, case when p_reconciled then now() end
      from shopsync.stores s where s.id = p_store_id
    on conflict (store_id, resource) do update
      set high_watermark = greatest(st.high_watermark, excluded.high_watermark),
          checkpoint = excluded.checkpoint,
          last_full_sync_at = coalesce(excluded.last_full_sync_at, st.last_full_sync_at),
          last_reconciled_at = coalesce(excluded.last_reconciled_at, st.last_reconciled_at),
          updated_at = now()
  $$;

-- Everything a sync job needs to know about its store and resource, in one call.
create or replace function shopsync.get_sync_context(p_store_id uuid, p_resource text)
  returns table (store_id uuid, organization_id uuid, platform text, shop_key text, status text, policy text,
                 high_watermark timestamptz, checkpoint jsonb, last_full_sync_at timestamptz)
  language plpgsql stable set search_path = ''
  as $$
  begin
    perform shopsync_private.assert_resource(p_resource);
    return query
      select s.id, s.organization_id, s.platform, s.shop_key, s.status,
             shopsync_private.store_policy(s.id, p_resource),
             st.high_watermark, st.checkpoint, st.last_full_sync_at
        from shopsync.stores s
        left join shopsync.sync_state st on st.store_id = s.id and st.resource = p_resource
       where s.id = p_store_id;
    if not found then
      raise exception 'unknown store %', p_store_id using errcode = 'P0002';
    end if;
  end
  $$;
