"""What every connector class shares: its settings (loaded on first use, replaceable in tests) and one
``Sealer`` per core settings object (opening a store's credentials must not re-parse the keys each time)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

import httpx
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from worker.config import Settings
from worker.errors import ConfigError, PermanentError
from worker.jobs.registry import Handler, Job, JobContext
from worker.rpc import stores
from worker.sealing import Sealer

__all__ = ["ConnectorBase", "active_store_handler", "load_platform_settings", "shared_client"]

StoreJob = Callable[[Job, JobContext, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]

S = TypeVar("S", bound=BaseSettings)


def load_platform_settings(model: type[S], label: str, **overrides: Any) -> S:
    """A platform's settings from the environment, or one ConfigError listing every invalid field."""
    try:
        return model(**overrides)
    except ValidationError as exc:
        lines = [f"{label.lower()}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"invalid {label} configuration:\n  " + "\n  ".join(lines)) from None


class ConnectorBase(Generic[S]):
    def __init__(self, settings: S | None, loader: Callable[[], S]) -> None:
        self._settings = settings
        self._loader = loader
        self._sealer: tuple[Settings, Sealer] | None = None

    @property
    def settings(self) -> S:
        if self._settings is None:
            self._settings = self._loader()
        return self._settings

    def sealer(self, core: Settings) -> Sealer:
        # keyed by the settings object itself, held here: an id() could be reused by newer settings
        # once the old object is freed, and hand them a sealer with the old keys
        cached = self._sealer
        if cached is None or cached[0] is not core:
            cached = self._sealer = (core, Sealer.from_settings(core))
        return cached[1]


def active_store_handler(kind: str, work: StoreJob) -> Handler:
    """A handler for a job about one store that only makes sense while the store is active (e.g.
    ``<platform>.check_webhooks``): ``work`` gets the store row from ``get_store``."""

    async def handle(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        if job.store_id is None:
            raise PermanentError(f"{kind} job {job.id} has no store")
        store = await stores.get_store(jctx.db, store_id=job.store_id)
        if store is None or store["status"] != "active":
            return {"skipped": "the store is not active"}
        return await work(job, jctx, {**store, "id": job.store_id})

    return handle


# event loop → key → client: a client's connections belong to the loop that opened them
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, httpx.AsyncClient]] = \
    weakref.WeakKeyDictionary()


def shared_client(key: Hashable, make: Callable[[], httpx.AsyncClient]) -> httpx.AsyncClient:
    """One HTTP client per event loop and ``key`` (what the client's configuration depends on), kept for the
    loop's life. For requests that must be quick and come one at a time (live look-ups): making a client
    costs tens of milliseconds (its TLS context), and a kept one reuses its connections."""
    clients = _SHARED.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(key)
    if client is None or client.is_closed:
        client = clients[key] = make()
    return client
