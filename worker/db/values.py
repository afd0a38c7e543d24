"""Python values ↔ JSON, as they cross either database path.

Both paths send JSON: the supabase path every argument (PostgREST), the direct path json/jsonb arguments
(e.g. rows for ``upsert_synced``); decimals go as strings so no digit is lost. Results come back typed on
the direct path and as JSON (ISO strings) on the supabase path: ``as_datetime`` accepts both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import orjson

__all__ = ["as_datetime", "to_json"]


def to_json(value: Any) -> Any:
    """Turn an argument into JSON values PostgreSQL accepts for the declared SQL type."""
    if value is None or isinstance(value, bool | int | float | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, Enum):
        return to_json(value.value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds()} seconds"   # PostgreSQL interval input
    if isinstance(value, Decimal):
        return str(value)                             # exact; numeric input parses it
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()             # bytea hex format, as PostgREST expects
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if isinstance(value, orjson.Fragment):                 # JSON already serialized (a bulk line's raw)
        return orjson.loads(orjson.dumps(value))
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


def as_datetime(value: Any) -> datetime | None:
    """A timestamp column's value from either path (datetime, or ISO string from PostgREST)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
