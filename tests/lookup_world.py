"""What the look-up tests share: a store with synced rows written as a sync writes them, organization API keys
made through the real RPC, Supabase user tokens, and shopsync's web process on a real port."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from sandbox.serving import serve_app
from tests.conftest import as_role, new_user, personal_org
from tests.platform_world import free_port
from worker.config import Settings
from worker.db.direct import DirectDatabase
from worker.lookups.settings import LookupSettings
from worker.sealing import generate_key_spec
from worker.web.app import create_app

JWT_SECRET = "lookup-test-jwt-secret-with-at-least-32-characters"
EMAIL = "Ann.Buyer@Example.com"
PHONE = "+36 30 123 4567"          # stored as the customer typed it
PHONE_LOCAL = "06 30 999 8888"     # another customer, stored the Hungarian way


def user_token(user: uuid.UUID, *, ttl: int = 600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": str(user), "aud": "authenticated", "role": "authenticated", "iat": now,
                       "exp": now + ttl}, JWT_SECRET, algorithm="HS256")


def create_key(conn: psycopg.Connection[Any], user: uuid.UUID, org: uuid.UUID, **kw: Any) -> dict[str, Any]:
    """An API key made the way a frontend makes one (create_api_key as the signed-in owner)."""
    args = {"p_organization_id": org, "p_name": kw.pop("name", "agent"), **{f"p_{k}": v for k, v in kw.items()}}
    placeholders = ", ".join(f"{k} => %({k})s" for k in args)
    with as_role(conn, "authenticated", user):
        row = conn.execute(f"select shopsync.create_api_key({placeholders}) as k", args).fetchone()
    assert row is not None
    return dict(row["k"])


def seed_store(conn: psycopg.Connection[Any], org: uuid.UUID, shop: str = "lookups.myshopify.com") -> uuid.UUID:
    """A Shopify store with rows in every table a look-up reads (as a sync would have written them)."""
    store = conn.execute("select shopsync.upsert_store(%s, 'shopify', %s) as s", (org, shop)).fetchone()["s"]
    p = {"s": store, "o": org, "email": EMAIL, "phone": PHONE, "local": PHONE_LOCAL}
    ex = conn.execute
    ex("insert into shopsync.customers (store_id, id, organization_id, email, phone, first_name, last_name, "
       "orders_count, total_spent, currency, tags, default_address, source_created_at, source_updated_at) values "
       "(%(s)s, '101', %(o)s, %(email)s, %(phone)s, 'Ann', 'Buyer', 2, 59.98, 'EUR', '{vip}', "
       " '{\"city\": \"Budapest\", \"country_code\": \"HU\"}', '2025-01-01T10:00:00Z', '2025-03-01T10:00:00Z'), "
       "(%(s)s, '102', %(o)s, 'bob@example.com', %(local)s, 'Bob', 'Other', 0, 0, 'EUR', '{}', null, "
       " '2025-01-02T10:00:00Z', '2025-01-02T10:00:00Z')", p)
    ex("insert into shopsync.orders (store_id, id, organization_id, name, order_number, customer_id, email, phone, "
       "financial_status, fulfillment_status, currency, total_price, processed_at, source_created_at, "
       "source_updated_at) values "
       "(%(s)s, '5001', %(o)s, '#1001', '1001', '101', %(email)s, %(phone)s, 'paid', 'fulfilled', 'EUR', 19.99, "
       " '2025-02-01T10:00:00Z', '2025-02-01T10:00:00Z', '2025-02-02T10:00:00Z'), "
       "(%(s)s, '5002', %(o)s, '#1002', '1002', '101', %(email)s, null, 'paid', 'unfulfilled', 'EUR', 39.99, "
       " '2025-02-10T10:00:00Z', '2025-02-10T10:00:00Z', '2025-02-10T10:00:00Z')", p)
    ex("insert into shopsync.order_line_items (store_id, id, order_id, organization_id, product_id, variant_id, sku, "
       "title, quantity, price) values (%(s)s, '9001', '5001', %(o)s, '301', '401', 'TEE-BLUE-M', 'Blue tee', 1, 19.99), "
       "(%(s)s, '9002', '5002', %(o)s, '301', '402', 'TEE-BLUE-L', 'Blue tee', 2, 19.995)", p)
    ex("insert into shopsync.order_fulfillments (store_id, id, order_id, organization_id, status, tracking_company, "
       "tracking_numbers, tracking_urls, source_created_at) values (%(s)s, '7001', '5001', %(o)s, 'success', 'DHL', "
       "'{1Z999}', '{https://track.example/1Z999}', '2025-02-03T10:00:00Z')", p)
    ex("insert into shopsync.products (store_id, id, organization_id, title, status, vendor) values "
       "(%(s)s, '301', %(o)s, 'Blue Cotton Tee', 'active', 'Acme'), "
       "(%(s)s, '302', %(o)s, '100%% Wool_Scarf', 'active', 'Acme')", p)
    ex("insert into shopsync.product_variants (store_id, id, product_id, organization_id, title, sku, price, "
       "inventory_quantity, position) values (%(s)s, '401', '301', %(o)s, 'M', 'TEE-BLUE-M', 19.99, 3, 1), "
       "(%(s)s, '402', '301', %(o)s, 'L', 'TEE-BLUE-L', 19.99, 0, 2), "
       "(%(s)s, '403', '302', %(o)s, 'One size', 'SCARF', 25, null, 1)", p)
    return uuid.UUID(str(store))


@dataclass
class Tenant:
    owner: uuid.UUID
    org: uuid.UUID
    store: uuid.UUID
    key: str                  # an API key for every store and resource of the organization


def tenant(conn: psycopg.Connection[Any], shop: str, **key: Any) -> Tenant:
    owner = new_user(conn)
    org = personal_org(conn, owner)
    store = seed_store(conn, org, shop)
    return Tenant(owner, org, store, create_key(conn, owner, org, **key)["key"])


@dataclass
class LookupWeb:
    url: str
    core: Settings
    db: DirectDatabase

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=15)

    async def post(self, token: str | None, operation: str, body: Any) -> httpx.Response:
        async with self.client(token) as web:
            return await web.post(f"/v1/lookups/{operation}", json=body)


@pytest.fixture
def lookup_settings() -> LookupSettings:
    return LookupSettings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def web_core(dsn: str) -> Settings:
    return Settings(_env_file=None, database_url=dsn, sealing_keys=generate_key_spec("test"),  # type: ignore[call-arg]
                    supabase_jwt_secret=JWT_SECRET, local_dev=True)


@pytest.fixture
def served(web_core: Settings, lookup_settings: LookupSettings,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Settings]]:
    """The web process on a real port (its own database pool, opened by its lifespan)."""
    monkeypatch.setattr("worker.lookups.web.lookup_settings", lambda: lookup_settings)
    port = free_port()
    core = web_core.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    with serve_app(create_app(core), port=port, name="shopsync-web"):
        yield f"http://127.0.0.1:{port}", core


@pytest.fixture
async def web(served: tuple[str, Settings], dsn: str) -> AsyncIterator[LookupWeb]:
    db = await DirectDatabase.connect(dsn, listen=False)
    try:
        yield LookupWeb(served[0], served[1], db)
    finally:
        await db.close()
