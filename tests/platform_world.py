"""What every platform's end-to-end world has: the migrated database, shopsync's web process on a real
port (so sandboxes deliver webhooks to it), a worker on the test's event loop, and ways to wait for and
inspect the queue. ``tests.shopify_world``, ``tests.rest_worlds`` build on it."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from tests.conftest import new_user, personal_org
from worker.config import Settings
from worker.db import Database
from worker.db.direct import DirectDatabase
from worker.jobs.registry import JobRegistry
from worker.jobs.runner import Worker

__all__ = ["AppWorld", "free_port", "owner_org"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def owner_org(conn: psycopg.Connection[Any]) -> tuple[Any, Any]:
    user = new_user(conn)
    return user, personal_org(conn, user)


@dataclass
class AppWorld:
    web_url: str
    core: Settings
    db: DirectDatabase
    conn: psycopg.Connection[dict[str, Any]]
    registry: JobRegistry

    @property
    def web(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.web_url, follow_redirects=False, timeout=10)

    def scalar(self, query: str, params: Any = None) -> Any:
        row = self.conn.execute(query, params).fetchone()
        assert row is not None
        return next(iter(row.values()))

    @asynccontextmanager
    async def worker(self, db: Database | None = None, worker_id: str = "test-worker",
                     **overrides: Any) -> AsyncIterator[Worker]:
        """A real worker on the test's event loop (on ``db``, default the direct path), drained on exit."""
        settings = self.core.model_copy(update={"poll_interval": 0.05, "lease_seconds": 10.0, **overrides})
        worker = Worker(db or self.db, self.registry, settings, worker_id=worker_id)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            yield worker
        finally:
            stop.set()
            await task

    async def until(self, check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if isinstance(value, Awaitable):
                value = await value
            if value:
                return value
            if time.monotonic() > deadline:
                # say where the work stands, so a slow or stuck run explains itself
                jobs = [(j["id"], j["kind"], j["state"], j["attempts"], str(j["run_at"]), (j["last_error"] or "")[:200])
                        for j in self.jobs()]
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; jobs: {jobs}")
            await asyncio.sleep(0.05)

    def jobs(self, kind: str | None = None) -> list[dict[str, Any]]:
        return self.conn.execute("select * from shopsync.jobs where %s::text is null or kind = %s order by id",
                                 (kind, kind)).fetchall()

    def idle(self) -> bool:
        return self.scalar("select count(*) from shopsync.jobs where state in ('queued', 'running') "
                           "and run_at <= now()") == 0
