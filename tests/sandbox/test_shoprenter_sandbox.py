"""The ShopRenter sandbox over real HTTP: tokens, paging, filters, XML, the 3 rps limit, install signatures,
webhooks, faults.

Signatures and ids are checked with independent implementations written here (not the sandbox's helpers).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.serving import serve_app
from sandbox.shoprenter import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_SHOP,
    ShopRenterSandbox,
    SrDatasetSpec,
    SrShop,
    demo_shoprenter_sandbox,
    serve_shoprenter_sandbox,
    sign_install_query,
)

CLIENT_ID = "sr-test-client"
SECRET = "sr-test-secret-0123456789abcdef"
BUDAPEST = ZoneInfo("Europe/Budapest")


# --- helpers -----------------------------------------------------------------------------------------------

def make(spec: SrDatasetSpec | None = None, *, rate_limit: float | None = None, installed: bool = True,
         **options: Any) -> tuple[ShopRenterSandbox, SrShop]:
    sandbox = ShopRenterSandbox(rate_limit=rate_limit, **options)
    sandbox.add_app(CLIENT_ID, SECRET)
    shop = sandbox.add_shop("demo", spec or SrDatasetSpec(products=45, customers=12, orders=15))
    if installed:
        sandbox.mark_installed(shop, CLIENT_ID)
    return sandbox, shop


def token_for(sandbox: ShopRenterSandbox, shop: str = "demo", client_id: str = CLIENT_ID,
              secret: str = SECRET) -> str:
    resp = httpx.post(f"{sandbox.oauth_base_url}/{shop}/app/token",
                      json={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert resp.status_code == 200, resp.text
    value: str = resp.json()["access_token"]
    return value


def api_get(sandbox: ShopRenterSandbox, token: str, path: str, params: dict[str, Any] | None = None, *,
            shop: str = "demo", accept: str | None = "application/json") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if accept is not None:
        headers["Accept"] = accept
    return httpx.get(f"{sandbox.api_url(shop)}/{path}", params=params, headers=headers, timeout=10)


def b64_inner(outer: str) -> str:
    return base64.b64decode(outer).decode()


def parse_xml(data: bytes) -> ET.Element:
    return ET.fromstring(data)  # noqa: S314 (the sandbox's own output)


def local(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, BUDAPEST).strftime("%Y-%m-%dT%H:%M:%S")


def all_items(sandbox: ShopRenterSandbox, token: str, resource: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Follow ``next`` hrefs from page 0."""
    url: str | None = f"{sandbox.api_url('demo')}/{resource}"
    query: dict[str, Any] | None = {**params, "page": 0}
    out: list[dict[str, Any]] = []
    with httpx.Client(headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}) as client:
        while url is not None:
            body = client.get(url, params=query).json()
            out.extend(body["items"])
            url = body["next"]["href"] if body["next"] else None
            query = None
    return out


@dataclass
class Receiver:
    """A stand-in app server: install/uninstall GETs and webhook POSTs."""

    status: int = 200
    gets: list[tuple[str, str]] = field(default_factory=list)  # (path, raw query)
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def get(request: Request) -> Response:
            with self.lock:
                self.gets.append((request.url.path, request.url.query))
            app_url = request.query_params.get("app_url")
            return RedirectResponse(app_url, status_code=302) if app_url else Response("bye")

        async def post(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.posts.append((request.url.path, {k.lower(): v for k, v in request.headers.items()}, body))
            return Response(status_code=self.status)

        return Starlette(routes=[Route("/sr/{kind}", get, methods=["GET"]),
                                 Route("/hooks/{name}", post, methods=["POST"])])

    def hooks(self, name: str) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for p, h, b in self.posts if p == f"/hooks/{name}"]


@contextmanager
def receiver_server(receiver: Receiver) -> Iterator[str]:
    with serve_app(receiver.app(), lifespan="off", name="sr-test-receiver") as url:
        yield url


# --- tokens ------------------------------------------------------------------------------------------------

def test_token_issue_errors_expiry_and_per_shop_tokens() -> None:
    sandbox, shop = make()
    other = sandbox.add_shop("other", SrDatasetSpec(products=2, customers=1, orders=1))
    sandbox.add_app("not-installed", "secret-2")
    with serve_shoprenter_sandbox(sandbox):
        url = f"{sandbox.oauth_base_url}/demo/app/token"
        ok = httpx.post(url, json={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET})
        assert ok.status_code == 200
        body = ok.json()
        assert list(body) == ["token_type", "expires_in", "access_token"]
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        assert body["access_token"].startswith("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.")  # JWT-shaped, as documented
        token = body["access_token"]
        # form-encoded bodies work too
        form = httpx.post(url, data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                     "client_secret": SECRET})
        assert form.status_code == 200 and form.json()["access_token"] != token

        for payload in ({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "wrong"},
                        {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": SECRET},
                        {"grant_type": "client_credentials", "client_id": "not-installed", "client_secret": "secret-2"}):
            bad = httpx.post(url, json=payload)
            assert bad.status_code == 401
            assert bad.json() == {"error": "invalid_client", "error_description": "Client authentication failed",
                                  "message": "Client authentication failed"}
        missing = httpx.post(url, json={"grant_type": "client_credentials", "client_secret": SECRET})
        assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
        assert missing.json()["hint"] == "Check the `client_id` parameter"
        grant = httpx.post(url, json={"grant_type": "authorization_code", "client_id": CLIENT_ID})
        assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
        assert sandbox.counters["token_errors"] == 3

        assert api_get(sandbox, token, "customers").status_code == 200
        no_auth = httpx.get(f"{sandbox.api_url(shop)}/customers", headers={"Accept": "application/json"})
        assert no_auth.status_code == 401 and no_auth.json()["error"] == "access_denied"
        assert no_auth.json()["hint"] == 'Missing "Authorization" header'
        assert api_get(sandbox, "eyJ.garbage.token", "customers").status_code == 401
        # a token is bound to its shop (the other shop has the app installed too)
        sandbox.mark_installed(other, CLIENT_ID)
        assert api_get(sandbox, token, "customers", shop="other").status_code == 401
        assert api_get(sandbox, token_for(sandbox, "other"), "customers", shop="other").status_code == 200

        assert sandbox.expire_tokens(shop) >= 2
        expired = api_get(sandbox, token, "customers")
        assert expired.status_code == 401 and expired.json()["error"] == "access_denied"
        sandbox.app(CLIENT_ID).access_token_ttl = 0.4
        short = httpx.post(url, json={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                      "client_secret": SECRET}).json()
        assert short["expires_in"] == 0
        assert api_get(sandbox, short["access_token"], "customers").status_code == 200
        time.sleep(0.5)
        assert api_get(sandbox, short["access_token"], "customers").status_code == 401
        # the retired Basic-Auth credential exchange answers 403, as the docs say
        assert httpx.post(f"{sandbox.base_url}/shops/demo/admin/oauth/access_credential").status_code == 403


# --- paging ------------------------------------------------------------------------------------------------

def test_pagination_zero_based_string_numbers_full_and_past_the_end() -> None:
    sandbox, shop = make()
    with serve_shoprenter_sandbox(sandbox):
        token = token_for(sandbox)
        api = sandbox.api_url(shop)
        first = api_get(sandbox, token, "productExtend", {"page": 0, "limit": 20}).json()
        assert [first[k] for k in ("page", "pageCount", "limit")] == ["0", "3", "20"]
        assert first["previous"] is None
        assert first["first"]["href"] == f"{api}/productExtend?page=0&limit=20"
        assert first["next"]["href"] == f"{api}/productExtend?page=1&limit=20"
        assert first["last"]["href"] == f"{api}/productExtend?page=2&limit=20"
        assert all(set(item) == {"href"} for item in first["items"]) and len(first["items"]) == 20

        items = all_items(sandbox, token, "productExtend", {"limit": 20, "full": 1})
        assert len(items) == 45
        inner = [int(item["innerId"]) for item in items]
        assert inner == sorted(inner) == list(range(1, 46))  # stable innerId order, each once
        for item in items:
            assert b64_inner(item["id"]) == f"product-product_id={item['innerId']}"
            assert item["href"] == f"{api}/productExtend/{item['id']}"
            assert isinstance(item["price"], str) and item["price"].endswith(".0000")
            assert item["stock1"].isdigit() and item["status"] in ("0", "1")
            names = {d["language"]["href"].rsplit("/", 1)[1]: d["name"] for d in item["productDescriptions"]}
            assert len(names) == 2 and all(names.values())
            assert item["dateUpdated"] >= item["dateCreated"]
        last = api_get(sandbox, token, "productExtend", {"page": 2, "limit": 20, "full": 1}).json()
        assert last["next"] is None and last["previous"]["href"].endswith("page=1&limit=20")
        assert len(last["items"]) == 5 and "sku" in last["items"][0]

        single = api_get(sandbox, token, f"productExtend/{items[7]['id']}").json()
        assert single == items[7]
        languages = api_get(sandbox, token, "languages", {"full": 1}).json()["items"]
        assert {lang["code"] for lang in languages} == {"hu", "en"}

        past = api_get(sandbox, token, "productExtend", {"page": 3, "limit": 20})
        assert past.status_code == 400
        assert past.json() == {"error": 40008, "message": "Page not found! This Resource minimum page is 0 and "
                                                          "maximum page is 2"}
        assert api_get(sandbox, token, "productExtend", {"limit": 201}).status_code == 400
        assert api_get(sandbox, token, "customers").json()["limit"] == "25"  # the documented default
        missing = api_get(sandbox, token, f"productExtend/{base64.b64encode(b'product-product_id=999').decode()}")
        assert missing.status_code == 404 and missing.json()["error"] == 40401
        assert api_get(sandbox, token, "productExtend/not-an-id").status_code == 400
        assert api_get(sandbox, token, "nosuchResource").status_code == 404


def test_orders_customers_shapes_line_items_and_statuses() -> None:
    sandbox, shop = make(SrDatasetSpec(products=10, customers=4, orders=6, line_items_per_order=4))
    with serve_shoprenter_sandbox(sandbox):
        token = token_for(sandbox)
        orders = all_items(sandbox, token, "orderExtend", {"full": 1, "limit": 200})
        assert len(orders) == 6
        for order in orders:
            assert b64_inner(order["id"]) == f"order-order_id={order['innerId']}"
            lines = order["orderProducts"]
            assert lines and all("quantity" not in line for line in lines)  # quantity is stock1..stock4
            for line in lines:
                qty = sum(int(line[f"stock{i}"]) for i in range(1, 5))
                assert float(line["total"]) == pytest.approx(float(line["price"]) * qty)
                assert b64_inner(line["product"]["href"].rsplit("/", 1)[1]).startswith("product-product_id=")
            total = next(t for t in order["orderTotals"] if t["type"] == "TOTAL")
            assert order["total"] == total["value"]  # orderExtend.total is the gross total
            assert order["currency"]["code"] == "HUF" and order["email"] and order["phone"]
        status_href = orders[0]["orderStatus"]["href"]
        status_id = status_href.rsplit("/", 1)[1]
        descriptions = api_get(sandbox, token, "orderStatusDescriptions",
                               {"orderStatusId": status_id, "full": 1}).json()["items"]
        assert len(descriptions) == 2 and all(d["orderStatus"]["href"] == status_href for d in descriptions)
        assert api_get(sandbox, token, f"orderStatuses/{status_id}").status_code == 200

        customers = all_items(sandbox, token, "customers", {"full": 1})
        assert len(customers) == 4
        c0 = customers[0]
        assert {"firstname", "lastname", "email", "telephone", "dateUpdated"} <= set(c0)
        assert c0["fax"] == {}  # empty text comes back as {} in customers, as in the docs' fixture
        assert b64_inner(c0["id"]) == "customer-customer_id=1"


# --- filters -----------------------------------------------------------------------------------------------

def test_updated_filters_are_exclusive_local_time_and_strict_format() -> None:
    sandbox, shop = make()
    with serve_shoprenter_sandbox(sandbox):
        token = token_for(sandbox)
        shop.clock.freeze()
        shop.clock.advance(3600)
        before = shop.clock.now_s()
        shop.clock.advance(10)
        stamp = shop.update_product(7, price=1990, stock1=3)
        assert stamp == shop.update_product(3, name="Új név")  # same second, same dateUpdated
        shop.update_customer(2, email="changed@example.hu")
        order_id = shop.order_ids()[4]
        shop.update_order(order_id, status=4)

        hits = all_items(sandbox, token, "productExtend", {"updatedAfter": local(before), "full": 1})
        assert [h["innerId"] for h in hits] == ["3", "7"]  # innerId order, not update order
        assert hits[1]["price"] == "1990.0000" and hits[1]["stock1"] == "3"
        assert hits[0]["dateUpdated"] == local(stamp) == hits[1]["dateUpdated"]  # shop local time, no offset
        # "after" is strict: the exact dateUpdated finds nothing
        assert all_items(sandbox, token, "productExtend", {"updatedAfter": local(stamp)}) == []
        space = all_items(sandbox, token, "productExtend", {"updatedAfter": local(before).replace("T", " ")})
        assert len(space) == 2
        customers = all_items(sandbox, token, "customers", {"updatedAtMin": local(before), "full": 1})
        assert [(c["innerId"], c["email"]) for c in customers] == [("2", "changed@example.hu")]
        orders = all_items(sandbox, token, "orderExtend", {"updatedAtMin": local(before), "full": 1})
        assert [o["innerId"] for o in orders] == [str(order_id)]
        assert b64_inner(orders[0]["orderStatus"]["href"].rsplit("/", 1)[1]) == "orderStatus-order_status_id=4"

        for bad in (local(before) + "Z", local(before) + "+01:00", local(before)[:10], "yesterday"):
            resp = api_get(sandbox, token, "productExtend", {"updatedAfter": bad})
            assert resp.status_code == 400 and resp.json()["error"] == 40009, bad
        wrong = api_get(sandbox, token, "customers", {"updatedAfter": local(before)})  # products' name on customers
        assert wrong.status_code == 400 and wrong.json()["error"] == 40010

        sandbox.filter_inclusive = True
        assert len(all_items(sandbox, token, "productExtend", {"updatedAfter": local(stamp)})) == 2
        # clock.advance moves later changes forward by that much
        shop.clock.advance(120)
        assert shop.update_product(3, status=0) - stamp >= 120


# --- XML ---------------------------------------------------------------------------------------------------

def test_xml_unless_accept_json() -> None:
    sandbox, shop = make()
    with serve_shoprenter_sandbox(sandbox):
        token = token_for(sandbox)
        resp = api_get(sandbox, token, "productExtend", {"limit": 5, "full": 1}, accept=None)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/xml")
        root = parse_xml(resp.content)
        assert root.tag == "response"
        assert root.findtext("page") == "0" and root.findtext("pageCount") == "9"
        items = root.findall("items/item")
        assert len(items) == 5
        assert items[0].findtext("sku") == shop.product(1).sku
        assert b64_inner(items[0].findtext("id") or "") == "product-product_id=1"
        assert len(items[0].findall("productDescriptions")) == 2
        single = api_get(sandbox, token, "customers/" + SrShop.outer_id("customer", 3), accept="text/xml")
        assert parse_xml(single.content).findtext("innerId") == "3"
        error = api_get(sandbox, token, "productExtend", {"page": 50}, accept="*/*")
        assert error.status_code == 400 and parse_xml(error.content).findtext("error") == "40008"


# --- rate limit --------------------------------------------------------------------------------------------

def test_three_requests_per_second_per_app_and_shop() -> None:
    sandbox, shop = make(rate_limit=3.0)
    sandbox.add_shop("second", SrDatasetSpec(products=3, customers=1, orders=1))
    sandbox.mark_installed("second", CLIENT_ID)
    with serve_shoprenter_sandbox(sandbox):
        token = token_for(sandbox)
        other_token = token_for(sandbox, "second")
        with httpx.Client(headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}) as client:
            burst = [client.get(f"{sandbox.api_url(shop)}/customers").status_code for _ in range(8)]
            assert burst[:3] == [200, 200, 200] and 429 in burst
            limited = client.get(f"{sandbox.api_url(shop)}/customers")
            assert limited.status_code == 429 and "retry-after" not in limited.headers
            # another shop has its own window
            assert api_get(sandbox, other_token, "customers", shop="second").status_code == 200
            rate_limited = sandbox.counters["rate_limited"]
            assert rate_limited == burst.count(429) + 1
            assert sum(1 for r in sandbox.request_log if r.status == 429 and r.shop == "demo") == rate_limited
            time.sleep(1.05)
            spaced = []
            for _ in range(7):
                spaced.append(client.get(f"{sandbox.api_url(shop)}/customers").status_code)
                time.sleep(0.34)
            assert spaced == [200] * 7
        assert sandbox.counters["rate_limited"] == rate_limited


# --- install / uninstall -----------------------------------------------------------------------------------

def independent_hmac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def test_install_and_uninstall_signed_in_both_orders() -> None:
    receiver = Receiver()
    sandbox = ShopRenterSandbox(rate_limit=None)
    shop = sandbox.add_shop("demo", SrDatasetSpec(products=3, customers=1, orders=1))
    with receiver_server(receiver) as app_base, serve_shoprenter_sandbox(sandbox):
        app = sandbox.add_app(CLIENT_ID, SECRET, redirect_uri=f"{app_base}/sr/install",
                              uninstall_uri=f"{app_base}/sr/uninstall", app_id=55)
        denied = httpx.post(f"{sandbox.oauth_base_url}/demo/app/token",
                            json={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET})
        assert denied.status_code == 401  # not installed yet

        for order, keys in (("docs", ["code", "shopname", "timestamp"]), ("demo", ["shopname", "code", "timestamp"])):
            resp = sandbox.install(shop, CLIENT_ID, order=order)
            assert resp.status_code == 302 and resp.headers["location"] == "https://demo.shoprenter.hu/admin/app/55"
            path, raw = receiver.gets[-1]
            pairs = parse_qsl(raw)
            assert path == "/sr/install" and [k for k, _ in pairs] == [*keys, "hmac", "app_url"]
            q = dict(pairs)
            assert q["shopname"] == "demo" and len(q["code"]) == 32 and abs(int(q["timestamp"]) - time.time()) < 5
            signed = "&".join(f"{k}={q[k]}" for k in keys)
            assert q["hmac"] == independent_hmac(SECRET, signed)
            # app_url is not part of the signed string
            assert q["hmac"] != independent_hmac(SECRET, signed + "&app_url=" + q["app_url"])
            assert q["hmac"] == sign_install_query(SECRET, q, order)
        assert sandbox.is_installed(shop, CLIENT_ID)
        token = token_for(sandbox)
        assert api_get(sandbox, token, "customers").status_code == 200

        fixed = sandbox.install_query(shop, CLIENT_ID, timestamp=1337178173)
        assert fixed["timestamp"] == "1337178173"
        assert fixed["hmac"] == independent_hmac(
            SECRET, f"code={fixed['code']}&shopname=demo&timestamp=1337178173")

        gone = sandbox.uninstall(shop, CLIENT_ID, order="demo")
        assert gone is not None and gone.status_code == 200
        path, raw = receiver.gets[-1]
        q = dict(parse_qsl(raw))
        assert path == "/sr/uninstall" and list(q) == ["shopname", "code", "timestamp", "hmac"]
        assert q["hmac"] == independent_hmac(SECRET, f"shopname=demo&code={q['code']}&timestamp={q['timestamp']}")
        assert not sandbox.is_installed(shop, CLIENT_ID)
        assert api_get(sandbox, token, "customers").status_code == 401
        assert httpx.post(f"{sandbox.oauth_base_url}/demo/app/token",
                          json={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                "client_secret": SECRET}).status_code == 401
        assert app.app_url("demo") == "https://demo.shoprenter.hu/admin/app/55"
        with pytest.raises(ValueError):
            sign_install_query(SECRET, q, "alphabetical")


# --- webhooks ----------------------------------------------------------------------------------------------

def test_webhook_resource_and_unsigned_deliveries() -> None:
    receiver = Receiver()
    sandbox, shop = make()
    with receiver_server(receiver) as hooks, serve_shoprenter_sandbox(sandbox):
        token = token_for(sandbox)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        api = sandbox.api_url(shop)
        created = httpx.post(f"{api}/webHooks", headers=headers, json={
            "event": "order_confirm", "status": "1", "label": "shopsync",
            "webHookParameters": [{"type": "json", "url": f"{hooks}/hooks/confirm"}]})
        assert created.status_code == 201
        hook = created.json()
        assert b64_inner(hook["id"]) == "webHook-notification_id=1"
        assert hook["webHookParameters"][0]["webHook"]["href"] == f"{api}/webHooks/{hook['id']}"
        assert hook["webHookDelay"] == []
        fields = httpx.post(f"{api}/webHooks", headers=headers, json={"data": {
            "event": "order_status_change", "status": "1", "label": "status",
            "webHookParameters": [{"type": "json", "url": f"{hooks}/hooks/status",
                                   "fields": ["order_innerId", "orderHistory_status", "orderProduct_sku"]}]}})
        assert fields.status_code == 201
        bad = httpx.post(f"{api}/webHooks", headers=headers, json={"event": "order_confirm", "status": "1"})
        assert bad.status_code == 400 and bad.json()["error"] == 40003
        bad_event = httpx.post(f"{api}/webHooks", headers=headers, json={
            "event": "orders/create", "status": "1", "label": "x", "webHookParameters": [{"url": hooks}]})
        assert bad_event.status_code == 400
        listed = api_get(sandbox, token, "webHooks", {"full": 1}).json()
        assert listed["pageCount"] == "1" and [h["event"] for h in listed["items"]] == ["order_confirm",
                                                                                        "order_status_change"]
        xml_hook = shop.add_webhook("order_confirm", f"{hooks}/hooks/xml", type="xml")  # the admin UI's way

        order_id = shop.create_order([(2, 3), (5, 1)])
        assert sandbox.webhooks.wait_idle()
        (hdrs, raw), = receiver.hooks("confirm")
        assert hdrs["content-type"] == "application/json"
        assert not [h for h in hdrs if "hmac" in h or "signature" in h]  # ShopRenter signs nothing
        order = json.loads(raw)["orders"]["order"][0]
        assert order["innerId"] == str(order_id) and order["storeName"] == "demo"
        assert b64_inner(order["innerResourceId"].split("/", 1)[1]) == f"order-order_id={order_id}"
        products = order["orderProducts"]["orderProduct"]
        assert [(p["sku"], p["quantity"]) for p in products] == [(shop.product(2).sku, "3"),
                                                                 (shop.product(5).sku, "1")]
        assert order["orderHistory"]["status"] == "1"
        assert int(order["totalGross"]) > int(order["total"])  # the webhook's total is net
        (_, xml_raw), = receiver.hooks("xml")
        assert parse_xml(xml_raw).findtext("order/innerId") == str(order_id)

        shop.update_order(order_id, status="Teljesítve")
        shop.update_order(order_id, status=4, comment="no status change", email="x@example.hu")
        assert sandbox.webhooks.wait_idle()
        (_, raw), = receiver.hooks("status")
        changed = json.loads(raw)["orders"]["order"][0]
        assert changed == {"innerId": str(order_id), "orderHistory": {"status": "4"},
                           "orderProducts": {"orderProduct": [{"sku": shop.product(2).sku},
                                                              {"sku": shop.product(5).sku}]}}

        put = httpx.put(f"{api}/webHooks/{fields.json()['id']}", headers=headers, json={"status": "0"})
        assert put.status_code == 200 and put.json()["status"] == "0" and put.json()["label"] == "status"
        assert httpx.put(f"{api}/webHooks", headers=headers, json={}).json()["error"] == 40011
        shop.update_order(order_id, status=5)  # the disabled subscription gets nothing

        # delivery faults: a drop loses one, a duplicate sends one twice
        sandbox.webhooks.faults.drop_next = 1  # the next delivery: the confirm hook's (created first)
        shop.create_order([(1, 1)])
        assert sandbox.webhooks.wait_idle()
        sandbox.webhooks.faults.duplicate_next = 1
        dup_id = shop.create_order([(1, 1)])
        assert sandbox.webhooks.wait_idle()
        assert len(sandbox.webhooks.records("order_confirm", "dropped")) == 1
        confirm_ids = [json.loads(b)["orders"]["order"][0]["innerId"] for _, b in receiver.hooks("confirm")]
        assert confirm_ids.count(str(dup_id)) == 2 and len(confirm_ids) == 3

        deleted = httpx.delete(f"{api}/webHooks/{hook['id']}", headers=headers)
        assert deleted.status_code == 204
        assert httpx.delete(f"{api}/webHooks/{hook['id']}", headers=headers).status_code == 404
        receiver.status = 500
        shop.create_order([(1, 1)])
        assert sandbox.webhooks.wait_idle()
        assert len(receiver.hooks("confirm")) == 3  # the deleted subscription gets nothing
        failed = sandbox.webhooks.records("order_confirm", "failed")
        assert [(r.url, r.status) for r in failed] == [(f"{hooks}/hooks/xml", 500)]  # not retried by default
        assert sandbox.counters["webhook_delivered"] == 7
        shop.remove_webhook(xml_hook.inner_id)
        shop.create_order([(1, 1)])
        assert sandbox.webhooks.wait_idle() and len(sandbox.webhooks.records("order_confirm")) == 8
        assert sandbox.counters["event_order_confirm"] == 5
        assert len(receiver.hooks("status")) == 1 and sandbox.counters["event_order_status_change"] == 2


# --- faults ------------------------------------------------------------------------------------------------

def test_http_faults_and_targeting() -> None:
    sandbox, shop = make()
    with serve_shoprenter_sandbox(sandbox):
        token = token_for(sandbox)
        sandbox.faults.fail_next(2, 503)
        first = [api_get(sandbox, token, "customers") for _ in range(3)]
        assert [r.status_code for r in first] == [503, 503, 200]
        assert first[0].headers["content-type"].startswith("text/html")
        sandbox.faults.rate_limit_next(1)
        assert api_get(sandbox, token, "customers").status_code == 429
        assert sandbox.counters["rate_limited"] == 1
        sandbox.faults.fail_next(1, 500, endpoint="customers")
        assert api_get(sandbox, token, "productExtend").status_code == 200  # other resources untouched
        assert api_get(sandbox, token, "customers").status_code == 500
        sandbox.faults.fail_next(1, 503, endpoint="token")
        assert httpx.post(f"{sandbox.oauth_base_url}/demo/app/token", json={}).status_code == 503
        sandbox.faults.fail_next(1, 502, shop="elsewhere")
        assert api_get(sandbox, token, "customers").status_code == 200
        sandbox.faults.slow(0.3, n=1)
        start = time.monotonic()
        assert api_get(sandbox, token, "customers").status_code == 200
        assert time.monotonic() - start >= 0.3
        sandbox.faults.hang_next(1, seconds=1.0)
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{sandbox.api_url(shop)}/customers", headers={"Authorization": f"Bearer {token}"}, timeout=0.4)
        assert sandbox.counters["faults_injected"] == 6
        logged = [r.fault for r in sandbox.request_log if r.fault]
        assert logged[:5] == ["status:503", "status:503", "status:429", "status:500", "status:503"]


# --- data changes ------------------------------------------------------------------------------------------

def test_data_changes_creates_and_deletes_show_through_the_api() -> None:
    sandbox, shop = make()
    with serve_shoprenter_sandbox(sandbox):
        token = token_for(sandbox)
        pid = SrShop.outer_id("product", 4)
        old = api_get(sandbox, token, f"productExtend/{pid}").json()
        shop.clock.advance(5)
        shop.update_product(pid, price="12345.5", status=0, names={"en": "Renamed"})
        new = api_get(sandbox, token, f"productExtend/{pid}").json()
        assert new["price"] == "12345.5000" and new["status"] == "0"
        assert new["dateUpdated"] > old["dateUpdated"]
        assert [d["name"] for d in new["productDescriptions"]][1] == "Renamed"
        shop.delete_product(4)
        assert api_get(sandbox, token, f"productExtend/{pid}").status_code == 404
        created = shop.create_product(sku="NEW-1", price=500, stock1=9)
        items = all_items(sandbox, token, "productExtend", {"full": 1, "limit": 200})
        assert len(items) == 45 and items[-1]["innerId"] == str(created) and items[-1]["sku"] == "NEW-1"
        assert "4" not in {i["innerId"] for i in items}
        shop.delete_order(shop.order_ids()[0])
        assert len(all_items(sandbox, token, "orderExtend", {})) == 14
        with pytest.raises(ValueError):
            shop.update_product(5, colour="red")
        with pytest.raises(ValueError):
            shop.update_order(5, status="shipped-ish")


def test_ten_thousand_products_page_completely() -> None:
    sandbox, shop = make(SrDatasetSpec(products=10_000, customers=1, orders=1))
    with serve_shoprenter_sandbox(sandbox):
        token = token_for(sandbox)
        items = all_items(sandbox, token, "productExtend", {"full": 1, "limit": 200})
        assert len({i["id"] for i in items}) == 10_000
        children = [i for i in items if i["parentProduct"]["href"].rsplit("/", 1)[1] != i["id"]]
        assert len(children) == 2000  # every 5th product is a variant child of the one before it


def test_cli_serves_demo_shop_and_prints_connection_details() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.shoprenter", "--port", "0", "--products", "5",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["client_id"] == DEMO_CLIENT_ID and info["client_secret"] == DEMO_CLIENT_SECRET
        assert info["oauth_base_url"] == f"{info['base_url']}/oauth"
        assert info["api_url_template"] == f"{info['base_url']}/shops/{{shop}}/api"
        token = httpx.post(info["token_url"], json={"grant_type": "client_credentials",
                                                    "client_id": DEMO_CLIENT_ID,
                                                    "client_secret": DEMO_CLIENT_SECRET}).json()["access_token"]
        resp = httpx.get(info["api_url_template"].format(shop=DEMO_SHOP) + "/productExtend",
                         headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        assert resp.status_code == 200 and resp.json()["pageCount"] == "1"
        assert urlsplit(info["base_url"]).hostname == "127.0.0.1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_demo_sandbox_defaults() -> None:
    sandbox, app, shop = demo_shoprenter_sandbox()
    assert sandbox.rate_limit == 3.0 and shop.name == DEMO_SHOP and sandbox.is_installed(shop, app.client_id)
    assert len(shop.product_ids()) == 50 and len(shop.order_ids()) == 40
    assert SECRET not in repr(sandbox.app(app.client_id)) and app.client_secret not in repr(app)
    with pytest.raises(RuntimeError):
        _ = sandbox.oauth_base_url  # only while served
    stamp = datetime.now(UTC).timestamp()
    assert abs(shop.clock.now() - stamp) < 5
