"""Notifications end to end: events become messages that a real SMTP server (aiosmtpd), the Resend and Mailgun
stand-ins and a webhook receiver accept — grouped, once per channel, retried while a provider is down, held
while it refuses, re-sent under the same idempotency key after a lost answer or a worker that died."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from standardwebhooks import Webhook

from sandbox.mail_sink import MailSink
from sandbox.woocommerce.tls import make_certificates
from tests.notify_world import APP_URL, NotifyWorld
from worker.notify import providers
from worker.notify.channels import open_secret
from worker.notify.delivery import NOTIFIER, build_message
from worker.rpc import notifications


def deliveries(kind: str, outcome: str) -> float:
    """This process's count of notification delivery attempts (cumulative across tests: compare deltas)."""
    value = REGISTRY.get_sample_value("shopsync_notification_deliveries_total",
                                      {"channel_kind": kind, "outcome": outcome})
    return value or 0.0


def smtp_rule(w: NotifyWorld, channel: dict[str, Any], **args: Any) -> Any:
    return w.rule(channel["id"], **{"p_group_window_seconds": 0, **args})


async def test_one_failure_reaches_every_kind_of_channel(notify_world: NotifyWorld) -> None:
    w = notify_world
    smtp = await w.channel("smtp", w.smtp_config(), name="ops mail")
    resend = await w.channel("resend", {"from": "alerts@example.com", "to": "ops@example.com"},
                             {"api_key": w.resend.api_key})
    mailgun = await w.channel("mailgun", {"domain": "mg.example.com", "from": "alerts@mg.example.com",
                                          "to": ["ops@example.com", "lead@example.com"]}, {"api_key": w.mailgun.api_key})
    hook = await w.channel("webhook", {"url": f"{w.receiver_url}/hooks/shopsync?team=ops"})
    secret = hook.pop("signing_secret")
    for channel in (smtp, resend, mailgun, hook):
        assert "secret" not in json.dumps(channel).replace("has_secret", "") and channel["status"] == "active"
        smtp_rule(w, channel)
    # members read channels; no secret is there, only in the private table, sealed
    assert "whsec_" not in json.dumps(w.conn.execute("select * from shopsync.notification_channels").fetchall(),
                                      default=str)
    assert w.scalar("select count(*) from shopsync_private.notification_channel_secrets where sealed like 'v1.%%'") == 3

    event = w.event("store.needs_reauth", "needs_reauth", '{"reason": "invalid_grant"}')
    async with w.worker():
        await w.until(lambda: all(w.sent(c["id"]) for c in (smtp, resend, mailgun, hook)), what="four messages")
    (mail,) = w.sink.wait_for(1)
    assert mail.subject == f"[{w.scalar('select name from shopsync.organizations where id = %s', (w.org,))}] " \
                           "Demo shop must be connected again (invalid_grant)"
    assert mail.rcpt_tos == ["ops@example.com"] and mail.message["Auto-Submitted"] == "auto-generated"
    assert f"{APP_URL}/stores/{w.store}" in mail.body("plain") and f'href="{APP_URL}/stores/{w.store}"' in mail.body("html")
    (sent,) = w.resend.sent
    assert sent.idempotency_key == f"shopsync-notification-{w.notifications(resend['id'])[0]['id']}"
    assert sent.payload["subject"] == mail.subject and sent.payload["to"] == ["ops@example.com"]
    (queued,) = w.mailgun.queued
    assert queued.fields["to"] == ["ops@example.com", "lead@example.com"]
    assert queued.first("v:shopsync_notification") == str(w.notifications(mailgun["id"])[0]["id"])
    (delivered,) = w.receiver.requests
    assert delivered.path == "/hooks/shopsync"
    payload = Webhook(secret).verify(delivered.body, delivered.headers)       # the reference verifier
    assert payload["type"] == "store.needs_reauth" and payload["data"]["events"][0]["id"] == event
    assert delivered.headers["webhook-id"] == f"shopsync-notification-{payload['data']['notification_id']}"
    rows = {str(r["channel_id"]): r for r in w.notifications()}
    assert rows[resend["id"]]["provider_message_id"] == sent.id and rows[mailgun["id"]]["provider_message_id"] == queued.id


async def test_500_failures_in_a_window_are_one_message_listing_them(notify_world: NotifyWorld) -> None:
    w = notify_world
    smtp = await w.channel("smtp", w.smtp_config())
    w.rule(smtp["id"], p_group_window_seconds=600)
    w.conn.execute("select shopsync.record_event(%s, 'job.dead', 'shopify.sync', jsonb_build_object('kind', "
                   "'shopify.sync', 'job_id', g, 'attempts', 10, 'error', 'timeout')) from generate_series(1, 500) g",
                   (w.store,))
    # the window they fell in has ended (they happened 20 minutes ago)
    w.conn.execute("update shopsync.events set occurred_at = now() - interval '20 minutes'")
    async with w.worker():
        await w.until(lambda: w.sent(smtp["id"]), what="the grouped message")
        await asyncio.sleep(0.3)
    (mail,) = w.sink.wait_for(1)
    assert len(w.sink.messages) == 1
    assert mail.subject.endswith("500 events: 500 × job.dead")
    assert mail.body("plain").count("shopify.sync failed for good after 10 attempt(s): timeout") == 500
    (n,) = w.notifications()
    assert n["event_count"] == 500 and w.scalar("select count(*) from shopsync.notification_events") == 500


async def test_nothing_is_lost_or_sent_twice_while_providers_are_down(notify_world: NotifyWorld) -> None:
    w = notify_world
    smtp = await w.channel("smtp", w.smtp_config())
    resend = await w.channel("resend", {"from": "alerts@example.com", "to": ["ops@example.com"]},
                             {"api_key": w.resend.api_key})
    for channel in (smtp, resend):
        smtp_rule(w, channel)
    w.sink.refuse("451 4.3.0 Try again later")
    w.resend.down = True
    before = {(k, o): deliveries(k, o) for k in ("smtp", "resend") for o in ("sent", "retry")}
    events = [w.event(subject=f"kind.{i}") for i in range(5)]
    async with w.worker():
        await w.until(lambda: w.sink.refused >= 10 and w.resend.requests >= 10, what="attempts while down")
        assert w.sink.messages == [] and w.resend.sent == []
        down = w.notifications()
        assert all(n["status"] in ("pending", "sending") for n in down)
        assert any("451 4.3.0 Try again later" in (n["last_error"] or "") for n in down)
        assert any("Resend answered 503" in (n["last_error"] or "") for n in down)
        w.sink.refuse(None)
        w.resend.down = False
        await w.until(lambda: w.sent(smtp["id"]) and w.sent(resend["id"]), what="everything after recovery")
        await asyncio.sleep(0.5)
    assert sorted(m.message["X-Shopsync-Notification"] for m in w.sink.messages) == \
        sorted(str(n["id"]) for n in w.notifications(smtp["id"]))
    assert len(w.sink.messages) == len(events) and len(w.resend.sent) == len(events)
    assert len({e.idempotency_key for e in w.resend.sent}) == len(events)
    assert all(n["attempts"] > 1 for n in w.notifications())
    # /metrics counts every attempt by channel kind and outcome
    for kind in ("smtp", "resend"):
        assert deliveries(kind, "sent") - before[kind, "sent"] == len(events)
        assert deliveries(kind, "retry") - before[kind, "retry"] == \
            sum(n["attempts"] - 1 for n in w.notifications(smtp["id"] if kind == "smtp" else resend["id"]))


async def test_a_refusing_provider_stops_the_channel_with_its_words_until_fixed(notify_world: NotifyWorld) -> None:
    w = notify_world
    mailgun = await w.channel("mailgun", {"domain": "unverified.example.com", "from": "a@unverified.example.com",
                                          "to": ["ops@example.com"]}, {"api_key": w.mailgun.api_key})
    smtp_rule(w, mailgun)
    refusals = deliveries("mailgun", "channel_failed")
    w.event()
    async with w.worker():
        await w.until(lambda: w.scalar("select status from shopsync.notification_channels") == "failing",
                      what="the channel failing")
        assert deliveries("mailgun", "channel_failed") == refusals + 1
        reason = w.scalar("select status_reason from shopsync.notification_channels")
        assert reason.startswith("Mailgun refused the message (403): Domain unverified.example.com is not allowed")
        w.event(subject="later")
        # the first, the news of the failure, the later one: all held, only the first was tried
        await w.until(lambda: [n["status"] for n in w.notifications()] == ["held"] * 3, what="all held")
        assert w.mailgun.queued == [] and w.mailgun.requests == 1
        # fixed where the provider is: the domain is verified now; the admin resumes the channel
        w.mailgun.unverified.clear()
        with_admin = await w.post(f"/notifications/channels/{mailgun['id']}", {"name": "mailgun again"},
                                  method="PATCH")
        assert with_admin.status_code == 200 and with_admin.json()["status"] == "active"
        await w.until(lambda: w.sent(mailgun["id"]), what="the held messages")
    # the news of the channel's own failure too: its rule takes every type
    subjects = sorted(q.first("subject").split("] ", 1)[1] for q in w.mailgun.queued)
    assert subjects[0].startswith("notification channel mailgun stopped: Mailgun refused the message (403)")
    assert subjects[1:] == ["shopify.sync (orders) failed for good after 10 attempt(s): boom"] * 2


async def test_a_lost_answer_is_sent_once_through_resends_idempotency_key(notify_world: NotifyWorld) -> None:
    w = notify_world
    resend = await w.channel("resend", {"from": "alerts@example.com", "to": ["ops@example.com"]},
                             {"api_key": w.resend.api_key})
    smtp_rule(w, resend)
    w.resend.lose_next_answers = 1           # Resend sends it, but the answer is lost (500)
    w.event()
    async with w.worker():
        await w.until(lambda: w.sent(resend["id"]), what="the retry")
    (n,) = w.notifications()
    assert n["attempts"] == 2 and w.resend.requests == 2
    assert len(w.resend.sent) == 1 and n["provider_message_id"] == w.resend.sent[0].id


async def test_mailgun_has_no_idempotency_key_so_a_lost_answer_can_repeat_a_message(
        notify_world: NotifyWorld) -> None:
    """What remains possible without an idempotency key (docs/notifications.md): the repeat carries the same
    notification id, so it can be recognized."""
    w = notify_world
    mailgun = await w.channel("mailgun", {"domain": "mg.example.com", "from": "a@mg.example.com", "to": ["o@example.com"]},
                              {"api_key": w.mailgun.api_key})
    smtp_rule(w, mailgun)
    w.mailgun.lose_next_answers = 1
    w.event()
    async with w.worker():
        await w.until(lambda: w.sent(mailgun["id"]), what="the retry")
    first, second = w.mailgun.queued
    assert first.first("v:shopsync_notification") == second.first("v:shopsync_notification")
    assert first.first("subject") == second.first("subject")


async def test_a_worker_that_dies_after_the_provider_accepted_resends_under_the_same_key(
        notify_world: NotifyWorld) -> None:
    w = notify_world
    resend = await w.channel("resend", {"from": "alerts@example.com", "to": ["ops@example.com"]},
                             {"api_key": w.resend.api_key})
    hook = await w.channel("webhook", {"url": f"{w.receiver_url}/in"})
    smtp_rule(w, resend)
    smtp_rule(w, hook)
    w.event()
    w.conn.execute("select shopsync.collect_notifications(100)")
    for n in w.notifications():
        # a worker begins the attempt, the provider accepts, and the worker dies before recording it
        data = await notifications.begin_notification_send(w.db, notification_id=n["id"])
        channel = data["channel"]
        secret = open_secret(NOTIFIER.sealer(w.core), channel["id"], data["secret"])
        outcome = await providers.deliver(channel["kind"], channel["config"], secret,
                                          build_message(data, w.notify, w.core), w.notify, allow_private=True)
        assert outcome.status == "sent"
    w.conn.execute("update shopsync.notifications set updated_at = now() - interval '11 minutes'")
    w.conn.execute("update shopsync.jobs set state = 'dead' where kind = 'notify.send'")   # its job is gone too
    async with w.worker():
        w.conn.execute("select shopsync.run_maintenance('notify', 0)")        # finds the message stuck mid-send
        await w.until(lambda: w.sent(resend["id"]) and w.sent(hook["id"]), what="the re-attempt")
    assert len(w.resend.sent) == 1 and w.resend.requests == 2                # Resend answered the first answer again
    first, again = w.receiver.requests
    assert first.headers["webhook-id"] == again.headers["webhook-id"] and first.body == again.body


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    ca, cert, key = make_certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, str(ca)


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_smtp_over_tls_with_a_login(notify_world: NotifyWorld, tls: tuple[ssl.SSLContext, str],
                                          monkeypatch: pytest.MonkeyPatch, security: str) -> None:
    w = notify_world
    context, ca = tls
    monkeypatch.setattr(NOTIFIER, "_settings", w.notify.model_copy(update={"ca_file": ca}))
    server = MailSink(login=("mailer", "s3cret"), **({"starttls": context} if security == "starttls"
                                                     else {"implicit_tls": context}))
    with server as sink:
        config = {"host": "localhost", "port": sink.port, "security": security, "username": "mailer",
                  "from": "a@example.com", "to": ["b@example.com"]}
        good = await w.channel("smtp", config, {"password": "s3cret"}, name="good")
        bad = await w.channel("smtp", config, {"password": "wrong"}, name="bad")
        for channel in (good, bad):
            smtp_rule(w, channel)
        w.event()
        async with w.worker():
            await w.until(lambda: w.sent(good["id"]) and w.scalar(
                "select status from shopsync.notification_channels where id = %s", (bad["id"],)) == "failing",
                what="one sent over TLS, one refused")
        (mail,) = sink.wait_for(1)
    assert mail.rcpt_tos == ["b@example.com"] and mail.message["X-Shopsync-Notification"]
    reason = w.scalar("select status_reason from shopsync.notification_channels where id = %s", (bad["id"],))
    assert reason.startswith("the SMTP server refused the login: 535")


async def test_the_readme_failure_produces_a_mail(notify_world: NotifyWorld) -> None:
    """README, "Seeing the mail a failure produced": a sync job without a resource dies at once, and the
    demo rule (warnings and worse, 10-second windows) mails it."""
    w = notify_world
    smtp = await w.channel("smtp", w.smtp_config(), name="Local mail sink (make dev)")
    w.rule(smtp["id"], p_min_severity="warning", p_group_window_seconds=10)
    w.conn.execute("select shopsync.enqueue_job('shopify.sync', p_store_id => %s, p_max_attempts => 1)", (w.store,))
    async with w.worker():
        await w.until(lambda: w.sent(smtp["id"]), timeout=30, what="the mail of the dead job")
    (mail,) = w.sink.wait_for(1)
    assert mail.subject.endswith("] shopify.sync failed for good after 1 attempt(s): PermanentError: a sync job "
                                 "needs a store and a resource")
