"""The look-up endpoints of the web process, over HTTP on a real port: answers from the synced tables in the
canonical model (checked against the served OpenAPI 3.1 document), both kinds of caller (API key, member's
Supabase token), the policies, the audit, and every kind of bad input answered with a clear 4xx that says
nothing about other tenants."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import psycopg
import pytest
from openapi_spec_validator import validate

from tests.conftest import as_role, new_user, set_policy
from tests.lookup_world import (
    EMAIL,
    LookupWeb,
    create_key,
    tenant,
    user_token,
)
from tests.metrics_text import sample
from worker.config import Settings
from worker.lookups.operations import OPERATIONS
from worker.web.app import create_app

Conn = psycopg.Connection[dict[str, Any]]


def answer_schema(document: dict[str, Any], operation: str) -> dict[str, Any]:
    ref = document["paths"][f"/v1/lookups/{operation}"]["post"]["responses"]["200"]["content"]["application/json"]
    return {**ref["schema"], "components": document["components"]}


def audit(conn: Conn, org: Any) -> list[dict[str, Any]]:
    return conn.execute("select * from shopsync.lookup_audit where organization_id = %s order by id", (org,)).fetchall()


async def test_the_openapi_document_is_valid_and_describes_every_operation(web: LookupWeb) -> None:
    async with web.client() as client:
        response = await client.get("/v1/lookups/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)                     # raises on an invalid OpenAPI 3.1 document
    assert document["openapi"] == "3.1.0"
    assert {p.rsplit("/", 1)[1] for p in document["paths"]} == set(OPERATIONS)
    body = document["components"]["schemas"]["FindOrders"]
    assert {"store_id", "customer_id", "email", "phone", "order_number", "limit"} <= set(body["properties"])


async def test_a_key_finds_customers_and_orders_in_the_canonical_model(web: LookupWeb, conn: Conn) -> None:
    t = tenant(conn, "a.myshopify.com")
    async with web.client() as client:
        document = (await client.get("/v1/lookups/openapi.json")).json()

    # the phone as a caller says it, matched against how the store wrote it
    found = await web.post(t.key, "find_customer", {"store_id": str(t.store), "phone": "+36301234567"})
    assert found.status_code == 200, found.text
    body = found.json()
    jsonschema.validate(body, answer_schema(document, "find_customer"))
    assert (body["policy"], body["source"], body["lookup"], body["count"]) == ("sync", "synced", "customers_by_phone", 1)
    customer = body["customers"][0]
    assert customer["id"] == "101" and customer["email"] == EMAIL and customer["total_spent"] == "59.98"
    assert customer["default_address"]["city"] == "Budapest" and customer["tags"] == ["vip"]

    # a national-format number ("06 30 …") is found from the international one, and the other way round
    local = await web.post(t.key, "find_customer", {"store_id": str(t.store), "phone": "+36 30 999 8888"})
    assert [c["id"] for c in local.json()["customers"]] == ["102"]
    national = await web.post(t.key, "find_customer", {"store_id": str(t.store), "phone": "06 30 123 4567",
                                                       "phone_region": "HU"})
    assert [c["id"] for c in national.json()["customers"]] == ["101"]
    by_email = await web.post(t.key, "find_customer", {"store_id": str(t.store), "email": "  ANN.buyer@example.COM "})
    assert [c["id"] for c in by_email.json()["customers"]] == ["101"]

    orders = await web.post(t.key, "find_orders", {"store_id": str(t.store), "customer_id": "101"})
    assert orders.status_code == 200, orders.text
    jsonschema.validate(orders.json(), answer_schema(document, "find_orders"))
    listed = orders.json()["orders"]
    assert [o["name"] for o in listed] == ["#1002", "#1001"]            # newest first
    first = listed[1]
    assert first["line_items"][0]["sku"] == "TEE-BLUE-M" and first["total_price"] == "19.99"
    assert first["fulfillments"][0]["tracking_numbers"] == ["1Z999"]
    assert first["fulfillments"][0]["tracking_company"] == "DHL"
    assert listed[0]["line_items"][0]["price"] == "19.995"

    for query in ({"order_number": "#1001"}, {"order_number": "1001"}):
        named = await web.post(t.key, "find_orders", {"store_id": str(t.store), **query})
        assert [o["id"] for o in named.json()["orders"]] == ["5001"]
    phoned = await web.post(t.key, "find_orders", {"store_id": str(t.store), "phone": "+36 30 123 4567"})
    assert [o["id"] for o in phoned.json()["orders"]] == ["5001"]
    one = await web.post(t.key, "get_order", {"store_id": str(t.store), "order_id": "gid://shopify/Order/5002"})
    assert [o["id"] for o in one.json()["orders"]] == ["5002"]
    none = await web.post(t.key, "get_order", {"store_id": str(t.store), "order_id": "999"})
    assert none.status_code == 200 and none.json()["count"] == 0


async def test_products_by_sku_and_by_title_words(web: LookupWeb, conn: Conn) -> None:
    t = tenant(conn, "p.myshopify.com")
    sku = await web.post(t.key, "find_products", {"store_id": str(t.store), "sku": "TEE-BLUE-L"})
    assert sku.status_code == 200, sku.text
    (product,) = sku.json()["products"]
    assert product["title"] == "Blue Cotton Tee"
    assert [(v["sku"], v["inventory_quantity"], v["in_stock"], v["price"]) for v in product["variants"]] == \
        [("TEE-BLUE-L", 0, False, "19.99")]
    words = await web.post(t.key, "find_products", {"store_id": str(t.store), "text": "tee blue"})
    assert [len(p["variants"]) for p in words.json()["products"]] == [2]
    # LIKE's wildcards are plain characters in a search
    literal = await web.post(t.key, "find_products", {"store_id": str(t.store), "text": "100% wool_"})
    assert [p["id"] for p in literal.json()["products"]] == ["302"]
    assert literal.json()["products"][0]["variants"][0]["in_stock"] is None
    wildcard = await web.post(t.key, "find_products", {"store_id": str(t.store), "text": "%"})
    assert [p["id"] for p in wildcard.json()["products"]] == ["302"]


async def test_a_members_token_looks_up_and_lists_stores(web: LookupWeb, conn: Conn) -> None:
    t = tenant(conn, "m.myshopify.com")
    member = new_user(conn)
    conn.execute("insert into shopsync.organization_members (organization_id, user_id, role) values (%s, %s, 'member')",
                 (t.org, member))
    token = user_token(member)
    found = await web.post(token, "find_customer", {"store_id": str(t.store), "email": EMAIL})
    assert found.status_code == 200 and found.json()["count"] == 1
    async with web.client(token) as client:
        stores = await client.get("/v1/lookups/list_stores")
    assert stores.status_code == 200
    (store,) = stores.json()["stores"]
    assert store["store_id"] == str(t.store) and store["policies"]["customers"] == "sync"
    assert "customers_by_phone" in store["live_lookups"]
    rows = audit(conn, t.org)
    assert rows[-1]["user_id"] == member and rows[-1]["key_id"] is None and rows[-1]["outcome"] == "answered"


async def test_policies_route_and_refuse(web: LookupWeb, conn: Conn) -> None:
    t = tenant(conn, "pol.myshopify.com")
    set_policy(conn, t.store, "customers", "not_allowed")
    refused = await web.post(t.key, "find_customer", {"store_id": str(t.store), "email": EMAIL})
    assert refused.status_code == 403
    assert refused.json()["policy"] == "not_allowed" and "not_allowed" in refused.json()["detail"]
    # the other resources still answer
    assert (await web.post(t.key, "find_orders", {"store_id": str(t.store), "email": EMAIL})).json()["count"] == 2
    rows = audit(conn, t.org)
    assert (rows[-2]["policy"], rows[-2]["outcome"], rows[-2]["status"]) == ("not_allowed", "refused", 403)
    assert (rows[-1]["policy"], rows[-1]["lookup"], rows[-1]["result_count"]) == ("sync", "orders_by_email", 2)


async def test_a_keys_last_use_is_kept_at_most_once_a_minute(web: LookupWeb, conn: Conn) -> None:
    t = tenant(conn, "last-used.myshopify.com")

    def last_used() -> Any:
        with as_role(conn, "authenticated", t.owner):
            (row,) = conn.execute("select last_used_at from shopsync.list_api_keys(%s)", (t.org,)).fetchall()
        return row["last_used_at"]

    assert last_used() is None
    assert (await web.post(t.key, "find_customer", {"store_id": str(t.store), "email": EMAIL})).status_code == 200
    first = last_used()
    assert first is not None
    assert (await web.post(t.key, "find_orders", {"store_id": str(t.store), "email": EMAIL})).status_code == 200
    assert last_used() == first                  # not one write per look-up
    conn.execute("update shopsync_private.api_keys set last_used_at = last_used_at - interval '2 minutes' "
                 "where organization_id = %s", (t.org,))
    assert (await web.post(t.key, "find_orders", {"store_id": str(t.store), "email": EMAIL})).status_code == 200
    assert last_used() > first


async def metrics_page(web: LookupWeb) -> str:
    async with web.client() as client:
        return (await client.get("/metrics")).text


async def test_lookups_are_counted_on_metrics_by_lookup_policy_and_outcome(web: LookupWeb, conn: Conn) -> None:
    t = tenant(conn, "metrics.myshopify.com")
    set_policy(conn, t.store, "products", "not_allowed")
    store = str(t.store)
    assert (await web.post(t.key, "find_customer", {"store_id": store, "email": EMAIL})).status_code == 200
    assert (await web.post(t.key, "find_customer", {"store_id": store, "email": EMAIL})).status_code == 200
    assert (await web.post(t.key, "find_products", {"store_id": store, "sku": "X"})).status_code == 403
    assert (await web.post(t.key, "find_customer", {"store_id": store, "email": "not-an-email"})).status_code == 422
    unknown = "ssk_" + "1" * 12 + "_" + "2" * 52
    assert (await web.post(unknown, "find_orders", {"store_id": store, "email": EMAIL})).status_code == 401
    page = await metrics_page(web)
    assert sample(page, 'shopsync_lookups_total{lookup="customers_by_email",policy="sync",outcome="answered"}') == 2
    assert sample(page, 'shopsync_lookups_total{lookup="variants_by_sku",policy="not_allowed",outcome="refused"}') == 1
    assert sample(page, 'shopsync_lookups_total{lookup="find_customer",policy="none",outcome="invalid"}') == 1
    assert sample(page, 'shopsync_lookups_total{lookup="find_orders",policy="none",outcome="refused"}') == 1
    assert sample(page, 'shopsync_lookup_duration_seconds_count{policy="sync"}') == 2
    assert sample(page, 'shopsync_lookup_duration_seconds_count{policy="none"}') == 2
    # labels are code's names, never a value asked for
    assert EMAIL.lower() not in page.lower() and "not-an-email" not in page and store not in page


async def test_the_audit_names_who_what_and_how_never_the_values(web: LookupWeb, conn: Conn) -> None:
    t = tenant(conn, "aud.myshopify.com")
    await web.post(t.key, "find_customer", {"store_id": str(t.store), "phone": "+36301234567"})
    await web.post(t.key, "find_orders", {"store_id": str(t.store), "email": EMAIL})
    rows = audit(conn, t.org)
    assert [(r["lookup"], r["resource"], r["policy"], r["result_count"], r["interface"]) for r in rows] == [
        ("customers_by_phone", "customers", "sync", 1, "http"), ("orders_by_email", "orders", "sync", 2, "http")]
    prefix = t.key[:16]
    assert all(r["key_prefix"] == prefix and r["store_id"] == t.store and r["latency_ms"] > 0 for r in rows)
    text = repr(conn.execute("select * from shopsync.lookup_audit").fetchall()).lower()
    for value in ("36301234567", EMAIL.lower(), "ann", "buyer"):
        assert value not in text
    # members read their organization's audit; another organization's member reads none of it
    other = tenant(conn, "aud-other.myshopify.com")
    with as_role(conn, "authenticated", t.owner):
        assert conn.execute("select count(*) as n from shopsync.lookup_audit").fetchone()["n"] == 2
    with as_role(conn, "authenticated", other.owner):
        assert conn.execute("select count(*) as n from shopsync.lookup_audit").fetchone()["n"] == 0
    # and the audit is kept as long as the retention says
    conn.execute("update shopsync.lookup_audit set occurred_at = now() - interval '31 days' where id = %s",
                 (rows[0]["id"],))
    pruned = conn.execute("select shopsync.prune_history() as r").fetchone()["r"]
    assert pruned["lookup_audit"] == 1 and len(audit(conn, t.org)) == 1


async def test_bad_input_is_a_clear_4xx_and_leaks_nothing(web: LookupWeb, conn: Conn) -> None:
    t = tenant(conn, "bad.myshopify.com")
    other = tenant(conn, "theirs.myshopify.com")
    store = str(t.store)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"store_id": store, "email": "not-an-email"}, 422, "email is not an email address"),
        ({"store_id": store, "phone": "1234 567"}, 422, "phone has no country code"),
        ({"store_id": store, "phone": "+1 555"}, 422, "not a possible phone number"),
        ({"store_id": store, "phone": "call me maybe", "phone_region": "US"}, 422, "not a phone number"),
        ({"store_id": store}, 422, "give exactly one of email, phone"),
        ({"store_id": store, "email": EMAIL, "phone": "+36301234567"}, 422, "give exactly one of email, phone"),
        ({"store_id": store, "email": "a" * 300 + "@x.com"}, 422, "email: String should have at most 254"),
        ({"store_id": "not-a-uuid", "email": EMAIL}, 422, "store_id"),
        ({"email": EMAIL}, 422, "store_id: Field required"),
        ({"store_id": store, "email": EMAIL, "limit": 500}, 422, "limit"),
        ({"store_id": store, "email": EMAIL, "shop": "x"}, 422, "shop: Extra inputs are not permitted"),
    ]
    for body, status, words in cases:
        response = await web.post(t.key, "find_customer", body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["detail"], (body, response.text)
        for value in ("not-an-email", "call me maybe", "a" * 50):
            assert value not in response.text

    # a store of another organization is answered exactly like a store that does not exist
    theirs = await web.post(t.key, "find_customer", {"store_id": str(other.store), "email": EMAIL})
    missing = await web.post(t.key, "find_customer", {"store_id": "00000000-0000-4000-8000-000000000000",
                                                      "email": EMAIL})
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"].replace(str(other.store), "X") == \
        missing.json()["detail"].replace("00000000-0000-4000-8000-000000000000", "X")
    user = new_user(conn)          # a signed-in user of no organization of theirs: the same
    stranger = await web.post(user_token(user), "find_customer", {"store_id": str(other.store), "email": EMAIL})
    assert stranger.status_code == 404

    async with web.client(t.key) as client:
        big = await client.post("/v1/lookups/find_customer", content=b'{"store_id": "' + b"x" * 20_000 + b'"}',
                                headers={"Content-Type": "application/json"})
        assert big.status_code == 413
        form = await client.post("/v1/lookups/find_customer", content=b"email=x",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 415
        broken = await client.post("/v1/lookups/find_customer", content=b"{nope",
                                   headers={"Content-Type": "application/json"})
        assert broken.status_code == 400
        unknown = await client.post("/v1/lookups/drop_tables", json={})
        assert unknown.status_code == 404
        get = await client.get("/v1/lookups/find_customer")
        assert get.status_code == 405
    # what bad input was recorded: only outcomes, under the key's organization
    outcomes = {r["outcome"] for r in audit(conn, t.org)}
    assert outcomes == {"invalid", "refused"}
    assert audit(conn, other.org) == []


@pytest.mark.parametrize("case", ["missing", "malformed", "unknown", "revoked", "expired", "wrong_scheme"])
async def test_keys_that_cannot_look_up_answer_401(web: LookupWeb, conn: Conn, case: str) -> None:
    t = tenant(conn, f"k-{case}.myshopify.com")
    key = create_key(conn, t.owner, t.org, name=case)
    token: str | None = key["key"]
    if case == "missing":
        token = None
    elif case == "malformed":
        token = "ssk_nothex"
    elif case == "unknown":
        token = "ssk_" + "0" * 12 + "_" + "0" * 52
    elif case == "revoked":
        with as_role(conn, "authenticated", t.owner):
            conn.execute("select shopsync.revoke_api_key(%s)", (key["key_id"],))
    elif case == "expired":
        conn.execute("update shopsync_private.api_keys set expires_at = now() - interval '1 second' where id = %s",
                     (key["key_id"],))
    async with web.client() as client:
        headers = {"Authorization": "Basic abc"} if case == "wrong_scheme" else \
            {"Authorization": f"Bearer {token}"} if token else {}
        response = await client.post("/v1/lookups/find_customer", json={"store_id": str(t.store), "email": EMAIL},
                                     headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    expected = {"missing": "missing Authorization", "malformed": "malformed API key", "unknown": "unknown API key",
                "revoked": "revoked", "expired": "expired", "wrong_scheme": "Bearer"}[case]
    assert expected in response.json()["detail"]
    assert "customers" not in response.text and EMAIL not in response.text
    if case in ("revoked", "expired"):         # audited under the key's organization
        assert audit(conn, t.org)[-1]["outcome"] == "refused"


async def test_a_key_sees_only_its_stores_and_resources(web: LookupWeb, conn: Conn) -> None:
    t = tenant(conn, "s1.myshopify.com")
    second = conn.execute("select shopsync.upsert_store(%s, 'shopify', 's2.myshopify.com') as s",
                          (t.org,)).fetchone()["s"]
    narrow = create_key(conn, t.owner, t.org, store_ids=[t.store], resources=["orders"])["key"]
    assert (await web.post(narrow, "find_orders", {"store_id": str(t.store), "email": EMAIL})).status_code == 200
    other_store = await web.post(narrow, "find_orders", {"store_id": str(second), "email": EMAIL})
    assert other_store.status_code == 404
    customers = await web.post(narrow, "find_customer", {"store_id": str(t.store), "email": EMAIL})
    assert customers.status_code == 403 and "may not look up customers" in customers.json()["detail"]
    async with web.client(narrow) as client:
        stores = (await client.get("/v1/lookups/list_stores")).json()["stores"]
    assert [(s["store_id"], s["policies"]) for s in stores] == [(str(t.store), {"orders": "sync"})]


async def test_a_key_over_its_rate_gets_429_and_its_slots_back(web: LookupWeb, conn: Conn) -> None:
    t = tenant(conn, "rate.myshopify.com", requests_per_second=0.5, burst=2)
    body = {"store_id": str(t.store), "email": EMAIL}
    answers = [await web.post(t.key, "find_customer", body) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 429, 429]
    assert 1 <= int(answers[2].headers["retry-after"]) <= 2
    assert "retry in" in answers[2].json()["detail"]
    # refused requests reserved nothing: the limiter row is where two requests left it
    row = conn.execute("select next_free_at - updated_at as ahead from shopsync_private.rate_limits "
                       "where key like 'lookups:key:%%'").fetchone()
    assert row is not None and row["ahead"].total_seconds() <= 4.0
    assert [r["outcome"] for r in audit(conn, t.org)][-2:] == ["rate_limited", "rate_limited"]


async def test_an_answer_that_cannot_be_audited_is_not_given(web: LookupWeb, conn: Conn) -> None:
    t = tenant(conn, "unaudited.myshopify.com")
    conn.execute("create function public.refuse_audit() returns trigger language plpgsql as "
                 "$$ begin raise exception 'audit unavailable'; end $$")
    conn.execute("create trigger refuse before insert on shopsync.lookup_audit "
                 "for each row execute function public.refuse_audit()")
    try:
        response = await web.post(t.key, "find_customer", {"store_id": str(t.store), "email": EMAIL})
    finally:
        conn.execute("drop trigger refuse on shopsync.lookup_audit")
        conn.execute("drop function public.refuse_audit()")
    assert response.status_code == 503 and "audit" in response.json()["detail"]
    assert EMAIL.lower() not in response.text.lower() and "customers" not in response.json()
    page = await metrics_page(web)
    assert sample(page, 'shopsync_lookups_total{lookup="customers_by_email",policy="sync",outcome="failed"}') == 1
    assert 'outcome="answered"' not in page
    again = await web.post(t.key, "find_customer", {"store_id": str(t.store), "email": EMAIL})
    assert again.status_code == 200 and again.json()["count"] == 1


@pytest.mark.parametrize("path", ["/v1/lookups/find_customer", "/v1/lookups/openapi.json", "/v1/mcp/"])
async def test_lookup_routes_are_server_to_server_no_page_may_call_them(db: Any, path: str) -> None:
    """API-key routes: even an origin allowed for the browser routes gets no CORS permission here."""
    app = "https://app.example.com"
    settings = Settings(_env_file=None, cors_origins=[app], supabase_jwt_secret="x" * 40)  # type: ignore[call-arg]
    preflight = {"Origin": app, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, db)),
                                 base_url="http://127.0.0.1") as client:
        asked = await client.options(path, headers=preflight)
        assert asked.status_code in (401, 405) and "access-control-allow-origin" not in asked.headers
        method = "GET" if path.endswith(".json") else "POST"
        answer = await client.request(method, path, json={}, headers={"Origin": app})
        assert answer.status_code in (200, 401) and "access-control-allow-origin" not in answer.headers
