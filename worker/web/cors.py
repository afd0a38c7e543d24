"""CORS for the routes a signed-in user's browser calls with its access token (``BrowserRoute``, e.g.
``POST /woocommerce/connect``), from the origins in ``SHOPSYNC_CORS_ORIGINS`` — none by default.

Only those routes answer preflights and carry ``Access-Control-*`` headers: webhooks, OAuth callbacks and
health or metrics routes are called by platforms and probes, never by a page, so no origin may read them.
Tokens travel in the ``Authorization`` header, not cookies: no credentials mode is needed or allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount, Route, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BrowserRoute", "CorsMiddleware", "browser_paths"]

MAX_AGE = 600      # seconds a browser may cache a preflight


class BrowserRoute(Route):
    """A route a user's browser calls (with the user's access token): CORS applies to it."""


def _walk(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _walk(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix + route.path, route


def browser_paths(routes: Iterable[BaseRoute]) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """(path pattern, methods) of every BrowserRoute, Mount prefixes included."""
    return [(compile_path(path)[0], frozenset(route.methods or ())) for path, route in _walk(routes)
            if isinstance(route, BrowserRoute)]


class CorsMiddleware:
    def __init__(self, app: ASGIApp, *, origins: Sequence[str], routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.paths = browser_paths(routes)
        methods = sorted({m for _, ms in self.paths for m in ms} - {"HEAD"} | {"OPTIONS"})
        self.cors = CORSMiddleware(app, allow_origins=list(origins), allow_methods=methods,
                                   allow_headers=["authorization", "content-type"], max_age=MAX_AGE) \
            if origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.cors is not None and scope["type"] == "http" and any(p.match(scope["path"]) for p, _ in self.paths):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
