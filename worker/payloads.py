"""JSON from outside — webhook bodies, API answers, bulk export lines — made safe to store, in one place.

- **NUL**: JSON allows ``\\u0000`` in strings and platforms send it, but PostgreSQL's ``jsonb`` and ``text``
  refuse it. Every NUL is stripped from every string (keys too) as the JSON is parsed, and counted: per
  process (``shopsync_nul_characters_stripped_total``) and per job (``counting()``, in a sync's result).
- **Depth**: nesting deeper than ``MAX_DEPTH`` is refused (``JsonRejected``). Platforms nest a few levels;
  a few hundred would pass the parser but break serializing it again (orjson stops at 254).
- **Shape**: ``shape_problem`` checks a body against the pydantic model of what a route needs (e.g. a
  webhook's ``id``), so a signed body of the wrong shape is a clear 400 at the edge, not a failure later.

The checks cost nothing for the usual body: NUL is looked for as bytes first (it can only arrive escaped),
and depth is only walked when the body has more brackets than ``MAX_DEPTH``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Annotated, Any

import orjson
from prometheus_client import REGISTRY
from pydantic import BaseModel, ConfigDict, StrictInt, StringConstraints, TypeAdapter, ValidationError

from worker.metrics import NUL_STRIPPED

__all__ = ["MAX_DEPTH", "JsonRejected", "PlatformId", "Record", "Shape", "counting", "load_json", "load_json_object",
           "shape_problem", "stripped_total"]

MAX_DEPTH = 64
_ESCAPED_NUL = b"\\u0000"
_job_count: ContextVar[list[int] | None] = ContextVar("shopsync_nul_count", default=None)


class JsonRejected(ValueError):
    """Not JSON we accept; the message says why and is safe to answer with (it holds no content)."""


def load_json(raw: bytes | str) -> Any:
    """Parse ``raw``: NUL stripped from every string, nesting at most ``MAX_DEPTH`` (else JsonRejected)."""
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise JsonRejected("the body is not valid JSON") from None
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise JsonRejected(f"the JSON is nested deeper than {MAX_DEPTH} levels")
    if _ESCAPED_NUL in data:
        removed = [0]
        value = _strip(value, removed)
        if removed[0]:
            _count(removed[0])
    return value


def load_json_object(raw: bytes | str) -> dict[str, Any]:
    """``load_json`` for a body that must be a JSON object."""
    value = load_json(raw)
    if not isinstance(value, dict):
        raise JsonRejected("the body must be a JSON object")
    return value


class Shape(BaseModel):
    """Base of edge models: only the fields a route relies on are declared; the rest passes untouched."""

    model_config = ConfigDict(extra="allow")


# a platform's record id: a number, or a short string (numeric text, a GraphQL gid, a base64 id)
PlatformId = StrictInt | Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Record(Shape):
    """A body about one record: it must at least name it."""

    id: PlatformId


def shape_problem(adapter: TypeAdapter[Any], value: Any, what: str) -> str | None:
    """None when ``value`` fits ``adapter``'s model, else why not — field paths and reasons only, never the
    values sent (they may be personal data)."""
    try:
        adapter.validate_python(value)
    except ValidationError as exc:
        reasons = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:3]]
        return f"{what} does not have the expected shape ({'; '.join(reasons)})"
    return None


def stripped_total() -> int:
    """NULs this process has stripped (also ``shopsync_nul_characters_stripped_total`` on /metrics)."""
    return int(REGISTRY.get_sample_value("shopsync_nul_characters_stripped_total") or 0)


@contextlib.contextmanager
def counting() -> Iterator[list[int]]:
    """NULs stripped while this context runs (in this task and the tasks it starts): ``[n]``."""
    count = [0]
    token = _job_count.set(count)
    try:
        yield count
    finally:
        _job_count.reset(token)


def _count(n: int) -> None:
    NUL_STRIPPED.inc(n)
    job = _job_count.get()
    if job is not None:
        job[0] += n


def _depth(value: Any) -> int:
    """How deeply ``value`` nests (a scalar is 0), walked without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        if level > deepest:
            deepest = level
            if deepest > MAX_DEPTH:
                return deepest
        stack.extend((child, level) for child in children if isinstance(child, dict | list))
    return deepest


def _strip(value: Any, removed: list[int]) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            removed[0] += value.count("\x00")
            return value.replace("\x00", "")
        return value
    if isinstance(value, dict):
        return {_strip(k, removed): _strip(v, removed) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip(v, removed) for v in value]
    return value
