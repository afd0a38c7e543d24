"""A whole Shopify world for end-to-end tests: the sandbox over HTTP, shopsync's web process on a real
port (so the sandbox delivers webhooks to it), a worker running in the test's event loop, and a
migrated database. Imported by the Shopify test modules (fixtures are re-exported there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
import pytest

from sandbox.serving import serve_app
from sandbox.shopify import DatasetSpec, ShopifySandbox, serve_shopify_sandbox
from sandbox.shopify.state import Shop
from tests.platform_world import AppWorld, free_port, owner_org
from worker.config import Settings
from worker.connectors.registry import publish_configs
from worker.connectors.shopify import CONNECTOR
from worker.connectors.shopify.oauth import TokenSet
from worker.connectors.shopify.settings import ShopifySettings
from worker.connectors.shopify.tokens import save_tokens
from worker.db.direct import DirectDatabase
from worker.runtime import build_registry
from worker.sealing import Sealer, generate_key_spec
from worker.web.app import create_app

CLIENT_ID = "shopsync-test-app"
SECRET = "shpss_world_secret"
SHOP = "demo.myshopify.com"
FRONTEND = "http://frontend.test"


@dataclass(kw_only=True)
class World(AppWorld):
    sandbox: ShopifySandbox
    shop: Shop
    sandbox_url: str
    shopify: ShopifySettings

    async def connect(self) -> UUID:
        """A store with sandbox-issued tokens, activated by the real ``shopify.activate`` job (webhooks
        registered, first full sync enqueued) — the install flow without the browser."""
        _, org = owner_org(self.conn)
        store_id = UUID(str(self.scalar("select shopsync.upsert_store(%s, 'shopify', %s, null, 'connecting')",
                                        (org, SHOP))))
        body = self.sandbox.issue_token(SHOP, CLIENT_ID)
        await save_tokens(self.db, Sealer.from_settings(self.core), store_id,
                          TokenSet.from_response(body, datetime.now(UTC)))
        self.conn.execute("select shopsync.enqueue_job('shopify.activate', p_store_id => %s)", (store_id,))
        return store_id


@pytest.fixture
def spec() -> DatasetSpec:
    return DatasetSpec(products=6, customers=4, orders=5)


@pytest.fixture
def sandbox_server(spec: DatasetSpec) -> Iterator[tuple[ShopifySandbox, Shop, str]]:
    sandbox = ShopifySandbox(throttle=False, webhook_retry_delays=(0.2, 0.5))
    sandbox.add_app(CLIENT_ID, SECRET)
    shop = sandbox.add_shop(SHOP, spec)
    with serve_shopify_sandbox(sandbox) as url:
        yield sandbox, shop, url


@pytest.fixture
async def world(dsn: str, conn: psycopg.Connection[dict[str, Any]], sandbox_server: tuple[ShopifySandbox, Shop, str],
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    sandbox, shop, sandbox_url = sandbox_server
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    core = Settings(_env_file=None, database_url=dsn, sealing_keys=generate_key_spec("test"),  # type: ignore[call-arg]
                    public_url=web_url, frontend_url=FRONTEND, local_dev=True, worker_concurrency=8)
    shopify = ShopifySettings(_env_file=None, client_id=CLIENT_ID, client_secret=SECRET,  # type: ignore[call-arg]
                              shop_base_url=f"{sandbox_url}/shops/{{shop}}")
    monkeypatch.setattr(CONNECTOR, "_settings", shopify)
    # compliance topics are configured in the app's settings (shopify.app.toml), not through the API
    sandbox.apps[CLIENT_ID].compliance_uri = f"{web_url}/shopify/webhooks"
    db = await DirectDatabase.connect(dsn, listen=True)
    await publish_configs(db, core)
    try:
        # the web process opens its own database in its own thread's event loop (lifespan)
        with serve_app(create_app(core), port=port, name="shopsync-web"):
            yield World(web_url=web_url, core=core, db=db, conn=conn, registry=build_registry(), sandbox=sandbox,
                        shop=shop, sandbox_url=sandbox_url, shopify=shopify)
    finally:
        await db.close()
