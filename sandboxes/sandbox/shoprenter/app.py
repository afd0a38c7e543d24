"""The Starlette app: ShopRenter's token endpoint and API2 for many shops on one server.

Routing (``{base}`` is ``http://127.0.0.1:PORT``):

* ``POST {base}/oauth/{shop}/app/token`` — replaces ``https://oauth.app.shoprenter.net/{shop}/app/token``;
* ``{base}/shops/{shop}/api/{resource}[/{id}]`` — replaces ``https://{shop}.api2.myshoprenter.hu/api/...``;
  resources ``productExtend``, ``customers``, ``orderExtend`` (GET), ``webHooks`` (GET/POST/PUT/DELETE),
  ``languages``, ``orderStatuses``, ``orderStatusDescriptions`` (GET);
* ``POST {base}/shops/{shop}/admin/oauth/access_credential`` — the retired Basic-Auth exchange: 403, as the docs say;
* ``GET {base}/_sandbox/health``.

API rules (docs ``development/api/01_constraints_requirements.md``, ``02_status_codes.md``, ``03_full_parameter.md``):
``Accept: application/json`` gives JSON, anything else XML; ``page`` starts at 0, ``limit`` ≤ 200 (default 25);
collection numbers are strings; a page past the last is 400 (inner code 40008); at most 3 requests per second per
app and shop, then 429. Every request passes the fault injector and lands in ``sandbox.request_log``.

The handlers: ``oauth`` (the token endpoint), ``api`` (auth, the rate limit, API2 reads), ``webhook_api``
(``webHooks`` writes), ``query`` (collection filters), ``responses`` (errors, JSON or XML).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.fault_middleware import FaultAnswers, HttpMiddleware, serve_with_faults
from sandbox.serving import serve_app
from sandbox.shoprenter.api import ApiEndpoints
from sandbox.shoprenter.faults import classify_path, fault_body
from sandbox.shoprenter.oauth import TokenEndpoints
from sandbox.shoprenter.responses import json_response
from sandbox.shoprenter.state import ShopRenterSandbox, SrRequestRecord

__all__ = ["create_app", "serve_shoprenter_sandbox"]

FAULT_ANSWERS = FaultAnswers(fault_body, retry_after=lambda seconds: str(math.ceil(seconds)))


class SandboxMiddleware(HttpMiddleware[ShopRenterSandbox]):
    """Fault injection + request log."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox = self.sandbox
        start = time.monotonic()
        endpoint, resource, shop = classify_path(scope["path"])
        state = scope.setdefault("state", {})
        status, fault = await serve_with_faults(self.app, scope, receive, send,
                                                sandbox.faults.take(endpoint, resource, shop), FAULT_ANSWERS,
                                                lambda: sandbox.count("faults_injected"))
        if status == 429:
            sandbox.count("rate_limited")
        sandbox.count(f"http_{endpoint}")
        sandbox.count(f"status_{status}")
        with sandbox.lock:
            sandbox.request_log.append(SrRequestRecord(time.time(), scope["method"], scope["path"], shop, status,
                                                       endpoint, resource, state.get("sr_client"),
                                                       time.monotonic() - start, fault))


class SandboxEndpoints:
    """The sandbox's own routes (``/_sandbox/...``)."""

    def __init__(self, sandbox: ShopRenterSandbox) -> None:
        self.sandbox = sandbox

    async def health(self, request: Request) -> Response:
        return json_response(200, {"ok": True, "shops": sorted(self.sandbox.shops)})


def create_app(state: ShopRenterSandbox) -> Starlette:
    sandbox = state
    tokens, api, own = TokenEndpoints(sandbox), ApiEndpoints(sandbox), SandboxEndpoints(sandbox)
    routes = [
        Route("/oauth/{shop}/app/token", tokens.token, methods=["POST"]),
        Route("/shops/{shop}/admin/oauth/access_credential", tokens.access_credential, methods=["POST", "GET"]),
        Route("/shops/{shop}/api/{resource}", api.api, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/shops/{shop}/api/{resource}/{item_id}", api.api, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/_sandbox/health", own.health, methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SandboxMiddleware, sandbox=sandbox)])


@contextmanager
def serve_shoprenter_sandbox(sandbox: ShopRenterSandbox, *, port: int = 0, host: str = "127.0.0.1",
                             startup_timeout: float = 15.0) -> Iterator[str]:
    """Run the sandbox in a background thread; yields the base URL (``http://127.0.0.1:PORT``).

    Sets ``sandbox.base_url`` (so ``oauth_base_url``/``api_url`` work) and starts the webhook dispatcher; on exit
    the server stops and the dispatcher ends."""
    with serve_app(create_app(sandbox), port=port, host=host, lifespan="off", startup_timeout=startup_timeout,
                   name="shoprenter-sandbox") as base_url:
        sandbox.base_url = base_url
        sandbox.webhooks.start()
        try:
            yield base_url
        finally:
            sandbox.close()
            sandbox.base_url = None
