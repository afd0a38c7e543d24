"""The one place that lists platforms. The engine, scheduler, web routes and CLI discover
connectors here; adding a platform means adding its package and one line to ``CONNECTORS``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol, runtime_checkable

from starlette.routing import BaseRoute

from worker.jobs.registry import JobRegistry

__all__ = ["Connector", "CONNECTORS", "connectors", "connector", "register_jobs"]


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


# module paths of platform packages, each exposing CONNECTOR
CONNECTORS: tuple[str, ...] = ()


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
