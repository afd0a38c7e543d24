"""What the CLI prints with ``--json``: one JSON document on stdout; datetimes in ISO 8601, UUIDs as
strings, whole numbers as numbers. Rows read over either database path (typed values on the direct path,
JSON from PostgREST on the supabase path) come out the same."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TextIO
from uuid import UUID

__all__ = ["jsonable", "print_json"]


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def print_json(document: Any, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(jsonable(document), indent=2, ensure_ascii=False) + "\n")
    out.flush()
