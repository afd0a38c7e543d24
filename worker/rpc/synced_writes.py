"""Writes into the synced tables (``sql/functions/42_synced_writes.sql``) that go through RPC: whole
changes in one transaction, guarded deletes, and reconciliation's id pages. Batch upserts go through
``Database.write_synced`` (COPY on the direct path)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import sql

__all__ = ["apply_synced_changes", "list_synced_ids", "mark_synced_deleted", "upsert_synced"]

_APPLY = sql("apply_synced_changes", "jsonb", p_store_id="uuid", p_writes="jsonb", p_deletes="jsonb",
             p_deleted_at="timestamp with time zone", p_keep="jsonb", p_job_id="bigint", p_worker="text",
             p_inbox_id="bigint", p_observed_at="timestamp with time zone")
_UPSERT = sql("upsert_synced", "jsonb", p_table="text", p_rows="jsonb", p_job_id="bigint", p_worker="text",
              p_keep="text[]")
_MARK_DELETED = sql("mark_synced_deleted", "integer", p_table="text", p_store_id="uuid", p_ids="text[]",
                    p_deleted_at="timestamp with time zone", p_job_id="bigint", p_worker="text")
_LIST_IDS = sql("list_synced_ids", "text[]", p_table="text", p_store_id="uuid", p_after="text", p_limit="integer")


async def apply_synced_changes(db: Database, *, store_id: UUID | str,
                               writes: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                               deletes: Mapping[str, Sequence[str]] | None = None,
                               deleted_at: datetime | None = None,
                               keep: Mapping[str, Sequence[str]] | None = None, job_id: int | None = None,
                               worker: str | None = None, inbox_id: int | None = None,
                               observed_at: datetime | None = None) -> dict[str, Any]:
    """Guarded upserts and soft deletes of one change in one transaction (with ``inbox_id``, the inbox row
    is marked processed in it too). ``observed_at``: when the platform's state in these rows was observed
    (a webhook's event time; a fetch's time), which orders two versions of the same updated_at second.
    Tables without rows or ids are left out."""
    return dict(await _APPLY(
        db, p_store_id=store_id,
        p_writes={t: [dict(r) for r in rows] for t, rows in (writes or {}).items() if rows},
        p_deletes={t: list(ids) for t, ids in (deletes or {}).items() if ids},
        p_deleted_at=deleted_at, p_keep={t: list(c) for t, c in (keep or {}).items()}, p_job_id=job_id,
        p_worker=worker, p_inbox_id=inbox_id, p_observed_at=observed_at) or {})


async def upsert_synced(db: Database, *, table: str, rows: Sequence[Mapping[str, Any]], job_id: int | None = None,
                        worker: str | None = None, keep: Sequence[str] = ()) -> dict[str, int]:
    """``inserted`` / ``updated`` / ``skipped`` (the supabase path's batch write)."""
    result = await _UPSERT(db, p_table=table, p_rows=[dict(r) for r in rows], p_job_id=job_id, p_worker=worker,
                           p_keep=list(keep) or None)
    return {k: int(v) for k, v in (result or {}).items()}


async def mark_synced_deleted(db: Database, *, table: str, store_id: UUID, ids: Sequence[str],
                              job_id: int | None = None, worker: str | None = None) -> int:
    return int(await _MARK_DELETED(db, p_table=table, p_store_id=store_id, p_ids=list(ids), p_job_id=job_id,
                                   p_worker=worker))


async def list_synced_ids(db: Database, *, table: str, store_id: UUID, after: str | None, limit: int) -> list[str]:
    """Live ids of a reconciled table, in id order, after ``after``."""
    return [str(i) for i in await _LIST_IDS(db, p_table=table, p_store_id=store_id, p_after=after,
                                            p_limit=limit) or []]
