"""The Shopify sandbox over real HTTP: OAuth, GraphQL paging/filters/cost, bulk, webhooks, faults.

Signatures are checked with independent implementations written here (not the sandbox's helpers).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.shopify import DatasetSpec, ShopifySandbox, serve_shopify_sandbox
from sandbox.shopify.state import AppConfig, Shop

SHOP = "demo.myshopify.com"
CLIENT_ID = "test-client-id"
SECRET = "shpss_test_secret"
V = "2026-10"


# --- helpers -----------------------------------------------------------------------------------------------

def make(spec: DatasetSpec | None = None, **options: Any) -> tuple[ShopifySandbox, AppConfig, Shop]:
    options.setdefault("webhook_retry_delays", (0.01,))
    sandbox = ShopifySandbox(**options)
    app = sandbox.add_app(CLIENT_ID, SECRET)
    shop = sandbox.add_shop(SHOP, spec or DatasetSpec(products=20, customers=5, orders=10))
    return sandbox, app, shop


@contextmanager
def served(sandbox: ShopifySandbox) -> Iterator[str]:
    with serve_shopify_sandbox(sandbox) as base:
        yield base


def gql(sandbox: ShopifySandbox, token: str, query: str, variables: dict[str, Any] | None = None, *,
        version: str = V, shop: str = SHOP) -> dict[str, Any]:
    resp = httpx.post(f"{sandbox.shop_url(shop)}/admin/api/{version}/graphql.json",
                      json={"query": query, "variables": variables or {}},
                      headers={"X-Shopify-Access-Token": token}, timeout=10)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def gql_retrying(sandbox: ShopifySandbox, token: str, query: str, variables: dict[str, Any] | None = None,
                 **kw: Any) -> dict[str, Any]:
    """What a well-behaved client does: wait out THROTTLED using the reported bucket state."""
    while True:
        body = gql(sandbox, token, query, variables, **kw)
        errors = body.get("errors") or []
        if errors and errors[0].get("extensions", {}).get("code") == "THROTTLED":
            cost = body["extensions"]["cost"]
            missing = cost["requestedQueryCost"] - cost["throttleStatus"]["currentlyAvailable"]
            time.sleep(max(missing, 1) / cost["throttleStatus"]["restoreRate"])
            continue
        return body


def independent_callback_hmac(query: dict[str, str], secret: str) -> str:
    # shopify-app-js: URLSearchParams of the sorted params (minus hmac), "+" turned into "%20".
    pairs = sorted((k, v) for k, v in query.items() if k not in ("hmac", "signature"))
    message = urlencode(pairs).replace("+", "%20")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def oauth_install(sandbox: ShopifySandbox, redirect: str = "https://app.example.com/auth/callback") -> dict[str, Any]:
    resp = httpx.get(f"{sandbox.shop_url(SHOP)}/admin/oauth/authorize",
                     params={"client_id": CLIENT_ID, "scope": "read_products,read_orders,read_all_orders",
                             "redirect_uri": redirect, "state": "nonce-123", "grant_options[]": ""})
    assert resp.status_code == 302
    query = dict(parse_qsl(urlsplit(resp.headers["location"]).query))
    token = httpx.post(f"{sandbox.shop_url(SHOP)}/admin/oauth/access_token",
                       json={"client_id": CLIENT_ID, "client_secret": SECRET, "code": query["code"], "expiring": "1"})
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    return body


@dataclass
class Receiver:
    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.received.append(({k.lower(): v for k, v in request.headers.items()}, body))
            return Response(status_code=self.status)

        return Starlette(routes=[Route("/hooks/{topic:path}", hook, methods=["POST"])])

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(b) for _, b in self.received]


@contextmanager
def serve_receiver(receiver: Receiver) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(receiver.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


PAGE = """query Page($first: Int!, $after: String, $query: String, $sort: ProductSortKeys) {
  products(first: $first, after: $after, query: $query, sortKey: $sort) {
    edges { cursor node { id updatedAt } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def all_products(sandbox: ShopifySandbox, token: str, query: str | None = None, *, sort: str = "ID",
                 version: str = V, first: int = 250) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        body = gql_retrying(sandbox, token, PAGE, {"first": first, "after": after, "query": query, "sort": sort},
                            version=version)
        conn = body["data"]["products"]
        out.extend(e["node"] for e in conn["edges"])
        if not conn["pageInfo"]["hasNextPage"]:
            return out
        after = conn["pageInfo"]["endCursor"]


# --- OAuth -------------------------------------------------------------------------------------------------

def test_oauth_code_flow_signature_and_code_reuse() -> None:
    sandbox, _app, _shop = make()
    with served(sandbox):
        redirect = "https://app.example.com/auth/callback"
        resp = httpx.get(f"{sandbox.shop_url(SHOP)}/admin/oauth/authorize",
                         params={"client_id": CLIENT_ID, "scope": "read_products read_orders",
                                 "redirect_uri": redirect, "state": "nonce 1/2", "grant_options[]": ""})
        assert resp.status_code == 302
        location = urlsplit(resp.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
        query = dict(parse_qsl(location.query))
        assert set(query) == {"code", "hmac", "host", "shop", "state", "timestamp"}
        assert query["shop"] == SHOP and query["state"] == "nonce 1/2"
        assert base64.b64decode(query["host"]).decode() == "admin.shopify.com/store/demo"
        assert abs(int(query["timestamp"]) - time.time()) < 90
        assert hmac.compare_digest(query["hmac"], independent_callback_hmac(query, SECRET))
        assert not hmac.compare_digest(query["hmac"], independent_callback_hmac(query, "other-secret"))

        token_url = f"{sandbox.shop_url(SHOP)}/admin/oauth/access_token"
        bad = httpx.post(token_url, json={"client_id": CLIENT_ID, "client_secret": "wrong", "code": query["code"]})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
        ok = httpx.post(token_url, json={"client_id": CLIENT_ID, "client_secret": SECRET, "code": query["code"],
                                         "expiring": "1"})
        assert ok.status_code == 200
        body = ok.json()
        assert set(body) == {"access_token", "scope", "expires_in", "refresh_token", "refresh_token_expires_in"}
        assert body["expires_in"] == 3600 and body["scope"] == "read_products,read_orders"
        again = httpx.post(token_url, json={"client_id": CLIENT_ID, "client_secret": SECRET, "code": query["code"],
                                            "expiring": "1"})
        assert again.status_code == 400  # codes are single-use
        shop_name = gql(sandbox, body["access_token"], "{ shop { myshopifyDomain } }")["data"]["shop"]
        assert shop_name == {"myshopifyDomain": SHOP}


def test_refresh_rotates_and_old_refresh_token_dies() -> None:
    sandbox, _app, _shop = make()
    with served(sandbox):
        first = oauth_install(sandbox)
        url = f"{sandbox.shop_url(SHOP)}/admin/oauth/access_token"
        form = {"client_id": CLIENT_ID, "client_secret": SECRET, "grant_type": "refresh_token"}
        second = httpx.post(url, json={**form, "refresh_token": first["refresh_token"]})
        assert second.status_code == 200
        new = second.json()
        assert new["refresh_token"] != first["refresh_token"] and new["access_token"] != first["access_token"]
        reuse = httpx.post(url, json={**form, "refresh_token": first["refresh_token"]})
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
        third = httpx.post(url, data={**form, "refresh_token": new["refresh_token"]})  # form-encoded works too
        assert third.status_code == 200
        assert "data" in gql(sandbox, third.json()["access_token"], "{ shop { id } }")


def test_refresh_grace_mode_allows_retry_until_replacement_is_used() -> None:
    sandbox, app, _shop = make()
    app.refresh_grace = True
    with served(sandbox):
        first = oauth_install(sandbox)
        url = f"{sandbox.shop_url(SHOP)}/admin/oauth/access_token"
        form = {"client_id": CLIENT_ID, "client_secret": SECRET, "grant_type": "refresh_token"}
        lost = httpx.post(url, json={**form, "refresh_token": first["refresh_token"]}).json()  # "response lost"
        retry = httpx.post(url, json={**form, "refresh_token": first["refresh_token"]})
        assert retry.status_code == 200
        assert httpx.post(url, json={**form, "refresh_token": lost["refresh_token"]}).status_code == 400
        used = httpx.post(url, json={**form, "refresh_token": retry.json()["refresh_token"]})
        assert used.status_code == 200
        assert httpx.post(url, json={**form, "refresh_token": first["refresh_token"]}).status_code == 400


def test_expired_access_token_is_401_and_token_exchange_migrates_legacy_tokens() -> None:
    sandbox, app, shop = make()
    app.access_token_ttl = 1.0
    with served(sandbox):
        tokens = oauth_install(sandbox)
        assert tokens["expires_in"] == 1
        assert "data" in gql(sandbox, tokens["access_token"], "{ shop { id } }")
        time.sleep(1.1)
        resp = httpx.post(sandbox.graphql_url(SHOP), json={"query": "{ shop { id } }"},
                          headers={"X-Shopify-Access-Token": tokens["access_token"]})
        assert resp.status_code == 401 and "Invalid API key or access token" in resp.json()["errors"]
        assert httpx.post(sandbox.graphql_url(SHOP), json={"query": "{ shop { id } }"}).status_code == 401

        app.access_token_ttl = 3600.0
        legacy = sandbox.issue_token(shop, CLIENT_ID, expiring=False)
        assert set(legacy) == {"access_token", "scope"}
        exchange = {"client_id": CLIENT_ID, "client_secret": SECRET,
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": legacy["access_token"],
                    "subject_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
                    "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
                    "expiring": "1"}
        url = f"{sandbox.shop_url(SHOP)}/admin/oauth/access_token"
        migrated = httpx.post(url, json=exchange)
        assert migrated.status_code == 200 and "refresh_token" in migrated.json()
        assert httpx.post(sandbox.graphql_url(SHOP), json={"query": "{ shop { id } }"},
                          headers={"X-Shopify-Access-Token": legacy["access_token"]}).status_code == 401
        retried = httpx.post(url, json=exchange)  # a lost response can be recovered with the same legacy token
        assert retried.json()["access_token"] == migrated.json()["access_token"]


# --- GraphQL: pagination, filters, versions, scopes ---------------------------------------------------------

def test_pagination_through_1000_products_returns_each_once() -> None:
    sandbox, _app, shop = make(DatasetSpec(products=1000, variants_per_product=1, customers=1, orders=1),
                               throttle=False)  # this test is about cursors; throttling has its own test
    with served(sandbox):
        token = sandbox.issue_token(shop, CLIENT_ID)["access_token"]
        for sort in ("ID", "UPDATED_AT"):
            nodes = all_products(sandbox, token, sort=sort)
            ids = [n["id"] for n in nodes]
            assert len(ids) == 1000 and len(set(ids)) == 1000
            expected = {f"gid://shopify/Product/{i}" for i in shop.product_ids()}
            assert set(ids) == expected
        stamps = [n["updatedAt"] for n in all_products(sandbox, token, sort="UPDATED_AT", first=100)]
        assert stamps == sorted(stamps)
        # last/before pages backwards
        body = gql(sandbox, token, "{ products(last: 3) { nodes { id } pageInfo { hasPreviousPage } } }")
        assert [n["id"] for n in body["data"]["products"]["nodes"]] == \
            [f"gid://shopify/Product/{i}" for i in shop.product_ids()[-3:]]
        assert body["data"]["products"]["pageInfo"]["hasPreviousPage"] is True
        too_many = gql(sandbox, token, "{ products(first: 251) { nodes { id } } }")
        assert too_many["data"]["products"] is None and too_many["errors"]
        no_first = gql(sandbox, token, "{ products { nodes { id } } }")
        assert no_first["errors"][0]["message"] == "you must provide one of first or last"


def test_updated_at_filter_quoted_unquoted_and_exclusive_second() -> None:
    sandbox, _app, shop = make(DatasetSpec(products=60, customers=1, orders=1))
    anchor = shop.catalog.anchor_us
    cut = anchor + 5_000_000  # a whole second, after every generated timestamp
    ids = shop.product_ids()
    same_second, later = ids[:2], ids[10:13]
    for pid in same_second:
        shop.update_product(pid, title="changed in the cut second", at_us=cut + 500_000)
    for pid in later:
        shop.update_product(pid, title="changed later", at_us=cut + 7_000_000)
    cut_iso = datetime.fromtimestamp(cut / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    gids = {f"gid://shopify/Product/{i}" for i in later}
    with served(sandbox):
        token = sandbox.issue_token(shop, CLIENT_ID)["access_token"]
        quoted = {n["id"] for n in all_products(sandbox, token, f"updated_at:>'{cut_iso}'")}
        assert quoted == gids  # 2026-10: '>' excludes the whole second of the cut
        old = {n["id"] for n in all_products(sandbox, token, f"updated_at:>'{cut_iso}'", version="2026-07")}
        assert old == gids | {f"gid://shopify/Product/{i}" for i in same_second}
        inclusive = {n["id"] for n in all_products(sandbox, token, f"updated_at:>='{cut_iso}'")}
        assert inclusive == old
        sorted_incremental = all_products(sandbox, token, f"updated_at:>='{cut_iso}'", sort="UPDATED_AT")
        assert {n["id"] for n in sorted_incremental} == old
        unquoted = {n["id"] for n in all_products(sandbox, token, f"updated_at:>{cut_iso}")}
        day = cut_iso[:10]
        everything = all_products(sandbox, token)
        assert unquoted == {n["id"] for n in everything if n["updatedAt"][:10] >= day}  # time part ignored
        assert unquoted >= old
        body = gql(sandbox, token, "{ products(first: 5, query: \"title:foo updated_at:>'nonsense'\") { nodes { id } } }")
        assert body["extensions"]["search"][0]["warnings"]


def test_versions_scopes_hosts_and_parse_errors() -> None:
    sandbox, _app, shop = make()
    other = sandbox.add_shop("other-shop.myshopify.com", DatasetSpec(products=3))
    with served(sandbox) as base:
        token = sandbox.issue_token(shop, CLIENT_ID, scopes=["read_products"])["access_token"]
        q = {"query": "{ shop { id } }"}
        h = {"X-Shopify-Access-Token": token}
        assert httpx.post(f"{sandbox.shop_url(SHOP)}/admin/api/2099-01/graphql.json", json=q, headers=h).status_code == 404
        old = httpx.post(f"{sandbox.shop_url(SHOP)}/admin/api/2023-01/graphql.json", json=q, headers=h)
        assert old.status_code == 200 and old.headers["x-shopify-api-version"] == sandbox.supported_versions[0]
        assert httpx.post(sandbox.graphql_url(other), json=q, headers=h).status_code == 401  # token is per shop
        by_host = httpx.post(f"{base}/admin/api/{V}/graphql.json", json=q, headers={**h, "Host": SHOP})
        assert by_host.status_code == 200
        denied = gql(sandbox, token, "{ orders(first: 1) { nodes { id } } }")
        assert denied["data"]["orders"] is None
        assert denied["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
        bad = gql(sandbox, token, "{ products(first: 1) { nodes { id } }")
        assert "Parse error" in bad["errors"][0]["message"] and bad["errors"][0]["locations"]
        unknown = gql(sandbox, token, "{ bogus { id } }")
        assert unknown["errors"][0]["extensions"]["code"] == "undefinedField"
        pid = shop.product_ids()[0]
        frag = gql(sandbox, token, f"""query Q {{ node(id: "gid://shopify/Product/{pid}") {{ __typename ...P }} }}
                                       fragment P on Product {{ id t: title variants(first: 2) {{ nodes {{ sku }} }} }}""")
        node = frag["data"]["node"]
        assert node["__typename"] == "Product" and "t" in node and len(node["variants"]["nodes"]) == 2


# --- cost & throttling ---------------------------------------------------------------------------------------

def test_cost_extension_throttled_when_hammered_and_never_with_throttle_off() -> None:
    sandbox, _app, shop = make(DatasetSpec(products=300, variants_per_product=2, customers=1, orders=1),
                               bucket_size=300, restore_rate=20)
    query = "{ products(first: 100) { nodes { id title } } }"
    with served(sandbox):
        token = sandbox.issue_token(shop, CLIENT_ID)["access_token"]
        first = gql(sandbox, token, query)
        cost = first["extensions"]["cost"]
        assert cost["requestedQueryCost"] == 102 and cost["actualQueryCost"] == 102
        assert cost["throttleStatus"]["maximumAvailable"] == 300 and cost["throttleStatus"]["restoreRate"] == 20
        assert cost["throttleStatus"]["currentlyAvailable"] < 300
        bodies = [gql(sandbox, token, query) for _ in range(6)]
        throttled = [b for b in bodies if b.get("errors")]
        assert throttled, "hammering must drain the bucket"
        t = throttled[0]
        assert t["errors"][0]["message"] == "Throttled"
        assert t["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert t["extensions"]["cost"]["actualQueryCost"] is None and "data" not in t
        assert sandbox.counters["throttled"] == len(throttled)
        too_big = gql(sandbox, token, "{ products(first: 250) { nodes { id variants(first: 100) { nodes { id } } } } }")
        assert too_big["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"

        sandbox.throttle = False
        before = sandbox.counters["throttled"]
        for _ in range(15):
            body = gql(sandbox, token, query)
            assert "errors" not in body and body["extensions"]["cost"]["requestedQueryCost"] == 102
        assert sandbox.counters["throttled"] == before


# --- bulk operations -----------------------------------------------------------------------------------------

BULK = '''mutation { bulkOperationRunQuery(query: """
  { products { edges { node { id title variants { edges { node { id sku price } } } } } } }
""") { bulkOperation { id status } userErrors { field message code } } }'''
POLL = "{ currentBulkOperation { id status errorCode objectCount rootObjectCount fileSize url partialDataUrl } }"


def wait_bulk(sandbox: ShopifySandbox, token: str, timeout: float = 20.0) -> tuple[dict[str, Any], set[str]]:
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = gql(sandbox, token, POLL)["data"]["currentBulkOperation"]
        seen.add(op["status"])
        if op["status"] in ("COMPLETED", "FAILED", "CANCELED", "EXPIRED"):
            return op, seen
        time.sleep(0.02)
    raise AssertionError("bulk operation did not finish")


def test_bulk_operation_lifecycle_and_jsonl() -> None:
    # long enough for the polls to see it running on a loaded machine
    sandbox, _app, shop = make(DatasetSpec(products=200, variants_per_product=3, customers=1, orders=1),
                               bulk_run_seconds=2.0)
    with served(sandbox):
        token = sandbox.issue_token(shop, CLIENT_ID)["access_token"]
        created = gql(sandbox, token, BULK)["data"]["bulkOperationRunQuery"]  # 2026-10: groupObjects false
        assert created["userErrors"] == [] and created["bulkOperation"]["status"] == "CREATED"
        busy = gql(sandbox, token, BULK, version="2025-10")["data"]["bulkOperationRunQuery"]  # one at a time
        assert busy["bulkOperation"] is None and busy["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"
        op, seen = wait_bulk(sandbox, token)
        assert op["status"] == "COMPLETED" and "RUNNING" in seen
        resp = httpx.get(op["url"])
        assert resp.status_code == 200
        assert int(op["fileSize"]) == len(resp.content)
        lines = [json.loads(line) for line in resp.text.splitlines()]
        assert int(op["objectCount"]) == len(lines) == 200 + 600 and op["rootObjectCount"] == "200"
        assert "gid:\\/\\/shopify" in resp.text  # Shopify escapes slashes in bulk output
        products = [ln for ln in lines if "__parentId" not in ln]
        variants = [ln for ln in lines if "__parentId" in ln]
        assert sorted(p["id"] for p in products) == sorted(f"gid://shopify/Product/{i}" for i in shop.product_ids())
        assert len({v["id"] for v in variants}) == 600 == len(variants)
        assert {v["id"] for v in variants} == {f"gid://shopify/ProductVariant/{i}" for i in shop.variant_ids()}
        position = {ln["id"]: n for n, ln in enumerate(lines)}
        not_adjacent = 0
        for n, line in enumerate(lines):
            parent = line.get("__parentId")
            if parent is None:
                continue
            assert position[parent] < n  # always after the parent...
            owner = next(lines[m] for m in range(n - 1, -1, -1) if "__parentId" not in lines[m])
            not_adjacent += owner["id"] != parent  # ...but not always right after it
        assert not_adjacent > 0


def test_bulk_faults_failed_expired_canceled() -> None:
    sandbox, _app, shop = make(DatasetSpec(products=40, customers=1, orders=1), bulk_run_seconds=0.3)
    with served(sandbox):
        token = sandbox.issue_token(shop, CLIENT_ID)["access_token"]
        sandbox.bulk.fail_next("FAILED", "TIMEOUT")
        gql(sandbox, token, BULK)
        op, _ = wait_bulk(sandbox, token)
        assert op["status"] == "FAILED" and op["errorCode"] == "TIMEOUT" and op["url"] is None
        partial = httpx.get(op["partialDataUrl"])
        assert partial.status_code == 200 and 0 < len(partial.text.splitlines()) < int(op["objectCount"])

        gql(sandbox, token, BULK)
        op, _ = wait_bulk(sandbox, token)
        sandbox.bulk.expire(op["id"])
        assert gql(sandbox, token, POLL)["data"]["currentBulkOperation"]["status"] == "EXPIRED"
        assert httpx.get(op["url"]).status_code == 403

        started = gql(sandbox, token, BULK)["data"]["bulkOperationRunQuery"]["bulkOperation"]
        cancel = gql(sandbox, token, 'mutation($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { status } '
                                     'userErrors { message } } }', {"id": started["id"]})
        assert cancel["data"]["bulkOperationCancel"]["userErrors"] == []
        op, _ = wait_bulk(sandbox, token)
        assert op["status"] == "CANCELED"

        bad = gql(sandbox, token, 'mutation { bulkOperationRunQuery(query: "{ shop { id } }") { userErrors { code } } }')
        assert bad["data"]["bulkOperationRunQuery"]["userErrors"][0]["code"] == "INVALID"


# --- webhooks ------------------------------------------------------------------------------------------------

SUBSCRIBE = """mutation($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id topic uri } userErrors { field message }
  }
}"""


def test_webhook_delivery_signature_duplicates_drops_reorder() -> None:
    sandbox, _app, shop = make()
    receiver = Receiver()
    with served(sandbox), serve_receiver(receiver) as hooks:
        token = sandbox.issue_token(shop, CLIENT_ID)["access_token"]
        created = gql(sandbox, token, SUBSCRIBE, {"topic": "PRODUCTS_UPDATE", "uri": f"{hooks}/hooks/products"})
        sub = created["data"]["webhookSubscriptionCreate"]
        assert sub["userErrors"] == [] and sub["webhookSubscription"]["topic"] == "PRODUCTS_UPDATE"
        listed = gql(sandbox, token, "{ webhookSubscriptions(first: 10) { nodes { id uri } } }")
        assert len(listed["data"]["webhookSubscriptions"]["nodes"]) == 1
        ids = shop.product_ids()

        shop.update_product(ids[0], title="Renamed")
        assert sandbox.webhooks.wait_idle()
        headers, raw = receiver.received[0]
        expected = base64.b64encode(hmac.new(SECRET.encode(), raw, hashlib.sha256).digest()).decode()
        assert hmac.compare_digest(headers["x-shopify-hmac-sha256"], expected)
        assert headers["x-shopify-topic"] == "products/update"
        assert headers["x-shopify-shop-domain"] == SHOP and headers["x-shopify-api-version"] == V
        assert headers["x-shopify-webhook-id"] and headers["x-shopify-event-id"] and headers["x-shopify-triggered-at"]
        assert json.loads(raw)["id"] == ids[0] and json.loads(raw)["title"] == "Renamed"

        receiver.received.clear()
        sandbox.webhooks.faults.duplicate_next = 1
        shop.update_product(ids[1], title="Twice")
        assert sandbox.webhooks.wait_idle()
        assert len(receiver.received) == 2
        (h1, _), (h2, _) = receiver.received
        assert h1["x-shopify-event-id"] == h2["x-shopify-event-id"]
        assert h1["x-shopify-webhook-id"] != h2["x-shopify-webhook-id"]

        receiver.received.clear()
        sandbox.webhooks.faults.drop_next = 1
        shop.update_product(ids[2], title="Lost")
        assert sandbox.webhooks.wait_idle()
        assert receiver.received == [] and sandbox.webhooks.records(outcome="dropped")

        sandbox.webhooks.hold()
        for pid in ids[3:9]:
            shop.update_product(pid, title="Batch")
        sandbox.webhooks.release(shuffle=True)
        assert sandbox.webhooks.wait_idle()
        got = [b["id"] for b in receiver.bodies()]
        assert sorted(got) == sorted(ids[3:9]) and got != ids[3:9]


def test_failing_endpoint_gets_retries_then_subscription_deleted() -> None:
    sandbox, _app, shop = make()
    receiver = Receiver(status=500)
    with served(sandbox), serve_receiver(receiver) as hooks:
        token = sandbox.issue_token(shop, CLIENT_ID)["access_token"]
        gql(sandbox, token, SUBSCRIBE, {"topic": "PRODUCTS_UPDATE", "uri": f"{hooks}/hooks/products"})
        shop.update_product(shop.product_ids()[0], title="Nobody listens")
        assert sandbox.webhooks.wait_idle()
        assert len(receiver.received) == 8  # 1 attempt + 7 retries, then 8 consecutive failures
        assert len({h["x-shopify-webhook-id"] for h, _ in receiver.received}) == 1  # retries keep the id
        assert sandbox.webhooks.records(outcome="subscription_deleted")
        listed = gql(sandbox, token, "{ webhookSubscriptions(first: 10) { nodes { id } } }")
        assert listed["data"]["webhookSubscriptions"]["nodes"] == []


def test_uninstall_compliance_and_bulk_finish_webhooks() -> None:
    sandbox, app, shop = make()
    receiver = Receiver()
    with served(sandbox), serve_receiver(receiver) as hooks:
        app.app_webhooks["app/uninstalled"] = f"{hooks}/hooks/uninstalled"
        app.compliance_uri = f"{hooks}/hooks/compliance"
        token = sandbox.issue_token(shop, CLIENT_ID)["access_token"]
        gql(sandbox, token, SUBSCRIBE, {"topic": "BULK_OPERATIONS_FINISH", "uri": f"{hooks}/hooks/bulk"})
        gql(sandbox, token, BULK)
        wait_bulk(sandbox, token)
        sandbox.send_customers_redact(shop, shop.customer_ids()[0])
        sandbox.send_shop_redact(shop)
        assert sandbox.webhooks.wait_idle()
        by_topic = {h["x-shopify-topic"]: json.loads(b) for h, b in receiver.received}
        assert by_topic["bulk_operations/finish"]["status"] == "completed"
        assert set(by_topic["customers/redact"]) == {"shop_id", "shop_domain", "customer", "orders_to_redact"}
        assert by_topic["shop/redact"] == {"shop_id": shop.shop_id, "shop_domain": SHOP}

        sandbox.uninstall(shop, CLIENT_ID)
        assert sandbox.webhooks.wait_idle()
        assert any(h["x-shopify-topic"] == "app/uninstalled" for h, _ in receiver.received)
        resp = httpx.post(sandbox.graphql_url(SHOP), json={"query": "{ shop { id } }"},
                          headers={"X-Shopify-Access-Token": token})
        assert resp.status_code == 401


# --- HTTP faults -------------------------------------------------------------------------------------------

def test_http_faults_429_5xx_hang_and_targeting() -> None:
    sandbox, _app, shop = make()
    with served(sandbox):
        token = sandbox.issue_token(shop, CLIENT_ID)["access_token"]
        url, h, q = sandbox.graphql_url(SHOP), {"X-Shopify-Access-Token": token}, {"query": "{ shop { id } }"}
        sandbox.faults.rate_limit_next(1, retry_after=2.0)
        r = httpx.post(url, json=q, headers=h)
        assert r.status_code == 429 and r.headers["retry-after"] == "2.0"
        sandbox.faults.fail_next(1, 503)
        r = httpx.post(url, json=q, headers=h)
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
        sandbox.faults.fail_next(1, 500, endpoint="token")
        assert httpx.post(url, json=q, headers=h).status_code == 200  # other endpoints unaffected
        token_url = f"{sandbox.shop_url(SHOP)}/admin/oauth/access_token"
        assert httpx.post(token_url, json={}).status_code == 500
        sandbox.faults.unauthorized_next(1)
        assert httpx.post(url, json=q, headers=h).status_code == 401
        sandbox.faults.hang_next(1, seconds=2.0)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url, json=q, headers=h, timeout=0.3)
        sandbox.faults.slow(0.3, n=1)
        started = time.monotonic()
        assert httpx.post(url, json=q, headers=h).status_code == 200
        assert time.monotonic() - started >= 0.3
        assert sandbox.counters["faults_injected"] >= 5
        assert any(rec.fault == "status:429" for rec in sandbox.request_log)


# --- scale -------------------------------------------------------------------------------------------------

def test_dataset_scales_to_100k_products_and_orders() -> None:
    started = time.monotonic()
    sandbox, _app, shop = make(DatasetSpec(products=100_000, customers=1000, orders=100_000), throttle=False)
    assert time.monotonic() - started < 10
    with served(sandbox):
        token = sandbox.issue_token(shop, CLIENT_ID)["access_token"]
        last = gql(sandbox, token, "{ products(last: 2) { nodes { id } } orders(last: 1) { nodes { name } } }")
        assert last["data"]["products"]["nodes"][-1]["id"] == f"gid://shopify/Product/{shop.product_ids()[-1]}"
        assert last["data"]["orders"]["nodes"][0]["name"] == "#101000"
        shop.update_product(shop.product_ids()[50_000], title="x")
        body = gql(sandbox, token, "{ products(first: 5, sortKey: UPDATED_AT, reverse: true) { nodes { title } } }")
        assert body["data"]["products"]["nodes"][0]["title"] == "x"


# --- bulk export bytes -------------------------------------------------------------------------------------

# sha256 of the JSONL files for the sync's bulk queries (products, orders, customers), recorded from the
# plain per-node projection before the export was compiled into a render plan: the fast path must not move
# a single byte (line order, interleaving, key order, escaping of "/" and non-ASCII).
BULK_GOLDEN = {
    False: ("d95afba7e81b06c738c290a267bf5095e013afdc487029e56c136d4d8e6ca1f2",
            "3fa962e154aa4bd507a47f030f30c4b94667942885b0e6c3dabe09bb5f733641",
            "25905844ddb76599aa580ebc092cf268b1409b8fa5e7b3abd7b2b49153ccf06f"),
    True: ("16405ec4c16859895045d9ba02d52b48a7a735db27b95105db78e9db53848a8a",
           "63319b603fa374719cb8cf7d2cf556a06b7761e7a27dcb75029da6c43fc627a5",
           "25905844ddb76599aa580ebc092cf268b1409b8fa5e7b3abd7b2b49153ccf06f"),
}


def bulk_export(sandbox: ShopifySandbox, shop: Shop, query: str, group_objects: bool) -> tuple[Any, bytes]:
    scopes = ("read_products", "read_customers", "read_orders", "read_all_orders", "read_locations")
    op, errors = sandbox.bulk.create(shop, CLIENT_ID, scopes, query, group_objects, V)
    assert op is not None and errors == []
    deadline = time.monotonic() + 30
    while not op.written and time.monotonic() < deadline:
        time.sleep(0.005)
    assert op.written
    return op, op.path.read_bytes()


@pytest.mark.parametrize("group_objects", [False, True])
def test_bulk_export_bytes_match_golden(group_objects: bool) -> None:
    from worker.connectors.shopify.queries import BULK_CUSTOMERS, BULK_ORDERS, BULK_PRODUCTS

    sandbox = ShopifySandbox(bulk_created_delay=0, bulk_run_seconds=0, seed=3)
    shop = sandbox.add_shop(SHOP, DatasetSpec(products=2000, orders=2000, customers=500, seed=7,
                                              anchor=datetime(2026, 1, 15, 12, tzinfo=UTC)))
    try:
        for query, golden in zip((BULK_PRODUCTS, BULK_ORDERS, BULK_CUSTOMERS), BULK_GOLDEN[group_objects],
                                 strict=True):
            op, data = bulk_export(sandbox, shop, query, group_objects)
            assert hashlib.sha256(data).hexdigest() == golden
            # bookkeeping follows the bytes: one count and one end offset per line
            ends = [n + 1 for n, byte in enumerate(data) if byte == 0x0A]
            assert op.line_ends == ends and op.object_count == op.lines_written == len(ends)
            assert op.file_size == len(data)
    finally:
        sandbox.close()


# Queries beyond the sync's own: fragments, inline fragments (matching and not), aliases, a field twice with
# different selections, __typename, fields the sandbox does not model, argument-taking fields, nodes vs edges.
ODD_BULK_QUERIES = [
    '''{ products { edges { node { ...P __typename t: title title id missingField
        options { __typename id name values position } variantsCount { count precision } variantsCount { count }
        totalInventory descriptionHtml description publishedAt
        variants { edges { node { id ... on ProductVariant { sku price } ... on Customer { email }
          selectedOptions { name value } product { id title } displayName inventoryQuantity
          inventoryItem { id tracked inventoryLevel(locationId: "gid://shopify/Location/70000000002") {
              id quantities(names: ["available", "committed", "bogus"]) { name quantity updatedAt } }
            inventoryLevels { nodes { id location { id name } quantities(names: ["on_hand"]) { name quantity } } }
          } } } } } } } }
      fragment P on Product { handle tags vendor id productType }''',
    '''{ locations { nodes { id name isActive address { city formatted zip }
        inventoryLevels { nodes { id item { id } quantities(names: ["available"]) { quantity } } } } } }''',
    '''{ customers { edges { node { id email numberOfOrders amountSpent { amount currencyCode __typename }
        addresses(first: 2) { id city formatted } defaultAddress { name address1 address2 }
        emailMarketingConsent { marketingState consentUpdatedAt } note tags displayName x: state } } } }''',
    '''{ orders { edges { node { id name note tags test closed cancelReason customer { id email displayName }
        fulfillments(first: 1) { id status trackingInfo(first: 1) { company number url } trackingInfo { url } }
        refunds { id totalRefundedSet { shopMoney { amount } presentmentMoney { currencyCode } } }
        totalPriceSet { shopMoney { amount currencyCode } shopMoney { amount } } currentTotalPriceSet { nope }
        lineItems { edges { node { id name variantTitle product { id } variant { id } unfulfilledQuantity
          discountedUnitPriceSet { __typename shopMoney { amount } } } } } } } } }''',
]


def test_bulk_render_plan_matches_the_reference_projection() -> None:
    from sandbox.shopify.bulk import RenderPlan, bulk_lines, encode_lines
    from sandbox.shopify.gql import collect_fields, parse
    from sandbox.shopify.project import Projector, node_fields

    sandbox, _app, shop = make(DatasetSpec(products=12, customers=6, orders=15, locations=3,
                                           anchor=datetime(2026, 1, 15, tzinfo=UTC)))
    pids, cids, oids = shop.product_ids(), shop.customer_ids(), shop.order_ids()
    # values orjson would encode differently from json.dumps, and strings that need escaping
    shop.update_product(pids[0], title='Ünïcödé / \u2028 \x01 tab\t "q" back\\slash </p> 😀', tags=["a/b", "é"],
                        vendor=1.5, product_type=1e-7, handle=10**20, emit=False)
    shop.update_product(pids[1], description=float("nan"), emit=False)
    shop.delete_product(pids[2])
    shop.update_customer(cids[0], note=2.0)
    shop.update_order(oids[0], note=float("inf"), tags=["p/q"])
    nodes = shop.nodes
    builders = {"products": (nodes.product_view, nodes.product, len(pids)),
                "orders": (nodes.order_view, nodes.order, len(oids)),
                "customers": (nodes.customer, nodes.customer, len(cids)),
                "locations": (nodes.location, nodes.location, 3)}
    rendered = b""
    for query in ODD_BULK_QUERIES:
        doc = parse(query)
        root = collect_fields(doc.operation(None).selections, doc, {}, None)[0]
        fast, full, count = builders[root.name]
        plan, proj = RenderPlan(Projector(doc, {}), root), Projector(doc, {})
        fields = node_fields(proj, root)
        for i in range(count):
            plan.plain = True
            got = encode_lines(plan.lines(fast(i)), plan.plain)
            want = [(json.dumps(line, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/") + "\n").encode()
                    for line in bulk_lines(proj, full(i), fields, None)]
            assert got == want, (root.name, i)
            rendered += b"".join(got)
        assert plan.proj.unknown_fields == proj.unknown_fields  # same fields reported, same order
    text = rendered.decode()
    for fragment in ('"vendor":1.5', '"productType":1e-07', '"handle":100000000000000000000', '"description":"nan"',
                     '"descriptionHtml":NaN', '"note":2.0', '"note":Infinity', '\\u0001', '\\"q\\"', "😀",
                     '"tags":["a\\/b","é"]', '"email":null', '"missingField":null', '"nope":null'):
        assert fragment in text, fragment
