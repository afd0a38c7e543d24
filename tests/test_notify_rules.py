"""Notifications in SQL: rules and their refusals, events grouped into windows once per channel, the outcome of
an attempt (sent, retry, channel failing → held → resumed), daily summaries, who reads what, and webhook
subscriptions a platform dropped. Sending itself is tested end to end in test_notify_delivery.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import as_role, new_user, personal_org

Conn = psycopg.Connection[dict[str, Any]]


def scalar(conn: Conn, query: str, params: Any = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


class Org:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.owner = new_user(conn)
        self.id = personal_org(conn, self.owner)
        self.store = scalar(conn, "select shopsync.upsert_store(%s, 'shopify', %s)",
                            (self.id, f"{uuid.uuid4().hex[:8]}.myshopify.com"))

    def member(self, role: str) -> uuid.UUID:
        user = new_user(self.conn)
        self.conn.execute("insert into shopsync.organization_members (organization_id, user_id, role) "
                          "values (%s, %s, %s)", (self.id, user, role))
        return user

    def channel(self, kind: str = "smtp", name: str = "ops") -> Any:
        config = {"url": "https://hooks.example.com/x"} if kind == "webhook" else \
            {"host": "127.0.0.1", "port": 2525, "security": "none", "from": "a@example.com", "to": ["b@example.com"]}
        channel = scalar(self.conn, "select shopsync.put_notification_channel(%s, %s, gen_random_uuid(), %s, %s, %s, "
                                    "'k1', 'v1.sealed-secret') as c", (self.owner, self.id, name, kind,
                                                                       psycopg.types.json.Jsonb(config)))
        return uuid.UUID(channel["id"])

    def rule(self, channel: Any, *, user: Any = None, **args: Any) -> Any:
        named = ", ".join(f"{k} => %({k})s" for k in args)
        with as_role(self.conn, "authenticated", user or self.owner):
            return scalar(self.conn, f"select shopsync.create_notification_rule(%(c)s{', ' if args else ''}{named})",
                          {"c": channel, **args})

    def event(self, type: str = "job.dead", subject: str = "shopify.sync", occurred_at: datetime | None = None,
              store: Any = None) -> int:
        event = scalar(self.conn, "select shopsync.record_event(%s, %s, %s, '{\"kind\": \"shopify.sync\"}')",
                       (store or self.store, type, subject))
        if occurred_at is not None:
            self.conn.execute("update shopsync.events set occurred_at = %s where id = %s", (occurred_at, event))
        return int(event)


def collect(conn: Conn) -> dict[str, Any]:
    return dict(scalar(conn, "select shopsync.collect_notifications(1000)"))


def notifications(conn: Conn) -> list[dict[str, Any]]:
    return conn.execute("select n.*, array(select ne.event_id from shopsync.notification_events ne "
                        "where ne.notification_id = n.id order by ne.event_id) as events "
                        "from shopsync.notifications n order by n.id").fetchall()


@pytest.fixture
def org(conn: Conn) -> Org:
    return Org(conn)


# --- rules ---------------------------------------------------------------------------------------------

def test_bad_rules_are_refused_with_what_to_fix(conn: Conn, org: Org) -> None:
    channel = org.channel()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown event type 'job.deadd'") as unknown:
        org.rule(channel, p_event_types=["job.deadd"])
    assert unknown.value.diag.message_hint is not None and "job.dead" in unknown.value.diag.message_hint
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown severity urgent"):
        org.rule(channel, p_min_severity="urgent")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="group window must be 0 to 86400"):
        org.rule(channel, p_group_window_seconds=-1)
    other = Org(conn)
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown store"):
        org.rule(channel, p_store_id=other.store)          # another organization's store
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown notification channel"):
        org.rule(other.channel())                          # another organization's channel: unknown, not forbidden
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="needs owner or admin"):
        org.rule(channel, user=org.member("member"))
    assert org.rule(channel, user=org.member("admin"), p_event_types=["job.dead", "store.needs_reauth"])
    assert scalar(conn, "select count(*) from shopsync.notification_rules") == 1


def test_admins_change_and_delete_rules_and_a_disabled_rule_takes_nothing(conn: Conn, org: Org) -> None:
    channel = org.channel()
    rule = org.rule(channel, p_event_types=["store.uninstalled"], p_group_window_seconds=0)
    org.event()                                                    # job.dead: not this rule's type
    assert collect(conn)["attached"] == 0
    update = "select shopsync.update_notification_rule(%s, %s, 'warning', null, 0, %s)"
    with as_role(conn, "authenticated", org.owner):
        conn.execute(update, (rule, ["job.dead"], True))
    org.event()
    assert collect(conn)["attached"] == 1
    with as_role(conn, "authenticated", org.owner):
        conn.execute(update, (rule, ["job.dead"], False))         # disabled
    org.event()
    assert collect(conn)["attached"] == 0
    with as_role(conn, "authenticated", org.owner), \
            pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown event type 'job.deadd'"):
        conn.execute(update, (rule, ["job.deadd"], True))
    with as_role(conn, "authenticated", org.member("member")), \
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="needs owner or admin"):
        conn.execute("select shopsync.delete_notification_rule(%s)", (rule,))
    with as_role(conn, "authenticated", Org(conn).owner), \
            pytest.raises(psycopg.errors.NoDataFound, match="unknown notification rule"):
        conn.execute("select shopsync.delete_notification_rule(%s)", (rule,))   # another organization's
    with as_role(conn, "authenticated", org.member("admin")):
        conn.execute("select shopsync.delete_notification_rule(%s)", (rule,))
    assert scalar(conn, "select count(*) from shopsync.notification_rules") == 0


def test_unknown_time_zones_and_hours_are_refused(conn: Conn, org: Org) -> None:
    with as_role(conn, "authenticated", org.owner), \
            pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown time zone 'Mars/Olympus'") as bad:
        conn.execute("select shopsync.set_notification_settings(%s, 'Mars/Olympus', 8)", (org.id,))
    assert "Europe/Budapest" in (bad.value.diag.message_hint or "")
    with as_role(conn, "authenticated", org.owner), \
            pytest.raises(psycopg.errors.InvalidParameterValue, match="summary hour must be 0 to 23"):
        conn.execute("select shopsync.set_notification_settings(%s, 'UTC', 24)", (org.id,))
    with as_role(conn, "authenticated", org.member("member")), \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select shopsync.set_notification_settings(%s, 'UTC', 8)", (org.id,))
    with as_role(conn, "authenticated", org.owner):
        conn.execute("select shopsync.set_notification_settings(%s, 'Europe/Budapest', 8, false)", (org.id,))
    assert conn.execute("select time_zone, summary_hour, summary_skip_empty from shopsync.notification_settings"
                        ).fetchone() == {"time_zone": "Europe/Budapest", "summary_hour": 8, "summary_skip_empty": False}


# --- collecting ----------------------------------------------------------------------------------------

def test_events_in_one_window_become_one_message_and_later_ones_the_next(conn: Conn, org: Org) -> None:
    channel = org.channel()
    org.rule(channel, p_group_window_seconds=60)
    window = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    first = [org.event(occurred_at=window + timedelta(seconds=s)) for s in (1, 20, 59)]
    later = org.event(occurred_at=window + timedelta(seconds=61))
    assert collect(conn) == {"events": 4, "attached": 4, "notifications": 2}
    one, two = notifications(conn)
    assert (one["events"], one["event_count"], one["window_start"], one["send_after"]) == \
        (first, 3, window, window + timedelta(seconds=60))
    assert (two["events"], two["window_start"]) == ([later], window + timedelta(seconds=60))
    assert one["event_type"] == "job.dead" and one["store_id"] == org.store and one["severity"] == "error"
    # each new message has its send job, due when its window ends
    jobs = conn.execute("select payload, run_at, concurrency_key from shopsync.jobs where kind = 'notify.send' "
                        "order by id").fetchall()
    assert [(j["payload"]["notification_id"], j["concurrency_key"]) for j in jobs] == \
        [(one["id"], f"notify.channel:{channel}"), (two["id"], f"notify.channel:{channel}")]


def test_a_message_already_tried_takes_no_more_events(conn: Conn, org: Org) -> None:
    org.rule(org.channel(), p_group_window_seconds=3600)
    org.event()
    collect(conn)
    (message,) = notifications(conn)
    assert scalar(conn, "select shopsync.begin_notification_send(%s) ->> 'skip'", (message["id"],)) == "not due yet"
    conn.execute("update shopsync.notifications set send_after = now() where id = %s", (message["id"],))
    begun = scalar(conn, "select shopsync.begin_notification_send(%s)", (message["id"],))
    assert begun["notification"]["attempts"] == 1 and len(begun["events"]) == 1
    straggler = org.event()      # same window, but its message is frozen: the next window carries it
    collect(conn)
    first, second = notifications(conn)
    assert first["events"] == [message["events"][0]] and second["events"] == [straggler]
    assert second["window_start"] == first["window_start"] + timedelta(hours=1)


def test_an_event_reaches_a_channel_once_whatever_the_rules(conn: Conn, org: Org) -> None:
    channel, other = org.channel(), org.channel("webhook", "hooks")
    org.rule(channel, p_group_window_seconds=0)
    org.rule(channel, p_event_types=["job.dead"], p_group_window_seconds=300)     # the same event, again
    org.rule(other, p_min_severity="critical")                                   # job.dead is only "error"
    org.rule(other, p_store_id=org.store, p_event_types=["store.uninstalled"])
    event = org.event()
    assert collect(conn) == {"events": 1, "attached": 1, "notifications": 1}
    assert [(n["channel_id"], n["events"], n["window_start"]) for n in notifications(conn)] == [(channel, [event], None)]
    # an event of another store does not match a rule for one store
    second = scalar(conn, "select shopsync.upsert_store(%s, 'shopify', 'second.myshopify.com')", (org.id,))
    org.event("store.uninstalled", "uninstalled", store=second)
    assert collect(conn)["attached"] == 1        # only the all-stores rule with window 0 took it


def test_organizations_without_rules_queue_nothing_and_notification_jobs_do_not_notify_about_themselves(
        conn: Conn, org: Org) -> None:
    org.event()
    assert scalar(conn, "select count(*) from shopsync_private.notification_inbox") == 0
    assert scalar(conn, "select count(*) from shopsync.jobs where kind = 'notify.dispatch'") == 0
    org.rule(org.channel())
    org.event()
    org.event()
    org.event("job.dead", "notify.send")          # a notification job that died
    assert scalar(conn, "select count(*) from shopsync_private.notification_inbox") == 2
    # one dispatch job waits for all of them
    assert scalar(conn, "select count(*) from shopsync.jobs where kind = 'notify.dispatch' and state = 'queued'") == 1


# --- attempts ----------------------------------------------------------------------------------------------

def begin(conn: Conn, notification: int) -> dict[str, Any]:
    conn.execute("update shopsync.notifications set send_after = now() where id = %s", (notification,))
    return dict(scalar(conn, "select shopsync.begin_notification_send(%s)", (notification,)))


def finish(conn: Conn, notification: int, outcome: str, error: str | None = None, retry_in: float | None = None) -> str:
    return str(scalar(conn, "select shopsync.finish_notification_send(%s, %s, 'id-1', %s, %s)",
                      (notification, outcome, error, retry_in)))


def test_a_retry_is_a_new_job_and_sent_is_final(conn: Conn, org: Org) -> None:
    org.rule(org.channel(), p_group_window_seconds=0)
    org.event()
    collect(conn)
    (n,) = notifications(conn)
    begin(conn, n["id"])
    assert finish(conn, n["id"], "retry", "Resend answered 503", 30) == "pending"
    row = conn.execute("select status, last_error, send_after > now() + interval '25 seconds' as later "
                       "from shopsync.notifications").fetchone()
    assert row == {"status": "pending", "last_error": "Resend answered 503", "later": True}
    assert scalar(conn, "select count(*) from shopsync.jobs where kind = 'notify.send' and dedupe_key = %s",
                  (f"notify.send:{n['id']}:1",)) == 1
    begin(conn, n["id"])
    assert finish(conn, n["id"], "sent") == "sent"
    assert finish(conn, n["id"], "retry", "late duplicate answer") == "sent"        # nothing undoes a send
    assert scalar(conn, "select shopsync.begin_notification_send(%s) ->> 'skip'", (n["id"],)) == "already sent"
    assert conn.execute("select attempts, provider_message_id, sent_at is not null as sent "
                        "from shopsync.notifications").fetchone() == {"attempts": 2, "provider_message_id": "id-1",
                                                                     "sent": True}


def test_a_refusing_provider_stops_the_channel_until_it_is_fixed(conn: Conn, org: Org) -> None:
    channel = org.channel(name="alerts")
    backup = org.channel("webhook", "backup")
    org.rule(channel, p_group_window_seconds=0)
    org.rule(backup, p_event_types=["notification.channel_failing"], p_group_window_seconds=0)
    org.event()
    collect(conn)
    (n,) = notifications(conn)
    begin(conn, n["id"])
    reason = "Mailgun refused the message (403): Domain mg.example.com is not allowed to send"
    assert finish(conn, n["id"], "channel_failed", reason) == "held"
    assert conn.execute("select status, status_reason from shopsync.notification_channels where id = %s",
                        (channel,)).fetchone() == {"status": "failing", "status_reason": reason}
    # the failure is an event itself, which the other channel hears about
    (failing,) = conn.execute("select type, subject, details from shopsync.events "
                              "where type = 'notification.channel_failing'").fetchall()
    assert failing["subject"] == "alerts" and failing["details"]["channel_id"] == str(channel)
    later = org.event()
    collect(conn)
    held = [m for m in notifications(conn) if m["channel_id"] == channel and later in m["events"]][0]
    assert begin(conn, held["id"]) == {"skip": "channel failing"}
    assert scalar(conn, "select status from shopsync.notifications where id = %s", (held["id"],)) == "held"
    # members see why; a member may not resume it
    with as_role(conn, "authenticated", org.member("member")):
        assert scalar(conn, "select status_reason from shopsync.notification_channels where id = %s",
                      (channel,)) == reason
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select shopsync.resume_notification_channel(%s)", (channel,))
    with as_role(conn, "authenticated", org.owner):
        assert scalar(conn, "select shopsync.resume_notification_channel(%s)", (channel,)) == 2
    # the two held ones, and the news of its own failure (its rule takes every type), which waited unsent
    assert scalar(conn, "select count(*) from shopsync.notifications where channel_id = %s and status = 'pending'",
                  (channel,)) == 3
    assert scalar(conn, "select status from shopsync.notification_channels where id = %s", (channel,)) == "active"


def test_a_test_message_goes_to_a_failing_channel_and_its_success_releases_the_held_ones(conn: Conn,
                                                                                           org: Org) -> None:
    channel = org.channel()
    org.rule(channel, p_group_window_seconds=0)
    org.event()
    collect(conn)
    (n,) = notifications(conn)
    begin(conn, n["id"])
    finish(conn, n["id"], "channel_failed", "535 5.7.8 Authentication credentials invalid")
    with as_role(conn, "authenticated", org.owner):
        test = scalar(conn, "select shopsync.test_notification_channel(%s)", (channel,))
    begun = begin(conn, test)
    assert begun["notification"]["kind"] == "test" and begun["events"] == []
    assert begun["secret"] == {"key_id": "k1", "sealed": "v1.sealed-secret"}
    assert finish(conn, test, "sent") == "sent"
    assert scalar(conn, "select status from shopsync.notification_channels where id = %s", (channel,)) == "active"
    assert scalar(conn, "select status from shopsync.notifications where id = %s", (n["id"],)) == "pending"


# --- summaries -------------------------------------------------------------------------------------------

def test_the_daily_summary_comes_once_at_the_local_hour_and_says_what_happened(conn: Conn, org: Org) -> None:
    with as_role(conn, "authenticated", org.owner):
        conn.execute("select shopsync.set_notification_settings(%s, 'America/New_York', 7)", (org.id,))
    # the first summary is at the next 07:00 New York time, not at once
    conn.execute("update shopsync.notification_settings set last_summary_at = '2026-03-04 12:00+00'")   # 07:00 EST
    run = scalar(conn, "select shopsync.start_sync_run(%s, 'orders', 'full')", (org.store,))
    conn.execute("select shopsync.finish_sync_run(%s, 'succeeded', 5, 2, 0, 1)", (run,))
    conn.execute("update shopsync.sync_runs set finished_at = '2026-03-05 03:00+00'")
    org.event(occurred_at=datetime(2026, 3, 5, 1, 0, tzinfo=UTC))
    conn.execute("update shopsync.events set occurred_at = '2026-03-05 03:00+00' where type = 'sync.record_errors'")
    emit = "select shopsync_private.emit_daily_summaries(%s::timestamptz)"
    assert scalar(conn, emit, ("2026-03-05 11:59+00",)) == 0       # 06:59 in New York
    assert scalar(conn, emit, ("2026-03-05 12:00+00",)) == 1       # 07:00
    assert scalar(conn, emit, ("2026-03-05 12:30+00",)) == 0       # once
    (summary,) = conn.execute("select subject, details, store_id from shopsync.events "
                              "where type = 'summary.daily'").fetchall()
    details = summary["details"]
    assert summary["subject"] == "2026-03-05" and summary["store_id"] is None
    assert (details["syncs"], details["records_changed"], details["orders_imported"], details["failures"]) == \
        (1, 7, 5, 1)
    assert details["events"] == {"job.dead": 1, "sync.record_errors": 1}
    assert details["time_zone"] == "America/New_York"


def test_a_day_with_nothing_to_say_is_skipped_when_asked(conn: Conn, org: Org) -> None:
    with as_role(conn, "authenticated", org.owner):
        conn.execute("select shopsync.set_notification_settings(%s, 'UTC', 9, true)", (org.id,))
    conn.execute("update shopsync.notification_settings set last_summary_at = '2026-03-04 09:00+00'")
    assert scalar(conn, "select shopsync_private.emit_daily_summaries('2026-03-05 09:00+00')") == 0
    assert scalar(conn, "select last_summary_at from shopsync.notification_settings") == \
        datetime(2026, 3, 5, 9, tzinfo=UTC)
    with as_role(conn, "authenticated", org.owner):
        conn.execute("select shopsync.set_notification_settings(%s, 'UTC', 9, false)", (org.id,))
    assert scalar(conn, "select shopsync_private.emit_daily_summaries('2026-03-06 09:00+00')") == 1


def test_after_days_without_a_run_only_the_latest_day_is_summarized(conn: Conn, org: Org) -> None:
    with as_role(conn, "authenticated", org.owner):
        conn.execute("select shopsync.set_notification_settings(%s, 'UTC', 9, false)", (org.id,))
    conn.execute("update shopsync.notification_settings set last_summary_at = '2026-03-01 09:00+00'")
    emit = "select shopsync_private.emit_daily_summaries(%s::timestamptz)"
    assert scalar(conn, emit, ("2026-03-05 10:00+00",)) == 1
    assert scalar(conn, emit, ("2026-03-05 10:30+00",)) == 0
    assert [r["subject"] for r in conn.execute("select subject from shopsync.events where type = 'summary.daily'")
            ] == ["2026-03-05"]


def test_summaries_are_never_grouped(conn: Conn, org: Org) -> None:
    org.rule(org.channel(), p_event_types=["summary.daily"], p_min_severity="info", p_group_window_seconds=3600)
    with as_role(conn, "authenticated", org.owner):
        conn.execute("select shopsync.set_notification_settings(%s, 'UTC', 9, false)", (org.id,))
    conn.execute("update shopsync.notification_settings set last_summary_at = '2026-03-04 09:00+00'")
    conn.execute("select shopsync_private.emit_daily_summaries('2026-03-05 09:00+00')")
    collect(conn)
    (n,) = notifications(conn)
    assert n["window_start"] is None and n["event_type"] == "summary.daily"


# --- who reads what ----------------------------------------------------------------------------------------

def test_members_read_their_notifications_and_channels_but_never_secrets(conn: Conn, org: Org) -> None:
    channel = org.channel()
    org.rule(channel, p_group_window_seconds=0)
    org.event()
    collect(conn)
    member, stranger = org.member("member"), new_user(conn)
    with as_role(conn, "authenticated", member):
        assert scalar(conn, "select count(*) from shopsync.notifications") == 1
        assert scalar(conn, "select count(*) from shopsync.notification_events") == 1
        assert scalar(conn, "select count(*) from shopsync.notification_rules") == 1
        assert conn.execute("select config from shopsync.notification_channels").fetchone() is not None
        assert "sealed" not in str(conn.execute("select * from shopsync.notification_channels").fetchall())
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from shopsync_private.notification_channel_secrets")
    with as_role(conn, "authenticated", stranger):
        for table in ("notifications", "notification_events", "notification_rules", "notification_channels"):
            assert scalar(conn, f"select count(*) from shopsync.{table}") == 0
        with pytest.raises(psycopg.errors.NoDataFound):
            conn.execute("select shopsync.delete_notification_channel(%s)", (channel,))
    with as_role(conn, "authenticated", member):
        assert {r["type"] for r in conn.execute("select * from shopsync.notification_event_types()")} >= \
            {"job.dead", "summary.daily", "webhooks.recreated"}
    with as_role(conn, "authenticated", org.owner):
        conn.execute("select shopsync.delete_notification_channel(%s)", (channel,))
    assert scalar(conn, "select count(*) from shopsync.notifications") == 0
    assert scalar(conn, "select count(*) from shopsync_private.notification_channel_secrets") == 0


# --- webhook subscriptions the platform dropped ----------------------------------------------------------

def test_only_subscriptions_the_store_had_before_are_told_as_recreated(conn: Conn, org: Org) -> None:
    def check(subscribed: list[str], restored: list[str]) -> Any:
        return scalar(conn, "select shopsync.record_webhook_check(%s, %s, %s)", (org.store, subscribed, restored))

    assert check(["ORDERS_CREATE", "PRODUCTS_UPDATE"], ["ORDERS_CREATE", "PRODUCTS_UPDATE"]) is None   # the first
    assert check(["ORDERS_CREATE", "PRODUCTS_UPDATE"], []) is None
    assert check(["CUSTOMERS_UPDATE", "ORDERS_CREATE", "PRODUCTS_UPDATE"], ["CUSTOMERS_UPDATE"]) is None  # a policy
    event = check(["CUSTOMERS_UPDATE", "ORDERS_CREATE", "PRODUCTS_UPDATE"], ["ORDERS_CREATE", "PRODUCTS_UPDATE"])
    assert conn.execute("select type, subject, details from shopsync.events where id = %s", (event,)).fetchone() == {
        "type": "webhooks.recreated", "subject": "shopify",
        "details": {"platform": "shopify", "topics": ["ORDERS_CREATE", "PRODUCTS_UPDATE"], "count": 2}}
    # a store that comes back after an uninstall starts over: its new subscriptions are its first
    conn.execute("select shopsync.set_store_status(%s, 'uninstalled', 'app removed')", (org.store,))
    conn.execute("select shopsync.upsert_store(%s, 'shopify', (select shop_key from shopsync.stores where id = %s))",
                 (org.id, org.store))
    assert check(["ORDERS_CREATE"], ["ORDERS_CREATE"]) is None
