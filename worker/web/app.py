"""The web process: health and readiness probes, Prometheus metrics, and each connector's routes.

Connector routes (webhooks, OAuth callbacks) mount under ``/<platform>``; they reach the database,
settings and counters through ``request.app.state.db`` / ``.settings`` / ``.metrics``. Every error
is JSON ``{"error": <code>, "detail": <text>}`` so platforms and operators get something readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.config import Settings
from worker.connectors import registry
from worker.db import Database, open_database
from worker.errors import ConfigError, DatabaseError
from worker.migrate import checksum, migration_files
from worker.paths import SQL_DIR
from worker.rpc import maintenance
from worker.web.cors import CorsMiddleware
from worker.web.metrics import CONTENT_TYPE, WebMetrics
from worker.web.responses import error_response

__all__ = ["BodyLimitMiddleware", "create_app", "route_template", "serve"]

log = logging.getLogger(__name__)

READY_TIMEOUT = 3.0      # a probe that hangs is worse than one that fails: orchestrators time out too
METRICS_TIMEOUT = 5.0
METRICS_WINDOW_SECONDS = 900
UNMATCHED = "unmatched"  # route label for requests no route matched (keeps label cardinality bounded)


# --- routing labels -------------------------------------------------------------------------------
def route_template(routes: Sequence[BaseRoute], scope: Scope, prefix: str = "") -> str | None:
    """The template of the route Starlette's router would pick for ``scope`` (e.g.
    ``/shopify/webhooks/{topic}``), or None. Mirrors the router: first full match, else first partial
    (the method-not-allowed case)."""
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            if not route.routes:    # a mounted ASGI app: everything below belongs to it
                template: str | None = f"{prefix}{route.path}/*"
            else:
                template = route_template(route.routes, {**scope, **child}, prefix + route.path)
            if template is None:
                continue
        else:
            path = getattr(route, "path", None)
            if not isinstance(path, str):
                continue
            template = prefix + path
        if match is Match.FULL:
            return template
        partial = partial or template
    return partial


# --- middleware -----------------------------------------------------------------------------------
class _BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes")


class BodyLimitMiddleware:
    """Rejects request bodies over ``max_body_bytes`` with 413, and counts every HTTP response.

    A declared Content-Length over the limit is refused before the app runs. Otherwise the body is
    counted as the app reads it, and reading past the limit raises a 413 HTTPException inside the
    app (which the exception handler renders), so nothing ever buffers more than the limit.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: WebMetrics,
                 routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_template(self.routes, scope) or UNMATCHED
        status: int | None = None
        started = time.perf_counter()

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            rejection = self._check_declared_length(scope)
            if rejection is not None:
                await rejection(scope, receive, counting_send)
                return
            await self.app(scope, self._limited(receive), counting_send)
        except _BodyTooLarge as exc:
            # raised outside anything that renders HTTPExceptions (e.g. by other middleware)
            if status is not None:
                raise
            await error_response(413, exc.detail)(scope, receive, counting_send)
        except BaseException:
            if status is None:
                status = 500   # ServerErrorMiddleware, outside us, sends the 500
            raise
        finally:
            self.metrics.http(route, status if status is not None else 500, time.perf_counter() - started)

    def _check_declared_length(self, scope: Scope) -> Response | None:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return error_response(400, "invalid Content-Length header")
                if length > self.max_body_bytes:
                    return error_response(413, f"request body is larger than {self.max_body_bytes} bytes")
        return None

    def _limited(self, receive: Receive) -> Receive:
        received = 0
        limit = self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            if received > limit:     # keep refusing if the app swallowed the first error
                raise _BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        return limited_receive


# --- error handlers -------------------------------------------------------------------------------
async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    if exc.status_code == 404:
        detail = f"no route for {request.url.path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        detail = f"method {request.method} not allowed" + (f"; allowed: {allowed}" if allowed else "")
    return error_response(exc.status_code, detail, headers=exc.headers)


async def _database_error(request: Request, exc: Exception) -> Response:
    """The database did not answer: 503 at once (platforms retry webhooks; probes see it). Any other refusal
    reaching here is a bug: 500, logged, without the database's message."""
    assert isinstance(exc, DatabaseError)
    if exc.outage:
        return error_response(503, "the database is unavailable; retry shortly", headers={"Retry-After": "1"})
    log.error("unhandled database error %s on %s", exc.sqlstate, request.url.path)
    return error_response(500, "internal server error")


async def _server_error(request: Request, exc: Exception) -> Response:
    # ServerErrorMiddleware re-raises after this, so uvicorn logs the traceback; the client learns nothing
    return error_response(500, "internal server error")


# --- endpoints ------------------------------------------------------------------------------------
async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _db(request: Request) -> Database:
    db: Database | None = getattr(request.app.state, "db", None)
    if db is None:
        raise RuntimeError("database not open")
    return db


async def _readiness_problems(request: Request) -> list[str]:
    expected: dict[str, str] = request.app.state.expected_migrations
    timeout: float = request.app.state.ready_timeout
    try:
        applied = await asyncio.wait_for(maintenance.applied_migrations(_db(request)), timeout)
    except DatabaseError as exc:
        if exc.sqlstate in ("42883", "3F000", "42P01"):        # no shopsync schema or functions yet
            return ["migration pending: the database has no shopsync schema yet (run shopsync migrate)"]
        return [f"database unreachable ({'no answer' if exc.outage else exc.sqlstate})"]
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; only the type is safe to show
        return [f"database unreachable: {type(exc).__name__}"]
    problems = list(getattr(request.app.state, "startup_problems", []))
    for name, expected_sum in expected.items():
        if name not in applied:
            problems.append(f"migration pending: {name}")
        elif applied[name] != expected_sum:
            problems.append(f"migration changed since applied: {name}")
    # Migrations the database has but this code lacks are fine: a newer release migrated first.
    return problems


async def _readyz(request: Request) -> Response:
    problems = await _readiness_problems(request)
    if not problems:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not ready", "problems": problems,
                         "error": "not_ready", "detail": "; ".join(problems)}, status_code=503)


async def _metrics(request: Request) -> Response:
    metrics: WebMetrics = request.app.state.metrics
    try:
        queue: dict[str, Any] | None = await asyncio.wait_for(
            maintenance.queue_metrics(_db(request), window_seconds=METRICS_WINDOW_SECONDS), METRICS_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - still serve our own counters; _up 0 says the rest is missing
        log.warning("queue metrics unavailable: %s", type(exc).__name__)
        queue = None
    return Response(metrics.render(queue), media_type=CONTENT_TYPE)


async def _check_database(app: Starlette, db: Database, settings: Settings, *, retry: bool = False) -> None:
    """Publish the connectors' configs and check their contracts against the database. With ``retry``
    (the database was down at start) wait for it; a mismatch found then makes /readyz say so."""
    from worker.runtime import build_registry

    while True:
        try:
            await registry.publish_configs(db, settings)
            await registry.check_against_database(db, build_registry())
            return
        except DatabaseError as exc:
            if not (retry and exc.outage):
                raise
            await asyncio.sleep(0.5)
        except ConfigError as exc:
            if not retry:
                raise
            log.error("%s", exc)
            app.state.startup_problems = [str(exc)]
            return


def _routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
    ]
    return routes + registry.web_routes()


def create_app(settings: Settings, db: Database | None = None, *, ready_timeout: float = READY_TIMEOUT) -> Starlette:
    """The web app. With ``db`` given the caller owns it (tests, embedding); otherwise the lifespan
    opens one (no LISTEN connection: the web process never waits for jobs) and closes it."""
    metrics = WebMetrics()
    routes = _routes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if db is not None:
            yield
            return
        # the web process starts, and answers /healthz, even while the database is down
        opened = await open_database(settings, listen=False, wait=False)
        app.state.db = opened
        starting: asyncio.Task[None] | None = None
        try:
            if getattr(opened, "available", True):
                await _check_database(app, opened, settings)      # a mismatch stops the process here
            else:
                starting = asyncio.create_task(_check_database(app, opened, settings, retry=True))
            yield
        finally:
            if starting is not None:
                starting.cancel()
            app.state.db = None
            await opened.close()

    handlers: dict[Any, Any] = {HTTPException: _http_exception, DatabaseError: _database_error,
                                Exception: _server_error}
    app = Starlette(
        routes=routes,
        middleware=[Middleware(CorsMiddleware, origins=settings.cors_origins, routes=routes),
                    Middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes, metrics=metrics,
                               routes=routes)],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    # Set now, not only in the lifespan: ASGI transports in tests do not run lifespans.
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.db = db
    app.state.ready_timeout = ready_timeout
    # Files cannot change under a running process; hash them once instead of on every probe.
    app.state.expected_migrations = {f.name: checksum(f) for f in migration_files("migrations", SQL_DIR)}
    return app


def serve(settings: Settings) -> None:
    """Run the web process until SIGINT/SIGTERM; in-flight requests get ~10 s to finish."""
    from worker.logs import configure_logging

    configure_logging(settings)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        access_log=False,          # http counters and our own logs instead
        log_config=None,           # keep configure_logging's redacting handler
        proxy_headers=True,        # trusted proxies: uvicorn's FORWARDED_ALLOW_IPS (default 127.0.0.1)
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    uvicorn.Server(config).run()
