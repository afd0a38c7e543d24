"""A burst of events → notification messages: 10,000 events in one minute across 100 stores (``--quick``: 2,000
in 12 s), written with ``record_event`` by one connection at an even pace (job.dead mostly, some record errors
and stores needing re-authorization), while a real worker runs the notification jobs and a local SMTP server
(sandbox.mail_sink, aiosmtpd) accepts what they send.

Two SMTP channels take every event, each through its own rule:

- **digest**: 60-second windows, the kind of window an operator sets. No storm: messages ≤ windows touched
  (the W-second windows, aligned to the epoch, that at least one event fell in); baseline = one message per
  event (no grouping).
- **fast**: 1-second windows. Latency: event (its ``occurred_at``) → the message carrying it accepted by the
  SMTP server, per event, p50 ≤ 1 s. Baseline = the least a window allows: half the window (the mean wait
  for its end) plus one bare SMTP send measured in this run. The digest's window-end → accepted delay is
  reported too (how late a message leaves after its window closed).

Each event must reach each channel exactly once (checked from the database and from the sink).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from bench.common import Bench, Row, percentile
from bench.notify_common import Org, connect, quiet, running_worker, settings, until
from sandbox.mail_sink import MailSink

NAME = "notify_burst"
TITLE = "Notifications: a burst of 10,000 events across 100 stores (grouping, latency to the SMTP server)"

STORES = 100
FAST_WINDOW = 1
DIGEST_WINDOW = 60
TYPES = [("job.dead", 8), ("sync.record_errors", 3), ("store.needs_reauth", 1)]
TARGET_P50_S = 1.0


def _produce(dsn: str, stores: list[Any], count: int, seconds: float) -> None:
    """``count`` events at an even pace over ``seconds``, round-robin over the stores."""
    kinds = [t for t, weight in TYPES for _ in range(weight)]
    with connect(dsn) as conn:
        started = time.monotonic()
        for i in range(count):
            due = started + seconds * i / count
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            kind = kinds[i % len(kinds)]
            conn.execute("select shopsync.record_event(%s, %s, %s, jsonb_build_object('seq', %s::int, "
                         "'kind', 'shopify.sync', 'attempts', 10, 'error', 'timeout', 'failed', 3))",
                         (stores[i % len(stores)], kind, "shopify.sync" if kind == "job.dead" else "orders", i))


async def _bare_smtp_send(sink: MailSink, samples: int = 20) -> float:
    """Seconds one plain message takes to be accepted by the sink (median of ``samples``)."""
    times = []
    for i in range(samples):
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = "a@example.com", "baseline@example.com", f"baseline {i}"
        mail.set_content("x" * 2000)
        started = time.perf_counter()
        await aiosmtplib.send(mail, hostname=sink.host, port=sink.port, start_tls=False, timeout=10)
        times.append(time.perf_counter() - started)
    return percentile(times, 50)


def _windows(occurred: list[float], window: int) -> int:
    return len({math.floor(t / window) for t in occurred})


async def _run(b: Bench, dsn: str, count: int, seconds: float) -> list[Row]:
    core = settings(dsn)
    conn = connect(dsn)
    org = Org(conn, STORES)
    with MailSink() as sink:
        base = {"host": sink.host, "port": sink.port, "security": "none", "from": "alerts@example.com"}
        fast = org.channel(core, "fast", "smtp", {**base, "to": ["fast@example.com"]}, window=FAST_WINDOW)
        digest = org.channel(core, "digest", "smtp", {**base, "to": ["digest@example.com"]}, window=DIGEST_WINDOW)
        bare = await _bare_smtp_send(sink)
        sink.messages.clear()
        async with running_worker(core):
            b.say(f"{count:,} events over {seconds:.0f} s across {STORES} stores")
            await asyncio.to_thread(_produce, dsn, org.stores, count, seconds)

            def everything_sent() -> bool:
                row = conn.execute("select count(*) filter (where status <> 'sent') as unsent, "
                                   "(select count(*) from shopsync.notification_events) as attached "
                                   "from shopsync.notifications").fetchone()
                return row is not None and row["unsent"] == 0 and row["attached"] == 2 * count

            b.say("waiting for the last windows to close and their messages to go")
            await until(everything_sent, DIGEST_WINDOW + 120, "every message sent")
            await asyncio.sleep(1.0)
        events = {r["id"]: r["at"] for r in conn.execute(
            "select id, extract(epoch from occurred_at)::float8 as at from shopsync.events").fetchall()}
        carried = conn.execute("select ne.channel_id, ne.event_id, ne.notification_id, "
                               "extract(epoch from n.window_end)::float8 as window_end "
                               "from shopsync.notification_events ne "
                               "join shopsync.notifications n on n.id = ne.notification_id").fetchall()
        notifications = {r["id"]: r["channel_id"] for r in conn.execute("select id, channel_id "
                                                                       "from shopsync.notifications").fetchall()}
        dispatches = conn.execute("select count(*) as n from shopsync.jobs where kind = 'notify.dispatch'").fetchone()
    conn.close()
    accepted: dict[int, float] = {}
    duplicates = 0
    for m in sink.messages:
        nid = int(m.message["X-Shopsync-Notification"])
        duplicates += nid in accepted
        accepted.setdefault(nid, m.accepted_at)
    per_channel = Counter(notifications[n] for n in accepted)
    once = Counter((r["channel_id"], r["event_id"]) for r in carried)
    lost = 2 * len(events) - len(once) + sum(1 for n in notifications if n not in accepted)
    latencies = [accepted[r["notification_id"]] - events[r["event_id"]] for r in carried
                 if r["channel_id"] == fast and r["notification_id"] in accepted]
    late = [accepted[r["notification_id"]] - r["window_end"] for r in carried
            if r["channel_id"] == digest and r["notification_id"] in accepted]
    occurred = list(events.values())
    rows: list[Row] = []
    for label, channel, window in (("digest", digest, DIGEST_WINDOW), ("fast", fast, FAST_WINDOW)):
        touched = _windows(occurred, window)
        sent = per_channel[channel]
        rows.append(Row(NAME, f"{label} ({window} s windows): messages / windows touched", sent, f"/ {touched}",
                        f"{len(events):,} messages without grouping", sent / len(events),
                        "≤ windows touched", sent <= touched))
    p50, p90, p99 = (percentile(latencies, p) for p in (50, 90, 99))
    ideal = FAST_WINDOW / 2 + bare
    rows += [
        Row(NAME, "fast: event → accepted by the SMTP server, p50", p50, "s",
            f"½ window + bare send = {ideal:.3f} s", p50 / ideal, f"≤ {TARGET_P50_S:.0f} s", p50 <= TARGET_P50_S),
        Row(NAME, "fast: event → accepted, p90 / p99", p90, f"s / {p99:.2f} s"),
        Row(NAME, "digest: window end → accepted, p50 / max", percentile(late, 50),
            f"s / {max(late, default=math.nan):.2f} s"),
        Row(NAME, "events carried to each channel exactly once (lost / twice)", lost, f"/ {duplicates}",
            target="0 / 0", ok=lost == 0 and duplicates == 0 and all(v == 1 for v in once.values())),
    ]
    b.note(f"{len(events):,} events over {seconds:.0f} s ({len(events) / seconds:.0f}/s), {STORES} stores; "
           f"bare SMTP send to the sink {bare * 1000:.1f} ms (median); each message lists up to 1,000 events; "
           f"{dispatches['n'] if dispatches else '?'} notify.dispatch jobs collected them")
    return rows


def run(b: Bench) -> list[Row]:
    count, seconds = (2_000, 12.0) if b.quick else (10_000, 60.0)
    with quiet():
        return asyncio.run(_run(b, b.db(), count, seconds))
