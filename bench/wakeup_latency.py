"""Wake-up latency: enqueue → handler start, for one idle worker whose poll interval (30 s) cannot
explain the result, so only the wake-up (NOTIFY on the direct path, Realtime broadcast on the supabase
path) can.

An enqueuer thread (sync psycopg, autocommit) takes ``time.time()`` right before
``select shopsync.enqueue_job(…)``; the handler takes ``time.time()`` when it starts. Jobs go one at a
time — the next only after the previous one started, plus a random 20–50 ms gap.

Baseline: the raw NOTIFY round trip — ``pg_notify`` from one connection, received by a psycopg
``LISTEN`` on another — with the same count and gaps. The ratio is the worker's p50 over the raw p50.
The supabase path runs against the local stand-ins (``tests.standins``: PostgREST and Realtime in a
thread of this process), so its figures show the path's shape, not a hosted project's.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field

import httpx
import psycopg

from bench.common import Bench, Row, percentile
from tests.standins.server import make_jwt, serve_supabase
from worker.config import Settings, load_settings
from worker.jobs.registry import Job, JobContext, JobRegistry
from worker.runtime import run_worker

NAME = "wakeup_latency"
TITLE = "Wake-up latency (enqueue → handler start, idle worker)"

KIND = "bench.wakeup"
POLL_INTERVAL = 30.0
WARMUP = 5
WAIT_PER_JOB = 5.0                      # seconds; a missed wake-up shows as a long latency, not a hang
TARGET_P50_MS = 10.0
TARGET_P99_MS = 50.0
JWT_SECRET = "shopsync-bench-jwt-secret-0123456789abcdef"  # noqa: S105 - throwaway stand-in secret


@dataclass
class _Starts:
    """Handler start times by sequence number, shared between the worker loop and the enqueuer."""

    at: dict[int, float] = field(default_factory=dict)
    events: dict[int, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def event(self, seq: int) -> threading.Event:
        with self.lock:
            return self.events.setdefault(seq, threading.Event())

    def started(self, seq: int) -> None:
        now = time.time()
        self.at.setdefault(seq, now)
        self.event(seq).set()


def _gaps(count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0.020, 0.050) for _ in range(count)]


# --- the baseline: a bare NOTIFY round trip ------------------------------------------------------

def raw_notify(dsn: str, count: int) -> list[float]:
    """Latencies (ms) of ``pg_notify`` on one connection → delivery to a LISTEN on another."""
    received: dict[int, float] = {}
    events = {i: threading.Event() for i in range(-WARMUP, count)}
    ready = threading.Event()
    finished = threading.Event()

    def listen() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("listen bench_raw")
            ready.set()
            while not finished.is_set():
                for note in conn.notifies(timeout=0.5):
                    seq = int(note.payload)
                    received[seq] = time.time()
                    events[seq].set()

    listener = threading.Thread(target=listen, name="bench-listen", daemon=True)
    listener.start()
    if not ready.wait(10):
        raise RuntimeError("the LISTEN connection did not come up")
    sent: dict[int, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for seq, gap in zip(range(-WARMUP, count), _gaps(count + WARMUP, 1), strict=True):
            sent[seq] = time.time()
            conn.execute("select pg_notify('bench_raw', %s)", (str(seq),))
            events[seq].wait(WAIT_PER_JOB)
            time.sleep(gap)
    finished.set()
    listener.join(WAIT_PER_JOB)
    return [(received.get(i, time.time()) - sent[i]) * 1000 for i in range(count)]


# --- the worker ----------------------------------------------------------------------------------

def _registry(starts: _Starts) -> JobRegistry:
    async def record_start(job: Job, ctx: JobContext) -> None:
        starts.started(int(job.payload["seq"]))

    registry = JobRegistry()
    registry.register(KIND, record_start)
    return registry


def _enqueue_all(dsn: str, count: int, starts: _Starts, worker_gone: Callable[[], bool]) -> dict[int, float]:
    """Enqueue ``WARMUP`` + ``count`` jobs one at a time; returns enqueue times by sequence number."""
    enqueued: dict[int, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for seq, gap in zip(range(-WARMUP, count), _gaps(count + WARMUP, 2), strict=True):
            event = starts.event(seq)
            enqueued[seq] = time.time()
            conn.execute("select shopsync.enqueue_job(%s, jsonb_build_object('seq', %s::int))", (KIND, seq))
            if not event.wait(WAIT_PER_JOB) and worker_gone():
                raise RuntimeError("the worker stopped")
            time.sleep(gap)
    return enqueued


async def _measure(settings: Settings, dsn: str, count: int) -> list[float]:
    starts = _Starts()
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, _registry(starts), stop))
    try:
        await asyncio.sleep(1.0)    # start-up: pool, LISTEN / Realtime join, the first (empty) claim
        if worker.done():
            worker.result()
        enqueued = await asyncio.to_thread(_enqueue_all, dsn, count, starts, worker.done)
    finally:
        stop.set()
        await worker
    now = time.time()
    return [(starts.at.get(i, now) - enqueued[i]) * 1000 for i in range(count)]


def _worker_settings(**overrides: object) -> Settings:
    return load_settings(_env_file=None, poll_interval=POLL_INTERVAL, log_level="WARNING", **overrides)


def _rpc_round_trips(url: str, key: str, count: int = 30) -> list[float]:
    """Latencies (ms) of a trivial RPC through the PostgREST stand-in on one keep-alive connection."""
    headers = {"apikey": key, "Authorization": f"Bearer {key}", "Content-Profile": "shopsync"}
    times: list[float] = []
    with httpx.Client(timeout=10) as client:
        for _ in range(count + 3):
            started = time.perf_counter()
            client.post(f"{url}/rest/v1/rpc/runtime_features", json={}, headers=headers).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times[3:]


def worker_latencies(dsn: str, count: int, path: str) -> tuple[list[float], list[float]]:
    """Enqueue → handler start latencies (ms); on the supabase path also the stand-in's bare RPC
    round trips (ms), which every claim pays once."""
    stand_ins: AbstractContextManager[str | None]
    stand_ins = serve_supabase(dsn, JWT_SECRET) if path == "supabase" else nullcontext(None)
    with _quiet(), stand_ins as url:
        rpc: list[float] = []
        if url is None:
            settings = _worker_settings(database_url=dsn)
        else:
            key = make_jwt(JWT_SECRET, "service_role")
            settings = _worker_settings(supabase_url=url, db_mode="supabase", supabase_service_role_key=key)
            rpc = _rpc_round_trips(url, key)
        return asyncio.run(_measure(settings, dsn, count)), rpc


@contextmanager
def _quiet() -> Iterator[None]:
    """The stand-ins' uvicorn logs every request at INFO; keep the console for the report."""
    import logging

    loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.access", "uvicorn.error", "httpx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# --- the benchmark -------------------------------------------------------------------------------

def _rows(label: str, values: list[float], raw_p50: float, *, targets: bool) -> list[Row]:
    p50, p95, p99, worst = (percentile(values, p) for p in (50, 95, 99, 100))
    base = f"raw NOTIFY p50 {raw_p50:.2f} ms"
    return [
        Row(NAME, f"{label} p50", p50, "ms", base, p50 / raw_p50,
            f"≤ {TARGET_P50_MS:.0f} ms" if targets else "", (p50 <= TARGET_P50_MS) if targets else None),
        Row(NAME, f"{label} p95", p95, "ms"),
        Row(NAME, f"{label} p99", p99, "ms", "", None,
            f"≤ {TARGET_P99_MS:.0f} ms" if targets else "", (p99 <= TARGET_P99_MS) if targets else None),
        Row(NAME, f"{label} max", worst, "ms"),
    ]


def run(bench: Bench) -> list[Row]:
    count = 50 if bench.quick else 200
    dsn = bench.db()
    bench.say(f"raw NOTIFY round trip × {count}")
    raw = raw_notify(dsn, count)
    raw_p50 = percentile(raw, 50)
    rows = [Row(NAME, "raw NOTIFY round trip p50 (baseline)", raw_p50, "ms"),
            Row(NAME, "raw NOTIFY round trip p99", percentile(raw, 99), "ms")]
    bench.say(f"direct path (LISTEN/NOTIFY) × {count}")
    direct, _ = worker_latencies(dsn, count, "direct")
    rows += _rows("direct path", direct, raw_p50, targets=True)
    bench.say(f"supabase path (stand-ins: PostgREST + Realtime) × {count}")
    try:
        supa, rpc = worker_latencies(bench.db("supabase"), count, "supabase")
    except Exception as exc:  # noqa: BLE001 - the direct figures stand on their own
        bench.note(f"supabase path not measured: {type(exc).__name__}: {exc}")
    else:
        rows += _rows("supabase path (stand-ins)", supa, raw_p50, targets=False)
        rpc_p50 = percentile(rpc, 50)
        rows.append(Row(NAME, "stand-in RPC round trip p50 (keep-alive, no-op RPC)", rpc_p50, "ms"))
        if rpc_p50 > 20:
            bench.note(f"the PostgREST stand-in answers a no-op RPC in {rpc_p50:.0f} ms on a kept-alive connection: "
                       "the supabase-path latency is mostly the stand-in's transport (TCP_NODELAY not set on its "
                       "accepted sockets), not the worker")
    bench.note(f"{count} jobs per path, one at a time, 20–50 ms apart; worker poll interval {POLL_INTERVAL:.0f} s")
    return rows
