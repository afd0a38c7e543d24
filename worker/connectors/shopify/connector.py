"""The Shopify connector: its contract (what the core runs and mounts: sync, webhooks, the OAuth install
flow, its own jobs, published config), and the one way its jobs open an authenticated GraphQL client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from worker.config import Settings
from worker.connectors.base import ConnectorBase
from worker.connectors.contract import ConnectFlow, ConnectorContract, ConnectSpec, WebhookSpec
from worker.connectors.shopify.graphql import ShopifyGraphQL
from worker.connectors.shopify.mapping import RESOURCE_TABLES
from worker.connectors.shopify.oauth import ShopifyOAuth
from worker.connectors.shopify.settings import SHOP_PATTERN, ShopifySettings, shopify_settings
from worker.connectors.shopify.tokens import StoreTokens
from worker.jobs.registry import JobContext
from worker.sync.engine import SyncContext

__all__ = ["ShopifyConnector"]


class ShopifyConnector(ConnectorBase[ShopifySettings]):
    platform = "shopify"
    display_name = "Shopify"

    def __init__(self, settings: ShopifySettings | None = None) -> None:
        super().__init__(settings, shopify_settings)

    def public_config(self, core: Settings) -> dict[str, Any] | None:
        """Published to the database at start-up for ``begin_install`` (no secrets)."""
        s = self.settings
        if not s.configured:
            return None
        query = urlencode([("client_id", s.client_id or ""), ("scope", ",".join(s.scopes)),
                           ("redirect_uri", s.redirect_uri(core))]).replace("+", "%20")
        return {"authorize_url": f"{s.shop_base_url}/admin/oauth/authorize?{query}", "shop_pattern": SHOP_PATTERN,
                "shop_hint": "expected the shop's myshopify.com domain, e.g. my-shop.myshopify.com",
                "state_ttl_seconds": s.install_state_ttl_seconds, "api_version": s.api_version,
                "scopes": list(s.scopes)}

    @property
    def contract(self) -> ConnectorContract:
        # built on each use: it follows the settings the connector has now (tests replace them)
        from worker.connectors.shopify import install, webhooks
        from worker.connectors.shopify.sync import shopify_sync_source

        install_claimed, own_jobs = install.install_jobs(self)
        return ConnectorContract(
            platform=self.platform, display_name=self.display_name, reads=RESOURCE_TABLES,
            sync=shopify_sync_source(self.open_sync_client),
            webhooks=WebhookSpec(path="/webhooks", verify=webhooks.webhook_verifier(self), topics=webhooks.TOPICS,
                                 apply=webhooks.apply_event, check=webhooks.subscriptions_check(self),
                                 remove=webhooks.subscriptions_check(self, remove=True)),
            connect=ConnectSpec(flow=ConnectFlow.OAUTH, routes=install.install_routes(self),
                                install_claimed=install_claimed),
            jobs=own_jobs, public_config=self.public_config)

    # --- clients ---------------------------------------------------------------------------------------
    def oauth(self) -> ShopifyOAuth:
        return ShopifyOAuth(self.settings)

    @asynccontextmanager
    async def open_client(self, jctx: JobContext, store_id: UUID, shop: str) -> AsyncIterator[ShopifyGraphQL]:
        """A GraphQL client for one store whose token refreshes itself (serialized across workers)."""
        s = self.settings
        s.require_configured()
        oauth = self.oauth()
        tokens = StoreTokens(jctx.db, self.sealer(jctx.settings), oauth, store_id, shop,
                             owner=jctx.worker_id, refresh_margin=s.refresh_margin_seconds)
        try:
            async with ShopifyGraphQL(shop, tokens, api_version=s.api_version, base_url=s.shop_url(shop),
                                      timeout=s.request_timeout_seconds) as client:
                yield client
        finally:
            await oauth.aclose()

    def open_sync_client(self, ctx: SyncContext) -> Any:
        return self.open_client(ctx.job_context, ctx.store_id, ctx.shop_key)
