"""Selection-set projection and Shopify-style query cost.

Resolvers build *full* node dicts (every field the sandbox models; nested connections and
argument-dependent fields as ``LazyConnection``/``LazyValue``). ``Projector`` cuts them down to what the
request selected, honouring aliases, fragments, ``__typename`` and nested arguments. A selected field
the sandbox does not model answers ``null`` and is listed in ``extensions.sandbox.unknownFields`` rather
than failing the request — the client stays usable when it asks for a field nobody modelled yet.

Cost follows Shopify's published rules roughly: scalars and enums 0, objects 1, a connection
``2 + first × (cost of one node)``, a mutation 10 plus its selection; the actual cost recounts with the
number of nodes actually returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.shopify.gql import Document, Field, LazyConnection, LazyValue, collect_fields, resolve_arguments

__all__ = ["CONNECTION_FIELDS", "FieldError", "Projector", "actual_cost", "merge_objects", "node_fields",
           "requested_cost"]

# Fields that are connections even when the request omits ``first`` (it must not, but cost it anyway).
CONNECTION_FIELDS = frozenset({
    "products", "customers", "orders", "locations", "variants", "lineItems", "inventoryLevels",
    "webhookSubscriptions", "bulkOperations", "productVariants", "inventoryItems", "metafields", "media",
    "images", "collections", "addressesV2", "fulfillmentOrders",
})
MUTATION_COST = 10


class FieldError(Exception):
    """An error for one field (GraphQL ``errors[]`` entry); the field's top-level key becomes null."""

    def __init__(self, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra


def _is_connection(fld: Field, args: Mapping[str, Any]) -> bool:
    return fld.name in CONNECTION_FIELDS or "first" in args or "last" in args


class Projector:
    def __init__(self, doc: Document, variables: Mapping[str, Any]) -> None:
        self.doc = doc
        self.variables = variables
        self.unknown_fields: list[str] = []

    def fields(self, fld: Field, typename: str | None = None) -> list[Field]:
        return collect_fields(fld.selections, self.doc, self.variables, typename)

    def args(self, fld: Field) -> dict[str, Any]:
        return resolve_arguments(fld, self.variables)

    def value(self, value: Any, fld: Field) -> Any:
        """Project ``value`` (already resolved for ``fld``) onto ``fld``'s selection set."""
        if not fld.selections or value is None:
            return value
        if isinstance(value, list):
            return [self.value(v, fld) for v in value]
        if isinstance(value, dict):
            return self.object(value, fld)
        return value

    def object(self, obj: Mapping[str, Any], fld: Field) -> dict[str, Any]:
        typename = obj.get("__typename")
        out: dict[str, Any] = {}
        for sub in collect_fields(fld.selections, self.doc, self.variables, typename):
            if sub.name == "__typename":
                out[sub.key] = typename
                continue
            if sub.name not in obj:
                self.unknown_fields.append(f"{typename or 'Object'}.{sub.name}")
                out[sub.key] = None
                continue
            raw = self.resolve(obj[sub.name], sub)
            projected = self.value(raw, sub)
            if sub.key in out and isinstance(out[sub.key], dict) and isinstance(projected, dict):
                out[sub.key] = merge_objects(out[sub.key], projected)
            else:
                out[sub.key] = projected
        return out

    def resolve(self, raw: Any, fld: Field) -> Any:
        if isinstance(raw, LazyConnection):
            return raw.page(self.args(fld))
        if isinstance(raw, LazyValue):
            return raw.fn(self.args(fld))
        return raw


def merge_objects(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``b`` merged into a copy of ``a``, recursively (a field selected twice with different selections)."""
    out = dict(a)
    for k, v in b.items():
        if k in out and isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = merge_objects(out[k], v)
        else:
            out[k] = v
    return out


# --- cost ----------------------------------------------------------------------------------------------

def node_fields(proj: Projector, conn: Field) -> list[Field]:
    """The selections that apply to one node of a connection (under ``nodes`` or ``edges { node }``)."""
    out: list[Field] = []
    for sub in proj.fields(conn):
        if sub.name == "nodes":
            out.extend(proj.fields(sub))
        elif sub.name == "edges":
            for edge_field in proj.fields(sub):
                if edge_field.name == "node":
                    out.extend(proj.fields(edge_field))
    return out


def _field_cost(proj: Projector, fld: Field) -> int:
    if not fld.selections:
        return 0
    args = proj.args(fld)
    if _is_connection(fld, args):
        size = args.get("first") or args.get("last") or 0
        size = size if isinstance(size, int) else 0
        node = 1 + sum(_field_cost(proj, f) for f in node_fields(proj, fld))
        return 2 + size * node
    children = sum(_field_cost(proj, f) for f in proj.fields(fld))
    if fld.name == "nodes" and isinstance(args.get("ids"), list):
        return len(args["ids"]) * (1 + children)
    if fld.name == "pageInfo":
        return 0
    return 1 + children


def requested_cost(proj: Projector, top: list[Field], *, mutation: bool) -> int:
    total = sum(_field_cost(proj, f) for f in top)
    return total + MUTATION_COST if mutation else total


def _actual_field(proj: Projector, fld: Field, value: Any) -> int:
    if not fld.selections or value is None:
        return 0
    args = proj.args(fld)
    if _is_connection(fld, args) and isinstance(value, dict):
        nodes: list[Any] = []
        for sub in proj.fields(fld):
            if sub.name == "nodes" and isinstance(value.get(sub.key), list):
                nodes = value[sub.key]
                break
            if sub.name == "edges" and isinstance(value.get(sub.key), list):
                node_key = next((e.key for e in proj.fields(sub) if e.name == "node"), None)
                nodes = [edge.get(node_key) for edge in value[sub.key] if node_key and isinstance(edge, dict)]
                break
        per_node = node_fields(proj, fld)
        return 2 + sum(1 + _actual_children(proj, per_node, n) for n in nodes)
    if isinstance(value, list):
        return sum(1 + _actual_children(proj, proj.fields(fld), v) for v in value)
    if fld.name == "pageInfo":
        return 0
    return 1 + _actual_children(proj, proj.fields(fld), value)


def _actual_children(proj: Projector, fields: list[Field], value: Any) -> int:
    if not isinstance(value, dict):
        return 0
    return sum(_actual_field(proj, f, value.get(f.key)) for f in fields)


def actual_cost(proj: Projector, top: list[Field], data: Mapping[str, Any], *, mutation: bool) -> int:
    total = sum(_actual_field(proj, f, data.get(f.key)) for f in top)
    return total + MUTATION_COST if mutation else total
