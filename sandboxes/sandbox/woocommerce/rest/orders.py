"""``/wc/v3/orders`` and ``/wc/v3/orders/{id}``: list, read, update, delete (trash first unless ``force``)."""

from __future__ import annotations

from typing import Any

import orjson

from sandbox.woocommerce.php import wp_error
from sandbox.woocommerce.rest.context import (
    CANNOT_DELETE,
    CANNOT_EDIT,
    CANNOT_LIST,
    CANNOT_VIEW,
    Ctx,
    RestResult,
    denied,
    error_result,
    value_error,
)
from sandbox.woocommerce.rest.items import Item, item_bytes
from sandbox.woocommerce.rest.listing import DateFilter, by_include, list_response, ordered, single
from sandbox.woocommerce.rest.params import COLLECTION, DATES, POST_ORDERBY, SINGLE, P, is_bool, validate
from sandbox.woocommerce.state import ORDER_STATUSES

__all__ = ["delete_order", "get_order", "list_orders", "update_order"]

ORDER_LIST = {
    **COLLECTION, **DATES,
    "order": P("enum", "desc", enum=("asc", "desc")),
    "orderby": P("enum", "date", enum=POST_ORDERBY),
    "parent": P("idlist", []), "parent_exclude": P("idlist", []),
    "status": P("enumlist", ["any"], enum=("any", "trash", *ORDER_STATUSES)),
    "customer": P("integer"),
    "product": P("integer"),
    "dp": P("integer", 2),
}
ORDER_WRITE = {"status": P("enum", None, enum=ORDER_STATUSES), "customer_note": P("string"),
               "customer_id": P("integer")}


def list_orders(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, ORDER_LIST)
    if err:
        return err
    if ctx.anon:
        return denied(*CANNOT_LIST)
    store, cat = ctx.store, ctx.store.catalog
    n = len(cat.o_ids)
    orderby = "date" if p["orderby"] == "include" and not p["include"] else p["orderby"]
    if orderby == "include":
        indexes = by_include([o for o in range(n) if int(cat.o_ids[o]) in p["include"]], p["include"],
                             lambda o: int(cat.o_ids[o]))
    else:
        def key(o: int) -> Any:
            if orderby in ("id", "title", "slug"):
                return cat.o_ids[o]
            if orderby == "modified":
                return (cat.o_modified[o], cat.o_ids[o])
            return (cat.o_created[o], cat.o_ids[o])

        indexes = ordered(store, "order", orderby, p["order"], key, n)
    dates = DateFilter(p, store.utc_offset_s)
    include, exclude = set(p["include"]), set(p["exclude"])
    statuses = set(p["status"])
    search = (p.get("search") or "").lower()
    customer = p.get("customer")
    product = p.get("product")
    if statuses == {"any"}:
        candidates: list[int] = store.sorted_indexes("order", f"visible:{orderby}:{p['order']}", lambda: [
            o for o in indexes if o not in cat.o_gone
            and cat.order_status(o) not in ("trash", "checkout-draft", "auto-draft")])
    else:
        wanted = statuses - {"any"}
        hidden = set() if "any" not in statuses else {"trash", "checkout-draft", "auto-draft"} - wanted
        candidates = [o for o in indexes if o not in cat.o_gone and (
            cat.order_status(o) in wanted or ("any" in statuses and cat.order_status(o) not in hidden))]
    if not (dates or include or exclude or customer is not None or product is not None or search):
        return list_response(ctx, candidates, p, "/wc/v3/orders", _order_item)
    items: list[int] = []
    for o in candidates:
        oid = int(cat.o_ids[o])
        if (include and oid not in include) or oid in exclude:
            continue
        if dates and not dates.ok(int(cat.o_created[o]), int(cat.o_modified[o])):
            continue
        if customer is not None or product is not None or search:
            full = orjson.loads(store.order_json(o))
            if customer is not None and int(full["customer_id"]) != customer:
                continue
            if product is not None and all(int(li["product_id"]) != product for li in full["line_items"]):
                continue
            b = full["billing"]
            # WooCommerce searches the billing and shipping address indexes (names, email, phone, ...) and the id
            haystack = f"{b['first_name']} {b['last_name']} {b['email']} {b.get('phone') or ''} {oid}"
            if search and search not in haystack.lower():
                continue
        items.append(o)
    return list_response(ctx, items, p, "/wc/v3/orders", _order_item)


def _order_item(o: int) -> Item:
    return ("o", o)


def _find_order(ctx: Ctx) -> Item | None:
    cat = ctx.store.catalog
    o = cat.o_index.get(ctx.id())
    return ("o", o) if o is not None and o not in cat.o_gone else None


def _order_invalid(status: int = 404) -> RestResult:
    return error_result(wp_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", status))


def get_order(ctx: Ctx) -> RestResult:
    _, err = validate(ctx.params, SINGLE)
    if err:
        return err
    item = _find_order(ctx)
    if ctx.anon and item is not None:
        return denied(*CANNOT_VIEW)
    if item is None:
        return _order_invalid()
    return single(ctx, item)


def update_order(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, ORDER_WRITE)
    if err:
        return err
    item = _find_order(ctx)
    if ctx.anon and item is not None:
        return denied(*CANNOT_EDIT)
    if item is None:
        return _order_invalid(400)
    fields = {k: p[k] for k in ("status", "customer_note") if p.get(k) is not None}
    for part in ("billing", "shipping"):
        value = ctx.params.get(part)
        if isinstance(value, dict):
            fields[part] = {str(k): str(v) for k, v in value.items()}
    try:
        ctx.store.update_order(ctx.id(), **fields)
    except ValueError as exc:
        return value_error(exc, "woocommerce_rest_invalid_order_data")
    return single(ctx, item)


def delete_order(ctx: Ctx) -> RestResult:
    force = is_bool(ctx.params.get("force", False)) or False
    item = _find_order(ctx)
    if ctx.anon and item is not None:
        return denied(*CANNOT_DELETE)
    if item is None:
        return _order_invalid()
    before = item_bytes(ctx.store, item)
    if not force and orjson.loads(before)["status"] == "trash":
        return error_result(wp_error("woocommerce_rest_already_trashed", "The shop_order has already been deleted.",
                                     410))
    ctx.store.delete_order(ctx.id(), force=force)
    return RestResult(200, before if force else item_bytes(ctx.store, item))
