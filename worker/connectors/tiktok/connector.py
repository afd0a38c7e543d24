"""The TikTok Shop connector: its contract (sync, signed webhooks, the OAuth connect flow, price and inventory
writes, published config, live look-ups) and the one way its jobs open an authenticated, paced client for a store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx

from worker.config import Settings
from worker.connectors.base import ConnectorBase
from worker.connectors.contract import ConnectFlow, ConnectorContract, ConnectSpec, WebhookSpec, WriteCapability
from worker.connectors.tiktok.client import SendSpacing, TikTokClient
from worker.connectors.tiktok.mapping import RESOURCE_TABLES
from worker.connectors.tiktok.oauth import TikTokOAuth
from worker.connectors.tiktok.settings import TikTokSettings, tiktok_settings
from worker.connectors.tiktok.tokens import TikTokTokens
from worker.connectors.tiktok.writes import TikTokWriter
from worker.errors import NeedsReauthError, PermanentError
from worker.jobs.registry import JobContext
from worker.ratelimit import DbRateLimiter
from worker.rpc import stores
from worker.sync.engine import SyncContext

__all__ = ["TikTokConnector"]

WRITES = frozenset({WriteCapability.SET_PRICE, WriteCapability.SET_INVENTORY})
_LIVE = ("active", "connecting", "needs_reauth")


class TikTokConnector(ConnectorBase[TikTokSettings]):
    platform = "tiktok"
    display_name = "TikTok Shop"

    def __init__(self, settings: TikTokSettings | None = None) -> None:
        super().__init__(settings, tiktok_settings)

    def public_config(self, core: Settings) -> dict[str, Any] | None:
        """For ``begin_install`` (no shop: the seller picks shops on TikTok's consent page) and for links (the
        write capabilities this platform offers). No secrets."""
        s = self.settings
        if not s.configured:
            return None
        return {"authorize_url": f"{s.authorize_url}?service_id={s.service_id}", "shop_pattern": "^$",
                "shop_hint": "TikTok Shop: pass no shop (null); the seller chooses the shops on TikTok's consent page",
                "state_ttl_seconds": s.install_state_ttl_seconds, "redirect_uri": s.redirect_uri(core),
                "webhook_uri": s.webhook_uri(core), "writes": sorted(w.value for w in WRITES)}

    @property
    def contract(self) -> ConnectorContract:
        from worker.connectors.tiktok import install, webhooks
        from worker.connectors.tiktok.lookups import tiktok_lookups
        from worker.connectors.tiktok.sync import tiktok_sync_source

        s = self.settings
        install_claimed, own_jobs = install.install_jobs(self)
        return ConnectorContract(
            platform=self.platform, display_name=self.display_name, reads=RESOURCE_TABLES,
            sync=tiktok_sync_source(self.open_sync_client, page_size=s.page_size, cap=s.search_cap,
                                    overlap=timedelta(seconds=s.overlap_seconds)),
            webhooks=WebhookSpec(path="/webhooks", verify=webhooks.webhook_verifier(self), topics=webhooks.TOPICS,
                                 apply=webhooks.event_applier(self), check=webhooks.webhooks_check(self),
                                 remove=webhooks.webhooks_check(self, remove=True)),
            connect=ConnectSpec(flow=ConnectFlow.OAUTH, routes=install.install_routes(self),
                                install_claimed=install_claimed),
            writes=WRITES, open_writer=self.open_writer, jobs=own_jobs, public_config=self.public_config,
            lookups=tiktok_lookups(self))

    # --- clients ---------------------------------------------------------------------------------------
    def pacer(self, jctx: JobContext, shop_id: str) -> DbRateLimiter:
        s = self.settings
        # TikTok isolates limits per app × authorized shop, whichever organization's store asks
        return DbRateLimiter(jctx.db, f"tiktok:{s.app_key}:{shop_id}", s.requests_per_second, s.burst)

    @asynccontextmanager
    async def open_client(self, jctx: JobContext, store_id: UUID, store: Mapping[str, Any] | None = None, *,
                          http: httpx.AsyncClient | None = None,
                          credentials: Mapping[str, Any] | None = None) -> AsyncIterator[TikTokClient]:
        """A paced, signed client for the store. ``http``: a kept client to use (live look-ups share one per event
        loop) instead of a new one; ``credentials``: the store's sealed credentials row, already read."""
        s = self.settings
        s.require_configured()
        if store is None:
            store = await stores.get_store(jctx.db, store_id=store_id)
            if store is None:
                raise PermanentError(f"store {store_id} no longer exists")
        info = store.get("platform_info") or {}
        cipher = info.get("cipher")
        if not cipher:
            raise NeedsReauthError("the TikTok store has no shop cipher: the seller must authorize the app again")
        organization = str(store["organization_id"])

        async def siblings() -> list[UUID]:
            found: list[UUID] = []
            for shop in info.get("authorization_shops") or []:
                for row in await stores.stores_of_shop(jctx.db, platform=self.platform, shop_key=str(shop)):
                    if str(row["organization_id"]) == organization and row["status"] in _LIVE:
                        found.append(UUID(str(row["store_id"])))
            return found

        anchor = info.get("token_anchor")
        async with contextlib.AsyncExitStack() as stack:
            if http is None:
                http = await stack.enter_async_context(self.http())
            tokens = TikTokTokens(jctx.db, self.sealer(jctx.settings), TikTokOAuth(s, http), store_id,
                                  owner=jctx.worker_id, margin=s.refresh_margin_seconds,
                                  anchor=UUID(anchor) if anchor else None, siblings=siblings,
                                  lease=max(60.0, 3 * s.request_timeout_seconds + 10), preloaded=credentials)
            yield TikTokClient(http, api_base_url=s.api_base_url, app_key=s.app_key or "", app_secret=s.secret(),
                               tokens=tokens, shop_cipher=str(cipher), name=f"TikTok shop {store['shop_key']}",
                               pacer=self.pacer(jctx, str(store["shop_key"])), max_attempts=s.max_attempts,
                               rate_limit_wait=s.rate_limit_wait_seconds,
                               spacing=SendSpacing(f"{s.app_key}:{store['shop_key']}", s.requests_per_second / s.burst))

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.settings.request_timeout_seconds, follow_redirects=False)

    def open_sync_client(self, ctx: SyncContext) -> Any:
        return self.open_client(ctx.job_context, ctx.store_id)

    @asynccontextmanager
    async def open_writer(self, jctx: JobContext, store: Mapping[str, Any]) -> AsyncIterator[TikTokWriter]:
        async with self.open_client(jctx, UUID(str(store["id"])), store) as client:
            yield TikTokWriter(client)
