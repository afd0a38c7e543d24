"""The route table and ``dispatch``: one REST request from authentication to the handler's result.

The order is ``WP_REST_Server::serve_request``'s: WooCommerce authentication (only for ``wc/`` and ``wc-``
routes), the API key's read/write permission, then the route match (404 ``rest_no_route``); validation and the
permission callback are each handler's first lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sandbox.woocommerce.auth import authenticate, check_permissions
from sandbox.woocommerce.rest.context import Ctx, RestRequest, RestResult, error_result, no_route
from sandbox.woocommerce.rest.customers import delete_customer, get_customer, list_customers, update_customer
from sandbox.woocommerce.rest.discovery import namespace_index, rest_index, system_status
from sandbox.woocommerce.rest.orders import delete_order, get_order, list_orders, update_order
from sandbox.woocommerce.rest.products import (
    create_product,
    delete_product,
    get_product,
    list_products,
    update_product,
)
from sandbox.woocommerce.rest.variations import (
    get_variation,
    list_store_variations,
    list_variations,
    update_variation,
)
from sandbox.woocommerce.rest.webhooks import (
    create_webhook,
    delete_webhook,
    get_webhook,
    list_webhooks,
    update_webhook,
)
from sandbox.woocommerce.state import WooStore

__all__ = ["dispatch"]

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


def dispatch(store: WooStore, req: RestRequest) -> RestResult:
    """Serve one REST request (the caller holds the sandbox lock)."""
    route = req.route.rstrip("/") or "/"
    method = req.method.upper()
    if method == "POST" and req.method_override:
        method = req.method_override.upper()
    if method == "HEAD":
        method = "GET"
    if route == "/":
        return rest_index(store) if method == "GET" else no_route()
    wc_available = store.is_woocommerce and store.rest_api
    key = None
    auth_mode = None
    if wc_available and (route.startswith("/wc/") or route.startswith("/wc-")):
        outcome = authenticate(store.keys, ssl=req.ssl, method=req.method, get=req.get, post=req.post,
                               authorization=req.authorization, now=store.clock.now(),
                               signed_url=_signed_url(store, req))
        if outcome.error is not None:
            store.sandbox.count("auth_failed")
            result = error_result(outcome.error)
            result.auth = outcome.mode
            return result
        key, auth_mode = outcome.key, outcome.mode
        if key is not None:
            denied = check_permissions(key, method)
            if denied is not None:
                result = error_result(denied)
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
    result = no_route()
    result.auth = auth_mode
    return result


def _signed_url(store: WooStore, req: RestRequest) -> str:
    """``get_home_url(null, $request_path, is_ssl() ? 'https' : 'http')``: no path, no trailing slash."""
    _, _, rest = store.home_url.partition("://")
    path = req.signed_path.lstrip("/")
    return f"{'https' if req.ssl else 'http'}://{rest}" + (f"/{path}" if path else "")

