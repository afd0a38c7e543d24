"""A store's secrets as one sealed JSON box in ``shopsync_private.store_credentials``: how the REST
connectors (WooCommerce keys and webhook secret, ShopRenter tokens) keep theirs. Sealed with the store id
as context, so a box copied onto another store does not open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.db.values import as_datetime
from worker.errors import SealingError
from worker.rpc import stores
from worker.sealing import Sealer

__all__ = ["StoreSecrets", "WebhookSecretCache", "load_secrets", "save_secrets", "seal_secrets"]

log = logging.getLogger("shopsync.store_secrets")
SECRET_CACHE_SECONDS = 60.0


class StoreSecrets:
    """Opened secrets of one store, the version they were read at, and the access expiry on record."""

    def __init__(self, fields: Mapping[str, Any], version: int, access_expires_at: datetime | None) -> None:
        self.fields = dict(fields)
        self.version = version
        self.access_expires_at = access_expires_at

    def __repr__(self) -> str:   # never the secrets themselves
        return f"StoreSecrets(keys={sorted(self.fields)}, version={self.version})"


async def load_secrets(db: Database, sealer: Sealer, store_id: UUID | str, *,
                       preloaded: Mapping[str, Any] | None = None) -> StoreSecrets | None:
    """The store's opened secrets; ``preloaded`` is the row ``get_store_credentials`` gives, already read."""
    row = preloaded if preloaded is not None else await stores.get_store_credentials(db, store_id=store_id)
    if row is None:
        return None
    fields = sealer.open_json(row["key_id"], row["sealed"], context=str(store_id))
    return StoreSecrets(fields, int(row["version"]), as_datetime(row["access_expires_at"]))


def seal_secrets(sealer: Sealer, store_id: UUID | str, kind: str, fields: Mapping[str, Any],
                 access_expires_at: datetime | None = None) -> dict[str, Any]:
    """The sealed box as ``put_store_credentials`` / ``connect_store_for_user`` take it."""
    sealed = sealer.seal(dict(fields), context=str(store_id))
    return {"kind": kind, "key_id": sealed.key_id, "sealed": sealed.sealed,
            "access_expires_at": access_expires_at.isoformat() if access_expires_at else None}


async def save_secrets(db: Database, sealer: Sealer, store_id: UUID | str, kind: str, fields: Mapping[str, Any], *,
                       access_expires_at: datetime | None = None, expected_version: int | None = None) -> int:
    box = seal_secrets(sealer, store_id, kind, fields)
    return await stores.put_store_credentials(db, store_id=store_id, kind=kind, key_id=box["key_id"],
                                              sealed=box["sealed"], access_expires_at=access_expires_at,
                                              expected_version=expected_version)


class WebhookSecretCache:
    """The per-store secret a platform's webhooks are checked against, cached briefly in the web process
    (one database call per store a minute, not one per delivery). A check that fails against a cached
    secret should ask again with ``fresh=True``: the secret may have just changed."""

    def __init__(self, platform: str, field: str, sealer: Callable[[Any], Sealer]) -> None:
        self.platform = platform
        self.field = field
        self._sealer = sealer
        self._cache: dict[UUID, tuple[float, str | None, str]] = {}

    async def get(self, db: Database, core: Any, store_id: UUID,
                  fresh: bool = False) -> tuple[str | None, str] | None:
        """(secret or None, store status), or None for no store of this platform."""
        hit = self._cache.get(store_id)
        if hit is not None and not fresh and hit[0] > time.monotonic():
            return hit[1], hit[2]
        row = await stores.store_webhook_credentials(db, store_id=store_id)
        if row is None or row["platform"] != self.platform:
            return None
        secret: str | None = None
        if row["sealed"]:
            try:
                fields = self._sealer(core).open_json(row["key_id"], row["sealed"], context=str(store_id))
                secret = fields.get(self.field)
            except SealingError:
                log.error("%s store %s: its credentials cannot be opened with the configured keys", self.platform,
                          store_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[store_id] = (time.monotonic() + SECRET_CACHE_SECONDS, secret, str(row["status"]))
        return secret, str(row["status"])
