"""Live look-ups, per platform, against its sandbox over real HTTP: a store is synced, the same look-ups are
asked while its policies are ``sync`` (answered from the synced tables) and after they become ``api_only``
(answered live through the connector) — and the answers are the same canonical model, value for value. Nothing
is persisted by a live look-up (no rows, no jobs), no log line holds a looked-up value, a look-up a platform
cannot do says so (TikTok Shop: why), a platform slower than the time budget answers 504, and one that refuses the
store's credentials answers 502."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from tests.conftest import as_role
from tests.lookup_world import create_key
from tests.metrics_text import sample
from tests.platform_world import AppWorld, owner_org
from tests.shopify_world import World
from tests.test_shoprenter import SrWorld, sr, sr_spec  # noqa: F401 - the ShopRenter world's fixtures
from tests.test_woocommerce import WooWorld, connected, https, wc_version, woo, woo_spec  # noqa: F401 - and Woo's
from tests.tiktok_world import TtWorld
from worker.config import Settings
from worker.logs import configure_logging

Conn = psycopg.Connection[dict[str, Any]]
Case = tuple[str, dict[str, Any]]
SYNCED_TABLES = ("products", "product_variants", "customers", "orders", "order_line_items", "order_fulfillments")


def owner_key(conn: Conn, store: UUID) -> tuple[str, UUID]:
    org = conn.execute("select organization_id from shopsync.stores where id = %s", (store,)).fetchone()["organization_id"]
    owner = conn.execute("select user_id from shopsync.organization_members where organization_id = %s "
                         "and role = 'owner'", (org,)).fetchone()["user_id"]
    return create_key(conn, owner, org, requests_per_second=1000, burst=1000)["key"], owner


def cases(conn: Conn, store: UUID) -> tuple[list[Case], list[str]]:
    """Look-ups that find something in this store's synced data, and the values they ask for."""
    s = str(store)
    customer = conn.execute("select c.* from shopsync.customers c where store_id = %s and email is not null "
                            "and phone is not null and exists (select 1 from shopsync.orders o where o.store_id = "
                            "c.store_id and o.customer_id = c.id and o.phone is not null) order by id limit 1",
                            (store,)).fetchone()
    assert customer is not None, "the sandbox has a customer with email, phone and orders"
    order = conn.execute("select * from shopsync.orders where store_id = %s and customer_id = %s order by id limit 1",
                         (store, customer["id"])).fetchone()
    variant = conn.execute("select * from shopsync.product_variants where store_id = %s and sku is not null "
                           "order by id limit 1", (store,)).fetchone()
    title = conn.execute("select title from shopsync.products where id = %s and store_id = %s",
                         (variant["product_id"], store)).fetchone()["title"]
    word = max(title.split(), key=len)
    found: list[Case] = [
        ("find_customer", {"store_id": s, "email": customer["email"].upper()}),
        ("find_customer", {"store_id": s, "phone": customer["phone"]}),
        ("find_orders", {"store_id": s, "customer_id": customer["id"], "limit": 50}),
        ("find_orders", {"store_id": s, "email": order["email"], "limit": 50}),
        ("find_orders", {"store_id": s, "phone": order["phone"], "limit": 50}),
        ("find_orders", {"store_id": s, "order_number": order["name"]}),
        ("get_order", {"store_id": s, "order_id": order["id"]}),
        ("find_products", {"store_id": s, "sku": variant["sku"], "limit": 50}),
        ("find_products", {"store_id": s, "text": word, "limit": 50}),
    ]
    values = [customer["email"], customer["phone"], order["phone"], customer["email"].lower(),
              "".join(c for c in customer["phone"] if c.isdigit())]
    return found, values


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What shopsync's own log handler writes (the redaction included), at the production level."""
    stream = io.StringIO()
    handler = configure_logging(Settings(_env_file=None, log_level="INFO"), stream=stream)  # type: ignore[call-arg]
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)


async def ask(world: AppWorld, key: str, lookups: list[Case]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=world.web_url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30) as client:
        return [await client.post(f"/v1/lookups/{op}", json=body) for op, body in lookups]


def differences(a: Any, b: Any, at: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{at}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{at}[{i}]")]
    return [] if a == b else [f"{at}: {a!r} != {b!r}"]


def answer(response: httpx.Response) -> dict[str, Any]:
    body = dict(response.json())
    body.pop("policy", None)
    body.pop("source", None)
    return body


async def metrics_page(world: AppWorld) -> str:
    async with world.web as client:
        return (await client.get("/metrics")).text


async def same_answers_live(world: AppWorld, store: UUID, unsupported: dict[str, str], log_lines: io.StringIO,
                            asked: tuple[list[Case], list[str]] | None = None) -> list[httpx.Response]:
    """Ask every case (``cases()`` unless ``asked`` gives them and their values) while synced, switch the store to
    api_only, ask again: equal answers, nothing kept. A look-up the platform cannot do may find nothing synced."""
    conn = world.conn
    key, owner = owner_key(conn, store)
    lookups, values = asked or cases(conn, store)
    synced = await ask(world, key, lookups)
    for (op, body), response in zip(lookups, synced, strict=True):
        assert response.status_code == 200, (op, body, response.text)
        assert response.json()["source"] == "synced", (op, body)
        assert response.json()["count"] > 0 or response.json()["lookup"] in unsupported, (op, body)
    with as_role(conn, "authenticated", owner):
        for resource in ("products", "customers", "orders"):
            conn.execute("select shopsync.set_access_policy(%s, %s, 'api_only')", (store, resource))
    assert all(world.scalar(f"select count(*) from shopsync.{t} where store_id = %s", (store,)) == 0
               for t in SYNCED_TABLES)
    jobs = world.scalar("select count(*) from shopsync.jobs")
    platform = world.scalar("select platform from shopsync.stores where id = %s", (store,))
    ok_calls = f'shopsync_platform_requests_total{{platform="{platform}",outcome="ok"}}'
    calls_before = sample(await metrics_page(world), ok_calls)
    shop_key = world.scalar("select shop_key from shopsync.stores where id = %s", (store,))
    limiter_rows = "select key, updated_at from shopsync_private.rate_limits where key like %s and (key like %s " \
                   "or key like %s)"
    limiter_args = (f"{platform}:%", f"%{store}%", f"%{shop_key}%")
    paced_before = {r["key"]: r["updated_at"] for r in conn.execute(limiter_rows, limiter_args).fetchall()}
    log_lines.truncate(0)
    live = await ask(world, key, lookups)
    for (op, body), before, after in zip(lookups, synced, live, strict=True):
        lookup = before.json()["lookup"]
        if lookup in unsupported:
            assert after.status_code == 422, (lookup, after.text)
            assert unsupported[lookup] in after.json()["detail"] and "api_only" in after.json()["detail"]
            assert lookup not in after.json()["live_lookups"]
            continue
        assert after.status_code == 200, (op, body, after.text)
        assert (after.json()["source"], after.json()["policy"]) == ("live", "api_only")
        assert answer(after) == answer(before), (op, body, differences(answer(before), answer(after)))
    # the live calls went through the store's shared limiter (the database's, every process's) ...
    paced_after = {r["key"]: r["updated_at"] for r in conn.execute(limiter_rows, limiter_args).fetchall()}
    assert any(k not in paced_before or at > paced_before[k] for k, at in paced_after.items()), paced_after
    # ... and count among the process's platform requests (the worker is stopped: they are all ours)
    page = await metrics_page(world)
    assert sample(page, ok_calls) - calls_before >= len(lookups) - len(unsupported)
    assert sample(page, 'shopsync_lookup_duration_seconds_count{policy="api_only"}') == len(lookups)
    # nothing was kept: no synced row, no job; no look-up value in any log line
    assert all(world.scalar(f"select count(*) from shopsync.{t} where store_id = %s", (store,)) == 0
               for t in SYNCED_TABLES)
    assert world.scalar("select count(*) from shopsync.jobs") == jobs
    written = log_lines.getvalue()
    assert "lookup http" in written
    for value in values:
        assert value not in written, value
    live_audit = conn.execute("select policy, outcome from shopsync.lookup_audit where store_id = %s "
                              "and policy = 'api_only'", (store,)).fetchall()
    assert len(live_audit) == len(lookups)
    return live


async def test_shopify_live_lookups_answer_what_the_sync_would(world: World, log_lines: io.StringIO) -> None:
    store = await world.connect()
    async with world.worker():
        await world.until(lambda: world.scalar("select count(*) from shopsync.sync_state where store_id = %s and "
                                               "last_full_sync_at is not null", (store,)) == 3, what="the full sync")
        await world.until(world.idle, what="an idle queue")
    await same_answers_live(world, store, {}, log_lines)
    assert world.sandbox.counters.get("max_cost_exceeded", 0) == 0


async def test_shopify_live_lookup_past_its_budget_answers_504(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await world.connect()
    key, owner = owner_key(world.conn, store)
    with as_role(world.conn, "authenticated", owner):
        world.conn.execute("select shopsync.set_access_policy(%s, 'customers', 'api_only')", (store,))
    # not connected yet: nothing to ask live
    (early,) = await ask(world, key, [("find_customer", {"store_id": str(store), "email": "x@example.com"})])
    assert early.status_code == 409 and "connecting" in early.json()["detail"]
    async with world.worker():
        await world.until(world.idle, what="the store activated and synced")
    world.sandbox.faults.slow(4.0, 1, endpoint="graphql")         # the budget is 2 s
    (slow,) = await ask(world, key, [("find_customer", {"store_id": str(store), "email": "x@example.com"})])
    assert slow.status_code == 504 and "budget" in slow.json()["detail"]
    assert world.scalar("select outcome from shopsync.lookup_audit where store_id = %s order by id desc limit 1",
                        (store,)) == "timeout"


async def test_woocommerce_live_lookups_answer_what_the_sync_would(woo: WooWorld,  # noqa: F811 - the fixture
                                                                   log_lines: io.StringIO) -> None:
    store = await connected(woo)
    live = await same_answers_live(woo, store, {"customers_by_phone": "WooCommerce cannot answer customers_by_phone "
                                                                      "live"}, log_lines)
    # the merchant revokes the keys: a live look-up says the platform refused them (not a 500, nothing kept)
    woo.store.revoke_key(woo.keys[0])
    key, _ = owner_key(woo.conn, store)
    order_id = live[6].json()["orders"][0]["id"]          # cases(): the 7th look-up is get_order
    (refused,) = await ask(woo, key, [("get_order", {"store_id": str(store), "order_id": order_id})])
    assert refused.status_code == 502 and "refused the store's credentials" in refused.json()["detail"]


async def test_shoprenter_live_lookups_answer_what_the_sync_would(sr: SrWorld,  # noqa: F811 - the fixture
                                                                  log_lines: io.StringIO) -> None:
    user, org = owner_org(sr.conn)
    store = await sr.install(user, org)
    async with sr.worker():
        await sr.until(lambda: sr.synced(store), what="the first full sync")
        await sr.until(sr.idle, what="an idle queue")
    await same_answers_live(sr, store, {"customers_by_phone": "ShopRenter cannot answer customers_by_phone live",
                                        "orders_by_phone": "ShopRenter cannot answer orders_by_phone live",
                                        "products_by_text": "ShopRenter cannot answer products_by_text live"},
                            log_lines)


TIKTOK_UNSUPPORTED = {
    "customers_by_email": "TikTok Shop cannot answer customers_by_email live (TikTok Shop gives sellers no customer "
                          "records",
    "customers_by_phone": "TikTok Shop cannot answer customers_by_phone live (TikTok Shop gives sellers no customer "
                          "records",
    "orders_by_email": "TikTok Shop cannot answer orders_by_email live (its order search has no email filter",
    "orders_by_phone": "TikTok Shop cannot answer orders_by_phone live (its order search has no phone filter",
    "products_by_text": "TikTok Shop cannot answer products_by_text live (its product search has no title filter",
}


def tiktok_cases(conn: Conn, store: UUID) -> tuple[list[Case], list[str]]:
    """TikTok has no customers: the buyer of most orders (their user id is the orders' customer_id) instead."""
    s = str(store)
    buyer = conn.execute("select customer_id from shopsync.orders where store_id = %s group by customer_id "
                         "order by count(*) desc, customer_id limit 1", (store,)).fetchone()["customer_id"]
    orders = conn.execute("select * from shopsync.orders where store_id = %s and customer_id = %s order by id",
                          (store, buyer)).fetchall()
    assert len(orders) >= 2, "the sandbox has a buyer with several orders"
    order = orders[0]
    variant = conn.execute("select * from shopsync.product_variants where store_id = %s and sku is not null "
                           "and deleted_at is null order by id limit 1", (store,)).fetchone()
    title = conn.execute("select title from shopsync.products where id = %s and store_id = %s",
                         (variant["product_id"], store)).fetchone()["title"]
    phone = "+1 512 555 0100"
    found: list[Case] = [
        ("find_customer", {"store_id": s, "email": order["email"]}),
        ("find_customer", {"store_id": s, "phone": phone}),
        ("find_orders", {"store_id": s, "customer_id": buyer, "limit": 50}),
        ("find_orders", {"store_id": s, "customer_id": buyer, "limit": 1}),
        ("find_orders", {"store_id": s, "email": order["email"], "limit": 50}),
        ("find_orders", {"store_id": s, "phone": phone}),
        ("find_orders", {"store_id": s, "order_number": f"#{order['name']}"}),
        ("get_order", {"store_id": s, "order_id": order["id"]}),
        ("find_products", {"store_id": s, "sku": variant["sku"], "limit": 50}),
        ("find_products", {"store_id": s, "text": max(title.split(), key=len), "limit": 50}),
    ]
    return found, [order["email"], buyer, "5125550100"]


async def test_tiktok_live_lookups_answer_what_the_sync_would(tt: TtWorld, log_lines: io.StringIO) -> None:
    user, org = owner_org(tt.conn)
    [store] = await tt.install(user, org)
    async with tt.worker():
        await tt.until(lambda: tt.synced(store), what="the first full sync")
        await tt.until(tt.idle, what="an idle queue")
    asked = tiktok_cases(tt.conn, store)
    live = await same_answers_live(tt, store, TIKTOK_UNSUPPORTED, log_lines, asked)
    by_customer = live[2].json()["orders"]
    assert len(by_customer) >= 2 and live[3].json()["orders"] == by_customer[:1]      # the newest, as synced
    assert live[7].json()["orders"][0]["line_items"]
    # what list_stores says TikTok can look up live, and an order that is not the seller's
    key, _ = owner_key(tt.conn, store)
    listed, missing = await ask(tt, key, [("list_stores", {}), ("get_order", {"store_id": str(store),
                                                                               "order_id": "1"})])
    assert listed.json()["stores"][0]["live_lookups"] == ["orders_by_customer", "orders_by_number", "order_by_id",
                                                          "variants_by_sku"]
    assert missing.status_code == 200 and missing.json()["count"] == 0
    # the seller removes the app from the shop: a live look-up says TikTok refused the credentials (not a 500)
    tt.sandbox.deauthorize(tt.app.app_key, tt.shop)
    assert tt.sandbox.webhooks.wait_idle(10)
    order_id = live[7].json()["orders"][0]["id"]
    (refused,) = await ask(tt, key, [("get_order", {"store_id": str(store), "order_id": order_id})])
    assert refused.status_code == 502 and "refused the store's credentials" in refused.json()["detail"]


async def test_tiktok_live_lookup_past_its_budget_answers_504(tt: TtWorld) -> None:
    user, org = owner_org(tt.conn)
    [store] = await tt.install(user, org)
    async with tt.worker():
        await tt.until(lambda: tt.synced(store), what="the first full sync")
        await tt.until(tt.idle, what="an idle queue")
    key, owner = owner_key(tt.conn, store)
    with as_role(tt.conn, "authenticated", owner):
        tt.conn.execute("select shopsync.set_access_policy(%s, 'orders', 'api_only')", (store,))
    order = next(iter(tt.shop.orders))
    tt.sandbox.faults.slow(4.0, 1, endpoint="orders")            # the budget is 2 s
    (slow,) = await ask(tt, key, [("get_order", {"store_id": str(store), "order_id": order})])
    assert slow.status_code == 504 and "budget" in slow.json()["detail"]
    assert tt.scalar("select outcome from shopsync.lookup_audit where store_id = %s order by id desc limit 1",
                     (store,)) == "timeout"
    (fine,) = await ask(tt, key, [("get_order", {"store_id": str(store), "order_id": order})])
    assert fine.status_code == 200 and [o["id"] for o in fine.json()["orders"]] == [order]
