"""A TikTok Shop world for end-to-end tests: the TikTok sandbox over HTTP (its consent page redirecting to our
callback, its webhooks posting to our endpoint), shopsync's web process on a real port, a worker on the test's
event loop, and — for product links — the Shopify sandbox beside it. Test modules import the fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

import httpx
import psycopg
import pytest

from sandbox.serving import serve_app
from sandbox.shopify import DatasetSpec, ShopifySandbox, serve_shopify_sandbox
from sandbox.shopify.state import Shop
from sandbox.tiktok import TikTokSandbox, TtApp, TtDatasetSpec, TtShop, serve_tiktok_sandbox
from tests.conftest import as_role
from tests.platform_world import AppWorld, free_port
from worker.config import Settings
from worker.connectors.registry import publish_configs
from worker.connectors.shopify import CONNECTOR as SHOPIFY
from worker.connectors.shopify.settings import ShopifySettings
from worker.connectors.tiktok import CONNECTOR as TIKTOK
from worker.connectors.tiktok.settings import TikTokSettings
from worker.db.direct import DirectDatabase
from worker.runtime import build_registry
from worker.sealing import generate_key_spec
from worker.web.app import create_app

APP_KEY, APP_SECRET = "tt-test-app", "tt_test_secret_0123456789"
SHOPIFY_ID, SHOPIFY_SECRET, SHOPIFY_SHOP = "shopsync-test-app", "shpss_world_secret", "demo.myshopify.com"
FRONTEND = "http://frontend.test"


@dataclass(kw_only=True)
class TtWorld(AppWorld):
    sandbox: TikTokSandbox
    app: TtApp
    shop: TtShop
    tiktok: TikTokSettings
    shopify_sandbox: ShopifySandbox | None = None
    shopify_shop: Shop | None = None

    def begin(self, user: UUID, org: UUID) -> str:
        with as_role(self.conn, "authenticated", user):
            row = self.conn.execute("select shopsync.begin_install(%s, 'tiktok', null) as r", (org,)).fetchone()
        assert row is not None
        return str(row["r"]["authorize_url"])

    async def consent(self, authorize_url: str, **extra: str) -> httpx.Response:
        """The seller approves on (sandbox) TikTok, and the browser lands on our callback."""
        async with httpx.AsyncClient(timeout=20) as browser:
            approved = await browser.get(str(httpx.URL(authorize_url).copy_merge_params(extra)))
            assert approved.status_code == 302, approved.text
            return await browser.get(approved.headers["location"])

    def claim(self, user: UUID, org: UUID, landing: str) -> UUID:
        token = dict(parse_qsl(urlsplit(landing).fragment))
        with as_role(self.conn, "authenticated", user):
            row = self.conn.execute("select shopsync.claim_pending_install(%s, %s, %s) as s",
                                    (token["install_id"], token["claim_token"], org)).fetchone()
        assert row is not None
        return UUID(str(row["s"]))

    async def install(self, user: UUID, org: UUID) -> list[UUID]:
        """begin_install → consent → callback → claim; the stores of every authorized shop (first = claimed)."""
        landed = await self.consent(self.begin(user, org))
        assert landed.status_code == 302, landed.text
        first = self.claim(user, org, landed.headers["location"])
        rows = self.conn.execute("select id from shopsync.stores where organization_id = %s and platform = 'tiktok' "
                                 "order by shop_key", (org,)).fetchall()
        return [first] + [r["id"] for r in rows if r["id"] != first]

    def store_of(self, shop: TtShop, org: UUID | None = None) -> UUID:
        return UUID(str(self.scalar("select id from shopsync.stores where platform = 'tiktok' and shop_key = %s "
                                    "and (%s::uuid is null or organization_id = %s) order by created_at desc limit 1",
                                    (shop.id, org, org))))

    def synced(self, store: UUID, resources: int = 3) -> bool:
        return self.scalar("select count(*) from shopsync.sync_state where store_id = %s "
                           "and last_full_sync_at is not null", (store,)) == resources

    def count(self, table: str, store: UUID) -> int:
        live = "" if table == "order_line_items" else " and deleted_at is null"
        return int(self.scalar(f"select count(*) from shopsync.{table} where store_id = %s{live}", (store,)))


def tiktok_settings(base: str, **overrides: Any) -> TikTokSettings:
    fields: dict[str, Any] = {"app_key": APP_KEY, "app_secret": APP_SECRET, "service_id": "7300000000000000001",
                              "authorize_url": f"{base}/open/authorize", "api_base_url": base, "auth_base_url": base,
                              "search_cap": 25, "page_size": 10, "requests_per_second": 200.0, **overrides}
    return TikTokSettings(_env_file=None, **fields)  # type: ignore[call-arg]


@pytest.fixture
def tt_spec() -> TtDatasetSpec:
    return TtDatasetSpec(seed=5, products=40, max_skus=3, orders=15, warehouses=1)


@pytest.fixture
def tt_options() -> dict[str, Any]:
    """Settings of the connector under test (a module overrides this fixture to change them)."""
    return {}


@pytest.fixture
def with_shopify() -> bool:
    return False


@pytest.fixture
def shopify_spec() -> DatasetSpec:
    return DatasetSpec(products=6, customers=2, orders=2)


@pytest.fixture
def shopify_server(with_shopify: bool, shopify_spec: DatasetSpec) -> Iterator[tuple[ShopifySandbox, Shop, str] | None]:
    if not with_shopify:
        yield None
        return
    sandbox = ShopifySandbox(throttle=False, webhook_retry_delays=(0.2, 0.5))
    sandbox.add_app(SHOPIFY_ID, SHOPIFY_SECRET)
    shop = sandbox.add_shop(SHOPIFY_SHOP, shopify_spec)
    with serve_shopify_sandbox(sandbox) as url:
        yield sandbox, shop, url


@pytest.fixture
async def tt(dsn: str, conn: psycopg.Connection[dict[str, Any]], tt_spec: TtDatasetSpec, tt_options: dict[str, Any],
             shopify_server: tuple[ShopifySandbox, Shop, str] | None,
             monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TtWorld]:
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    sandbox = TikTokSandbox(search_cap=25, webhook_retry_delays=(0.2, 0.5))
    app = sandbox.add_app(APP_KEY, APP_SECRET, service_id="7300000000000000001",
                          redirect_uri=f"{web_url}/tiktok/callback", webhook_url=f"{web_url}/tiktok/webhooks")
    seller = sandbox.add_seller("Test Seller")
    shop = sandbox.add_shop(seller, "Test Shop", tt_spec)
    with serve_tiktok_sandbox(sandbox) as base:
        core = Settings(_env_file=None, database_url=dsn, sealing_keys=generate_key_spec("test"),  # type: ignore[call-arg]
                        public_url=web_url, frontend_url=FRONTEND, local_dev=True, worker_concurrency=8)
        settings = tiktok_settings(base, **tt_options)
        monkeypatch.setattr(TIKTOK, "_settings", settings)
        extra: dict[str, Any] = {}
        if shopify_server is not None:
            shopify_sandbox, shopify_shop, shopify_url = shopify_server
            monkeypatch.setattr(SHOPIFY, "_settings", ShopifySettings(
                _env_file=None, client_id=SHOPIFY_ID, client_secret=SHOPIFY_SECRET,  # type: ignore[call-arg]
                shop_base_url=f"{shopify_url}/shops/{{shop}}"))
            extra = {"shopify_sandbox": shopify_sandbox, "shopify_shop": shopify_shop}
        db = await DirectDatabase.connect(dsn, listen=True)
        await publish_configs(db, core)
        try:
            with serve_app(create_app(core), port=port, name="shopsync-web"):
                yield TtWorld(web_url=web_url, core=core, db=db, conn=conn, registry=build_registry(), sandbox=sandbox,
                              app=app, shop=shop, tiktok=settings, **extra)
        finally:
            await db.close()
