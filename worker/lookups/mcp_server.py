"""The look-ups as MCP tools (the ``mcp`` package's ``MCPServer``): one tool per operation, its JSON schema made
from the operation's parameter model, its structured output the operation's answer — the same ``LookupService``
the HTTP endpoints call.

* Streamable HTTP, mounted by the web process at ``/v1/mcp/`` (``McpEndpoint``): stateless JSON (each POST
  stands alone, nothing kept between requests, any number of web processes), authenticated before MCP runs —
  a missing, malformed, unknown, revoked or expired key, or an invalid user token, answers HTTP 401. Host and
  Origin are checked against the public URL and loopback (DNS-rebinding protection).
* stdio, through ``shopsync mcp`` (``run_stdio``): the agent host starts it with the API key in
  ``SHOPSYNC_LOOKUP_KEY``; it talks to the database itself, as the web process does.

A refused look-up is a tool error whose text starts with the HTTP status (``404 not_found: unknown store …``);
texts never hold a value that was looked up (the SDK logs them).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import urlsplit

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from worker.config import Settings
from worker.lookups.keys import Caller, caller_from_request, key_caller
from worker.lookups.operations import OPERATIONS, Operation
from worker.lookups.service import LookupFailure, LookupService
from worker.lookups.settings import LookupSettings
from worker.rpc import lookups as lookup_rpc
from worker.web.responses import error_response
from worker.web.user_auth import AuthUnavailable, Unauthenticated, auth_unavailable_response, unauthenticated_response

__all__ = ["INSTRUCTIONS", "McpEndpoint", "build_mcp_server", "run_stdio"]

log = logging.getLogger("shopsync.lookups.mcp")

INSTRUCTIONS = ("Read-only look-ups of a shop's customers, orders (status, lines, tracking) and products (price, "
                "stock). Call list_stores first: it gives the store ids and what each store's access policy allows. "
                "A resource whose policy is not_allowed is refused; api_only ones are asked from the platform live.")
SCOPE_KEY = "shopsync.lookups"        # the ASGI scope entry the HTTP endpoint leaves for the tools

Resolver = Callable[[Context], tuple[LookupService, Caller]]


def _failure_text(failure: LookupFailure) -> str:
    try:
        phrase = HTTPStatus(failure.status).phrase.lower().replace(" ", "_")
    except ValueError:
        phrase = "error"
    extra = "".join(f" [{k}: {', '.join(v) if isinstance(v, list) else v}]" for k, v in failure.extra.items())
    return f"{failure.status} {phrase}: {failure.detail}{extra}"


def _annotated(base: Any, *metadata: Any) -> Any:
    """``Annotated[base, *metadata]`` built at run time (a model field's type and constraints)."""
    return Annotated.__class_getitem__((base, *metadata))  # type: ignore[attr-defined]


def _tool(op: Operation, resolve: Resolver) -> Callable[..., Any]:
    """A tool function whose signature is the operation's parameters (so the SDK derives the JSON schema and
    validates the arguments) and whose return type is the operation's answer (the output schema)."""

    async def tool(ctx: Context, **arguments: Any) -> BaseModel:
        service, caller = resolve(ctx)
        try:
            return await service.run(caller, op.name, arguments, interface="mcp")
        except LookupFailure as failure:
            raise ToolError(_failure_text(failure)) from None

    parameters = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    for name, info in op.params.model_fields.items():
        annotation = _annotated(info.annotation, *info.metadata, Field(description=info.description))
        default = inspect.Parameter.empty if info.is_required() else info.default
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                            annotation=annotation))
    tool.__signature__ = inspect.Signature(parameters, return_annotation=op.answer)  # type: ignore[attr-defined]
    tool.__name__ = op.name
    return tool


def build_mcp_server(resolve: Resolver) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("shopsync", title="shopsync look-ups", instructions=INSTRUCTIONS,
                                       log_level="WARNING")
    for op in OPERATIONS.values():
        server.add_tool(_tool(op, resolve), name=op.name, title=op.title, description=op.description,
                        annotations=ToolAnnotations(title=op.title, read_only_hint=True, idempotent_hint=True,
                                                    destructive_hint=False, open_world_hint=False))
    return server


def _allowed(core: Settings, settings: LookupSettings) -> TransportSecuritySettings:
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *settings.mcp_allowed_hosts]
    public = urlsplit(core.public_url)
    if public.hostname:
        hosts += [public.netloc, f"{public.hostname}:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*"]
    origins += [f"{u.scheme}://{u.netloc}" for u in map(urlsplit, (core.public_url, core.frontend_url)) if u.netloc]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=list(dict.fromkeys(hosts)),
                                     allowed_origins=list(dict.fromkeys(origins)))


class McpEndpoint:
    """The ASGI app mounted at ``/v1/mcp``: authenticates, then hands the request to the MCP server's
    streamable HTTP app. Its session manager runs in the web app's lifespan (``running()``)."""

    def __init__(self, core: Settings, settings: LookupSettings) -> None:
        self.core = core
        self.settings = settings
        self.server = build_mcp_server(self._resolve)
        self.app = self.server.streamable_http_app(streamable_http_path="/", stateless_http=True, json_response=True,
                                                   max_request_body_size=settings.max_body_bytes,
                                                   transport_security=_allowed(core, settings))

    def running(self) -> AbstractAsyncContextManager[None]:
        return self.server.session_manager.run()

    @staticmethod
    def _resolve(ctx: Context) -> tuple[LookupService, Caller]:
        request = ctx.request_context.request
        found = request.scope.get(SCOPE_KEY) if isinstance(request, Request) else None
        if found is None:          # cannot happen behind __call__
            raise ToolError("401 unauthorized: not authenticated")
        service, caller = found
        return service, caller

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            caller = await caller_from_request(request)
        except Unauthenticated as exc:
            await unauthenticated_response(exc)(scope, receive, send)
            return
        except AuthUnavailable as exc:
            await auth_unavailable_response(exc)(scope, receive, send)
            return
        db = request.app.state.db
        if db is None:
            await error_response(503, "the database is not open")(scope, receive, send)
            return
        if caller.key_hash is not None:
            status = await lookup_rpc.lookup_key_status(db, key_hash=caller.key_hash)
            if status != "active":
                text = {"revoked": "this API key was revoked", "expired": "this API key has expired"}.get(
                    status or "", "unknown API key")
                await unauthenticated_response(Unauthenticated(text))(scope, receive, send)
                return
        scope[SCOPE_KEY] = (LookupService(db, self.core, self.settings, metrics=request.app.state.metrics), caller)
        await self.app(scope, receive, send)


async def run_stdio(core: Settings, settings: LookupSettings, key: str) -> int:
    """``shopsync mcp``: the tools over stdin/stdout for the agent host that started this process, as the API
    key's caller. Refuses to start (exit 2, a line on stderr) with a key that cannot look anything up."""
    from worker.db import open_database

    try:
        caller = key_caller(key)
    except Unauthenticated as exc:
        log.error("shopsync mcp: %s", exc)
        return 2
    db = await open_database(core, listen=False)
    try:
        status = await lookup_rpc.lookup_key_status(db, key_hash=caller.key_hash or "")
        if status != "active":
            log.error("shopsync mcp: the API key in SHOPSYNC_LOOKUP_KEY is %s", status or "unknown")
            return 2
        service = LookupService(db, core, settings, worker_id="mcp-stdio")
        server = build_mcp_server(lambda _ctx: (service, caller))
        await server.run_stdio_async()
        return 0
    finally:
        await db.close()
