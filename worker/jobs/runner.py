"""The worker: claims jobs in batches, runs their handlers concurrently, keeps leases alive,
completes in batches, and shuts down gracefully.

Every queue transition is a SQL function called through the ``Database`` port. Wake-ups (NOTIFY or
Realtime) only shorten the wait; a timed poll always runs. Delivery is at-least-once: a job whose
worker dies is reaped when its lease expires and runs again, so handlers must be idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from worker import metrics
from worker.config import Settings
from worker.db.port import Database
from worker.errors import DatabaseError, NeedsReauthError, PermanentError, RetryableError
from worker.jobs.registry import Job, JobContext, JobRegistry
from worker.logs import redact_text
from worker.rpc import queue

__all__ = ["Worker", "new_worker_id"]

log = logging.getLogger("shopsync.worker")

T = TypeVar("T")


def _plain_json(result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # a handler may return datetimes, UUIDs, Decimals: store them as text rather than fail the batch
    return None if result is None else dict(json.loads(json.dumps(dict(result), default=str)))


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    def __init__(self, db: Database, registry: JobRegistry, settings: Settings,
                 worker_id: str | None = None) -> None:
        self.db = db
        self.registry = registry
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.kinds = [k for k in registry.kinds() if not settings.worker_kinds or k in settings.worker_kinds]
        self._concurrency = settings.worker_concurrency
        self._running: dict[int, asyncio.Task[None]] = {}
        self._jobs: dict[int, Job] = {}
        self._kick = asyncio.Event()          # something changed: claim again
        self._completions: list[tuple[int, Mapping[str, Any] | None]] = []
        self._have_completions = asyncio.Event()
        self._closing = False
        self._flushing: list[int] = []
        self.stats = {"claimed": 0, "succeeded": 0, "failed": 0, "lost": 0}

    # --- public ---------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then drain within the grace period and release the rest."""
        if not self.kinds:
            log.warning("no job handlers registered for this worker; it will only idle")
        log.info("worker %s started: %d kinds, concurrency %d, batch %d", self.worker_id, len(self.kinds),
                 self._concurrency, self.settings.worker_batch_size)
        helpers = [asyncio.create_task(self._forward_wakeups(), name="wakeups"),
                   asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
                   asyncio.create_task(self._stop_watch(stop), name="stop-watch")]
        flusher = asyncio.create_task(self._flush_loop(), name="complete-flush")
        try:
            await self._claim_loop(stop)
            await self._drain()
        finally:
            for task in helpers:
                task.cancel()
            for task in helpers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            # let the flusher finish what it holds: cancelling it mid-call would strand completions
            self._closing = True
            self._have_completions.set()
            await flusher
            log.info("worker %s stopped: %s", self.worker_id, self.stats)

    # --- claiming -------------------------------------------------------------------------------
    async def _claim_loop(self, stop: asyncio.Event) -> None:
        batch = self.settings.worker_batch_size
        while not stop.is_set():
            free = self._concurrency - len(self._running)
            self._kick.clear()   # before claiming (or idling): a kick from now on means "look again"
            if free <= 0 or not self.kinds:
                await self._wait(self.settings.poll_interval)
                continue
            want = min(free, batch)
            try:
                rows = await queue.claim_jobs(self.db, worker=self.worker_id, limit=want, kinds=self.kinds,
                                              lease_seconds=self.settings.lease_seconds)
            except DatabaseError as exc:
                log.error("claim failed (%s): %s; retrying after the poll interval", exc.sqlstate, exc)
                await self._wait(self.settings.poll_interval)
                continue
            for row in rows:
                self._start(Job.from_row(row))
            if len(rows) < want:
                await self._wait(self.settings.poll_interval)

    async def _wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):   # not wait_for: on 3.11 it can swallow a cancel
                await self._kick.wait()

    async def _forward_wakeups(self) -> None:
        while True:
            if await self.db.wait_for_wakeup(3600):
                self._kick.set()

    async def _stop_watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._kick.set()

    # --- running --------------------------------------------------------------------------------
    def _start(self, job: Job) -> None:
        self.stats["claimed"] += 1
        self._jobs[job.id] = job
        task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
        self._running[job.id] = task
        task.add_done_callback(functools.partial(self._finished, job.id))

    def _finished(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._jobs.pop(job_id, None)
        # claim again once half the slots are free: batches stay large, the pipeline stays full
        refill_at = max(1, min(self._concurrency, self.settings.worker_batch_size) // 2)
        if self._concurrency - len(self._running) >= refill_at:
            self._kick.set()

    async def _execute(self, job: Job) -> None:
        handler = self.registry.handler(job.kind)
        ctx = JobContext(db=self.db, settings=self.settings, worker_id=self.worker_id)
        started = time.perf_counter()
        outcome = "succeeded"
        try:
            result = await handler(job, ctx)
        except asyncio.CancelledError:
            outcome = "interrupted"
            raise
        except NeedsReauthError as exc:
            # the store is marked in fail_job's transaction, before the store's lock is released
            outcome = await self._fail(job, exc, retryable=False, needs_reauth=True)
        except PermanentError as exc:
            outcome = await self._fail(job, exc, retryable=False)
        except RetryableError as exc:
            outcome = await self._fail(job, exc, retryable=True, retry_in=exc.retry_in)
        except Exception as exc:  # noqa: BLE001 - an unexpected error is retried until max_attempts
            outcome = await self._fail(job, exc, retryable=True)
        else:
            self._completions.append((job.id, _plain_json(result)))
            self._have_completions.set()
            self.stats["succeeded"] += 1
        finally:
            seconds = time.perf_counter() - started
            metrics.JOBS.labels(job.kind, outcome).inc()
            metrics.JOB_DURATION.labels(job.kind).observe(seconds)
            log.info("job %s", outcome, extra={
                "job_id": job.id, "kind": job.kind, "store_id": str(job.store_id) if job.store_id else None,
                "resource": job.resource, "attempt": job.attempts, "outcome": outcome,
                "duration_ms": round(seconds * 1000, 2)})

    async def _fail(self, job: Job, exc: BaseException, *, retryable: bool, retry_in: float | None = None,
                    needs_reauth: bool = False) -> str:
        self.stats["failed"] += 1
        message = redact_text(f"{type(exc).__name__}: {exc}")
        state = await self._persist(lambda: queue.fail_job(
            self.db, worker=self.worker_id, job_id=job.id, error=message, retryable=retryable, retry_in=retry_in,
            needs_reauth=needs_reauth), "fail_job")
        return "retry" if state == "queued" else ("dead" if state == "dead" else "lost")

    async def _persist(self, call: Callable[[], Awaitable[T]], what: str) -> T | None:
        """Record a job's outcome, retrying while the database does not answer (an outage, a failover) with
        backoff from 0.1 s to 5 s, for up to two leases: giving up would leave the job leased until its lease
        ran out. After that the lease has gone and whoever holds the job now decides."""
        delay, deadline = 0.1, time.monotonic() + 2 * self.settings.lease_seconds
        while True:
            try:
                return await call()
            except DatabaseError as exc:
                if not exc.outage and exc.sqlstate != "40001":
                    log.error("%s failed (%s): %s", what, exc.sqlstate, exc)      # an answer, not an outage
                    return None
                if time.monotonic() + delay > deadline:
                    log.error("%s: the database did not answer for %.0f s (%s); the lease decides", what,
                              2 * self.settings.lease_seconds, exc)
                    return None
                log.warning("%s: the database did not answer (%s); retrying in %.1f s", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # --- completing -----------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        delay = 0.1
        while True:
            await self._have_completions.wait()
            if await self._flush_completions():
                delay = 0.1
            else:
                # the database refused or was unreachable: keep the batch and try again shortly
                # (the jobs stay leased: _pending_ids() keeps heartbeating them)
                self._have_completions.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            if self._closing and (not self._completions or delay >= 5.0):
                return

    async def _flush_completions(self) -> bool:
        """Complete the pending batch; False (batch kept) if the call failed."""
        self._have_completions.clear()
        if not self._completions:
            return True
        batch, self._completions = self._completions, []
        self._flushing = [job_id for job_id, _ in batch]
        ids = self._flushing
        results = [result for _, result in batch]
        try:
            done = await queue.complete_jobs(self.db, worker=self.worker_id, ids=ids, results=results)
        except Exception as exc:  # noqa: BLE001 - keep the batch whatever went wrong
            log.error("completing %d jobs failed (%s); will retry", len(ids), type(exc).__name__)
            self._completions[:0] = batch
            return False
        finally:
            self._flushing = []
        if done < len(ids):
            # those jobs were reaped or cancelled meanwhile; whoever holds them now decides
            self.stats["lost"] += len(ids) - done
            log.warning("%d of %d completed jobs were no longer held by this worker", len(ids) - done, len(ids))
        return True

    # --- leases ---------------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        interval = max(self.settings.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            # finished jobs waiting for their completion to be written are still ours to keep alive
            ids = list(self._running) + [job_id for job_id, _ in self._completions] + self._flushing
            if not ids:
                continue
            try:
                held_ids = await queue.heartbeat_jobs(self.db, worker=self.worker_id, ids=ids,
                                                      lease_seconds=self.settings.lease_seconds)
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried; the lease has slack
                log.error("heartbeat failed (%s); retrying", type(exc).__name__)
                continue
            for job_id in ids:
                task = self._running.get(job_id)
                if job_id not in held_ids and task is not None and not task.done():
                    # cancelled by an admin, or reaped after a stall: someone else owns it now
                    log.warning("lost the lease of job %s; stopping its handler", job_id)
                    task.cancel()

    # --- shutdown -------------------------------------------------------------------------------
    async def _drain(self) -> None:
        if not self._running:
            return
        grace = self.settings.shutdown_grace
        log.info("stopping: waiting up to %.0fs for %d running jobs", grace, len(self._running))
        _, pending = await asyncio.wait(set(self._running.values()), timeout=grace)
        if not pending:
            return
        leftover = [job_id for job_id, task in self._running.items() if task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        released = await self._persist(lambda: queue.release_jobs(self.db, worker=self.worker_id, ids=leftover),
                                       "release_jobs")
        log.info("released %s unfinished jobs for other workers", released)
