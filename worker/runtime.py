"""Wires a worker process together: database port, job registry, worker loop, schedules, signals."""

from __future__ import annotations

import asyncio
import logging
import signal

from worker import gdpr, notify
from worker.config import Settings
from worker.connectors.registry import check_against_database, publish_configs, register_jobs
from worker.db import open_database
from worker.jobs.registry import JobRegistry
from worker.jobs.runner import Worker
from worker.jobs.scheduler import MaintenanceScheduler

__all__ = ["build_registry", "run_worker"]

log = logging.getLogger("shopsync.worker")


def build_registry() -> JobRegistry:
    registry = JobRegistry()
    gdpr.register_jobs(registry)
    notify.register_jobs(registry)
    register_jobs(registry)
    return registry


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
    db = await open_database(settings)
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
