"""The WooCommerce sandbox over real HTTP: discovery, auth (Basic/query over HTTPS, OAuth 1.0a over HTTP), key
permissions, pagination, modified_after, object shapes, webhooks (ping, signatures, auto-disable, coalescing),
faults and the concurrency counter.

OAuth signatures and webhook signatures are checked with independent implementations written here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.serving import serve_app
from sandbox.woocommerce import (
    DEMO_STORE,
    WooDatasetSpec,
    WooSandbox,
    WooStore,
    demo_woo_sandbox,
    oauth1_sign,
    serve_woocommerce_sandbox,
    sign_woo_webhook,
)

SMALL = WooDatasetSpec(seed=3, products=25, variable_share=0.4, variations_per_product=3, customers=6, orders=12)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
MONEY = re.compile(r"^-?\d+\.\d{2}$")


# --- helpers -------------------------------------------------------------------------------------------------------

def make(spec: WooDatasetSpec = SMALL, **options: Any) -> tuple[WooSandbox, WooStore, str, str]:
    sandbox = WooSandbox(**options)
    store = sandbox.add_store("demo", spec)
    ck, cs = store.add_key("read_write")
    return sandbox, store, ck, cs


def independent_sign(method: str, url: str, params: dict[str, str], secret: str, algo: str = "HMAC-SHA256") -> str:
    """RFC 5849 as WooCommerce's docs describe it (flat parameters only)."""
    def enc(text: str) -> str:
        return quote(text, safe="~")

    pairs = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()) if k != "oauth_signature")
    base = "&".join([method.upper(), enc(url), enc(pairs)])
    digest = hashlib.sha1 if algo == "HMAC-SHA1" else hashlib.sha256
    return base64.b64encode(hmac.new(f"{secret}&".encode(), base.encode(), digest).digest()).decode()


def oauth_params(ck: str, *, ts: int | None = None, nonce: str | None = None,
                 algo: str = "HMAC-SHA256") -> dict[str, str]:
    return {"oauth_consumer_key": ck, "oauth_timestamp": str(ts if ts is not None else int(time.time())),
            "oauth_nonce": nonce or secrets.token_hex(16), "oauth_signature_method": algo}


def oauth_get(url: str, ck: str, cs: str, params: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
    query = {**(params or {}), **oauth_params(ck, **kw)}
    query["oauth_signature"] = independent_sign("GET", url, query, cs, query["oauth_signature_method"])
    return httpx.get(url, params=query, timeout=10)


@dataclass
class Receiver:
    """A webhook endpoint: records every request; ``status`` may depend on the request."""

    status: int = 200
    ping_status: int | None = None
    fail_first: int = 0  # answer 503 to the first N deliveries
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.received.append(({k.lower(): v for k, v in request.headers.items()}, body))
            is_ping = "x-wc-webhook-topic" not in request.headers
            status = self.ping_status if is_ping and self.ping_status is not None else self.status
            if not is_ping and self.fail_first > 0:
                self.fail_first -= 1
                status = 503
            return Response(status_code=status)

        return Starlette(routes=[Route("/hooks/{name:path}", hook, methods=["POST"])])

    def deliveries(self, topic: str | None = None) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for h, b in self.received if "x-wc-webhook-topic" in h
                    and (topic is None or h["x-wc-webhook-topic"] == topic)]

    def pings(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for h, b in self.received if "x-wc-webhook-topic" not in h]


@contextmanager
def receiver_url(receiver: Receiver) -> Iterator[str]:
    with serve_app(receiver.app(), lifespan="off", name="woo-hook-receiver") as base:
        yield base + "/hooks"


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


# --- discovery -----------------------------------------------------------------------------------------------------

def test_discovery_woocommerce_legacy_only_and_plain_wordpress() -> None:
    sandbox = WooSandbox()
    modern = sandbox.add_store("modern", SMALL)
    legacy = sandbox.add_store("legacy", SMALL, rest_api=False, wc_version="2.5.5")
    plain = sandbox.add_store("blog", SMALL, is_woocommerce=False)
    keys = {s.name: s.add_key() for s in (modern, legacy, plain)}
    with serve_woocommerce_sandbox(sandbox) as base:
        url = sandbox.store_url(modern)
        assert url == f"{base}/stores/modern"
        home = httpx.get(url + "/")
        assert home.status_code == 200
        assert home.headers["link"] == f'<{url}/wp-json/>; rel="https://api.w.org/"'
        index = httpx.get(f"{url}/wp-json/")
        assert index.status_code == 200
        body = index.json()
        assert body["url"] == url and "wc/v3" in body["namespaces"] and "wp/v2" in body["namespaces"]
        assert b'"url":"http:\\/\\/127.0.0.1' in index.content  # wp_json_encode escapes slashes
        assert httpx.get(f"{url}/wc-api/v3").status_code == 404  # legacy API left core in 9.0

        no_route = {"code": "rest_no_route", "message": "No route was found matching the URL and request method.",
                    "data": {"status": 404}}
        for store in (legacy, plain):
            surl = sandbox.store_url(store)
            namespaces = httpx.get(f"{surl}/wp-json/").json()["namespaces"]
            assert not [ns for ns in namespaces if ns.startswith("wc")]
            ck, cs = keys[store.name]
            resp = oauth_get(f"{surl}/wp-json/wc/v3/products", ck, cs)
            assert resp.status_code == 404 and resp.json() == no_route
        assert httpx.get(f"{sandbox.store_url(plain)}/wp-json/").json()["namespaces"] == ["oembed/1.0", "wp/v2"]
        legacy_index = httpx.get(f"{sandbox.store_url(legacy)}/wc-api/v3")
        assert legacy_index.status_code == 200 and legacy_index.json()["store"]["wc_version"] == "2.5.5"
        assert httpx.get(f"{sandbox.store_url(plain)}/wc-api/v3").status_code == 404
        # an unknown method on a known route is also rest_no_route
        ck, cs = keys["modern"]
        assert httpx.request("PATCH", f"{url}/wp-json/wc/v3/system_status").json()["code"] == "rest_no_route"
        # plain permalinks: GET {home}/?rest_route=... is signed over the home URL without the trailing slash
        params = {"rest_route": "/wc/v3/products", "per_page": "2", **oauth_params(ck)}
        params["oauth_signature"] = independent_sign("GET", url, params, cs)
        via_query = httpx.get(f"{url}/", params=params)
        assert via_query.status_code == 200 and len(via_query.json()) == 2
        orders_url = f"{url}/wp-json/wc/v3/orders"
        head_params = oauth_params(ck)
        head_params["oauth_signature"] = independent_sign("HEAD", orders_url, head_params, cs)
        head = httpx.head(orders_url, params=head_params)
        assert head.status_code == 200 and head.content == b""  # HEAD: the headers of a GET, no body
        assert head.headers["x-wp-total"] == str(len(modern.order_ids()))
        assert httpx.get(f"{base}/stores/nope/wp-json/").status_code == 404


# --- auth ----------------------------------------------------------------------------------------------------------

def test_https_basic_and_query_auth() -> None:
    sandbox, store, ck, cs = make()
    with serve_woocommerce_sandbox(sandbox, https=True) as base:
        assert base.startswith("https://127.0.0.1:") and sandbox.scheme == "https" and sandbox.ca_file
        url = f"{sandbox.store_url(store)}/wp-json/wc/v3/system_status"
        with pytest.raises(httpx.ConnectError):  # the CA is not trusted by default
            httpx.get(url, auth=(ck, cs))
        with httpx.Client(verify=sandbox.ssl_context(), timeout=10) as client:
            ok = client.get(url, auth=(ck, cs))
            assert ok.status_code == 200, ok.text
            env = ok.json()["environment"]
            assert env["version"] == "9.4.2" and env["wp_version"] == "6.7.1"
            assert env["home_url"] == sandbox.store_url(store)
            assert ok.json()["settings"]["currency"] == "USD"
            assert sandbox.request_log[-1].auth == "basic"
            query = client.get(url, params={"consumer_key": ck, "consumer_secret": cs})
            assert query.status_code == 200 and sandbox.request_log[-1].auth == "query"
            assert cs not in sandbox.request_log[-1].query  # the log redacts the secret
            wrong = client.get(url, auth=(ck, "cs_" + "0" * 40))
            assert wrong.status_code == 401
            assert wrong.json() == {"code": "woocommerce_rest_authentication_error",
                                    "message": "Consumer secret is invalid.", "data": {"status": 401}}
            unknown = client.get(url, auth=("ck_" + "1" * 40, cs))  # an unknown key just stays anonymous
            assert unknown.status_code == 401 and unknown.json()["code"] == "woocommerce_rest_cannot_view"
            anonymous = client.get(f"{sandbox.store_url(store)}/wp-json/wc/v3/products")
            assert anonymous.json() == {"code": "woocommerce_rest_cannot_view",
                                        "message": "Sorry, you cannot list resources.", "data": {"status": 401}}
            # OAuth is still accepted over HTTPS when no Basic/query credentials are given
            params = oauth_params(ck)
            params["oauth_signature"] = oauth1_sign("GET", url.replace("http://", "https://"), params, cs)
            assert client.get(url, params=params).status_code == 200
            assert sandbox.request_log[-1].auth == "oauth1"


def test_http_requires_oauth1_and_checks_signature_timestamp_nonce() -> None:
    sandbox, store, ck, cs = make()
    with serve_woocommerce_sandbox(sandbox) as _base:
        url = f"{sandbox.store_url(store)}/wp-json/wc/v3/products"
        # Basic and query credentials are ignored over plain HTTP
        for resp in (httpx.get(url, auth=(ck, cs)), httpx.get(url, params={"consumer_key": ck, "consumer_secret": cs})):
            assert resp.status_code == 401 and resp.json()["code"] == "woocommerce_rest_cannot_view"
        for algo in ("HMAC-SHA256", "HMAC-SHA1"):
            resp = oauth_get(url, ck, cs, {"per_page": "5", "orderby": "id"}, algo=algo)
            assert resp.status_code == 200, resp.text
            assert len(resp.json()) == 5 and sandbox.request_log[-1].auth == "oauth1"
        # the exported helper agrees with an independent implementation
        params = {"per_page": "2", "status": "publish", **oauth_params(ck)}
        assert oauth1_sign("GET", url, params, cs) == independent_sign("GET", url, params, cs)
        assert oauth1_sign("GET", url + "?per_page=2&status=publish", oauth_params(ck, nonce=params["oauth_nonce"],
                           ts=int(params["oauth_timestamp"])), cs) == independent_sign("GET", url, params, cs)

        def expect_401(resp: httpx.Response, message: str) -> None:
            assert resp.status_code == 401
            assert resp.json() == {"code": "woocommerce_rest_authentication_error", "message": message,
                                   "data": {"status": 401}}

        bad = oauth_params(ck)
        bad["oauth_signature"] = independent_sign("GET", url, bad, "cs_wrong")
        expect_401(httpx.get(url, params=bad), "Invalid signature - provided signature does not match.")
        # signing a different URL (e.g. without the store's sub-path) fails too
        wrong_url = oauth_params(ck)
        wrong_url["oauth_signature"] = independent_sign("GET", url.replace("/stores/demo", ""), wrong_url, cs)
        expect_401(httpx.get(url, params=wrong_url), "Invalid signature - provided signature does not match.")
        unknown = oauth_params("ck_" + "2" * 40)
        unknown["oauth_signature"] = independent_sign("GET", url, unknown, cs)
        expect_401(httpx.get(url, params=unknown), "Consumer key is invalid.")
        old = int(time.time()) - 16 * 60
        expect_401(oauth_get(url, ck, cs, ts=old), "Invalid timestamp.")
        expect_401(oauth_get(url, ck, cs, ts=int(time.time()) + 16 * 60), "Invalid timestamp.")
        replay = oauth_params(ck)
        replay["oauth_signature"] = independent_sign("GET", url, replay, cs)
        assert httpx.get(url, params=replay).status_code == 200
        expect_401(httpx.get(url, params=replay), "Invalid nonce - nonce has already been used.")
        partial = {"oauth_consumer_key": ck, "oauth_nonce": "abc"}
        missing = httpx.get(url, params=partial)
        assert missing.status_code == 401
        assert missing.json()["code"] == "woocommerce_rest_authentication_missing_parameter"
        assert missing.json()["message"] == ("Missing OAuth parameters oauth_timestamp, oauth_signature, "
                                             "oauth_signature_method")
        # the store clock moves: 16 minutes later the request's timestamp is stale
        store.clock.advance(16 * 60)
        expect_401(oauth_get(url, ck, cs), "Invalid timestamp.")
        assert sandbox.counters["auth_failed"] >= 7


def test_oauth_array_params_are_signed_php_style() -> None:
    sandbox, store, ck, cs = make()
    with serve_woocommerce_sandbox(sandbox):
        url = f"{sandbox.store_url(store)}/wp-json/wc/v3/products"
        ids = store.product_ids()[:2]
        pairs = [("include[]", str(ids[0])), ("include[]", str(ids[1])), *oauth_params(ck).items()]
        signature = oauth1_sign("GET", url, pairs, cs)
        resp = httpx.get(url, params=[*pairs, ("oauth_signature", signature)])
        assert resp.status_code == 200, resp.text
        assert sorted(p["id"] for p in resp.json()) == sorted(ids)
        # a generic OAuth library signs "include[]" literally, which WooCommerce rejects
        flat = dict(pairs[2:])
        naive = independent_sign("GET", url, {**flat, "include[]": str(ids[1])}, cs)
        resp = httpx.get(url, params=[*pairs, ("oauth_signature", naive)])
        assert resp.status_code == 401


def test_key_permissions() -> None:
    sandbox, store, _ck, _cs = make()
    read_ck, read_cs = store.add_key("read")
    write_ck, write_cs = store.add_key("write")
    with pytest.raises(ValueError, match="permissions"):
        store.add_key("admin")
    with serve_woocommerce_sandbox(sandbox, https=True):
        url = f"{sandbox.store_url(store)}/wp-json/wc/v3"
        with httpx.Client(verify=sandbox.ssl_context(), timeout=10) as client:
            assert client.get(f"{url}/products", auth=(read_ck, read_cs)).status_code == 200
            denied = client.post(f"{url}/webhooks", auth=(read_ck, read_cs),
                                 json={"topic": "order.updated", "delivery_url": "https://example.com/h"})
            assert denied.status_code == 401
            assert denied.json() == {"code": "woocommerce_rest_authentication_error",
                                     "message": "The API key provided does not have write permissions.",
                                     "data": {"status": 401}}
            assert store.webhooks == {}
            cannot_read = client.get(f"{url}/products", auth=(write_ck, write_cs))
            assert cannot_read.status_code == 401
            assert cannot_read.json()["message"] == "The API key provided does not have read permissions."
            missing = client.post(f"{url}/webhooks", auth=(write_ck, write_cs), json={"topic": "order.updated"})
            assert missing.status_code == 400 and missing.json()["code"] == "rest_missing_callback_param"
            assert missing.json()["data"]["params"] == ["delivery_url"]


# --- lists -----------------------------------------------------------------------------------------------------

def test_pagination_headers_link_and_past_the_end() -> None:
    sandbox, store, ck, cs = make()
    with serve_woocommerce_sandbox(sandbox, https=True):
        url = f"{sandbox.store_url(store)}/wp-json/wc/v3/products"
        with httpx.Client(verify=sandbox.ssl_context(), auth=(ck, cs), timeout=10) as client:
            visible = store.product_ids()
            seen: list[dict[str, Any]] = []
            for page in (1, 2, 3):
                resp = client.get(url, params={"per_page": 10, "page": page})
                assert resp.status_code == 200
                assert resp.headers["x-wp-total"] == str(len(visible))
                assert resp.headers["x-wp-totalpages"] == "3"
                rels = {link["rel"]: link["url"] for link in resp.links.values()}
                assert ("next" in rels) == (page < 3) and ("prev" in rels) == (page > 1)
                if page < 3:
                    assert dict(parse_qsl(urlsplit(rels["next"]).query)) == {"per_page": "10", "page": str(page + 1)}
                seen.extend(resp.json())
            assert sorted(p["id"] for p in seen) == sorted(visible)
            created = [datetime.fromisoformat(p["date_created_gmt"]) for p in seen]
            assert created == sorted(created, reverse=True)  # default: orderby=date, order=desc
            past = client.get(url, params={"per_page": 10, "page": 9})
            assert past.status_code == 200 and past.json() == []
            assert past.headers["x-wp-total"] == str(len(visible))
            assert dict(parse_qsl(urlsplit(past.links["prev"]["url"]).query))["page"] == "3"
            asc = client.get(url, params={"per_page": 100, "orderby": "id", "order": "asc"}).json()
            assert [p["id"] for p in asc] == sorted(visible)
            too_many = client.get(url, params={"per_page": 101})
            assert too_many.status_code == 400
            assert too_many.json()["code"] == "rest_invalid_param"
            assert too_many.json()["data"]["params"] == {
                "per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"}
            bad_order = client.get(url, params={"orderby": "price_desc"}).json()
            assert bad_order["data"]["params"]["orderby"] == (
                "orderby is not one of date, id, include, title, slug, modified, price, popularity, and rating.")
            assert client.get(url, params={"modified_after": "yesterday"}).json()["data"]["params"] == {
                "modified_after": "Invalid date."}
            # query-string credentials are echoed in Link headers, like WooCommerce does
            q = client.get(url, params={"per_page": 5, "consumer_key": ck, "consumer_secret": cs}, auth=None)
            assert f"consumer_secret={cs}" in q.headers["link"]
            fields = client.get(url, params={"per_page": 2, "_fields": "id,name"}).json()
            assert [set(p) for p in fields] == [{"id", "name"}, {"id", "name"}]


def test_modified_after_is_exclusive_and_gmt_with_dates_are_gmt() -> None:
    sandbox, store, ck, cs = make()
    store.clock.advance(30)  # every generated timestamp is now older than the changes below
    with serve_woocommerce_sandbox(sandbox, https=True):
        rest = f"{sandbox.store_url(store)}/wp-json/wc/v3"
        with httpx.Client(verify=sandbox.ssl_context(), auth=(ck, cs), timeout=10) as client:
            pid = store.product_ids()[3]
            changed = store.update_product(pid, regular_price="12.50")
            gmt, local = changed["date_modified_gmt"], changed["date_modified"]
            assert DATE.match(gmt) and DATE.match(local)
            assert datetime.fromisoformat(local) - datetime.fromisoformat(gmt) == timedelta(hours=1)  # +01:00 site
            before = (datetime.fromisoformat(gmt) - timedelta(seconds=1)).isoformat()

            def ids(**params: Any) -> list[int]:
                resp = client.get(f"{rest}/products", params={"per_page": 100, **params})
                assert resp.status_code == 200, resp.text
                return [p["id"] for p in resp.json()]

            assert ids(modified_after=gmt, dates_are_gmt="true") == []  # exclusive
            assert ids(modified_after=before, dates_are_gmt="true") == [pid]
            assert ids(modified_after=local) == []  # without dates_are_gmt the value is site time
            assert ids(modified_after=(datetime.fromisoformat(local) - timedelta(seconds=1)).isoformat()) == [pid]
            # WordPress converts an explicit offset to site time, then still compares it with the GMT column
            assert ids(modified_after=before + "Z", dates_are_gmt="true") == []
            assert ids(modified_before=gmt, dates_are_gmt="true", per_page=100) != []
            oid = store.order_ids()[0]
            order = store.update_order(oid, status="completed")
            assert client.get(f"{rest}/orders", params={"modified_after": before, "dates_are_gmt": "true"}
                              ).json()[0]["id"] == oid
            assert order["date_completed_gmt"] == order["date_modified_gmt"]
            # customers have no modified_after: WordPress ignores unknown parameters and returns everyone
            everyone = client.get(f"{rest}/customers", params={"modified_after": gmt, "dates_are_gmt": "true"})
            assert int(everyone.headers["x-wp-total"]) == len(store.customer_ids())


# --- shapes --------------------------------------------------------------------------------------------------------

def test_object_shapes() -> None:
    sandbox, store, ck, cs = make()
    with serve_woocommerce_sandbox(sandbox, https=True):
        rest = f"{sandbox.store_url(store)}/wp-json/wc/v3"
        with httpx.Client(verify=sandbox.ssl_context(), auth=(ck, cs), timeout=10) as client:
            variable = store.variable_product_ids()[0]
            product = client.get(f"{rest}/products/{variable}").json()
            assert product["type"] == "variable" and product["regular_price"] == "" and MONEY.match(product["price"])
            vids = store.variation_ids(variable)
            assert product["variations"] == vids and len(vids) == 3
            assert product["categories"][0].keys() == {"id", "name", "slug"}
            for key in ("date_created", "date_created_gmt", "date_modified", "date_modified_gmt"):
                assert DATE.match(product[key])
            variations = client.get(f"{rest}/products/{variable}/variations", params={"per_page": 50}).json()
            assert sorted(v["id"] for v in variations) == vids
            v = client.get(f"{rest}/products/{variable}/variations/{vids[1]}").json()
            assert v["parent_id"] == variable and MONEY.match(v["regular_price"]) and v["attributes"][0]["option"]
            assert isinstance(v["stock_quantity"], int)
            as_product = client.get(f"{rest}/products/{vids[1]}").json()  # what product.updated carries
            assert as_product["type"] == "variation" and as_product["parent_id"] == variable
            assert as_product["categories"] == []
            simple = next(p for p in store.product_ids() if p not in store.variable_product_ids())
            s = client.get(f"{rest}/products/{simple}").json()
            assert s["type"] == "simple" and s["variations"] == [] and MONEY.match(s["regular_price"])
            customer = client.get(f"{rest}/customers/{store.customer_ids()[0]}").json()
            assert {"email", "first_name", "last_name", "role", "username", "billing", "shipping",
                    "is_paying_customer"} <= customer.keys()
            assert "phone" in customer["billing"] and "phone" in customer["shipping"]
            orders = client.get(f"{rest}/orders", params={"per_page": 100}).json()
            assert {o["id"] for o in orders} == set(store.order_ids())
            order = orders[0]
            assert order["number"] == str(order["id"]) and order["currency"] == "USD"
            for key in ("total", "shipping_total", "discount_total", "total_tax"):
                assert MONEY.match(order[key])
            line = order["line_items"][0]
            assert {"id", "name", "product_id", "variation_id", "quantity", "subtotal", "total", "sku", "price"} <= line.keys()
            assert isinstance(line["price"], float) and MONEY.match(line["total"])
            refunded = store.refund_order(order["id"], "1.00", "Scratched")
            assert refunded["refunds"][0]["total"] == "-1.00" and refunded["refunds"][0]["reason"] == "Scratched"
            # unknown IDs
            assert client.get(f"{rest}/products/999999").json()["code"] == "woocommerce_rest_product_invalid_id"
            assert client.get(f"{rest}/orders/999999").json()["code"] == "woocommerce_rest_shop_order_invalid_id"
            missing_customer = client.get(f"{rest}/customers/999999")
            assert missing_customer.status_code == 404 and missing_customer.json()["code"] == "wc_user_invalid_id"
            # anonymous: an existing object is 401, a missing one 404 (the permission check looks it up first)
            assert httpx.get(f"{rest}/products/{simple}", verify=sandbox.ssl_context()).status_code == 401
            assert httpx.get(f"{rest}/products/999999", verify=sandbox.ssl_context()).status_code == 404


def test_store_wide_variations_from_wc_10_3() -> None:
    sandbox = WooSandbox()
    store = sandbox.add_store("new", SMALL, wc_version="10.3.0")
    old = sandbox.add_store("old", SMALL, wc_version="9.4.2")
    ck, cs = store.add_key("read_write")
    old_ck, old_cs = old.add_key("read_write")
    store.clock.advance(30)  # every generated timestamp is now older than the change below
    expected = {vid: pid for pid in store.variable_product_ids() for vid in store.variation_ids(pid)}
    assert len(expected) >= 15 and len(set(expected.values())) >= 5
    with serve_woocommerce_sandbox(sandbox, https=True):
        rest = f"{sandbox.store_url(store)}/wp-json/wc/v3"
        url = f"{rest}/variations"
        with httpx.Client(verify=sandbox.ssl_context(), auth=(ck, cs), timeout=10) as client:
            pages = -(-len(expected) // 7)
            seen: list[dict[str, Any]] = []
            for page in range(1, pages + 1):
                resp = client.get(url, params={"per_page": 7, "page": page, "orderby": "id", "order": "asc"})
                assert resp.status_code == 200, resp.text
                assert resp.headers["x-wp-total"] == str(len(expected))
                assert resp.headers["x-wp-totalpages"] == str(pages)
                rels = {link["rel"]: link["url"] for link in resp.links.values()}
                assert ("next" in rels) == (page < pages) and ("prev" in rels) == (page > 1)
                if page < pages:
                    assert urlsplit(rels["next"]).path.endswith("/wp-json/wc/v3/variations")
                    assert dict(parse_qsl(urlsplit(rels["next"]).query)) == {
                        "per_page": "7", "orderby": "id", "order": "asc", "page": str(page + 1)}
                seen.extend(resp.json())
            assert [v["id"] for v in seen] == sorted(expected)  # variation IDs across products, ascending
            assert all(v["parent_id"] == expected[v["id"]] for v in seen)
            # each item is the per-product one; only the links differ (WooCommerce builds them without product_id)
            sample = seen[4]
            pid = sample["parent_id"]
            one = client.get(f"{rest}/products/{pid}/variations/{sample['id']}").json()
            assert {k: v for k, v in sample.items() if k != "_links"} == {k: v for k, v in one.items() if k != "_links"}
            assert sample["_links"] == {"self": [{"href": f"{url}/{sample['id']}"}], "collection": [{"href": url}],
                                        "up": [{"href": f"{rest}/products/0"}]}
            assert one["_links"]["self"] == [{"href": f"{rest}/products/{pid}/variations/{sample['id']}"}]
            # default order: date desc (as for one product's variations)
            default = client.get(url, params={"per_page": 100}).json()
            created = [v["date_created_gmt"] for v in default]
            assert sorted(v["id"] for v in default) == sorted(expected) and created == sorted(created, reverse=True)
            # a changed variation, and only it, is newer than just before the change
            vid = sample["id"]
            changed = store.update_variation(pid, vid, stock_quantity=5)
            before = (datetime.fromisoformat(changed["date_modified_gmt"]) - timedelta(seconds=1)).isoformat()
            recent = client.get(url, params={"modified_after": before, "dates_are_gmt": "true"})
            assert recent.headers["x-wp-total"] == "1"
            [item] = recent.json()
            assert (item["id"], item["parent_id"], item["stock_quantity"]) == (vid, pid, 5)
            assert client.get(url, params={"modified_after": changed["date_modified_gmt"],
                                           "dates_are_gmt": "true"}).json() == []  # exclusive
            # validation, permissions and the namespace index
            too_many = client.get(url, params={"per_page": 101})
            assert too_many.status_code == 400 and too_many.json()["data"]["params"] == {
                "per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"}
            anonymous = httpx.get(url, verify=sandbox.ssl_context())
            assert anonymous.status_code == 401 and anonymous.json()["code"] == "woocommerce_rest_cannot_view"
            assert "/wc/v3/variations" in client.get(f"{rest}").json()["routes"]
            # a force-deleted product's variations are gone
            store.delete_product(pid, force=True)
            remaining = client.get(url, params={"per_page": 100})
            assert remaining.headers["x-wp-total"] == str(len(expected) - 3)
            assert all(v["parent_id"] != pid for v in remaining.json())
        # before WooCommerce 10.3 the route does not exist
        old_rest = f"{sandbox.store_url(old)}/wp-json/wc/v3"
        with httpx.Client(verify=sandbox.ssl_context(), auth=(old_ck, old_cs), timeout=10) as client:
            missing = client.get(f"{old_rest}/variations")
            assert missing.status_code == 404
            assert missing.content == client.get(f"{old_rest}/no-such-route").content
            assert missing.json()["code"] == "rest_no_route"
            assert "/wc/v3/variations" not in client.get(old_rest).json()["routes"]


def test_rest_writes_and_trash() -> None:
    sandbox, store, ck, cs = make()
    with serve_woocommerce_sandbox(sandbox, https=True):
        rest = f"{sandbox.store_url(store)}/wp-json/wc/v3"
        with httpx.Client(verify=sandbox.ssl_context(), auth=(ck, cs), timeout=10) as client:
            pid = store.product_ids()[0]
            updated = client.put(f"{rest}/products/{pid}", json={"regular_price": "9.99", "sale_price": ""})
            assert updated.status_code == 200, updated.text
            assert store.product(pid)["regular_price"] in ("9.99", "")  # "" when the product is variable
            bad = client.put(f"{rest}/products/{pid}", json={"stock_quantity": "lots"})
            assert bad.status_code == 400 and bad.json()["data"]["params"]["stock_quantity"] == (
                "stock_quantity is not of type integer.")
            oid = store.order_ids()[0]
            trashed = client.delete(f"{rest}/orders/{oid}")
            assert trashed.status_code == 200 and trashed.json()["status"] == "trash"
            assert oid not in store.order_ids()
            again = client.delete(f"{rest}/orders/{oid}")
            assert again.status_code == 410 and again.json()["code"] == "woocommerce_rest_already_trashed"
            gone = client.delete(f"{rest}/orders/{oid}", params={"force": "true"})
            assert gone.status_code == 200
            assert client.get(f"{rest}/orders/{oid}").status_code == 404
            cid = store.customer_ids()[0]
            no_trash = client.delete(f"{rest}/customers/{cid}")
            assert no_trash.status_code == 501 and no_trash.json()["message"] == "Customers do not support trashing."


# --- webhooks ------------------------------------------------------------------------------------------------------

def test_webhook_ping_signed_deliveries_and_payloads() -> None:
    sandbox, store, ck, cs = make()
    receiver = Receiver()
    with receiver_url(receiver) as hooks, serve_woocommerce_sandbox(sandbox, https=True):
        rest = f"{sandbox.store_url(store)}/wp-json/wc/v3"
        with httpx.Client(verify=sandbox.ssl_context(), auth=(ck, cs), timeout=10) as client:
            created = client.post(f"{rest}/webhooks", json={"name": "sync", "topic": "product.updated",
                                                            "delivery_url": f"{hooks}/p", "secret": "s3cret"})
            assert created.status_code == 201, created.text
            wh = created.json()
            assert wh["status"] == "active" and wh["resource"] == "product" and wh["event"] == "updated"
            assert "secret" not in wh and wh["hooks"][-1] == "woocommerce_update_product_variation"
            assert created.headers["location"].endswith(f"/wp-json/wc/v3/webhooks/{wh['id']}")
            # the ping happened during the request: form-encoded, unsigned
            [(ping_headers, ping_body)] = receiver.pings()
            assert ping_body == f"webhook_id={wh['id']}".encode()
            assert ping_headers["content-type"] == "application/x-www-form-urlencoded"
            assert "x-wc-webhook-signature" not in ping_headers
            assert ping_headers["user-agent"] == "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)"
            assert store.webhook(wh["id"]).pending_delivery is False
            deleted_hook = client.post(f"{rest}/webhooks", json={"topic": "product.deleted",
                                                                 "delivery_url": f"{hooks}/d", "secret": "d3l"})
            assert deleted_hook.status_code == 201

            pid = next(p for p in store.product_ids() if p not in store.variable_product_ids())
            store.clock.advance(2)
            store.update_product(pid, name="Renamed Mug")
            assert sandbox.webhooks.wait_idle()
            [(headers, body)] = receiver.deliveries("product.updated")
            assert hmac.compare_digest(headers["x-wc-webhook-signature"],
                                       base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode())
            assert headers["x-wc-webhook-signature"] == sign_woo_webhook("s3cret", body)
            assert headers["x-wc-webhook-source"] == sandbox.store_url(store) + "/"
            assert headers["x-wc-webhook-resource"] == "product" and headers["x-wc-webhook-event"] == "updated"
            assert headers["x-wc-webhook-id"] == str(wh["id"]) and len(headers["x-wc-webhook-delivery-id"]) == 32
            assert headers["content-type"] == "application/json"
            assert json.loads(body) == client.get(f"{rest}/products/{pid}").json()
            assert json.loads(body)["name"] == "Renamed Mug"

            variable = store.variable_product_ids()[0]
            vid = store.variation_ids(variable)[0]
            before = store.product(variable)["date_modified_gmt"]
            store.update_variation(variable, vid, stock_quantity=7)
            assert store.product(variable)["date_modified_gmt"] == before  # the parent does not move
            assert sandbox.webhooks.wait_idle()
            payload = json.loads(receiver.deliveries("product.updated")[-1][1])
            assert payload["id"] == vid and payload["type"] == "variation" and payload["parent_id"] == variable
            assert payload["stock_quantity"] == 7

            store.delete_product(pid)
            assert sandbox.webhooks.wait_idle()
            [(dheaders, dbody)] = receiver.deliveries("product.deleted")
            assert json.loads(dbody) == {"id": pid} and dheaders["x-wc-webhook-signature"] == sign_woo_webhook(
                "d3l", dbody)
            listed = client.get(f"{rest}/webhooks").json()
            assert {w["id"] for w in listed} == {wh["id"], deleted_hook.json()["id"]}
            assert client.delete(f"{rest}/webhooks/{wh['id']}").status_code == 501
            assert client.delete(f"{rest}/webhooks/{wh['id']}", params={"force": "true"}).status_code == 200
            assert client.get(f"{rest}/webhooks/{wh['id']}").json()["code"] == "woocommerce_rest_shop_webhook_invalid_id"


def test_failing_ping_does_not_fail_creation() -> None:
    sandbox, store, ck, cs = make()
    receiver = Receiver(ping_status=500)
    with receiver_url(receiver) as hooks, serve_woocommerce_sandbox(sandbox, https=True):
        rest = f"{sandbox.store_url(store)}/wp-json/wc/v3"
        created = httpx.post(f"{rest}/webhooks", auth=(ck, cs), verify=sandbox.ssl_context(),
                             json={"topic": "order.created", "delivery_url": f"{hooks}/o"})
        assert created.status_code == 201 and created.json()["status"] == "active"
        wh = store.webhook(created.json()["id"])
        assert wh.pending_delivery is True and wh.ping_status == 500
        assert sandbox.webhooks.records(topic="ping", outcome="ping_failed")
        invalid = httpx.post(f"{rest}/webhooks", auth=(ck, cs), verify=sandbox.ssl_context(),
                             json={"topic": "order.exploded", "delivery_url": f"{hooks}/o"})
        assert invalid.status_code == 400 and invalid.json()["code"] == "woocommerce_rest_shop_webhook_invalid_topic"


def test_webhook_disabled_after_more_than_five_consecutive_failures() -> None:
    sandbox, store, _ck, _cs = make()
    receiver = Receiver(status=500)
    with receiver_url(receiver) as hooks, serve_woocommerce_sandbox(sandbox):
        wh = store.add_webhook("order.updated", f"{hooks}/o", secret="x")
        orders = store.order_ids()
        for n in range(6):
            store.update_order(orders[n], customer_note=f"n{n}")
            assert sandbox.webhooks.wait_idle()
        assert wh.status == "active" and wh.failure_count == 6
        store.update_order(orders[6], customer_note="seventh")
        assert sandbox.webhooks.wait_idle()
        assert wh.status == "disabled"  # failure_count (6) > 5 on the 7th failure
        assert len(sandbox.webhooks.records(outcome="disabled")) == 1
        store.update_order(orders[7], customer_note="ignored")
        assert sandbox.webhooks.wait_idle()
        assert len(receiver.deliveries()) == 7
        # a success resets the count
        receiver.status = 200
        healthy = store.add_webhook("order.updated", f"{hooks}/ok", secret="y")
        healthy.failure_count = 3
        store.update_order(orders[8], customer_note="fine")
        assert sandbox.webhooks.wait_idle()
        assert healthy.failure_count == 0 and healthy.status == "active"


def test_webhook_retry_option() -> None:
    sandbox, store, _ck, _cs = make(webhook_retry=True)
    receiver = Receiver(fail_first=1)
    with receiver_url(receiver) as hooks, serve_woocommerce_sandbox(sandbox):
        wh = store.add_webhook("product.created", f"{hooks}/n", secret="r")
        pid = store.create_product("Retry Lamp", regular_price="20")
        assert sandbox.webhooks.wait_idle()
        attempts = sandbox.webhooks.records(topic="product.created")
        assert [(r.attempt, r.outcome) for r in attempts] == [(0, "failed"), (1, "delivered")]
        assert json.loads(receiver.deliveries()[-1][1])["id"] == pid and wh.failure_count == 0


def test_webhook_coalescing_and_delivery_faults() -> None:
    sandbox, store, _ck, _cs = make()
    receiver = Receiver()
    with receiver_url(receiver) as hooks, serve_woocommerce_sandbox(sandbox):
        store.add_webhook("customer.updated", f"{hooks}/c", secret="k")
        cid = store.customer_ids()[0]
        sandbox.webhooks.hold()
        for n in range(3):
            store.update_customer(cid, first_name=f"Name{n}")
        assert sandbox.counters["webhook_coalesced"] == 2  # one pending action per webhook and resource
        sandbox.webhooks.release()
        assert sandbox.webhooks.wait_idle()
        [(_, body)] = receiver.deliveries()
        assert json.loads(body)["first_name"] == "Name2"  # built when the delivery runs
        sandbox.webhooks.faults.drop_next = 1
        store.update_customer(cid, last_name="Dropped")
        assert sandbox.webhooks.wait_idle()
        assert len(receiver.deliveries()) == 1 and sandbox.webhooks.records(outcome="dropped")
        sandbox.webhooks.faults.duplicate_next = 1
        store.update_customer(cid, last_name="Twice")
        assert sandbox.webhooks.wait_idle()
        twice = receiver.deliveries()[1:]
        assert len(twice) == 2 and twice[0][1] == twice[1][1]
        paused = store.add_webhook("customer.updated", f"{hooks}/paused", status="paused")
        store.update_customer(cid, last_name="Again")
        assert sandbox.webhooks.wait_idle()
        assert not [r for r in sandbox.webhooks.records() if r.webhook_id == paused.id]


def test_delivery_id_repeats_within_a_second() -> None:
    """``wp_hash($webhook_id . strtotime('now'))``: never deduplicate deliveries on it alone."""
    sandbox, store, _ck, _cs = make()
    while store.clock.now() % 1 > 0.5:  # stay clear of a second boundary
        time.sleep(0.01)
    first, second = store.delivery_id(1), store.delivery_id(1)
    assert first == second and re.fullmatch(r"[0-9a-f]{32}", first)
    assert store.delivery_id(2) != first
    store.clock.advance(1)
    assert store.delivery_id(1) != first
    sandbox.unique_delivery_ids = True
    assert store.delivery_id(1) != store.delivery_id(1)


# --- faults and concurrency ----------------------------------------------------------------------------------------

def test_faults_status_rate_limit_hang_and_scoping() -> None:
    sandbox, store, ck, cs = make()
    other = sandbox.add_store("other", SMALL)
    ock, ocs = other.add_key()
    with serve_woocommerce_sandbox(sandbox, https=True):
        rest = f"{sandbox.store_url(store)}/wp-json/wc/v3"
        with httpx.Client(verify=sandbox.ssl_context(), auth=(ck, cs), timeout=10) as client:
            sandbox.faults.fail_next(1, 503, endpoint="rest")
            down = client.get(f"{rest}/products")
            assert down.status_code == 503 and down.headers["content-type"].startswith("text/html")
            assert b"503 Service Temporarily Unavailable" in down.content
            assert client.get(f"{rest}/products").status_code == 200
            sandbox.faults.fail_next(1, 500)
            crash = client.get(f"{rest}/orders")
            assert crash.status_code == 500 and b"There has been a critical error" in crash.content
            sandbox.faults.rate_limit_next(1, retry_after=2)
            limited = client.get(f"{rest}/orders")
            assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
            sandbox.faults.fail_next(1, 502, endpoint="webhooks")
            assert client.get(f"{rest}/products").status_code == 200  # not a webhooks route
            assert client.get(f"{rest}/webhooks").status_code == 502
            sandbox.faults.fail_next(1, 503, store="other")
            assert client.get(f"{rest}/products").status_code == 200
            assert client.get(f"{sandbox.store_url(other)}/wp-json/wc/v3/products", auth=(ock, ocs)).status_code == 503
            sandbox.faults.hang_next(1, seconds=1.0)
            with pytest.raises(httpx.ReadTimeout):
                client.get(f"{rest}/products", timeout=0.3)
            sandbox.faults.slow(0.2, n=1)
            t0 = time.monotonic()
            assert client.get(f"{rest}/products").status_code == 200
            assert time.monotonic() - t0 >= 0.19
            faulted = [r for r in sandbox.request_log if r.fault]
            assert [r.status for r in faulted][:5] == [503, 500, 429, 502, 503]
            assert sandbox.counters["faults_injected"] >= 6


def test_concurrency_counter() -> None:
    sandbox, store, ck, cs = make(latency=0.15)
    with serve_woocommerce_sandbox(sandbox, https=True):
        url = f"{sandbox.store_url(store)}/wp-json/wc/v3/products"
        with httpx.Client(verify=sandbox.ssl_context(), auth=(ck, cs), timeout=10) as client:
            for _ in range(3):
                assert client.get(url).status_code == 200
            assert store.max_concurrent_requests == 1  # one at a time
            store.reset_concurrency()
            threads = [threading.Thread(target=lambda: client.get(url)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert store.max_concurrent_requests >= 3 and store.concurrent_requests == 0
            log = [r for r in sandbox.request_log if r.store == "demo"]
            assert len(log) == 7 and all(r.duration >= 0.14 for r in log)  # asyncio may wake a tick early


# --- scale and CLI -------------------------------------------------------------------------------------------------

def test_large_catalog_pages_fast() -> None:
    spec = WooDatasetSpec(seed=9, products=5_000, orders=5_000, customers=200, variable_share=0.3)
    sandbox, store, ck, cs = make(spec)
    with serve_woocommerce_sandbox(sandbox, https=True):
        rest = f"{sandbox.store_url(store)}/wp-json/wc/v3"
        with httpx.Client(verify=sandbox.ssl_context(), auth=(ck, cs), timeout=30) as client:
            for kind, expected in (("products", set(store.product_ids())), ("orders", set(store.order_ids()))):
                seen: set[int] = set()
                page = 1
                while True:
                    resp = client.get(f"{rest}/{kind}", params={"per_page": 100, "page": page})
                    assert resp.status_code == 200
                    batch = resp.json()
                    seen.update(o["id"] for o in batch)
                    if page >= int(resp.headers["x-wp-totalpages"]):
                        break
                    page += 1
                assert seen == expected
            t0 = time.monotonic()
            for page in range(1, 21):  # cached JSON: a second pass is cheap
                client.get(f"{rest}/products", params={"per_page": 100, "page": page})
            assert time.monotonic() - t0 < 5.0


def test_demo_and_cli() -> None:
    sandbox, store, (ck, cs) = demo_woo_sandbox(spec=WooDatasetSpec(products=3, customers=1, orders=1))
    assert store.name == DEMO_STORE and ck.startswith("ck_") and len(ck) == 43 and len(cs) == 43
    assert re.fullmatch(r"cs_[0-9a-f]{40}", cs)
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.woocommerce", "--port", "0", "--products", "4",
                             "--orders", "2", "--customers", "1", "--https", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["store_url"].startswith("https://127.0.0.1:") and info["ca_file"]
        resp = httpx.get(info["rest_url"] + "/products", auth=(info["consumer_key"], info["consumer_secret"]),
                         verify=ssl.create_default_context(cafile=info["ca_file"]), timeout=10)
        assert resp.status_code == 200 and resp.headers["x-wp-total"] == "4"
    finally:
        proc.terminate()
        proc.wait(10)
