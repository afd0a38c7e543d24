"""Job handlers used by the worker tests and benchmarks, and a worker entry point running them.

Effects are recorded in test tables so tests can check that every job's effect happened exactly
once even when a handler ran more than once (at-least-once delivery, idempotent handlers).
Run as ``python -m tests.worker_app`` with the usual environment (DATABASE_URL, SHOPSYNC_*).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from worker.config import load_settings
from worker.errors import NeedsReauthError, PermanentError, RetryableError
from worker.jobs.registry import Job, JobContext, JobRegistry

TEST_TABLES = """
create table if not exists test_effects (key text primary key, job_id bigint, applied_at timestamptz default now());
create table if not exists test_attempts (id bigserial primary key, job_id bigint, key text, worker text,
  event text, at timestamptz default clock_timestamp());
"""

_pools: dict[str, AsyncConnectionPool] = {}


async def _pool(ctx: JobContext) -> AsyncConnectionPool:
    dsn = os.environ.get("TEST_EFFECTS_DSN") or ctx.settings.database_url.get_secret_value()  # type: ignore[union-attr]
    if dsn not in _pools:
        pool = AsyncConnectionPool(dsn, min_size=1, max_size=4, open=False, kwargs={"autocommit": True})
        await pool.open()
        _pools[dsn] = pool
    return _pools[dsn]


async def _record(ctx: JobContext, job: Job, event: str) -> None:
    async with (await _pool(ctx)).connection() as conn:
        await conn.execute("insert into test_attempts (job_id, key, worker, event) values (%s, %s, %s, %s)",
                           (job.id, job.payload.get("key"), ctx.worker_id, event))


async def effect(job: Job, ctx: JobContext) -> Mapping[str, Any]:
    """Sleeps (optionally; ``sleep_first``: on the first attempt only), then applies its effect idempotently."""
    await _record(ctx, job, "start")
    try:
        sleep = job.payload.get("sleep_first") if job.attempts == 1 else None
        sleep = sleep or job.payload.get("sleep")
        if sleep:
            await asyncio.sleep(float(sleep))
        async with (await _pool(ctx)).connection() as conn:
            await conn.execute("insert into test_effects (key, job_id) values (%s, %s) on conflict (key) do nothing",
                               (job.payload["key"], job.id))
    except asyncio.CancelledError:
        await asyncio.shield(_record(ctx, job, "cancelled"))
        raise
    await _record(ctx, job, "end")
    return {"key": job.payload["key"]}


async def flaky(job: Job, ctx: JobContext) -> Mapping[str, Any]:
    """Fails its first ``fail_times`` attempts in the way ``mode`` says, then succeeds."""
    await _record(ctx, job, "start")
    if job.attempts <= int(job.payload.get("fail_times", 0)):
        mode = job.payload.get("mode", "retryable")
        if mode == "retryable":
            raise RetryableError("platform answered 503", retry_in=0.05)
        if mode == "permanent":
            raise PermanentError("order 42 does not exist")
        if mode == "reauth":
            raise NeedsReauthError("401 from platform: token revoked")
        raise RuntimeError("unexpected crash with secret access_token=shpat_0123456789abcdef")
    return {"ok": True}


async def noop(job: Job, ctx: JobContext) -> Mapping[str, Any] | None:
    if job.payload.get("rich_result"):
        # values JSON cannot hold as such: the worker must still complete the job
        from datetime import UTC, datetime
        from decimal import Decimal
        from uuid import uuid4

        return {"at": datetime(2026, 1, 1, tzinfo=UTC), "id": uuid4(), "amount": Decimal("1.50")}
    return None


def registry() -> JobRegistry:
    reg = JobRegistry()
    reg.register("test.effect", effect)
    reg.register("test.flaky", flaky)
    reg.register("test.noop", noop)
    return reg


async def close_pools() -> None:
    pools = list(_pools.values())
    _pools.clear()
    for pool in pools:
        await pool.close()


def prepare(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(TEST_TABLES)


async def _main() -> None:
    from worker.logs import configure_logging
    from worker.runtime import run_worker

    settings = load_settings()
    configure_logging(settings)
    import signal

    def dump_tasks() -> None:
        for task in asyncio.all_tasks():
            print(task, file=sys.stderr)
            task.print_stack(file=sys.stderr)

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, dump_tasks)
    try:
        await run_worker(settings, registry())
    finally:
        await close_pools()


if __name__ == "__main__":
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)   # tests dump a stuck worker's stacks
    asyncio.run(_main())
    sys.exit(0)
