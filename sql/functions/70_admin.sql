-- Helpers for SQL admins (postgres / service_role). Same validation as the frontend RPCs, no
-- membership checks. retry_job and requeue_store_dead_jobs live beside the queue functions they
-- belong to.

-- Per store: state, schedule, live rows per synced table (record_counts, from the catalog; the products /
-- variants / customers / orders columns repeat four of them for readers written before it), jobs and
-- recent runs. Counting runs as the caller, so a member counts only what RLS lets them read.
create or replace view shopsync.store_sync_statistics with (security_invoker = true) as
select s.id as store_id,
       s.organization_id,
       s.platform,
       s.shop_key,
       s.status,
       s.sync_status,
       s.sync_started_at,
       s.sync_completed_at,
       s.last_sync_error,
       c.enabled as sync_enabled,
       c.frequency,
       c.next_sync_at,
       coalesce((rc.counts ->> 'products')::bigint, 0) as products,
       coalesce((rc.counts ->> 'product_variants')::bigint, 0) as variants,
       coalesce((rc.counts ->> 'customers')::bigint, 0) as customers,
       coalesce((rc.counts ->> 'orders')::bigint, 0) as orders,
       (select count(*) from shopsync.jobs j where j.store_id = s.id and j.state = 'queued') as jobs_queued,
       (select count(*) from shopsync.jobs j where j.store_id = s.id and j.state = 'running') as jobs_running,
       (select count(*) from shopsync.jobs j where j.store_id = s.id and j.state = 'dead') as jobs_dead,
       (select max(r.finished_at) from shopsync.sync_runs r where r.store_id = s.id and r.status = 'succeeded')
         as last_successful_sync_at,
       (select count(*) from shopsync.sync_runs r where r.store_id = s.id and r.status = 'failed'
          and r.started_at > now() - interval '1 day') as failed_runs_24h,
       rc.counts as record_counts
  from shopsync.stores s
  left join shopsync.store_sync_config c on c.store_id = s.id
  cross join lateral (select shopsync.synced_record_counts(s.id) as counts) rc;

create or replace function shopsync_private.admin_store(p_store_id uuid) returns shopsync.stores
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_store shopsync.stores;
  begin
    select s.* into v_store from shopsync.stores s where s.id = p_store_id;
    if not found then
      raise exception 'unknown store %', coalesce(p_store_id::text, 'null') using errcode = 'P0002';
    end if;
    return v_store;
  end
  $$;

create or replace function shopsync.set_store_sync_enabled(p_store_id uuid, p_enabled boolean) returns void
  language sql set search_path = ''
  as $$ select shopsync_private.apply_sync_enabled(shopsync_private.admin_store(p_store_id), p_enabled, 'admin') $$;

create or replace function shopsync.set_store_sync_frequency(p_store_id uuid, p_frequency text) returns timestamptz
  language sql set search_path = ''
  as $$
    select shopsync_private.apply_sync_frequency(shopsync_private.admin_store(p_store_id), p_frequency, 'admin')
  $$;

create or replace function shopsync.sync_statistics(p_store_id uuid default null)
  returns setof shopsync.store_sync_statistics
  language plpgsql stable set search_path = ''
  as $$
  begin
    if p_store_id is not null then
      perform shopsync_private.admin_store(p_store_id);
    end if;
    return query select * from shopsync.store_sync_statistics v
                  where p_store_id is null or v.store_id = p_store_id order by v.store_id;
  end
  $$;

-- Job inspection for `shopsync jobs` and SQL admins.
create or replace function shopsync.list_jobs(
  p_state text default null, p_kind text default null, p_store_id uuid default null, p_limit integer default 50
) returns table (id bigint, kind text, state text, store_id uuid, resource text, attempts integer,
                 max_attempts integer, run_at timestamptz, created_at timestamptz, finished_at timestamptz,
                 last_error text)
  language plpgsql stable set search_path = ''
  as $$
  begin
    if p_state is not null and p_state not in ('queued', 'running', 'succeeded', 'dead', 'cancelled') then
      raise exception 'invalid job state %: expected queued, running, succeeded, dead or cancelled', p_state
        using errcode = '22023';
    end if;
    if p_limit is null or p_limit not between 1 and 10000 then
      raise exception 'limit must be between 1 and 10000' using errcode = '22023';
    end if;
    return query
      select j.id, j.kind, j.state, j.store_id, j.resource, j.attempts, j.max_attempts, j.run_at, j.created_at,
             j.finished_at, j.last_error
        from shopsync.jobs j
       where (p_state is null or j.state = p_state) and (p_kind is null or j.kind = p_kind)
         and (p_store_id is null or j.store_id = p_store_id)
       order by j.id desc limit p_limit;
  end
  $$;

create or replace function shopsync.get_job(p_job_id bigint) returns setof shopsync.jobs
  language plpgsql stable set search_path = ''
  as $$
  begin
    return query select * from shopsync.jobs j where j.id = p_job_id;
    if not found then
      raise exception 'unknown job %', p_job_id using errcode = 'P0002';
    end if;
  end
  $$;

create or replace function shopsync.set_retention(
  p_finished_jobs interval default null,
  p_dead_jobs interval default null,
  p_webhook_inbox interval default null,
  p_sync_runs interval default null,
  p_activity_log interval default null,
  p_events interval default null
) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_new jsonb := '{}'::jsonb;
    v_pair record;
  begin
    for v_pair in select * from (values ('finished_jobs', p_finished_jobs), ('dead_jobs', p_dead_jobs),
                                        ('webhook_inbox', p_webhook_inbox), ('sync_runs', p_sync_runs),
                                        ('activity_log', p_activity_log), ('events', p_events)) as t(k, v)
                     where v is not null loop
      if v_pair.v < interval '1 hour' or v_pair.v > interval '10 years' then
        raise exception 'retention for % must be between 1 hour and 10 years, got %', v_pair.k, v_pair.v
          using errcode = '22023';
      end if;
      v_new := v_new || jsonb_build_object(v_pair.k, v_pair.v::text);
    end loop;
    update shopsync_private.settings s set value = s.value || v_new, updated_at = now()
      where s.key = 'retention'
      returning s.value into v_new;
    return v_new;
  end
  $$;
