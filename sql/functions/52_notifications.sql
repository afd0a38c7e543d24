-- Notifications (migration 0013, docs/notifications.md): events become messages to an organization's
-- channels. The path of one event:
--
--   emit_event ──trigger──► notification_inbox (+ a notify.dispatch job, when none is waiting)
--   notify.dispatch ──► collect_notifications: each rule that matches → the message of its window
--                       (rule, window) in notifications, the event attached once per channel
--                       (notification_events' primary key); a new message gets its notify.send job,
--                       due when its window ends
--   notify.send ──► begin_notification_send (frozen, attempt counted) → the provider →
--                   finish_notification_send: sent | retry (backoff, a new job) | channel_failed (the
--                   channel stops: its messages are held until it is fixed or resumed)
--   run_maintenance('notify') every minute: daily summaries, then whatever a wake-up missed.
--
-- A message's content is frozen from its first attempt on (no event joins it after), so every retry
-- carries the same content under the same idempotency key.

-- ---- helpers -------------------------------------------------------------------------------------------

create or replace function shopsync_private.severity_rank(p_severity text) returns integer
  language sql immutable set search_path = ''
  as $$ select case p_severity when 'info' then 1 when 'warning' then 2 when 'error' then 3
                               when 'critical' then 4 end $$;

create or replace function shopsync_private.assert_severity(p_severity text) returns text
  language plpgsql immutable set search_path = ''
  as $$
  begin
    if shopsync_private.severity_rank(p_severity) is null then
      raise exception 'unknown severity %: expected info, warning, error or critical', coalesce(p_severity, 'null')
        using errcode = '22023';
    end if;
    return p_severity;
  end
  $$;

create or replace function shopsync_private.assert_event_types(p_types text[]) returns text[]
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_unknown text;
  begin
    if p_types is null then
      return null;        -- every type
    end if;
    if cardinality(p_types) = 0 or cardinality(p_types) > 100 then
      raise exception 'event types must list 1 to 100 types, or be null for every type' using errcode = '22023';
    end if;
    select t into v_unknown from unnest(p_types) t
     where t is null or not exists (select 1 from shopsync_private.event_types e where e.type = t) limit 1;
    if found then
      raise exception 'unknown event type %', coalesce(quote_literal(v_unknown), 'null')
        using errcode = '22023',
              hint = 'known types: ' || (select string_agg(e.type, ', ' order by e.type)
                                           from shopsync_private.event_types e);
    end if;
    return array(select distinct t from unnest(p_types) t order by t);
  end
  $$;

create or replace function shopsync_private.assert_time_zone(p_time_zone text) returns text
  language plpgsql stable set search_path = ''
  as $$
  begin
    if p_time_zone is null or not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = p_time_zone) then
      raise exception 'unknown time zone %', coalesce(quote_literal(p_time_zone), 'null')
        using errcode = '22023', hint = 'use an IANA time zone name such as Europe/Budapest or America/New_York';
    end if;
    return p_time_zone;
  end
  $$;

-- The caller's role in an organization, or 42501 (not a member, or a role not in p_roles).
create or replace function shopsync_private.require_org_role(p_organization_id uuid, p_user_id uuid, p_roles text[])
  returns text
  language plpgsql stable security definer set search_path = ''
  as $$
  declare
    v_role text;
  begin
    select m.role into v_role from shopsync.organization_members m
     where m.organization_id = p_organization_id and m.user_id = p_user_id;
    if v_role is null then
      raise exception 'not a member of organization %', coalesce(p_organization_id::text, 'null')
        using errcode = '42501';
    end if;
    if not v_role = any (p_roles) then
      raise exception 'your role % in this organization cannot do this (needs %)', v_role,
        array_to_string(p_roles, ' or ') using errcode = '42501';
    end if;
    return v_role;
  end
  $$;

-- A channel, if p_user_id is a member of its organization with one of p_roles: unknown (P0002) to
-- non-members, so channel ids do not leak; 42501 for a role too weak.
create or replace function shopsync_private.channel_for_user(p_channel_id uuid, p_user_id uuid, p_roles text[])
  returns shopsync.notification_channels
  language plpgsql stable security definer set search_path = ''
  as $$
  declare
    v_channel shopsync.notification_channels;
  begin
    select c.* into v_channel from shopsync.notification_channels c where c.id = p_channel_id;
    if not found or not exists (select 1 from shopsync.organization_members m
                                 where m.organization_id = v_channel.organization_id and m.user_id = p_user_id) then
      raise exception 'unknown notification channel %', coalesce(p_channel_id::text, 'null') using errcode = 'P0002';
    end if;
    perform shopsync_private.require_org_role(v_channel.organization_id, p_user_id, p_roles);
    return v_channel;
  end
  $$;

create or replace function shopsync_private.channel_json(p_channel shopsync.notification_channels) returns jsonb
  language sql stable set search_path = ''
  as $$
    select jsonb_build_object('id', p_channel.id, 'organization_id', p_channel.organization_id,
                              'name', p_channel.name, 'kind', p_channel.kind, 'config', p_channel.config,
                              'status', p_channel.status, 'status_reason', p_channel.status_reason,
                              'has_secret', exists (select 1 from shopsync_private.notification_channel_secrets s
                                                     where s.channel_id = p_channel.id))
  $$;

-- The send job of a notification. The attempt number is in the dedupe key: a retry is enqueued by the
-- job that is still running under the previous attempt's key.
create or replace function shopsync_private.enqueue_notification_send(p_notification_id bigint) returns bigint
  language plpgsql set search_path = ''
  as $$
  declare
    v_n shopsync.notifications;
  begin
    select n.* into v_n from shopsync.notifications n where n.id = p_notification_id;
    return shopsync.enqueue_job(shopsync_private.core_job_kind('notify.send'),
      jsonb_build_object('notification_id', v_n.id),
      p_dedupe_key => 'notify.send:' || v_n.id || ':' || v_n.attempts,
      p_concurrency_key => 'notify.channel:' || v_n.channel_id,      -- one message at a time per channel
      p_priority => 20, p_run_at => greatest(v_n.send_after, now()), p_max_attempts => 20,
      p_organization_id => v_n.organization_id);
  end
  $$;

-- A channel that works again: its held messages go out.
create or replace function shopsync_private.release_channel(p_channel_id uuid) returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_id bigint;
    v_count integer := 0;
  begin
    for v_id in update shopsync.notifications n set status = 'pending', send_after = greatest(n.send_after, now()),
                                                    updated_at = now()
                 where n.channel_id = p_channel_id and n.status = 'held' returning n.id loop
      perform shopsync_private.enqueue_notification_send(v_id);
      v_count := v_count + 1;
    end loop;
    return v_count;
  end
  $$;

create or replace function shopsync_private.log_channel_activity(p_channel shopsync.notification_channels,
                                                                 p_user_id uuid, p_action text) returns void
  language sql security definer set search_path = ''
  as $$
    insert into shopsync.activity_log (organization_id, store_id, actor_user_id, action, details)
    values (p_channel.organization_id, null, coalesce(p_user_id, auth.uid()), p_action,
            jsonb_build_object('channel_id', p_channel.id, 'kind', p_channel.kind, 'name', p_channel.name))
  $$;

-- ---- triggers ------------------------------------------------------------------------------------------

-- Every new event of an organization that has rules waits in the inbox for collect_notifications; a
-- dispatch job is enqueued unless one is already waiting (two concurrent inserts may both enqueue one:
-- harmless, the second finds little to do). Dispatch jobs may run side by side (collect_notifications takes
-- its turn in the database), so one that is running never delays the next. The per-minute maintenance task
-- catches any missed wake-up.
create or replace function shopsync_private.on_event_for_notifications() returns trigger
  language plpgsql security definer set search_path = ''
  as $$
  begin
    if new.type = 'job.dead' and new.subject like 'notify.%' then
      return null;      -- a notification job that died must not notify about itself, round and round
    end if;
    if not exists (select 1 from shopsync.notification_rules r
                    where r.organization_id = new.organization_id and r.enabled) then
      return null;
    end if;
    insert into shopsync_private.notification_inbox (event_id) values (new.id);
    if not exists (select 1 from shopsync.jobs j where j.kind = 'notify.dispatch' and j.state = 'queued') then
      perform shopsync.enqueue_job(shopsync_private.core_job_kind('notify.dispatch'), '{}'::jsonb,
                                   p_priority => 10, p_max_attempts => 100);
    end if;
    return null;
  end
  $$;

-- A store that leaves `active` (uninstalled, needs re-authorization, disconnected) forgets the webhook
-- topics it was seen with: subscriptions created when it comes back are its first ones, not re-created.
create or replace function shopsync_private.on_store_left_active() returns trigger
  language plpgsql security definer set search_path = ''
  as $$
  begin
    delete from shopsync_private.webhook_subscriptions_seen w where w.store_id = new.id;
    return null;
  end
  $$;

-- ---- collecting: events → messages ---------------------------------------------------------------------

-- Takes up to p_limit events from the inbox (the oldest first) and
-- attaches each to the message of every matching rule's channel, at most once per channel. A rule with a
-- window of W seconds groups its events by W-second windows (aligned to the epoch, by occurred_at); the
-- message goes when its window ends. An event whose window's message is already on its way joins the next
-- window. W = 0, and every daily summary, is a message of its own, sent at once.
create or replace function shopsync.collect_notifications(p_limit integer default 1000) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_event shopsync.events;
    v_rule shopsync.notification_rules;
    v_window integer;
    v_bucket bigint;
    v_start timestamptz;
    v_id bigint;
    v_new boolean;
    v_events integer := 0;
    v_attached integer := 0;
    v_created integer := 0;
  begin
    -- one collector at a time (taken at its turn, released at its commit): two that ran side by side could
    -- lock two windows' messages in opposite orders (events' ids and occurred_at need not agree) and deadlock
    perform pg_advisory_xact_lock(hashtext('shopsync.collect_notifications'));
    for v_event in
      with taken as (
        delete from shopsync_private.notification_inbox i
         where i.event_id = any (array(select q.event_id from shopsync_private.notification_inbox q
                                        order by q.event_id limit greatest(p_limit, 1) for update skip locked))
        returning i.event_id)
      select e.* from shopsync.events e join taken t on t.event_id = e.id order by e.id
    loop
      v_events := v_events + 1;
      for v_rule in
        select r.* from shopsync.notification_rules r
         where r.organization_id = v_event.organization_id and r.enabled
           and (r.store_id is null or r.store_id = v_event.store_id)
           and (r.event_types is null or v_event.type = any (r.event_types))
           and shopsync_private.severity_rank(v_event.severity) >= shopsync_private.severity_rank(r.min_severity)
         order by r.created_at, r.id
      loop
        continue when exists (select 1 from shopsync.notification_events ne
                               where ne.channel_id = v_rule.channel_id and ne.event_id = v_event.id);
        v_window := case when v_event.type = 'summary.daily' then 0 else v_rule.group_window_seconds end;
        if v_window = 0 then
          insert into shopsync.notifications (organization_id, channel_id, rule_id, kind, dedupe_key, event_type,
                                              store_id, severity, send_after)
            values (v_event.organization_id, v_rule.channel_id, v_rule.id, 'events', 'event:' || v_event.id,
                    v_event.type, v_event.store_id, v_event.severity, now())
            returning id into v_id;
          v_new := true;
        else
          v_bucket := floor(extract(epoch from v_event.occurred_at) / v_window)::bigint * v_window;
          loop
            v_start := to_timestamp(v_bucket);
            insert into shopsync.notifications as n (organization_id, channel_id, rule_id, kind, dedupe_key,
                                                     event_type, store_id, severity, window_start, window_end,
                                                     send_after)
              values (v_event.organization_id, v_rule.channel_id, v_rule.id, 'events',
                      'rule:' || v_rule.id || ':' || v_bucket, v_event.type, v_event.store_id, v_event.severity,
                      v_start, v_start + make_interval(secs => v_window), v_start + make_interval(secs => v_window))
              on conflict (channel_id, dedupe_key) do update
                set event_type = case when n.event_type = excluded.event_type then n.event_type end,
                    store_id = case when n.store_id = excluded.store_id then n.store_id end,
                    severity = case when shopsync_private.severity_rank(excluded.severity)
                                         > shopsync_private.severity_rank(n.severity)
                                    then excluded.severity else n.severity end,
                    updated_at = now()
                where n.status = 'pending' and n.attempts = 0
              returning n.id, (n.xmax = 0) into v_id, v_new;
            exit when v_id is not null;
            v_bucket := v_bucket + v_window;     -- that window's message is on its way: the next one takes it
          end loop;
        end if;
        insert into shopsync.notification_events (channel_id, event_id, notification_id, organization_id)
          values (v_rule.channel_id, v_event.id, v_id, v_event.organization_id);
        update shopsync.notifications n set event_count = n.event_count + 1 where n.id = v_id;
        v_attached := v_attached + 1;
        if v_new then
          v_created := v_created + 1;
          perform shopsync_private.enqueue_notification_send(v_id);
        end if;
      end loop;
    end loop;
    return jsonb_build_object('events', v_events, 'attached', v_attached, 'notifications', v_created);
  end
  $$;

-- ---- sending ---------------------------------------------------------------------------------------------

-- One attempt begins: the message (locked, then 'sending', attempt counted) with everything the worker
-- needs to render and send it — its channel and sealed secret, the organization, its events — or
-- {"skip": reason} when there is nothing to send now (sent already, channel failing: held, not due yet).
create or replace function shopsync.begin_notification_send(p_notification_id bigint) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_n shopsync.notifications;
    v_channel shopsync.notification_channels;
    v_was text;
  begin
    select n.* into v_n from shopsync.notifications n where n.id = p_notification_id for update;
    if not found then
      return jsonb_build_object('skip', 'no such notification');
    elsif v_n.status = 'sent' then
      return jsonb_build_object('skip', 'already sent');
    elsif v_n.status = 'pending' and v_n.send_after > now() then
      return jsonb_build_object('skip', 'not due yet');      -- a stray job: the one due then sends it
    end if;
    select c.* into v_channel from shopsync.notification_channels c where c.id = v_n.channel_id;
    if v_channel.status = 'failing' and v_n.kind <> 'test' then
      update shopsync.notifications n set status = 'held', updated_at = now() where n.id = v_n.id;
      return jsonb_build_object('skip', 'channel failing');
    end if;
    v_was := v_n.status;
    update shopsync.notifications n set status = 'sending', attempts = n.attempts + 1, updated_at = now()
     where n.id = v_n.id returning n.* into v_n;
    return jsonb_build_object(
      'notification', jsonb_build_object('id', v_n.id, 'kind', v_n.kind, 'event_type', v_n.event_type,
                                         'store_id', v_n.store_id, 'severity', v_n.severity,
                                         'event_count', v_n.event_count, 'window_start', v_n.window_start,
                                         'window_end', v_n.window_end, 'attempts', v_n.attempts,
                                         'created_at', v_n.created_at, 'previous_status', v_was),
      'channel', shopsync_private.channel_json(v_channel),
      'secret', (select jsonb_build_object('key_id', s.key_id, 'sealed', s.sealed)
                   from shopsync_private.notification_channel_secrets s where s.channel_id = v_channel.id),
      'organization', (select jsonb_build_object('id', o.id, 'name', o.name,
                                                 'time_zone', coalesce(ns.time_zone, 'UTC'))
                         from shopsync.organizations o
                         left join shopsync.notification_settings ns on ns.organization_id = o.id
                        where o.id = v_n.organization_id),
      'events', coalesce((select jsonb_agg(jsonb_build_object(
                                   'id', e.id, 'type', e.type, 'severity', e.severity, 'store_id', e.store_id,
                                   'store', coalesce(s.display_name, s.shop_key), 'platform', s.platform,
                                   'subject', e.subject, 'details', e.details, 'occurred_at', e.occurred_at)
                                 order by e.occurred_at, e.id)
                            from shopsync.notification_events ne
                            join shopsync.events e on e.id = ne.event_id
                            left join shopsync.stores s on s.id = e.store_id
                           where ne.notification_id = v_n.id), '[]'::jsonb),
      'types', (select coalesce(jsonb_object_agg(t.type, jsonb_build_object('severity', t.severity,
                                                                            'description', t.description)),
                                '{}'::jsonb)
                  from shopsync_private.event_types t));
  end
  $$;

-- How the attempt ended: 'sent' (with the provider's message id), 'retry' (5xx, timeout, rate limit: due
-- again in p_retry_in_seconds, with a new send job), or 'channel_failed' (the provider refused: the
-- channel becomes failing with the provider's words, this message and every later one are held until the
-- channel is fixed or resumed). Returns the message's status.
create or replace function shopsync.finish_notification_send(
  p_notification_id bigint, p_outcome text, p_provider_message_id text default null, p_error text default null,
  p_retry_in_seconds double precision default null
) returns text
  language plpgsql set search_path = ''
  as $$
  declare
    v_n shopsync.notifications;
    v_channel shopsync.notification_channels;
  begin
    if p_outcome is null or p_outcome not in ('sent', 'retry', 'channel_failed') then
      raise exception 'unknown outcome %: expected sent, retry or channel_failed', coalesce(p_outcome, 'null')
        using errcode = '22023';
    end if;
    select n.* into v_n from shopsync.notifications n where n.id = p_notification_id for update;
    if not found then
      return null;
    elsif v_n.status = 'sent' then
      return 'sent';
    end if;
    select c.* into v_channel from shopsync.notification_channels c where c.id = v_n.channel_id for update;
    if p_outcome = 'sent' then
      update shopsync.notifications n set status = 'sent', sent_at = now(), updated_at = now(), last_error = null,
                                          provider_message_id = left(p_provider_message_id, 300)
       where n.id = v_n.id;
      update shopsync.notification_channels c set last_sent_at = now() where c.id = v_channel.id;
      if v_channel.status = 'failing' and v_n.kind = 'test' then
        -- a test got through: whatever was wrong is fixed, the held messages go out
        update shopsync.notification_channels c set status = 'active', status_reason = null,
                                                    status_changed_at = now()
         where c.id = v_channel.id;
        perform shopsync_private.release_channel(v_channel.id);
      end if;
      return 'sent';
    elsif p_outcome = 'retry' then
      update shopsync.notifications n
         set status = 'pending', updated_at = now(), last_error = left(p_error, 1000),
             send_after = now() + make_interval(secs => least(greatest(coalesce(p_retry_in_seconds, 5), 0), 86400))
       where n.id = v_n.id;
      perform shopsync_private.enqueue_notification_send(v_n.id);
      return 'pending';
    end if;
    update shopsync.notifications n set status = 'held', updated_at = now(), last_error = left(p_error, 1000)
     where n.id = v_n.id;
    update shopsync.notification_channels c
       set status = 'failing', status_reason = left(coalesce(p_error, 'the provider refused the message'), 500),
           status_changed_at = case when c.status = 'failing' then c.status_changed_at else now() end
     where c.id = v_channel.id;
    if v_channel.status <> 'failing' then
      perform shopsync_private.emit_event(v_channel.organization_id, null, 'notification.channel_failing',
        v_channel.name, jsonb_build_object('channel_id', v_channel.id, 'kind', v_channel.kind,
                                           'reason', left(p_error, 300)));
    end if;
    return 'held';
  end
  $$;

-- ---- channels (the web process: validated, secrets sealed) -------------------------------------------

-- Who may do what with a channel (p_channel_id) or in an organization (p_channel_id null), checked before
-- anything else: {"organization_id", "role", "channel"} or P0002 / 42501.
create or replace function shopsync.notification_channel_access(
  p_user_id uuid, p_organization_id uuid, p_channel_id uuid, p_roles text[]
) returns jsonb
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_channel shopsync.notification_channels;
  begin
    if p_channel_id is null then
      return jsonb_build_object('organization_id', p_organization_id, 'channel', null,
        'role', shopsync_private.require_org_role(p_organization_id, p_user_id, p_roles));
    end if;
    v_channel := shopsync_private.channel_for_user(p_channel_id, p_user_id, p_roles);
    if p_organization_id is not null and p_organization_id <> v_channel.organization_id then
      raise exception 'unknown notification channel %', p_channel_id using errcode = 'P0002';
    end if;
    return jsonb_build_object('organization_id', v_channel.organization_id, 'channel',
                              shopsync_private.channel_json(v_channel),
                              'role', shopsync_private.require_org_role(v_channel.organization_id, p_user_id,
                                                                        p_roles));
  end
  $$;

-- Create (p_channel_id new) or change a channel, with its sealed secret when given (kept otherwise). A
-- change makes a failing channel active again and releases its held messages. Returns the channel.
create or replace function shopsync.put_notification_channel(
  p_user_id uuid, p_organization_id uuid, p_channel_id uuid, p_name text, p_kind text, p_config jsonb,
  p_key_id text default null, p_sealed text default null
) returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_channel shopsync.notification_channels;
  begin
    perform shopsync_private.require_org_role(p_organization_id, p_user_id, array['owner', 'admin']);
    if p_name is null or length(btrim(p_name)) not between 1 and 100 then
      raise exception 'a channel''s name must be 1 to 100 characters' using errcode = '22023';
    end if;
    if p_config is null or jsonb_typeof(p_config) <> 'object' then
      raise exception 'a channel''s config must be a JSON object' using errcode = '22023';
    end if;
    if p_sealed is not null and (p_key_id is null or p_sealed not like 'v1.%') then
      raise exception 'channel secrets must be sealed (v1.…) with a key id' using errcode = '22023';
    end if;
    select c.* into v_channel from shopsync.notification_channels c where c.id = p_channel_id for update;
    if found then
      if v_channel.organization_id <> p_organization_id then
        raise exception 'unknown notification channel %', p_channel_id using errcode = 'P0002';
      elsif v_channel.kind <> p_kind then
        raise exception 'a channel''s kind cannot change (it is %): create a new channel', v_channel.kind
          using errcode = '22023';
      end if;
      update shopsync.notification_channels c
         set name = btrim(p_name), config = p_config, updated_at = now(), status = 'active', status_reason = null,
             status_changed_at = case when c.status = 'active' then c.status_changed_at else now() end
       where c.id = p_channel_id returning c.* into v_channel;
    else
      if p_kind is null or p_kind not in ('smtp', 'resend', 'mailgun', 'webhook') then
        raise exception 'unknown channel kind %: expected smtp, resend, mailgun or webhook', coalesce(p_kind, 'null')
          using errcode = '22023';
      end if;
      insert into shopsync.notification_channels (id, organization_id, name, kind, config, created_by)
        values (coalesce(p_channel_id, gen_random_uuid()), p_organization_id, btrim(p_name), p_kind, p_config,
                p_user_id)
        returning * into v_channel;
    end if;
    if p_sealed is not null then
      insert into shopsync_private.notification_channel_secrets as s (channel_id, key_id, sealed)
        values (v_channel.id, p_key_id, p_sealed)
        on conflict (channel_id) do update set key_id = excluded.key_id, sealed = excluded.sealed,
                                               version = s.version + 1, updated_at = now();
    end if;
    perform shopsync_private.release_channel(v_channel.id);
    perform shopsync_private.log_channel_activity(v_channel, p_user_id,
      case when v_channel.created_at = v_channel.updated_at then 'notification_channel.created'
           else 'notification_channel.updated' end);
    return shopsync_private.channel_json(v_channel);
  end
  $$;

-- What a preview renders: the channel, the organization and a few recent events (of p_event_type, when
-- given) — nothing is sent. Members may preview.
create or replace function shopsync.notification_preview_data(p_user_id uuid, p_channel_id uuid,
                                                              p_event_type text default null) returns jsonb
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_channel shopsync.notification_channels :=
      shopsync_private.channel_for_user(p_channel_id, p_user_id, array['owner', 'admin', 'member']);
  begin
    if p_event_type is not null then
      perform shopsync_private.assert_event_types(array[p_event_type]);
    end if;
    return jsonb_build_object(
      'channel', shopsync_private.channel_json(v_channel),
      'organization', (select jsonb_build_object('id', o.id, 'name', o.name,
                                                 'time_zone', coalesce(ns.time_zone, 'UTC'))
                         from shopsync.organizations o
                         left join shopsync.notification_settings ns on ns.organization_id = o.id
                        where o.id = v_channel.organization_id),
      'events', coalesce((select jsonb_agg(x.j order by x.occurred_at, x.id) from (
                            select e.id, e.occurred_at, jsonb_build_object(
                                     'id', e.id, 'type', e.type, 'severity', e.severity, 'store_id', e.store_id,
                                     'store', coalesce(s.display_name, s.shop_key), 'platform', s.platform,
                                     'subject', e.subject, 'details', e.details, 'occurred_at', e.occurred_at) as j
                              from shopsync.events e left join shopsync.stores s on s.id = e.store_id
                             where e.organization_id = v_channel.organization_id
                               and (p_event_type is null or e.type = p_event_type)
                             order by e.occurred_at desc, e.id desc limit 5) x), '[]'::jsonb),
      'types', (select jsonb_object_agg(t.type, jsonb_build_object('severity', t.severity,
                                                                   'description', t.description))
                  from shopsync_private.event_types t));
  end
  $$;

-- Key rotation (shopsync rotate-key) for channel secrets, like store credentials.
create or replace function shopsync.notification_secrets_to_reseal(p_active_key_id text, p_limit integer default 100)
  returns table (channel_id uuid, key_id text, sealed text, version integer)
  language sql stable set search_path = ''
  as $$
    select s.channel_id, s.key_id, s.sealed, s.version from shopsync_private.notification_channel_secrets s
     where s.key_id <> p_active_key_id order by s.channel_id limit p_limit
  $$;

create or replace function shopsync.reseal_notification_secret(p_channel_id uuid, p_expected_version integer,
                                                               p_key_id text, p_sealed text) returns boolean
  language plpgsql set search_path = ''
  as $$
  begin
    if p_sealed is null or p_sealed not like 'v1.%' then
      raise exception 'channel secrets must be sealed (v1.…)' using errcode = '22023';
    end if;
    update shopsync_private.notification_channel_secrets s set key_id = p_key_id, sealed = p_sealed,
                                                               updated_at = now()
     where s.channel_id = p_channel_id and s.version = p_expected_version;
    return found;
  end
  $$;

-- ---- webhook subscriptions the platforms dropped ----------------------------------------------------------

-- After a connector's webhook check: p_subscribed is what the store is subscribed to now, p_restored what
-- the check had to create (or switch back on). Topics restored that the store was last seen subscribed to
-- were dropped by the platform: one webhooks.recreated event (its id is returned). A store's first check,
-- and topics a policy change added, tell nobody.
create or replace function shopsync.record_webhook_check(p_store_id uuid, p_subscribed text[], p_restored text[])
  returns bigint
  language plpgsql set search_path = ''
  as $$
  declare
    v_store shopsync.stores;
    v_seen text[];
    v_dropped text[];
  begin
    select s.* into v_store from shopsync.stores s where s.id = p_store_id;
    if not found then
      raise exception 'unknown store %', coalesce(p_store_id::text, 'null') using errcode = 'P0002';
    end if;
    select w.topics into v_seen from shopsync_private.webhook_subscriptions_seen w
     where w.store_id = p_store_id for update;
    insert into shopsync_private.webhook_subscriptions_seen as w (store_id, topics)
      values (p_store_id, array(select distinct t from unnest(coalesce(p_subscribed, '{}')) t order by t))
      on conflict (store_id) do update set topics = excluded.topics, checked_at = now();
    v_dropped := array(select distinct t from unnest(coalesce(p_restored, '{}')) t
                        where t = any (coalesce(v_seen, '{}')) order by t);
    if cardinality(v_dropped) = 0 then
      return null;
    end if;
    return shopsync_private.emit_event(v_store.organization_id, p_store_id, 'webhooks.recreated', v_store.platform,
      jsonb_build_object('platform', v_store.platform, 'topics', to_jsonb(v_dropped),
                         'count', cardinality(v_dropped)));
  end
  $$;

-- ---- daily summaries ----------------------------------------------------------------------------------------

-- The latest moment at p_hour:00 in p_time_zone that is not after p_now.
create or replace function shopsync_private.summary_moment(p_now timestamptz, p_time_zone text, p_hour integer)
  returns timestamptz
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_local timestamp := p_now at time zone p_time_zone;
    v_moment timestamp := date_trunc('day', v_local) + make_interval(hours => p_hour);
  begin
    if v_moment > v_local then
      v_moment := v_moment - interval '1 day';
    end if;
    return v_moment at time zone p_time_zone;
  end
  $$;

-- What an organization's day held, [p_from, p_to): syncs, records changed, new orders, events by type,
-- failures (error and critical events), items waiting for a person (`*.action_required` events) and stores
-- still needing re-authorization. `empty` when there is nothing to say. Later features (flows) add their
-- figures here.
create or replace function shopsync_private.daily_summary_figures(p_organization_id uuid, p_from timestamptz,
                                                                  p_to timestamptz) returns jsonb
  language plpgsql stable set search_path = ''
  as $$
  declare
    v_syncs record;
    v_events jsonb;
    v_failures bigint;
    v_waiting bigint;
    v_reauth bigint;
  begin
    select count(*) as runs, count(*) filter (where r.status = 'failed') as failed,
           coalesce(sum(r.created_count + r.updated_count + r.deleted_count), 0) as changed,
           coalesce(sum(r.created_count) filter (where r.resource = 'orders'), 0) as orders
      into v_syncs
      from shopsync.sync_runs r
     where r.organization_id = p_organization_id and r.status in ('succeeded', 'failed')
       and r.finished_at >= p_from and r.finished_at < p_to;
    select coalesce(jsonb_object_agg(x.type, x.n), '{}'::jsonb),
           coalesce(sum(x.n) filter (where x.severity in ('error', 'critical')), 0),
           coalesce(sum(x.n) filter (where x.type like '%.action_required'), 0)
      into v_events, v_failures, v_waiting
      from (select e.type, min(e.severity) as severity, count(*) as n from shopsync.events e
             where e.organization_id = p_organization_id and e.occurred_at >= p_from and e.occurred_at < p_to
               and e.type <> 'summary.daily'
             group by e.type) x;
    select count(*) into v_reauth from shopsync.stores s
     where s.organization_id = p_organization_id and s.status = 'needs_reauth';
    return jsonb_build_object(
      'syncs', v_syncs.runs, 'syncs_failed', v_syncs.failed, 'records_changed', v_syncs.changed,
      'orders_imported', v_syncs.orders, 'events', v_events, 'failures', v_failures, 'waiting', v_waiting,
      'stores_needing_reauth', v_reauth,
      'empty', v_syncs.runs = 0 and v_events = '{}'::jsonb and v_reauth = 0);
  end
  $$;

-- Each organization whose summary hour has come (in its time zone) and whose summary for that day is not
-- written yet gets one summary.daily event covering the 24 local hours before it — unless there is nothing
-- to say and it asked to skip those. Rules route the event like any other. Returns how many were written.
create or replace function shopsync_private.emit_daily_summaries(p_now timestamptz default now()) returns integer
  language plpgsql set search_path = ''
  as $$
  declare
    v_settings shopsync.notification_settings;
    v_end timestamptz;
    v_start timestamptz;
    v_figures jsonb;
    v_count integer := 0;
  begin
    for v_settings in select s.* from shopsync.notification_settings s where s.summary_hour is not null
                      for update skip locked loop
      v_end := shopsync_private.summary_moment(p_now, v_settings.time_zone, v_settings.summary_hour);
      continue when v_settings.last_summary_at is not null and v_settings.last_summary_at >= v_end;
      v_start := ((v_end at time zone v_settings.time_zone) - interval '1 day') at time zone v_settings.time_zone;
      v_figures := shopsync_private.daily_summary_figures(v_settings.organization_id, v_start, v_end);
      if not ((v_figures ->> 'empty')::boolean and v_settings.summary_skip_empty) then
        perform shopsync_private.emit_event(v_settings.organization_id, null, 'summary.daily',
          to_char(v_end at time zone v_settings.time_zone, 'YYYY-MM-DD'),
          (v_figures - 'empty') || jsonb_build_object('period_start', v_start, 'period_end', v_end,
                                                      'time_zone', v_settings.time_zone));
        v_count := v_count + 1;
      end if;
      update shopsync.notification_settings s set last_summary_at = v_end where s.organization_id = v_settings.organization_id;
    end loop;
    return v_count;
  end
  $$;

-- run_maintenance('notify'), every minute: summaries due, events a wake-up missed, messages whose send job
-- is gone (died, or a worker stopped mid-send), and sent messages older than the events' retention.
create or replace function shopsync_private.notify_maintenance() returns jsonb
  language plpgsql set search_path = ''
  as $$
  declare
    v_summaries integer := shopsync_private.emit_daily_summaries(now());
    v_collected jsonb := shopsync.collect_notifications(5000);
    v_id bigint;
    v_resent integer := 0;
    v_pruned integer;
  begin
    for v_id in select n.id from shopsync.notifications n
                  join shopsync.notification_channels c on c.id = n.channel_id
                 where n.status <> 'sent'
                   and ((n.status = 'pending' and n.send_after <= now() - interval '30 seconds')
                        or (n.status = 'sending' and n.updated_at < now() - interval '10 minutes'))
                   and (c.status = 'active' or n.kind = 'test')
                 order by n.send_after limit 1000 loop
      perform shopsync_private.enqueue_notification_send(v_id);    -- deduplicated while its job lives
      v_resent := v_resent + 1;
    end loop;
    delete from shopsync.notifications n where n.status = 'sent' and n.sent_at < now() -
      coalesce((select s.value ->> 'events' from shopsync_private.settings s where s.key = 'retention'),
               '90 days')::interval;
    get diagnostics v_pruned = row_count;
    return jsonb_build_object('summaries', v_summaries, 'collected', v_collected, 'checked', v_resent,
                              'pruned', v_pruned);
  end
  $$;

-- ---- frontend RPCs (authenticated) ----------------------------------------------------------------------------

create or replace function shopsync.notification_event_types()
  returns table (type text, severity text, description text)
  language sql stable security definer set search_path = ''
  as $$ select t.type, t.severity, t.description from shopsync_private.event_types t order by t.type $$;

create or replace function shopsync_private.check_rule(p_organization_id uuid, p_store_id uuid,
                                                       p_min_severity text, p_group_window_seconds integer)
  returns void
  language plpgsql stable set search_path = ''
  as $$
  begin
    perform shopsync_private.assert_severity(p_min_severity);
    if p_group_window_seconds is null or p_group_window_seconds not between 0 and 86400 then
      raise exception 'group window must be 0 to 86400 seconds (0: every event on its own), got %',
        coalesce(p_group_window_seconds::text, 'null') using errcode = '22023';
    end if;
    if p_store_id is not null and not exists (select 1 from shopsync.stores s
                                               where s.id = p_store_id and s.organization_id = p_organization_id) then
      raise exception 'unknown store %', p_store_id using errcode = 'P0002';
    end if;
  end
  $$;

create or replace function shopsync.create_notification_rule(
  p_channel_id uuid, p_event_types text[] default null, p_min_severity text default 'warning',
  p_store_id uuid default null, p_group_window_seconds integer default 300, p_enabled boolean default true
) returns uuid
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_channel shopsync.notification_channels :=
      shopsync_private.channel_for_user(p_channel_id, shopsync_private.require_user(), array['owner', 'admin']);
    v_id uuid;
  begin
    perform shopsync_private.check_rule(v_channel.organization_id, p_store_id, p_min_severity, p_group_window_seconds);
    insert into shopsync.notification_rules (organization_id, channel_id, event_types, min_severity, store_id,
                                             group_window_seconds, enabled, created_by)
      values (v_channel.organization_id, v_channel.id, shopsync_private.assert_event_types(p_event_types),
              p_min_severity, p_store_id, p_group_window_seconds, coalesce(p_enabled, true), auth.uid())
      returning id into v_id;
    perform shopsync_private.log_activity(v_channel.organization_id, p_store_id, 'notification_rule.created',
                                          jsonb_build_object('rule_id', v_id, 'channel_id', v_channel.id));
    return v_id;
  end
  $$;

-- A rule the caller administers (owner or admin of its organization): unknown (P0002) to non-members, so
-- rule ids do not leak; 42501 for a role too weak.
create or replace function shopsync_private.rule_for_admin(p_rule_id uuid) returns shopsync.notification_rules
  language plpgsql stable security definer set search_path = ''
  as $$
  declare
    v_rule shopsync.notification_rules;
  begin
    select r.* into v_rule from shopsync.notification_rules r where r.id = p_rule_id;
    if not found or not shopsync.is_member(v_rule.organization_id) then
      perform shopsync_private.require_user();
      raise exception 'unknown notification rule %', coalesce(p_rule_id::text, 'null') using errcode = 'P0002';
    end if;
    perform shopsync_private.require_org_role(v_rule.organization_id, shopsync_private.require_user(),
                                              array['owner', 'admin']);
    return v_rule;
  end
  $$;

create or replace function shopsync.update_notification_rule(
  p_rule_id uuid, p_event_types text[] default null, p_min_severity text default 'warning',
  p_store_id uuid default null, p_group_window_seconds integer default 300, p_enabled boolean default true
) returns void
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_rule shopsync.notification_rules := shopsync_private.rule_for_admin(p_rule_id);
  begin
    perform shopsync_private.check_rule(v_rule.organization_id, p_store_id, p_min_severity, p_group_window_seconds);
    update shopsync.notification_rules r
       set event_types = shopsync_private.assert_event_types(p_event_types), min_severity = p_min_severity,
           store_id = p_store_id, group_window_seconds = p_group_window_seconds,
           enabled = coalesce(p_enabled, true), updated_at = now()
     where r.id = p_rule_id;
    perform shopsync_private.log_activity(v_rule.organization_id, p_store_id, 'notification_rule.updated',
                                          jsonb_build_object('rule_id', p_rule_id, 'channel_id', v_rule.channel_id));
  end
  $$;

create or replace function shopsync.delete_notification_rule(p_rule_id uuid) returns void
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_rule shopsync.notification_rules := shopsync_private.rule_for_admin(p_rule_id);
  begin
    delete from shopsync.notification_rules r where r.id = p_rule_id;
    perform shopsync_private.log_activity(v_rule.organization_id, v_rule.store_id, 'notification_rule.deleted',
                                          jsonb_build_object('rule_id', p_rule_id, 'channel_id', v_rule.channel_id));
  end
  $$;

-- Deleting a channel deletes its rules, secret and messages (sent or not).
create or replace function shopsync.delete_notification_channel(p_channel_id uuid) returns void
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_channel shopsync.notification_channels :=
      shopsync_private.channel_for_user(p_channel_id, shopsync_private.require_user(), array['owner', 'admin']);
  begin
    delete from shopsync.notification_channels c where c.id = v_channel.id;
    perform shopsync_private.log_channel_activity(v_channel, null, 'notification_channel.deleted');
  end
  $$;

-- After fixing what the provider complained about outside shopsync (verifying the domain, ...): the channel
-- is active again and its held messages go out. Returns how many.
create or replace function shopsync.resume_notification_channel(p_channel_id uuid) returns integer
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_channel shopsync.notification_channels :=
      shopsync_private.channel_for_user(p_channel_id, shopsync_private.require_user(), array['owner', 'admin']);
  begin
    update shopsync.notification_channels c
       set status = 'active', status_reason = null,
           status_changed_at = case when c.status = 'active' then c.status_changed_at else now() end
     where c.id = v_channel.id;
    perform shopsync_private.log_channel_activity(v_channel, null, 'notification_channel.resumed');
    return shopsync_private.release_channel(v_channel.id);
  end
  $$;

-- A test message, sent at once even to a failing channel (a test that gets through makes it active
-- again). Returns the notification id: watch its row for the outcome.
create or replace function shopsync.test_notification_channel(p_channel_id uuid) returns bigint
  language plpgsql security definer set search_path = ''
  as $$
  declare
    v_channel shopsync.notification_channels :=
      shopsync_private.channel_for_user(p_channel_id, shopsync_private.require_user(), array['owner', 'admin']);
    v_id bigint;
  begin
    insert into shopsync.notifications (organization_id, channel_id, kind, dedupe_key, severity, send_after)
      values (v_channel.organization_id, v_channel.id, 'test', 'test:' || gen_random_uuid(), 'info', now())
      returning id into v_id;
    perform shopsync_private.enqueue_notification_send(v_id);
    return v_id;
  end
  $$;

-- The organization's time zone (for summaries and the times messages show) and its daily summary: the
-- hour (0-23, local) or null for none, and whether a day with nothing to say is skipped. The first summary
-- comes at the next such hour.
create or replace function shopsync.set_notification_settings(
  p_organization_id uuid, p_time_zone text default 'UTC', p_summary_hour integer default null,
  p_summary_skip_empty boolean default true
) returns void
  language plpgsql security definer set search_path = ''
  as $$
  begin
    perform shopsync_private.require_org_role(p_organization_id, shopsync_private.require_user(),
                                              array['owner', 'admin']);
    perform shopsync_private.assert_time_zone(p_time_zone);
    if p_summary_hour is not null and p_summary_hour not between 0 and 23 then
      raise exception 'summary hour must be 0 to 23 (local time), or null for no daily summary, got %',
        p_summary_hour using errcode = '22023';
    end if;
    insert into shopsync.notification_settings as s (organization_id, time_zone, summary_hour, summary_skip_empty,
                                                     last_summary_at)
      values (p_organization_id, p_time_zone, p_summary_hour, coalesce(p_summary_skip_empty, true),
              case when p_summary_hour is not null
                   then shopsync_private.summary_moment(now(), p_time_zone, p_summary_hour) end)
      on conflict (organization_id) do update
        set time_zone = excluded.time_zone, summary_hour = excluded.summary_hour,
            summary_skip_empty = excluded.summary_skip_empty, updated_at = now(),
            last_summary_at = case when s.summary_hour is not distinct from excluded.summary_hour
                                        and s.time_zone = excluded.time_zone then s.last_summary_at
                                   else excluded.last_summary_at end;
    perform shopsync_private.log_activity(p_organization_id, null, 'notification_settings.changed',
      jsonb_build_object('time_zone', p_time_zone, 'summary_hour', p_summary_hour,
                         'summary_skip_empty', coalesce(p_summary_skip_empty, true)));
  end
  $$;
