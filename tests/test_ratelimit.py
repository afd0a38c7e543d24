"""The per-store rate limiter kept in the database: slots reserved by several processes never exceed the
rate together, 429s push everyone back, and bad arguments are refused."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

from worker.db.direct import DirectDatabase
from worker.errors import DatabaseError
from worker.ratelimit import DbRateLimiter


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_workers_sharing_a_key_stay_under_the_rate_together(dsn: str) -> None:
    # two separate database connections stand in for two worker processes
    dbs = [await DirectDatabase.connect(dsn), await DirectDatabase.connect(dsn)]
    sent: list[float] = []

    async def worker(db: DirectDatabase, n: int) -> None:
        limiter = DbRateLimiter(db, "shoprenter:demo", per_second=10.0)
        for _ in range(n):
            await limiter.wait()
            sent.append(time.monotonic())

    try:
        started = time.monotonic()
        await asyncio.gather(worker(dbs[0], 15), worker(dbs[1], 15), worker(dbs[0], 10))
        elapsed = time.monotonic() - started
    finally:
        for db in dbs:
            await db.close()
    assert len(sent) == 40
    # 40 requests at 10/s: slots 0.1 s apart, so about 3.9 s; never more than 10 in any second
    assert elapsed >= 3.8
    assert _max_in_window(sent, 1.0) <= 10 + 1      # +1: a slot boundary can land on the window's edge
    assert _max_in_window(sent, 0.5) <= 6


async def test_separate_keys_do_not_wait_for_each_other(db: DirectDatabase) -> None:
    a, b = DbRateLimiter(db, "woocommerce:a", 2.0), DbRateLimiter(db, "woocommerce:b", 2.0)
    started = time.monotonic()
    await a.wait()
    await b.wait()
    assert time.monotonic() - started < 0.4
    await a.wait()             # a's second slot is half a second after its first
    assert time.monotonic() - started >= 0.45


async def test_burst_allows_that_many_at_once(db: DirectDatabase) -> None:
    delays = [await db.rpc("reserve_request_slot", {"p_key": "k", "p_per_second": 1.0, "p_burst": 3})
              for _ in range(4)]
    assert delays[:3] == [0, 0, 0]
    assert 0.9 < delays[3] <= 1.0


async def test_defer_holds_everyone_back(db: DirectDatabase, conn: psycopg.Connection[dict[str, Any]]) -> None:
    limiter = DbRateLimiter(db, "shoprenter:busy", 100.0)
    await limiter.defer(1.5)
    delay = await db.rpc("reserve_request_slot", {"p_key": "shoprenter:busy", "p_per_second": 100.0})
    assert 1.3 < delay <= 1.5
    # a shorter deferral never shortens a longer one
    await limiter.defer(0.1)
    assert await db.rpc("reserve_request_slot", {"p_key": "shoprenter:busy", "p_per_second": 100.0}) > 1.3


@pytest.mark.parametrize("args", [
    {"p_key": "", "p_per_second": 1.0},
    {"p_key": "x" * 201, "p_per_second": 1.0},
    {"p_key": "k", "p_per_second": 0.0},
    {"p_key": "k", "p_per_second": -3.0},
    {"p_key": "k", "p_per_second": 1.0, "p_burst": 0},
])
async def test_invalid_rates_are_refused(db: DirectDatabase, conn: psycopg.Connection[dict[str, Any]],
                                         args: dict[str, Any]) -> None:
    with pytest.raises(DatabaseError) as err:
        await db.rpc("reserve_request_slot", args)
    assert err.value.sqlstate == "22023"
    assert conn.execute("select count(*) as n from shopsync_private.rate_limits").fetchone() == {"n": 0}


def test_the_limiter_table_is_not_visible_to_clients(conn: psycopg.Connection[dict[str, Any]]) -> None:
    for role in ("anon", "authenticated"):
        row = conn.execute("select has_table_privilege(%s, 'shopsync_private.rate_limits', 'select') as ok, "
                           "has_function_privilege(%s, 'shopsync.reserve_request_slot(text, double precision, "
                           "integer)', 'execute') as fn", (role, role)).fetchone()
        assert row == {"ok": False, "fn": False}
