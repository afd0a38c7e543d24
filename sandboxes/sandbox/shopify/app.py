"""The Starlette app and a background-thread uvicorn runner.

Routing — one server hosts many shops:

* ``/shops/{shop_domain}/admin/...`` — path prefix. A client replaces ``https://{shop}`` by
  ``{base_url}/shops/{shop}``, e.g. ``http://127.0.0.1:8081/shops/demo.myshopify.com``;
* ``/admin/...`` with ``Host: {shop_domain}`` — Host routing, for clients that cannot add a prefix;
* ``/_sandbox/bulk/{key}.jsonl`` — bulk operation results (unauthenticated, like Shopify's signed URLs);
* ``/_sandbox/health`` — liveness.

Every request passes the fault injector and lands in ``sandbox.request_log``. The handlers are ``endpoints``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.fault_middleware import FaultAnswers, HttpMiddleware, serve_with_faults
from sandbox.serving import serve_app
from sandbox.shopify.endpoints import GraphqlEndpoint, OAuthEndpoints, SandboxEndpoints
from sandbox.shopify.faults import classify_path, fault_body
from sandbox.shopify.state import RequestRecord, ShopifySandbox

__all__ = ["create_app", "serve_shopify_sandbox"]

FAULT_ANSWERS = FaultAnswers(fault_body, retry_after=lambda seconds: f"{seconds:.1f}")


class SandboxMiddleware(HttpMiddleware[ShopifySandbox]):
    """Fault injection + request log."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox = self.sandbox
        start = time.monotonic()
        endpoint, shop = classify_path(scope["path"])
        if shop is None:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode().split(":")[0]
            shop = host if host in sandbox.shops else None
        scope.setdefault("state", {})
        status, fault = await serve_with_faults(self.app, scope, receive, send, sandbox.faults.take(endpoint, shop),
                                                FAULT_ANSWERS, lambda: sandbox.count("faults_injected"))
        detail = scope["state"].get("sandbox_detail") or {}
        sandbox.count(f"http_{endpoint}")
        sandbox.count(f"status_{status}")
        sandbox.request_log.append(RequestRecord(time.time(), scope["method"], scope["path"], endpoint, shop, status,
                                                 time.monotonic() - start, fault, detail))


def create_app(state: ShopifySandbox) -> Starlette:
    sandbox = state
    oauth, admin, own = OAuthEndpoints(sandbox), GraphqlEndpoint(sandbox), SandboxEndpoints(sandbox)
    routes = [
        Route("/shops/{shop}/admin/oauth/authorize", oauth.oauth_authorize, methods=["GET"]),
        Route("/shops/{shop}/admin/oauth/access_token", oauth.oauth_token, methods=["POST"]),
        Route("/shops/{shop}/admin/api/{version}/graphql.json", admin.graphql, methods=["POST"]),
        Route("/admin/oauth/authorize", oauth.oauth_authorize, methods=["GET"]),
        Route("/admin/oauth/access_token", oauth.oauth_token, methods=["POST"]),
        Route("/admin/api/{version}/graphql.json", admin.graphql, methods=["POST"]),
        Route("/_sandbox/bulk/{key}", own.bulk_download, methods=["GET"]),
        Route("/_sandbox/health", own.health, methods=["GET"]),
        Route("/_sandbox/shops/{shop}/variants/{variant}", own.edit_variant, methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SandboxMiddleware, sandbox=sandbox)])


@contextmanager
def serve_shopify_sandbox(sandbox: ShopifySandbox, *, port: int = 0, host: str = "127.0.0.1",
                          startup_timeout: float = 15.0) -> Iterator[str]:
    """Run the sandbox with uvicorn in a background thread; yields the base URL (``http://127.0.0.1:PORT``).

    Sets ``sandbox.base_url`` (so ``sandbox.shop_url(shop)`` works) and starts the webhook dispatcher. On exit
    the server stops and ``sandbox.close()`` ends webhook/bulk threads and removes bulk result files."""
    with serve_app(create_app(sandbox), port=port, host=host, lifespan="off", startup_timeout=startup_timeout,
                   name="shopify-sandbox") as base_url:
        sandbox.base_url = base_url
        sandbox.webhooks.start()
        try:
            yield base_url
        finally:
            sandbox.close()
            sandbox.base_url = None
