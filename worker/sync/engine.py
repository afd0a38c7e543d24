"""Runs one ``<platform>.sync`` job: the part every connector shares.

A connector turns a store + resource into an async stream of ``Batch``es (canonical rows per synced
table, rows to soft-delete, and a checkpoint to resume from). The engine records the run, writes each
batch through the port's guarded upsert, saves the checkpoint after every batch so a killed sync
resumes where it stopped, moves the incremental high-water mark forward only when the run finishes,
and keeps the store's sync status current for the frontend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from worker import payloads
from worker.db.port import Database
from worker.db.values import as_datetime
from worker.errors import PermanentError
from worker.jobs.registry import Job, JobContext
from worker.logs import redact_text
from worker.rpc import catalog, synced_writes, syncs
from worker.sync.batch import Batch, RecordError

__all__ = ["MAX_RECORD_ERRORS", "Batch", "RecordError", "SyncContext", "SyncSource", "sync_handler"]

MAX_RECORD_ERRORS = 100     # kept on a run; all of them are counted

log = logging.getLogger("shopsync.sync")


@dataclass(frozen=True)
class SyncContext:
    store_id: UUID
    organization_id: UUID
    platform: str
    shop_key: str
    resource: str
    mode: str                      # full | incremental | reconcile (as requested)
    checkpoint: Mapping[str, Any] | None
    high_watermark: datetime | None
    job: Job
    job_context: JobContext

    @property
    def db(self) -> Database:
        return self.job_context.db


class SyncSource(Protocol):
    def __call__(self, ctx: SyncContext) -> AsyncIterator[Batch]: ...


def _as_uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def sync_handler(source: SyncSource) -> Callable[[Job, JobContext], Any]:
    """A job handler for ``<platform>.sync`` that drives ``source`` (the connector's fetcher)."""

    async def handle(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        with payloads.counting() as stripped:
            result = await run(job, jctx)
        # NUL characters the platform sent (PostgreSQL cannot store them): removed, and said so
        return {**result, "nul_stripped": stripped[0]} if stripped[0] else result

    async def run(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        if job.store_id is None or job.resource is None:
            raise PermanentError("a sync job needs a store and a resource")
        db = jctx.db
        info = await syncs.get_sync_context(db, store_id=job.store_id, resource=job.resource)
        if info is None:
            raise PermanentError(f"store {job.store_id} no longer exists")
        if info["status"] != "active":
            raise PermanentError(f"store is {info['status']}; nothing synced")
        if info["policy"] != "sync":
            # api_only / not_allowed data is never stored (the policy may have changed after enqueue)
            return {"skipped": f"access policy is {info['policy']}"}
        mode = str(job.payload.get("mode") or "incremental")
        if mode == "incremental" and info["high_watermark"] is None:
            mode = "full"                               # nothing synced yet: an incremental has no base
        checkpoint = info["checkpoint"]
        if checkpoint is not None and checkpoint.get("mode") != mode:
            checkpoint = None                           # left by a run of another kind: start over
        ctx = SyncContext(store_id=_as_uuid(info["store_id"]), organization_id=_as_uuid(info["organization_id"]),
                          platform=info["platform"], shop_key=info["shop_key"], resource=job.resource, mode=mode,
                          checkpoint=checkpoint, high_watermark=as_datetime(info["high_watermark"]),
                          job=job, job_context=jctx)
        # anything changed at the source after this moment is caught by the next incremental run, even
        # if it sits on a page this run already passed (the connector's overlap window covers skew)
        run_started = datetime.now(UTC)
        run_id = await syncs.start_sync_run(db, store_id=ctx.store_id, resource=ctx.resource, mode=mode,
                                            job_id=job.id)
        counts = {"inserted": 0, "updated": 0, "skipped": 0, "deleted": 0, "failed": 0}
        record_errors: list[dict[str, str]] = []
        held: dict[str, Any] = {"job_id": job.id, "worker": jctx.worker_id}   # every write re-checks the lease
        newest = ctx.high_watermark
        first_full_sync = mode == "full" and info.get("last_full_sync_at") is None

        observed_columns = {t.table_name: t.observed_column for t in await catalog.synced_catalog(db)
                            if t.observed_column}

        async def write(batch: Batch) -> None:
            # unknown read time: the run's start, the earliest it can be (a webhook after it wins a tie)
            observed = batch.observed_at or run_started
            for table, table_rows in batch.writes.items():
                column = observed_columns.get(table)
                if column is not None:
                    for row in table_rows:      # rows are the source's own dicts: stamped in place, no copies
                        row[column] = observed  # type: ignore[index]
            if batch.errors:
                counts["failed"] += len(batch.errors)
                record_errors.extend({"id": e.id, "error": e.error[:300]}
                                     for e in batch.errors[:max(0, MAX_RECORD_ERRORS - len(record_errors))])
            for table, table_rows in batch.writes.items():
                result = await db.write_synced(table, table_rows, job_id=job.id, worker_id=jctx.worker_id,
                                               fresh=first_full_sync)
                for key in ("inserted", "updated", "skipped"):
                    counts[key] += int(result.get(key, 0))
            for table, ids in batch.deletes.items():
                if ids:
                    counts["deleted"] += await synced_writes.mark_synced_deleted(
                        db, table=table, store_id=ctx.store_id, ids=ids, **held)
            if batch.checkpoint is not None:
                # the watermark only moves when the run completes: a resumed run must not skip data
                await syncs.save_sync_state(db, store_id=ctx.store_id, resource=ctx.resource,
                                            high_watermark=ctx.high_watermark,
                                            checkpoint={**batch.checkpoint, "mode": mode}, **held)

        # one batch is written while the source fetches and maps the next: Python and PostgreSQL work at
        # the same time instead of taking turns. Batches are still written (and checkpointed) in order.
        writing: asyncio.Task[None] | None = None
        try:
            async for batch in source(ctx):
                if batch.high_watermark is not None and (newest is None or batch.high_watermark > newest):
                    newest = batch.high_watermark
                if writing is not None:
                    await writing
                writing = asyncio.create_task(write(batch))
            if writing is not None:
                await writing
        except BaseException as exc:
            if writing is not None and not writing.done():
                if isinstance(exc, Exception):
                    # the source failed after handing over a good batch: keep it (and its checkpoint)
                    with contextlib.suppress(Exception):
                        await writing
                else:                       # cancelled (lost lease, shutdown): stop writing now
                    writing.cancel()
                    with contextlib.suppress(BaseException):
                        await writing
            # a shutdown or lost lease is not the store's error: the run resumes from its checkpoint
            status = "cancelled" if isinstance(exc, asyncio.CancelledError) else "failed"
            if isinstance(exc, PermanentError) or (isinstance(exc, Exception) and job.attempts >= job.max_attempts):
                # the job ends dead: its checkpoint must not send every later run of this resource to the same
                # failure, so the next run starts over
                with contextlib.suppress(Exception):
                    await asyncio.shield(syncs.save_sync_state(db, store_id=ctx.store_id, resource=ctx.resource,
                                                               high_watermark=None, checkpoint=None, **held))
            try:
                await asyncio.shield(syncs.finish_sync_run(db, run_id=run_id, status=status, counts=counts,
                                                           error=redact_text(f"{type(exc).__name__}: {exc}"),
                                                           record_errors=record_errors))
            except Exception as finish_exc:  # noqa: BLE001 - the original error matters more
                log.warning("could not record the end of sync run %s (%s); the next run supersedes it",
                            run_id, type(finish_exc).__name__)
            raise
        if mode == "full" and newest is not None:
            newest = min(newest, run_started)
        await syncs.save_sync_state(db, store_id=ctx.store_id, resource=ctx.resource, high_watermark=newest,
                                    checkpoint=None, full_sync_done=mode == "full", reconciled=mode == "reconcile",
                                    **held)
        await syncs.finish_sync_run(db, run_id=run_id, status="succeeded", counts=counts,
                                    record_errors=record_errors)
        return {"run_id": run_id, "mode": mode, **counts}

    return handle
