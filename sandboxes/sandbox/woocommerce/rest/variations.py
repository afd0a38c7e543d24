"""Variations: one product's (``/wc/v3/products/{product_id}/variations[/{id}]``: list, read, update) and the
store-wide list ``/wc/v3/variations`` (WooCommerce 10.3+; ``rest_no_route`` before).
"""

from __future__ import annotations

import weakref
from typing import Any

from sandbox.woocommerce.dataset import MAX_VARIATIONS
from sandbox.woocommerce.php import wp_error
from sandbox.woocommerce.rest.context import (
    CANNOT_EDIT,
    CANNOT_LIST,
    CANNOT_VIEW,
    Ctx,
    RestResult,
    denied,
    error_result,
    no_route,
    value_error,
)
from sandbox.woocommerce.rest.items import Item, has_store_wide_variations
from sandbox.woocommerce.rest.listing import DateFilter, list_response, single
from sandbox.woocommerce.rest.params import COLLECTION, DATES, POST_ORDERBY, SINGLE, P, validate, write_fields
from sandbox.woocommerce.state import WooStore

__all__ = ["VARIATION_WRITE", "get_variation", "list_store_variations", "list_variations", "update_variation"]

VARIATION_LIST = {
    **COLLECTION, **DATES,
    "order": P("enum", "desc", enum=("asc", "desc")),
    "orderby": P("enum", "date", enum=POST_ORDERBY),
    "sku": P("string"),
    "status": P("enum", "any", enum=("any", "future", "trash", "draft", "pending", "private", "publish")),
    "stock_status": P("enum", None, enum=("instock", "outofstock", "onbackorder")),
}
VARIATION_WRITE = {
    "sku": P("string"), "regular_price": P("string"), "sale_price": P("string"), "description": P("string"),
    "status": P("enum", None, enum=("draft", "pending", "private", "publish")),
    "manage_stock": P("boolean"), "stock_quantity": P("integer"),
    "stock_status": P("enum", None, enum=("instock", "outofstock", "onbackorder")),
}


# --- one product's variations --------------------------------------------------------------------------------

def list_variations(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, VARIATION_LIST)
    if err:
        return err
    if ctx.anon:
        return denied(*CANNOT_LIST)
    cat = ctx.store.catalog
    i = cat.p_index.get(ctx.id("product_id"))
    items: list[Item] = []
    if i is not None and i not in cat.p_gone:
        ks = list(range(int(cat.p_nvar[i])))
        vid = int(cat.p_ids[i]) + 1
        orderby = p["orderby"]
        if orderby == "modified":
            ks.sort(key=lambda k: (cat.variation_modified(i, k), k))
        elif orderby == "include" and p["include"]:
            ks = [k for _, k in sorted((p["include"].index(vid + k), k) for k in ks if vid + k in p["include"])]
        elif orderby == "title":
            ks.sort(key=lambda k: str(cat.variation(i, k)["options"]))
        if orderby != "include" and p["order"] == "desc":
            ks.reverse()
        dates = DateFilter(p, ctx.store.utc_offset_s)
        skus = {s.strip() for s in (p.get("sku") or "").split(",") if s.strip()}
        for k in ks:
            if (p["include"] and vid + k not in p["include"]) or vid + k in p["exclude"]:
                continue
            if dates and not dates.ok(cat.variation_created(i, k), cat.variation_modified(i, k)):
                continue
            rec = cat.variation(i, k)
            if skus and rec["sku"] not in skus:
                continue
            if p["status"] != "any" and rec["status"] != p["status"]:
                continue
            items.append(("v", i, k))
    return list_response(ctx, items, p, f"/wc/v3/products/{ctx.id('product_id')}/variations")


def _find_variation(ctx: Ctx) -> Item | None:
    cat = ctx.store.catalog
    i = cat.p_index.get(ctx.id("product_id"))
    vk = cat.v_index.get(ctx.id())
    if i is None or vk is None or vk[0] != i or i in cat.p_gone:
        return None
    return ("v", *vk)


def _variation_invalid(status: int = 404) -> RestResult:
    return error_result(wp_error("woocommerce_rest_product_variation_invalid_id", "Invalid ID.", status))


def get_variation(ctx: Ctx) -> RestResult:
    _, err = validate(ctx.params, SINGLE)
    if err:
        return err
    item = _find_variation(ctx)
    if ctx.anon and item is not None:
        return denied(*CANNOT_VIEW)
    if item is None:
        return _variation_invalid()
    return single(ctx, item)


def update_variation(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, VARIATION_WRITE)
    if err:
        return err
    item = _find_variation(ctx)
    if ctx.anon and item is not None:
        return denied(*CANNOT_EDIT)
    if item is None:
        return _variation_invalid(400)
    fields = write_fields(p, ctx.params, tuple(VARIATION_WRITE))
    try:
        ctx.store.update_variation(ctx.id("product_id"), ctx.id(), **fields)
    except ValueError as exc:
        return value_error(exc, "woocommerce_rest_invalid_product_data")
    return single(ctx, item)


# --- every variation of the store ----------------------------------------------------------------------------
# The items are the per-product ones re-linked (sandbox.woocommerce.rest.items, key "vw").

_K_BITS = 6  # a list entry is (i << _K_BITS) | k: one int per variation keeps the cached orders compact
assert MAX_VARIATIONS <= 1 << _K_BITS
_K_MASK = (1 << _K_BITS) - 1
# store -> (filter signature, matching codes): the last filtered store-wide list
_FILTERED: weakref.WeakKeyDictionary[WooStore, tuple[tuple[Any, ...], list[int]]] = weakref.WeakKeyDictionary()


def _store_wide_item(code: int) -> Item:
    return ("vw", code >> _K_BITS, code & _K_MASK)


def _all_variations(store: WooStore, orderby: str, order: str) -> list[int]:
    """Every variation of every product that is not gone, as codes, in one sort order (cached per data version)."""
    cat = store.catalog

    def vid(code: int) -> int:
        return int(cat.p_ids[code >> _K_BITS]) + 1 + (code & _K_MASK)

    def build() -> list[int]:
        if order == "desc":
            return list(reversed(_all_variations(store, orderby, "asc")))
        codes = [(i << _K_BITS) | k for i in range(len(cat.p_ids)) if cat.p_nvar[i] and i not in cat.p_gone
                 for k in range(int(cat.p_nvar[i]))]  # post IDs grow with i and k: this is ID order
        if orderby == "date":
            codes.sort(key=lambda c: (cat.variation_created(c >> _K_BITS, c & _K_MASK), vid(c)))
        elif orderby == "modified":
            codes.sort(key=lambda c: (cat.variation_modified(c >> _K_BITS, c & _K_MASK), vid(c)))
        elif orderby == "title":  # post_title of a variation: "Parent name - Option, Option"
            def title(c: int) -> tuple[str, int]:
                i, k = c >> _K_BITS, c & _K_MASK
                options = ", ".join(val for _, val in cat.variation(i, k)["options"])
                return (f"{cat.product(i)['name']} - {options}".lower(), vid(c))

            codes.sort(key=title)
        return codes  # id, slug (and include without a list): ID order

    return store.sorted_indexes("product", f"all-variations:{orderby}:{order}", build)


def list_store_variations(ctx: Ctx) -> RestResult:
    if not has_store_wide_variations(ctx.store):
        return no_route()  # registered from WooCommerce 10.3.0 on
    p, err = validate(ctx.params, VARIATION_LIST)
    if err:
        return err
    if ctx.anon:
        return denied(*CANNOT_LIST)
    store, cat = ctx.store, ctx.store.catalog
    include, exclude = p["include"], set(p["exclude"])
    if p["orderby"] == "include":
        # As for one product's variations: the include list's order, or ascending IDs without one.
        codes = _all_variations(store, "id", "asc")
        if include:
            pos = {object_id: n for n, object_id in enumerate(include)}
            with_pos = [(pos.get(int(cat.p_ids[c >> _K_BITS]) + 1 + (c & _K_MASK)), c) for c in codes]
            codes = [c for n, c in sorted((n, c) for n, c in with_pos if n is not None)]
    else:
        codes = _all_variations(store, p["orderby"], p["order"])
    dates = DateFilter(p, store.utc_offset_s)
    skus = {s.strip() for s in (p.get("sku") or "").split(",") if s.strip()}
    status = p["status"]
    if include or exclude or dates or skus or status != "any":
        # A sync pages through one filter (modified_after=...): filter once per data version, not per page.
        signature = (store.versions["product"], p["orderby"], p["order"], tuple(include), tuple(sorted(exclude)),
                     dates.shift, tuple(dates.bounds), tuple(sorted(skus)), status)
        memo = _FILTERED.get(store)
        if memo is not None and memo[0] == signature:
            return list_response(ctx, memo[1], p, "/wc/v3/variations", _store_wide_item)
        wanted = set(include)
        kept: list[int] = []
        for c in codes:
            i, k = c >> _K_BITS, c & _K_MASK
            vid = int(cat.p_ids[i]) + 1 + k
            if (wanted and vid not in wanted) or vid in exclude:
                continue
            if dates and not dates.ok(cat.variation_created(i, k), cat.variation_modified(i, k)):
                continue
            if skus or status != "any":
                rec = cat.variation(i, k)
                if (skus and rec["sku"] not in skus) or (status != "any" and rec["status"] != status):
                    continue
            kept.append(c)
        codes = kept
        _FILTERED[store] = (signature, codes)
    return list_response(ctx, codes, p, "/wc/v3/variations", _store_wide_item)
