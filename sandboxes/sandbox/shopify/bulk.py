"""The JSONL a bulk query operation writes: one object per line, as Shopify does.

Nested connections are flattened into their own lines with ``__parentId``; children always come *after* their
parent (how soon after is the writer's business, ``bulk_ops``). Slashes are escaped (``gid:\\/\\/shopify\\/…``)
as Shopify does. ``bulk_lines`` is the reference projection; ``RenderPlan`` is what the writer runs, compiled
once per operation, and must produce exactly the same lines; ``encode_lines`` turns them into bytes.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from sandbox.shopify.gql import Field, LazyConnection, LazyValue
from sandbox.shopify.nodes import ArgField, ConnField, NodeType, ObjField, TypedNode
from sandbox.shopify.project import Projector, merge_objects, node_fields

__all__ = ["RenderPlan", "bulk_lines", "encode_lines"]


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
