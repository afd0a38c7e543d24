"""API2 ``webHooks`` writes (POST, PUT, DELETE) and the ``webHook`` item shape; deliveries are ``webhooks``."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.shoprenter.ids import decode_outer_id
from sandbox.shoprenter.render import WEBHOOK_FIELDS
from sandbox.shoprenter.responses import ApiError, api_base, render
from sandbox.shoprenter.state import ShopRenterSandbox, SrShop, SrToken
from sandbox.shoprenter.webhooks import EVENTS, SrWebhook

__all__ = ["webhook_item", "webhook_write"]


async def webhook_write(sandbox: ShopRenterSandbox, request: Request, shop: SrShop, tok: SrToken,
                        item_id: str | None) -> Response:
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
    return render(request, code, body)


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
