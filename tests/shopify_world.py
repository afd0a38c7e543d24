"""A whole Shopify world for end-to-end tests: the sandbox over HTTP, shopsync's web process on a real
port (so the sandbox delivers webhooks to it), a worker running in the test's event loop, and a
migrated database. Imported by the Shopify test modules (fixtures are re-exported there).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from sandbox.serving import serve_app
from sandbox.shopify import DatasetSpec, ShopifySandbox, serve_shopify_sandbox
from sandbox.shopify.state import Shop
from tests.conftest import new_user, personal_org
from worker.config import Settings
from worker.connectors.registry import publish_configs
from worker.connectors.shopify import CONNECTOR
from worker.connectors.shopify.oauth import TokenSet
from worker.connectors.shopify.settings import ShopifySettings
from worker.connectors.shopify.tokens import save_tokens
from worker.db import Database
from worker.db.direct import DirectDatabase
from worker.jobs.registry import JobRegistry
from worker.jobs.runner import Worker
from worker.runtime import build_registry
from worker.sealing import Sealer, generate_key_spec
from worker.web.app import create_app

CLIENT_ID = "shopsync-test-app"
SECRET = "shpss_world_secret"
SHOP = "demo.myshopify.com"
FRONTEND = "http://frontend.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    sandbox: ShopifySandbox
    shop: Shop
    sandbox_url: str
    web_url: str
    core: Settings
    shopify: ShopifySettings
    db: DirectDatabase
    conn: psycopg.Connection[dict[str, Any]]
    registry: JobRegistry

    @property
    def web(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.web_url, follow_redirects=False, timeout=10)

    def scalar(self, query: str, params: Any = None) -> Any:
        row = self.conn.execute(query, params).fetchone()
        assert row is not None
        return next(iter(row.values()))

    @asynccontextmanager
    async def worker(self, db: Database | None = None, **overrides: Any) -> AsyncIterator[Worker]:
        """A real worker on the test's event loop (on ``db``, default the direct path), drained on exit."""
        settings = self.core.model_copy(update={"poll_interval": 0.05, "lease_seconds": 10.0, **overrides})
        worker = Worker(db or self.db, self.registry, settings, worker_id="test-worker")
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            yield worker
        finally:
            stop.set()
            await task

    async def until(self, check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if isinstance(value, Awaitable):
                value = await value
            if value:
                return value
            if time.monotonic() > deadline:
                # say where the work stands, so a slow or stuck run explains itself
                jobs = [(j["id"], j["kind"], j["state"], j["attempts"], str(j["run_at"]), (j["last_error"] or "")[:200])
                        for j in self.jobs()]
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; jobs: {jobs}")
            await asyncio.sleep(0.05)

    def jobs(self, kind: str | None = None) -> list[dict[str, Any]]:
        return self.conn.execute("select * from shopsync.jobs where %s::text is null or kind = %s order by id",
                                 (kind, kind)).fetchall()

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

    def idle(self) -> bool:
        return self.scalar("select count(*) from shopsync.jobs where state in ('queued', 'running') "
                           "and run_at <= now()") == 0


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
            yield World(sandbox, shop, sandbox_url, web_url, core, shopify, db, conn, build_registry())
    finally:
        await db.close()


def owner_org(conn: psycopg.Connection[Any]) -> tuple[Any, Any]:
    user = new_user(conn)
    return user, personal_org(conn, user)
