"""A TikTok store's access token, refreshed ahead of its absolute expiry — once, for every shop it covers.

One seller authorization covers several shops; each shop is a store holding a sealed copy of the same token pair
(sealed with its own store id). Refresh tokens rotate (whether the old one keeps working is [unverified]: assume
not), so refreshes are serialized by the credentials refresh lease the Shopify connector uses — taken on the
authorization's *anchor* store (``platform_info.token_anchor``: the first shop's store; the store itself when the
anchor has no credentials any more). Under the lease the credentials are re-read (another worker may just have
refreshed), the refresh happens once, and the new pair is written to the store (with the version it read) and to
every sibling store of the authorization. Workers that lose the race wait for the new version. A refused refresh
marks every store of the authorization ``needs_reauth`` (one refused call, not one per job or shop).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from worker.connectors.tiktok.oauth import CREDENTIALS_KIND, GrantRefused, TikTokOAuth, TokenSet
from worker.db.port import Database
from worker.db.values import as_datetime
from worker.errors import DatabaseError, NeedsReauthError, RetryableError
from worker.rpc import stores
from worker.sealing import Sealer

__all__ = ["TikTokTokens", "load_tokens", "open_token_box", "save_tokens", "seal_token_box"]

log = logging.getLogger("shopsync.tiktok.tokens")

POLL_SECONDS = 0.2
Siblings = Callable[[], Awaitable[Sequence[UUID]]]


def seal_token_box(sealer: Sealer, tokens: TokenSet, *, context: str) -> dict[str, Any]:
    """Tokens sealed for a parked install (not yet a store)."""
    sealed = sealer.seal(tokens.secret_fields(), context=context)
    return {"kind": CREDENTIALS_KIND, "key_id": sealed.key_id, "sealed": sealed.sealed,
            "access_expires_at": tokens.access_expires_at.isoformat() if tokens.access_expires_at else None,
            "refresh_expires_at": tokens.refresh_expires_at.isoformat() if tokens.refresh_expires_at else None}


def open_token_box(sealer: Sealer, box: Mapping[str, Any], *, context: str) -> TokenSet:
    fields = sealer.open_json(str(box.get("key_id")), str(box.get("sealed")), context=context)
    return TokenSet.from_sealed(fields, as_datetime(box.get("access_expires_at")),
                                as_datetime(box.get("refresh_expires_at")))


async def load_tokens(db: Database, sealer: Sealer, store_id: UUID | str, *,
                      preloaded: Mapping[str, Any] | None = None) -> tuple[TokenSet, int] | None:
    """``preloaded``: the store's credentials row, already read (a live look-up reads it with its routing)."""
    row = preloaded if preloaded is not None else await stores.get_store_credentials(db, store_id=store_id)
    if row is None:
        return None
    fields = sealer.open_json(row["key_id"], row["sealed"], context=str(store_id))
    return TokenSet.from_sealed(fields, as_datetime(row["access_expires_at"]),
                                as_datetime(row["refresh_expires_at"])), int(row["version"])


async def save_tokens(db: Database, sealer: Sealer, store_id: UUID | str, tokens: TokenSet,
                      expected_version: int | None = None) -> int:
    sealed = sealer.seal(tokens.secret_fields(), context=str(store_id))
    return await stores.put_store_credentials(db, store_id=store_id, kind=CREDENTIALS_KIND, key_id=sealed.key_id,
                                              sealed=sealed.sealed, access_expires_at=tokens.access_expires_at,
                                              refresh_expires_at=tokens.refresh_expires_at,
                                              expected_version=expected_version)


class TikTokTokens:
    """``await tokens()`` → a usable access token for one store; ``await tokens.after_expired(token)`` after
    TikTok answered 105002 for it."""

    def __init__(self, db: Database, sealer: Sealer, oauth: TikTokOAuth, store_id: UUID, *, owner: str,
                 margin: float, anchor: UUID | None = None, siblings: Siblings | None = None,
                 lease: float = 60.0, preloaded: Mapping[str, Any] | None = None) -> None:
        self.db, self.sealer, self.oauth, self.store_id = db, sealer, oauth, store_id
        # unique per provider: two jobs of one worker process must not both believe they hold the lease
        self.owner = f"{owner}:{uuid.uuid4().hex[:12]}"
        self.margin = timedelta(seconds=margin)
        self.anchor = anchor or store_id
        self.siblings = siblings
        self.lease = lease
        self._cached: TokenSet | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0
        self._preloaded = preloaded     # the credentials row the caller read: the first load uses it

    def _due(self, tokens: TokenSet) -> bool:
        expires = tokens.access_expires_at
        return expires is None or expires - datetime.now(UTC) <= self.margin

    async def __call__(self) -> str:
        cached = self._cached
        if cached is not None and not self._due(cached):
            return cached.access_token
        async with self._lock:
            tokens, version = await self._load()
            if self._due(tokens):
                tokens = await self._rotate(version, stale=None)
            self._cached = tokens
            return tokens.access_token

    async def after_expired(self, stale: str) -> str:
        """TikTok says ``stale`` expired (its clock and ours disagree): refresh unless someone already did."""
        async with self._lock:
            tokens, version = await self._load()
            if tokens.access_token == stale:
                tokens = await self._rotate(version, stale=stale)
            self._cached = tokens
            return tokens.access_token

    async def _load(self) -> tuple[TokenSet, int]:
        preloaded, self._preloaded = self._preloaded, None
        found = await load_tokens(self.db, self.sealer, self.store_id, preloaded=preloaded)
        if found is None:
            raise NeedsReauthError("TikTok Shop store has no credentials: the seller must authorize the app again")
        return found

    async def _lease_key(self) -> UUID:
        if self.anchor != self.store_id and await stores.get_store_credentials(self.db, store_id=self.anchor) is None:
            self.anchor = self.store_id          # the anchor shop was disconnected: its siblings go on alone
        return self.anchor

    async def _rotate(self, seen_version: int, *, stale: str | None) -> TokenSet:
        deadline = time.monotonic() + self.lease + 5
        key = await self._lease_key()
        while True:
            if await stores.lock_credentials_refresh(self.db, store_id=key, owner=self.owner, seconds=self.lease):
                try:
                    return await self._rotate_holding_lease(stale)
                finally:
                    await asyncio.shield(stores.unlock_credentials_refresh(self.db, store_id=key, owner=self.owner))
            await asyncio.sleep(POLL_SECONDS)     # another worker is refreshing: wait for its new version
            tokens, version = await self._load()
            if version != seen_version and not self._due(tokens) and tokens.access_token != stale:
                return tokens
            if time.monotonic() > deadline:
                raise RetryableError(f"another process has been refreshing the TikTok token for {self.lease:.0f} s",
                                     retry_in=5.0)

    async def _rotate_holding_lease(self, stale: str | None) -> TokenSet:
        tokens, version = await self._load()            # fresh: the previous holder may have refreshed
        if not self._due(tokens) and tokens.access_token != stale:
            return tokens
        try:
            fresh = await self.oauth.refresh(tokens.refresh_token)
        except GrantRefused as exc:
            latest = await self._load()
            if latest[1] != version and not self._due(latest[0]):
                return latest[0]                        # someone stored a new pair after all (a lease ran out)
            await self._refused(str(exc))
            raise NeedsReauthError(f"{exc}; the seller must authorize the app again") from None
        try:
            await save_tokens(self.db, self.sealer, self.store_id, fresh, expected_version=version)
        except DatabaseError as exc:
            if exc.sqlstate != "40001":
                raise
            log.warning("tiktok store %s: credentials changed during a refresh; using the stored ones", self.store_id)
            return (await self._load())[0]
        self.refreshes += 1
        for sibling in await self._siblings():
            # the same authorization: its stores get the new pair too (their refresh token just died)
            await save_tokens(self.db, self.sealer, sibling, fresh)
        return fresh

    async def _siblings(self) -> Sequence[UUID]:
        return [s for s in await self.siblings() if s != self.store_id] if self.siblings is not None else []

    async def _refused(self, reason: str) -> None:
        for sibling in await self._siblings():
            await stores.mark_store_needs_reauth(self.db, store_id=sibling,
                                                 reason=f"{reason}; the seller must authorize the app again")
