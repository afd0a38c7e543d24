"""Crash recovery: SIGKILL a worker while jobs run, start another, and check nothing is lost or applied
twice, and how long recovery takes.

1,000 ``test.effect`` jobs (each sleeps 10–50 ms, then inserts its key into ``test_effects`` with
``on conflict do nothing`` and records attempt starts in ``test_attempts``) are run by a
``python -m tests.worker_app`` process (lease 2 s, reaper every 1 s, concurrency 50). Once ~30% of the
effects exist it gets SIGKILL; the jobs it held stay ``running`` until their leases expire and the
reaper requeues them. A second worker process starts right after the kill and runs everything to
the end.

Baseline for the recovery time: the lease itself — the share of kill → all done spent waiting for the
last lease held by the dead worker to expire (the reaper then needs up to one reap interval more).
"""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Any

import psycopg

from bench.common import Bench, Row, start_worker_process, stop_process, wait_until

NAME = "crash"
TITLE = "Crash recovery (SIGKILL a worker mid-run)"

LEASE_SECONDS = 2
REAP_INTERVAL = 1
CONCURRENCY = 50
KILL_AT_SHARE = 0.3
TIMEOUT = 180.0


def _scalar(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query.encode()).fetchone()
    return row[0] if row else None


def _worker(dsn: str) -> subprocess.Popen[bytes]:
    return start_worker_process(dsn, lease_seconds=LEASE_SECONDS, reap_interval=REAP_INTERVAL,
                                worker_concurrency=CONCURRENCY, log_level="WARNING", poll_interval=2)


def run(bench: Bench) -> list[Row]:
    n = 300 if bench.quick else 1_000
    kill_at = int(n * KILL_AT_SHARE)
    dsn = bench.db()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select shopsync.enqueue_job('test.effect', jsonb_build_object("
                     "'key', 'k' || i, 'sleep', round((0.01 + random() * 0.04)::numeric, 3)))"
                     " from generate_series(1, %s) i", (n,))
        bench.say(f"{n:,} effect jobs; first worker, SIGKILL after ~{kill_at:,} effects")
        first = _worker(dsn)
        try:
            if not wait_until(lambda: _scalar(conn, "select count(*) from test_effects") >= kill_at, TIMEOUT, 0.005):
                raise RuntimeError("the first worker did not get going")
            first.send_signal(signal.SIGKILL)
            killed_at = time.time()
            first.wait()
        finally:
            stop_process(first)
        # the dead worker's sessions are gone with it; what it held stays 'running' until reaped
        time.sleep(0.2)
        row = conn.execute("select count(*) filter (where state = 'running'),"
                           " count(*) filter (where state = 'succeeded'),"
                           " extract(epoch from max(lease_expires_at) filter (where state = 'running'))::float8"
                           " from shopsync.jobs").fetchone()
        assert row is not None
        running_at_kill, succeeded_at_kill, last_lease = int(row[0]), int(row[1]), row[2]
        effects_at_kill = int(_scalar(conn, "select count(*) from test_effects"))
        bench.say(f"killed: {running_at_kill} running, {succeeded_at_kill} succeeded, {effects_at_kill} effects;"
                  " second worker")
        second = _worker(dsn)
        try:
            def all_done() -> bool:
                if second.poll() is not None:
                    raise RuntimeError("the second worker exited early")
                return int(_scalar(conn, "select count(*) from shopsync.jobs where state = 'succeeded'")) == n

            if not wait_until(all_done, TIMEOUT, 0.01):
                raise RuntimeError("the second worker did not finish in time")
            done_at = time.time()
        finally:
            stop_process(second)

        effects = int(_scalar(conn, "select count(*) from test_effects"))
        distinct = int(_scalar(conn, "select count(distinct key) from test_effects"))
        starts = int(_scalar(conn, "select count(*) from test_attempts where event = 'start'"))
        applied_twice = int(_scalar(conn, "select count(*) from (select key from test_attempts where event = 'end'"
                                          " group by key having count(*) > 1) k"))
        dead = int(_scalar(conn, "select count(*) from shopsync.jobs where state <> 'succeeded'"))
        reaped = int(_scalar(conn, "select count(*) from shopsync.jobs where attempts > 1"))

    recovery = done_at - killed_at
    lease_wait = max(0.0, (last_lease or killed_at) - killed_at)
    bench.note(f"{n:,} jobs, lease {LEASE_SECONDS} s, reaper every {REAP_INTERVAL} s, concurrency {CONCURRENCY};"
               f" killed with {effects_at_kill} effects applied and {succeeded_at_kill} jobs succeeded")
    bench.note("handlers that ran to the end twice are absorbed by the idempotent effect "
               "(`on conflict do nothing`); 'effects applied twice' counts duplicate rows in test_effects")
    return [
        Row(NAME, "jobs running at the kill", running_at_kill, "jobs"),
        Row(NAME, "effects after recovery", effects, "", f"{n:,} jobs", effects / n, f"= {n:,} (none lost)",
            effects == n and dead == 0),
        Row(NAME, "effects applied twice", effects - distinct, "", "", None, "= 0", effects == distinct),
        Row(NAME, "handler re-executions (starts beyond one per job)", starts - n, "", f"{running_at_kill} running at kill",
            (starts - n) / running_at_kill if running_at_kill else None),
        Row(NAME, "jobs reaped and retried (attempts > 1)", reaped, "jobs"),
        Row(NAME, "handlers that completed twice (absorbed)", applied_twice, "jobs"),
        Row(NAME, "kill → all done", recovery, "s"),
        Row(NAME, "lease-expiry wait (kill → last lease expired)", lease_wait, "s", f"kill → all done {recovery:.2f} s",
            lease_wait / recovery if recovery > 0 else None),
    ]
