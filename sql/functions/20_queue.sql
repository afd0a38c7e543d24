-- The jobs queue. Every state change is one of these functions; the worker only calls them.
-- States: queued → running → succeeded | queued (retry) | dead; queued|running → cancelled.

create or replace function shopsync.enqueue_job(
  p_kind text,
  p_payload jsonb default '{}'::jsonb,
  p_store_id uuid default null,
  p_resource text default null,
  p_dedupe_key text default null,
  p_concurrency_key text default null,
  p_priority integer default 100,
  p_run_at timestamptz default now(),
  p_max_attempts integer default 10,
  p_organization_id uuid default null
) returns bigint
  language plpgsql set search_path = ''
  as $$
  declare
    v_org uuid := p_organization_id;
    v_id bigint;
  begin
    if p_store_id is not null then
      select s.organization_id into v_org from shopsync.stores s where s.id = p_store_id;
      if not found then
        raise exception 'unknown store %', p_store_id using errcode = 'P0002';
      end if;
    end if;
    insert into shopsync.jobs (kind, organization_id, store_id, resource, payload, priority, run_at,
                               max_attempts, dedupe_key, concurrency_key)
      values (p_kind, v_org, p_store_id, p_resource, coalesce(p_payload, '{}'::jsonb), p_priority,
              coalesce(p_run_at, now()), p_max_attempts, p_dedupe_key, p_concurrency_key)
      on conflict (dedupe_key) where dedupe_key is not null and state in ('queued', 'running') do nothing
      returning id into v_id;
    if v_id is null then
      -- deduplicated: hand back the job that already covers this work
      select j.id into v_id from shopsync.jobs j
        where j.dedupe_key = p_dedupe_key and j.state in ('queued', 'running');
    end if;
    return v_id;
  end
  $$;

-- Claim up to p_limit due jobs. Rows are picked in (priority, run_at, id) order and locked with
-- SKIP LOCKED so concurrent workers never block each other; a job with a concurrency key only
-- starts if its key can be inserted into job_concurrency_locks (the primary key closes the race).
-- The update targets `id = any(array(...))` so the plan is an index lookup per claimed id: inside a
-- SQL function the planner cannot see p_limit and would otherwise hash-join the whole table (and
-- JIT-compile that plan on every call once the table is large).
create or replace function shopsync.claim_jobs(
  p_worker text,
  p_limit integer,
  p_kinds text[] default null,
  p_lease_seconds double precision default 60
) returns setof shopsync.jobs
  language plpgsql set search_path = '' set jit = off
  as $$
  begin
    return query
    with candidates as (
      select j.id, j.concurrency_key
        from shopsync.jobs j
       where j.state = 'queued'
         and j.run_at <= now()
         and (p_kinds is null or j.kind = any (p_kinds))
         and (j.concurrency_key is null
              or not exists (select 1 from shopsync_private.job_concurrency_locks l
                              where l.concurrency_key = j.concurrency_key))
       order by j.priority, j.run_at, j.id
       limit greatest(p_limit, 0)
         for update skip locked
    ), keyed as (
      insert into shopsync_private.job_concurrency_locks (concurrency_key, job_id)
      select distinct on (c.concurrency_key) c.concurrency_key, c.id
        from candidates c
       where c.concurrency_key is not null
       order by c.concurrency_key, c.id
      on conflict do nothing
      returning job_id
    ), claimed as (
      update shopsync.jobs j
         set state = 'running',
             attempts = j.attempts + 1,
             lease_owner = p_worker,
             lease_expires_at = now() + make_interval(secs => p_lease_seconds),
             started_at = now(),
             finished_at = null
       where j.id = any (array(select c.id from candidates c
                                where c.concurrency_key is null or c.id in (select k.job_id from keyed k)))
      returning j.*
    )
    select * from claimed c order by c.priority, c.run_at, c.id;
  end
  $$;

-- Extend the leases this worker still holds; returns the ids it still holds (a missing id was
-- reaped, cancelled or taken over: its handler should stop).
create or replace function shopsync.heartbeat_jobs(
  p_worker text,
  p_ids bigint[],
  p_lease_seconds double precision default 60
) returns setof bigint
  language sql set search_path = ''
  as $$
    update shopsync.jobs j
       set lease_expires_at = now() + make_interval(secs => p_lease_seconds)
     where j.id = any (p_ids) and j.state = 'running' and j.lease_owner = p_worker
    returning j.id
  $$;

-- Complete a batch of jobs (results line up with ids; missing results are null). Only jobs this
-- worker still holds are completed; returns how many were.
create or replace function shopsync.complete_jobs(
  p_worker text,
  p_ids bigint[],
  p_results jsonb[] default null
) returns integer
  language sql set search_path = ''
  as $$
    with done as (
      update shopsync.jobs j
         set state = 'succeeded', finished_at = now(), result = r.result,
             lease_owner = null, lease_expires_at = null
        from unnest(p_ids, coalesce(p_results, '{}'::jsonb[])) as r(id, result)
       where j.id = r.id and j.state = 'running' and j.lease_owner = p_worker
      returning j.id, j.concurrency_key
    ), unlocked as (
      delete from shopsync_private.job_concurrency_locks l
       using done d
       where l.concurrency_key = d.concurrency_key and l.job_id = d.id
    )
    select count(*)::integer from done
  $$;

-- Backoff for attempt n: 2^(n-1) seconds capped at an hour, with ±50% jitter so a burst of
-- failures does not retry in lockstep.
create or replace function shopsync_private.retry_backoff(p_attempts integer) returns interval
  language sql volatile set search_path = ''
  as $$
    select make_interval(secs => least(3600, power(2, greatest(p_attempts, 1) - 1)) * (0.5 + random()))
  $$;

-- Fail a job this worker holds. Retryable errors go back to the queue with backoff until
-- max_attempts; permanent ones (or the last attempt) end 'dead'. With p_needs_reauth the platform refused
-- the store's credentials: the store is marked needs_reauth in the same transaction, before the job's
-- store lock is released, so no other job of the store can start and send a request in between.
-- Returns the new state, or null if the worker no longer held the job.
create or replace function shopsync.fail_job(
  p_worker text,
  p_id bigint,
  p_error text,
  p_retryable boolean default true,
  p_retry_in_seconds double precision default null,
  p_needs_reauth boolean default false
) returns text
  language plpgsql set search_path = ''
  as $$
  declare
    v_job shopsync.jobs;
  begin
    update shopsync.jobs j
       set state = case when p_retryable and j.attempts < j.max_attempts then 'queued' else 'dead' end,
           run_at = case when p_retryable and j.attempts < j.max_attempts
                         then now() + coalesce(make_interval(secs => p_retry_in_seconds),
                                               shopsync_private.retry_backoff(j.attempts))
                         else j.run_at end,
           finished_at = case when p_retryable and j.attempts < j.max_attempts then null else now() end,
           last_error = left(coalesce(p_error, 'unknown error'), 4000),
           lease_owner = null, lease_expires_at = null
     where j.id = p_id and j.state = 'running' and j.lease_owner = p_worker
    returning j.* into v_job;
    -- (a store disconnected or uninstalled meanwhile keeps that status)
    if v_job.id is not null and p_needs_reauth and v_job.store_id is not null
       and exists (select 1 from shopsync.stores s where s.id = v_job.store_id and s.status in ('active', 'connecting'))
    then
      perform shopsync.set_store_status(v_job.store_id, 'needs_reauth', left(p_error, 500));
    end if;
    if v_job.id is not null then
      delete from shopsync_private.job_concurrency_locks l
       where l.concurrency_key = v_job.concurrency_key and l.job_id = p_id;
      if v_job.state = 'dead' then
        perform shopsync_private.emit_job_dead(v_job);
      end if;
    end if;
    return v_job.state;
  end
  $$;

-- Hand jobs back unstarted (graceful shutdown): the attempt does not count.
create or replace function shopsync.release_jobs(p_worker text, p_ids bigint[]) returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_count integer;
  begin
    with released as (
      update shopsync.jobs j
         set state = 'queued', attempts = greatest(j.attempts - 1, 0), run_at = now(),
             lease_owner = null, lease_expires_at = null, started_at = null
       where j.id = any (p_ids) and j.state = 'running' and j.lease_owner = p_worker
      returning j.id, j.concurrency_key
    ), unlocked as (
      delete from shopsync_private.job_concurrency_locks l using released r
       where l.concurrency_key = r.concurrency_key and l.job_id = r.id
    )
    select count(*) into v_count from released;
    if v_count > 0 then
      perform shopsync_private.wake_workers();
    end if;
    return v_count;
  end
  $$;

-- Jobs whose worker vanished (lease expired) go back to the queue, or to 'dead' when they have
-- used all their attempts (a job that kills its worker every time must not loop forever).
create or replace function shopsync.reap_expired_leases() returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_count integer;
    v_dead shopsync.jobs[];
    v_job shopsync.jobs;
  begin
    with expired as (
      select j.id from shopsync.jobs j
       where j.state = 'running' and j.lease_expires_at < now()
         for update skip locked
    ), reaped as (
      update shopsync.jobs j
         set state = case when j.attempts >= j.max_attempts then 'dead' else 'queued' end,
             finished_at = case when j.attempts >= j.max_attempts then now() end,
             run_at = now(),
             last_error = 'lease expired: worker ' || coalesce(j.lease_owner, '?') || ' stopped heartbeating',
             lease_owner = null, lease_expires_at = null
        from expired e
       where j.id = e.id
      returning j.*
    ), unlocked as (
      delete from shopsync_private.job_concurrency_locks l using reaped r
       where l.concurrency_key = r.concurrency_key and l.job_id = r.id
    )
    select count(*), coalesce(array_agg(r::shopsync.jobs) filter (where r.state = 'dead'), '{}') into v_count, v_dead from reaped r;
    foreach v_job in array v_dead loop
      perform shopsync_private.emit_job_dead(v_job);     -- gave up on: an event, in this transaction
    end loop;
    -- store locks of jobs cancelled while running, once their lease has run out
    delete from shopsync_private.job_concurrency_locks l using shopsync.jobs j
     where j.id = l.job_id and j.state <> 'running' and (j.lease_expires_at is null or j.lease_expires_at < now());
    if v_count > 0 then
      perform shopsync_private.wake_workers();
    end if;
    return v_count;
  end
  $$;

-- Cancel a queued or running job (a running job's worker notices at its next heartbeat).
create or replace function shopsync.cancel_job(p_job_id bigint) returns text
  language plpgsql set search_path = ''
  as $$
  declare
    v_state text;
  begin
    select j.state into v_state from shopsync.jobs j where j.id = p_job_id for update;
    if not found then
      raise exception 'unknown job %', p_job_id using errcode = 'P0002';
    end if;
    if v_state not in ('queued', 'running') then
      raise exception 'job % is % and cannot be cancelled', p_job_id, v_state using errcode = '55000';
    end if;
    -- a running job keeps its lease expiry and store lock: its handler only notices the cancel at
    -- its next heartbeat, and until then no other job of that store may start (the reaper frees
    -- the lock once the lease has run out)
    update shopsync.jobs j set state = 'cancelled', finished_at = now()
     where j.id = p_job_id;
    if v_state = 'queued' then
      delete from shopsync_private.job_concurrency_locks l where l.job_id = p_job_id;
    end if;
    return 'cancelled';
  end
  $$;

-- Give a dead (or cancelled) job a fresh set of attempts.
create or replace function shopsync.retry_job(p_job_id bigint) returns bigint
  language plpgsql set search_path = ''
  as $$
  declare
    v_state text;
  begin
    select j.state into v_state from shopsync.jobs j where j.id = p_job_id for update;
    if not found then
      raise exception 'unknown job %', p_job_id using errcode = 'P0002';
    end if;
    if v_state not in ('dead', 'cancelled') then
      raise exception 'job % is % — only dead or cancelled jobs can be retried', p_job_id, v_state
        using errcode = '55000';
    end if;
    if exists (select 1 from shopsync.jobs j where j.id = p_job_id and j.lease_expires_at > now()) then
      raise exception 'job % was cancelled while running; retry it once its lease has expired', p_job_id
        using errcode = '55000';
    end if;
    begin
      update shopsync.jobs j
         set state = 'queued', attempts = 0, run_at = now(), finished_at = null, result = null,
             lease_owner = null, lease_expires_at = null
       where j.id = p_job_id;
    exception when unique_violation then
      raise exception 'job % duplicates a job that is already queued or running', p_job_id
        using errcode = '23505';
    end;
    perform shopsync_private.wake_workers();
    return p_job_id;
  end
  $$;

create or replace function shopsync.requeue_store_dead_jobs(p_store_id uuid) returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_job bigint;
    v_count integer := 0;
  begin
    if not exists (select 1 from shopsync.stores s where s.id = p_store_id) then
      raise exception 'unknown store %', p_store_id using errcode = 'P0002';
    end if;
    for v_job in select j.id from shopsync.jobs j where j.store_id = p_store_id and j.state = 'dead' order by j.id loop
      begin
        perform shopsync.retry_job(v_job);
        v_count := v_count + 1;
      exception when unique_violation then
        null;  -- an equivalent job is already queued: nothing to requeue
      end;
    end loop;
    return v_count;
  end
  $$;

-- A write made for a job must come from the worker that still holds it. FOR SHARE makes a
-- concurrent cancel (or policy change, or disconnect) wait for this write to commit, and any write
-- after the cancel fails here: purged data cannot be written back by a handler that has not yet
-- noticed its job was cancelled.
create or replace function shopsync_private.assert_job_held(p_job_id bigint, p_worker text) returns void
  language plpgsql set search_path = ''
  as $$
  begin
    if p_job_id is null then
      return;   -- writes outside a job (admin tools, tests)
    end if;
    perform 1 from shopsync.jobs j
      where j.id = p_job_id and j.state = 'running' and j.lease_owner = p_worker
      for share;
    if not found then
      raise exception 'job % is no longer held by worker %; write refused', p_job_id, coalesce(p_worker, '?')
        using errcode = '55000';
    end if;
  end
  $$;

-- The job kinds SQL enqueues are declared in shopsync_private.job_kinds (migration 0009); workers check
-- at start that every one has a handler. Every enqueue in SQL names its kind through one of these two,
-- so an undeclared kind fails here, at once, instead of queueing forever.
create or replace function shopsync_private.platform_job_kind(p_platform text, p_kind text) returns text
  language plpgsql stable set search_path = ''
  as $$
  begin
    if not exists (select 1 from shopsync_private.job_kinds k where k.kind = p_kind and k.scope = 'platform') then
      raise exception 'undeclared platform job kind %', coalesce(p_kind, 'null') using errcode = '22023';
    end if;
    return p_platform || '.' || p_kind;
  end
  $$;

create or replace function shopsync_private.core_job_kind(p_kind text) returns text
  language plpgsql stable set search_path = ''
  as $$
  begin
    if not exists (select 1 from shopsync_private.job_kinds k where k.kind = p_kind and k.scope = 'core') then
      raise exception 'undeclared core job kind %', coalesce(p_kind, 'null') using errcode = '22023';
    end if;
    return p_kind;
  end
  $$;

-- What SQL enqueues, for the start-up check of shopsync's processes (and SQL admins).
create or replace function shopsync.job_kinds()
  returns table (kind text, scope text, required_when text, enqueued_by text, description text)
  language sql stable set search_path = ''
  as $$
    select k.kind, k.scope, k.required_when, k.enqueued_by, k.description
      from shopsync_private.job_kinds k order by k.scope desc, k.kind
  $$;
