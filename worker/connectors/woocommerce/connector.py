"""The WooCommerce connector: its contract (sync, webhooks, connecting with the merchant's REST keys,
published config), and the one way its jobs open a paced client for a store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import httpx

from worker.config import Settings
from worker.connectors.base import ConnectorBase
from worker.connectors.contract import ConnectFlow, ConnectorContract, ConnectSpec, WebhookSpec
from worker.connectors.store_secrets import load_secrets
from worker.connectors.woocommerce.client import WooClient
from worker.connectors.woocommerce.mapping import RESOURCE_TABLES
from worker.connectors.woocommerce.settings import WEBHOOK_TOPICS, WooSettings, woo_settings
from worker.db.port import Database
from worker.errors import NeedsReauthError
from worker.jobs.registry import JobContext
from worker.netguard import guarded_client
from worker.ratelimit import UNPACED, DbRateLimiter, Pacer
from worker.sync.engine import SyncContext

__all__ = ["CREDENTIALS_KIND", "WooConnector"]

CREDENTIALS_KIND = "woocommerce_keys"


class WooConnector(ConnectorBase[WooSettings]):
    platform = "woocommerce"
    display_name = "WooCommerce"

    def __init__(self, settings: WooSettings | None = None) -> None:
        super().__init__(settings, woo_settings)

    @staticmethod
    def can_verify_users(core: Settings) -> bool:
        """Connects come from signed-in users: their tokens are checked with the JWT secret or the JWKS."""
        return core.supabase_jwt_secret is not None or core.supabase_url is not None

    def public_config(self, core: Settings) -> dict[str, Any] | None:
        """Merchants connect with REST keys through ``POST /woocommerce/connect``: nothing to install, but
        the web process must be able to verify the user's token (else connecting is off)."""
        if not self.can_verify_users(core):
            return None
        return {"connect_url": f"{core.public_url}/woocommerce/connect",
                "http_allowed": self.settings.private_allowed(core)}

    @property
    def contract(self) -> ConnectorContract:
        # built on each use: it follows the settings the connector has now (tests replace them)
        from worker.connectors.woocommerce import webhooks
        from worker.connectors.woocommerce.connect import connect_routes
        from worker.connectors.woocommerce.sync import woo_sync_source

        return ConnectorContract(
            platform=self.platform, display_name=self.display_name, reads=RESOURCE_TABLES,
            sync=woo_sync_source(self.open_sync_client, per_page=self.settings.page_size),
            webhooks=WebhookSpec(path="/webhooks/{store_id}", verify=webhooks.webhook_verifier(self),
                                 topics=WEBHOOK_TOPICS, apply=webhooks.apply_event,
                                 check=webhooks.webhooks_check(self),
                                 remove=webhooks.webhooks_check(self, remove=True)),
            connect=ConnectSpec(flow=ConnectFlow.API_KEYS, routes=connect_routes(self)),
            public_config=self.public_config)

    # --- clients ---------------------------------------------------------------------------------------
    def http(self, core: Settings, timeout: float | None = None) -> httpx.AsyncClient:
        """An HTTP client that refuses private and metadata addresses (unless local development allows
        them), checked after DNS resolution and again on every redirect."""
        s = self.settings
        return guarded_client(allow_private=s.private_allowed(core), verify=s.ca_file or True,
                              timeout=timeout or s.request_timeout_seconds)

    def pacer(self, db: Database, store_id: UUID | str) -> Pacer:
        rate = self.settings.requests_per_second
        return DbRateLimiter(db, f"woocommerce:{store_id}", rate) if rate > 0 else UNPACED

    def client(self, http: httpx.AsyncClient, store_url: str, consumer_key: str, consumer_secret: str,
               pacer: Pacer = UNPACED) -> WooClient:
        return WooClient(store_url, consumer_key, consumer_secret, http=http, pacer=pacer,
                         concurrency=self.settings.concurrency,
                         signature_method=self.settings.oauth1_signature_method)

    @asynccontextmanager
    async def open_client(self, jctx: JobContext, store_id: UUID,
                          store_url: str) -> AsyncIterator[tuple[WooClient, dict[str, Any]]]:
        """The store's client and its opened secrets."""
        secrets = await load_secrets(jctx.db, self.sealer(jctx.settings), store_id)
        if secrets is None or not secrets.fields.get("consumer_key"):
            raise NeedsReauthError(f"WooCommerce store {store_url} has no API keys: connect it again")
        async with self.http(jctx.settings) as http:
            yield self.client(http, store_url, secrets.fields["consumer_key"], secrets.fields["consumer_secret"],
                              self.pacer(jctx.db, store_id)), secrets.fields

    @asynccontextmanager
    async def open_sync_client(self, ctx: SyncContext) -> AsyncIterator[WooClient]:
        async with self.open_client(ctx.job_context, ctx.store_id, ctx.shop_key) as (client, _):
            yield client
