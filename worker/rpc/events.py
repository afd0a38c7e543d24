"""Events (``sql/functions/12_events.sql``): facts worth telling people about. The SQL functions that
record a fact write its event themselves; this is for facts shopsync's processes find."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import sql

__all__ = ["record_event"]

_RECORD = sql("record_event", "bigint", p_store_id="uuid", p_type="text", p_subject="text", p_details="jsonb")


async def record_event(db: Database, *, store_id: UUID | str, type: str, subject: str | None = None,
                       details: Mapping[str, Any] | None = None) -> int:
    """The event's id. ``type`` must be in ``shopsync_private.event_types`` (22023 otherwise); ``details``
    carries ids, counts and reasons, never personal data."""
    return int(await _RECORD(db, p_store_id=store_id, p_type=type, p_subject=subject, p_details=dict(details or {})))
