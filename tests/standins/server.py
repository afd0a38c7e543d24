"""One local "Supabase project": the PostgREST and Realtime stand-ins on one port.

``serve_supabase(dsn, jwt_secret)`` yields a base URL to use as ``SUPABASE_URL``: RPCs go to
``<url>/rest/v1/rpc/<fn>``, the Realtime socket is ``<url>/realtime/v1/websocket`` — the paths
supabase-py derives from a project URL. Keys are JWTs signed with ``jwt_secret`` (``make_jwt``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from starlette.applications import Starlette

from tests.standins.postgrest import PostgrestStandin, make_jwt, serve_app
from tests.standins.realtime import RealtimeStandin

__all__ = ["create_app", "make_jwt", "serve_supabase"]


def create_app(dsn: str, jwt_secret: str) -> Starlette:
    rest = PostgrestStandin(dsn, jwt_secret)
    realtime = RealtimeStandin(dsn, jwt_secret)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with rest.lifespan(app), realtime.lifespan(app):
            yield

    return Starlette(routes=[*rest.routes, *realtime.routes], lifespan=lifespan)


@contextmanager
def serve_supabase(dsn: str, jwt_secret: str, *, port: int = 0) -> Iterator[str]:
    """Run both stand-ins on 127.0.0.1 in a background thread; yields the base URL.

    ``port=0`` picks a free port; passing a stopped server's port restarts it at the same URL."""
    with serve_app(create_app(dsn, jwt_secret), port=port) as url:
        yield url
