"""The HTTP endpoints, bound to one sandbox: OAuth (``oauth``'s rules over HTTP), the GraphQL Admin API
(authentication, body parsing, then ``resolver.execute`` under the lock in a worker thread; write faults, see
``write_faults``) and the sandbox's own ``/_sandbox/...`` routes (bulk result downloads, health).

Admin routes find the shop by the ``{shop}`` path prefix or, without one, by the ``Host`` header.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from sandbox.shopify.oauth import authorize, token_endpoint
from sandbox.shopify.resolver import RequestContext, execute
from sandbox.shopify.state import Shop, ShopifySandbox
from sandbox.shopify.write_faults import LostAnswer, mutation_fields
from sandbox.shopify.writes.idempotency import IDEMPOTENT_MUTATIONS, release, reserve

__all__ = ["GraphqlEndpoint", "OAuthEndpoints", "SandboxEndpoints"]

UNAUTHORIZED = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
CHUNK = 64 * 1024


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _shop_of(sandbox: ShopifySandbox, request: Request) -> Shop | None:
    domain = request.path_params.get("shop") or request.headers.get("host", "").split(":")[0]
    return sandbox.shops.get(domain)


class OAuthEndpoints:
    """``/admin/oauth/authorize`` and ``/admin/oauth/access_token``."""

    def __init__(self, sandbox: ShopifySandbox) -> None:
        self.sandbox = sandbox

    async def oauth_authorize(self, request: Request) -> Response:
        shop = _shop_of(self.sandbox, request)
        if shop is None:
            return Response("Not Found", status_code=404)
        query = parse_qs(request.url.query, keep_blank_values=True)
        status, headers, body = authorize(self.sandbox, shop, query)
        return Response(body, status_code=status, headers=headers)

    async def oauth_token(self, request: Request) -> Response:
        shop = _shop_of(self.sandbox, request)
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
        status, payload = token_endpoint(self.sandbox, shop, params)
        return _json(status, payload)


class GraphqlEndpoint:
    """``POST /admin/api/{version}/graphql.json``."""

    def __init__(self, sandbox: ShopifySandbox) -> None:
        self.sandbox = sandbox

    async def graphql(self, request: Request) -> Response:
        sandbox = self.sandbox
        shop = _shop_of(sandbox, request)
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
        ctx = RequestContext(sandbox, shop, token, served, str(request.base_url).rstrip("/"))
        given = variables if isinstance(variables, dict) else None
        slow = None
        if sandbox.faults.has_write_rules("slow_write"):
            names = mutation_fields(payload["query"], given, payload.get("operationName"))
            slow = sandbox.faults.take_write("slow_write", names, shop.domain)
        if slow is not None:  # the write is under way, its idempotency keys in flight, before it runs
            with sandbox.lock:
                reserve(ctx, payload["query"], given, payload.get("operationName"), IDEMPOTENT_MUTATIONS)
            sandbox.count("faults_injected")
            await asyncio.sleep(slow.seconds)

        def run() -> tuple[dict[str, Any], dict[str, Any]]:
            with sandbox.lock:
                return execute(ctx, payload["query"], given, payload.get("operationName"))

        body, detail = await run_in_threadpool(run)
        request.state.sandbox_detail = detail
        if slow is not None:
            detail["write_fault"] = "slow_write"
            with sandbox.lock:
                release(ctx)
        if detail.get("kind") == "mutation" and "error" not in detail and not detail.get("throttled"):
            lost = sandbox.faults.take_write("lost_answer", list(detail["fields"]), shop.domain)
            if lost is not None:  # the write committed; its answer never arrives
                sandbox.count("faults_injected")
                sandbox.count("write_answers_lost")
                detail["write_fault"] = f"lost_answer:{lost.how}"
                return LostAnswer(lost.how, lost.seconds, len(json.dumps(body)))
        return _json(200, body, {"X-Shopify-API-Version": served, "X-Request-Id": str(uuid.uuid4())})


class SandboxEndpoints:
    """The sandbox's own routes: ``/_sandbox/bulk/{key}.jsonl``, ``/_sandbox/health`` and
    ``POST /_sandbox/shops/{shop}/variants/{variant}`` (a merchant's edit, for demos: ``{"price": "12.30"}`` and/or
    ``{"available": 5, "location": <id>}``; the webhooks fire as for any change)."""

    def __init__(self, sandbox: ShopifySandbox) -> None:
        self.sandbox = sandbox

    async def bulk_download(self, request: Request) -> Response:
        sandbox = self.sandbox
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

    async def health(self, request: Request) -> Response:
        return _json(200, {"ok": True, "shops": sorted(self.sandbox.shops)})

    async def edit_variant(self, request: Request) -> Response:
        shop = self.sandbox.shops.get(request.path_params["shop"])
        try:
            body = json.loads(await request.body() or b"{}")
            variant = int(request.path_params["variant"])
            if shop is None or not isinstance(body, dict):
                raise ValueError
            if body.get("price") is not None:
                await run_in_threadpool(shop.update_variant, variant, price=str(body["price"]))
            if body.get("available") is not None:
                location = body.get("location") or shop.location_ids()[0]
                await run_in_threadpool(shop.set_inventory, variant, int(location), int(body["available"]))
        except (ValueError, KeyError, TypeError):
            return _json(400, {"error": "expected a known shop and variant, and {price} and/or {available, location}"})
        return _json(200, {"ok": True})
