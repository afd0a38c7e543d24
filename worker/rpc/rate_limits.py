"""Per-key request pacing shared by every worker (``sql/functions/55_rate_limits.sql``)."""

from __future__ import annotations

from worker.db.port import Database
from worker.rpc._function import sql

__all__ = ["defer_requests", "reserve_request_slot"]

_RESERVE = sql("reserve_request_slot", "double precision", p_key="text", p_per_second="double precision",
               p_burst="integer")
_DEFER = sql("defer_requests", "void", p_key="text", p_seconds="double precision")


async def reserve_request_slot(db: Database, *, key: str, per_second: float, burst: int = 1) -> float:
    """Seconds to wait before sending (the slot is reserved either way)."""
    return float(await _RESERVE(db, p_key=key, p_per_second=per_second, p_burst=burst))


async def defer_requests(db: Database, *, key: str, seconds: float) -> None:
    await _DEFER(db, p_key=key, p_seconds=seconds)
