"""The TikTok Shop sandbox over real HTTP: the documented signing (official and SDK vectors), the gateway's
checks, the consent → code → token flow with absolute expiries and rotating refresh tokens, authorized shops
with ciphers, product search paging and its 10,000 cap, price and inventory updates with their failures,
orders, warehouses, throttling, faults and signed webhooks."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.serving import serve_app
from sandbox.tiktok import (
    TikTokSandbox,
    TtApp,
    TtDatasetSpec,
    TtShop,
    request_sign,
    serve_tiktok_sandbox,
    string_to_sign,
    webhook_signature,
)

# --- signing: the official and SDK vectors (research notes, section 1.2/1.3) ---------------------------


@pytest.mark.parametrize(("secret", "path", "query", "body", "expected"), [
    ("e59af819cc", "/authorization/202309/shops", {"app_key": "29a39d", "timestamp": "1623812664"}, b"",
     "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8"),        # the doc's own example
    ("e59af819cc", "/event/202309/webhooks", {"app_key": "68xu9ks5p4i8", "timestamp": "1696909648",
                                              "shop_cipher": "ROW_xkMbgAAAeVAQra0eZWebFQq5aIK"}, b"",
     "ed58e1b5e59865c22a7b828c1cab65007441f43cc91a6cb2f2cdc638e0995a37"),        # SKIT SDK unit test (GET)
    ("e59af819cc", "/event/202309/webhooks", {"app_key": "68xu9ks5p4i8", "timestamp": "1696909648",
                                              "shop_cipher": "ROW_xkMbgAAAeVAQra0eZWebFQq5aIK"},
     b'{"event_type":"PACKAGE_UPDATE","address":"https://partner.tiktokshop.com"}',
     "701dd6deb2389fe4c469b89bd37fc56f96a6da6afeb4d01c9077a65169752fa7"),        # SKIT SDK unit test (PUT)
    ("app_secret", "/test-api", {"foo": "bar"}, b"",
     "d3cb7fe11ecae942802ceeca67e7cf10120cc12f1517d45fbc1c8cfe5413c80f"),        # EcomPHP unit test
    ("testsecret456", "/order/202309/orders", {"app_key": "testkey123", "timestamp": "1700000000",
                                               "shop_cipher": "ROW_abc123",
                                               "ids": "576486316948490001,576486316948490002"}, b"",
     "9a94561e778809942b2ad8b6b33ececf37c97e51a4412dbff70e1b36889f2ea5"),        # computed: a list parameter
    ("testsecret456", "/product/202309/products/1729592969712207008",
     {"app_key": "testkey123", "timestamp": "1700000000", "shop_cipher": "ROW_abc123", "access_token": "x",
      "sign": "stale"}, b"",
     "5e95f15e196631ad960aeddad6b339b92794644bee79f536feeed5553fb53d80"),        # access_token and sign left out
])
def test_request_signatures_match_the_published_vectors(secret: str, path: str, query: dict[str, str],
                                                         body: bytes, expected: str) -> None:
    assert request_sign(secret, path, query, body) == expected


def test_string_to_sign_is_the_documented_concatenation() -> None:
    assert string_to_sign("e59af819cc", "/authorization/202309/shops",
                          {"timestamp": "1623812664", "app_key": "29a39d"}) == \
        "e59af819cc/authorization/202309/shopsapp_key29a39dtimestamp1623812664e59af819cc"


def test_webhook_signature_matches_the_official_example() -> None:
    body = (b'{"type":1,"tts_notification_id":"7380066284010030890","shop_id":"7495540735365777507",'
            b'"timestamp":1718305585,"data":{"is_on_hold_order":true,"order_id":"576653688135258178",'
            b'"order_status":"UNPAID","update_time":1718305585}}')
    assert webhook_signature("abcdef", "123", body) == "5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05"


# --- a sandbox over HTTP and a signed client ---------------------------------------------------------------

class Received:
    def __init__(self) -> None:
        self.deliveries: list[tuple[bytes, str | None]] = []

    async def endpoint(self, request: Request) -> Response:
        self.deliveries.append((await request.body(), request.headers.get("authorization")))
        return Response("ok")

    async def callback(self, request: Request) -> Response:
        return Response("landed")


@pytest.fixture
def receiver() -> Iterator[tuple[Received, str]]:
    received = Received()
    app = Starlette(routes=[Route("/hooks", received.endpoint, methods=["POST"]),
                            Route("/callback", received.callback, methods=["GET"])])
    with serve_app(app, name="tiktok-receiver") as url:
        yield received, url


class World:
    def __init__(self, sandbox: TikTokSandbox, app: TtApp, shop: TtShop, base: str, tokens: dict[str, Any]) -> None:
        self.sandbox, self.app, self.shop, self.base, self.tokens = sandbox, app, shop, base, tokens

    def call(self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None, *,
             cipher: str | None = "shop", token: str | None = None, timestamp: int | None = None,
             sign: str | None = None) -> tuple[int, dict[str, Any]]:
        query = {"app_key": self.app.app_key, "timestamp": str(timestamp or int(time.time())), **(params or {})}
        if cipher is not None:
            query["shop_cipher"] = self.shop.cipher if cipher == "shop" else cipher
        raw = orjson.dumps(body) if body is not None else b""
        query["sign"] = sign or request_sign(self.app.app_secret, path, query, raw)
        response = httpx.request(method, self.base + path, params=query, content=raw or None, timeout=10,
                                 headers={"content-type": "application/json",
                                          "x-tts-access-token": token or self.tokens["access_token"]})
        return response.status_code, response.json()


@pytest.fixture
def world(receiver: tuple[Received, str]) -> Iterator[World]:
    _, url = receiver
    sandbox = TikTokSandbox(search_cap=25, webhook_retry_delays=(0.05,))
    app = sandbox.add_app("tt-key", "tt-secret", redirect_uri=f"{url}/callback", webhook_url=f"{url}/hooks")
    seller = sandbox.add_seller("Seller")
    shop = sandbox.add_shop(seller, "Shop A", TtDatasetSpec(products=40, orders=12, warehouses=2))
    with serve_tiktok_sandbox(sandbox) as base:
        yield World(sandbox, app, shop, base, sandbox.issue_tokens(app.app_key))


# --- the gateway ------------------------------------------------------------------------------------------

def test_gateway_refuses_bad_signatures_stale_timestamps_and_misplaced_ciphers(world: World) -> None:
    assert world.call("GET", "/logistics/202309/warehouses")[1]["code"] == 0
    status, body = world.call("GET", "/logistics/202309/warehouses", sign="0" * 64)
    assert (status, body["code"]) == (401, 106001)
    status, body = world.call("GET", "/logistics/202309/warehouses", timestamp=int(time.time()) - 301)
    assert (status, body["code"]) == (400, 36009004) and "5 minutes" in body["message"]
    status, body = world.call("GET", "/logistics/202309/warehouses", timestamp=int(time.time()) + 40)
    assert body["code"] == 36009004 and "30 seconds" in body["message"]
    assert world.call("GET", "/logistics/202309/warehouses", cipher=None)[1]["code"] == 106013
    assert world.call("GET", "/authorization/202309/shops")[1]["code"] == 36009004      # cipher not wanted there
    assert world.call("GET", "/logistics/202309/warehouses", cipher="ROW_nope")[1]["code"] == 36009004
    assert world.call("GET", "/logistics/202309/warehouses", token="TTP_forged")[0] == 401
    world.sandbox.expire_access_tokens()
    status, body = world.call("GET", "/logistics/202309/warehouses")
    assert (status, body["code"]) == (401, 105002)
    # the body is part of the signature: a body changed after signing is refused
    query = {"app_key": world.app.app_key, "timestamp": str(int(time.time())), "shop_cipher": world.shop.cipher,
             "page_size": "5"}
    query["sign"] = request_sign(world.app.app_secret, "/product/202502/products/search", query, b'{"status":"ALL"}')
    refused = httpx.post(world.base + "/product/202502/products/search", params=query, content=b'{"status":"DRAFT"}',
                         headers={"x-tts-access-token": world.tokens["access_token"]})
    assert refused.json()["code"] == 106001


def test_throttling_answers_429_with_the_rate_limit_code(world: World) -> None:
    world.shop.rate_limit = 3
    statuses = [world.call("GET", "/logistics/202309/warehouses") for _ in range(5)]
    assert [s for s, _ in statuses].count(429) >= 2
    assert all(b["code"] == 36009002 for s, b in statuses if s == 429)
    world.shop.rate_limit = None
    world.sandbox.faults.rate_limit_next(1, endpoint="inventory")
    product = next(iter(world.shop.products.values()))
    status, body = world.call("POST", f"/product/202309/products/{product.id}/inventory/update",
                              body={"skus": [{"id": product.skus[0].id, "inventory": []}]})
    assert (status, body["code"]) == (429, 36009002)
    world.sandbox.faults.envelope_error_next(36009003, "Internal error", endpoint="products")
    status, body = world.call("GET", f"/product/202309/products/{product.id}")
    assert (status, body["code"]) == (200, 36009003)          # an error at HTTP 200: the envelope decides


# --- consent, tokens, shops ---------------------------------------------------------------------------------

def test_consent_code_exchange_refresh_rotation_and_authorized_shops(world: World) -> None:
    second = world.sandbox.add_shop(world.shop.open_id, "Shop B", TtDatasetSpec(products=2, orders=0))
    consent = httpx.get(f"{world.base}/open/authorize", params={"service_id": world.app.service_id, "state": "s1"})
    assert consent.status_code == 302
    landed = parse_qs(urlsplit(consent.headers["location"]).query)
    assert landed["state"] == ["s1"] and landed["code"][0]
    token_url = f"{world.base}/api/v2/token/get"
    creds = {"app_key": world.app.app_key, "app_secret": world.app.app_secret}
    got = httpx.get(token_url, params={**creds, "auth_code": landed["code"][0], "grant_type": "authorized_code"}).json()
    assert got["code"] == 0
    data = got["data"]
    now = time.time()
    # absolute unix timestamps, not durations
    assert now + 6 * 86400 < data["access_token_expire_in"] < now + 8 * 86400
    assert data["refresh_token_expire_in"] > data["access_token_expire_in"] and data["open_id"] == world.shop.open_id
    again = httpx.get(token_url, params={**creds, "auth_code": landed["code"][0], "grant_type": "authorized_code"})
    assert again.json()["code"] == 36004004                      # single use
    wrong = httpx.get(token_url, params={**creds, "app_secret": "nope", "auth_code": "x",
                                         "grant_type": "authorized_code"})
    assert wrong.json()["code"] == 36009004
    # both shops of the seller, each with the cipher its calls send
    status, body = world.call("GET", "/authorization/202309/shops", cipher=None, token=data["access_token"])
    shops = {s["id"]: s for s in body["data"]["shops"]}
    assert set(shops) == {world.shop.id, second.id} and shops[second.id]["cipher"] == second.cipher
    # a refresh returns a new pair; the old refresh token is dead (strict rotation)
    refresh_url = f"{world.base}/api/v2/token/refresh"
    fresh = httpx.get(refresh_url, params={**creds, "refresh_token": data["refresh_token"],
                                           "grant_type": "refresh_token"}).json()
    assert fresh["code"] == 0 and fresh["data"]["refresh_token"] != data["refresh_token"]
    stale = httpx.get(refresh_url, params={**creds, "refresh_token": data["refresh_token"],
                                           "grant_type": "refresh_token"}).json()
    assert stale["code"] == 36004005 and world.sandbox.counters["refresh_reuse"] == 1
    world.sandbox.clock.advance(400 * 86400)
    expired = httpx.get(refresh_url, params={**creds, "refresh_token": fresh["data"]["refresh_token"],
                                             "grant_type": "refresh_token"}).json()
    assert expired["code"] == 36004001


# --- products ---------------------------------------------------------------------------------------------

def test_product_search_pages_filters_and_the_result_cap(world: World) -> None:
    seen: list[str] = []
    token = None
    while True:
        params = {"page_size": "10", **({"page_token": token} if token else {})}
        status, body = world.call("POST", "/product/202502/products/search", params)
        if body["code"] == 12052180:
            break
        seen += [p["id"] for p in body["data"]["products"]]
        token = body["data"]["next_page_token"]
        assert body["data"]["total_count"] == 40
        if not token:
            break
    # 40 products match, the cap is 25: the third page (offset 20, size 10) would pass it
    assert len(seen) == 20 and world.sandbox.counters["search_cap_errors"] == 1
    products = sorted(world.shop.products.values(), key=lambda p: p.create_time)
    middle = products[10].create_time
    status, body = world.call("POST", "/product/202502/products/search", {"page_size": "100"},
                              {"create_time_ge": middle, "create_time_le": products[29].create_time})
    assert body["code"] == 0 and body["data"]["total_count"] == 20 and body["data"]["next_page_token"] == ""
    sku = products[3].skus[0]
    status, body = world.call("POST", "/product/202502/products/search", {"page_size": "5"},
                              {"seller_skus": [sku.seller_sku]})
    assert [p["id"] for p in body["data"]["products"]] == [products[3].id]
    too_many = world.call("POST", "/product/202502/products/search", {"page_size": "5"},
                          {"seller_skus": [str(i) for i in range(11)]})[1]
    assert too_many["code"] == 12019027
    assert world.call("POST", "/product/202502/products/search", {"page_size": "101"})[1]["code"] == 36009004


def test_price_updates_all_or_nothing_with_locks_and_status(world: World) -> None:
    product = next(p for p in world.shop.products.values() if len(p.skus) >= 2)
    a, b = product.skus[0], product.skus[1]
    path = f"/product/202309/products/{product.id}/prices/update"

    def prices(*items: tuple[str, Any]) -> dict[str, Any]:
        return world.call("POST", path, body={"skus": [{"id": s, "price": {"amount": v, "currency": "USD"}}
                                                       for s, v in items]})[1]

    assert prices((a.id, "19.99"), (b.id, "5.50"))["code"] == 0
    assert (a.price, b.price) == (Decimal("19.99"), Decimal("5.50"))
    assert prices((a.id, "1.234"))["code"] == 12052012 and prices((a.id, "-1"))["code"] == 12052012
    assert prices((a.id, "0"))["code"] == 12052073 and prices((a.id, "9999.00"))["code"] == 12052570
    assert prices((a.id, "1"), (a.id, "2"))["code"] == 12052553
    assert prices(("1", "2.00"))["code"] == 12052557
    world.shop.lock_promotion(b.id)
    assert prices((a.id, "7.00"), (b.id, "8.00"))["code"] == 12019045
    assert a.price == Decimal("19.99")                              # nothing applied
    assert prices((a.id, "7.00"))["code"] == 0                      # the other SKU alone goes through
    world.shop.set_product_status(product.id, "PENDING")           # under review
    assert prices((a.id, "6.00"))["code"] == 12019113
    world.shop.set_product_status(product.id, "DELETED")
    assert prices((a.id, "6.00"))["code"] == 12019150
    assert world.call("GET", f"/product/202309/products/{product.id}")[1]["code"] == 12019150


def test_inventory_updates_fail_per_sku_inside_a_success_envelope(world: World) -> None:
    product = next(p for p in world.shop.products.values() if len(p.skus) >= 2)
    a, b = product.skus[0], product.skus[1]
    w1, w2 = world.shop.sales_warehouses()
    before = dict(b.inventory)
    path = f"/product/202309/products/{product.id}/inventory/update"
    status, body = world.call("POST", path, body={"skus": [
        {"id": a.id, "inventory": [{"warehouse_id": w1, "quantity": 5}, {"warehouse_id": w2, "quantity": 6}]},
        {"id": b.id, "inventory": [{"warehouse_id": w1, "quantity": 5}]}]})          # w2 missing
    assert (status, body["code"]) == (200, 0)
    [error] = body["data"]["errors"]
    assert error["code"] == 12052990 and error["detail"]["sku_id"] == b.id
    assert error["detail"]["extra_errors"][0]["code"] == 12019028
    assert a.inventory == {w1: 5, w2: 6} and b.inventory == before          # the failed SKU is left alone
    world.shop.lock_promotion(a.id)
    body = world.call("POST", path, body={"skus": [
        {"id": a.id, "inventory": [{"warehouse_id": w1, "quantity": 1}, {"warehouse_id": w2, "quantity": 6}]},
        {"id": b.id, "inventory": [{"warehouse_id": w1, "quantity": 100_000}, {"warehouse_id": w2, "quantity": 1}]}]})[1]
    codes = {e["detail"]["sku_id"]: e["detail"]["extra_errors"][0]["code"] for e in body["data"]["errors"]}
    assert codes == {a.id: 12052393, b.id: 12019024}
    ok = world.call("POST", path, body={"skus": [
        {"id": b.id, "inventory": [{"warehouse_id": w1, "quantity": 0}, {"warehouse_id": w2, "quantity": 3}]}]})[1]
    assert ok == {**ok, "code": 0, "data": {}} and b.inventory == {w1: 0, w2: 3}
    assert [w["kind"] for w in world.sandbox.writes] == ["inventory", "inventory", "inventory"]


# --- orders, warehouses, webhooks ---------------------------------------------------------------------------

def test_orders_search_and_detail(world: World) -> None:
    status, body = world.call("POST", "/order/202309/orders/search", {"page_size": "5", "sort_field": "update_time",
                                                                      "sort_order": "ASC"}, {})
    assert body["code"] == 0 and body["data"]["total_count"] == 12 and len(body["data"]["orders"]) == 5
    first = body["data"]["orders"][0]
    assert first["line_items"] and "quantity" not in first["line_items"][0]        # one line item per unit
    assert isinstance(first["payment"]["total_amount"], str)
    detail = world.call("GET", "/order/202309/orders", {"ids": first["id"]})[1]
    assert detail["data"]["orders"][0]["id"] == first["id"]
    assert world.call("GET", "/order/202309/orders", {"ids": "1"})[1]["code"] == 21008111
    since = world.call("POST", "/order/202309/orders/search", {"page_size": "50"},
                       {"update_time_ge": first["update_time"] + 1})[1]
    assert first["id"] not in [o["id"] for o in since["data"]["orders"]]
    # a buyer's orders (buyers repeat: one per first name)
    buyer = Counter(o.user_id for o in world.shop.orders.values()).most_common(1)[0][0]
    theirs = world.call("POST", "/order/202309/orders/search", {"page_size": "50"}, {"buyer_user_id": buyer})[1]
    expected = sorted((o.id for o in world.shop.orders.values() if o.user_id == buyer), key=int)
    assert sorted((o["id"] for o in theirs["data"]["orders"]), key=int) == expected and len(expected) >= 2
    assert {o["user_id"] for o in theirs["data"]["orders"]} == {buyer}
    assert world.call("POST", "/order/202309/orders/search", {"page_size": "5"}, {"buyer_user_id": 7})[1]["code"] \
        == 36009004
    warehouses = world.call("GET", "/logistics/202309/warehouses")[1]["data"]["warehouses"]
    assert [w["type"] for w in warehouses].count("SALES_WAREHOUSE") == 2


def test_webhooks_are_signed_with_the_app_key_and_secret(world: World, receiver: tuple[Received, str]) -> None:
    received, url = receiver
    sku = world.shop.all_skus()[0]
    order = world.shop.create_order([(sku.id, 2)])
    world.shop.set_product_status(world.shop.product_of(sku.id).id, "SELLER_DEACTIVATED")
    assert world.sandbox.webhooks.wait_idle(10)
    bodies = [(orjson.loads(b), sig, b) for b, sig in received.deliveries]
    assert [b["type"] for b, _, _ in bodies] == [1, 5]
    for body, sig, raw in bodies:
        assert sig == webhook_signature(world.app.app_key, world.app.app_secret, raw)
        assert body["shop_id"] == world.shop.id and body["tts_notification_id"]
    assert bodies[0][0]["data"]["order_id"] == order.id and len(order.lines) == 2
    # a shop-registered address wins over the Partner Center one; deauthorization and expiry warnings
    status, body = world.call("PUT", "/event/202309/webhooks",
                              body={"address": f"{url}/hooks?registered=1", "event_type": "SELLER_DEAUTHORIZATION"})
    assert body["code"] == 0
    world.sandbox.webhooks.faults.forge_signature_next = 1
    world.sandbox.deauthorize(world.app.app_key, world.shop)
    world.sandbox.warn_expiring(world.app.app_key, world.shop, days=5)
    assert world.sandbox.webhooks.wait_idle(10)
    records = world.sandbox.webhooks.records()
    assert records[-2].url.endswith("registered=1") and records[-2].type == 6
    deauth_raw, deauth_sig = received.deliveries[-2]
    assert deauth_sig != webhook_signature(world.app.app_key, world.app.app_secret, deauth_raw)     # forged
    expiring = orjson.loads(received.deliveries[-1][0])
    assert expiring["type"] == 7 and isinstance(expiring["data"]["expiration_time"], str)
    # the deauthorized shop is no longer reachable with the seller's token
    assert world.call("GET", "/logistics/202309/warehouses")[1]["code"] == 36009004
