"""Shopify webhooks: signed ``products/update`` deliveries at 500/s for 30 s, a third of them re-sent
duplicates, to the real web process, applied by a real worker process.

Processes: the sandbox (own process; seeds the store by a real full products sync and provides the REST
payloads), ``python -m worker web`` (uvicorn, one process) and ``python -m worker worker`` (default settings)
configured only by environment variables, and this process as the load generator: one asyncio loop with a
minimal HTTP/1.1 client on 64 pre-opened keep-alive connections (httpx's async pool could not keep 300/s on
these two cores: its own overhead made sends start 50–80 ms late), requests pre-built before the clock
starts. Open loop: delivery k is due at t0 + k/rate whatever the earlier ones are doing, so a slow server
cannot slow the offered rate down, and its latency is counted from when it was due (waiting for a free
connection included), not from when it was written. Every unique delivery targets a different product (so every change can be checked in its
own row): a new title and a new ``updated_at``, its own ``X-Shopify-Webhook-Id`` and ``X-Shopify-Event-Id``,
HMAC-signed with the app secret. Each duplicate re-sends, byte for byte, a delivery sent 0–100 ms before.

Baseline: ``GET /healthz`` of the same web process at the same rate (same client, same loop).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from bench.common import ROOT, Bench, Row, cluster_cpu_seconds, cpu_seconds, percentile, stop_process, wait_until
from bench.shopify_common import CLIENT_SECRET, SHOP, SandboxProcess, free_port, run_sync, wire_store
from sandbox.shopify import sign_webhook

NAME = "shopify_webhooks"
TITLE = "Shopify webhooks: 500 signed deliveries/s (⅓ duplicates) → web ack → worker applies"

RATE = 500.0
POOL = 64
TARGET_ACK_P99 = 25.0
TARGET_APPLY_P50 = 100.0


@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)       # send start − scheduled time
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


Request = tuple[str, str, bytes | None, dict[str, str]]


def _raw(request: Request, host: str) -> bytes:
    method, path, body, headers = request
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body or b'')}",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class _Connection:
    """One keep-alive HTTP/1.1 connection: write a request, read one Content-Length response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length) if length else b""


async def _drive(port: int, requests: list[Request], rate: float) -> Load:
    """Open loop: request k is due at t0 + k/rate; it takes an idle connection of the pool (waiting for one
    is counted in its latency), writes, and reads the answer."""
    host = f"127.0.0.1:{port}"
    raws = [_raw(r, host) for r in requests]             # built before the clock starts
    webhook = [r[1] != "/healthz" for r in requests]
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(POOL):
        idle.put_nowait(_Connection(*await asyncio.open_connection("127.0.0.1", port)))
    for _ in range(POOL):         # warm-up: every connection answers once (not counted)
        conn = await idle.get()
        await conn.send(_raw(("GET", "/healthz", None, {}), host))
        idle.put_nowait(conn)
    load = Load()

    async def one(k: int, due: float) -> None:
        load.late_ms.append((time.perf_counter() - due) * 1000)
        conn = await idle.get()
        try:
            status, body = await conn.send(raws[k])
        except (OSError, asyncio.IncompleteReadError) as exc:
            load.errors[type(exc).__name__] += 1
            conn = _Connection(*await asyncio.open_connection("127.0.0.1", port))
            return
        finally:
            idle.put_nowait(conn)
        load.latencies_ms.append((time.perf_counter() - due) * 1000)
        answer = str(status)
        if status == 200 and webhook[k]:
            answer = str(json.loads(body).get("status"))
        load.statuses[answer] += 1

    tasks: list[asyncio.Task[None]] = []
    t0 = time.perf_counter() + 0.05
    for k in range(len(raws)):
        due = t0 + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(k, due)))
    await asyncio.gather(*tasks)
    load.seconds = time.perf_counter() - t0
    while not idle.empty():
        idle.get_nowait().writer.close()
    return load


def _run_load(port: int, requests: list[Request], rate: float) -> Load:
    return asyncio.run(_drive(port, requests, rate))


def _deliveries(payloads: list[dict[str, Any]], duplicate_share: float,
                seed: int = 7) -> tuple[list[Request], dict[str, str], int]:
    """(requests in send order, product id → expected title, duplicates)."""
    rng = random.Random(seed)
    start = datetime.now(UTC) + timedelta(seconds=1)
    out: list[Request] = []
    expected: dict[str, str] = {}
    duplicates = 0
    per_original = duplicate_share / (1 - duplicate_share)       # ⅓ of all → ½ a duplicate per original
    owed = 0.0
    originals: list[Request] = []
    for k, product in enumerate(payloads):
        title = f"webhook {k} {uuid.uuid4().hex[:6]}"
        at = (start + timedelta(milliseconds=k)).isoformat()
        body = json.dumps({**product, "title": title, "updated_at": at}).encode()
        expected[str(product["id"])] = title
        headers = {"Content-Type": "application/json", "X-Shopify-Topic": "products/update",
                   "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                   "X-Shopify-Event-Id": str(uuid.uuid4()), "X-Shopify-Triggered-At": at,
                   "X-Shopify-API-Version": "2026-10", "X-Shopify-Hmac-Sha256": sign_webhook(body, CLIENT_SECRET)}
        originals.append(("POST", "/shopify/webhooks", body, headers))
        out.append(originals[-1])
        owed += per_original
        while owed >= 1:
            owed -= 1
            # the same delivery again (same webhook id, same bytes), 0–100 ms (≤ 50 sends at 500/s) later
            out.append(rng.choice(originals[-33:]))
            duplicates += 1
    return out, expected, duplicates


def _machine_busy_seconds() -> float:
    """CPU time every process on the machine has used (all cores, idle and iowait excluded)."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """Who used the two cores during a phase, in cores (1.0 = one core busy the whole phase): the tail of
    the ack is CPU queueing when these add up to about the machine."""

    bench: Bench
    pids: dict[str, int]
    _start: dict[str, float] = field(default_factory=dict)
    _t0: float = 0.0

    def _now(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        now["postgres"] = cluster_cpu_seconds(self.bench.cluster)
        now["load generator"] = cpu_seconds(os.getpid())
        now["machine"] = _machine_busy_seconds()
        return now

    def start(self) -> None:
        self._start, self._t0 = self._now(), time.monotonic()

    def cores(self) -> dict[str, float]:
        end, seconds = self._now(), time.monotonic() - self._t0
        used = {name: (end[name] - self._start[name]) / seconds for name in end}
        used["other (not this benchmark)"] = used.pop("machine") - sum(used.values())
        return used


def _cores_text(cores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in cores.items())


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "worker", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL)


def _offered(load: Load, n: int, rate: float) -> float:
    """Requests per second actually started: n over the schedule's length plus how late the last one began."""
    return n / ((n - 1) / rate + max(load.late_ms[-1], 0.0) / 1000) if n > 1 and load.late_ms else float("nan")


def run(bench: Bench) -> list[Row]:
    seconds = 8.0 if bench.quick else 30.0
    alone_seconds = 3.0 if bench.quick else 10.0
    total, alone_total = int(RATE * seconds), int(RATE * alone_seconds)
    unique = 2 * int(total * 2 / 3) + int(alone_total * 2 / 3) + 4
    baseline_n = int(RATE * (4.0 if bench.quick else 10.0))
    dsn = bench.db()
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    with SandboxProcess(products=unique, orders=0, customers=0, variants=1, locations=1) as sandbox:
        wiring = wire_store(dsn, sandbox, public_url=web_url)
        bench.say(f"seeding {unique:,} products by a full sync")
        asyncio.run(run_sync(wiring, "products", "full", bulk_poll_interval=0.2))
        payloads = sandbox.call("product_payloads", n=unique)
        requests, expected, duplicates = _deliveries(payloads, 1 / 3)
        alone, main = requests[:alone_total], requests[alone_total:alone_total + total]
        compare = requests[alone_total + total:]
        env = {**wiring.env, "SHOPSYNC_HOST": "127.0.0.1", "SHOPSYNC_PORT": str(port), "PORT": str(port)}
        web = _start(["web"], env)
        worker: subprocess.Popen[bytes] | None = None
        try:
            def up() -> bool:
                if web.poll() is not None:
                    raise RuntimeError("the web process exited early")
                try:
                    return httpx.get(f"{web_url}/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            if not wait_until(up, 30, 0.1):
                raise RuntimeError("the web process did not come up")
            bench.say(f"baseline: {baseline_n:,} GET /healthz at {RATE:.0f}/s (no worker running)")
            base = _run_load(port, [("GET", "/healthz", None, {})] * baseline_n, RATE)
            bench.say(f"web alone: {len(alone):,} deliveries at {RATE:.0f}/s (no worker running)")
            meter = CpuMeter(bench, {"web": web.pid})
            meter.start()
            web_alone = _run_load(port, alone, RATE)
            alone_cores = meter.cores()
            with psycopg.connect(dsn, autocommit=True) as conn:
                def drained() -> bool:
                    if worker is not None and worker.poll() is not None:
                        raise RuntimeError("the worker process exited early")
                    row = conn.execute("select count(*) from shopsync.jobs where kind = 'shopify.webhook' "
                                       "and state in ('queued', 'running')").fetchone()
                    return row is not None and row[0] == 0

                worker = _start(["worker"], env)
                bench.say("worker started: draining that backlog")
                if not wait_until(drained, 300, 0.1):
                    raise RuntimeError("the worker did not apply the backlog within 300 s")
                row = conn.execute("select count(*), extract(epoch from max(finished_at) - min(started_at)) "
                                   "from shopsync.jobs where kind = 'shopify.webhook'").fetchone()
                assert row is not None
                backlog_rate = int(row[0]) / float(row[1])
                mark = conn.execute("select max(id) from shopsync.webhook_inbox").fetchone()
                first_main = int(mark[0]) if mark and mark[0] is not None else 0
                bench.say(f"with the worker: {len(main):,} deliveries at {RATE:.0f}/s")
                meter = CpuMeter(bench, {"web": web.pid, "worker": worker.pid})
                meter.start()
                load = _run_load(port, main, RATE)
                loaded_cores = meter.cores()
                bench.say("sent; waiting for the worker to apply them")
                drain_started = time.monotonic()
                if not wait_until(drained, 300, 0.1):
                    raise RuntimeError("the worker did not apply every delivery within 300 s")
                drain = time.monotonic() - drain_started
                mark = conn.execute("select max(id) from shopsync.webhook_inbox").fetchone()
                last_main = int(mark[0]) if mark and mark[0] is not None else 0
                # the same again with the worker at the default CPU priority (SHOPSYNC_WORKER_NICE=0): what the
                # niceness buys, in the same run
                stop_process(worker)
                worker = _start(["worker"], {**env, "SHOPSYNC_WORKER_NICE": "0"})
                bench.say(f"with the worker not niced: {len(compare):,} deliveries at {RATE:.0f}/s")
                meter = CpuMeter(bench, {"web": web.pid, "worker": worker.pid})
                meter.start()
                unniced = _run_load(port, compare, RATE)
                unniced_cores = meter.cores()
                if not wait_until(drained, 300, 0.1):
                    raise RuntimeError("the worker did not apply every delivery within 300 s")
                checks = _check(conn, expected, first_main, last_main)
        finally:
            stop_process(web)
            if worker is not None:
                stop_process(worker)
    p50, p99 = percentile(load.latencies_ms, 50), percentile(load.latencies_ms, 99)
    w50, w99 = percentile(web_alone.latencies_ms, 50), percentile(web_alone.latencies_ms, 99)
    u99 = percentile(unniced.latencies_ms, 99)
    b50, b99 = percentile(base.latencies_ms, 50), percentile(base.latencies_ms, 99)
    apply = checks["apply_ms"]
    a50 = percentile(apply, 50)
    bench.note(f"{len(requests):,} deliveries = {len(expected):,} unique + {duplicates:,} duplicates (each a byte-"
               f"identical re-send 0–66 ms after its original); web alone {len(alone):,} (offered "
               f"{_offered(web_alone, len(alone), RATE):,.0f}/s), then with the worker {len(main):,} (offered "
               f"{_offered(load, len(main), RATE):,.0f}/s, send start late p50/p99 {percentile(load.late_ms, 50):.1f}/"
               f"{percentile(load.late_ms, 99):.1f} ms), then {len(compare):,} with the worker not niced; answers "
               f"{dict(web_alone.statuses + load.statuses + unniced.statuses)}; transport errors "
               f"{dict(web_alone.errors + load.errors + unniced.errors) or 0}; baseline {baseline_n:,} × /healthz")
    bench.note(f"inbox {checks['inbox']:,} rows ({checks['inbox_status']}); jobs {checks['jobs']:,} "
               f"({checks['job_states']}), max attempts {checks['max_attempts']}; rows showing their delivery's "
               f"title {checks['visible']:,}/{len(expected):,}; worker (default settings) drained the web-alone "
               f"backlog at {backlog_rate:,.0f} jobs/s and caught up {drain:.1f} s after the last send")
    bench.note(f"CPU in cores (2 on this machine) while sending — web alone: {_cores_text(alone_cores)}; "
               f"with the worker: {_cores_text(loaded_cores)}; with the worker not niced: "
               f"{_cores_text(unniced_cores)}")
    return [
        Row(NAME, "GET /healthz ack p50 (baseline)", b50, "ms"),
        Row(NAME, "GET /healthz ack p99 (baseline)", b99, "ms"),
        Row(NAME, "webhook ack p50, with the worker applying", p50, "ms", f"/healthz p50 {b50:.2f} ms", p50 / b50),
        Row(NAME, "webhook ack p99, with the worker applying", p99, "ms", f"/healthz p99 {b99:.2f} ms", p99 / b99,
            f"≤ {TARGET_ACK_P99:.0f} ms", p99 <= TARGET_ACK_P99),
        Row(NAME, "webhook ack p99, the worker not niced (SHOPSYNC_WORKER_NICE=0)", u99, "ms",
            f"niced (default) p99 {p99:.2f} ms", u99 / p99 if p99 else None),
        Row(NAME, "webhook ack p50, web alone (worker stopped)", w50, "ms", f"/healthz p50 {b50:.2f} ms", w50 / b50),
        Row(NAME, "webhook ack p99, web alone (worker stopped)", w99, "ms", f"/healthz p99 {b99:.2f} ms", w99 / b99,
            f"≤ {TARGET_ACK_P99:.0f} ms", w99 <= TARGET_ACK_P99),
        Row(NAME, "deliveries lost (unique − rows showing their change)", len(expected) - checks["visible"], "",
            target="= 0", ok=checks["visible"] == len(expected) and checks["inbox"] == len(expected)),
        Row(NAME, "deliveries applied twice (jobs beyond one per inbox row, re-runs)",
            checks["jobs"] - checks["inbox"] + checks["reruns"], "", target="= 0",
            ok=checks["jobs"] == checks["inbox"] == len(expected) and checks["reruns"] == 0),
        Row(NAME, "received → row updated p50 (with the worker running)", a50, "ms", f"ack p50 {p50:.2f} ms",
            a50 / p50 if p50 else None, f"≤ {TARGET_APPLY_P50:.0f} ms", a50 <= TARGET_APPLY_P50),
        Row(NAME, "received → row updated p99 (with the worker running)", percentile(apply, 99), "ms"),
        Row(NAME, "CPU used while sending with the worker applying (all processes)",
            sum(loaded_cores.values()), "cores", "the machine's 2 cores", sum(loaded_cores.values()) / 2),
        Row(NAME, "worker apply rate, draining a backlog alone", backlog_rate, "jobs/s",
            f"unique arrivals {RATE * 2 / 3:,.0f}/s", backlog_rate / (RATE * 2 / 3)),
    ]


def _check(conn: psycopg.Connection[Any], expected: dict[str, str], first_main: int, last_main: int
           ) -> dict[str, Any]:
    """Inbox, jobs and rows; apply latencies only for deliveries received while the worker ran."""
    inbox = conn.execute("select status, count(*) from shopsync.webhook_inbox group by 1").fetchall()
    jobs = conn.execute("select state, count(*), max(attempts), count(*) filter (where attempts > 1) "
                        "from shopsync.jobs where kind = 'shopify.webhook' group by 1").fetchall()
    rows = conn.execute("select p.id, p.title, extract(epoch from p.synced_at - w.received_at) * 1000, w.id "
                        "from shopsync.webhook_inbox w join shopsync.products p "
                        "on p.store_id = w.store_id and p.id = w.payload->>'id' where w.topic = 'products/update'"
                        ).fetchall()
    visible = sum(1 for pid, title, _, _ in rows if expected.get(str(pid)) == title)
    return {"inbox": sum(int(r[1]) for r in inbox), "inbox_status": {r[0]: int(r[1]) for r in inbox},
            "jobs": sum(int(r[1]) for r in jobs), "job_states": {r[0]: int(r[1]) for r in jobs},
            "max_attempts": max((int(r[2]) for r in jobs), default=0),
            "reruns": sum(int(r[3]) for r in jobs),
            "visible": visible,
            "apply_ms": [float(ms) for _, title, ms, inbox_id in rows
                         if title is not None and first_main < inbox_id <= last_main]}
