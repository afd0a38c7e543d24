"""Wires a worker process together: database port, job registry, worker loop, schedules, signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from worker import gdpr
from worker.config import Settings
from worker.connectors.registry import check_against_database, publish_configs, register_jobs
from worker.db import Database, open_database
from worker.db.probe import probe
from worker.errors import DatabaseError
from worker.jobs.registry import JobRegistry
from worker.jobs.runner import Worker
from worker.jobs.scheduler import MaintenanceScheduler
from worker.metrics import serve_metrics

__all__ = ["build_registry", "run_worker"]

log = logging.getLogger("shopsync.worker")


def build_registry() -> JobRegistry:
    registry = JobRegistry()
    gdpr.register_jobs(registry)
    register_jobs(registry)
    return registry


async def _open_when_available(settings: Settings, stop: asyncio.Event) -> Database | None:
    """The database, once it answers: a worker started while it is down (a deploy, a restart) waits, saying
    so in one line per attempt, instead of exiting with a traceback. None if stopped meanwhile."""
    delay = 1.0
    while not stop.is_set():
        try:
            return await open_database(settings)
        except DatabaseError as exc:
            if not exc.outage:
                raise
            log.warning("database: %s; trying again in %.0f s", (await asyncio.to_thread(probe, settings)).line, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 30.0)
    return None


async def run_worker(settings: Settings, registry: JobRegistry | None = None,
                     stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``): claim and run jobs, and run schedules without pg_cron.
    Without ``registry`` (``shopsync worker``) the connectors' handlers run, after checking that they cover
    every job kind SQL can enqueue and every table they write is in the catalog (ConfigError otherwise)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests) — stop comes from caller
            pass
    if settings.metrics_port is not None:
        serve_metrics(settings.metrics_port, settings.host)
    db = await _open_when_available(settings, stop)
    if db is None:
        return
    try:
        await publish_configs(db, settings)
        if registry is None:
            # the process runs the connectors' handlers: they must cover every kind SQL can enqueue
            registry = build_registry()
            await check_against_database(db, registry)
        worker = Worker(db, registry, settings)
        scheduler = MaintenanceScheduler(db, settings)
        await asyncio.gather(worker.run(stop), scheduler.run(stop))
    finally:
        await db.close()
