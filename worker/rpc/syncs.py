"""Syncs (``sql/functions/40_syncs.sql``): requesting them, the runs the worker records, and where each
resource's sync stands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import first, sql

__all__ = ["finish_sync_run", "get_sync_context", "request_sync", "save_sync_state", "start_sync_run"]

_REQUEST = sql("request_sync", "bigint[]", p_store_id="uuid", p_resources="text[]", p_mode="text", p_reason="text",
               p_priority="integer")
_START_RUN = sql("start_sync_run", "bigint", p_store_id="uuid", p_resource="text", p_mode="text", p_job_id="bigint")
_FINISH_RUN = sql("finish_sync_run", "void", p_run_id="bigint", p_status="text", p_created="integer",
                  p_updated="integer", p_deleted="integer", p_failed="integer", p_error="text", p_checkpoint="jsonb",
                  p_record_errors="jsonb")
_SAVE_STATE = sql("save_sync_state", "void", p_store_id="uuid", p_resource="text",
                  p_high_watermark="timestamp with time zone", p_checkpoint="jsonb", p_full_sync_done="boolean",
                  p_reconciled="boolean", p_job_id="bigint", p_worker="text")
_CONTEXT = sql("get_sync_context", "setof", p_store_id="uuid", p_resource="text")


async def request_sync(db: Database, *, store_id: UUID | str, resources: Sequence[str] | None = None,
                       mode: str = "incremental", reason: str = "manual", priority: int = 100) -> list[int]:
    """The sync job ids (existing ones when a sync of that resource is already queued or running)."""
    ids = await _REQUEST(db, p_store_id=store_id, p_resources=list(resources) if resources is not None else None,
                         p_mode=mode, p_reason=reason, p_priority=priority)
    return [int(i) for i in ids or []]


async def start_sync_run(db: Database, *, store_id: UUID, resource: str, mode: str, job_id: int | None) -> int:
    return int(await _START_RUN(db, p_store_id=store_id, p_resource=resource, p_mode=mode, p_job_id=job_id))


async def finish_sync_run(db: Database, *, run_id: int, status: str, counts: Mapping[str, int] | None = None,
                          error: str | None = None, checkpoint: Mapping[str, Any] | None = None,
                          record_errors: Sequence[Mapping[str, str]] = ()) -> None:
    """``counts``: ``inserted`` (created), ``updated``, ``deleted``, ``failed`` (records skipped, whose
    ``record_errors`` — ``{"id", "error"}``, the first 100 — stay on the run)."""
    c = counts or {}
    await _FINISH_RUN(db, p_run_id=run_id, p_status=status, p_created=int(c.get("inserted", 0)),
                      p_updated=int(c.get("updated", 0)), p_deleted=int(c.get("deleted", 0)),
                      p_failed=int(c.get("failed", 0)), p_error=error,
                      p_checkpoint=dict(checkpoint) if checkpoint is not None else None,
                      p_record_errors=[dict(e) for e in record_errors])


async def save_sync_state(db: Database, *, store_id: UUID, resource: str, high_watermark: datetime | None,
                          checkpoint: Mapping[str, Any] | None, full_sync_done: bool = False,
                          reconciled: bool = False, job_id: int | None = None, worker: str | None = None) -> None:
    """Where a resource's sync stands; with ``job_id`` refused unless ``worker`` still holds the job."""
    await _SAVE_STATE(db, p_store_id=store_id, p_resource=resource, p_high_watermark=high_watermark,
                      p_checkpoint=dict(checkpoint) if checkpoint is not None else None,
                      p_full_sync_done=full_sync_done, p_reconciled=reconciled, p_job_id=job_id, p_worker=worker)


async def get_sync_context(db: Database, *, store_id: UUID | str, resource: str) -> dict[str, Any] | None:
    """``store_id``, ``organization_id``, ``platform``, ``shop_key``, ``status``, ``policy`` (of the
    resource), ``high_watermark``, ``checkpoint``, ``last_full_sync_at``."""
    return first(await _CONTEXT.rows(db, p_store_id=store_id, p_resource=resource))
