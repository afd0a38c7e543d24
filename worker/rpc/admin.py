"""What the CLI shows and changes (``sql/functions/70_admin.sql``): statistics and job inspection."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import first, sql

__all__ = ["get_job", "list_jobs", "sync_statistics"]

_STATISTICS = sql("sync_statistics", "setof", p_store_id="uuid")
_GET_JOB = sql("get_job", "setof", p_job_id="bigint")
_LIST_JOBS = sql("list_jobs", "setof", p_state="text", p_kind="text", p_store_id="uuid", p_limit="integer")


async def sync_statistics(db: Database, *, store_id: UUID | str | None = None) -> list[dict[str, Any]]:
    """Rows of ``shopsync.store_sync_statistics`` (every store, or one)."""
    return await _STATISTICS.rows(db, p_store_id=store_id)


async def list_jobs(db: Database, *, state: str | None = None, kind: str | None = None,
                    store_id: UUID | str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    return await _LIST_JOBS.rows(db, p_state=state, p_kind=kind, p_store_id=store_id, p_limit=limit)


async def get_job(db: Database, *, job_id: int) -> dict[str, Any] | None:
    """The job's row of ``shopsync.jobs``; DatabaseError P0002 when it does not exist."""
    return first(await _GET_JOB.rows(db, p_job_id=job_id))
