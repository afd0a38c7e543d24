-- Helpers for SQL admins (postgres / service_role). Same validation as the frontend RPCs, no
-- membership checks. retry_job, requeue_store_dead_jobs and set_retention live beside the
-- queue and maintenance functions they belong to.

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
