"""The WP REST API of one store: authentication, routing, parameter validation and the WooCommerce v3 handlers.

Request flow, as in ``WP_REST_Server::serve_request``: WooCommerce authentication (only for ``wc/`` and ``wc-``
routes) → API-key read/write permissions (``rest_pre_dispatch``) → route match (404 ``rest_no_route``) →
parameter validation (400 ``rest_invalid_param`` / ``rest_missing_callback_param``; unknown parameters are
ignored, e.g. ``modified_after`` on ``/customers``) → the route's permission callback (anonymous requests get
401 ``woocommerce_rest_cannot_view`` etc.; a single-object GET of an ID that does not exist answers 404 first) →
the handler.

List responses carry ``X-WP-Total``, ``X-WP-TotalPages`` and one ``Link`` header per relation (``prev``/``next``).
As in WooCommerce, the links repeat *every* query parameter of the request verbatim (unencoded) — including
``consumer_key``/``consumer_secret`` or ``oauth_*`` ones — with ``page`` replaced. A page past the end is ``[]``
with the real totals.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from sandbox.woocommerce.auth import authenticate, check_permissions
from sandbox.woocommerce.clock import query_literal
from sandbox.woocommerce.dataset import MAX_VARIATIONS
from sandbox.woocommerce.php import PhpValue, php_json, rest_invalid_param, wp_error, wp_sprintf_l
from sandbox.woocommerce.resources import select_fields
from sandbox.woocommerce.state import ORDER_STATUSES, WooStore, _version_tuple
from sandbox.woocommerce.webhooks import STATUSES as WEBHOOK_STATUSES
from sandbox.woocommerce.webhooks import WooWebhook, valid_topic

if TYPE_CHECKING:
    from sandbox.woocommerce.auth import ApiKey

__all__ = ["RestRequest", "RestResult", "dispatch", "legacy_index"]

WC_NAMESPACES = ["wc/v1", "wc/v2", "wc/v3", "wc/store", "wc/store/v1", "wc-admin", "wc-analytics", "wc-telemetry"]
WP_NAMESPACES = ["oembed/1.0", "wp/v2", "wp-site-health/v1", "wp-block-editor/v1"]
ROLES = ("all", "administrator", "editor", "author", "contributor", "subscriber", "customer", "shop_manager")
JSON_TYPE = "application/json; charset=UTF-8"


# --- request/response ------------------------------------------------------------------------------------------

@dataclass
class RestRequest:
    method: str  # the HTTP method as sent (signatures use it)
    route: str  # "/wc/v3/products/12" (after /wp-json)
    get: dict[str, PhpValue]
    post: dict[str, PhpValue] = field(default_factory=dict)  # form body
    json: dict[str, Any] = field(default_factory=dict)  # JSON body
    authorization: str = ""
    method_override: str = ""
    ssl: bool = False
    signed_path: str = ""  # the request path minus the home path, e.g. "wp-json/wc/v3/products"


@dataclass
class RestResult:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    auth: str | None = None
    ping: WooWebhook | None = None


def _error(body: dict[str, Any], headers: list[tuple[str, str]] | None = None) -> RestResult:
    return RestResult(int(body["data"]["status"]), php_json(body), headers or [])


def _ok(obj: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> RestResult:
    return RestResult(status, obj if isinstance(obj, bytes) else php_json(obj), headers or [])


# --- parameter validation ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class P:
    kind: str  # integer | boolean | string | enum | enumlist | date | idlist | email
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    enum: tuple[str, ...] = ()
    required: bool = False


def _is_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.0*)?\s*", value):
        return int(float(value))
    return None


def _is_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return None


def _id_list(value: Any) -> list[int]:
    """``wp_parse_id_list``: a list or a comma/space separated string; absint, unique."""
    items: Iterable[Any]
    if isinstance(value, list | tuple):
        items = value
    elif isinstance(value, dict):
        items = value.values()
    else:
        items = re.split(r"[\s,]+", str(value))
    out: list[int] = []
    for item in items:
        n = _is_int(item) if not isinstance(item, str) or item.strip() else None
        n = abs(n) if n is not None else 0
        if n not in out:
            out.append(n)
    return [n for n in out if n] if out != [0] else []


def _str_list(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if isinstance(value, dict):
        return [str(v) for v in value.values()]
    return [v for v in re.split(r"[\s,]+", str(value)) if v]


def validate(params: Mapping[str, Any], schema: Mapping[str, P]) -> tuple[dict[str, Any], RestResult | None]:
    missing = [name for name, p in schema.items() if p.required and params.get(name) is None]
    if missing:
        return {}, _error(wp_error("rest_missing_callback_param", f"Missing parameter(s): {', '.join(missing)}",
                                   400, params=missing))
    out: dict[str, Any] = {}
    errors: dict[str, tuple[str, str]] = {}
    for name, p in schema.items():
        if name not in params:
            out[name] = list(p.default) if isinstance(p.default, list) else p.default
            continue
        value = params[name]
        if p.kind == "integer":
            n = _is_int(value)
            if n is None:
                errors[name] = ("rest_invalid_type", f"{name} is not of type integer.")
            elif p.minimum is not None and p.maximum is not None and not p.minimum <= n <= p.maximum:
                errors[name] = ("rest_out_of_bounds",
                                f"{name} must be between {p.minimum} (inclusive) and {p.maximum} (inclusive)")
            elif p.minimum is not None and n < p.minimum:
                errors[name] = ("rest_out_of_bounds", f"{name} must be greater than or equal to {p.minimum}")
            else:
                out[name] = n
        elif p.kind == "boolean":
            b = _is_bool(value)
            if b is None:
                errors[name] = ("rest_invalid_type", f"{name} is not of type boolean.")
            else:
                out[name] = b
        elif p.kind == "enum":
            if not isinstance(value, str) or value not in p.enum:
                errors[name] = ("rest_not_in_enum", f"{name} is not one of {wp_sprintf_l(list(p.enum))}.")
            else:
                out[name] = value
        elif p.kind == "enumlist":
            items = _str_list(value)
            bad = [n for n, v in enumerate(items) if v not in p.enum]
            if bad:
                errors[name] = ("rest_not_in_enum", f"{name}[{bad[0]}] is not one of {wp_sprintf_l(list(p.enum))}.")
            else:
                out[name] = items
        elif p.kind == "date":
            if not isinstance(value, str) or query_literal(value, 0) is None:
                errors[name] = ("rest_invalid_date", "Invalid date.")
            else:
                out[name] = value
        elif p.kind == "idlist":
            out[name] = _id_list(value)
        elif p.kind == "email":
            if not isinstance(value, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
                errors[name] = ("rest_invalid_email", "Invalid email address.")
            else:
                out[name] = value
        else:  # string
            if not isinstance(value, str):
                errors[name] = ("rest_invalid_type", f"{name} is not of type string.")
            else:
                out[name] = value
    if errors:
        return out, _error(rest_invalid_param(errors))
    return out, None


_CONTEXT = P("enum", "view", enum=("view", "edit"))
_COLLECTION = {
    "context": _CONTEXT,
    "page": P("integer", 1, minimum=1),
    "per_page": P("integer", 10, minimum=1, maximum=100),
    "search": P("string"),
    "exclude": P("idlist", []),
    "include": P("idlist", []),
    "offset": P("integer"),
}
_DATES = {
    "after": P("date"), "before": P("date"), "modified_after": P("date"), "modified_before": P("date"),
    "dates_are_gmt": P("boolean", False),
}
_POST_ORDERBY = ("date", "id", "include", "title", "slug", "modified")
PRODUCT_LIST = {
    **_COLLECTION, **_DATES,
    "order": P("enum", "desc", enum=("asc", "desc")),
    "orderby": P("enum", "date", enum=(*_POST_ORDERBY, "price", "popularity", "rating")),
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
VARIATION_LIST = {
    **_COLLECTION, **_DATES,
    "order": P("enum", "desc", enum=("asc", "desc")),
    "orderby": P("enum", "date", enum=_POST_ORDERBY),
    "sku": P("string"),
    "status": P("enum", "any", enum=("any", "future", "trash", "draft", "pending", "private", "publish")),
    "stock_status": P("enum", None, enum=("instock", "outofstock", "onbackorder")),
}
ORDER_LIST = {
    **_COLLECTION, **_DATES,
    "order": P("enum", "desc", enum=("asc", "desc")),
    "orderby": P("enum", "date", enum=_POST_ORDERBY),
    "parent": P("idlist", []), "parent_exclude": P("idlist", []),
    "status": P("enumlist", ["any"], enum=("any", "trash", *ORDER_STATUSES)),
    "customer": P("integer"),
    "product": P("integer"),
    "dp": P("integer", 2),
}
CUSTOMER_LIST = {
    **_COLLECTION,
    "order": P("enum", "asc", enum=("asc", "desc")),
    "orderby": P("enum", "name", enum=("id", "include", "name", "registered_date")),
    "email": P("email"),
    "role": P("enum", "customer", enum=ROLES),
}
WEBHOOK_LIST = {
    **_COLLECTION,
    "after": P("date"), "before": P("date"),
    "order": P("enum", "desc", enum=("asc", "desc")),
    "orderby": P("enum", "date", enum=("date", "id", "title")),
    "status": P("enum", "all", enum=("all", *WEBHOOK_STATUSES)),
}
SINGLE = {"context": _CONTEXT}
PRODUCT_WRITE = {
    "name": P("string"), "slug": P("string"), "sku": P("string"), "regular_price": P("string"),
    "sale_price": P("string"), "description": P("string"), "short_description": P("string"),
    "status": P("enum", None, enum=("draft", "pending", "private", "publish", "future")),
    "type": P("enum", None, enum=("simple", "grouped", "external", "variable")),
    "manage_stock": P("boolean"), "stock_quantity": P("integer"), "featured": P("boolean"),
    "stock_status": P("enum", None, enum=("instock", "outofstock", "onbackorder")),
}
VARIATION_WRITE = {
    "sku": P("string"), "regular_price": P("string"), "sale_price": P("string"), "description": P("string"),
    "status": P("enum", None, enum=("draft", "pending", "private", "publish")),
    "manage_stock": P("boolean"), "stock_quantity": P("integer"),
    "stock_status": P("enum", None, enum=("instock", "outofstock", "onbackorder")),
}
ORDER_WRITE = {"status": P("enum", None, enum=ORDER_STATUSES), "customer_note": P("string"),
               "customer_id": P("integer")}
CUSTOMER_WRITE = {"email": P("email"), "first_name": P("string"), "last_name": P("string"),
                  "username": P("string")}
WEBHOOK_WRITE = {"name": P("string"), "topic": P("string"), "delivery_url": P("string"), "secret": P("string"),
                 "status": P("string")}


# --- context -------------------------------------------------------------------------------------------------

@dataclass
class Ctx:
    store: WooStore
    req: RestRequest
    method: str
    url: dict[str, str]
    key: ApiKey | None

    @property
    def anon(self) -> bool:
        return self.key is None

    @property
    def params(self) -> dict[str, Any]:
        # WP_REST_Request::get_parameter_order: JSON body, form body, query string, then URL parameters.
        return {**self.url, **self.req.get, **self.req.post, **self.req.json}

    def id(self, name: str = "id") -> int:
        return int(self.url[name])


def _denied(code: str, message: str) -> RestResult:
    return _error(wp_error(code, message, 401))


_CANNOT_LIST = ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
_CANNOT_VIEW = ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource.")
_CANNOT_CREATE = ("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources.")
_CANNOT_EDIT = ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource.")
_CANNOT_DELETE = ("woocommerce_rest_cannot_delete", "Sorry, you are not allowed to delete this resource.")


# --- lists ---------------------------------------------------------------------------------------------------

Item = tuple[Any, ...]  # a cache key: ("p", i), ("pv", i, k), ("v", i, k), ("vw", i, k), ("o", o), ("c", j)


def _item_bytes(store: WooStore, item: Item) -> bytes:
    kind = item[0]
    if kind == "p":
        return store.product_json(item[1])
    if kind == "pv":
        return store.variation_as_product_json(item[1], item[2])
    if kind == "v":
        return store.variation_json(item[1], item[2])
    if kind == "vw":
        return _store_wide_variation_json(store, item[1], item[2])
    if kind == "o":
        return store.order_json(item[1])
    if kind == "c":
        return store.customer_json(item[1])
    wh = store.webhooks[item[1]]
    return php_json(store.res.webhook(wh))


def _link_query(get: Mapping[str, PhpValue], page: int) -> str:
    """``add_query_arg($request->get_query_params(), ...)`` then ``page``: raw values, PHP-style arrays."""
    items: dict[str, PhpValue] = dict(get)
    items["page"] = str(page)
    parts: list[str] = []
    for key, value in items.items():
        if isinstance(value, str):
            parts.append(f"{key}={value}" if value != "" else key)
        else:
            pairs = enumerate(value) if isinstance(value, list) else value.items()
            parts.extend(f"{key}%5B{sub}%5D={v}" for sub, v in pairs)
    return "&".join(parts)


def _list_response(ctx: Ctx, items: Sequence[Any], p: Mapping[str, Any], path: str,
                   make: Callable[[Any], Item] | None = None) -> RestResult:
    """One page of ``items`` (cache keys, or indexes turned into keys by ``make`` — only for the page)."""
    per_page = int(p["per_page"])
    page = int(p["page"])
    offset = p.get("offset")
    start = int(offset) if offset is not None else (page - 1) * per_page
    chunk = [make(x) if make else x for x in items[start:start + per_page]]
    total = len(items)
    max_pages = math.ceil(total / per_page)
    fields = _fields_param(ctx)
    if fields is None:
        body = b"[" + b",".join(_item_bytes(ctx.store, item) for item in chunk) + b"]"
    else:
        body = php_json([select_fields(orjson.loads(_item_bytes(ctx.store, item)), fields) for item in chunk])
    headers = [("X-WP-Total", str(total)), ("X-WP-TotalPages", str(max_pages))]
    base = f"{ctx.store.rest_url}{path}"
    if page > 1:
        headers.append(("Link", f'<{base}?{_link_query(ctx.req.get, min(page - 1, max_pages))}>; rel="prev"'))
    if max_pages > page:
        headers.append(("Link", f'<{base}?{_link_query(ctx.req.get, page + 1)}>; rel="next"'))
    return RestResult(200, body, headers)


def _fields_param(ctx: Ctx) -> list[str] | None:
    raw = ctx.req.get.get("_fields")
    if raw is None:
        return None
    return [f.strip() for f in _str_list(raw) if f.strip()]


def _single(ctx: Ctx, item: Item, status: int = 200, headers: list[tuple[str, str]] | None = None) -> RestResult:
    fields = _fields_param(ctx)
    raw = _item_bytes(ctx.store, item)
    if fields is not None:
        raw = php_json(select_fields(orjson.loads(raw), fields))
    return RestResult(status, raw, headers or [])


class _DateFilter:
    """after/before (created) and modified_after/modified_before, the way WP_Date_Query compares them."""

    def __init__(self, p: Mapping[str, Any], site_offset_s: int) -> None:
        self.shift = 0 if p.get("dates_are_gmt") else site_offset_s
        self.bounds: list[tuple[str, bool, int]] = []
        for name, column, after in (("after", "c", True), ("before", "c", False),
                                    ("modified_after", "m", True), ("modified_before", "m", False)):
            if p.get(name) is not None:
                literal = query_literal(str(p[name]), site_offset_s)
                assert literal is not None  # validated
                self.bounds.append((column, after, literal))

    def __bool__(self) -> bool:
        return bool(self.bounds)

    def ok(self, created: int, modified: int) -> bool:
        for column, after, literal in self.bounds:
            value = (created if column == "c" else modified) + self.shift
            if after and not value > literal:
                return False
            if not after and not value < literal:
                return False
        return True


def _ordered(store: WooStore, kind: str, orderby: str, order: str, key: Callable[[int], Any], n: int) -> list[int]:
    asc = store.sorted_indexes(kind, orderby, lambda: sorted(range(n), key=key))
    return asc if order == "asc" else list(reversed(asc))


def _by_include(indexes: list[int], include: list[int], id_of: Callable[[int], int]) -> list[int]:
    pos = {object_id: n for n, object_id in enumerate(include)}
    return sorted(indexes, key=lambda i: pos.get(id_of(i), len(pos)))


# --- products ------------------------------------------------------------------------------------------------

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
        return _denied(*_CANNOT_LIST)
    store, cat = ctx.store, ctx.store.catalog
    n = len(cat.p_ids)
    orderby = "date" if p["orderby"] in ("include", "rating") and not p["include"] else p["orderby"]
    if orderby == "include":
        ordered = _by_include([i for i in range(n) if int(cat.p_ids[i]) in p["include"]], p["include"],
                              lambda i: int(cat.p_ids[i]))
    else:
        ordered = _ordered(store, "product", orderby, p["order"], _product_sort_key(store, orderby), n)
    dates = _DateFilter(p, store.utc_offset_s)
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
            i for i in ordered if i not in cat.p_gone and cat.product_status(i) not in ("trash", "auto-draft")])
        if not (dates or include or exclude):
            return _list_response(ctx, base, p, "/wc/v3/products", _product_item)
        kept = [i for i in base if (not include or int(cat.p_ids[i]) in include) and int(cat.p_ids[i]) not in exclude
                and (not dates or dates.ok(int(cat.p_created[i]), int(cat.p_modified[i])))]
        return _list_response(ctx, kept, p, "/wc/v3/products", _product_item)
    items: list[Item] = []
    for i in ordered:
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
    return _list_response(ctx, items, p, "/wc/v3/products")


def _product_item(i: int) -> Item:
    return ("p", i)


def _product_matches(store: WooStore, i: int, rec: dict[str, Any], p: Mapping[str, Any], status: str, search: str,
                     skus: set[str]) -> bool:
    if status == "any":
        if rec["status"] in ("trash", "auto-draft"):
            return False
    elif rec["status"] != status:
        return False
    if search and search not in str(rec["name"]).lower():
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
        if p.get("category") and not {str(c["id"]) for c in full["categories"]} & set(_str_list(p["category"])):
            return False
        if p.get("tag") and not {str(t["id"]) for t in full["tags"]} & set(_str_list(p["tag"])):
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
    return _error(wp_error("woocommerce_rest_product_invalid_id", "Invalid ID.", 404))


def get_product(ctx: Ctx) -> RestResult:
    _, err = validate(ctx.params, SINGLE)
    if err:
        return err
    item = _find_product(ctx.store, ctx.id())
    if ctx.anon and item is not None:
        return _denied(*_CANNOT_VIEW)
    if item is None:
        return _product_invalid()
    return _single(ctx, item)


def _write_fields(p: Mapping[str, Any], params: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    """The validated body fields the client actually sent."""
    return {k: p[k] for k in allowed if k in params}


def _value_error(exc: Exception, code: str) -> RestResult:
    return _error(wp_error(code, str(exc).strip("'\""), 400))


def update_product(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, PRODUCT_WRITE)
    if err:
        return err
    item = _find_product(ctx.store, ctx.id())
    if ctx.anon and item is not None:
        return _denied(*_CANNOT_EDIT)
    if item is None:
        return _error(wp_error("woocommerce_rest_product_invalid_id", "Invalid ID.", 400))
    fields = _write_fields(p, ctx.params, ("name", "slug", "sku", "regular_price", "sale_price", "description",
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
        return _value_error(exc, "woocommerce_rest_invalid_product_data")
    return _single(ctx, item)


def create_product(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, PRODUCT_WRITE)
    if err:
        return err
    if ctx.anon:
        return _denied(*_CANNOT_CREATE)
    if ctx.params.get("id"):
        return _error(wp_error("woocommerce_rest_product_exists", "Cannot create existing product.", 400))
    fields = _write_fields(p, ctx.params, ("slug", "sku", "regular_price", "sale_price", "description",
                                           "short_description", "status", "manage_stock", "stock_quantity",
                                           "featured", "stock_status"))
    ptype = p.get("type") or "simple"
    if ptype not in ("simple", "variable"):
        return _error(wp_error("woocommerce_rest_invalid_product_type", "Invalid product type.", 400))
    try:
        pid = ctx.store.create_product(p.get("name") or "Product", type=ptype, variations=1 if ptype == "variable"
                                       else None, **fields)
    except ValueError as exc:
        return _value_error(exc, "woocommerce_rest_invalid_product_data")
    item = _find_product(ctx.store, pid)
    assert item is not None
    return _single(ctx, item, 201, [("Location", f"{ctx.store.rest_url}/wc/v3/products/{pid}")])


def delete_product(ctx: Ctx) -> RestResult:
    force = _is_bool(ctx.params.get("force", False)) or False
    item = _find_product(ctx.store, ctx.id())
    if ctx.anon and item is not None:
        return _denied(*_CANNOT_DELETE)
    if item is None or item[0] != "p":
        return _product_invalid()
    before = _item_bytes(ctx.store, item)
    if not force and orjson.loads(before)["status"] == "trash":
        return _error(wp_error("woocommerce_rest_already_trashed", "The product has already been deleted.", 410))
    ctx.store.delete_product(ctx.id(), force=force)
    return RestResult(200, before if force else _item_bytes(ctx.store, item))


# --- variations ----------------------------------------------------------------------------------------------

def list_variations(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, VARIATION_LIST)
    if err:
        return err
    if ctx.anon:
        return _denied(*_CANNOT_LIST)
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
        dates = _DateFilter(p, ctx.store.utc_offset_s)
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
    return _list_response(ctx, items, p, f"/wc/v3/products/{ctx.id('product_id')}/variations")


# GET /wc/v3/variations (WooCommerce 10.3+, class-wc-rest-variations-controller.php): the per-product controller
# with rest_base "variations" and no product_id, so WP_Query runs without post_parent and lists every variation.
STORE_WIDE_VARIATIONS_SINCE = (10, 3, 0)
_K_BITS = 6  # a list entry is (i << _K_BITS) | k: one int per variation keeps the cached orders compact
assert MAX_VARIATIONS <= 1 << _K_BITS
_K_MASK = (1 << _K_BITS) - 1
# store -> (i, k) -> (the per-product bytes it was derived from, the store-wide bytes)
_STORE_WIDE_JSON: weakref.WeakKeyDictionary[WooStore, dict[tuple[int, int], tuple[bytes, bytes]]] = (
    weakref.WeakKeyDictionary())
# store -> (filter signature, matching codes): the last filtered store-wide list
_FILTERED: weakref.WeakKeyDictionary[WooStore, tuple[tuple[Any, ...], list[int]]] = weakref.WeakKeyDictionary()


def has_store_wide_variations(store: WooStore) -> bool:
    return _version_tuple(store.wc_version) >= STORE_WIDE_VARIATIONS_SINCE


def _store_wide_variation_json(store: WooStore, i: int, k: int) -> bytes:
    """The per-product item with the links WooCommerce builds on this route.

    ``parent_id`` is already in the per-product item (WC_REST_Variations_Controller sets the same key again, same
    value). ``prepare_links`` reads ``$request['product_id']``, absent here: self is ``/variations/{id}``,
    collection ``/variations`` and up ``/products/0``. Derived from the cached per-product bytes and re-derived
    only when those are re-rendered (the identity check), so a change to the variation shows up here too.
    """
    source = store.variation_json(i, k)
    cache = _STORE_WIDE_JSON.setdefault(store, {})
    hit = cache.get((i, k))
    if hit is not None and hit[0] is source:
        return hit[1]
    cut = source.rfind(b',"_links":')
    assert cut != -1 and source.endswith(b"}")
    base = f"{store.rest_url}/wc/v3"
    vid = int(store.catalog.p_ids[i]) + 1 + k
    links = php_json({"self": [{"href": f"{base}/variations/{vid}"}], "collection": [{"href": f"{base}/variations"}],
                      "up": [{"href": f"{base}/products/0"}]})
    raw = source[:cut] + b',"_links":' + links + b"}"
    cache[(i, k)] = (source, raw)
    return raw


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
        return _no_route()  # registered from WooCommerce 10.3.0 on
    p, err = validate(ctx.params, VARIATION_LIST)
    if err:
        return err
    if ctx.anon:
        return _denied(*_CANNOT_LIST)
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
    dates = _DateFilter(p, store.utc_offset_s)
    skus = {s.strip() for s in (p.get("sku") or "").split(",") if s.strip()}
    status = p["status"]
    if include or exclude or dates or skus or status != "any":
        # A sync pages through one filter (modified_after=...): filter once per data version, not per page.
        signature = (store.versions["product"], p["orderby"], p["order"], tuple(include), tuple(sorted(exclude)),
                     dates.shift, tuple(dates.bounds), tuple(sorted(skus)), status)
        memo = _FILTERED.get(store)
        if memo is not None and memo[0] == signature:
            return _list_response(ctx, memo[1], p, "/wc/v3/variations", _store_wide_item)
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
    return _list_response(ctx, codes, p, "/wc/v3/variations", _store_wide_item)


def _find_variation(ctx: Ctx) -> Item | None:
    cat = ctx.store.catalog
    i = cat.p_index.get(ctx.id("product_id"))
    vk = cat.v_index.get(ctx.id())
    if i is None or vk is None or vk[0] != i or i in cat.p_gone:
        return None
    return ("v", *vk)


def _variation_invalid(status: int = 404) -> RestResult:
    return _error(wp_error("woocommerce_rest_product_variation_invalid_id", "Invalid ID.", status))


def get_variation(ctx: Ctx) -> RestResult:
    _, err = validate(ctx.params, SINGLE)
    if err:
        return err
    item = _find_variation(ctx)
    if ctx.anon and item is not None:
        return _denied(*_CANNOT_VIEW)
    if item is None:
        return _variation_invalid()
    return _single(ctx, item)


def update_variation(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, VARIATION_WRITE)
    if err:
        return err
    item = _find_variation(ctx)
    if ctx.anon and item is not None:
        return _denied(*_CANNOT_EDIT)
    if item is None:
        return _variation_invalid(400)
    fields = _write_fields(p, ctx.params, tuple(VARIATION_WRITE))
    try:
        ctx.store.update_variation(ctx.id("product_id"), ctx.id(), **fields)
    except ValueError as exc:
        return _value_error(exc, "woocommerce_rest_invalid_product_data")
    return _single(ctx, item)


# --- customers -----------------------------------------------------------------------------------------------

def list_customers(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, CUSTOMER_LIST)
    if err:
        return err
    if ctx.anon:
        return _denied(*_CANNOT_LIST)
    store, cat = ctx.store, ctx.store.catalog
    n = len(cat.c_ids)
    orderby = p["orderby"]
    if orderby == "include" and p["include"]:
        indexes = _by_include([j for j in range(n) if int(cat.c_ids[j]) in p["include"]], p["include"],
                              lambda j: int(cat.c_ids[j]))
    else:
        def key(j: int) -> Any:
            if orderby in ("id", "include"):
                return cat.c_ids[j]
            if orderby == "registered_date":
                return (cat.c_created[j], cat.c_ids[j])
            rec = cat.customer(j)
            return (f"{rec['first_name']} {rec['last_name']}".lower(), cat.c_ids[j])

        indexes = _ordered(store, "customer", orderby, p["order"], key, n)
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
    return _list_response(ctx, items, p, "/wc/v3/customers")


def _find_customer(ctx: Ctx) -> Item | None:
    cat = ctx.store.catalog
    j = cat.c_index.get(ctx.id())
    return ("c", j) if j is not None and j not in cat.c_gone else None


def _customer_invalid(ctx: Ctx) -> RestResult:
    return _error(wp_error(*ctx.store.customer_not_found()))


def get_customer(ctx: Ctx) -> RestResult:
    _, err = validate(ctx.params, SINGLE)
    if err:
        return err
    item = _find_customer(ctx)
    if item is None:  # permissions_check resolves the user first: an unknown ID is a 404 even anonymously
        return _customer_invalid(ctx)
    if ctx.anon:
        return _denied(*_CANNOT_VIEW)
    return _single(ctx, item)


def update_customer(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, CUSTOMER_WRITE)
    if err:
        return err
    item = _find_customer(ctx)
    if item is None:
        return _customer_invalid(ctx)
    if ctx.anon:
        return _denied(*_CANNOT_EDIT)
    fields = {k: p[k] for k in ("email", "first_name", "last_name") if p.get(k) is not None}
    for part in ("billing", "shipping"):
        value = ctx.params.get(part)
        if isinstance(value, dict):
            fields[part] = {str(k): str(v) for k, v in value.items()}
    current = ctx.store.catalog.customer(item[1])
    if p.get("username") and p["username"] != current["username"]:
        return _error(wp_error("woocommerce_rest_customer_invalid_argument", "Username isn't editable.", 400))
    ctx.store.update_customer(ctx.id(), **fields)
    return _single(ctx, item)


def delete_customer(ctx: Ctx) -> RestResult:
    force = _is_bool(ctx.params.get("force", False)) or False
    item = _find_customer(ctx)
    if item is None:
        return _customer_invalid(ctx)
    if ctx.anon:
        return _denied(*_CANNOT_DELETE)
    if not force:
        return _error(wp_error("woocommerce_rest_trash_not_supported", "Customers do not support trashing.", 501))
    before = _item_bytes(ctx.store, item)
    ctx.store.delete_customer(ctx.id())
    return RestResult(200, before)


# --- orders --------------------------------------------------------------------------------------------------

def list_orders(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, ORDER_LIST)
    if err:
        return err
    if ctx.anon:
        return _denied(*_CANNOT_LIST)
    store, cat = ctx.store, ctx.store.catalog
    n = len(cat.o_ids)
    orderby = "date" if p["orderby"] == "include" and not p["include"] else p["orderby"]
    if orderby == "include":
        ordered = _by_include([o for o in range(n) if int(cat.o_ids[o]) in p["include"]], p["include"],
                              lambda o: int(cat.o_ids[o]))
    else:
        def key(o: int) -> Any:
            if orderby in ("id", "title", "slug"):
                return cat.o_ids[o]
            if orderby == "modified":
                return (cat.o_modified[o], cat.o_ids[o])
            return (cat.o_created[o], cat.o_ids[o])

        ordered = _ordered(store, "order", orderby, p["order"], key, n)
    dates = _DateFilter(p, store.utc_offset_s)
    include, exclude = set(p["include"]), set(p["exclude"])
    statuses = set(p["status"])
    search = (p.get("search") or "").lower()
    customer = p.get("customer")
    product = p.get("product")
    if statuses == {"any"}:
        candidates: list[int] = store.sorted_indexes("order", f"visible:{orderby}:{p['order']}", lambda: [
            o for o in ordered if o not in cat.o_gone
            and cat.order_status(o) not in ("trash", "checkout-draft", "auto-draft")])
    else:
        wanted = statuses - {"any"}
        hidden = set() if "any" not in statuses else {"trash", "checkout-draft", "auto-draft"} - wanted
        candidates = [o for o in ordered if o not in cat.o_gone and (
            cat.order_status(o) in wanted or ("any" in statuses and cat.order_status(o) not in hidden))]
    if not (dates or include or exclude or customer is not None or product is not None or search):
        return _list_response(ctx, candidates, p, "/wc/v3/orders", _order_item)
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
            if search and search not in f"{b['first_name']} {b['last_name']} {b['email']} {oid}".lower():
                continue
        items.append(o)
    return _list_response(ctx, items, p, "/wc/v3/orders", _order_item)


def _order_item(o: int) -> Item:
    return ("o", o)


def _find_order(ctx: Ctx) -> Item | None:
    cat = ctx.store.catalog
    o = cat.o_index.get(ctx.id())
    return ("o", o) if o is not None and o not in cat.o_gone else None


def _order_invalid(status: int = 404) -> RestResult:
    return _error(wp_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", status))


def get_order(ctx: Ctx) -> RestResult:
    _, err = validate(ctx.params, SINGLE)
    if err:
        return err
    item = _find_order(ctx)
    if ctx.anon and item is not None:
        return _denied(*_CANNOT_VIEW)
    if item is None:
        return _order_invalid()
    return _single(ctx, item)


def update_order(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, ORDER_WRITE)
    if err:
        return err
    item = _find_order(ctx)
    if ctx.anon and item is not None:
        return _denied(*_CANNOT_EDIT)
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
        return _value_error(exc, "woocommerce_rest_invalid_order_data")
    return _single(ctx, item)


def delete_order(ctx: Ctx) -> RestResult:
    force = _is_bool(ctx.params.get("force", False)) or False
    item = _find_order(ctx)
    if ctx.anon and item is not None:
        return _denied(*_CANNOT_DELETE)
    if item is None:
        return _order_invalid()
    before = _item_bytes(ctx.store, item)
    if not force and orjson.loads(before)["status"] == "trash":
        return _error(wp_error("woocommerce_rest_already_trashed", "The shop_order has already been deleted.", 410))
    ctx.store.delete_order(ctx.id(), force=force)
    return RestResult(200, before if force else _item_bytes(ctx.store, item))


# --- webhooks ------------------------------------------------------------------------------------------------

def list_webhooks(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, WEBHOOK_LIST)
    if err:
        return err
    if ctx.anon:
        return _denied(*_CANNOT_LIST)
    hooks = list(ctx.store.webhooks.values())
    if p["orderby"] == "id":
        hooks.sort(key=lambda w: w.id)
    elif p["orderby"] == "title":
        hooks.sort(key=lambda w: (w.name.lower(), w.id))
    else:
        hooks.sort(key=lambda w: (w.created_s, w.id))
    if p["order"] == "desc":
        hooks.reverse()
    search = (p.get("search") or "").lower()
    after = query_literal(p["after"], 0) if p.get("after") else None
    before = query_literal(p["before"], 0) if p.get("before") else None
    items: list[Item] = []
    for wh in hooks:
        if p["status"] != "all" and wh.status != p["status"]:
            continue
        if (p["include"] and wh.id not in p["include"]) or wh.id in p["exclude"]:
            continue
        if search and search not in wh.name.lower():
            continue
        if after is not None and not wh.created_s > after:
            continue
        if before is not None and not wh.created_s < before:
            continue
        items.append(("w", wh.id))
    return _list_response(ctx, items, p, "/wc/v3/webhooks")


def _webhook_invalid(status: int, message: str) -> RestResult:
    return _error(wp_error("woocommerce_rest_shop_webhook_invalid_id", message, status))


def _valid_url(url: str) -> bool:
    # wc_is_valid_url: http(s) scheme and a host.
    return re.match(r"^https?://[^/\s]+", url) is not None


def create_webhook(ctx: Ctx) -> RestResult:
    schema = {**WEBHOOK_WRITE, "topic": P("string", required=True), "delivery_url": P("string", required=True)}
    p, err = validate(ctx.params, schema)
    if err:
        return err
    if ctx.anon:
        return _denied(*_CANNOT_CREATE)
    if ctx.params.get("id"):
        return _error(wp_error("woocommerce_rest_shop_webhook_exists", "Cannot create existing shop_webhook.", 400))
    topic = str(p["topic"]).lower()
    if not topic or not valid_topic(topic):
        return _error(wp_error("woocommerce_rest_shop_webhook_invalid_topic",
                               "Webhook topic is required and must be valid.", 400))
    if not p["delivery_url"] or not _valid_url(p["delivery_url"]):
        return _error(wp_error("woocommerce_rest_shop_webhook_invalid_delivery_url",
                               "Webhook delivery URL must be a valid URL starting with http:// or https://.", 400))
    # The status parameter is ignored on creation: a REST-created webhook starts active.
    wh = ctx.store.add_webhook(topic, p["delivery_url"], secret=p.get("secret") or None, name=p.get("name") or None)
    result = _ok(ctx.store.res.webhook(wh), 201, [("Location", f"{ctx.store.rest_url}/wc/v3/webhooks/{wh.id}")])
    result.ping = wh
    return result


def get_webhook(ctx: Ctx) -> RestResult:
    _, err = validate(ctx.params, SINGLE)
    if err:
        return err
    if ctx.anon:
        return _denied(*_CANNOT_VIEW)
    wh = ctx.store.webhooks.get(ctx.id())
    if ctx.id() == 0:
        return _webhook_invalid(404, "Invalid ID.")
    if wh is None:
        return _webhook_invalid(400, "ID is invalid.")
    return _single(ctx, ("w", wh.id))


def update_webhook(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, WEBHOOK_WRITE)
    if err:
        return err
    if ctx.anon:
        return _denied(*_CANNOT_EDIT)
    wh = ctx.store.webhooks.get(ctx.id())
    if wh is None:
        return _webhook_invalid(400, "ID is invalid.")
    if p.get("topic"):
        if not valid_topic(str(p["topic"]).lower()):
            return _error(wp_error("woocommerce_rest_shop_webhook_invalid_topic", "Webhook topic must be valid.", 400))
    if p.get("delivery_url") and not _valid_url(p["delivery_url"]):
        return _error(wp_error("woocommerce_rest_shop_webhook_invalid_delivery_url",
                               "Webhook delivery URL must be a valid URL starting with http:// or https://.", 400))
    if p.get("status") and str(p["status"]).lower() not in WEBHOOK_STATUSES:
        return _error(wp_error("woocommerce_rest_shop_webhook_invalid_status", "Webhook status must be valid.", 400))
    if p.get("topic"):
        wh.topic = str(p["topic"]).lower()
    if p.get("delivery_url"):
        wh.delivery_url = p["delivery_url"]
    if p.get("secret"):
        wh.secret = p["secret"]
    if p.get("status"):
        wh.status = str(p["status"]).lower()
    if p.get("name"):
        wh.name = p["name"]
    wh.modified_s = ctx.store.clock.now_s()
    return _single(ctx, ("w", wh.id))


def delete_webhook(ctx: Ctx) -> RestResult:
    if ctx.anon:
        return _denied(*_CANNOT_DELETE)
    force = _is_bool(ctx.params.get("force", False)) or False
    if not force:
        return _error(wp_error("woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.", 501))
    wh = ctx.store.webhooks.get(ctx.id())
    if wh is None:
        return _webhook_invalid(404, "Invalid ID.")
    body = php_json(ctx.store.res.webhook(wh))
    del ctx.store.webhooks[wh.id]
    return RestResult(200, body)


# --- system status and indexes -------------------------------------------------------------------------------

def system_status(ctx: Ctx) -> RestResult:
    if ctx.anon:
        return _denied(*_CANNOT_LIST)
    store = ctx.store
    hours = store.utc_offset_s / 3600
    plugins = [{"plugin": "woocommerce/woocommerce.php", "name": "WooCommerce", "version": store.wc_version,
                "version_latest": store.wc_version, "url": "https://woocommerce.com/",
                "author_name": "Automattic", "author_url": "https://woocommerce.com", "network_activated": False}]
    body = {
        "environment": {
            "home_url": store.home_url, "site_url": store.home_url, "store_id": f"{store.name}-store",
            "version": store.wc_version, "log_directory": "/var/www/html/wp-content/uploads/wc-logs/",
            "log_directory_writable": True, "wp_version": store.wp_version, "wp_multisite": False,
            "wp_memory_limit": 268435456, "wp_debug_mode": False, "wp_cron": True, "language": "en_US",
            "external_object_cache": None, "server_info": "nginx/1.26.2", "php_version": "8.2.24",
            "php_post_max_size": 67108864, "php_max_execution_time": 60, "php_max_input_vars": 1000,
            "curl_version": "8.5.0, OpenSSL/3.0.13", "suhosin_installed": False, "max_upload_size": 67108864,
            "mysql_version": "8.0.39", "mysql_version_string": "8.0.39", "default_timezone": "UTC",
            "fsockopen_or_curl_enabled": True, "soapclient_enabled": True, "domdocument_enabled": True,
            "gzip_enabled": True, "mbstring_enabled": True, "remote_post_successful": True,
            "remote_post_response": 200, "remote_get_successful": True, "remote_get_response": 200,
        },
        "database": {"wc_database_version": store.wc_version, "database_prefix": "wp_",
                     "maxmind_geoip_database": "", "database_tables": {"woocommerce": {}, "other": {}},
                     "database_size": {"data": 12.5, "index": 4.2}},
        "active_plugins": plugins,
        "inactive_plugins": [],
        "dropins_mu_plugins": {"dropins": [], "mu_plugins": []},
        "theme": {"name": "Storefront", "version": "4.6.0", "is_child_theme": False,
                  "has_woocommerce_support": True},
        "settings": {
            "api_enabled": False, "force_ssl": False, "currency": store.currency,
            "currency_symbol": "&#36;" if store.currency in ("USD", "CAD", "AUD") else store.currency,
            "currency_position": "left", "thousand_separator": ",", "decimal_separator": ".",
            "number_of_decimals": 2, "geolocation_enabled": False,
            "taxonomies": {"external": "external", "grouped": "grouped", "simple": "simple", "variable": "variable"},
            "product_visibility_terms": {}, "woocommerce_com_connected": "no",
            "enforce_approved_download_dirs": True, "order_datastore": "Automattic\\WooCommerce\\Internal\\"
            "DataStores\\Orders\\OrdersTableDataStore", "HPOS_enabled": True, "HPOS_sync_enabled": False,
        },
        "security": {"secure_connection": ctx.req.ssl, "hide_errors": True},
        "pages": [],
        "post_type_counts": [{"type": "product", "count": len(store.catalog.p_ids)}],
        "logging": {"logging_enabled": True, "default_handler": "LogHandlerFileV2", "retention_period_days": 30,
                    "level_threshold": "none", "log_directory_size": "0 B"},
        "gmt_offset": f"{hours:g}",
    }
    return _ok(body)


def namespace_index(ctx: Ctx) -> RestResult:
    ns = ctx.url["ns"].strip("/")
    routes = {f"/{ns}": {"namespace": ns, "methods": ["GET"]}}
    if ns == "wc/v3":
        for path, methods in (("products", ["GET", "POST"]), ("products/(?P<id>[\\d]+)", ["GET", "PUT", "DELETE"]),
                              ("orders", ["GET", "POST"]), ("customers", ["GET", "POST"]),
                              ("webhooks", ["GET", "POST"]), ("system_status", ["GET"])):
            routes[f"/wc/v3/{path}"] = {"namespace": ns, "methods": methods}
        if has_store_wide_variations(ctx.store):
            routes["/wc/v3/variations"] = {"namespace": ns, "methods": ["GET"]}
    return _ok({"namespace": ns, "routes": routes,
                "_links": {"up": [{"href": ctx.store.rest_url + "/"}]}})


def rest_index(store: WooStore) -> RestResult:
    wc = store.is_woocommerce and store.rest_api
    namespaces = (WP_NAMESPACES[:1] + WC_NAMESPACES + WP_NAMESPACES[1:]) if wc else ["oembed/1.0", "wp/v2"]
    routes: dict[str, Any] = {"/": {"namespace": "", "methods": ["GET"]}}
    for ns in namespaces:
        routes[f"/{ns}"] = {"namespace": ns, "methods": ["GET"]}
    body = {
        "name": store.title, "description": "Just another WordPress site", "url": store.home_url,
        "home": store.home_url, "gmt_offset": f"{store.utc_offset_s / 3600:g}", "timezone_string": "",
        "page_for_posts": 0, "page_on_front": 0, "show_on_front": "posts", "namespaces": namespaces,
        "authentication": {"application-passwords": {"endpoints": {
            "authorization": f"{store.home_url}/wp-admin/authorize-application.php"}}},
        "site_logo": 0, "site_icon": 0, "site_icon_url": "", "routes": routes,
        "_links": {"help": [{"href": "https://developer.wordpress.org/rest-api/"}]},
    }
    return _ok(body)


def legacy_index(store: WooStore, ssl: bool) -> bytes:
    """``GET /wc-api/v3`` (the legacy REST API, removed from core in WooCommerce 9.0)."""
    return php_json({"store": {
        "name": store.title, "description": "Just another WordPress site", "URL": store.home_url,
        "wc_version": store.wc_version, "version": "3.1.0",
        "routes": {"/products": {"supports": ["HEAD", "GET", "POST"], "accepts_data": True},
                   "/orders": {"supports": ["HEAD", "GET", "POST"], "accepts_data": True},
                   "/customers": {"supports": ["HEAD", "GET", "POST"], "accepts_data": True}},
        "meta": {"timezone": f"UTC{store.utc_offset_s / 3600:+g}", "currency": store.currency,
                 "currency_format": "$", "currency_position": "left", "thousand_separator": ",",
                 "decimal_separator": ".", "price_num_decimals": 2, "tax_included": False, "weight_unit": "kg",
                 "dimension_unit": "cm", "ssl_enabled": ssl, "permalinks_enabled": True,
                 "generate_password": True,
                 "links": {"help": "https://woocommerce.github.io/woocommerce-rest-api-docs/"}},
    }})


# --- routing -------------------------------------------------------------------------------------------------

Handler = Callable[[Ctx], RestResult]
_ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = []
_EDITABLE = ("POST", "PUT", "PATCH")


def _route(pattern: str, **methods: Handler) -> None:
    table: dict[str, Handler] = {}
    for name, handler in methods.items():
        for method in (_EDITABLE if name == "EDITABLE" else (name,)):
            table[method] = handler
    _ROUTES.append((re.compile(f"^{pattern}$", re.I), table))


_ID = r"(?P<id>[\d]+)"
_route(r"/wc/v3/products", GET=list_products, POST=create_product)
_route(rf"/wc/v3/products/{_ID}", GET=get_product, EDITABLE=update_product, DELETE=delete_product)
_route(r"/wc/v3/products/(?P<product_id>[\d]+)/variations", GET=list_variations)
_route(rf"/wc/v3/products/(?P<product_id>[\d]+)/variations/{_ID}", GET=get_variation, EDITABLE=update_variation)
_route(r"/wc/v3/variations", GET=list_store_variations)  # answers rest_no_route before WooCommerce 10.3.0
_route(r"/wc/v3/customers", GET=list_customers)
_route(rf"/wc/v3/customers/{_ID}", GET=get_customer, EDITABLE=update_customer, DELETE=delete_customer)
_route(r"/wc/v3/orders", GET=list_orders)
_route(rf"/wc/v3/orders/{_ID}", GET=get_order, EDITABLE=update_order, DELETE=delete_order)
_route(r"/wc/v3/webhooks", GET=list_webhooks, POST=create_webhook)
_route(rf"/wc/v3/webhooks/{_ID}", GET=get_webhook, EDITABLE=update_webhook, DELETE=delete_webhook)
_route(r"/wc/v3/system_status", GET=system_status)
_route(r"(?P<ns>/wc/v[123])", GET=namespace_index)
_WP_ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(r"^(?P<ns>/wp/v2|/oembed/1\.0)$", re.I), {"GET": namespace_index}),
]


def _no_route() -> RestResult:
    return _error(wp_error("rest_no_route", "No route was found matching the URL and request method.", 404))


def dispatch(store: WooStore, req: RestRequest) -> RestResult:
    """Serve one REST request (the caller holds the sandbox lock)."""
    route = req.route.rstrip("/") or "/"
    method = req.method.upper()
    if method == "POST" and req.method_override:
        method = req.method_override.upper()
    if method == "HEAD":
        method = "GET"
    if route == "/":
        return rest_index(store) if method == "GET" else _no_route()
    wc_available = store.is_woocommerce and store.rest_api
    key = None
    auth_mode = None
    if wc_available and (route.startswith("/wc/") or route.startswith("/wc-")):
        outcome = authenticate(store.keys, ssl=req.ssl, method=req.method, get=req.get, post=req.post,
                               authorization=req.authorization, now=store.clock.now(),
                               signed_url=_signed_url(store, req))
        if outcome.error is not None:
            store.sandbox.count("auth_failed")
            result = _error(outcome.error)
            result.auth = outcome.mode
            return result
        key, auth_mode = outcome.key, outcome.mode
        if key is not None:
            denied = check_permissions(key, method)
            if denied is not None:
                result = _error(denied)
                result.auth = auth_mode
                return result
            key.last_access = store.clock.now()
    table = _ROUTES if wc_available else []
    for pattern, handlers in [*table, *_WP_ROUTES]:
        m = pattern.match(route)
        if m is None:
            continue
        handler = handlers.get(method)
        if handler is None:
            break
        url = {k: v for k, v in m.groupdict().items() if v is not None}
        result = handler(Ctx(store, req, method, url, key))
        result.auth = auth_mode
        return result
    result = _no_route()
    result.auth = auth_mode
    return result


def _signed_url(store: WooStore, req: RestRequest) -> str:
    """``get_home_url(null, $request_path, is_ssl() ? 'https' : 'http')``: no path, no trailing slash."""
    _, _, rest = store.home_url.partition("://")
    path = req.signed_path.lstrip("/")
    return f"{'https' if req.ssl else 'http'}://{rest}" + (f"/{path}" if path else "")

