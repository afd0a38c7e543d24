"""What every connector class shares: its settings (loaded on first use, replaceable in tests) and one
``Sealer`` per core settings object (opening a store's credentials must not re-parse the keys each time);
and the core's handlers for jobs about one store built from a connector's parts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from worker.config import Settings, validation_lines
from worker.errors import ConfigError, PermanentError
from worker.jobs.registry import Handler, Job, JobContext
from worker.rpc import stores
from worker.sealing import Sealer

__all__ = ["ConnectorBase", "active_store_handler", "disconnect_handler", "load_platform_settings"]

log = logging.getLogger("shopsync.connectors")

StoreJob = Callable[[Job, JobContext, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]

S = TypeVar("S", bound=BaseSettings)


def load_platform_settings(model: type[S], label: str, **overrides: Any) -> S:
    """A platform's settings from the environment, or one ConfigError listing every invalid variable."""
    try:
        return model(**overrides)
    except ValidationError as exc:
        raise ConfigError(f"invalid {label} configuration:\n  " + "\n  ".join(validation_lines(model, exc))) \
            from None


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


def disconnect_handler(kind: str, remove: StoreJob) -> Handler:
    """``<platform>.disconnect`` (enqueued by ``disconnect_store``): while the store is still disconnected,
    remove what shopsync created at it (``remove``: its webhooks), then delete its credentials. A store that
    cannot be reached is retried with the job's backoff; when the platform refuses the credentials, or on
    the last attempt, the credentials are deleted anyway and the store's status reason says what was left."""

    async def handle(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        if job.store_id is None:
            raise PermanentError(f"{kind} job {job.id} has no store")
        store = await stores.get_store(jctx.db, store_id=job.store_id)
        if store is None or store["status"] != "disconnected":
            return {"skipped": "the store was connected again" if store else "the store is gone"}
        try:
            removed = await remove(job, jctx, {**store, "id": job.store_id})
        except Exception as exc:  # noqa: BLE001 - any failure but the last is retried; then we stop trying
            if not isinstance(exc, PermanentError) and job.attempts < job.max_attempts:
                raise
            note = (f"disconnected, but shopsync's webhooks could not be removed from the store "
                    f"({str(exc)[:200]}): delete them in the store's admin")
            forgotten = await stores.forget_store_credentials(jctx.db, store_id=job.store_id, note=note)
            log.warning("%s for store %s: webhooks left behind after %d attempts (%s)", kind, job.store_id,
                        job.attempts, type(exc).__name__)
            return {"removed": None, "left_behind": str(exc)[:200], "credentials_deleted": forgotten}
        forgotten = await stores.forget_store_credentials(jctx.db, store_id=job.store_id)
        return {"removed": dict(removed), "credentials_deleted": forgotten}

    return handle
