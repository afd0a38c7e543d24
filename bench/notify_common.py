"""What the notification benchmarks share: an organization with stores, channels written straight into the
database (config as the channel endpoint stores it, secrets sealed), and a real worker on this process's event
loop running the notification jobs and their maintenance task, with the providers as local servers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from worker.config import Settings, load_settings
from worker.jobs.registry import JobRegistry
from worker.notify import register_jobs
from worker.notify.channels import seal_secret
from worker.notify.delivery import NOTIFIER
from worker.notify.settings import NotifySettings
from worker.runtime import run_worker
from worker.sealing import Sealer, generate_key_spec

__all__ = ["Org", "quiet", "running_worker", "settings"]

Conn = psycopg.Connection[dict[str, Any]]


def settings(dsn: str, **notify: Any) -> Settings:
    """Core settings for the bench worker (defaults, local providers allowed); ``notify`` → SHOPSYNC_NOTIFY_*."""
    NOTIFIER._settings = NotifySettings(_env_file=None, allow_private=True, **notify)  # type: ignore[call-arg]
    return load_settings(_env_file=None, database_url=dsn, sealing_keys=generate_key_spec("bench"), local_dev=True,
                         log_level="WARNING")


class Org:
    """An organization, its owner and ``stores`` stores."""

    def __init__(self, conn: Conn, stores: int) -> None:
        self.conn = conn
        self.owner = uuid.uuid4()
        conn.execute("insert into auth.users (id, email) values (%s, 'bench@example.com')", (self.owner,))
        row = conn.execute("select organization_id from shopsync.organization_members where user_id = %s",
                           (self.owner,)).fetchone()
        assert row is not None
        self.id = row["organization_id"]
        self.stores = [conn.execute("select shopsync.upsert_store(%s, 'shopify', %s) as s",
                                    (self.id, f"bench-{i}.myshopify.com")).fetchone()["s"]  # type: ignore[index]
                       for i in range(stores)]

    def channel(self, core: Settings, name: str, kind: str, config: Mapping[str, Any],
                secret: Mapping[str, str] | None = None, *, window: int) -> uuid.UUID:
        """A channel and a rule taking every type from warning up, grouped in ``window``-second windows."""
        channel = uuid.uuid4()
        sealed = seal_secret(Sealer.from_settings(core), channel, secret) if secret else None
        self.conn.execute("select shopsync.put_notification_channel(%s, %s, %s, %s, %s, %s, %s, %s)",
                          (self.owner, self.id, channel, name, kind, Jsonb(dict(config)),
                           sealed.key_id if sealed else None, sealed.sealed if sealed else None))
        self.conn.execute("insert into shopsync.notification_rules (organization_id, channel_id, min_severity, "
                          "group_window_seconds) values (%s, %s, 'warning', %s)", (self.id, channel, window))
        return channel


def connect(dsn: str) -> Conn:
    return psycopg.connect(dsn, autocommit=True, row_factory=dict_row)


@contextlib.asynccontextmanager
async def running_worker(core: Settings) -> AsyncIterator[None]:
    """The notification jobs on a real worker (and its maintenance schedules: the bench cluster has no pg_cron)."""
    registry = JobRegistry()
    register_jobs(registry)
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(core, registry, stop))
    await asyncio.sleep(0.5)
    if task.done():
        task.result()
    try:
        yield
    finally:
        stop.set()
        await task


async def until(check: Any, timeout: float, what: str) -> float:
    """Poll ``check`` (a callable, run in a thread) until it holds; the time it took. TimeoutError after."""
    started = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


@contextmanager
def quiet() -> Iterator[None]:
    """Local servers log every request and SMTP command at INFO; keep the console for the report."""
    loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.access", "uvicorn.error", "httpx", "mail.log",
                                               "shopsync.notify", "shopsync.worker", "shopsync.scheduler")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
