"""The one place that lists platforms, and the core's use of their contracts.

The web process mounts each connector's routes from its contract, the worker registers its job kinds
from it, and both publish its non-secret config to the database at start. ``check_against_database``
then refuses to start (naming the connector and the part) when a connector's contract and the database
disagree: a job kind SQL can enqueue with no handler, or a synced table it writes that is not in the
catalog. Adding a platform means adding its package and one line to ``CONNECTORS``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from starlette.routing import BaseRoute, Mount

from worker.config import Settings
from worker.connectors.base import active_store_handler, disconnect_handler, reporting_recreated
from worker.connectors.contract import ConnectorContract, ContractError, StandardJob
from worker.db.port import Database
from worker.errors import ConfigError
from worker.jobs.registry import JobRegistry
from worker.rpc import catalog, queue, stores
from worker.rpc.catalog import CatalogTable
from worker.sync.engine import sync_handler
from worker.sync.inbox import inbox_handler
from worker.web.webhooks import webhook_route

__all__ = ["CONNECTORS", "Connector", "check_against_database", "connector", "connectors", "contract_problems",
           "contracts", "publish_configs", "register_jobs", "web_routes"]

log = logging.getLogger("shopsync.connectors")

RESERVED_PATHS = frozenset({"healthz", "readyz", "metrics", "notifications"})


@runtime_checkable
class Connector(Protocol):
    """What every platform package exposes as ``CONNECTOR``."""

    @property
    def contract(self) -> ConnectorContract: ...


# module paths of platform packages, each exposing CONNECTOR
CONNECTORS: tuple[str, ...] = ("worker.connectors.shopify", "worker.connectors.woocommerce",
                               "worker.connectors.shoprenter", "worker.connectors.tiktok")


@lru_cache(maxsize=1)
def connectors() -> tuple[Connector, ...]:
    return tuple(importlib.import_module(path).CONNECTOR for path in CONNECTORS)


def contracts() -> tuple[ConnectorContract, ...]:
    return tuple(c.contract for c in connectors())


def connector(platform: str) -> Connector:
    for c in connectors():
        if c.contract.platform == platform:
            return c
    raise KeyError(f"no connector for platform {platform!r}")


def web_routes(declared: Iterable[ConnectorContract] | None = None) -> list[BaseRoute]:
    """Each connector's webhook, connect and other routes, mounted under ``/<platform>``."""
    mounted: list[BaseRoute] = []
    for contract in contracts() if declared is None else declared:
        if contract.platform in RESERVED_PATHS:
            raise ContractError(f"connector platform {contract.platform!r} cannot be mounted at /{contract.platform}")
        mounted.append(Mount(f"/{contract.platform}", routes=[webhook_route(contract), *contract.connect.routes,
                                                               *contract.routes]))
    return mounted


def register_jobs(registry: JobRegistry, declared: Iterable[ConnectorContract] | None = None) -> None:
    """The standard kinds of every connector, built from its contract, and its own kinds."""
    for contract in contracts() if declared is None else declared:
        kind = contract.job_kind
        registry.register(kind(StandardJob.SYNC), sync_handler(contract.sync))
        registry.register(kind(StandardJob.WEBHOOK), inbox_handler(kind(StandardJob.WEBHOOK), contract.webhooks.apply,
                                                                   contract.webhooks.topics))
        registry.register(kind(StandardJob.CHECK_WEBHOOKS),
                          active_store_handler(kind(StandardJob.CHECK_WEBHOOKS),
                                               reporting_recreated(contract.webhooks.check)))
        registry.register(kind(StandardJob.DISCONNECT),
                          disconnect_handler(kind(StandardJob.DISCONNECT), contract.webhooks.remove))
        if contract.connect.install_claimed is not None:
            registry.register(kind(StandardJob.INSTALL_CLAIMED), contract.connect.install_claimed)
        for name, handler in contract.jobs.items():
            registry.register(kind(name), handler)


def contract_problems(declared: Sequence[ConnectorContract], job_kinds: Sequence[Mapping[str, Any]],
                      synced: Sequence[CatalogTable], registry: JobRegistry) -> list[str]:
    """What stops these connectors from running against a database whose SQL enqueues ``job_kinds`` and
    whose catalog is ``synced``: each problem names the connector (or the core) and the missing part."""
    problems: list[str] = []
    tables = {t.table_name: t for t in synced}
    for contract in declared:
        who = f"connector {contract.platform!r} ({contract.display_name})"
        for row in job_kinds:
            if row["scope"] != "platform":
                continue
            needed = row["required_when"] == "always" or contract.connect.flow.parks_installs
            kind = contract.job_kind(str(row["kind"]))
            if needed and kind not in registry:
                problems.append(f"{who}: no handler for {kind}, which SQL enqueues ({row['enqueued_by']})")
        for resource, written in contract.reads.items():
            for table in written:
                entry = tables.get(table)
                if entry is None:
                    problems.append(f"{who}: reads.{resource} writes {table}, which is not a synced table "
                                    "in the catalog (shopsync_private.synced_tables)")
                elif entry.resource != resource:
                    problems.append(f"{who}: reads.{resource} writes {table}, which the catalog files under "
                                    f"resource {entry.resource!r}")
    for row in job_kinds:
        if row["scope"] == "core" and str(row["kind"]) not in registry:
            problems.append(f"core: no handler for {row['kind']}, which SQL enqueues ({row['enqueued_by']})")
    return problems


async def check_against_database(db: Database, registry: JobRegistry) -> None:
    """Refuse to start (ConfigError listing every problem) when the connectors and the database disagree."""
    problems = contract_problems(contracts(), await queue.job_kinds(db), await catalog.synced_catalog(db), registry)
    if problems:
        raise ConfigError("the connectors do not match the database:\n  " + "\n  ".join(problems))


async def publish_configs(db: Database, settings: Settings) -> None:
    """Store each configured connector's public config (worker and web processes do this at start)."""
    for contract in contracts():
        config = contract.public_config(settings)
        if config is not None:
            await stores.set_platform_config(db, platform=contract.platform, config=config)
        else:
            log.info("%s is not configured here: its installs and jobs are unavailable", contract.display_name)
