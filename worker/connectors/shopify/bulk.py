"""Shopify bulk query operations: start, poll, stream the JSONL result.

- ``start`` runs ``bulkOperationRunQuery``. When Shopify answers that an operation is already running
  (``OPERATION_IN_PROGRESS`` before 2026-01, ``LIMIT_REACHED`` at five since), a running operation of
  ours with the same query is adopted (a previous attempt started it and died before saving its id);
  anything else goes back to the queue as ``RetryableError`` with a delay.
- ``wait`` polls ``bulkOperation(id:)`` until the operation ends.
- ``lines`` streams the result file with httpx (never loaded whole) and yields parsed lines, skipping the
  first ``skip`` (a resumed sync). A result URL that is gone (403 expired / 404) raises ``ResultGone``.
  the JSON parser undoes Shopify's escaped slashes (``gid:\\/\\/shopify\\/…``).
- ``ParentFacts`` keeps one small fact per parent (an order's ``updatedAt``) in two ``array('q')``s —
  children come after their parent but not next to it, so the fact must outlive the parent's line.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import re
import time
from array import array
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from worker.connectors.shopify import queries
from worker.connectors.shopify.graphql import ShopifyGraphQL
from worker.connectors.shopify.mapping import parse_time
from worker.errors import PermanentError, RetryableError
from worker.payloads import JsonRejected, load_json

__all__ = ["BulkOperation", "BulkRunner", "ParentFacts", "ResultGone", "gid_kind", "TERMINAL", "FAILED_STATES"]

log = logging.getLogger("shopsync.shopify.bulk")

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED", "EXPIRED"})
FAILED_STATES = frozenset({"FAILED", "CANCELED", "EXPIRED"})
_ACTIVE = frozenset({"CREATED", "RUNNING"})
_BUSY_CODES = frozenset({"OPERATION_IN_PROGRESS", "LIMIT_REACHED"})
_KIND = re.compile(r"^gid:(?:\\?/){2}shopify(?:\\?/)([A-Za-z]+)(?:\\?/)")


def gid_kind(value: Any) -> str | None:
    """``gid://shopify/ProductVariant/1`` → ``ProductVariant`` (escaped slashes too)."""
    if isinstance(value, str) and value.startswith("gid://shopify/"):     # once per JSONL line: skip the regex
        end = value.find("/", 14)
        if end > 14:
            return value[14:end]
    m = _KIND.match(value) if isinstance(value, str) else None
    return m.group(1) if m else None


class ResultGone(Exception):
    """The operation's result file cannot be downloaded any more (expired or deleted)."""


@dataclass(frozen=True)
class BulkOperation:
    id: str
    status: str
    url: str | None
    error_code: str | None
    created_at: datetime | None
    object_count: int
    query: str | None

    @classmethod
    def from_node(cls, node: dict[str, Any]) -> BulkOperation:
        count = node.get("objectCount")
        return cls(id=str(node["id"]), status=str(node.get("status") or ""), url=node.get("url") or None,
                   error_code=node.get("errorCode"), created_at=parse_time(node.get("createdAt")),
                   object_count=int(count) if count not in (None, "") else 0, query=node.get("query"))


def _same_query(a: str | None, b: str) -> bool:
    return a is not None and " ".join(a.split()) == " ".join(b.split())


class BulkRunner:
    """Bulk operations of one shop, through its GraphQL client; downloads use their own HTTP client."""

    def __init__(self, client: ShopifyGraphQL, http: httpx.AsyncClient, *, poll_interval: float = 1.0,
                 timeout: float = 6 * 3600.0, busy_retry_in: float = 60.0) -> None:
        self.client = client
        self.http = http
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.busy_retry_in = busy_retry_in

    async def start(self, query: str) -> BulkOperation:
        data = await self.client.query(queries.BULK_RUN, {"query": query})
        payload = data.get("bulkOperationRunQuery") or {}
        errors = payload.get("userErrors") or []
        op = payload.get("bulkOperation")
        if op and not errors:
            log.info("shopify %s: bulk operation %s started", self.client.shop, op.get("id"))
            return BulkOperation.from_node(op)
        codes = {str(e.get("code")) for e in errors if isinstance(e, dict)}
        if codes & _BUSY_CODES:
            current = await self.current()
            if current is not None and current.status in _ACTIVE and _same_query(current.query, query):
                log.info("shopify %s: adopting running bulk operation %s", self.client.shop, current.id)
                return current
            raise RetryableError(f"Shopify {self.client.shop}: another bulk operation is running",
                                 retry_in=self.busy_retry_in)
        text = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict)) or "no operation returned"
        raise PermanentError(f"Shopify {self.client.shop}: bulk operation refused: {text[:300]}")

    async def current(self) -> BulkOperation | None:
        node = (await self.client.query(queries.BULK_CURRENT)).get("currentBulkOperation")
        return BulkOperation.from_node(node) if node else None

    async def get(self, op_id: str) -> BulkOperation | None:
        node = (await self.client.query(queries.BULK_STATUS, {"id": op_id})).get("bulkOperation")
        return BulkOperation.from_node(node) if node else None

    async def wait(self, op_id: str) -> BulkOperation:
        """Poll until the operation ends; its final state (None-safe: a vanished op counts as EXPIRED)."""
        deadline = time.monotonic() + self.timeout
        while True:
            op = await self.get(op_id)
            if op is None:
                return BulkOperation(op_id, "EXPIRED", None, None, None, 0, None)
            if op.status in TERMINAL:
                return op
            if time.monotonic() > deadline:
                # the checkpoint keeps the id: the retried job goes on waiting for the same operation
                raise RetryableError(f"Shopify {self.client.shop}: bulk operation still {op.status.lower()}",
                                     retry_in=60.0)
            await asyncio.sleep(self.poll_interval)

    async def lines(self, url: str, skip: int = 0) -> AsyncIterator[tuple[int, dict[str, Any] | None, bytes]]:
        """Yield ``(line number, object, the line's bytes)`` for every line (1-based). Lines up to ``skip``
        yield ``None`` as the object unless they are parents (no ``__parentId``): a resumed reader still
        sees those."""
        number = 0
        try:
            async with self.http.stream("GET", url) as response:
                if response.status_code in (403, 404, 410):
                    raise ResultGone(f"HTTP {response.status_code}")
                if response.status_code >= 500:
                    raise RetryableError(f"bulk result download failed (HTTP {response.status_code})")
                if response.status_code != 200:
                    raise PermanentError(f"bulk result download failed (HTTP {response.status_code})")
                async for line in _jsonl_lines(response):
                    number += 1
                    if number <= skip and b'"__parentId"' in line:
                        yield number, None, line
                        continue
                    try:
                        obj = load_json(line)
                    except JsonRejected as exc:
                        raise RetryableError(f"bulk result line {number}: {exc} (truncated download?)") from None
                    if not isinstance(obj, dict):
                        raise PermanentError(f"bulk result line {number} is not an object")
                    yield number, obj, line
        except httpx.TransportError as exc:
            # the checkpoint holds the lines already written: the retried job resumes after them
            raise RetryableError(f"bulk result download interrupted ({type(exc).__name__})") from None


async def _jsonl_lines(response: httpx.Response) -> AsyncIterator[bytes]:
    """The non-blank lines of a JSONL body as bytes (without a CRLF's CR): split in C and handed to
    orjson as bytes, not decoded to text and split in Python first."""
    pending: list[bytes] = []       # the start of a line that continues in a later chunk
    async for chunk in response.aiter_bytes():
        parts = chunk.split(b"\n")
        if len(parts) == 1:
            pending.append(chunk)
            continue
        if pending:
            pending.append(parts[0])
            parts[0] = b"".join(pending)
            pending.clear()
        pending.append(parts.pop())
        for line in parts:
            if line.strip():
                yield line.rstrip(b"\r")
    rest = b"".join(pending).rstrip(b"\r")
    if rest.strip():
        yield rest


class ParentFacts:
    """parent legacy id → one int (e.g. updatedAt in µs), 16 bytes per parent.

    Parents arrive in ascending id order in practice, so lookups bisect two arrays; an out-of-order
    parent goes to a small dict instead.
    """

    MISSING = -(1 << 63)

    def __init__(self) -> None:
        self._ids = array("q")
        self._values = array("q")
        self._other: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._ids) + len(self._other)

    def put(self, parent_id: int, value: int | None) -> None:
        stored = self.MISSING if value is None else value
        if not self._ids or parent_id > self._ids[-1]:
            self._ids.append(parent_id)
            self._values.append(stored)
            return
        pos = bisect.bisect_left(self._ids, parent_id)
        if pos < len(self._ids) and self._ids[pos] == parent_id:
            self._values[pos] = stored
        else:
            self._other[parent_id] = stored

    def get(self, parent_id: int) -> int | None:
        pos = bisect.bisect_left(self._ids, parent_id)
        if pos < len(self._ids) and self._ids[pos] == parent_id:
            value = self._values[pos]
        else:
            value = self._other.get(parent_id, self.MISSING)
        return None if value == self.MISSING else value

    def __contains__(self, parent_id: object) -> bool:
        if not isinstance(parent_id, int):
            return False
        pos = bisect.bisect_left(self._ids, parent_id)
        return (pos < len(self._ids) and self._ids[pos] == parent_id) or parent_id in self._other
