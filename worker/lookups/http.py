"""The look-up endpoints: ``POST /v1/lookups/<operation>`` with a JSON body (values such as emails and phone
numbers stay out of URLs, which proxies and access logs keep), ``GET /v1/lookups/list_stores``, and the OpenAPI
document at ``GET /v1/lookups/openapi.json``. Each answers what ``LookupService.run`` answers; errors are the
app's one shape, ``{"error", "detail"}`` (plus ``policy``/``resource``/``live_lookups`` where they say more)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from worker.lookups.keys import caller_from_request
from worker.lookups.openapi import openapi_document
from worker.lookups.operations import OPERATIONS
from worker.lookups.service import LookupFailure, LookupService
from worker.lookups.settings import LookupSettings
from worker.web.responses import error_response
from worker.web.user_auth import AuthUnavailable, Unauthenticated, auth_unavailable_response, unauthenticated_response

__all__ = ["lookup_routes", "service_for"]


def service_for(request: Request, settings: LookupSettings) -> LookupService:
    db = request.app.state.db
    if db is None:
        raise RuntimeError("database not open")
    return LookupService(db, request.app.state.settings, settings, metrics=request.app.state.metrics)


def failure_response(failure: LookupFailure) -> Response:
    response = error_response(failure.status, failure.detail, headers=failure.headers or None)
    if failure.extra:
        body = orjson.loads(bytes(response.body))
        return JSONResponse({**body, **failure.extra}, status_code=failure.status, headers=failure.headers or None)
    return response


async def _body(request: Request, limit: int) -> dict[str, Any] | Response:
    if request.method == "GET":
        return {}
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return error_response(415, "send the look-up's parameters as a JSON object (Content-Type: application/json)")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            return error_response(413, f"a look-up request is at most {limit} bytes")
    try:
        body = orjson.loads(bytes(raw)) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return error_response(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return error_response(400, "the body must be a JSON object of the look-up's parameters")
    return body


def lookup_routes(settings: LookupSettings) -> list[BaseRoute]:
    """The routes, relative to ``/v1/lookups`` (the app mounts them there)."""

    async def operation(request: Request) -> Response:
        name = request.path_params["operation"]
        if name not in OPERATIONS:
            return error_response(404, f"no look-up named {name[:40]!r}; see /v1/lookups/openapi.json")
        if request.method == "GET" and OPERATIONS[name].resource is not None:
            return error_response(405, f"{name} takes a JSON body: POST it", headers={"Allow": "POST"})
        try:
            caller = await caller_from_request(request)
        except Unauthenticated as exc:
            return unauthenticated_response(exc)
        except AuthUnavailable as exc:
            return auth_unavailable_response(exc)
        body = await _body(request, settings.max_body_bytes)
        if isinstance(body, Response):
            return body
        try:
            answer = await service_for(request, settings).run(caller, name, body, interface="http")
        except LookupFailure as failure:
            return failure_response(failure)
        return Response(orjson.dumps(answer.model_dump(mode="json")), media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    return [Route("/openapi.json", openapi, methods=["GET"]),
            Route("/{operation}", operation, methods=["GET", "POST"])]
