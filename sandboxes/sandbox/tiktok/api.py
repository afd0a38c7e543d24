"""The other Open API endpoints shopsync calls: Get Authorized Shops (202309, no ``shop_cipher``), Get Warehouse
List (202309), Get Order List (``POST /order/202309/orders/search``: ``page_size``, ``page_token``,
``sort_field`` create_time|update_time, ``sort_order`` ASC|DESC (default DESC); body ``create_time_ge/_lt``,
``update_time_ge/_lt``, ``order_status``, ``buyer_user_id``; the search cap applies as for products [unverified
for orders]),
Get Order Detail (``GET /order/202309/orders?ids=a,b``, ≤ 50 ids), and the shop's webhook addresses
(``GET``/``PUT``/``DELETE /event/202309/webhooks``)."""

from __future__ import annotations

from bisect import bisect_left

from starlette.requests import Request
from starlette.responses import Response

from sandbox.tiktok.gateway import authenticate, envelope, json_object, page_token, search_request
from sandbox.tiktok.model import TtOrder
from sandbox.tiktok.render import order_json, shop_json, warehouse_json
from sandbox.tiktok.state import TikTokSandbox, TtShop
from sandbox.tiktok.webhooks import EVENT_TYPES

__all__ = ["ApiEndpoints"]

_SUBSCRIBABLE = frozenset(EVENT_TYPES.values())


class ApiEndpoints:
    def __init__(self, sandbox: TikTokSandbox) -> None:
        self.sandbox = sandbox

    async def shops(self, request: Request) -> Response:
        caller = await authenticate(self.sandbox, request, shop_scoped=False)
        if isinstance(caller, Response):
            return caller
        shops = self.sandbox.authorized_shops(caller.app.app_key, caller.token.open_id)
        return envelope(0, "Success", {"shops": [shop_json(s.info) for s in shops]})

    async def warehouses(self, request: Request) -> Response:
        caller = await authenticate(self.sandbox, request)
        if isinstance(caller, Response):
            return caller
        shop = caller.require_shop()
        with self.sandbox.lock:
            return envelope(0, "Success", {"warehouses": [warehouse_json(w, shop.info) for w in shop.warehouses]})

    async def search_orders(self, request: Request) -> Response:
        search = await search_request(self.sandbox, request)
        if isinstance(search, Response):
            return search
        caller, size, offset, body = search
        field = caller.query.get("sort_field", "create_time")
        direction = caller.query.get("sort_order", "DESC")
        if field not in ("create_time", "update_time") or direction not in ("ASC", "DESC"):
            return envelope(36009004, "invalid param error: sort_field / sort_order", status=400)
        limits = {k: body.get(k) for k in ("create_time_ge", "create_time_lt", "update_time_ge", "update_time_lt")}
        if any(v is not None and not isinstance(v, int) for v in limits.values()):
            return envelope(36009004, "invalid param error: time filters are unix seconds", status=400)
        buyer = body.get("buyer_user_id")
        if buyer is not None and not isinstance(buyer, str):
            return envelope(36009004, "invalid param error: buyer_user_id is a string", status=400)
        shop = caller.require_shop()
        with self.sandbox.lock:
            if field == "create_time" and direction == "ASC" and body.get("order_status") is None and buyer is None \
                    and limits["update_time_ge"] is None and limits["update_time_lt"] is None:
                ordered, created = shop.orders_by_created()       # the usual walk: bisect, no scan
                found = ordered[bisect_left(created, limits["create_time_ge"] or 0):
                                bisect_left(created, limits["create_time_lt"]) if limits["create_time_lt"] is not None
                                else len(ordered)]
                return self._page(shop, found, size, offset)
            found = [o for o in shop.orders.values()
                     if (body.get("order_status") in (None, o.status)) and buyer in (None, o.user_id)
                     and (limits["create_time_ge"] is None or o.create_time >= limits["create_time_ge"])
                     and (limits["create_time_lt"] is None or o.create_time < limits["create_time_lt"])
                     and (limits["update_time_ge"] is None or o.update_time >= limits["update_time_ge"])
                     and (limits["update_time_lt"] is None or o.update_time < limits["update_time_lt"])]
            found.sort(key=lambda o: (getattr(o, field), int(o.id)), reverse=direction == "DESC")
            return self._page(shop, found, size, offset)

    def _page(self, shop: TtShop, found: list[TtOrder], size: int, offset: int) -> Response:
        total = len(found)
        if total > self.sandbox.order_search_cap and offset + size > self.sandbox.order_search_cap:
            self.sandbox.count("search_cap_errors")
            return envelope(12052180, "The total number of search results can not exceed 10000.")
        page = [order_json(o, shop.info) for o in found[offset:offset + size]]
        following = offset + size
        return envelope(0, "Success", {"orders": page, "total_count": total,
                                       "next_page_token": page_token(following) if following < total else ""})

    async def order_detail(self, request: Request) -> Response:
        caller = await authenticate(self.sandbox, request)
        if isinstance(caller, Response):
            return caller
        ids = [i for i in caller.query.get("ids", "").split(",") if i]
        if not ids or len(ids) > 50:
            return envelope(36009004, "invalid param error: ids (1 to 50 order ids)", status=400)
        shop = caller.require_shop()
        with self.sandbox.lock:
            if any(i not in shop.orders for i in ids):
                return envelope(21008111, "The order or package does not belong to the current seller.")
            return envelope(0, "Success", {"orders": [order_json(shop.orders[i], shop.info) for i in ids]})

    async def webhooks(self, request: Request) -> Response:
        caller = await authenticate(self.sandbox, request)
        if isinstance(caller, Response):
            return caller
        shop = caller.require_shop()
        key = caller.app.app_key
        if request.method == "GET":
            with self.sandbox.lock:
                listed = [{"address": address, "event_type": event, "create_time": 0, "update_time": 0}
                          for (app_key, event), address in sorted(shop.webhook_addresses.items()) if app_key == key]
            return envelope(0, "Success", {"total_count": len(listed), "webhooks": listed})
        body = json_object(caller.body)
        if isinstance(body, Response):
            return body
        event = body.get("event_type")
        if event not in _SUBSCRIBABLE:
            return envelope(36009004, "invalid param error: event_type", status=400)
        with self.sandbox.lock:
            if request.method == "DELETE":
                shop.webhook_addresses.pop((key, str(event)), None)
            else:
                address = body.get("address")
                if not isinstance(address, str) or not address.startswith(("https://", "http://")) \
                        or len(address) > 255:
                    return envelope(36009004, "invalid param error: address", status=400)
                shop.webhook_addresses[(key, str(event))] = address
        return envelope(0, "Success", {})
