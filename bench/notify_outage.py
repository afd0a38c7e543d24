"""Providers down for 60 s (``--quick``: 10 s): the SMTP server answers every message ``451 4.3.0 Try again
later``, the Resend and Mailgun stand-ins answer every request 503. Events keep coming (2 per second, each its
own message on three channels: SMTP, Resend, Mailgun); then the providers come back.

Nothing may be lost and nothing sent twice: every message accepted exactly once by its provider (the sink's
``X-Shopsync-Notification`` header, Resend's and Mailgun's stored messages). Retries back off from 2 s, doubling,
capped at 30 s here (``SHOPSYNC_NOTIFY_RETRY_MAX_SECONDS``; default 300 s), so the time from recovery to the last
message is bounded by the cap plus a send. Baseline: the messages expected (one per event and channel).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

from bench.common import Bench, Row
from bench.notify_common import Org, connect, quiet, running_worker, settings, until
from sandbox.mail_sink import MailSink
from tests.standins.mailgun import MailgunStandin, serve_mailgun
from tests.standins.resend import ResendStandin, serve_resend

NAME = "notify_outage"
TITLE = "Notifications: providers down for 60 s (nothing lost, nothing twice)"

RATE = 2.0              # events per second while the providers are down
RETRY_MAX = 30.0


def _produce(dsn: str, store: Any, seconds: float, stop: threading.Event) -> int:
    count = 0
    with connect(dsn) as conn:
        started = time.monotonic()
        while time.monotonic() - started < seconds and not stop.is_set():
            conn.execute("select shopsync.record_event(%s, 'job.dead', 'shopify.sync', jsonb_build_object("
                         "'seq', %s::int, 'kind', 'shopify.sync', 'attempts', 10, 'error', 'timeout'))", (store, count))
            count += 1
            time.sleep(max(0.0, started + count / RATE - time.monotonic()))
    return count


async def _run(b: Bench, dsn: str, outage: float) -> list[Row]:
    conn = connect(dsn)
    org = Org(conn, 1)
    resend, mailgun = ResendStandin(), MailgunStandin()
    with MailSink() as sink, serve_resend(resend) as resend_url, serve_mailgun(mailgun) as mailgun_url:
        core = settings(dsn, retry_max_seconds=RETRY_MAX, resend_api_url=resend_url, mailgun_api_url=mailgun_url)
        channels = {
            "smtp": org.channel(core, "smtp", "smtp", {"host": sink.host, "port": sink.port, "security": "none",
                                                        "from": "alerts@example.com", "to": ["ops@example.com"]},
                                window=0),
            "resend": org.channel(core, "resend", "resend", {"from": "alerts@example.com", "to": ["ops@example.com"]},
                                  {"api_key": resend.api_key}, window=0),
            "mailgun": org.channel(core, "mailgun", "mailgun", {"domain": "mg.example.com", "region": "us",
                                                                 "from": "alerts@mg.example.com",
                                                                 "to": ["ops@example.com"]},
                                   {"api_key": mailgun.api_key}, window=0),
        }
        sink.refuse("451 4.3.0 Try again later")
        resend.down = mailgun.down = True
        async with running_worker(core):
            b.say(f"providers down for {outage:.0f} s, {RATE:.0f} events/s")
            stop = threading.Event()
            produced = await asyncio.to_thread(_produce, dsn, org.stores[0], outage, stop)
            refused = (sink.refused, resend.requests, mailgun.requests)
            sink.refuse(None)
            resend.down = mailgun.down = False
            back = time.monotonic()
            b.say(f"providers back after {produced} events; waiting for every message")

            def all_sent() -> bool:
                row = conn.execute("select count(*) filter (where status = 'sent') as sent, count(*) as total "
                                   "from shopsync.notifications").fetchone()
                return row is not None and row["total"] == 3 * produced and row["sent"] == row["total"]

            await until(all_sent, RETRY_MAX * 4 + 60, "every message after the outage")
            recovery = time.monotonic() - back
            await asyncio.sleep(2.0)           # anything still in flight would show as a duplicate now
        attempts = conn.execute("select coalesce(sum(attempts), 0) as n from shopsync.notifications").fetchone()
        ids = {r["id"]: r["channel_id"] for r in conn.execute("select id, channel_id from shopsync.notifications")}
    conn.close()
    delivered = {
        "smtp": Counter(int(m.message["X-Shopsync-Notification"]) for m in sink.messages),
        "resend": Counter(int(e.payload["headers"]["X-Shopsync-Notification"]) for e in resend.sent),
        "mailgun": Counter(int(q.first("v:shopsync_notification")) for q in mailgun.queued),
    }
    rows: list[Row] = []
    for name, channel in channels.items():
        expected = {n for n, c in ids.items() if c == channel}
        got = delivered[name]
        lost = len(expected - set(got))
        twice = sum(n - 1 for n in got.values() if n > 1)
        rows.append(Row(NAME, f"{name}: delivered / expected (lost, twice)", len(got), f"/ {len(expected)} "
                        f"({lost} lost, {twice} twice)", f"{len(expected)} messages", len(got) / max(len(expected), 1),
                        "0 lost, 0 twice", lost == 0 and twice == 0 and len(expected) == produced))
    rows.append(Row(NAME, "provider back → last message accepted", recovery, "s", target=f"≤ {RETRY_MAX:.0f} s cap + send"))
    b.note(f"outage {outage:.0f} s: {produced} events, {3 * produced} messages; attempts refused while down: SMTP "
           f"{refused[0]}, Resend {refused[1]}, Mailgun {refused[2]}; {attempts['n'] if attempts else '?'} attempts "
           f"in all; retry backoff 2 s doubling, capped at {RETRY_MAX:.0f} s")
    return rows


def run(b: Bench) -> list[Row]:
    outage = 10.0 if b.quick else 60.0
    with quiet():
        return asyncio.run(_run(b, b.db(), outage))
