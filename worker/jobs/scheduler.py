"""Runs the periodic SQL tasks in the worker: all of them when pg_cron is not installed, and the reaping of
expired leases always.

The same functions pg_cron would call, through ``shopsync.run_maintenance``, which lets exactly one caller
run a task per interval however many workers there are. Reaping runs every ``reap_interval`` (5 s) even
beside pg_cron: pg_cron fires at most once a minute, and a killed worker's jobs should run again within
seconds of their lease running out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import schedule

from worker.config import Settings
from worker.db.port import Database
from worker.errors import DatabaseError
from worker.rpc import maintenance

__all__ = ["MaintenanceScheduler"]

log = logging.getLogger("shopsync.scheduler")


class MaintenanceScheduler:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._due: list[tuple[str, float]] = []
        self._schedule = schedule.Scheduler()
        self._reaper = schedule.Scheduler()     # runs beside pg_cron too
        self._reaper.every(max(1, round(settings.reap_interval))).seconds.do(
            self._due.append, ("reap_expired_leases", settings.reap_interval))
        for task, every in (("enqueue_due_syncs", 60.0), ("prune_history", 3600.0), ("notify", 60.0)):
            # schedule calls plain functions: note the task, the event loop awaits it below
            self._schedule.every(max(1, round(every))).seconds.do(self._due.append, (task, every))

    async def pg_cron_runs_schedules(self, stop: asyncio.Event) -> bool:
        """Ask the database, retrying while it is unreachable (never tear the worker down over it)."""
        delay = 1.0
        while not stop.is_set():
            try:
                features = await maintenance.runtime_features(self.db)
                return bool(features.get("pg_cron_schedules"))
            except DatabaseError as exc:
                log.error("cannot read runtime features (%s); retrying in %.0fs", exc.sqlstate, delay)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()
                delay = min(delay * 2, 60.0)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        if not self.settings.run_schedules:
            log.info("in-worker schedules disabled by configuration")
            return
        schedulers = [self._reaper]
        if await self.pg_cron_runs_schedules(stop):
            log.info("pg_cron runs the schedules in this database; the worker only reaps expired leases")
        else:
            log.info("pg_cron not available: this worker takes part in running schedules")
            schedulers.append(self._schedule)
        for scheduler in schedulers:
            scheduler.run_all()   # reap and catch up once at start
        while not stop.is_set():
            while self._due:
                task, every = self._due.pop(0)
                await self.run_task(task, every)
            for scheduler in schedulers:
                scheduler.run_pending()
            if not self._due:
                idle = min(s.idle_seconds or 1.0 for s in schedulers)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(1.0, max(idle, 0.05))):
                        await stop.wait()

    async def run_task(self, task: str, every: float) -> None:
        # half the cadence as the minimum gap: a slightly early tick still runs, a duplicate does not
        try:
            result = await maintenance.run_maintenance(self.db, task=task, every_seconds=every / 2)
        except DatabaseError as exc:
            log.error("maintenance task %s failed (%s): %s", task, exc.sqlstate, exc)
            return
        if "result" in result:
            log.info("maintenance %s: %s", task, result["result"])
