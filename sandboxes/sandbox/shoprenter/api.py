"""The API2 endpoint ``/shops/{shop}/api/{resource}[/{id}]``: bearer auth, the rate limit, and the reads —
a page of a collection (0-based ``page``, ``limit``, ``full``) or one item.

``webHooks`` writes go on to ``webhook_api``; collection filters are ``query``.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sandbox.shoprenter.dataset import LANGUAGES, ORDER_STATUSES, Customer, Order, Product
from sandbox.shoprenter.faults import ACCESS_DENIED
from sandbox.shoprenter.ids import decode_outer_id
from sandbox.shoprenter.query import COMMON_PARAMS, FILTERS, int_param, records
from sandbox.shoprenter.render import language_item, order_status_description_item, order_status_item, to_xml
from sandbox.shoprenter.responses import ApiError, api_base, json_response, render, wants_json
from sandbox.shoprenter.state import ShopRenterSandbox, SrShop, SrToken
from sandbox.shoprenter.webhook_api import webhook_item, webhook_write
from sandbox.shoprenter.webhooks import SrWebhook

__all__ = ["KIND", "ApiEndpoints"]

KIND = {"productExtend": "product", "customers": "customer", "orderExtend": "order", "webHooks": "webHook",
        "languages": "language", "orderStatuses": "orderStatus", "orderStatusDescriptions": "orderStatusDescription"}


class ApiEndpoints:
    """API2 for every shop of one sandbox."""

    def __init__(self, sandbox: ShopRenterSandbox) -> None:
        self.sandbox = sandbox

    async def api(self, request: Request) -> Response:
        try:
            shop, tok = self._authorise(request)
            resource = request.path_params["resource"]
            item_id = request.path_params.get("item_id")
            if resource not in FILTERS:
                raise ApiError(404, f'Resource matching URI "/{resource}" not found')
            method = request.method
            if resource == "webHooks" and method in ("POST", "PUT", "DELETE"):
                return await webhook_write(self.sandbox, request, shop, tok, item_id)
            if method != "GET":
                raise ApiError(405, f"The sandbox does not support {method} on {resource}")
            if item_id is not None:
                return self._single(request, shop, resource, item_id)
            return self._collection(request, shop, resource)
        except PermissionError as exc:
            body = {"error": "access_denied", "error_description": ACCESS_DENIED, "hint": str(exc),
                    "message": ACCESS_DENIED}
            return json_response(401, body, {"www-authenticate": 'Bearer realm="OAuth"'})
        except ApiError as exc:
            return render(request, exc.status, exc.body())

    def _authorise(self, request: Request) -> tuple[SrShop, SrToken]:
        sandbox = self.sandbox
        shop = sandbox.shops.get(request.path_params["shop"])
        if shop is None:
            raise ApiError(404, f"Shop {request.path_params['shop']!r} not found")
        token, hint = sandbox.authenticate(shop.name, request.headers.get("authorization"))
        if token is None:
            sandbox.count("unauthorized")
            raise PermissionError(hint)
        request.scope["state"]["sr_client"] = token.client_id
        if not sandbox.admit(token.client_id, shop.name):
            raise ApiError(429, "Too Many Requests")
        return shop, token

    def _collection(self, request: Request, shop: SrShop, resource: str) -> Response:
        sandbox = self.sandbox
        pairs = list(request.query_params.multi_items())
        params = dict(pairs)
        unknown = [k for k in params if k not in COMMON_PARAMS and k not in FILTERS[resource]]
        if unknown:
            raise ApiError(400, f"The given parameter: {unknown[0]} is not available!", 40010)
        page = int_param("page", params.get("page", "0"))
        limit = int_param("limit", params.get("limit", str(sandbox.default_limit)), 1, sandbox.max_limit)
        full = params.get("full", "0") == "1"
        api = api_base(request, shop)
        with sandbox.lock:
            rows = records(shop, resource, params, inclusive=sandbox.filter_inclusive)
            page_count = math.ceil(len(rows) / limit)
            if page_count and page >= page_count:
                raise ApiError(400, f"Page not found! This Resource minimum page is 0 and maximum page is "
                                    f"{page_count - 1}", 40008)
            chunk = rows[page * limit:(page + 1) * limit]
            if full:
                items = [_item_bytes(shop, resource, r, api) for r in chunk]
            else:
                items = [orjson.dumps({"href": _item_href(resource, r, api)}) for r in chunk]
        rest = [(k, v) for k, v in pairs if k not in ("page", "limit")]

        def url(p: int) -> dict[str, str]:
            return {"href": f"{api}/{resource}?{urlencode([*rest, ('page', str(p)), ('limit', str(limit))])}"}

        envelope: dict[str, Any] = {
            "href": url(page)["href"], "page": str(page), "pageCount": str(page_count), "limit": str(limit),
            "first": url(0), "previous": url(page - 1) if page > 0 else None,
            "next": url(page + 1) if page + 1 < page_count else None, "last": url(max(page_count - 1, 0)),
            "items": [],
        }
        if wants_json(request):
            head = orjson.dumps(envelope)
            assert head.endswith(b'"items":[]}')
            body = head[:-2] + b",".join(items) + b"]}"
            return Response(body, media_type="application/json")
        envelope["items"] = [orjson.loads(b) for b in items]
        return Response(to_xml(envelope), media_type="application/xml; charset=utf-8")

    def _single(self, request: Request, shop: SrShop, resource: str, item_id: str) -> Response:
        kind = KIND[resource]
        api = api_base(request, shop)
        with self.sandbox.lock:
            record: Any = None
            inner = decode_outer_id(item_id, kind)
            if inner is None:
                raise ApiError(400, f"The given resource id is wrong: {item_id}!", 40007)
            if resource == "productExtend":
                record = shop.catalog.products.get(inner)
            elif resource == "customers":
                record = shop.catalog.customers.get(inner)
            elif resource == "orderExtend":
                record = shop.catalog.orders.get(inner)
            elif resource == "webHooks":
                record = shop.webhooks.get(inner)
            elif resource == "languages":
                record = inner if any(inner == lid for lid, _, _ in LANGUAGES) else None
            elif resource == "orderStatuses":
                record = inner if inner in ORDER_STATUSES else None
            else:
                lang = _language_of(item_id)
                record = (inner, lang) if inner in ORDER_STATUSES and lang is not None else None
            if record is None:
                raise ApiError(404, f"Resource not found! {resource}/{item_id}", 40401)
            data = _item_bytes(shop, resource, record, api)
        if wants_json(request):
            return Response(data, media_type="application/json")
        return Response(to_xml(orjson.loads(data)), media_type="application/xml; charset=utf-8")


# --- items -----------------------------------------------------------------------------------------------------

def _item_bytes(shop: SrShop, resource: str, record: Any, api: str) -> bytes:
    if isinstance(record, Product | Customer | Order):
        return shop.rendered(resource, record, api)
    return orjson.dumps(_item_obj(resource, record, api))


def _item_obj(resource: str, record: Any, api: str) -> dict[str, Any]:
    if resource == "webHooks":
        return webhook_item(record, api)
    if resource == "languages":
        return language_item(record, api)
    if resource == "orderStatuses":
        return order_status_item(record, api)
    return order_status_description_item(record[0], record[1], api)


def _item_href(resource: str, record: Any, api: str) -> str:
    if isinstance(record, Product | Customer | Order | SrWebhook):
        return f"{api}/{resource}/{_shop_outer(resource, record.inner_id)}"
    href: str = _item_obj(resource, record, api)["href"]
    return href


def _shop_outer(resource: str, inner: int) -> str:
    return SrShop.outer_id(KIND[resource], inner)


def _language_of(item_id: str) -> int | None:
    try:
        raw = base64.b64decode(item_id.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    _, _, tail = raw.partition("&language_id=")
    return int(tail) if tail.isdigit() and any(int(tail) == lid for lid, _, _ in LANGUAGES) else None
