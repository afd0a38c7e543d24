"""Every web route, fuzzed: the app's route table is walked (so a route added later is fuzzed without anyone
remembering to), and each route gets generated hostile path parameters, query strings, headers, JWTs and
bodies — unsigned, and signed with the real secrets where the route checks a signature, so the input gets
past authentication to the code behind it. Two properties hold for every request:

- never a 5xx (everything the fuzz world needs is configured, so a 5xx can only be a bug);
- a refused request (4xx) changes no row in any table, and an accepted one only the tables a route may
  write (the webhook inbox and its jobs, OAuth states, parked installs).

Examples are derandomized: CI fuzzes the same inputs every run (``SHOPSYNC_FUZZ_EXAMPLES`` raises the count
for a longer local run).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Mount, Route

from sandbox.serving import serve_app
from tests.conftest import new_user, personal_org
from tests.platform_world import free_port
from worker.config import Settings
from worker.connectors.shopify import CONNECTOR as SHOPIFY
from worker.connectors.shopify.settings import ShopifySettings
from worker.connectors.shoprenter import CONNECTOR as SHOPRENTER
from worker.connectors.shoprenter.settings import ShopRenterSettings
from worker.connectors.store_secrets import seal_secrets
from worker.connectors.woocommerce import CONNECTOR as WOO
from worker.connectors.woocommerce.settings import WooSettings
from worker.sealing import Sealer, generate_key_spec
from worker.web.app import create_app

EXAMPLES = int(os.environ.get("SHOPSYNC_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

SHOPIFY_SECRET = "fuzz-shopify-secret"
SHOPRENTER_SECRET = "fuzz-shoprenter-secret"
JWT_SECRET = "fuzz-jwt-secret-that-is-long-enough-for-hs256"
SHOP = "fuzz-shop.myshopify.com"
SR_SHOP = "fuzzshop"
WOO_SECRET = "woo-webhook-secret"
SR_TOKEN = "sr-webhook-token"

# tables a route may write when it accepts a request; a refused request writes none
MAY_CHANGE = {"shopsync.webhook_inbox", "shopsync.jobs", "shopsync_private.oauth_states",
              "shopsync_private.pending_installs"}
ALSO_MAY_CHANGE = {    # a signed uninstall marks the shop's stores (status, its event and activity)
    "/shoprenter/uninstall": {"shopsync.stores", "shopsync.events", "shopsync.activity_log"}}


def route_table() -> list[tuple[str, str]]:
    """(method, path template) of every route the web process serves, Mounts walked."""
    core = Settings(_env_file=None, database_url="postgresql://fuzz@127.0.0.1/fuzz",  # type: ignore[call-arg]
                    sealing_keys=generate_key_spec("fuzz"), public_url="http://fuzz", frontend_url="http://f")

    def walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
        for r in routes:
            if isinstance(r, Mount):
                yield from walk(list(r.routes), prefix + r.path)
            elif isinstance(r, Route):
                for method in sorted((r.methods or {"GET"}) - {"HEAD"}):
                    yield method, prefix + r.path

    return list(walk(list(create_app(core).routes)))


ROUTES = route_table()


@dataclass
class FuzzWorld:
    url: str
    conn: psycopg.Connection[dict[str, Any]]
    woo_store: str
    sr_store: str
    member_token: str           # a valid JWT of the owner of ``org`` (gets past authentication)
    org: str


@pytest.fixture
def fuzz_world(dsn: str, conn: psycopg.Connection[dict[str, Any]],
               monkeypatch: pytest.MonkeyPatch) -> Iterator[FuzzWorld]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    core = Settings(_env_file=None, database_url=dsn, sealing_keys=generate_key_spec("fuzz"),  # type: ignore[call-arg]
                    public_url=url, frontend_url="http://frontend.test", supabase_jwt_secret=JWT_SECRET)
    monkeypatch.setattr(SHOPIFY, "_settings", ShopifySettings(  # type: ignore[call-arg]
        _env_file=None, client_id="fuzz-client", client_secret=SHOPIFY_SECRET))
    monkeypatch.setattr(SHOPRENTER, "_settings", ShopRenterSettings(  # type: ignore[call-arg]
        _env_file=None, client_id="fuzz-sr", client_secret=SHOPRENTER_SECRET))
    monkeypatch.setattr(WOO, "_settings", WooSettings(_env_file=None))  # type: ignore[call-arg]
    user = new_user(conn)
    org = personal_org(conn, user)
    stores = {}
    for platform, shop in (("shopify", SHOP), ("woocommerce", "https://woo.fuzz.test"), ("shoprenter", SR_SHOP)):
        stores[platform] = str(conn.execute("select shopsync.upsert_store(%s, %s, %s) as id",
                                            (org, platform, shop)).fetchone()["id"])  # type: ignore[index]
    sealer = Sealer.from_settings(core)
    for platform, fields in (("woocommerce", {"consumer_key": "ck_x", "consumer_secret": "cs_x",
                                              "webhook_secret": WOO_SECRET}),
                             ("shoprenter", {"access_token": "t", "webhook_token": SR_TOKEN})):
        box = seal_secrets(sealer, stores[platform], "api_keys", fields)
        conn.execute("select shopsync.put_store_credentials(%s, %s, %s, %s)",
                     (stores[platform], box["kind"], box["key_id"], box["sealed"]))
    token = jwt(JWT_SECRET, {"alg": "HS256", "typ": "JWT"},
                {"sub": str(user), "aud": "authenticated", "role": "authenticated", "exp": 4_102_444_800})
    with serve_app(create_app(core), port=port, name="shopsync-fuzz"):
        yield FuzzWorld(url, conn, stores["woocommerce"], stores["shoprenter"], token, str(org))


# --- what hostile input looks like ----------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(secret: str, header: Any, claims: Any) -> str:
    signing = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64url(sig)}"


ODD = st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "-0", "9" * 400, "0x10", "1.5", "", " ", "\x00",
                       "a\x00b", "%00", "../../etc/passwd", "http://169.254.169.254/", "javascript:alert(1)",
                       "' or 1=1 --", "${jndi:ldap://x}", "\u202e", "ﬀ", "\ud7ff", "null", "true", "[]", "{}"])
TEXT = st.one_of(ODD, st.text(max_size=60), st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                        st.floats(allow_nan=False, allow_infinity=False), TEXT)
JSON = st.recursive(JSON_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(TEXT, inner, max_size=5)), max_leaves=25)
KEYS = ["id", "shop", "shop_id", "hmac", "timestamp", "code", "state", "host", "shopname", "app_url",
        "webhook_id", "install_id", "claim_token", "organization_id", "store_url", "consumer_key", "consumer_secret",
        "customer", "orders_to_redact", "orders", "order", "innerResourceId", "updated_at", "inventory_item_id",
        "location_id", "data_request", "variants", "line_items", "email", "price"]


def deep(n: int) -> bytes:
    return b'{"id": 1, "x": ' + b"[" * n + b"1" + b"]" * n + b"}"


BODY_JSON = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(KEYS), TEXT), JSON, max_size=8),   # objects with known keys
    JSON,
    st.builds(lambda x: {"id": x, "title": "a\u0000b", "\u0000": "c"}, JSON_SCALAR),   # NUL in keys and values
    st.builds(lambda x: {"orders": x}, JSON),                                      # ShopRenter-ish, wrong shape
    st.builds(lambda x: {"orders": {"order": [{"innerResourceId": x}]}}, st.one_of(TEXT, JSON)),   # right shape
)
BODY = st.one_of(BODY_JSON.map(lambda v: json.dumps(v).encode()),
                 st.integers(min_value=60, max_value=900).map(deep),
                 st.binary(max_size=200),
                 st.sampled_from([b"", b"webhook_id=12", b"{", b"[1,", b'{"id": 1e400}', b'"\\u0000"',
                                  b'{"id": "\\u0000"}', b"\xff\xfe", b'{"orders":5}', b"true", b"1.5"]))
STORE_URLS = st.one_of(st.sampled_from([
    "https://127.0.0.1", "http://169.254.169.254/latest/meta-data", "https://[::1]:8443", "https://0x7f000001",
    "https://localhost.", "https://10.0.0.1", "https://a.b", "https://nowhere.invalid", "file:///etc/passwd",
    "https://exa mple.com", "https://user:pw@host.test", "https://host.test/?x=1", "https://[fe80::1%25eth0]",
    "https://" + "a" * 3000, "https://\u0000.test", "https://host.test:99999"]), TEXT)
# what an HTTP client can send as a header value (h11 refuses surrounding whitespace and control characters)
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=80).map(str.strip)
JWT_PART = st.one_of(JSON, st.fixed_dictionaries({"alg": JSON, "kid": JSON, "typ": JSON}),
                     st.just({"alg": ["HS256"]}), st.just({"alg": {"x": 1}}), st.just({"alg": "none"}),
                     st.just({"alg": "RS256", "kid": 5}))
CLAIMS = st.one_of(JSON, st.fixed_dictionaries({"sub": JSON, "aud": JSON, "role": JSON, "exp": JSON}),
                   st.just({"sub": str(uuid.uuid4()), "aud": "authenticated", "role": "authenticated", "exp": 1e308}),
                   st.just({"sub": ["x"], "aud": ["authenticated"], "role": "authenticated", "exp": "soon"}))


@st.composite
def authorization(draw: st.DrawFn, world: FuzzWorld) -> str | None:
    kind = draw(st.sampled_from(["none", "garbage", "unsigned", "signed", "member"]))
    if kind == "none":
        return None
    if kind == "garbage":
        return draw(HEADER_TEXT)
    if kind == "member":
        return f"Bearer {world.member_token}"
    header, claims = draw(JWT_PART), draw(CLAIMS)
    if kind == "signed":
        return f"Bearer {jwt(JWT_SECRET, header, claims)}"
    return f"Bearer {b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}.{draw(HEADER_TEXT)}"


@dataclass
class FuzzRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


@st.composite
def requests_for(draw: st.DrawFn, method: str, template: str, world: FuzzWorld) -> FuzzRequest:
    signed = draw(st.sampled_from([True, True, True, False]))     # mostly past authentication
    path = template
    for name, real in (("store_id", world.woo_store if template.startswith("/woocommerce") else world.sr_store),
                       ("token", SR_TOKEN)):
        if "{" + name + "}" in path:
            value = real if signed else draw(st.one_of(st.just(real), st.uuids().map(str), TEXT))
            path = path.replace("{" + name + "}", quote(value, safe="") or "x")
    query = draw(st.lists(st.tuples(st.one_of(st.sampled_from(KEYS), TEXT), TEXT), max_size=6))
    body = draw(BODY) if method == "POST" else b""
    if template == "/woocommerce/connect" and signed:     # a member of the organization, with hostile fields
        body = json.dumps({"organization_id": world.org, "store_url": draw(STORE_URLS),
                           "consumer_key": draw(st.one_of(st.just("ck_" + "a" * 40), TEXT)),
                           "consumer_secret": draw(st.one_of(st.just("cs_" + "b" * 40), TEXT))}).encode()
    headers = {k: v for k, v in draw(st.dictionaries(
        st.sampled_from(["x-shopify-topic", "x-shopify-shop-domain", "x-shopify-webhook-id", "x-shopify-event-id",
                         "x-shopify-triggered-at", "x-shopify-hmac-sha256", "x-wc-webhook-topic",
                         "x-wc-webhook-delivery-id", "x-wc-webhook-signature", "content-type", "origin"]),
        HEADER_TEXT, max_size=6)).items()}
    auth = f"Bearer {world.member_token}" if template == "/woocommerce/connect" and signed else \
        draw(authorization(world))
    if auth is not None:
        headers["authorization"] = auth
    if signed and template == "/shopify/webhooks":
        headers.update({
            "x-shopify-topic": draw(st.sampled_from(["products/update", "orders/create", "customers/redact",
                                                     "inventory_levels/update", "app/uninstalled", "shop/redact",
                                                     "products/delete"])),
            "x-shopify-shop-domain": draw(st.sampled_from([SHOP, "other.myshopify.com"])),
            "x-shopify-webhook-id": str(uuid.uuid4()),
            "x-shopify-hmac-sha256": base64.b64encode(hmac.new(SHOPIFY_SECRET.encode(), body,
                                                               hashlib.sha256).digest()).decode()})
    elif signed and template.startswith("/woocommerce/webhooks"):
        headers.update({
            "x-wc-webhook-topic": draw(st.sampled_from(["product.updated", "order.created", "customer.deleted"])),
            "x-wc-webhook-delivery-id": str(uuid.uuid4()),
            "x-wc-webhook-signature": base64.b64encode(hmac.new(WOO_SECRET.encode(), body,
                                                                hashlib.sha256).digest()).decode()})
    elif signed and template in ("/shopify/install", "/shopify/callback", "/shoprenter/install", "/shoprenter/entry",
                                 "/shoprenter/uninstall"):
        params = dict(query)
        params.setdefault("shop" if template.startswith("/shopify") else "shopname",
                          SHOP if template.startswith("/shopify") else SR_SHOP)
        now = str(int(time.time()))
        params.setdefault("timestamp", draw(st.sampled_from([now, now, now, "1e400", "-1", "9" * 30, "1e9", "x"])))
        params.pop("hmac", None)
        if template.startswith("/shopify"):
            message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
            params["hmac"] = hmac.new(SHOPIFY_SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
        else:
            ordered = sorted(params.items(), key=lambda kv: {"code": 0, "shopname": 1, "timestamp": 2}.get(kv[0], 3))
            message = urlencode([kv for kv in ordered if kv[0] != "app_url"])
            params["hmac"] = hmac.new(SHOPRENTER_SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
        query = list(params.items())
    return FuzzRequest(method, path, query, headers, body)


# --- the property -----------------------------------------------------------------------------------------

def table_states(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, str]:
    """A digest of every table's rows, per table, in both schemas."""
    tables = conn.execute("select format('%I.%I', n.nspname, c.relname) as t from pg_class c "
                          "join pg_namespace n on n.oid = c.relnamespace "
                          "where c.relkind in ('r', 'p') and n.nspname in ('shopsync', 'shopsync_private') "
                          "order by 1").fetchall()
    union = " union all ".join(f"select '{r['t']}' as t, md5(coalesce(string_agg(x::text, ',' order by x::text), ''))"
                               f" as d from {r['t']} x" for r in tables)
    return {r["t"]: r["d"] for r in conn.execute(union).fetchall()}


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_every_route_survives_hostile_input(fuzz_world: FuzzWorld, method: str, template: str) -> None:
    w = fuzz_world
    seen: dict[int, int] = {}
    with httpx.Client(base_url=w.url, timeout=30, follow_redirects=False) as client:

        @FUZZ
        @given(request=requests_for(method, template, w))
        def run(request: FuzzRequest) -> None:
            before = table_states(w.conn)
            answer = client.request(request.method, request.path, params=request.query, headers=request.headers,
                                    content=request.body or None)
            seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
            assert answer.status_code < 500, (request, answer.status_code, answer.text[:300])
            changed = {t for t, digest in table_states(w.conn).items() if before.get(t) != digest}
            if answer.status_code >= 400:
                assert not changed, (request, answer.status_code, changed)
            else:
                allowed = MAY_CHANGE | ALSO_MAY_CHANGE.get(template, set())
                assert changed <= allowed, (request, answer.status_code, changed - allowed)

        run()
    assert sum(seen.values()) >= min(EXAMPLES, 10)      # the route was really exercised
