"""Queue throughput: how many no-op jobs per second go queued → running → succeeded.

Baseline: a raw SQL loop (sync psycopg, one connection) making exactly the queue's own calls —
``claim_jobs(…, 100, …)`` then ``complete_jobs(ids)`` — until the queue is empty. Against it: the real
worker (``run_worker`` with the test registry, direct path) in this process, and as two
``python -m tests.worker_app`` processes.

Every variant starts from the same state: the jobs table truncated, N jobs inserted with one
``INSERT … SELECT generate_series`` and ``VACUUM ANALYZE``d (none of it timed). Throughput is measured
inside the database, from the first claim (``min(started_at)``) to the last completion
(``max(finished_at)``), so process start-up is excluded for every variant alike.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.common import Bench, Row, percentile, start_worker_process, stop_process, wait_until
from tests import worker_app
from worker.config import Settings, load_settings
from worker.logs import configure_logging
from worker.runtime import run_worker

NAME = "queue_throughput"
TITLE = "Queue throughput (no-op jobs)"

TARGET_RATE = 5_000.0     # jobs/s
TARGET_SHARE = 0.5        # of the raw loop
CONCURRENCY = 200
BATCH = 100
TIMEOUT = 600.0


def _reset_queue(dsn: str, n: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("truncate shopsync.jobs, shopsync_private.job_concurrency_locks restart identity")
        conn.execute("insert into shopsync.jobs (kind) select 'test.noop' from generate_series(1, %s)", (n,))
        conn.execute("vacuum analyze shopsync.jobs")


# two partial indexes (queued, running) answer this without reading the whole table
_BUSY = ("select exists (select 1 from shopsync.jobs where state = 'queued')"
         " or exists (select 1 from shopsync.jobs where state = 'running')")


def _queue_empty(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(_BUSY).fetchone()
    return row is not None and not row[0]


def _measured(dsn: str, n: int) -> tuple[float, int]:
    """(seconds from the first claim to the last completion, jobs succeeded)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("select extract(epoch from max(finished_at) - min(started_at))::float8,"
                           " count(*) filter (where state = 'succeeded') from shopsync.jobs").fetchone()
    assert row is not None
    seconds, done = float(row[0] or 0.0), int(row[1])
    if done != n:
        raise RuntimeError(f"only {done} of {n} jobs succeeded")
    return seconds, done


@dataclass
class RawResult:
    rate: float                 # jobs/s
    claim_ms: list[float]       # per claim_jobs call (client-side round trip)
    complete_ms: list[float]    # per complete_jobs call


def raw_loop(dsn: str, n: int) -> RawResult:
    _reset_queue(dsn, n)
    claim_ms: list[float] = []
    complete_ms: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            started = time.perf_counter()
            rows = conn.execute("select * from shopsync.claim_jobs('raw', %s, array['test.noop'], 60)",
                                (BATCH,)).fetchall()
            claimed = time.perf_counter()
            if not rows:
                break
            conn.execute("select shopsync.complete_jobs('raw', %s::bigint[])", ([r[0] for r in rows],))
            claim_ms.append((claimed - started) * 1000)
            complete_ms.append((time.perf_counter() - claimed) * 1000)
    seconds, done = _measured(dsn, n)
    return RawResult(done / seconds, claim_ms, complete_ms)


def _settings(dsn: str) -> Settings:
    return load_settings(_env_file=None, database_url=dsn, worker_concurrency=CONCURRENCY,
                         worker_batch_size=BATCH, log_level="WARNING", poll_interval=1.0)


async def _run_in_process(dsn: str) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(_settings(dsn), worker_app.registry(), stop))
    try:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            deadline = time.monotonic() + TIMEOUT
            while True:
                if task.done():
                    task.result()
                    raise RuntimeError("the worker exited early")
                row = await (await conn.execute(_BUSY)).fetchone()
                if row is not None and not row[0]:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the worker did not finish in time")
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task


def worker_in_process(dsn: str, n: int) -> float:
    _reset_queue(dsn, n)
    configure_logging(_settings(dsn))   # WARNING, as a production worker would be configured for this
    asyncio.run(_run_in_process(dsn))
    seconds, done = _measured(dsn, n)
    return done / seconds


def worker_processes(dsn: str, n: int, processes: int) -> float:
    _reset_queue(dsn, n)
    procs = [start_worker_process(dsn, worker_concurrency=CONCURRENCY, worker_batch_size=BATCH,
                                  log_level="WARNING", poll_interval=1.0) for _ in range(processes)]
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            def done() -> bool:
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError("a worker process exited early")
                return _queue_empty(conn)

            if not wait_until(done, TIMEOUT):
                raise RuntimeError("the worker processes did not finish in time")
    finally:
        for proc in procs:
            stop_process(proc)
    seconds, finished = _measured(dsn, n)
    return finished / seconds


def run(bench: Bench) -> list[Row]:
    n = 5_000 if bench.quick else 50_000
    dsn = bench.db()
    bench.say(f"{n:,} no-op jobs: raw SQL loop")
    raw_result = raw_loop(dsn, n)
    raw = raw_result.rate
    bench.say(f"raw loop: {raw:,.0f} jobs/s; worker in-process (concurrency {CONCURRENCY}, batch {BATCH})")
    inproc = worker_in_process(dsn, n)
    bench.say(f"worker in-process: {inproc:,.0f} jobs/s; 2 worker processes")
    two = worker_processes(dsn, n, 2)
    bench.say(f"2 worker processes: {two:,.0f} jobs/s")
    base = f"raw loop {raw:,.0f} jobs/s"
    bench.note(f"{n:,} jobs per variant; rate = jobs / (last completion − first claim), timed in the database")
    claims, completes = raw_result.claim_ms, raw_result.complete_ms
    return [
        Row(NAME, "raw SQL loop (baseline, 1 connection)", raw, "jobs/s"),
        Row(NAME, f"raw loop: claim_jobs({BATCH}) per call, p50", percentile(claims, 50), "ms"),
        Row(NAME, f"raw loop: claim_jobs({BATCH}) per call, last 10% of the run, p50",
            percentile(claims[-max(1, len(claims) // 10):], 50), "ms"),
        Row(NAME, f"raw loop: complete_jobs({BATCH}) per call, p50", percentile(completes, 50), "ms"),
        Row(NAME, "worker, in-process, 1 process", inproc, "jobs/s", base, inproc / raw,
            f"≥ {TARGET_RATE:,.0f} jobs/s and ≥ {TARGET_SHARE:.0%} of raw",
            inproc >= TARGET_RATE and inproc / raw >= TARGET_SHARE),
        Row(NAME, "worker, 2 processes (tests.worker_app)", two, "jobs/s", base, two / raw,
            f"≥ {TARGET_RATE:,.0f} jobs/s and ≥ {TARGET_SHARE:.0%} of raw",
            two >= TARGET_RATE and two / raw >= TARGET_SHARE),
    ]
