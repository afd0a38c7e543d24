"""``productVariants(first:, query:)``: variants across products, for matching across stores by SKU or barcode.

Search terms: ``sku:`` (exact match, case-insensitive; several variants may share a SKU and all are returned),
``barcode:`` (exact), ``product_id:`` and ``id:`` (numeric comparisons as elsewhere). Other terms are ignored with
a warning in ``extensions.search``. Sorted by ID (``reverse`` honoured; other sort keys fall back to ID with a note).
A ``sku:`` search reads only the candidate variants (``Catalog.variants_with_sku``), so it stays cheap on a large
catalog; a ``barcode:`` search or no filter walks every variant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sandbox.shopify.dataset import MAX_CHILDREN, VARIANT_BASE
from sandbox.shopify.gql import Field
from sandbox.shopify.nodes import list_connection
from sandbox.shopify.project import FieldError, Projector
from sandbox.shopify.search import Term, parse_terms

if TYPE_CHECKING:
    from sandbox.shopify.resolver import RequestContext

__all__ = ["product_variants"]

SCOPE_DOCS = "https://shopify.dev/api/usage/access-scopes"
Key = tuple[int, int]


def _variant_id(key: Key) -> int:
    return VARIANT_BASE + key[0] * MAX_CHILDREN + key[1]


def _numeric(term: Term) -> tuple[int | None, int | None] | None:
    try:
        num = int(term.value.rsplit("/", 1)[-1])
    except ValueError:
        return None
    return {":": (num, num + 1), ">": (num + 1, None), ">=": (num, None), "<": (None, num),
            "<=": (None, num + 1)}[term.op]


def _all(ctx: RequestContext) -> Iterable[Key]:
    catalog = ctx.shop.catalog
    return ((i, k) for i in range(catalog.products.count) if catalog.products.alive(i)
            for k in range(catalog.variant_count(i)))


def product_variants(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    if not any(s in ctx.scopes for s in ("read_products", "write_products")):
        raise FieldError("Access denied for productVariants field. Required access: `read_products` access scope.",
                         "ACCESS_DENIED", documentation=SCOPE_DOCS, requiredAccess="`read_products` access scope.")
    catalog = ctx.shop.catalog
    query = args.get("query")
    terms, warnings = parse_terms(query) if isinstance(query, str) else ([], [])
    skus = [t.value for t in terms if t.field == "sku" and t.op == ":"]
    products = [b for t in terms if t.field == "product_id" and t.op == ":" and (b := _numeric(t)) is not None]
    candidates: Iterable[Key] = _all(ctx)
    if skus:
        candidates = catalog.variants_with_sku(skus[0])
    elif products and products[0][0] is not None:
        i = catalog.products.live_index(products[0][0])
        candidates = [(i, k) for k in range(catalog.variant_count(i))] if i is not None else []
    checks: list[Callable[[Key], bool]] = []
    for term in terms:
        if term.field in ("sku", "barcode") and term.op == ":":
            def same(key: Key, name: str = term.field, want: str = term.value.lower()) -> bool:
                return str(catalog.variant(*key)[name] or "").lower() == want
            checks.append(same)
        elif term.field in ("id", "product_id") and (bounds := _numeric(term)) is not None:
            def within(key: Key, b: tuple[int | None, int | None] = bounds, product: bool = term.field != "id") -> bool:
                value = catalog.products.legacy_id(key[0]) if product else _variant_id(key)
                return (b[0] is None or value >= b[0]) and (b[1] is None or value < b[1])
            checks.append(within)
        else:
            warnings.append(f"sandbox ignores search term {term.field}:{term.op}{term.value}")
    keys = [key for key in candidates if all(check(key) for check in checks)]
    keys.sort(key=_variant_id, reverse=bool(args.get("reverse")))
    if warnings:
        ctx.search.append({"path": [fld.key], "query": query, "warnings": [{"field": None, "message": w}
                                                                            for w in warnings]})
    if str(args.get("sortKey") or "ID") != "ID":
        ctx.notes.append(f"productVariants sortKey {args.get('sortKey')} is not modelled; sorted by ID")
    return list_connection(keys, lambda key: ctx.shop.nodes.variant(*key), _variant_id, args)
