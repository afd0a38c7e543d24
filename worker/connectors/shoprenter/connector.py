"""The ShopRenter connector: its contract (sync, webhook hints, the install started in the ShopRenter admin,
published config), and the one way its jobs open a rate-limited client for a store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx

from worker.config import Settings
from worker.connectors.base import ConnectorBase
from worker.connectors.contract import ConnectFlow, ConnectorContract, ConnectSpec, WebhookSpec
from worker.connectors.shoprenter.client import ShopRenterClient, ShopRenterTokens
from worker.connectors.shoprenter.mapping import RESOURCE_TABLES
from worker.connectors.shoprenter.settings import SHOP_PATTERN, ShopRenterSettings, shoprenter_settings
from worker.connectors.store_secrets import load_secrets
from worker.db.port import Database
from worker.errors import NeedsReauthError
from worker.jobs.registry import JobContext
from worker.ratelimit import DbRateLimiter
from worker.sync.engine import SyncContext

__all__ = ["ShopRenterConnector"]


class ShopRenterConnector(ConnectorBase[ShopRenterSettings]):
    platform = "shoprenter"
    display_name = "ShopRenter"

    def __init__(self, settings: ShopRenterSettings | None = None) -> None:
        super().__init__(settings, shoprenter_settings)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def public_config(self, core: Settings) -> dict[str, Any] | None:
        """Installs start in the ShopRenter admin; these are the URLs to register with ShopRenter."""
        if not self.settings.configured:
            return None
        return {"shop_pattern": SHOP_PATTERN, "redirect_uri": f"{core.public_url}/shoprenter/install",
                "uninstall_uri": f"{core.public_url}/shoprenter/uninstall",
                "entry_point": f"{core.public_url}/shoprenter/entry"}

    @property
    def contract(self) -> ConnectorContract:
        # built on each use: it follows the settings the connector has now (tests replace them)
        from worker.connectors.shoprenter import install, webhooks
        from worker.connectors.shoprenter.sync import shoprenter_sync_source

        s = self.settings
        return ConnectorContract(
            platform=self.platform, display_name=self.display_name, reads=RESOURCE_TABLES,
            sync=shoprenter_sync_source(self.open_sync_client, limit=s.page_size, timezone=s.timezone),
            webhooks=WebhookSpec(path="/webhooks/{store_id}/{token}", verify=webhooks.webhook_verifier(self),
                                 topics=webhooks.TOPICS, apply=webhooks.event_applier(self),
                                 check=webhooks.webhooks_check(self),
                                 remove=webhooks.webhooks_check(self, remove=True)),
            connect=ConnectSpec(flow=ConnectFlow.PLATFORM_INSTALL, routes=install.install_routes(self),
                                install_claimed=install.install_claimed_handler(self)),
            public_config=self.public_config)

    # --- clients ---------------------------------------------------------------------------------------
    def http(self) -> httpx.AsyncClient:
        # ShopRenter's hosts are fixed by configuration (never user input): a plain client
        return httpx.AsyncClient(timeout=self.settings.request_timeout_seconds)

    def pacer(self, db: Database, shop: str) -> DbRateLimiter:
        # the limit is per app and shop, whichever organization's store a request is for
        return DbRateLimiter(db, f"shoprenter:{shop}", self.settings.requests_per_second)

    async def webhook_token(self, jctx: JobContext, store_id: UUID) -> str:
        secrets = await load_secrets(jctx.db, self.sealer(jctx.settings), store_id)
        if secrets is None or not secrets.fields.get("webhook_token"):
            raise NeedsReauthError("ShopRenter store has no credentials: install the app again")
        return str(secrets.fields["webhook_token"])

    @asynccontextmanager
    async def open_client(self, jctx: JobContext, store_id: UUID, shop: str) -> AsyncIterator[ShopRenterClient]:
        s = self.settings
        s.require_configured()
        async with self.http() as http:
            tokens = ShopRenterTokens(jctx.db, self.sealer(jctx.settings), http, store_id, shop,
                                      token_url=s.token_url(shop), client_id=str(s.client_id),
                                      client_secret=s.secret(), margin=s.token_margin_seconds)
            yield ShopRenterClient(s.api_url(shop), tokens, http=http, pacer=self.pacer(jctx.db, shop))

    def open_sync_client(self, ctx: SyncContext) -> Any:
        return self.open_client(ctx.job_context, ctx.store_id, ctx.shop_key)
