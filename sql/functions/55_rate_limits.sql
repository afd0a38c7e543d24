-- Per-store rate limits kept in the database (shopsync_private.rate_limits), shared by all workers.

-- Reserve the next request slot for p_key at p_per_second (bursts of p_burst allowed) and return how
-- many seconds the caller must wait before sending. Every call reserves: a caller that gives up
-- leaves one unused slot, never an overshoot.
create or replace function shopsync.reserve_request_slot(
  p_key text, p_per_second double precision, p_burst integer default 1
) returns double precision
  language plpgsql set search_path = ''
  as $$
  declare
    v_now timestamptz := clock_timestamp();
    v_interval interval;
    v_next timestamptz;
  begin
    if p_key is null or length(p_key) not between 1 and 200 then
      raise exception 'a rate limit key is 1 to 200 characters' using errcode = '22023';
    end if;
    if p_per_second is null or not (p_per_second > 0 and p_per_second <= 10000)
       or p_burst is null or p_burst not between 1 and 1000 then
      raise exception 'invalid rate: % per second, burst %', p_per_second, p_burst using errcode = '22023';
    end if;
    v_interval := make_interval(secs => 1.0 / p_per_second);
    insert into shopsync_private.rate_limits as r (key, next_free_at, updated_at)
      values (p_key, v_now + v_interval, v_now)
      on conflict (key) do update
        set next_free_at = greatest(r.next_free_at, v_now) + v_interval, updated_at = v_now
      returning r.next_free_at into v_next;
    return greatest(0, extract(epoch from (v_next - v_interval * p_burst - v_now)));
  end
  $$;

-- The platform said "too many requests": nobody sends for p_key before p_seconds from now.
create or replace function shopsync.defer_requests(p_key text, p_seconds double precision) returns void
  language sql set search_path = ''
  as $$
    insert into shopsync_private.rate_limits as r (key, next_free_at)
      values (p_key, clock_timestamp() + make_interval(secs => least(greatest(p_seconds, 0), 3600)))
      on conflict (key) do update
        set next_free_at = greatest(r.next_free_at, excluded.next_free_at), updated_at = now()
  $$;
