"""The job queue (``sql/functions/20_queue.sql``): every state change of a job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import sql

__all__ = ["cancel_job", "claim_jobs", "complete_jobs", "enqueue_job", "fail_job", "heartbeat_jobs",
           "job_kinds", "release_jobs", "requeue_store_dead_jobs", "retry_job"]

_ENQUEUE = sql("enqueue_job", "bigint", p_kind="text", p_payload="jsonb", p_store_id="uuid", p_resource="text",
               p_dedupe_key="text", p_concurrency_key="text", p_priority="integer",
               p_run_at="timestamp with time zone", p_max_attempts="integer", p_organization_id="uuid")
_CLAIM = sql("claim_jobs", "setof", p_worker="text", p_limit="integer", p_kinds="text[]",
             p_lease_seconds="double precision")
_HEARTBEAT = sql("heartbeat_jobs", "setof", p_worker="text", p_ids="bigint[]", p_lease_seconds="double precision")
_COMPLETE = sql("complete_jobs", "integer", p_worker="text", p_ids="bigint[]", p_results="jsonb[]")
_FAIL = sql("fail_job", "text", p_worker="text", p_id="bigint", p_error="text", p_retryable="boolean",
            p_retry_in_seconds="double precision", p_needs_reauth="boolean")
_RELEASE = sql("release_jobs", "integer", p_worker="text", p_ids="bigint[]")
_CANCEL = sql("cancel_job", "text", p_job_id="bigint")
_RETRY = sql("retry_job", "bigint", p_job_id="bigint")
_REQUEUE_STORE = sql("requeue_store_dead_jobs", "integer", p_store_id="uuid")
_JOB_KINDS = sql("job_kinds", "setof")


async def enqueue_job(db: Database, *, kind: str, payload: Mapping[str, Any] | None = None,
                      store_id: UUID | None = None, resource: str | None = None, dedupe_key: str | None = None,
                      concurrency_key: str | None = None, priority: int = 100, run_at: datetime | None = None,
                      max_attempts: int = 10) -> int:
    """The new job's id, or the id of the queued-or-running job with the same dedupe key."""
    args: dict[str, Any] = {"p_kind": kind, "p_payload": dict(payload or {}), "p_store_id": store_id,
                            "p_resource": resource, "p_dedupe_key": dedupe_key,
                            "p_concurrency_key": concurrency_key, "p_priority": priority,
                            "p_max_attempts": max_attempts}
    if run_at is not None:
        args["p_run_at"] = run_at
    return int(await _ENQUEUE(db, **args))


async def claim_jobs(db: Database, *, worker: str, limit: int, kinds: Sequence[str] | None,
                     lease_seconds: float) -> list[dict[str, Any]]:
    """Due jobs now held by ``worker`` (rows of ``shopsync.jobs``), in claim order."""
    return await _CLAIM.rows(db, p_worker=worker, p_limit=limit, p_kinds=list(kinds) if kinds is not None else None,
                             p_lease_seconds=lease_seconds)


async def heartbeat_jobs(db: Database, *, worker: str, ids: Sequence[int], lease_seconds: float) -> set[int]:
    """The ids of ``ids`` the worker still holds (leases extended)."""
    held = await _HEARTBEAT(db, p_worker=worker, p_ids=list(ids), p_lease_seconds=lease_seconds)
    # PostgREST names a scalar set's column after the function; psycopg's dict rows do too
    return {int(r["heartbeat_jobs"]) if isinstance(r, Mapping) else int(r) for r in held or []}


async def complete_jobs(db: Database, *, worker: str, ids: Sequence[int],
                        results: Sequence[Mapping[str, Any] | None]) -> int:
    """How many of the jobs were completed (the others were no longer held)."""
    return int(await _COMPLETE(db, p_worker=worker, p_ids=list(ids), p_results=list(results)))


async def fail_job(db: Database, *, worker: str, job_id: int, error: str, retryable: bool,
                   retry_in: float | None = None, needs_reauth: bool = False) -> str | None:
    """The job's new state (queued / dead), or None when the worker no longer held it. ``needs_reauth``:
    the platform refused the store's credentials — the store is marked in the same transaction."""
    state = await _FAIL(db, p_worker=worker, p_id=job_id, p_error=error, p_retryable=retryable,
                        p_retry_in_seconds=retry_in, p_needs_reauth=needs_reauth)
    return None if state is None else str(state)


async def release_jobs(db: Database, *, worker: str, ids: Sequence[int]) -> int:
    return int(await _RELEASE(db, p_worker=worker, p_ids=list(ids)))


async def cancel_job(db: Database, *, job_id: int) -> str:
    return str(await _CANCEL(db, p_job_id=job_id))


async def retry_job(db: Database, *, job_id: int) -> int:
    return int(await _RETRY(db, p_job_id=job_id))


async def requeue_store_dead_jobs(db: Database, *, store_id: UUID) -> int:
    return int(await _REQUEUE_STORE(db, p_store_id=store_id))


async def job_kinds(db: Database) -> list[dict[str, Any]]:
    """The job kinds SQL enqueues: ``kind``, ``scope`` (platform / core), ``required_when``, ..."""
    return await _JOB_KINDS.rows(db)
