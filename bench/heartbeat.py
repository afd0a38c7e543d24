"""Heartbeat cost: a worker renews the leases of the jobs it runs every lease / 3 — with the 15 s default
lease, every 5 s (it was 20 s with the former 60 s lease) — in one ``heartbeat_jobs`` call for all of them.

Measured: that call, for a worker holding 32 running jobs (the default concurrency) and 1,000, 300 calls
each (sync psycopg, one connection). Baseline: ``select 1`` on the same connection (the round trip itself).
Reported: each call's p50/p99, and the database time one worker's heartbeats cost per minute at the new
lease against the old one.
"""

from __future__ import annotations

import time

import psycopg

from bench.common import Bench, Row, percentile

NAME = "heartbeat"
TITLE = "Heartbeats (lease renewal) — what 15 s leases cost"

HELD = (32, 1000)
CALLS = 300
LEASE_NEW, LEASE_OLD = 15.0, 60.0


def _timed(conn: psycopg.Connection, query: str, params: tuple[object, ...], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        conn.execute(query, params).fetchall()
        out.append((time.perf_counter() - start) * 1000)
    return out


def run(bench: Bench) -> list[Row]:
    dsn = bench.db()
    calls = 50 if bench.quick else CALLS
    rows: list[Row] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("insert into shopsync.jobs (kind, payload) select 'bench.hold', '{}' "
                     "from generate_series(1, %s)", (max(HELD),))
        conn.execute("vacuum analyze shopsync.jobs")
        base = _timed(conn, "select 1", (), calls)
        b50 = percentile(base, 50)
        rows.append(Row(NAME, "select 1 round trip p50 (baseline)", b50, "ms"))
        for held in HELD:
            ids = [r[0] for r in conn.execute("select id from shopsync.claim_jobs('bench-worker', %s, "
                                              "array['bench.hold'], 60)", (held,)).fetchall()]
            assert len(ids) == held, len(ids)
            times = _timed(conn, "select shopsync.heartbeat_jobs('bench-worker', %s, %s)",
                           (ids, LEASE_NEW), calls)
            p50, p99 = percentile(times, 50), percentile(times, 99)
            per_minute_new = 60 / (LEASE_NEW / 3) * p50
            per_minute_old = 60 / (LEASE_OLD / 3) * p50
            rows += [
                Row(NAME, f"heartbeat_jobs, {held} jobs held: p50", p50, "ms", f"select 1 {b50:.2f} ms", p50 / b50),
                Row(NAME, f"heartbeat_jobs, {held} jobs held: p99", p99, "ms"),
                Row(NAME, f"database time per worker per minute, {held} jobs (lease 15 s)", per_minute_new, "ms",
                    f"lease 60 s: {per_minute_old:.1f} ms/min", per_minute_new / per_minute_old,
                    f"share of one core: {per_minute_new / 60_000:.5%}"),
            ]
            conn.execute("select shopsync.release_jobs('bench-worker', %s)", (ids,))
    bench.note(f"{calls} calls per size; one call renews every job a worker holds; the share of a core is the "
               "per-minute database time over 60 s")
    return rows
