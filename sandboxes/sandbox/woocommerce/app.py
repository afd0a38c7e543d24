"""The Starlette app and the runner.

Routing — one server hosts many stores, each a WordPress in a sub-path (its home URL):

* ``/stores/{name}/wp-json/...`` — the WP REST API (``wc/v3`` for WooCommerce);
* ``/stores/{name}/?rest_route=/wc/v3/...`` — the same without pretty permalinks;
* ``/stores/{name}/wc-api/v3`` — the legacy API index (legacy-only stores and WooCommerce < 9.0);
* ``/stores/{name}/`` — the home page, with WordPress's ``Link: <.../wp-json/>; rel="https://api.w.org/"``;
* ``/_sandbox/health`` — liveness.

Every request passes the per-request latency, the fault injector and the concurrency counters, and lands in
``sandbox.request_log``. The store routes are served by ``site``; the REST API itself is the ``rest`` package.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.fault_middleware import FaultAnswers, HttpMiddleware, serve_with_faults
from sandbox.serving import serve_app
from sandbox.woocommerce.faults import classify_path, fault_body
from sandbox.woocommerce.site import StoreSites
from sandbox.woocommerce.state import RequestRecord, WooSandbox
from sandbox.woocommerce.tls import TlsTerminator, make_certificates

__all__ = ["create_app", "serve_woocommerce_sandbox"]

_SECRET_PARAM = re.compile(r"((?:^|&)consumer_secret=)[^&]*")
FAULT_ANSWERS = FaultAnswers(fault_body, retry_after=lambda seconds: f"{seconds:g}", headers=((b"server", b"nginx"),))
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class WooMiddleware(HttpMiddleware[WooSandbox]):
    """Latency, faults, concurrency counters and the request log."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox = self.sandbox
        start = time.monotonic()
        endpoint, store_name = classify_path(scope["path"])
        store = sandbox.stores.get(store_name) if store_name else None
        scope.setdefault("state", {})
        if store is not None:
            store.concurrent_requests += 1
            store.max_concurrent_requests = max(store.max_concurrent_requests, store.concurrent_requests)
        try:
            if sandbox.latency > 0 and endpoint != "other":
                await asyncio.sleep(sandbox.latency)
            status, fault = await serve_with_faults(self.app, scope, receive, send,
                                                    sandbox.faults.take(endpoint, store_name), FAULT_ANSWERS,
                                                    lambda: sandbox.count("faults_injected"))
        finally:
            if store is not None:
                store.concurrent_requests -= 1
        sandbox.count("requests")
        sandbox.count(f"http_{endpoint}")
        sandbox.count(f"status_{status}")
        sandbox.request_log.append(RequestRecord(
            time.time(), scope["method"], scope["path"], store_name, status, time.monotonic() - start,
            scope["state"].get("woo_auth"), endpoint, fault,
            _SECRET_PARAM.sub(r"\1[redacted]", scope.get("query_string", b"").decode("latin-1"))))


class SandboxEndpoints:
    """The sandbox's own routes (``/_sandbox/...``)."""

    def __init__(self, sandbox: WooSandbox) -> None:
        self.sandbox = sandbox

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "stores": sorted(self.sandbox.stores)})


def create_app(sandbox: WooSandbox) -> Starlette:
    sites, own = StoreSites(sandbox), SandboxEndpoints(sandbox)
    routes = [
        Route("/stores/{store}/wp-json", sites.wp_json, methods=ALL_METHODS),
        Route("/stores/{store}/wp-json/{route:path}", sites.wp_json, methods=ALL_METHODS),
        Route("/stores/{store}/wc-api/{route:path}", sites.legacy, methods=ALL_METHODS),
        Route("/stores/{store}", sites.home, methods=ALL_METHODS),
        Route("/stores/{store}/", sites.home, methods=ALL_METHODS),
        Route("/stores/{store}/{rest:path}", sites.other, methods=ALL_METHODS),
        Route("/_sandbox/health", own.health, methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(WooMiddleware, sandbox=sandbox)])


@contextmanager
def serve_woocommerce_sandbox(sandbox: WooSandbox, *, port: int = 0, host: str = "127.0.0.1", https: bool = False,
                              startup_timeout: float = 15.0) -> Iterator[str]:
    """Serve the sandbox in background threads; yields the base URL (``http(s)://127.0.0.1:PORT``).

    Sets ``sandbox.base_url``/``scheme`` (and ``ca_file`` with ``https=True``) and starts the webhook
    dispatcher; on exit stops everything (queued webhook deliveries are dropped)."""
    app = create_app(sandbox)
    if not https:
        with serve_app(app, port=port, host=host, lifespan="off", startup_timeout=startup_timeout,
                       name="woocommerce-sandbox") as base_url:
            sandbox.scheme = "http"
            sandbox.base_url = base_url
            sandbox.webhooks.start()
            try:
                yield base_url
            finally:
                sandbox.close()
                sandbox.base_url = None
        return
    tmp = Path(tempfile.mkdtemp(prefix="woo-sandbox-tls-"))
    try:
        ca, cert, key = make_certificates(tmp)
        with serve_app(app, port=0, host="127.0.0.1", lifespan="off", startup_timeout=startup_timeout,
                       name="woocommerce-sandbox") as backend_url:
            backend = urlsplit(backend_url)
            front = TlsTerminator((backend.hostname or "127.0.0.1", int(backend.port or 0)), cert, key,
                                  host=host, port=port)
            front_port = front.start(startup_timeout)
            base_url = f"https://{host}:{front_port}"
            sandbox.scheme = "https"
            sandbox.ca_file = str(ca)
            sandbox.base_url = base_url
            sandbox.webhooks.start()
            try:
                yield base_url
            finally:
                sandbox.close()
                front.stop()
                sandbox.base_url = None
                sandbox.scheme = "http"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        sandbox.ca_file = None
