"""Re-sealing stored credentials — store credentials and notification channel secrets — with the active key
(``shopsync rotate-key``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from worker.config import Settings
from worker.db.port import Database
from worker.notify.channels import secret_context
from worker.rpc import notifications, stores
from worker.sealing import Sealer

__all__ = ["rotate_credentials"]

log = logging.getLogger("shopsync.keys")


async def rotate_credentials(db: Database, settings: Settings,
                             progress: Callable[[int], None] | None = None, page: int = 100) -> int:
    """Open every credential sealed with an older key and seal it again with the active one.

    Optimistic per row: a credential rewritten meanwhile (a token refresh) is already sealed with
    the active key, so losing that race is fine. Returns how many were re-sealed.
    """
    sealer = Sealer.from_settings(settings)
    done = await _rotate_channel_secrets(db, sealer, page)
    skipped: set[str] = set()
    while True:
        rows = await stores.credentials_to_reseal(db, active_key_id=sealer.active_key_id, limit=page)
        rows = [r for r in rows if str(r["store_id"]) not in skipped]
        if not rows:
            return done
        for row in rows:
            store_id = str(row["store_id"])
            plaintext = sealer.open(row["key_id"], row["sealed"], context=store_id)
            sealed = sealer.seal(plaintext, context=store_id)
            ok = await stores.reseal_store_credentials(db, store_id=store_id, expected_version=int(row["version"]),
                                                       key_id=sealed.key_id, sealed=sealed.sealed)
            if ok:
                done += 1
            else:
                skipped.add(store_id)   # rewritten meanwhile (a refresh seals with the active key)
                log.info("credential of store %s changed while re-sealing; left as rewritten", store_id)
            if progress and done and done % page == 0:
                progress(done)


async def _rotate_channel_secrets(db: Database, sealer: Sealer, page: int) -> int:
    """The same for notification channels' secrets."""
    done = 0
    skipped: set[str] = set()
    while True:
        rows = await notifications.notification_secrets_to_reseal(db, active_key_id=sealer.active_key_id, limit=page)
        rows = [r for r in rows if str(r["channel_id"]) not in skipped]
        if not rows:
            return done
        for row in rows:
            context = secret_context(row["channel_id"])
            sealed = sealer.seal(sealer.open(row["key_id"], row["sealed"], context=context), context=context)
            if await notifications.reseal_notification_secret(db, channel_id=row["channel_id"],
                                                              expected_version=int(row["version"]),
                                                              key_id=sealed.key_id, sealed=sealed.sealed):
                done += 1
            else:
                skipped.add(str(row["channel_id"]))    # changed meanwhile: sealed with the active key already
