"""What the web process mounts for look-ups: the HTTP endpoints under ``/v1/lookups`` and the MCP endpoint at
``/v1/mcp/``, and the MCP session manager its lifespan must run."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from starlette.routing import BaseRoute, Mount

from worker.config import Settings
from worker.lookups.http import lookup_routes
from worker.lookups.mcp_server import McpEndpoint
from worker.lookups.openapi import API_PREFIX
from worker.lookups.settings import LookupSettings, lookup_settings

__all__ = ["MCP_PREFIX", "LookupsWeb"]

MCP_PREFIX = "/v1/mcp"


class LookupsWeb:
    def __init__(self, core: Settings, settings: LookupSettings | None = None) -> None:
        self.settings = settings or lookup_settings()
        self.mcp = McpEndpoint(core, self.settings)      # one per app: its session manager runs once

    @property
    def routes(self) -> list[BaseRoute]:
        return [Mount(API_PREFIX, routes=lookup_routes(self.settings)), Mount(MCP_PREFIX, app=self.mcp)]

    def running(self) -> AbstractAsyncContextManager[None]:
        return self.mcp.running()
