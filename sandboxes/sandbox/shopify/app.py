"""The Starlette app and a background-thread uvicorn runner.

Routing — one server hosts many shops:

* ``/shops/{shop_domain}/admin/...`` — path prefix. A client replaces ``https://{shop}`` by
  ``{base_url}/shops/{shop}``, e.g. ``http://127.0.0.1:8081/shops/demo.myshopify.com``;
* ``/admin/...`` with ``Host: {shop_domain}`` — Host routing, for clients that cannot add a prefix;
* ``/_sandbox/bulk/{key}.jsonl`` — bulk operation results (unauthenticated, like Shopify's signed URLs);
* ``/_sandbox/health`` — liveness.

Every request passes the fault injector and lands in ``sandbox.request_log``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.fault_middleware import FaultAnswers, HttpMiddleware, serve_with_faults
from sandbox.serving import serve_app
from sandbox.shopify.faults import classify_path, fault_body
from sandbox.shopify.oauth import authorize, token_endpoint
from sandbox.shopify.resolver import RequestContext, execute
from sandbox.shopify.state import RequestRecord, Shop, ShopifySandbox

__all__ = ["create_app", "serve_shopify_sandbox"]

UNAUTHORIZED = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
CHUNK = 64 * 1024
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


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(state: ShopifySandbox) -> Starlette:
    sandbox = state

    def shop_of(request: Request) -> Shop | None:
        domain = request.path_params.get("shop") or request.headers.get("host", "").split(":")[0]
        return sandbox.shops.get(domain)

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def oauth_authorize(request: Request) -> Response:
        shop = shop_of(request)
        if shop is None:
            return Response("Not Found", status_code=404)
        query = parse_qs(request.url.query, keep_blank_values=True)
        status, headers, body = authorize(sandbox, shop, query)
        return Response(body, status_code=status, headers=headers)

    async def oauth_token(request: Request) -> Response:
        shop = shop_of(request)
        if shop is None:
            return _json(404, {"errors": "Not Found"})
        params: dict[str, Any] = {k: v for k, v in request.query_params.items()}
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        try:
            if "json" in ctype and raw:
                body = json.loads(raw)
                if isinstance(body, dict):
                    params.update(body)
            elif raw:
                params.update({k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()})
        except (ValueError, UnicodeDecodeError):
            return _json(400, {"error": "invalid_request", "error_description": "Malformed request body"})
        status, payload = token_endpoint(sandbox, shop, params)
        return _json(status, payload)

    async def graphql(request: Request) -> Response:
        shop = shop_of(request)
        if shop is None:
            return _json(404, {"errors": "Not Found"})
        served = sandbox.resolve_version(request.path_params["version"])
        if served is None:
            return _json(404, {"errors": "Not Found"})
        now = time.time()
        with sandbox.lock:
            token = sandbox.tokens.get(request.headers.get("x-shopify-access-token", ""))
            inst = shop.installations.get(token.client_id) if token else None
            authorised = token is not None and token.valid(now) and token.shop == shop.domain and \
                inst is not None and inst.active
        if not authorised or token is None:
            sandbox.count("unauthorized")
            return _json(401, UNAUTHORIZED)
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        try:
            if "application/graphql" in ctype:
                payload: Any = {"query": raw.decode()}
            else:
                payload = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            return _json(400, {"errors": {"query": "Required parameter missing or invalid"}})
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return _json(400, {"errors": {"query": "Required parameter missing or invalid"}})
        variables = payload.get("variables")
        if isinstance(variables, str):
            try:
                variables = json.loads(variables) if variables else {}
            except ValueError:
                variables = {}
        ctx = RequestContext(sandbox, shop, token, served, base_url(request))

        def run() -> tuple[dict[str, Any], dict[str, Any]]:
            with sandbox.lock:
                return execute(ctx, payload["query"], variables if isinstance(variables, dict) else None,
                               payload.get("operationName"))

        body, detail = await run_in_threadpool(run)
        request.state.sandbox_detail = detail
        return _json(200, body, {"X-Shopify-API-Version": served, "X-Request-Id": str(uuid.uuid4())})

    async def bulk_download(request: Request) -> Response:
        key = request.path_params["key"].removesuffix(".jsonl")
        with sandbox.lock:
            op = sandbox.bulk.by_key(key)
            status = sandbox.bulk.status(op) if op else None
        if op is None or status is None:
            return Response("<Error><Code>NoSuchKey</Code></Error>", status_code=404, media_type="application/xml")
        if status == "EXPIRED":
            return Response("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                            status_code=403, media_type="application/xml")
        partial = request.query_params.get("partial") == "1"
        if partial and status == "FAILED" and op.partial_size:
            size = op.partial_size
        elif not partial and status == "COMPLETED" and op.file_size is not None:
            size = op.file_size
        else:
            return Response("<Error><Code>NoSuchKey</Code></Error>", status_code=404, media_type="application/xml")
        path = op.path

        async def chunks() -> AsyncIterator[bytes]:
            # Stream from disk in chunks: a 100k-product export never sits in memory.
            remaining = size
            fh = await run_in_threadpool(path.open, "rb")
            try:
                while remaining > 0:
                    data = await run_in_threadpool(fh.read, min(CHUNK, remaining))
                    if not data:
                        break
                    remaining -= len(data)
                    yield data
            finally:
                await run_in_threadpool(fh.close)

        return StreamingResponse(chunks(), media_type="application/jsonl",
                                 headers={"content-length": str(size)})

    async def health(request: Request) -> Response:
        return _json(200, {"ok": True, "shops": sorted(sandbox.shops)})

    routes = [
        Route("/shops/{shop}/admin/oauth/authorize", oauth_authorize, methods=["GET"]),
        Route("/shops/{shop}/admin/oauth/access_token", oauth_token, methods=["POST"]),
        Route("/shops/{shop}/admin/api/{version}/graphql.json", graphql, methods=["POST"]),
        Route("/admin/oauth/authorize", oauth_authorize, methods=["GET"]),
        Route("/admin/oauth/access_token", oauth_token, methods=["POST"]),
        Route("/admin/api/{version}/graphql.json", graphql, methods=["POST"]),
        Route("/_sandbox/bulk/{key}", bulk_download, methods=["GET"]),
        Route("/_sandbox/health", health, methods=["GET"]),
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
