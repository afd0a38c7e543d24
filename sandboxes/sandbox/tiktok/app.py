"""The Starlette app: TikTok Shop's consent page, token endpoints and Open API for many shops on one server.

Routing (``{base}`` is ``http://127.0.0.1:PORT``; paths are TikTok's own, so signatures match):

* ``GET {base}/open/authorize`` — replaces ``https://services.tiktokshop.com/open/authorize``;
* ``GET {base}/api/v2/token/get|refresh`` — replaces ``https://auth.tiktok-shops.com/api/v2/token/…``;
* ``{base}/authorization/…``, ``/product/…``, ``/order/…``, ``/logistics/…``, ``/event/…`` — replace
  ``https://open-api.tiktokglobalshop.com/…``;
* ``GET {base}/_sandbox/health``, ``GET {base}/_sandbox/shops/{shop_id}/skus[?seller_sku=…]`` (what a SKU's
  price and stock are now: for people watching a demo).

Every request passes the fault injector and lands in ``sandbox.request_log`` (with the envelope ``code``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from sandbox.fault_middleware import FaultAnswers, HttpMiddleware, serve_with_faults
from sandbox.serving import serve_app
from sandbox.tiktok.api import ApiEndpoints
from sandbox.tiktok.auth import AuthEndpoints
from sandbox.tiktok.faults import classify_path, fault_body
from sandbox.tiktok.products import ProductEndpoints
from sandbox.tiktok.render import amount
from sandbox.tiktok.state import TikTokSandbox, TtRequestRecord

__all__ = ["create_app", "serve_tiktok_sandbox"]

FAULT_ANSWERS = FaultAnswers(fault_body, retry_after=lambda seconds: str(math.ceil(seconds)))


class SandboxMiddleware(HttpMiddleware[TikTokSandbox]):
    """Fault injection + request log (with the envelope code each answer carried)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox = self.sandbox
        start = time.monotonic()
        endpoint, group = classify_path(scope["path"])
        state = scope.setdefault("state", {})
        code: list[int] = []

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", []):
                    if name == b"x-tt-code":
                        code.append(int(value))
            await send(message)

        status, fault = await serve_with_faults(self.app, scope, receive, noting, sandbox.faults.take(endpoint, group),
                                                FAULT_ANSWERS, lambda: sandbox.count("faults_injected"))
        if status == 429:
            sandbox.count("rate_limited")
        sandbox.count(f"status_{status}")
        with sandbox.lock:
            sandbox.request_log.append(TtRequestRecord(time.time(), scope["method"], scope["path"], endpoint, group,
                                                       status, code[0] if code else None, state.get("tt_shop"),
                                                       time.monotonic() - start, fault))


class SandboxEndpoints:
    def __init__(self, sandbox: TikTokSandbox) -> None:
        self.sandbox = sandbox

    async def health(self, request: Request) -> Response:
        return Response(orjson.dumps({"ok": True, "shops": sorted(self.sandbox.shops)}), media_type="application/json")

    async def skus(self, request: Request) -> Response:
        shop = self.sandbox.shops.get(request.path_params["shop_id"])
        if shop is None:
            return Response(orjson.dumps({"error": "unknown shop"}), status_code=404, media_type="application/json")
        wanted = request.query_params.get("seller_sku")
        with self.sandbox.lock:
            found = [{"product_id": p.id, "product_status": p.status, "sku_id": s.id, "seller_sku": s.seller_sku,
                      "price": amount(s.price), "currency": p.currency, "inventory": s.inventory,
                      "promotion_locked": s.promotion_locked}
                     for p in shop.products.values() for s in p.live_skus() if wanted in (None, s.seller_sku)]
        return Response(orjson.dumps(found), media_type="application/json")


def create_app(sandbox: TikTokSandbox) -> Starlette:
    auth, api, products, own = (AuthEndpoints(sandbox), ApiEndpoints(sandbox), ProductEndpoints(sandbox),
                                SandboxEndpoints(sandbox))
    routes = [
        Route("/open/authorize", auth.authorize, methods=["GET"]),
        Route("/api/v2/token/get", auth.token_get, methods=["GET"]),
        Route("/api/v2/token/refresh", auth.token_refresh, methods=["GET"]),
        Route("/authorization/202309/shops", api.shops, methods=["GET"]),
        Route("/logistics/202309/warehouses", api.warehouses, methods=["GET"]),
        Route("/product/202502/products/search", products.search, methods=["POST"]),
        Route("/product/202309/products/search", products.search, methods=["POST"]),
        Route("/product/202309/products/{product_id}", products.detail, methods=["GET"]),
        Route("/product/202309/products/{product_id}/prices/update", products.update_price, methods=["POST"]),
        Route("/product/202309/products/{product_id}/inventory/update", products.update_inventory, methods=["POST"]),
        Route("/order/202309/orders/search", api.search_orders, methods=["POST"]),
        Route("/order/202309/orders", api.order_detail, methods=["GET"]),
        Route("/event/202309/webhooks", api.webhooks, methods=["GET", "PUT", "DELETE"]),
        Route("/_sandbox/health", own.health, methods=["GET"]),
        Route("/_sandbox/shops/{shop_id}/skus", own.skus, methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SandboxMiddleware, sandbox=sandbox)])


@contextmanager
def serve_tiktok_sandbox(sandbox: TikTokSandbox, *, port: int = 0, host: str = "127.0.0.1",
                         startup_timeout: float = 15.0) -> Iterator[str]:
    """Run the sandbox in a background thread; yields the base URL and sets ``sandbox.base_url``. The webhook
    dispatcher starts with it and stops on exit."""
    with serve_app(create_app(sandbox), port=port, host=host, lifespan="off", startup_timeout=startup_timeout,
                   name="tiktok-sandbox") as base_url:
        sandbox.base_url = base_url
        sandbox.webhooks.start()
        try:
            yield base_url
        finally:
            sandbox.close()
            sandbox.base_url = None
