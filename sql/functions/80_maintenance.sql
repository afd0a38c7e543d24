-- Periodic maintenance (reaping, retention, due syncs) and the read-only facts the web process
-- reports (migrations, queue metrics, optional features).

-- Run a periodic task at most once per p_every across every worker and pg_cron: the advisory
-- transaction lock serializes concurrent callers, maintenance_runs remembers the last run.
create or replace function shopsync.run_maintenance(p_task text, p_every_seconds double precision default 60)
  returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_last timestamptz;
    v_result jsonb;
  begin
    if p_task not in ('enqueue_due_syncs', 'reap_expired_leases', 'prune_history', 'notify') then
      raise exception 'unknown maintenance task %', p_task using errcode = '22023';
    end if;
    if not pg_try_advisory_xact_lock(hashtext('shopsync.maintenance'), hashtext(p_task)) then
      return jsonb_build_object('task', p_task, 'skipped', 'running elsewhere');
    end if;
    select m.last_run_at into v_last from shopsync_private.maintenance_runs m where m.task = p_task;
    if v_last is not null and v_last > now() - make_interval(secs => p_every_seconds) then
      return jsonb_build_object('task', p_task, 'skipped', 'ran recently');
    end if;
    v_result := case p_task
      when 'enqueue_due_syncs' then jsonb_build_object('syncs', shopsync.enqueue_due_syncs())
                                    || shopsync.enqueue_periodic_checks()
                                    || jsonb_build_object('link_reconciles', shopsync.enqueue_link_reconciles())
      when 'reap_expired_leases' then to_jsonb(shopsync.reap_expired_leases())
      when 'prune_history' then shopsync.prune_history()
      when 'notify' then shopsync_private.notify_maintenance()      -- 52_notifications.sql
    end;
    insert into shopsync_private.maintenance_runs (task, last_run_at, last_result)
      values (p_task, now(), v_result)
      on conflict (task) do update set last_run_at = excluded.last_run_at, last_result = excluded.last_result;
    return jsonb_build_object('task', p_task, 'result', v_result);
  end
  $$;

-- Retention: drop finished jobs, processed inbox rows, old sync runs and activity, per the ages in
-- shopsync_private.settings('retention'). Returns how many rows each table lost.
create or replace function shopsync.prune_history() returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_cfg jsonb;
    v_jobs integer;
    v_dead integer;
    v_inbox integer;
    v_runs integer;
    v_activity integer;
    v_states integer;
    v_installs integer;
    v_limits integer;
    v_events integer;
  begin
    select s.value into v_cfg from shopsync_private.settings s where s.key = 'retention';
    delete from shopsync.jobs j where j.state in ('succeeded', 'cancelled')
      and j.finished_at < now() - (v_cfg ->> 'finished_jobs')::interval;
    get diagnostics v_jobs = row_count;
    delete from shopsync.jobs j where j.state = 'dead' and j.finished_at < now() - (v_cfg ->> 'dead_jobs')::interval;
    get diagnostics v_dead = row_count;
    delete from shopsync.webhook_inbox w where w.status <> 'pending'
      and w.received_at < now() - (v_cfg ->> 'webhook_inbox')::interval;
    get diagnostics v_inbox = row_count;
    delete from shopsync.sync_runs r where r.status <> 'running'
      and r.started_at < now() - (v_cfg ->> 'sync_runs')::interval;
    get diagnostics v_runs = row_count;
    delete from shopsync.activity_log a where a.created_at < now() - (v_cfg ->> 'activity_log')::interval;
    get diagnostics v_activity = row_count;
    -- expired, unused OAuth states and unclaimed installs carry nothing worth keeping
    delete from shopsync_private.oauth_states o where o.expires_at < now() - interval '1 day';
    get diagnostics v_states = row_count;
    delete from shopsync_private.pending_installs p where p.claimed_at is null and p.expires_at < now() - interval '1 day';
    get diagnostics v_installs = row_count;
    delete from shopsync_private.rate_limits r where r.next_free_at < now() - interval '1 day';
    get diagnostics v_limits = row_count;
    delete from shopsync.events e where e.occurred_at < now() - coalesce(v_cfg ->> 'events', '90 days')::interval;
    get diagnostics v_events = row_count;
    return jsonb_build_object('jobs', v_jobs, 'dead_jobs', v_dead, 'webhook_inbox', v_inbox,
                              'sync_runs', v_runs, 'activity_log', v_activity, 'oauth_states', v_states,
                              'pending_installs', v_installs, 'rate_limits', v_limits, 'events', v_events,
                              'product_link_log', shopsync_private.prune_product_link_log())
           || shopsync_private.prune_lookup_audit();
  end
  $$;

create or replace function shopsync.applied_migrations() returns table (name text, checksum text)
  language sql stable set search_path = ''
  as $$ select m.name, m.checksum from shopsync_private.schema_migrations m order by m.name $$;

-- Which optional pieces this database has: decides whether the worker runs schedules itself.
-- pg_cron_schedules is true only when shopsync's four jobs are scheduled for this database
-- (security definer: pg_cron's RLS on cron.job hides other users' jobs from service_role).
create or replace function shopsync.runtime_features() returns jsonb
  language plpgsql stable security definer set search_path = ''
  as $$
  declare
    v_cron boolean := exists (select 1 from pg_extension where extname = 'pg_cron');
    v_schedules boolean := false;
  begin
    if v_cron and to_regclass('cron.job') is not null then
      -- dynamic SQL: cron.job only exists where pg_cron is installed
      execute $q$select count(*) = 3 from cron.job j
                  where j.jobname in ('shopsync-enqueue-due-syncs', 'shopsync-reap-expired-leases',
                                      'shopsync-prune-history')
                    and j.active and j.database = current_database()$q$
         into v_schedules;
    end if;
    return jsonb_build_object(
      'pg_cron', v_cron,
      'pg_cron_schedules', v_schedules,
      'pg_net', exists (select 1 from pg_extension where extname = 'pg_net'),
      'realtime_broadcast', to_regprocedure('realtime.send(jsonb,text,text,boolean)') is not null);
  end
  $$;

-- Everything /metrics reports, in one round trip.
create or replace function shopsync.queue_metrics(p_window_seconds integer default 900) returns jsonb
  language sql stable set search_path = ''
  as $$
    select jsonb_build_object(
      'jobs', coalesce((select jsonb_agg(jsonb_build_object('state', s.state, 'kind', s.kind, 'count', s.n))
                          from (select j.state, j.kind, count(*) as n from shopsync.jobs j
                                 group by j.state, j.kind) s), '[]'::jsonb),
      'durations', coalesce((select jsonb_agg(jsonb_build_object(
                                'kind', d.kind, 'count', d.n, 'sum', d.total,
                                'p50', d.p50, 'p90', d.p90, 'p99', d.p99))
                          from (select j.kind, count(*) as n,
                                       sum(extract(epoch from j.finished_at - j.started_at)) as total,
                                       percentile_cont(0.5) within group (order by extract(epoch from j.finished_at - j.started_at)) as p50,
                                       percentile_cont(0.9) within group (order by extract(epoch from j.finished_at - j.started_at)) as p90,
                                       percentile_cont(0.99) within group (order by extract(epoch from j.finished_at - j.started_at)) as p99
                                  from shopsync.jobs j
                                 where j.state in ('succeeded', 'dead') and j.started_at is not null
                                   and j.finished_at > now() - make_interval(secs => p_window_seconds)
                                 group by j.kind) d), '[]'::jsonb),
      'webhooks', coalesce((select jsonb_agg(jsonb_build_object('platform', w.platform, 'status', w.status, 'count', w.n))
                          from (select i.platform, i.status, count(*) as n from shopsync.webhook_inbox i
                                 group by i.platform, i.status) w), '[]'::jsonb),
      'oldest_queued_seconds', (select coalesce(extract(epoch from now() - min(j.run_at)), 0)
                                  from shopsync.jobs j where j.state = 'queued' and j.run_at <= now()),
      -- how far behind the sync schedule is: the most overdue store's wait (0 when none is due)
      'schedule_lag_seconds', (select coalesce(extract(epoch from now() - min(c.next_sync_at)), 0)
                                 from shopsync.store_sync_config c join shopsync.stores s on s.id = c.store_id
                                where c.enabled and c.next_sync_at <= now() and s.status = 'active'),
      'window_seconds', p_window_seconds)
  $$;
