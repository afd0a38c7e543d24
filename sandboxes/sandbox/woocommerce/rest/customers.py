"""``/wc/v3/customers`` and ``/wc/v3/customers/{id}``: list, read, update, delete (no trash).

The customer controller resolves the user before checking permissions, so an unknown ID is 404 even for an
anonymous request.
"""

from __future__ import annotations

from typing import Any

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
)
from sandbox.woocommerce.rest.items import Item, item_bytes
from sandbox.woocommerce.rest.listing import by_include, list_response, ordered, single
from sandbox.woocommerce.rest.params import COLLECTION, SINGLE, P, is_bool, validate

__all__ = ["delete_customer", "get_customer", "list_customers", "update_customer"]

ROLES = ("all", "administrator", "editor", "author", "contributor", "subscriber", "customer", "shop_manager")
CUSTOMER_LIST = {
    **COLLECTION,
    "order": P("enum", "asc", enum=("asc", "desc")),
    "orderby": P("enum", "name", enum=("id", "include", "name", "registered_date")),
    "email": P("email"),
    "role": P("enum", "customer", enum=ROLES),
}
CUSTOMER_WRITE = {"email": P("email"), "first_name": P("string"), "last_name": P("string"),
                  "username": P("string")}


def list_customers(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, CUSTOMER_LIST)
    if err:
        return err
    if ctx.anon:
        return denied(*CANNOT_LIST)
    store, cat = ctx.store, ctx.store.catalog
    n = len(cat.c_ids)
    orderby = p["orderby"]
    if orderby == "include" and p["include"]:
        indexes = by_include([j for j in range(n) if int(cat.c_ids[j]) in p["include"]], p["include"],
                             lambda j: int(cat.c_ids[j]))
    else:
        def key(j: int) -> Any:
            if orderby in ("id", "include"):
                return cat.c_ids[j]
            if orderby == "registered_date":
                return (cat.c_created[j], cat.c_ids[j])
            rec = cat.customer(j)
            return (f"{rec['first_name']} {rec['last_name']}".lower(), cat.c_ids[j])

        indexes = ordered(store, "customer", orderby, p["order"], key, n)
    include, exclude = set(p["include"]), set(p["exclude"])
    search = (p.get("search") or "").lower()
    items: list[Item] = []
    for j in indexes:
        if j in cat.c_gone:
            continue
        uid = int(cat.c_ids[j])
        if (include and uid not in include) or uid in exclude:
            continue
        if p["role"] != "all" and cat.c_over.get(j, {}).get("role", "customer") != p["role"]:
            continue
        if search or p.get("email"):
            rec = cat.customer(j)
            if p.get("email") and str(rec["email"]).lower() != str(p["email"]).lower():
                continue
            haystack = f"{rec['email']} {rec['username']} {rec['first_name']} {rec['last_name']}".lower()
            if search and search not in haystack:
                continue
        items.append(("c", j))
    return list_response(ctx, items, p, "/wc/v3/customers")


def _find_customer(ctx: Ctx) -> Item | None:
    cat = ctx.store.catalog
    j = cat.c_index.get(ctx.id())
    return ("c", j) if j is not None and j not in cat.c_gone else None


def _customer_invalid(ctx: Ctx) -> RestResult:
    return error_result(wp_error(*ctx.store.customer_not_found()))


def get_customer(ctx: Ctx) -> RestResult:
    _, err = validate(ctx.params, SINGLE)
    if err:
        return err
    item = _find_customer(ctx)
    if item is None:  # permissions_check resolves the user first: an unknown ID is a 404 even anonymously
        return _customer_invalid(ctx)
    if ctx.anon:
        return denied(*CANNOT_VIEW)
    return single(ctx, item)


def update_customer(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, CUSTOMER_WRITE)
    if err:
        return err
    item = _find_customer(ctx)
    if item is None:
        return _customer_invalid(ctx)
    if ctx.anon:
        return denied(*CANNOT_EDIT)
    fields = {k: p[k] for k in ("email", "first_name", "last_name") if p.get(k) is not None}
    for part in ("billing", "shipping"):
        value = ctx.params.get(part)
        if isinstance(value, dict):
            fields[part] = {str(k): str(v) for k, v in value.items()}
    current = ctx.store.catalog.customer(item[1])
    if p.get("username") and p["username"] != current["username"]:
        return error_result(wp_error("woocommerce_rest_customer_invalid_argument", "Username isn't editable.", 400))
    ctx.store.update_customer(ctx.id(), **fields)
    return single(ctx, item)


def delete_customer(ctx: Ctx) -> RestResult:
    force = is_bool(ctx.params.get("force", False)) or False
    item = _find_customer(ctx)
    if item is None:
        return _customer_invalid(ctx)
    if ctx.anon:
        return denied(*CANNOT_DELETE)
    if not force:
        return error_result(wp_error("woocommerce_rest_trash_not_supported", "Customers do not support trashing.",
                                     501))
    before = item_bytes(ctx.store, item)
    ctx.store.delete_customer(ctx.id())
    return RestResult(200, before)
