"""A store's Shopify access token, refreshed ahead of expiry — by one process at a time.

Refresh tokens rotate: using one returns a new pair, and (under the strict model, and whenever the new
one has been used) the old one is dead. Two workers refreshing the same store at once could burn the
store's only valid refresh token, so a refresh happens under a lease in the database
(``lock_credentials_refresh``), re-reads the credentials after taking it (someone may just have
refreshed), and writes the new pair with ``put_store_credentials(p_expected_version)``. Workers that
lose the race wait for the new version instead of refreshing too. Legacy non-expiring tokens are
migrated to an expiring pair the same way. A refused grant marks the store ``needs_reauth``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from worker.connectors.shopify.oauth import GrantRefused, ShopifyOAuth, TokenSet
from worker.db.port import Database
from worker.db.values import as_datetime
from worker.errors import DatabaseError, NeedsReauthError, RetryableError
from worker.rpc import stores
from worker.sealing import Sealer

__all__ = ["StoreTokens", "load_tokens", "open_token_box", "save_tokens", "seal_token_box"]

log = logging.getLogger("shopsync.shopify.tokens")

POLL_SECONDS = 0.2


def lease_seconds(request_timeout: float) -> float:
    """Longer than a refresh can take (httpx applies its timeout per phase: connect, write, read)."""
    return max(60.0, 3 * request_timeout + 10.0)


def seal_token_box(sealer: Sealer, tokens: TokenSet, *, context: str) -> dict[str, Any]:
    """Tokens sealed for somewhere other than a store's credentials row (a parked install)."""
    sealed = sealer.seal(tokens.secret_fields(), context=context)
    return {"kind": tokens.kind, "key_id": sealed.key_id, "sealed": sealed.sealed,
            "access_expires_at": tokens.access_expires_at.isoformat() if tokens.access_expires_at else None,
            "refresh_expires_at": tokens.refresh_expires_at.isoformat() if tokens.refresh_expires_at else None}


def open_token_box(sealer: Sealer, box: Mapping[str, Any], *, context: str) -> TokenSet:
    fields = sealer.open_json(str(box.get("key_id")), str(box.get("sealed")), context=context)
    return TokenSet.from_sealed(fields, as_datetime(box.get("access_expires_at")),
                                as_datetime(box.get("refresh_expires_at")))


async def load_tokens(db: Database, sealer: Sealer, store_id: UUID,
                      preloaded: Mapping[str, Any] | None = None) -> tuple[TokenSet, int] | None:
    """The store's tokens and their version, or None when it has none (``preloaded``: the credentials row,
    already read)."""
    row = preloaded if preloaded is not None else await stores.get_store_credentials(db, store_id=store_id)
    if row is None:
        return None
    fields = sealer.open_json(row["key_id"], row["sealed"], context=str(store_id))
    tokens = TokenSet.from_sealed(fields, as_datetime(row["access_expires_at"]),
                                  as_datetime(row["refresh_expires_at"]))
    return tokens, int(row["version"])


async def save_tokens(db: Database, sealer: Sealer, store_id: UUID, tokens: TokenSet,
                      expected_version: int | None = None) -> int:
    sealed = sealer.seal(tokens.secret_fields(), context=str(store_id))
    return await stores.put_store_credentials(db, store_id=store_id, kind=tokens.kind, key_id=sealed.key_id,
                                              sealed=sealed.sealed, access_expires_at=tokens.access_expires_at,
                                              refresh_expires_at=tokens.refresh_expires_at,
                                              expected_version=expected_version)


class StoreTokens:
    """The token provider for one store's GraphQL client: ``await tokens()`` → a usable access token."""

    def __init__(self, db: Database, sealer: Sealer, oauth: ShopifyOAuth, store_id: UUID, shop: str, *,
                 owner: str, refresh_margin: float = 300.0, preloaded: Mapping[str, Any] | None = None) -> None:
        self.db = db
        self._preloaded = preloaded             # the credentials row, read by the caller: used for the first load
        self.sealer = sealer
        self.oauth = oauth
        self.store_id = store_id
        self.shop = shop
        # unique per provider: jobs of one worker process share its worker id, and two of them must not
        # both believe they hold the lease
        self.owner = f"{owner}:{uuid.uuid4().hex[:12]}"
        self.margin = timedelta(seconds=refresh_margin)
        self.lease = lease_seconds(oauth.settings.request_timeout_seconds)
        self._cached: TokenSet | None = None
        self._lock = asyncio.Lock()             # one refresh per process; the lease covers the rest
        self.refreshes = 0

    def _due(self, tokens: TokenSet) -> bool:
        if not tokens.expiring:
            return True                         # a legacy token: migrate it
        expires = tokens.access_expires_at
        return expires is not None and expires - datetime.now(UTC) <= self.margin

    async def __call__(self) -> str:
        cached = self._cached
        if cached is not None and not self._due(cached):
            return cached.access_token
        async with self._lock:
            tokens, version = await self._load()
            if self._due(tokens):
                tokens = await self._rotate(version)
            self._cached = tokens
            return tokens.access_token

    async def _load(self) -> tuple[TokenSet, int]:
        preloaded, self._preloaded = self._preloaded, None
        found = await load_tokens(self.db, self.sealer, self.store_id, preloaded)
        if found is None:
            raise NeedsReauthError(f"Shopify {self.shop}: the store has no credentials; install the app again")
        return found

    async def _rotate(self, seen_version: int) -> TokenSet:
        deadline = time.monotonic() + self.lease + 5
        while True:
            if await stores.lock_credentials_refresh(self.db, store_id=self.store_id, owner=self.owner,
                                                     seconds=self.lease):
                try:
                    return await self._rotate_holding_lease()
                finally:
                    await asyncio.shield(stores.unlock_credentials_refresh(self.db, store_id=self.store_id,
                                                                           owner=self.owner))
            # another process is refreshing: wait for its new version rather than burn the token twice
            await asyncio.sleep(POLL_SECONDS)
            tokens, version = await self._load()
            if version != seen_version and not self._due(tokens):
                return tokens
            if time.monotonic() > deadline:
                raise RetryableError(f"Shopify {self.shop}: another process has been refreshing the token "
                                     f"for {self.lease:.0f} s", retry_in=5.0)

    async def _rotate_holding_lease(self) -> TokenSet:
        tokens, version = await self._load()            # fresh: the previous holder may have refreshed
        if not self._due(tokens):
            return tokens
        try:
            if tokens.expiring:
                assert tokens.refresh_token is not None
                fresh = await self.oauth.refresh(self.shop, tokens.refresh_token)
            else:
                fresh = await self.oauth.migrate_legacy(self.shop, tokens.access_token)
                log.info("shopify %s: migrated a legacy offline token to an expiring one", self.shop)
        except GrantRefused as exc:
            latest = await self._load()
            if latest[1] != version and not self._due(latest[0]):
                return latest[0]                # someone stored a new pair after all (a lease ran out)
            # the worker marks the store needs_reauth for a NeedsReauthError: syncs pause, the frontend sees why
            raise NeedsReauthError(f"{exc}; the merchant must open the app again to re-authorize") from None
        if fresh.refresh_token is None:
            raise RetryableError(f"Shopify {self.shop}: the token endpoint returned no refresh token")
        try:
            await save_tokens(self.db, self.sealer, self.store_id, fresh, expected_version=version)
        except DatabaseError as exc:
            if exc.sqlstate == "40001":
                # cannot happen while we hold the lease unless it ran out: someone else stored a newer pair
                log.warning("shopify %s: credentials changed during a refresh; using the stored ones", self.shop)
                tokens, _ = await self._load()
                return tokens
            raise
        self.refreshes += 1
        return fresh
