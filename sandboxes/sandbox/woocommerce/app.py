"""The Starlette app and the runner.

Routing — one server hosts many stores, each a WordPress in a sub-path (its home URL):

* ``/stores/{name}/wp-json/...`` — the WP REST API (``wc/v3`` for WooCommerce);
* ``/stores/{name}/?rest_route=/wc/v3/...`` — the same without pretty permalinks;
* ``/stores/{name}/wc-api/v3`` — the legacy API index (legacy-only stores and WooCommerce < 9.0);
* ``/stores/{name}/`` — the home page, with WordPress's ``Link: <.../wp-json/>; rel="https://api.w.org/"``;
* ``/_sandbox/health`` — liveness.

Every request passes the per-request latency, the fault injector and the concurrency counters, and lands in
``sandbox.request_log``.
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

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.fault_middleware import FaultAnswers, HttpMiddleware, serve_with_faults
from sandbox.serving import serve_app
from sandbox.woocommerce.faults import classify_path, fault_body
from sandbox.woocommerce.php import php_json, php_query, wp_error
from sandbox.woocommerce.rest import JSON_TYPE, RestRequest, RestResult, dispatch, legacy_index
from sandbox.woocommerce.state import RequestRecord, WooSandbox, WooStore
from sandbox.woocommerce.tls import TlsTerminator, make_certificates

__all__ = ["create_app", "serve_woocommerce_sandbox"]

_SECRET_PARAM = re.compile(r"((?:^|&)consumer_secret=)[^&]*")
FAULT_ANSWERS = FaultAnswers(fault_body, retry_after=lambda seconds: f"{seconds:g}", headers=((b"server", b"nginx"),))
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_REST_HEADERS = [
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    ("Access-Control-Expose-Headers", "X-WP-Total, X-WP-TotalPages, Link"),
    ("Access-Control-Allow-Headers", "Authorization, X-WP-Nonce, Content-Disposition, Content-MD5, Content-Type"),
    ("Expires", "Wed, 11 Jan 1984 05:00:00 GMT"),
    ("Cache-Control", "no-cache, must-revalidate, max-age=0, no-store, private"),
]


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


def _html_404(store: WooStore | None) -> Response:
    title = store.title if store else "WordPress"
    body = (f"<!DOCTYPE html><html><head><title>Page not found &#8211; {title}</title></head>"
            f"<body class=\"error404\"><h1>Oops! That page can&rsquo;t be found.</h1></body></html>")
    return Response(body, status_code=404, media_type="text/html; charset=UTF-8")


def _rest_response(result: RestResult, head: bool) -> Response:
    response = Response(b"" if head else result.body, status_code=result.status, media_type=JSON_TYPE)
    if head:
        response.headers["content-length"] = str(len(result.body))
    for name, value in _REST_HEADERS:
        response.headers.append(name, value)
    for name, value in result.headers:
        response.headers.append(name, value)
    return response


def create_app(sandbox: WooSandbox) -> Starlette:
    async def rest(request: Request, store: WooStore, route: str, signed_path: str) -> Response:
        raw = await request.body()
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        json_body: dict[str, object] = {}
        post = {}
        if raw and ctype == "application/json":
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = wp_error("rest_invalid_json", "Invalid JSON body passed.", 400,
                                details={"json_error_code": 4, "json_error_message": "Syntax error"})
                return _rest_response(RestResult(400, php_json(body)), request.method == "HEAD")
            if isinstance(parsed, dict):
                json_body = parsed
        elif raw and ctype == "application/x-www-form-urlencoded":
            post = php_query(raw.decode("utf-8", "replace"))
        query = php_query(request.scope.get("query_string", b"").decode("latin-1"))
        override = request.headers.get("x-http-method-override", "")
        method_param = query.get("_method")
        if isinstance(method_param, str) and method_param:
            override = method_param
        req = RestRequest(request.method, route, query, post, json_body, request.headers.get("authorization", ""),
                          override, sandbox.ssl, signed_path)

        def run() -> RestResult:
            with sandbox.lock:
                return dispatch(store, req)

        result = await run_in_threadpool(run)
        request.state.woo_auth = result.auth
        if result.ping is not None:
            await sandbox.webhooks.ping(store, result.ping)
        return _rest_response(result, request.method == "HEAD")

    def store_of(request: Request) -> WooStore | None:
        return sandbox.stores.get(request.path_params["store"])

    def home_path(store: WooStore) -> str:
        return urlsplit(store.home_url).path + "/"

    def signed_path(request: Request, store: WooStore) -> str:
        # check_oauth_signature: REQUEST_URI's path, minus the home path when it starts with it (raw, undecoded).
        raw = request.scope.get("raw_path")
        path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
        prefix = home_path(store)
        return path[len(prefix):] if path.startswith(prefix) else path

    async def wp_json(request: Request) -> Response:
        store = store_of(request)
        if store is None:
            return _html_404(None)
        return await rest(request, store, "/" + request.path_params.get("route", ""), signed_path(request, store))

    async def home(request: Request) -> Response:
        store = store_of(request)
        if store is None:
            return _html_404(None)
        rest_route = request.query_params.get("rest_route")
        if rest_route is not None:
            return await rest(request, store, "/" + rest_route.lstrip("/"), signed_path(request, store))
        link = f'<{store.rest_url}/>; rel="https://api.w.org/"'
        generator = f'<meta name="generator" content="WooCommerce {store.wc_version}" />' \
            if store.is_woocommerce else ""
        body = (f"<!DOCTYPE html><html lang=\"en-US\"><head><title>{store.title}</title>"
                f"<meta name=\"generator\" content=\"WordPress {store.wp_version}\" />{generator}"
                f"<link rel=\"https://api.w.org/\" href=\"{store.rest_url}/\" /></head>"
                f"<body class=\"home\"><h1>{store.title}</h1></body></html>")
        return Response(body, media_type="text/html; charset=UTF-8", headers={"Link": link})

    async def legacy(request: Request) -> Response:
        store = store_of(request)
        if store is None or not store.legacy_api:
            return _html_404(store)
        path = request.path_params.get("route", "").strip("/")
        if path in ("v3", "v2", "v1"):
            return Response(legacy_index(store, sandbox.ssl), media_type="application/json; charset=UTF-8")
        body = {"errors": [{"code": "woocommerce_api_no_route",
                            "message": "No route was found matching the URL and request method"}]}
        return Response(php_json(body), status_code=404, media_type="application/json; charset=UTF-8")

    async def other(request: Request) -> Response:
        return _html_404(store_of(request))

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "stores": sorted(sandbox.stores)})

    routes = [
        Route("/stores/{store}/wp-json", wp_json, methods=ALL_METHODS),
        Route("/stores/{store}/wp-json/{route:path}", wp_json, methods=ALL_METHODS),
        Route("/stores/{store}/wc-api/{route:path}", legacy, methods=ALL_METHODS),
        Route("/stores/{store}", home, methods=ALL_METHODS),
        Route("/stores/{store}/", home, methods=ALL_METHODS),
        Route("/stores/{store}/{rest:path}", other, methods=ALL_METHODS),
        Route("/_sandbox/health", health, methods=["GET"]),
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
