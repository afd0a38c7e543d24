"""``/wc/v3/products`` and ``/wc/v3/products/{id}``: list, read, create, update, delete.

A single-product route also answers for a variation ID (WooCommerce's product controller loads any product
post), and a SKU search lists matching variations too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from sandbox.woocommerce.php import wp_error
from sandbox.woocommerce.rest.context import (
    CANNOT_CREATE,
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
from sandbox.woocommerce.rest.params import (
    COLLECTION,
    DATES,
    POST_ORDERBY,
    SINGLE,
    P,
    is_bool,
    str_list,
    validate,
    write_fields,
)
from sandbox.woocommerce.rest.variations import VARIATION_WRITE
from sandbox.woocommerce.state import WooStore

__all__ = ["create_product", "delete_product", "get_product", "list_products", "update_product"]

PRODUCT_LIST = {
    **COLLECTION, **DATES,
    "order": P("enum", "desc", enum=("asc", "desc")),
    "orderby": P("enum", "date", enum=(*POST_ORDERBY, "price", "popularity", "rating")),
    "parent": P("idlist", []), "parent_exclude": P("idlist", []),
    "slug": P("string"),
    "status": P("enum", "any", enum=("any", "future", "trash", "draft", "pending", "private", "publish")),
    "type": P("enum", None, enum=("simple", "grouped", "external", "variable")),
    "sku": P("string"),
    "featured": P("boolean"),
    "category": P("string"),
    "tag": P("string"),
    "stock_status": P("enum", None, enum=("instock", "outofstock", "onbackorder")),
    "on_sale": P("boolean"),
}
PRODUCT_WRITE = {
    "name": P("string"), "slug": P("string"), "sku": P("string"), "regular_price": P("string"),
    "sale_price": P("string"), "description": P("string"), "short_description": P("string"),
    "status": P("enum", None, enum=("draft", "pending", "private", "publish", "future")),
    "type": P("enum", None, enum=("simple", "grouped", "external", "variable")),
    "manage_stock": P("boolean"), "stock_quantity": P("integer"), "featured": P("boolean"),
    "stock_status": P("enum", None, enum=("instock", "outofstock", "onbackorder")),
}


def _product_sort_key(store: WooStore, orderby: str) -> Callable[[int], Any]:
    cat = store.catalog
    if orderby == "id":
        return lambda i: cat.p_ids[i]
    if orderby == "modified":
        return lambda i: (cat.p_modified[i], cat.p_ids[i])
    if orderby == "title":
        return lambda i: (str(cat.product(i)["name"]).lower(), cat.p_ids[i])
    if orderby == "slug":
        return lambda i: str(cat.product(i)["slug"])
    if orderby == "price":
        return lambda i: (float(store.res.product(i)["price"] or 0), cat.p_ids[i])
    if orderby == "popularity":
        return lambda i: (int(cat.product(i)["total_sales"]), cat.p_ids[i])
    return lambda i: (cat.p_created[i], cat.p_ids[i])


def list_products(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, PRODUCT_LIST)
    if err:
        return err
    if ctx.anon:
        return denied(*CANNOT_LIST)
    store, cat = ctx.store, ctx.store.catalog
    n = len(cat.p_ids)
    orderby = "date" if p["orderby"] in ("include", "rating") and not p["include"] else p["orderby"]
    if orderby == "include":
        indexes = by_include([i for i in range(n) if int(cat.p_ids[i]) in p["include"]], p["include"],
                             lambda i: int(cat.p_ids[i]))
    else:
        indexes = ordered(store, "product", orderby, p["order"], _product_sort_key(store, orderby), n)
    dates = DateFilter(p, store.utc_offset_s)
    include, exclude = set(p["include"]), set(p["exclude"])
    status = p["status"]
    search = (p.get("search") or "").lower()
    skus = {s.strip() for s in (p.get("sku") or "").split(",") if s.strip()}
    needs_record = bool(status != "any" or search or skus or p.get("slug") or p.get("type") or
                        p.get("featured") is not None or p.get("category") or p.get("tag") or
                        p.get("stock_status") or p.get("on_sale") is not None or
                        (p["parent"] and 0 not in p["parent"]))
    if not needs_record:
        # The common path (a sync paging through everything): a cached list of visible products.
        base = store.sorted_indexes("product", f"visible:{orderby}:{p['order']}", lambda: [
            i for i in indexes if i not in cat.p_gone and cat.product_status(i) not in ("trash", "auto-draft")])
        if not (dates or include or exclude):
            return list_response(ctx, base, p, "/wc/v3/products", _product_item)
        kept = [i for i in base if (not include or int(cat.p_ids[i]) in include) and int(cat.p_ids[i]) not in exclude
                and (not dates or dates.ok(int(cat.p_created[i]), int(cat.p_modified[i])))]
        return list_response(ctx, kept, p, "/wc/v3/products", _product_item)
    items: list[Item] = []
    for i in indexes:
        if i in cat.p_gone:
            continue
        pid = int(cat.p_ids[i])
        if (include and pid not in include) or pid in exclude:
            continue
        if dates and not dates.ok(int(cat.p_created[i]), int(cat.p_modified[i])):
            continue
        if p["parent"] and 0 not in p["parent"]:
            continue
        if not _product_matches(store, i, cat.product(i), p, status, search, skus):
            continue
        items.append(("p", i))
    if skus:  # a SKU search also finds variations (post_type product + product_variation)
        for vid, (i, k) in cat.v_index.items():
            if i in cat.p_gone or cat.variation(i, k)["sku"] not in skus:
                continue
            if (include and vid not in include) or vid in exclude:
                continue
            items.append(("pv", i, k))
    return list_response(ctx, items, p, "/wc/v3/products")


def _product_item(i: int) -> Item:
    return ("p", i)


def _product_matches(store: WooStore, i: int, rec: dict[str, Any], p: Mapping[str, Any], status: str, search: str,
                     skus: set[str]) -> bool:
    if status == "any":
        if rec["status"] in ("trash", "auto-draft"):
            return False
    elif rec["status"] != status:
        return False
    # WordPress splits the search into words and wants each one (in the title here; WordPress also reads content)
    if search and any(word not in str(rec["name"]).lower() for word in search.split()):
        return False
    if skus and rec["sku"] not in skus:
        return False
    if p.get("slug") and rec["slug"] != p["slug"]:
        return False
    if p.get("type") and rec["type"] != p["type"]:
        return False
    if p.get("featured") is not None and bool(rec["featured"]) != p["featured"]:
        return False
    if p.get("category") or p.get("tag") or p.get("stock_status") or p.get("on_sale") is not None:
        full = store.res.product(i)
        if p.get("category") and not {str(c["id"]) for c in full["categories"]} & set(str_list(p["category"])):
            return False
        if p.get("tag") and not {str(t["id"]) for t in full["tags"]} & set(str_list(p["tag"])):
            return False
        if p.get("stock_status") and full["stock_status"] != p["stock_status"]:
            return False
        if p.get("on_sale") is not None and bool(full["on_sale"]) != p["on_sale"]:
            return False
    return True


def _find_product(store: WooStore, object_id: int) -> Item | None:
    cat = store.catalog
    i = cat.p_index.get(object_id)
    if i is not None and i not in cat.p_gone:
        return ("p", i)
    vk = cat.v_index.get(object_id)
    if vk is not None and vk[0] not in cat.p_gone:
        return ("pv", *vk)
    return None


def _product_invalid() -> RestResult:
    return error_result(wp_error("woocommerce_rest_product_invalid_id", "Invalid ID.", 404))


def get_product(ctx: Ctx) -> RestResult:
    _, err = validate(ctx.params, SINGLE)
    if err:
        return err
    item = _find_product(ctx.store, ctx.id())
    if ctx.anon and item is not None:
        return denied(*CANNOT_VIEW)
    if item is None:
        return _product_invalid()
    return single(ctx, item)


def update_product(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, PRODUCT_WRITE)
    if err:
        return err
    item = _find_product(ctx.store, ctx.id())
    if ctx.anon and item is not None:
        return denied(*CANNOT_EDIT)
    if item is None:
        return error_result(wp_error("woocommerce_rest_product_invalid_id", "Invalid ID.", 400))
    fields = write_fields(p, ctx.params, ("name", "slug", "sku", "regular_price", "sale_price", "description",
                                          "short_description", "status", "manage_stock", "stock_quantity",
                                          "featured", "stock_status"))
    try:
        if item[0] == "pv":
            cat = ctx.store.catalog
            fields = {k: v for k, v in fields.items() if k in VARIATION_WRITE}
            ctx.store.update_variation(int(cat.p_ids[item[1]]), ctx.id(), **fields)
        else:
            ctx.store.update_product(ctx.id(), **fields)
    except ValueError as exc:
        return value_error(exc, "woocommerce_rest_invalid_product_data")
    return single(ctx, item)


def create_product(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, PRODUCT_WRITE)
    if err:
        return err
    if ctx.anon:
        return denied(*CANNOT_CREATE)
    if ctx.params.get("id"):
        return error_result(wp_error("woocommerce_rest_product_exists", "Cannot create existing product.", 400))
    fields = write_fields(p, ctx.params, ("slug", "sku", "regular_price", "sale_price", "description",
                                          "short_description", "status", "manage_stock", "stock_quantity",
                                          "featured", "stock_status"))
    ptype = p.get("type") or "simple"
    if ptype not in ("simple", "variable"):
        return error_result(wp_error("woocommerce_rest_invalid_product_type", "Invalid product type.", 400))
    try:
        pid = ctx.store.create_product(p.get("name") or "Product", type=ptype, variations=1 if ptype == "variable"
                                       else None, **fields)
    except ValueError as exc:
        return value_error(exc, "woocommerce_rest_invalid_product_data")
    item = _find_product(ctx.store, pid)
    assert item is not None
    return single(ctx, item, 201, [("Location", f"{ctx.store.rest_url}/wc/v3/products/{pid}")])


def delete_product(ctx: Ctx) -> RestResult:
    force = is_bool(ctx.params.get("force", False)) or False
    item = _find_product(ctx.store, ctx.id())
    if ctx.anon and item is not None:
        return denied(*CANNOT_DELETE)
    if item is None or item[0] != "p":
        return _product_invalid()
    before = item_bytes(ctx.store, item)
    if not force and orjson.loads(before)["status"] == "trash":
        return error_result(wp_error("woocommerce_rest_already_trashed", "The product has already been deleted.",
                                     410))
    ctx.store.delete_product(ctx.id(), force=force)
    return RestResult(200, before if force else item_bytes(ctx.store, item))
