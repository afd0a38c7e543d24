"""The Starlette app: ShopRenter's token endpoint and API2 for many shops on one server.

Routing (``{base}`` is ``http://127.0.0.1:PORT``):

* ``POST {base}/oauth/{shop}/app/token`` — replaces ``https://oauth.app.shoprenter.net/{shop}/app/token``;
* ``{base}/shops/{shop}/api/{resource}[/{id}]`` — replaces ``https://{shop}.api2.myshoprenter.hu/api/...``;
  resources ``productExtend``, ``customers``, ``orderExtend`` (GET), ``webHooks`` (GET/POST/PUT/DELETE),
  ``languages``, ``orderStatuses``, ``orderStatusDescriptions`` (GET);
* ``POST {base}/shops/{shop}/admin/oauth/access_credential`` — the retired Basic-Auth exchange: 403, as the docs say;
* ``GET {base}/_sandbox/health``.

API rules (docs ``development/api/01_constraints_requirements.md``, ``02_status_codes.md``, ``03_full_parameter.md``):
``Accept: application/json`` gives JSON, anything else XML; ``page`` starts at 0, ``limit`` ≤ 200 (default 25);
collection numbers are strings; a page past the last is 400 (inner code 40008); at most 3 requests per second per
app and shop, then 429. Every request passes the fault injector and lands in ``sandbox.request_log``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import operator
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.fault_middleware import FaultAnswers, HttpMiddleware, serve_with_faults
from sandbox.serving import serve_app
from sandbox.shoprenter.dataset import LANGUAGES, ORDER_STATUSES, Customer, Order, Product
from sandbox.shoprenter.faults import ACCESS_DENIED, classify_path, fault_body
from sandbox.shoprenter.ids import decode_outer_id, format_local, parse_local
from sandbox.shoprenter.render import (
    WEBHOOK_FIELDS,
    language_item,
    order_status_description_item,
    order_status_item,
    to_xml,
)
from sandbox.shoprenter.state import ShopRenterSandbox, SrRequestRecord, SrShop, SrToken
from sandbox.shoprenter.webhooks import EVENTS, SrWebhook

__all__ = ["create_app", "serve_shoprenter_sandbox"]

FAULT_ANSWERS = FaultAnswers(fault_body, retry_after=lambda seconds: str(math.ceil(seconds)))
COMMON_PARAMS = frozenset({"page", "limit", "full"})
# resource -> (filter params it accepts)
FILTERS: dict[str, frozenset[str]] = {
    "productExtend": frozenset({"updatedAfter", "updatedBefore", "createdAfter", "createdBefore", "updatedAt",
                                "createdAt", "sku", "innerId", "published", "parentProductId"}),
    "customers": frozenset({"updatedAtMin", "updatedAtMax", "createdAtMin", "createdAtMax", "email", "innerId"}),
    "orderExtend": frozenset({"updatedAtMin", "updatedAtMax", "createdAtMin", "createdAtMax", "updatedAt",
                              "createdAt", "innerId", "innerIdMin", "email", "orderStatusId",
                              "excludeAbandonedCart", "excludeStorno"}),
    "webHooks": frozenset(),
    "languages": frozenset(),
    "orderStatuses": frozenset(),
    "orderStatusDescriptions": frozenset({"orderStatusId", "languageId"}),
}
KIND = {"productExtend": "product", "customers": "customer", "orderExtend": "order", "webHooks": "webHook",
        "languages": "language", "orderStatuses": "orderStatus", "orderStatusDescriptions": "orderStatusDescription"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message} if self.code else {"message": self.message}


class SandboxMiddleware(HttpMiddleware[ShopRenterSandbox]):
    """Fault injection + request log."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox = self.sandbox
        start = time.monotonic()
        endpoint, resource, shop = classify_path(scope["path"])
        state = scope.setdefault("state", {})
        status, fault = await serve_with_faults(self.app, scope, receive, send,
                                                sandbox.faults.take(endpoint, resource, shop), FAULT_ANSWERS,
                                                lambda: sandbox.count("faults_injected"))
        if status == 429:
            sandbox.count("rate_limited")
        sandbox.count(f"http_{endpoint}")
        sandbox.count(f"status_{status}")
        with sandbox.lock:
            sandbox.request_log.append(SrRequestRecord(time.time(), scope["method"], scope["path"], shop, status,
                                                       endpoint, resource, state.get("sr_client"),
                                                       time.monotonic() - start, fault))


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()


def _render(request: Request, status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    if _wants_json(request):
        return Response(orjson.dumps(obj), status_code=status, media_type="application/json", headers=headers)
    return Response(to_xml(obj), status_code=status, media_type="application/xml; charset=utf-8", headers=headers)


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json", headers=headers)


def _date_param(name: str, value: str, tz: str) -> int:
    parsed = parse_local(value, tz)
    if parsed is None:
        raise ApiError(400, f"The given datetime parameter: {name} is invalid! Valid datetime format is "
                            "1990-01-01T00:00:00", 40009)
    return parsed


def _day_param(name: str, value: str) -> str:
    if len(value) != 10 or value[4] != "-" or value[7] != "-" or not value.replace("-", "").isdigit():
        raise ApiError(400, f"The given date parameter: {name} is invalid! Valid date format is 1990-01-01", 40017)
    return value


def _int_param(name: str, value: str, low: int = 0, high: int = 1_000_000_000) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"The {name} parameter has wrong data. The data is not int.", 40005) from None
    if not low <= number <= high:
        raise ApiError(400, f"The {name} must be integer {low} between {high}.", 40005)
    return number


Pred = Callable[[Any], bool]


def _compare(attr: str, op: Callable[[Any, Any], bool], value: Any) -> Pred:
    def pred(record: Any) -> bool:
        return bool(op(getattr(record, attr), value))
    return pred


def _equals(attr: str, value: Any) -> Pred:
    return _compare(attr, operator.eq, value)


def _local_day(attr: str, tz: str, day: str) -> Pred:
    def pred(record: Any) -> bool:
        return format_local(getattr(record, attr), tz)[:10] == day
    return pred


def _parent_is(parent: int) -> Pred:
    def pred(p: Any) -> bool:
        return bool((p.parent_id if p.parent_id is not None else p.inner_id) == parent)
    return pred


def _position_is(index: int, value: int | None) -> Pred:
    def pred(row: Any) -> bool:
        return bool(row[index] == value)
    return pred


def _time_filters(params: dict[str, str], tz: str, inclusive: bool,
                  names: dict[str, tuple[str, str]]) -> list[Pred]:
    """``names``: param -> (record attribute, "min" | "max" | "day")."""
    preds: list[Pred] = []
    for param, (attr, kind) in names.items():
        raw = params.get(param)
        if raw is None:
            continue
        if kind == "day":
            day = _day_param(param, raw)
            preds.append(_local_day(attr, tz, day))
            continue
        bound = _date_param(param, raw, tz)
        if kind == "min":
            preds.append(_compare(attr, operator.ge if inclusive else operator.gt, bound))
        else:
            preds.append(_compare(attr, operator.le if inclusive else operator.lt, bound))
    return preds


def create_app(state: ShopRenterSandbox) -> Starlette:
    sandbox = state

    def api_base(request: Request, shop: SrShop) -> str:
        return f"{str(request.base_url).rstrip('/')}/shops/{shop.name}/api"

    # --- token -----------------------------------------------------------------------------------------

    async def token(request: Request) -> Response:
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        params: dict[str, Any] = {}
        try:
            if "json" in ctype or raw[:1] == b"{":
                body = json.loads(raw or b"{}")
                if isinstance(body, dict):
                    params = body
            elif raw:
                params = dict(parse_qsl(raw.decode(), keep_blank_values=True))
        except (ValueError, UnicodeDecodeError):
            params = {}
        status, payload = sandbox.token_request(request.path_params["shop"], params)
        if status == 200:
            request.scope["state"]["sr_client"] = params.get("client_id")
        return _json(status, payload, {"cache-control": "no-store", "pragma": "no-cache"})

    async def access_credential(request: Request) -> Response:
        # Basic Auth credentials are retired: "Attempting to request ... will result in a 403 error response"
        return _json(403, {"message": "Forbidden"})

    # --- API -------------------------------------------------------------------------------------------

    def authorise(request: Request) -> tuple[SrShop, SrToken]:
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

    async def api(request: Request) -> Response:
        try:
            shop, tok = authorise(request)
            resource = request.path_params["resource"]
            item_id = request.path_params.get("item_id")
            if resource not in FILTERS:
                raise ApiError(404, f'Resource matching URI "/{resource}" not found')
            method = request.method
            if resource == "webHooks" and method in ("POST", "PUT", "DELETE"):
                return await webhook_write(request, shop, tok, item_id)
            if method != "GET":
                raise ApiError(405, f"The sandbox does not support {method} on {resource}")
            if item_id is not None:
                return single(request, shop, resource, item_id)
            return collection(request, shop, resource)
        except PermissionError as exc:
            body = {"error": "access_denied", "error_description": ACCESS_DENIED, "hint": str(exc),
                    "message": ACCESS_DENIED}
            return _json(401, body, {"www-authenticate": 'Bearer realm="OAuth"'})
        except ApiError as exc:
            return _render(request, exc.status, exc.body())

    def records(shop: SrShop, resource: str, params: dict[str, str]) -> list[Any]:
        """Matching records in innerId order (callers hold the lock)."""
        c = shop.catalog
        tz = shop.timezone
        incl = sandbox.filter_inclusive
        preds: list[Pred] = []
        rows: list[Any]
        if resource == "productExtend":
            rows = list(c.products.values())
            preds += _time_filters(params, tz, incl, {
                "updatedAfter": ("updated", "min"), "updatedBefore": ("updated", "max"),
                "createdAfter": ("created", "min"), "createdBefore": ("created", "max"),
                "updatedAt": ("updated", "day"), "createdAt": ("created", "day")})
            if "sku" in params:
                preds.append(_equals("sku", params["sku"]))
            if "innerId" in params:
                preds.append(_equals("inner_id", _int_param("innerId", params["innerId"])))
            if "published" in params:
                preds.append(_equals("status", _int_param("published", params["published"], 0, 2)))
            if "parentProductId" in params:
                pid = _int_param("parentProductId", params["parentProductId"])
                preds.append(_parent_is(pid))
        elif resource == "customers":
            rows = list(c.customers.values())
            preds += _time_filters(params, tz, incl, {
                "updatedAtMin": ("updated", "min"), "updatedAtMax": ("updated", "max"),
                "createdAtMin": ("created", "min"), "createdAtMax": ("created", "max")})
            if "email" in params:
                preds.append(_equals("email", params["email"]))
            if "innerId" in params:
                preds.append(_equals("inner_id", _int_param("innerId", params["innerId"])))
        elif resource == "orderExtend":
            rows = list(c.orders.values())
            preds += _time_filters(params, tz, incl, {
                "updatedAtMin": ("updated", "min"), "updatedAtMax": ("updated", "max"),
                "createdAtMin": ("created", "min"), "createdAtMax": ("created", "max"),
                "updatedAt": ("updated", "day"), "createdAt": ("created", "day")})
            if "email" in params:
                preds.append(_equals("email", params["email"]))
            if "innerId" in params:
                preds.append(_equals("inner_id", _int_param("innerId", params["innerId"])))
            if "innerIdMin" in params:
                floor = _int_param("innerIdMin", params["innerIdMin"])
                preds.append(_compare("inner_id", operator.ge, floor))
            if "orderStatusId" in params:
                sid = decode_outer_id(params["orderStatusId"], "orderStatus")
                if sid is None:
                    raise ApiError(400, f"The given resource id is wrong: {params['orderStatusId']}!", 40007)
                preds.append(_equals("status_id", sid))
        elif resource == "webHooks":
            rows = list(shop.webhooks.values())
        elif resource == "languages":
            rows = [lid for lid, _, _ in LANGUAGES]
        elif resource == "orderStatuses":
            rows = list(ORDER_STATUSES)
        else:  # orderStatusDescriptions
            rows = [(sid, lid) for sid in ORDER_STATUSES for lid, _, _ in LANGUAGES]
            if "orderStatusId" in params:
                sid = decode_outer_id(params["orderStatusId"], "orderStatus")
                preds.append(_position_is(0, sid))
            if "languageId" in params:
                lang = decode_outer_id(params["languageId"], "language")
                preds.append(_position_is(1, lang))
        if preds:
            rows = [r for r in rows if all(p(r) for p in preds)]
        return rows

    def item_bytes(shop: SrShop, resource: str, record: Any, api: str) -> bytes:
        if isinstance(record, Product | Customer | Order):
            return shop.rendered(resource, record, api)
        return orjson.dumps(item_obj(resource, record, api))

    def item_obj(resource: str, record: Any, api: str) -> dict[str, Any]:
        if resource == "webHooks":
            return webhook_item(record, api)
        if resource == "languages":
            return language_item(record, api)
        if resource == "orderStatuses":
            return order_status_item(record, api)
        return order_status_description_item(record[0], record[1], api)

    def item_href(resource: str, record: Any, api: str) -> str:
        if isinstance(record, Product | Customer | Order | SrWebhook):
            return f"{api}/{resource}/{shop_outer(resource, record.inner_id)}"
        href: str = item_obj(resource, record, api)["href"]
        return href

    def shop_outer(resource: str, inner: int) -> str:
        return SrShop.outer_id(KIND[resource], inner)

    def collection(request: Request, shop: SrShop, resource: str) -> Response:
        pairs = list(request.query_params.multi_items())
        params = dict(pairs)
        unknown = [k for k in params if k not in COMMON_PARAMS and k not in FILTERS[resource]]
        if unknown:
            raise ApiError(400, f"The given parameter: {unknown[0]} is not available!", 40010)
        page = _int_param("page", params.get("page", "0"))
        limit = _int_param("limit", params.get("limit", str(sandbox.default_limit)), 1, sandbox.max_limit)
        full = params.get("full", "0") == "1"
        api = api_base(request, shop)
        with sandbox.lock:
            rows = records(shop, resource, params)
            page_count = math.ceil(len(rows) / limit)
            if page_count and page >= page_count:
                raise ApiError(400, f"Page not found! This Resource minimum page is 0 and maximum page is "
                                    f"{page_count - 1}", 40008)
            chunk = rows[page * limit:(page + 1) * limit]
            if full:
                items = [item_bytes(shop, resource, r, api) for r in chunk]
            else:
                items = [orjson.dumps({"href": item_href(resource, r, api)}) for r in chunk]
        rest = [(k, v) for k, v in pairs if k not in ("page", "limit")]

        def url(p: int) -> dict[str, str]:
            return {"href": f"{api}/{resource}?{urlencode([*rest, ('page', str(p)), ('limit', str(limit))])}"}

        envelope: dict[str, Any] = {
            "href": url(page)["href"], "page": str(page), "pageCount": str(page_count), "limit": str(limit),
            "first": url(0), "previous": url(page - 1) if page > 0 else None,
            "next": url(page + 1) if page + 1 < page_count else None, "last": url(max(page_count - 1, 0)),
            "items": [],
        }
        if _wants_json(request):
            head = orjson.dumps(envelope)
            assert head.endswith(b'"items":[]}')
            body = head[:-2] + b",".join(items) + b"]}"
            return Response(body, media_type="application/json")
        envelope["items"] = [orjson.loads(b) for b in items]
        return Response(to_xml(envelope), media_type="application/xml; charset=utf-8")

    def single(request: Request, shop: SrShop, resource: str, item_id: str) -> Response:
        kind = KIND[resource]
        api = api_base(request, shop)
        with sandbox.lock:
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
            data = item_bytes(shop, resource, record, api)
        if _wants_json(request):
            return Response(data, media_type="application/json")
        return Response(to_xml(orjson.loads(data)), media_type="application/xml; charset=utf-8")

    # --- webHooks writes -------------------------------------------------------------------------------

    async def webhook_write(request: Request, shop: SrShop, tok: SrToken, item_id: str | None) -> Response:
        api = api_base(request, shop)
        if request.method in ("PUT", "DELETE") and item_id is None:
            raise ApiError(400, "Resource identity is missing.", 40011)
        if item_id is not None:
            inner = decode_outer_id(item_id or "", "webHook")
            if inner is None:
                raise ApiError(400, f"The given resource id is wrong: {item_id}!", 40007)
            with sandbox.lock:
                hook = shop.webhooks.get(inner)
                if hook is None:
                    raise ApiError(404, f"Resource not found! webHooks/{item_id}", 40401)
                if request.method == "DELETE":
                    del shop.webhooks[inner]
                    return Response(status_code=204)
        else:
            hook = None
        data = await _body(request)
        if hook is None:
            missing = [f for f in ("label", "event", "status", "webHookParameters") if f not in data]
            if missing:
                raise ApiError(400, f"The following fields are required: {', '.join(missing)}!", 40003)
        event = data.get("event", hook.event if hook else None)
        if event not in EVENTS:
            raise ApiError(400, "The event parameter has wrong data. This parameter is enum type. Check API "
                                "documentation for accepted values.", 40005)
        status = str(data.get("status", hook.status if hook else "1"))
        if status not in ("0", "1"):
            raise ApiError(400, "The status parameter has wrong data. This parameter is enum type. Check API "
                                "documentation for accepted values.", 40005)
        params = _parameters(data["webHookParameters"]) if "webHookParameters" in data else None
        delay = data.get("webHookDelay")
        delays = [dict(d) for d in delay if isinstance(d, dict)] if isinstance(delay, list) else []
        with sandbox.lock:
            if hook is None:
                hook = SrWebhook(shop.next_webhook, shop.name, str(data["label"]), str(event), int(status),
                                 params or [], delays, created_by=tok.client_id)
                shop.webhooks[hook.inner_id] = hook
                shop.next_webhook += 1
                code = 201
            else:
                hook.label = str(data.get("label", hook.label))
                hook.event = str(event)
                hook.status = int(status)
                if params is not None:
                    hook.parameters = params
                if delay is not None:
                    hook.delay = delays
                code = 200
            body = webhook_item(hook, api)
        return _render(request, code, body)

    async def health(request: Request) -> Response:
        return _json(200, {"ok": True, "shops": sorted(sandbox.shops)})

    routes = [
        Route("/oauth/{shop}/app/token", token, methods=["POST"]),
        Route("/shops/{shop}/admin/oauth/access_credential", access_credential, methods=["POST", "GET"]),
        Route("/shops/{shop}/api/{resource}", api, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/shops/{shop}/api/{resource}/{item_id}", api, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/_sandbox/health", health, methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SandboxMiddleware, sandbox=sandbox)])


def _language_of(item_id: str) -> int | None:
    try:
        raw = base64.b64decode(item_id.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    _, _, tail = raw.partition("&language_id=")
    return int(tail) if tail.isdigit() and any(int(tail) == lid for lid, _, _ in LANGUAGES) else None


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("data"), dict):
        data = data["data"]  # ShopRenter's documented {"data": {...}} envelope; the bare object works too
    if not isinstance(data, dict):
        raise ApiError(400, "Data parameter not found in POST/PUT!", 40001)
    return data


def _parameters(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str) or \
                item.get("type", "json") not in ("json", "xml"):
            raise ApiError(400, "The given data is wrong!", 40005)
        param: dict[str, Any] = {"type": item.get("type", "json"), "url": item["url"]}
        if "fields" in item:
            fields = item["fields"]
            if not isinstance(fields, list) or any(f not in WEBHOOK_FIELDS for f in fields):
                raise ApiError(400, "The fields parameter has wrong data. This parameter is enum type. Check API "
                                    "documentation for accepted values.", 40005)
            param["fields"] = list(fields)
        out.append(param)
    if not out:
        raise ApiError(400, "The webHookParameters field cannot be empty", 40005)
    return out


def webhook_item(hook: SrWebhook, api: str) -> dict[str, Any]:
    oid = SrShop.outer_id("webHook", hook.inner_id)
    href = {"href": f"{api}/webHooks/{oid}"}
    params = []
    for p in hook.parameters:
        entry: dict[str, Any] = {"type": p["type"], "url": p["url"]}
        if "fields" in p:
            entry["fields"] = p["fields"]
        entry["webHook"] = href
        params.append(entry)
    delays = [{"delay": str(d.get("delay", "")), "delayUnit": str(d.get("delayUnit", "")), "webHook": href}
              for d in hook.delay]
    return {"href": href["href"], "id": oid, "event": hook.event, "status": str(hook.status), "label": hook.label,
            "webHookParameters": params, "webHookDelay": delays}


@contextmanager
def serve_shoprenter_sandbox(sandbox: ShopRenterSandbox, *, port: int = 0, host: str = "127.0.0.1",
                             startup_timeout: float = 15.0) -> Iterator[str]:
    """Run the sandbox in a background thread; yields the base URL (``http://127.0.0.1:PORT``).

    Sets ``sandbox.base_url`` (so ``oauth_base_url``/``api_url`` work) and starts the webhook dispatcher; on exit
    the server stops and the dispatcher ends."""
    with serve_app(create_app(sandbox), port=port, host=host, lifespan="off", startup_timeout=startup_timeout,
                   name="shoprenter-sandbox") as base_url:
        sandbox.base_url = base_url
        sandbox.webhooks.start()
        try:
            yield base_url
        finally:
            sandbox.close()
            sandbox.base_url = None
