"""The one place that lists platforms. The engine, scheduler, web routes and CLI discover
connectors here; adding a platform means adding its package and one line to ``CONNECTORS``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from starlette.routing import BaseRoute

from worker.config import Settings
from worker.db.port import Database
from worker.jobs.registry import JobRegistry

__all__ = ["Connector", "CONNECTORS", "connectors", "connector", "publish_configs", "register_jobs"]

log = logging.getLogger("shopsync.connectors")


@runtime_checkable
class Connector(Protocol):
    """What every platform package exposes as ``CONNECTOR``."""

    platform: str           # as stored in shopsync.stores.platform
    display_name: str

    def routes(self) -> Sequence[BaseRoute]:
        """Web routes (webhooks, OAuth callbacks) mounted under /<platform>/."""
        ...

    def register_jobs(self, registry: JobRegistry) -> None:
        """Add this platform's job handlers (e.g. ``<platform>.sync``)."""
        ...

    def public_config(self, core: Settings) -> Mapping[str, Any] | None:
        """Non-secret facts the database needs (e.g. for ``begin_install``), or None if unconfigured."""
        ...


# module paths of platform packages, each exposing CONNECTOR
CONNECTORS: tuple[str, ...] = ("worker.connectors.shopify", "worker.connectors.woocommerce",
                               "worker.connectors.shoprenter")


@lru_cache(maxsize=1)
def connectors() -> tuple[Connector, ...]:
    found = []
    for path in CONNECTORS:
        module = importlib.import_module(path)
        found.append(module.CONNECTOR)
    return tuple(found)


def connector(platform: str) -> Connector:
    for c in connectors():
        if c.platform == platform:
            return c
    raise KeyError(f"no connector for platform {platform!r}")


def register_jobs(registry: JobRegistry) -> None:
    for c in connectors():
        c.register_jobs(registry)


async def publish_configs(db: Database, settings: Settings) -> None:
    """Store each configured connector's public config (worker and web processes do this at start)."""
    for c in connectors():
        config = c.public_config(settings)
        if config is not None:
            await db.rpc("set_platform_config", {"p_platform": c.platform, "p_config": dict(config)})
        else:
            log.info("%s is not configured here: its installs and jobs are unavailable", c.display_name)
