"""Bulk query operations: ``bulkOperationRunQuery`` → CREATED → RUNNING → COMPLETED, JSONL result file.

A writer thread per operation streams the result to a temp file (never the whole export in memory) and
updates ``objectCount`` as it goes; the status turns COMPLETED once the file is written *and* the
configured minimum run time has passed, then a ``bulk_operations/finish`` webhook goes to the app.
The download URL is served by the sandbox (``/_sandbox/bulk/{key}.jsonl``) and streamed in chunks.

JSONL follows Shopify: one object per line, nested connections flattened into their own lines with
``__parentId``; children always come *after* their parent but — unless ``groupObjects: true`` — not
necessarily right after it (``interleave`` is the chance that a parent's children are held back and
released later; seeded, so runs repeat). Slashes are escaped (``gid:\\/\\/shopify\\/…``) as Shopify does.

Limits modelled: ≤ 5 connections, nested connections ≤ 2 levels below the root (lenient reading of
"maximum nesting depth of two levels" — unverified), ``node``/``nodes`` roots rejected; concurrent query
operations per app+shop: 1 before API 2026-01, 5 from 2026-01 (``concurrency`` overrides).

Faults: ``fail_next()`` makes the next operation end FAILED (with ``partialDataUrl``) or
``EXPIRED``/``CANCELED``; ``fail()``, ``expire()``, ``cancel()`` act on an existing one.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from itertools import accumulate, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sandbox.shopify.clock import format_gql, format_rest, now_us, version_at_least
from sandbox.shopify.gql import Field, GraphQLSyntaxError, LazyConnection, LazyValue, collect_fields, parse
from sandbox.shopify.nodes import ArgField, ConnField, NodeBuilder, NodeType, ObjField, TypedNode, gid
from sandbox.shopify.project import CONNECTION_FIELDS, Projector, merge_objects, node_fields
from sandbox.shopify.search import parse_search

if TYPE_CHECKING:
    from sandbox.shopify.state import Shop, ShopifySandbox

__all__ = ["BulkManager", "BulkOperation", "bulk_lines"]

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


def bulk_lines(proj: Projector, node: dict[str, Any], fields: list[Field],
               parent_id: str | None) -> list[dict[str, Any]]:
    """A node's own line followed by its descendants' lines (each after its own parent).

    The reference projection: the writer uses ``RenderPlan``, which must produce exactly these lines."""
    children: list[dict[str, Any]] = []
    line = _bulk_object(proj, node, fields, str(node.get("id")), children)
    if parent_id is not None:
        line["__parentId"] = parent_id
    return [line, *children]


def _bulk_object(proj: Projector, obj: dict[str, Any], fields: list[Field], owner: str,
                 children: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    typename = obj.get("__typename")
    for f in fields:
        if f.name == "__typename":
            out[f.key] = typename
            continue
        if f.name not in obj:
            proj.unknown_fields.append(f"{typename or 'Object'}.{f.name}")
            out[f.key] = None
            continue
        raw = obj[f.name]
        if isinstance(raw, LazyConnection):
            sub_fields = node_fields(proj, f)
            for child in raw.iterate():
                children.extend(bulk_lines(proj, child, sub_fields, owner))
            continue
        if isinstance(raw, LazyValue):
            out[f.key] = proj.value(raw.fn(proj.args(f)), f)
        elif isinstance(raw, dict) and f.selections:
            out[f.key] = _bulk_object(proj, raw, proj.fields(f, raw.get("__typename")), owner, children)
        elif isinstance(raw, list) and f.selections:
            out[f.key] = [_bulk_object(proj, r, proj.fields(f, r.get("__typename")), owner, children)
                          if isinstance(r, dict) else r for r in raw]
        else:
            out[f.key] = raw
    return out


_MISSING = object()


class _Step:
    """One selected field, compiled: its arguments resolved once, and the shapes of its sub-objects (per
    typename) and of its connection's nodes cached on it."""

    __slots__ = ("args", "field", "key", "name", "node_shape", "objects", "selected")

    def __init__(self, fld: Field, args: dict[str, Any]) -> None:
        self.field = fld
        self.name = fld.name
        self.key = fld.key
        self.selected = bool(fld.selections)
        self.args = args
        self.objects: dict[str | None, _Shape] = {}
        self.node_shape: _Shape | None = None


class _Shape:
    """The fields that apply to one kind of object, in order.

    ``flat`` lists (name, key) when every field is a plain lookup (no ``__typename``, no selection set,
    no key twice): such an object made only of exact scalars is copied without the per-field dispatch."""

    __slots__ = ("flat", "shared_keys", "steps", "typed")

    def __init__(self, steps: tuple[_Step, ...]) -> None:
        self.steps = steps
        self.shared_keys = len({s.key for s in steps}) < len(steps)
        simple = not self.shared_keys and all(s.name != "__typename" and not s.selected for s in steps)
        self.flat = tuple((s.name, s.key) for s in steps) if simple else None
        self.typed: dict[NodeType, tuple[_TypedStep, ...]] = {}


# How a typed node answers a step: a plain getter, an argument-taking field, a connection, an object, or
# nothing (a field the sandbox does not model).
_VALUE, _ARG, _CONN, _OBJ, _UNKNOWN = range(5)
_TypedStep = tuple[_Step, int, Any]


def _typed_steps(shape: _Shape, ntype: NodeType) -> tuple[_TypedStep, ...]:
    found = shape.typed.get(ntype)
    if found is None:
        steps: list[_TypedStep] = []
        for step in shape.steps:
            d = ntype.fields.get(step.name)
            if d is None:
                steps.append((step, _UNKNOWN, None))
            elif isinstance(d, ArgField):
                steps.append((step, _ARG, d.fn))
            elif isinstance(d, ConnField):
                steps.append((step, _CONN, d.nodes))
            elif isinstance(d, ObjField):
                steps.append((step, _OBJ, d.view))
            else:
                steps.append((step, _VALUE, d))
        found = shape.typed[ntype] = tuple(steps)
    return found


def _plain(value: Any) -> bool:
    """True if orjson encodes ``value`` byte-for-byte like ``json.dumps(ensure_ascii=False)``.

    Exact str/int/bool/None and lists/str-keyed dicts of them are; floats are not (``1e-07`` vs ``1e-7``,
    ``NaN`` vs ``null``), nor are subclasses or other types (orjson accepts some that json rejects)."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return True
    if t is list:
        return all(_plain(v) for v in value)
    if t is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    return False


class RenderPlan:
    """``bulk_lines`` compiled once per operation.

    A bulk query has no variables, so the fields that apply to an object (per selection and typename) and
    every field's arguments never change: they are worked out on first use and kept on ``_Step``s, where
    the per-node projection recomputed them for every object. Exact scalar types are copied before the
    generic ``isinstance`` dispatch, and objects of a flat shape are copied in one loop (which has no
    side effects, so falling back to the generic path when it meets anything else is safe). A typed node
    (``nodes.NodeType`` and its context) is rendered as its full dict would be, calling only the getters
    of the selected fields.

    Mirrors ``bulk_lines``/``_bulk_object`` for connection nodes and ``Projector.value``/``object`` for
    values of argument-taking fields, including unknown-field reporting and duplicate-key merging.
    ``plain`` stays True while every value put in a line is orjson-safe (see ``_plain``); the writer
    falls back to ``json.dumps`` for a node whose lines are not."""

    def __init__(self, proj: Projector, root: Field) -> None:
        self.proj = proj
        self.plain = True
        self.root_shape = self._shape(node_fields(proj, root))

    def _shape(self, fields: list[Field]) -> _Shape:
        return _Shape(tuple(_Step(f, self.proj.args(f)) for f in fields))

    def _node_shape(self, step: _Step) -> _Shape:
        if step.node_shape is None:
            step.node_shape = self._shape(node_fields(self.proj, step.field))
        return step.node_shape

    def _object_shape(self, step: _Step, typename: str | None) -> _Shape:
        shape = step.objects.get(typename)
        if shape is None:
            shape = step.objects[typename] = self._shape(self.proj.fields(step.field, typename))
        return shape

    def lines(self, node: dict[str, Any] | TypedNode) -> list[dict[str, Any]]:
        """``bulk_lines(node)`` for a root node (a dict or a typed node): its line, then its descendants'."""
        line: dict[str, Any] = {}
        out = [line]  # a line goes first, its descendants follow as it is filled
        if isinstance(node, tuple):
            ntype, ctx = node
            self._fill_typed(line, ntype, ctx, self.root_shape, ntype.owner_id(ctx), out)
        else:
            self._fill(line, node, self.root_shape.steps, str(node.get("id")), out)
        return out

    def _fill_typed(self, into: dict[str, Any], ntype: NodeType, ctx: Any, shape: _Shape, owner: str,
                    children: list[dict[str, Any]]) -> dict[str, Any]:
        """``_fill`` over ``ntype.node(ctx)``, calling only the getters of the selected fields."""
        for step, kind, fn in shape.typed.get(ntype) or _typed_steps(shape, ntype):
            if kind == _VALUE:
                raw = fn(ctx)
                t = type(raw)
                if t is str or t is int or raw is None or t is bool:
                    into[step.key] = raw
                elif step.name == "__typename":
                    into[step.key] = self._scalar(raw)
                else:
                    self._put(into, raw, step, owner, children)
            elif kind == _ARG:
                into[step.key] = self._value(fn(ctx, dict(step.args)), step)
            elif kind == _OBJ:
                view = fn(ctx)
                if view is None:
                    into[step.key] = None
                elif step.selected:
                    sub_type, sub_ctx = view
                    sub_shape = step.objects.get(sub_type.name) or self._object_shape(step, sub_type.name)
                    into[step.key] = self._fill_typed({}, sub_type, sub_ctx, sub_shape, owner, children)
                else:  # copied whole, as the full node would be
                    into[step.key] = self._scalar(view[0].node(view[1]))
            elif kind == _CONN:
                sub_shape = step.node_shape or self._node_shape(step)
                for sub_type, sub_ctx in fn(ctx):
                    line: dict[str, Any] = {}
                    children.append(line)
                    self._fill_typed(line, sub_type, sub_ctx, sub_shape, sub_type.owner_id(sub_ctx), children)
                    line["__parentId"] = owner
            else:
                self.proj.unknown_fields.append(f"{ntype.name}.{step.name}")
                into[step.key] = None
        return into

    def _fill(self, into: dict[str, Any], obj: dict[str, Any], steps: tuple[_Step, ...], owner: str,
              children: list[dict[str, Any]]) -> dict[str, Any]:
        """``_bulk_object`` writing into ``into``."""
        for step in steps:
            name = step.name
            raw = obj.get(name, _MISSING)
            t = type(raw)
            if t is str or t is int or raw is None or t is bool:
                into[step.key] = raw  # also ``__typename`` when the object has one
            elif name == "__typename":
                into[step.key] = self._scalar(obj.get("__typename"))
            elif raw is _MISSING:
                self.proj.unknown_fields.append(f"{obj.get('__typename') or 'Object'}.{name}")
                into[step.key] = None
            else:
                self._put(into, raw, step, owner, children)
        return into

    def _put(self, into: dict[str, Any], raw: Any, step: _Step, owner: str, children: list[dict[str, Any]]) -> None:
        """``_bulk_object`` for a value that is not an exact scalar."""
        t = type(raw)
        if t is dict and step.selected:
            into[step.key] = self._object(raw, step, owner, children)
        elif t is LazyValue:
            into[step.key] = self._value(raw.fn(dict(step.args)), step)
        elif t is LazyConnection:
            self._connection(raw, step, owner, children)
        else:
            value = self._other(raw, step, owner, children)
            if value is not _MISSING:  # a connection adds lines, not a key
                into[step.key] = value

    def _connection(self, conn: LazyConnection, step: _Step, owner: str, children: list[dict[str, Any]]) -> None:
        steps = (step.node_shape or self._node_shape(step)).steps
        fill = self._fill
        for child in conn.iterate():
            line: dict[str, Any] = {}
            children.append(line)
            fill(line, child, steps, str(child.get("id")), children)
            line["__parentId"] = owner

    def _object(self, obj: dict[str, Any], step: _Step, owner: str, children: list[dict[str, Any]]) -> dict[str, Any]:
        typename = obj.get("__typename")
        shape = step.objects.get(typename) or self._object_shape(step, typename)
        if shape.flat is not None:
            out: dict[str, Any] = {}
            for name, key in shape.flat:  # no side effects: giving up half-way is safe
                raw = obj.get(name, _MISSING)
                t = type(raw)
                if t is str or t is int or raw is None or t is bool:
                    out[key] = raw
                else:
                    break
            else:
                return out
        return self._fill({}, obj, shape.steps, owner, children)

    def _other(self, raw: Any, step: _Step, owner: str, children: list[dict[str, Any]]) -> Any:
        """The rest of ``_bulk_object``'s dispatch, in its order (subclasses, lists, unselected objects)."""
        if isinstance(raw, LazyConnection):
            self._connection(raw, step, owner, children)
            return _MISSING
        if isinstance(raw, LazyValue):
            return self._value(raw.fn(dict(step.args)), step)
        if isinstance(raw, dict) and step.selected:
            return self._object(raw, step, owner, children)
        if isinstance(raw, list) and step.selected:
            return [self._object(r, step, owner, children) if isinstance(r, dict) else self._scalar(r) for r in raw]
        return self._scalar(raw)

    def _scalar(self, value: Any) -> Any:
        if self.plain and not _plain(value):
            self.plain = False
        return value

    # ``Projector.value`` / ``Projector.object`` with the cached shapes and arguments
    def _value(self, value: Any, step: _Step) -> Any:
        t = type(value)
        if t is str or t is int or value is None or t is bool:
            return value
        if not step.selected:
            return self._scalar(value)
        if isinstance(value, list):
            return [self._projected(v, step) if isinstance(v, dict) else self._value(v, step) for v in value]
        if isinstance(value, dict):
            return self._projected(value, step)
        return self._scalar(value)

    def _projected(self, obj: dict[str, Any], step: _Step) -> dict[str, Any]:
        typename = obj.get("__typename")
        shape = step.objects.get(typename) or self._object_shape(step, typename)
        out: dict[str, Any] = {}
        if shape.flat is not None:
            for name, key in shape.flat:  # no side effects: giving up half-way is safe
                raw = obj.get(name, _MISSING)
                t = type(raw)
                if t is str or t is int or raw is None or t is bool:
                    out[key] = raw
                else:
                    out = {}
                    break
            else:
                return out
        shared_keys = shape.shared_keys
        for sub in shape.steps:
            name, key = sub.name, sub.key
            if name == "__typename":
                projected = self._scalar(typename)
            else:
                raw = obj.get(name, _MISSING)
                t = type(raw)
                if not sub.selected and (t is str or t is int or raw is None or t is bool):
                    projected = raw
                elif raw is _MISSING:
                    self.proj.unknown_fields.append(f"{typename or 'Object'}.{name}")
                    projected = None
                else:
                    if isinstance(raw, LazyConnection):
                        raw = raw.page(dict(sub.args))
                    elif isinstance(raw, LazyValue):
                        raw = raw.fn(dict(sub.args))
                    projected = self._value(raw, sub)
            if shared_keys and key in out and isinstance(out[key], dict) and isinstance(projected, dict):
                out[key] = merge_objects(out[key], projected)
            else:
                out[key] = projected
        return out


def encode_lines(lines: list[dict[str, Any]], plain: bool) -> list[bytes]:
    """JSONL lines as Shopify writes them: compact, UTF-8, ``/`` escaped as ``\\/``, newline-terminated.

    Byte-identical to ``json.dumps(line, ensure_ascii=False, separators=(",", ":"))``; orjson does the
    work when every value is ``_plain`` (it raises, and json takes over, for >64-bit ints and surrogates)."""
    if plain:
        try:
            return [orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE).replace(b"/", b"\\/") for line in lines]
        except orjson.JSONEncodeError:
            pass
    return [(json.dumps(line, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/") + "\n").encode()
            for line in lines]


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
        table = catalog.tables[{"products": "product", "customers": "customer", "orders": "order"}[root]]
        flt = parse_search(args.get("query"), version, equality_fields=frozenset({"status"}))
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
