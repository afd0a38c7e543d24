-- Events (shopsync.events, migration 0011): facts worth telling people about, written by the function that
-- records the fact, in its transaction. Types and their default severities are in
-- shopsync_private.event_types. Details hold ids, counts and reasons — never personal data or secrets.

create or replace function shopsync_private.emit_event(
  p_organization_id uuid, p_store_id uuid, p_type text, p_subject text default null,
  p_details jsonb default '{}'::jsonb
) returns bigint
  language plpgsql set search_path = ''
  as $$
  declare
    v_severity text;
    v_id bigint;
  begin
    select t.severity into v_severity from shopsync_private.event_types t where t.type = p_type;
    if v_severity is null then
      raise exception 'unknown event type %', coalesce(p_type, 'null') using errcode = '22023';
    end if;
    if p_organization_id is null then
      return null;            -- work that belongs to no organization (maintenance jobs) tells nobody
    end if;
    insert into shopsync.events (organization_id, store_id, type, severity, subject, details)
      values (p_organization_id, p_store_id, p_type, v_severity, left(p_subject, 200),
              coalesce(p_details, '{}'::jsonb))
      returning id into v_id;
    return v_id;
  end
  $$;

-- For facts shopsync's processes find themselves (e.g. webhook subscriptions a platform dropped): the
-- organization comes from the store. Returns the event id.
create or replace function shopsync.record_event(
  p_store_id uuid, p_type text, p_subject text default null, p_details jsonb default '{}'::jsonb
) returns bigint
  language plpgsql set search_path = ''
  as $$
  declare
    v_org uuid;
  begin
    select s.organization_id into v_org from shopsync.stores s where s.id = p_store_id;
    if v_org is null then
      raise exception 'unknown store %', coalesce(p_store_id::text, 'null') using errcode = 'P0002';
    end if;
    if jsonb_typeof(coalesce(p_details, '{}'::jsonb)) <> 'object' then
      raise exception 'event details must be a JSON object' using errcode = '22023';
    end if;
    return shopsync_private.emit_event(v_org, p_store_id, p_type, p_subject, p_details);
  end
  $$;

-- A job that ended dead, as an event: the kind is the subject (repeats of one kind group together).
create or replace function shopsync_private.emit_job_dead(p_job shopsync.jobs) returns void
  language plpgsql set search_path = ''
  as $$
  begin
    perform shopsync_private.emit_event(p_job.organization_id, p_job.store_id, 'job.dead', p_job.kind,
      jsonb_build_object('job_id', p_job.id, 'kind', p_job.kind, 'resource', p_job.resource,
                         'attempts', p_job.attempts, 'error', left(p_job.last_error, 300)));
  end
  $$;
