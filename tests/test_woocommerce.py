"""WooCommerce end to end: the sandbox over real HTTP (OAuth 1.0a over http, Basic over https with a private
CA), shopsync's web process on a real port, a real worker. Connect with a Supabase user token → keys tested,
webhooks created with a per-store secret, first full sync; signed deliveries applied; disabled webhooks
revived; incremental and reconciliation; every refusal stores nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import jwt
import psycopg
import pytest

from sandbox.serving import serve_app
from sandbox.woocommerce import WooDatasetSpec, WooSandbox, WooStore, oauth1_sign, serve_woocommerce_sandbox
from tests.conftest import as_role
from tests.platform_world import AppWorld, free_port, owner_org
from worker.config import Settings
from worker.connectors.registry import publish_configs
from worker.connectors.woocommerce import CONNECTOR
from worker.connectors.woocommerce.client import oauth1_signature
from worker.connectors.woocommerce.settings import WEBHOOK_TOPICS, WooSettings
from worker.db.direct import DirectDatabase
from worker.runtime import build_registry
from worker.sealing import generate_key_spec
from worker.web.app import create_app

JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters"


def user_token(user: UUID, *, secret: str = JWT_SECRET, role: str = "authenticated", ttl: int = 600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": str(user), "aud": "authenticated", "role": role, "iat": now, "exp": now + ttl},
                      secret, algorithm="HS256")


@dataclass(kw_only=True)
class WooWorld(AppWorld):
    sandbox: WooSandbox
    store: WooStore
    keys: tuple[str, str]
    woo: WooSettings

    @property
    def url(self) -> str:
        return self.sandbox.store_url(self.store)

    async def connect(self, user: UUID, org: UUID, **overrides: Any) -> Any:
        body = {"organization_id": str(org), "store_url": self.url, "consumer_key": self.keys[0],
                "consumer_secret": self.keys[1], **overrides}
        async with self.web as web:
            return await web.post("/woocommerce/connect", json=body,
                                  headers={"Authorization": f"Bearer {user_token(user)}"})

    def count(self, table: str, store: UUID) -> int:
        live = "and deleted_at is null" if table not in ("order_line_items",) else ""
        return int(self.scalar(f"select count(*) from shopsync.{table} where store_id = %s {live}", (store,)))

    def synced(self, store: UUID) -> bool:
        return self.scalar("select count(*) from shopsync.sync_state where store_id = %s "
                           "and last_full_sync_at is not null and checkpoint is null", (store,)) == 3

    def stored_nothing(self) -> bool:
        return self.scalar("select count(*) from shopsync.stores") == 0 and \
            self.scalar("select count(*) from shopsync_private.store_credentials") == 0


@pytest.fixture
def woo_spec() -> WooDatasetSpec:
    return WooDatasetSpec(seed=5, products=14, variable_share=0.3, variations_per_product=3, customers=6, orders=8)


@pytest.fixture
def https() -> bool:
    return False


@pytest.fixture
def wc_version() -> str:
    return "9.4.2"


@pytest.fixture
async def woo(dsn: str, conn: psycopg.Connection[dict[str, Any]], woo_spec: WooDatasetSpec, https: bool,
              wc_version: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WooWorld]:
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    sandbox = WooSandbox()
    store = sandbox.add_store("demo", woo_spec, wc_version=wc_version)
    keys = store.add_key(permissions="read_write")
    with serve_woocommerce_sandbox(sandbox, https=https):
        core = Settings(_env_file=None, database_url=dsn, sealing_keys=generate_key_spec("test"),  # type: ignore[call-arg]
                        public_url=web_url, local_dev=True, supabase_jwt_secret=JWT_SECRET, worker_concurrency=8)
        settings = WooSettings(_env_file=None, requests_per_second=40, ca_file=sandbox.ca_file)  # type: ignore[call-arg]
        monkeypatch.setattr(CONNECTOR, "_settings", settings)
        db = await DirectDatabase.connect(dsn, listen=True)
        await publish_configs(db, core)
        try:
            with serve_app(create_app(core), port=port, name="shopsync-web"):
                yield WooWorld(web_url=web_url, core=core, db=db, conn=conn, registry=build_registry(),
                               sandbox=sandbox, store=store, keys=keys, woo=settings)
        finally:
            await db.close()


async def connected(woo: WooWorld) -> UUID:
    user, org = owner_org(woo.conn)
    response = await woo.connect(user, org)
    assert response.status_code == 201, response.text
    store = UUID(response.json()["store_id"])
    async with woo.worker():
        await woo.until(lambda: woo.synced(store), what="the first full sync")
        await woo.until(woo.idle, what="an idle queue")
    return store


async def test_connect_then_full_sync_over_oauth1(woo: WooWorld) -> None:
    user, org = owner_org(woo.conn)
    response = await woo.connect(user, org)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["woocommerce_version"] == "9.4.2" and body["wordpress_version"] == "6.7.1"
    assert body["auth"] == "oauth1" and body["shop_key"] == woo.url
    store = UUID(body["store_id"])
    # one webhook per topic, at this store's URL, signed with a secret that is sealed, never in the clear
    hooks = list(woo.store.webhooks.values())
    assert sorted(h.topic for h in hooks) == sorted(WEBHOOK_TOPICS)
    assert {h.delivery_url for h in hooks} == {f"{woo.web_url}/woocommerce/webhooks/{store}"}
    assert all(h.status == "active" and h.ping_status == 200 for h in hooks)
    sealed = woo.scalar("select sealed from shopsync_private.store_credentials where store_id = %s", (store,))
    assert sealed.startswith("v1.") and woo.keys[1] not in sealed and hooks[0].secret not in sealed
    woo.store.reset_concurrency()
    async with woo.worker():
        await woo.until(lambda: woo.synced(store), what="the first full sync")
    products = woo.store.product_ids()
    variants = sum(len(woo.store.variation_ids(p)) or 1 for p in products)
    assert woo.count("products", store) == len(products) and woo.count("product_variants", store) == variants
    assert woo.count("customers", store) == len(woo.store.customer_ids())
    assert woo.count("orders", store) == len(woo.store.order_ids())
    assert woo.count("order_line_items", store) == sum(len(woo.store.order(o)["line_items"])
                                                       for o in woo.store.order_ids())
    # self-hosted shops get one request at a time
    assert woo.store.max_concurrent_requests == 1
    assert {r.auth for r in woo.sandbox.request_log if r.endpoint == "rest"} == {"oauth1"}
    order = woo.store.order(woo.store.order_ids()[0])
    row = woo.conn.execute("select * from shopsync.orders where store_id = %s and id = %s",
                           (store, str(order["id"]))).fetchone()
    assert row is not None and str(row["total_price"]) == f"{float(order['total']):.4f}"
    assert row["order_number"] == str(order["number"])


@pytest.mark.parametrize("https", [True])
async def test_https_stores_use_basic_auth_with_a_private_ca(woo: WooWorld) -> None:
    store = await connected(woo)
    assert woo.scalar("select platform_info ->> 'auth' from shopsync.stores where id = %s", (store,)) == "basic"
    assert {r.auth for r in woo.sandbox.request_log if r.endpoint == "rest"} == {"basic"}
    assert woo.count("products", store) == len(woo.store.product_ids())


async def test_deliveries_are_verified_and_applied(woo: WooWorld) -> None:
    store = await connected(woo)
    product = woo.store.product_ids()[0]
    order = woo.store.order_ids()[0]
    async with woo.worker():
        await asyncio.to_thread(woo.store.update_product, product, name="Renamed by the merchant")
        await woo.until(lambda: woo.scalar("select title from shopsync.products where store_id = %s and id = %s",
                                           (store, str(product))) == "Renamed by the merchant", what="the rename")
        # a variation's change arrives as product.updated carrying the variation (with its parent_id)
        parent = woo.store.variable_product_ids()[0]
        variation = woo.store.variation_ids(parent)[0]
        await asyncio.to_thread(woo.store.update_variation, parent, variation, regular_price="77.70")
        await woo.until(lambda: woo.scalar("select price from shopsync.product_variants where store_id = %s "
                                           "and id = %s", (store, str(variation))) == Decimal("77.70"),
                        what="the variation's new price")
        assert woo.scalar("select product_id from shopsync.product_variants where store_id = %s and id = %s",
                          (store, str(variation))) == str(parent)
        assert woo.scalar("select count(*) from shopsync.products where store_id = %s and id = %s",
                          (store, str(variation))) == 0
        await asyncio.to_thread(woo.store.delete_order, order)
        await woo.until(lambda: woo.scalar("select deleted_at is not null from shopsync.orders where store_id = %s "
                                           "and id = %s", (store, str(order))), what="the deleted order")
    inbox = woo.conn.execute("select status, delivery_id from shopsync.webhook_inbox where store_id = %s",
                             (store,)).fetchall()
    assert inbox and all(r["status"] == "processed" and r["delivery_id"].startswith(f"{store}:") for r in inbox)


async def test_forged_malformed_and_ping_requests(woo: WooWorld) -> None:
    store = await connected(woo)
    secret = next(iter(woo.store.webhooks.values())).secret
    body = b'{"id": 1, "name": "x", "date_modified_gmt": "2030-01-01T00:00:00"}'

    def signed(raw: bytes, key: str = secret) -> str:
        return base64.b64encode(hmac.new(key.encode(), raw, hashlib.sha256).digest()).decode()

    def headers(sig: str, topic: str = "product.updated", delivery: str = "d-1") -> dict[str, str]:
        return {"X-WC-Webhook-Signature": sig, "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Delivery-ID": delivery,
                "Content-Type": "application/json"}

    path = f"/woocommerce/webhooks/{store}"
    async with woo.web as web:
        ping = await web.post(path, content=b"webhook_id=12",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        forged = await web.post(path, content=body, headers=headers(signed(body, "wrong")))
        unsigned = await web.post(path, content=body, headers={"X-WC-Webhook-Topic": "product.updated"})
        tampered = await web.post(path, content=body + b" ", headers=headers(signed(body)))
        unknown_store = await web.post(f"/woocommerce/webhooks/{UUID(int=9)}", content=body,
                                       headers=headers(signed(body)))
        topic = await web.post(path, content=body, headers=headers(signed(body), topic="action.woocommerce_x"))
        garbage = b"{nope"
        not_json = await web.post(path, content=garbage, headers=headers(signed(garbage)))
        good = await web.post(path, content=body, headers=headers(signed(body)))
        again = await web.post(path, content=body, headers=headers(signed(body)))
    assert ping.status_code == 200
    assert [r.status_code for r in (forged, unsigned, tampered, unknown_store)] == [401, 401, 401, 404]
    assert (topic.status_code, not_json.status_code) == (400, 400)
    assert good.json()["status"] == "accepted" and again.json()["status"] == "duplicate"
    assert woo.scalar("select count(*) from shopsync.webhook_inbox where store_id = %s "
                      "and delivery_id like %s", (store, f"{store}:d-1:%")) == 1
    # WooCommerce reuses a delivery id for two events of one webhook in the same second: both are kept
    other = b'{"id": 2, "name": "y", "date_modified_gmt": "2030-01-01T00:00:00"}'
    async with woo.web as web:
        second = await web.post(path, content=other, headers=headers(signed(other)))
    assert second.json()["status"] == "accepted"
    assert woo.scalar("select count(*) from shopsync.webhook_inbox where store_id = %s "
                      "and delivery_id like %s", (store, f"{store}:d-1:%")) == 2


async def test_check_revives_disabled_and_recreates_deleted_webhooks(woo: WooWorld) -> None:
    store = await connected(woo)
    check = "select shopsync.enqueue_job('woocommerce.check_webhooks', p_store_id => %s)"
    woo.conn.execute(check, (store,))               # the periodic check: all in place, nothing to tell
    async with woo.worker():
        await woo.until(woo.idle, what="the first check")
    hooks = sorted(woo.store.webhooks.values(), key=lambda h: h.id)
    with woo.store.lock:
        hooks[0].status = "disabled"                 # what WooCommerce does after > 5 failed deliveries
        del woo.store.webhooks[hooks[1].id]
    woo.conn.execute(check, (store,))
    async with woo.worker():
        await woo.until(woo.idle, what="the check")
    job = woo.jobs("woocommerce.check_webhooks")[-1]
    assert job["state"] == "succeeded", job["last_error"]
    assert job["result"]["reactivated"] == [hooks[0].topic] and job["result"]["created"] == [hooks[1].topic]
    assert sorted(h.topic for h in woo.store.webhooks.values()) == sorted(WEBHOOK_TOPICS)
    assert all(h.status == "active" for h in woo.store.webhooks.values())
    # the core told the organization, once (webhooks.recreated; see docs/notifications.md)
    (event,) = woo.conn.execute("select id, subject, details from shopsync.events where type = 'webhooks.recreated'"
                                ).fetchall()
    assert job["result"]["recreated_event"] == event["id"] and event["subject"] == "woocommerce"
    assert event["details"]["topics"] == sorted([hooks[0].topic, hooks[1].topic]) and event["details"]["count"] == 2


async def test_incremental_and_reconcile(woo: WooWorld) -> None:
    store = await connected(woo)
    products = woo.store.product_ids()
    await asyncio.to_thread(woo.store.update_product, products[1], name="Changed quietly", emit=False)
    await asyncio.to_thread(woo.store.delete_product, products[2], force=True, emit=False)    # delivery lost
    before = len(woo.sandbox.request_log)
    woo.conn.execute("select shopsync.request_sync(%s, array['products'], 'incremental')", (store,))
    async with woo.worker():
        await woo.until(woo.idle, what="the incremental sync")
        run = woo.conn.execute("select * from shopsync.sync_runs where store_id = %s and mode = 'incremental'",
                               (store,)).fetchone()
        assert run is not None and run["status"] == "succeeded", run and run["error"]
        assert woo.scalar("select title from shopsync.products where store_id = %s and id = %s",
                          (store, str(products[1]))) == "Changed quietly"
        listed = [r for r in woo.sandbox.request_log[before:] if r.path.endswith("/products")]
        assert listed and all("modified_after=" in r.query for r in listed)
        woo.conn.execute("select shopsync.request_sync(%s, array['products'], 'reconcile')", (store,))
        await woo.until(woo.idle, what="the reconciliation")
    gone = woo.conn.execute("select deleted_at from shopsync.products where store_id = %s and id = %s",
                            (store, str(products[2]))).fetchone()
    assert gone is not None and gone["deleted_at"] is not None
    assert woo.count("products", store) == len(products) - 1


@pytest.mark.parametrize("wc_version", ["10.3.1"])
async def test_store_wide_variations_on_woocommerce_10_3(woo: WooWorld) -> None:
    store = await connected(woo)
    per_product = [r for r in woo.sandbox.request_log if "/variations" in r.path and "/products/" in r.path]
    store_wide = [r for r in woo.sandbox.request_log if r.path.endswith("/wc/v3/variations")]
    assert per_product == [] and store_wide
    products = woo.store.product_ids()
    assert woo.count("product_variants", store) == sum(len(woo.store.variation_ids(p)) or 1 for p in products)
    parent = woo.store.variable_product_ids()[0]
    variation = woo.store.variation_ids(parent)[-1]
    assert woo.scalar("select product_id from shopsync.product_variants where store_id = %s and id = %s",
                      (store, str(variation))) == str(parent)
    # a variation changed with its webhook lost: the incremental sync finds it through /variations
    await asyncio.to_thread(woo.store.update_variation, parent, variation, stock_quantity=4321, emit=False)
    woo.conn.execute("select shopsync.request_sync(%s, array['products'], 'incremental')", (store,))
    async with woo.worker():
        await woo.until(woo.idle, what="the incremental sync")
    assert woo.scalar("select inventory_quantity from shopsync.product_variants where store_id = %s and id = %s",
                      (store, str(variation))) == 4321


@pytest.mark.parametrize("case,status,detail", [
    ("wrong_keys", 422, "refused the API keys"),
    ("read_only", 422, "read-only"),
    ("not_woocommerce", 422, "does not run WooCommerce"),
    ("legacy_only", 422, "legacy API"),
    ("bad_key_shape", 400, "consumer_key"),
    ("no_org_role", 403, "owners and admins"),
    ("hostile_url", 400, ""),
])
async def test_refusals_store_nothing(woo: WooWorld, case: str, status: int, detail: str) -> None:
    user, org = owner_org(woo.conn)
    overrides: dict[str, Any] = {}
    if case == "wrong_keys":
        overrides["consumer_secret"] = "cs_" + "0" * 40
    elif case == "read_only":
        overrides.update(zip(("consumer_key", "consumer_secret"), woo.store.add_key(permissions="read"), strict=True))
    elif case == "not_woocommerce":
        woo.sandbox.add_store("blog", is_woocommerce=False)
        overrides["store_url"] = woo.sandbox.store_url("blog")
    elif case == "legacy_only":
        woo.sandbox.add_store("old", rest_api=False)
        overrides["store_url"] = woo.sandbox.store_url("old")
    elif case == "bad_key_shape":
        overrides["consumer_key"] = "not-a-key"
    elif case == "no_org_role":
        _, org = owner_org(woo.conn)                 # somebody else's organization
    elif case == "hostile_url":
        overrides["store_url"] = "http://user:pass@shop.example/?consumer_key=ck_x"
    response = await woo.connect(user, org, **overrides)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]
    assert woo.keys[1] not in response.text
    assert woo.stored_nothing()
    if case == "read_only":
        assert woo.store.webhooks == {}          # nothing left behind at the store either


async def test_private_addresses_are_refused_outside_local_development(woo: WooWorld) -> None:
    woo.woo.allow_private_urls = False
    user, org = owner_org(woo.conn)
    before = len(woo.sandbox.request_log)
    for url in (woo.url, "https://169.254.169.254/latest", "https://10.0.0.7/shop", "https://[::1]/shop"):
        response = await woo.connect(user, org, store_url=url)
        assert response.status_code == 400, (url, response.text)
    assert len(woo.sandbox.request_log) == before           # never contacted
    assert woo.stored_nothing()


async def test_unauthenticated_connects_are_refused(woo: WooWorld) -> None:
    user, org = owner_org(woo.conn)
    body = {"organization_id": str(org), "store_url": woo.url, "consumer_key": woo.keys[0],
            "consumer_secret": woo.keys[1]}
    async with woo.web as web:
        none = await web.post("/woocommerce/connect", json=body)
        forged = await web.post("/woocommerce/connect", json=body,
                                headers={"Authorization": f"Bearer {user_token(user, secret='x' * 40)}"})
        anon = await web.post("/woocommerce/connect", json=body,
                              headers={"Authorization": f"Bearer {user_token(user, role='anon')}"})
        junk = await web.post("/woocommerce/connect", content=b"[1,2",
                              headers={"Authorization": f"Bearer {user_token(user)}"})
    assert [r.status_code for r in (none, forged, anon)] == [401, 401, 401]
    assert junk.status_code == 400
    assert woo.stored_nothing()


def test_oauth1_signature_matches_woocommerce() -> None:
    params = {"oauth_consumer_key": "ck_1", "oauth_timestamp": "1700000000", "oauth_nonce": "n0nce",
              "oauth_signature_method": "HMAC-SHA256", "modified_after": "2026-01-01T10:00:00", "per_page": "100",
              "page": "2", "search": "a b~c"}
    url = "http://127.0.0.1:8082/stores/demo/wp-json/wc/v3/products"
    for method in ("HMAC-SHA256", "HMAC-SHA1"):
        signed = {**params, "oauth_signature_method": method}
        assert oauth1_signature("GET", url, signed, "cs_secret", method) == oauth1_sign("GET", url, signed,
                                                                                        "cs_secret", method)




async def test_connects_are_off_without_a_way_to_verify_users(woo: WooWorld) -> None:
    core = woo.core.model_copy(update={"supabase_jwt_secret": None, "supabase_url": None})
    assert CONNECTOR.public_config(core) is None and CONNECTOR.public_config(woo.core) is not None
    port = free_port()
    with serve_app(create_app(core), port=port, name="shopsync-web-no-auth"):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as web:
            response = await web.post("/woocommerce/connect", json={})
    assert response.status_code == 503 and "SUPABASE_JWT_SECRET" in response.json()["detail"]


async def test_disconnect_deletes_our_webhooks_or_says_what_was_left(woo: WooWorld) -> None:
    store = await connected(woo)
    woo.store.add_webhook("order.created", "https://someone-else.test/hook")
    user = woo.scalar("select user_id from shopsync.organization_members m join shopsync.stores s "
                      "on s.organization_id = m.organization_id where s.id = %s", (store,))
    with as_role(woo.conn, "authenticated", user):
        woo.conn.execute("select shopsync.disconnect_store(%s)", (store,))
    async with woo.worker():
        await woo.until(woo.idle, what="the disconnect job")
    [job] = woo.jobs("woocommerce.disconnect")
    assert job["state"] == "succeeded" and job["result"]["credentials_deleted"] is True
    assert sorted(job["result"]["removed"]["deleted"]) == sorted(WEBHOOK_TOPICS)
    ours = f"{woo.web_url}/woocommerce/webhooks/{store}"
    assert [h for h in woo.store.webhooks.values() if h.delivery_url == ours] == []
    # someone else's webhook at the store is left alone
    assert any(h.delivery_url == "https://someone-else.test/hook" for h in woo.store.webhooks.values())
    assert woo.scalar("select count(*) from shopsync_private.store_credentials where store_id = %s", (store,)) == 0

    # reconnected, then disconnected while the store cannot be reached: after the last attempt the keys go
    # anyway, and the store says what was left behind
    user2, org2 = owner_org(woo.conn)
    response = await woo.connect(user2, org2)
    assert response.status_code == 201, response.text
    second = UUID(response.json()["store_id"])
    woo.conn.execute("update shopsync.stores set shop_key = %s where id = %s", (f"http://127.0.0.1:{free_port()}",
                                                                                 second))
    with as_role(woo.conn, "authenticated", user2):
        woo.conn.execute("select shopsync.disconnect_store(%s)", (second,))
    woo.conn.execute("update shopsync.jobs set max_attempts = 1 where kind = 'woocommerce.disconnect' "
                     "and store_id = %s", (second,))
    async with woo.worker():
        await woo.until(woo.idle, what="the failing disconnect job")
    job = woo.jobs("woocommerce.disconnect")[-1]
    assert job["state"] == "succeeded" and job["result"]["credentials_deleted"] is True
    assert "StoreUnreachable" in job["result"]["left_behind"] or "ConnectError" in job["result"]["left_behind"]
    reason = woo.scalar("select status_reason from shopsync.stores where id = %s", (second,))
    assert "webhooks could not be removed" in reason and "delete them in the store's admin" in reason
    assert woo.scalar("select count(*) from shopsync_private.store_credentials where store_id = %s", (second,)) == 0


async def test_a_bad_record_is_skipped_and_recorded_and_nul_is_stripped(woo: WooWorld) -> None:
    store = await connected(woo)
    simple = [p for p in woo.store.product_ids() if woo.store.product(p)["type"] == "simple"]
    absurd, named = simple[0], simple[1]
    woo.store.update_product(absurd, stock_quantity=10**12, emit=False)       # no integer column holds it
    woo.store.update_product(named, name="Hat\x00Blue", emit=False)          # JSON allows NUL; PostgreSQL not
    woo.conn.execute("select shopsync.request_sync(%s, array['products'], 'full')", (store,))
    async with woo.worker():
        await woo.until(woo.idle, what="the full sync")
    job = woo.jobs("woocommerce.sync")[-1]
    assert job["state"] == "succeeded", job["last_error"]
    assert job["result"]["failed"] == 1 and job["result"]["nul_stripped"] == 1
    run = woo.conn.execute("select status, failed_count, record_errors from shopsync.sync_runs "
                           "order by id desc limit 1").fetchone()
    assert run["status"] == "succeeded" and run["failed_count"] == 1
    [error] = run["record_errors"]
    assert error["id"] == str(absurd) and "not an integer in range" in error["error"]
    assert woo.scalar("select title from shopsync.products where store_id = %s and id = %s",
                      (store, str(named))) == "HatBlue"
    # the skipped record keeps what was stored before; everything else of the page is written
    assert woo.count("products", store) == len(woo.store.product_ids())
    events = woo.conn.execute("select type from shopsync.events where store_id = %s", (store,)).fetchall()
    assert "sync.record_errors" in {e["type"] for e in events}
