"""Bulk query operations: ``bulkOperationRunQuery`` → CREATED → RUNNING → COMPLETED, JSONL result file.

A writer thread per operation streams the result to a temp file (never the whole export in memory) and
updates ``objectCount`` as it goes; the status turns COMPLETED once the file is written *and* the
configured minimum run time has passed, then a ``bulk_operations/finish`` webhook goes to the app.
The download URL is served by the sandbox (``/_sandbox/bulk/{key}.jsonl``) and streamed in chunks.

The lines are ``bulk``'s; unless ``groupObjects: true``, a parent's children come after it but not
necessarily right after it (``interleave`` is the chance that a parent's children are held back and
released later; seeded, so runs repeat).

Limits modelled: ≤ 5 connections, nested connections ≤ 2 levels below the root (lenient reading of
"maximum nesting depth of two levels" — unverified), ``node``/``nodes`` roots rejected; concurrent query
operations per app+shop: 1 before API 2026-01, 5 from 2026-01 (``concurrency`` overrides).

Faults: ``fail_next()`` makes the next operation end FAILED (with ``partialDataUrl``) or
``EXPIRED``/``CANCELED``; ``fail()``, ``expire()``, ``cancel()`` act on an existing one.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from itertools import accumulate, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.shopify.bulk import RenderPlan, encode_lines
from sandbox.shopify.clock import format_gql, format_rest, now_us, version_at_least
from sandbox.shopify.gql import Field, GraphQLSyntaxError, collect_fields, parse
from sandbox.shopify.nodes import NodeBuilder, TypedNode, gid
from sandbox.shopify.project import CONNECTION_FIELDS, Projector
from sandbox.shopify.search import search_filter

if TYPE_CHECKING:
    from sandbox.shopify.state import Shop, ShopifySandbox

__all__ = ["BulkManager", "BulkOperation"]

ROOTS = {"products": "read_products", "customers": "read_customers", "orders": "read_orders",
         "locations": "read_locations"}
ACTIVE = ("CREATED", "RUNNING", "CANCELING")
MAX_CONNECTIONS = 5
MAX_NESTED_DEPTH = 2
BATCH_NODES = 16  # root nodes rendered per lock hold: few lock round trips, HTTP handlers wait ≤ a few ms


@dataclass
class BulkOperation:
    id: int
    shop: str
    client_id: str
    query: str
    group_objects: bool
    version: str
    created_us: int
    started: float
    key: str
    path: Path
    type: str = "QUERY"
    status_override: str | None = None
    error_code: str | None = None
    completed_us: int | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int | None = None
    partial_size: int | None = None
    written: bool = False
    cancel_requested: bool = False
    forced: tuple[str, str | None] | None = None
    notified: bool = False
    lines_written: int = 0
    line_ends: list[int] = field(default_factory=list, repr=False)

    @property
    def gid(self) -> str:
        return gid("BulkOperation", self.id)


def _connections(proj: Projector, fld: Field, depth: int) -> tuple[int, int]:
    """(number of connections, deepest nesting) under ``fld`` (itself a connection at ``depth``)."""
    count, deepest = 0, depth
    stack: list[tuple[Field, int]] = [(f, depth) for f in proj.fields(fld)]
    while stack:
        f, d = stack.pop()
        if f.name in CONNECTION_FIELDS:
            count += 1
            deepest = max(deepest, d + 1)
            stack.extend((g, d + 1) for g in proj.fields(f))
        else:
            stack.extend((g, d) for g in proj.fields(f))
    return count, deepest


class _Sink:
    """Buffered JSONL output of newline-terminated lines, counted and offset-tracked per line."""

    __slots__ = ("buf", "fh", "op", "pos")

    def __init__(self, fh: Any, op: BulkOperation) -> None:
        self.fh = fh
        self.op = op
        self.pos = 0
        self.buf: list[bytes] = []

    def put(self, lines: list[bytes]) -> None:
        if not lines:
            return
        op = self.op
        self.buf.extend(lines)
        op.line_ends.extend(islice(accumulate(map(len, lines), initial=self.pos), 1, None))
        self.pos = op.line_ends[-1]
        op.object_count += len(lines)
        op.lines_written += len(lines)

    def flush(self) -> None:
        if self.buf:
            self.fh.write(b"".join(self.buf))
            self.buf.clear()


class BulkManager:
    def __init__(self, sandbox: ShopifySandbox, *, created_delay: float, run_seconds: float,
                 concurrency: int | None, interleave: float) -> None:
        self.sandbox = sandbox
        self.created_delay = created_delay
        self.run_seconds = run_seconds
        self.concurrency = concurrency
        self.interleave = interleave
        self.ops: dict[int, BulkOperation] = {}
        self.next_outcomes: list[tuple[str, str | None]] = []
        self._next_id = 4_200_000_000
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- faults ----------------------------------------------------------------------------------------

    def fail_next(self, status: str = "FAILED", error_code: str | None = "INTERNAL_SERVER_ERROR") -> None:
        """The next created operation ends ``status`` (FAILED / EXPIRED / CANCELED) instead of COMPLETED."""
        with self.sandbox.lock:
            self.next_outcomes.append((status, error_code if status == "FAILED" else None))

    def fail(self, op_id: int | str, error_code: str = "INTERNAL_SERVER_ERROR") -> None:
        with self.sandbox.lock:
            op = self._op(op_id)
            op.forced = ("FAILED", error_code)
            if op.written:
                self._settle(op)

    def expire(self, op_id: int | str) -> None:
        """The result URL expired (Shopify: 7 days after completion)."""
        with self.sandbox.lock:
            op = self._op(op_id)
            self.status(op)
            op.status_override = "EXPIRED"

    def _op(self, op_id: int | str) -> BulkOperation:
        if isinstance(op_id, str):
            op_id = int(op_id.rsplit("/", 1)[-1])
        return self.ops[op_id]

    # --- lifecycle -------------------------------------------------------------------------------------

    def create(self, shop: Shop, client_id: str, scopes: tuple[str, ...], query: str, group_objects: bool,
               version: str) -> tuple[BulkOperation | None, list[dict[str, Any]]]:
        def user_error(message: str, code: str = "INVALID") -> tuple[None, list[dict[str, Any]]]:
            return None, [{"__typename": "BulkOperationUserError", "field": ["query"], "message": message,
                           "code": code}]

        try:
            doc = parse(query)
            op_def = doc.operation(None)
        except GraphQLSyntaxError as exc:
            return user_error(f"Invalid bulk query: {exc.message}")
        if op_def.kind != "query":
            return user_error("Bulk operations only support queries.")
        proj = Projector(doc, {})
        top = collect_fields(op_def.selections, doc, {}, None)
        roots = [f for f in top if f.name != "__typename"]
        if len(roots) != 1:
            return user_error("Bulk queries must contain exactly one top-level field.")
        root = roots[0]
        if root.name in ("node", "nodes"):
            return user_error("The top-level `node` and `nodes` fields are not supported in bulk queries.")
        if root.name not in ROOTS:
            return user_error("Bulk queries must contain at least one connection.")
        count, depth = _connections(proj, root, 1)
        if count + 1 > MAX_CONNECTIONS:
            return user_error(f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections.")
        if depth - 1 > MAX_NESTED_DEPTH:
            return user_error(f"Bulk queries cannot contain connections nested more than {MAX_NESTED_DEPTH} "
                              "levels deep.")
        with self.sandbox.lock:
            limit = self.concurrency or (5 if version_at_least(version, "2026-01") else 1)
            running = [op for op in self.ops.values() if op.shop == shop.domain and op.client_id == client_id
                       and op.type == "QUERY" and self.status(op) in ACTIVE]
            if len(running) >= limit:
                if limit == 1:
                    return user_error("A bulk query operation for this app and shop is already in progress: "
                                      f"{running[0].gid}.", "OPERATION_IN_PROGRESS")
                return user_error("Bulk operations limit reached. Please try again later.", "LIMIT_REACHED")
            self._next_id += 1
            op = BulkOperation(self._next_id, shop.domain, client_id, query, group_objects, version, now_us(),
                               time.monotonic(), secrets.token_urlsafe(24),
                               self.sandbox.tmp_dir / f"bulk-{self._next_id}.jsonl")
            if self.next_outcomes:
                op.forced = self.next_outcomes.pop(0)
            self.ops[op.id] = op
            self.sandbox.count("bulk_operations")
        if ROOTS[root.name] not in scopes and ROOTS[root.name].replace("read_", "write_") not in scopes:
            op.forced = ("FAILED", "ACCESS_DENIED")
            root_kind = None
        else:
            root_kind = root.name
        thread = threading.Thread(target=self._write, args=(op, shop, proj, root, root_kind, scopes),
                                  name=f"bulk-{op.id}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return op, []

    def _indexes(self, shop: Shop, root: str, args: dict[str, Any], version: str,
                 scopes: tuple[str, ...]) -> list[int]:
        catalog = shop.catalog
        if root == "locations":
            return list(range(len(catalog.locations)))
        kind = {"products": "product", "customers": "customer", "orders": "order"}[root]
        flt = search_filter(kind, args.get("query"), version)
        table = catalog.tables[kind]
        visible = self.sandbox.order_visible(shop, scopes) if root == "orders" else None
        return list(catalog.iterate(table, flt, visible))

    @staticmethod
    def _node(builder: NodeBuilder, root: str, i: int) -> dict[str, Any] | TypedNode:
        if root == "products":
            return builder.product_view(i)
        if root == "customers":
            return builder.customer(i)
        if root == "orders":
            return builder.order_view(i)
        return builder.location(i)

    def _write(self, op: BulkOperation, shop: Shop, proj: Projector, root: Field, root_kind: str | None,
               scopes: tuple[str, ...]) -> None:
        rng = random.Random((self.sandbox.seed << 24) ^ op.id)
        plan = RenderPlan(proj, root)
        builder = shop.nodes
        pending: list[bytes] = []  # children held back (interleaving), oldest first
        try:
            with self.sandbox.lock:
                indexes = self._indexes(shop, root_kind, proj.args(root), op.version, scopes) if root_kind else []
            with open(op.path, "wb") as fh:
                sink = _Sink(fh, op)
                for start in range(0, len(indexes), BATCH_NODES):
                    if self._halted(op):
                        break
                    # Each node is rendered whole under the lock (a consistent state); encoding and
                    # writing happen outside it.
                    rendered: list[tuple[list[dict[str, Any]], bool]] = []
                    with self.sandbox.lock:
                        for i in indexes[start:start + BATCH_NODES]:
                            plan.plain = True
                            lines = plan.lines(self._node(builder, str(root_kind), i))
                            rendered.append((lines, plan.plain))
                    for lines, plain in rendered:
                        if self._halted(op):
                            break
                        encoded = encode_lines(lines, plain)
                        op.root_object_count += 1
                        if op.group_objects:
                            sink.put(encoded)
                            continue
                        sink.put(encoded[:1])
                        pending.extend(encoded[1:])
                        release = len(pending) if rng.random() >= self.interleave else rng.randint(0, len(pending))
                        if release:
                            sink.put(pending[:release])
                            del pending[:release]
                    sink.flush()
                sink.put(pending)
                sink.flush()
        except OSError as exc:  # disk trouble: surface as Shopify would, a failed operation
            op.forced = ("FAILED", "INTERNAL_SERVER_ERROR")
            self.sandbox.count("bulk_write_errors")
            _ = exc
        op.file_size = op.path.stat().st_size if op.path.exists() else 0
        op.written = True
        remaining = op.started + self.created_delay + self.run_seconds - time.monotonic()
        if remaining > 0 and not op.cancel_requested:
            self._stop.wait(remaining)
        with self.sandbox.lock:
            self._settle(op)

    def _halted(self, op: BulkOperation) -> bool:
        return self._stop.is_set() or op.cancel_requested or op.forced == ("FAILED", "ACCESS_DENIED")

    def _settle(self, op: BulkOperation) -> None:
        """Decide the terminal status once the file is written (idempotent; caller holds the lock)."""
        if op.status_override in ("COMPLETED", "FAILED", "CANCELED", "EXPIRED"):
            return
        if op.cancel_requested:
            op.status_override = "CANCELED"
        elif op.forced is not None:
            status, code = op.forced
            op.status_override = status
            op.error_code = code if status == "FAILED" else None
            if status == "FAILED" and op.line_ends:
                op.partial_size = op.line_ends[len(op.line_ends) // 2 - 1] if len(op.line_ends) > 1 else 0
            if status in ("EXPIRED",):
                op.completed_us = now_us()
        else:
            op.status_override = "COMPLETED"
            op.completed_us = now_us()
        self._notify(op)

    def _notify(self, op: BulkOperation) -> None:
        if op.notified:
            return
        op.notified = True
        shop = self.sandbox.shops.get(op.shop)
        if shop is None:
            return
        payload = {"admin_graphql_api_id": op.gid, "completed_at": format_rest(op.completed_us),
                   "created_at": format_rest(op.created_us),
                   "error_code": op.error_code.lower() if op.error_code else None,
                   "status": str(op.status_override).lower(), "type": op.type.lower()}
        deliveries = self.sandbox._deliveries(shop, "bulk_operations/finish", payload, only_app=op.client_id)
        self.sandbox.webhooks.enqueue(deliveries)

    def status(self, op: BulkOperation) -> str:
        if op.status_override is not None:
            return op.status_override
        elapsed = time.monotonic() - op.started
        if op.cancel_requested:
            return "CANCELING"
        if elapsed < self.created_delay:
            return "CREATED"
        if op.written and elapsed >= self.created_delay + self.run_seconds:
            self._settle(op)
            return str(op.status_override)
        return "RUNNING"

    def cancel(self, op: BulkOperation) -> list[dict[str, Any]]:
        status = self.status(op)
        if status not in ("CREATED", "RUNNING"):
            return [{"__typename": "UserError", "field": ["id"],
                     "message": f"A bulk operation cannot be canceled when it is {status.lower()}"}]
        op.cancel_requested = True
        if op.written:
            self._settle(op)
        return []

    def current(self, shop: str, client_id: str, op_type: str = "QUERY") -> BulkOperation | None:
        mine = [op for op in self.ops.values() if op.shop == shop and op.client_id == client_id and op.type == op_type]
        return max(mine, key=lambda op: op.id) if mine else None

    def by_key(self, key: str) -> BulkOperation | None:
        return next((op for op in self.ops.values() if op.key == key), None)

    def node(self, op: BulkOperation, base_url: str) -> dict[str, Any]:
        status = self.status(op)
        url = f"{base_url}/_sandbox/bulk/{op.key}.jsonl"
        has_file = status in ("COMPLETED", "EXPIRED") and op.written
        return {
            "__typename": "BulkOperation",
            "id": op.gid,
            "status": status,
            "type": op.type,
            "query": op.query,
            "errorCode": op.error_code,
            "createdAt": format_gql(op.created_us),
            "completedAt": format_gql(op.completed_us) if status == "COMPLETED" else None,
            # UnsignedInt64 is serialised as a string by the Admin API.
            "objectCount": str(op.object_count),
            "rootObjectCount": str(op.root_object_count),
            "fileSize": str(op.file_size) if has_file and op.file_size is not None else None,
            "url": url if has_file and op.object_count else None,
            "partialDataUrl": f"{url}?partial=1" if status == "FAILED" and op.partial_size else None,
        }

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        self._stop.clear()  # the sandbox can be served again
