"""Shopify → canonical rows: a GraphQL node (over HTTP from the sandbox) and the REST webhook payload of
the same object give the same typed columns; webhook effects; bad input fails clearly."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest

from sandbox.shopify import DatasetSpec, ShopifySandbox, serve_shopify_sandbox
from sandbox.shopify.state import Shop
from worker.connectors.shopify import queries as q
from worker.connectors.shopify.graphql import ShopifyGraphQL
from worker.connectors.shopify.mapping import (
    RESOURCE_TABLES,
    WEBHOOK_TOPICS,
    Owner,
    bulk_raw,
    customer_row,
    fulfillment_row,
    legacy_id,
    level_row,
    line_item_row,
    order_row,
    product_row,
    variant_row,
    webhook_effect,
)
from worker.errors import PermanentError

SHOP = "mapping.myshopify.com"
CLIENT_ID = "mapping-client"
STORE = uuid.UUID("00000000-0000-4000-8000-000000000001")
ORG = uuid.UUID("00000000-0000-4000-8000-000000000002")
OWNER = Owner.of(STORE, ORG)
T = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ShopifySandbox, Shop, str]]:
    sandbox = ShopifySandbox(throttle=False)
    sandbox.add_app(CLIENT_ID, "shpss_mapping")
    shop = sandbox.add_shop(SHOP, DatasetSpec(products=12, variants_per_product=3, customers=15, orders=40,
                                              locations=2))
    with serve_shopify_sandbox(sandbox):
        token = sandbox.issue_token(shop, CLIENT_ID)["access_token"]
        yield sandbox, shop, token


@pytest.fixture
async def client(served: tuple[ShopifySandbox, Shop, str]) -> AsyncIterator[ShopifyGraphQL]:
    sandbox, shop, token = served

    async def provider() -> str:
        return token

    async with ShopifyGraphQL(SHOP, provider, api_version="2026-10", base_url=sandbox.shop_url(shop)) as c:
        yield c


def typed(row: dict[str, Any], *skip: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("raw", *skip)}


def effect(topic: str, payload: dict[str, Any], triggered_at: datetime | None = None) -> Any:
    return webhook_effect(topic, payload, store_id=STORE, organization_id=ORG, triggered_at=triggered_at)


async def test_product_and_variants_match_between_graphql_and_rest(
        client: ShopifyGraphQL, served: tuple[ShopifySandbox, Shop, str]) -> None:
    _, shop, _ = served
    pid = shop.product_ids()[3]
    data = await client.query(q.PRODUCTS_PAGE, {"first": 1, "query": f"id:{pid}", "withLocations": False})
    node = data["products"]["nodes"][0]
    gql_product = product_row(OWNER, node)
    gql_variants = [variant_row(OWNER, v, gql_product["id"]) for v in node["variants"]["nodes"]]

    rest = effect("products/update", shop.product(pid))
    assert rest.resource == "products" and rest.deletes == {} and rest.deleted_at is None
    assert typed(rest.writes["products"][0]) == typed(gql_product)
    assert [typed(r) for r in rest.writes["product_variants"]] == [typed(r) for r in gql_variants]
    assert gql_product["id"] == str(pid) and gql_product["status"] in ("active", "draft", "archived")
    assert isinstance(gql_variants[0]["price"], Decimal) and gql_variants[0]["inventory_item_id"] is not None
    assert "variants" not in gql_product["raw"]                          # raw: the node without its children
    assert "inventoryLevels" not in gql_variants[0]["raw"]["inventoryItem"]
    assert rest.writes["products"][0]["raw"]["id"] == pid                 # raw: the payload as received


async def test_customer_matches_except_aggregates_rest_lacks(
        client: ShopifyGraphQL, served: tuple[ShopifySandbox, Shop, str]) -> None:
    _, shop, _ = served
    # a customer with orders, so the GraphQL aggregates are not trivially empty
    ids = shop.customer_ids()
    rows = []
    for cid in ids:
        data = await client.query(q.CUSTOMERS_PAGE, {"first": 1, "query": f"id:{cid}"})
        rows.append((cid, customer_row(OWNER, data["customers"]["nodes"][0])))
    cid, gql = next((c, r) for c, r in rows if r["orders_count"])
    rest = effect("customers/update", shop.customer(cid)).writes["customers"][0]
    assert typed(rest, "orders_count", "total_spent") == typed(gql, "orders_count", "total_spent")
    assert gql["orders_count"] > 0 and isinstance(gql["total_spent"], Decimal) and gql["currency"] == "USD"
    assert rest["orders_count"] is None and rest["total_spent"] is None   # REST customer payloads lack them
    assert gql["default_address"] is not None and gql["default_address"]["country_code"]
    assert {r["accepts_marketing"] for _, r in rows} == {True, False}    # from emailMarketingConsent


async def test_order_line_items_and_fulfillments_match(
        client: ShopifyGraphQL, served: tuple[ShopifySandbox, Shop, str]) -> None:
    _, shop, _ = served
    refunded = next(o for o in shop.order_ids() if shop.order(o)["refunds"] and shop.order(o)["fulfillments"])
    for oid in (refunded, shop.order_ids()[0]):
        data = await client.query(q.ORDERS_PAGE, {"first": 1, "query": f"id:{oid}"})
        node = data["orders"]["nodes"][0]
        gql = order_row(OWNER, node)
        gql_lines = [line_item_row(OWNER, li, gql["id"], gql["source_updated_at"])
                     for li in node["lineItems"]["nodes"]]
        gql_fulfillments = [fulfillment_row(OWNER, f, gql["id"]) for f in node["fulfillments"]]
        rest = effect("orders/updated", shop.order(oid)).writes
        assert typed(rest["orders"][0]) == typed(gql)
        assert [typed(r) for r in rest["order_line_items"]] == [typed(r) for r in gql_lines]
        assert [typed(r) for r in rest.get("order_fulfillments", [])] == [typed(r) for r in gql_fulfillments]
    assert gql["order_number"] is not None and gql["financial_status"] is not None
    data = await client.query(q.ORDERS_PAGE, {"first": 1, "query": f"id:{refunded}"})
    row = order_row(OWNER, data["orders"]["nodes"][0])
    assert row["total_refunded"] > 0 and row["refunds_count"] == 1 and isinstance(row["total_price"], Decimal)
    assert gql_lines[0]["source_updated_at"] == gql["source_updated_at"]    # the order's version


async def test_inventory_level_webhook_matches_graphql_level(
        client: ShopifyGraphQL, served: tuple[ShopifySandbox, Shop, str]) -> None:
    _, shop, _ = served
    variant = shop.variant_ids()[2]
    location = shop.location_ids()[1]
    payload = shop.set_inventory(variant, location, 17)
    rest = effect("inventory_levels/update", payload)
    assert rest.resource == "products" and list(rest.writes) == ["inventory_levels"]
    data = await client.query(q.LEVELS_MORE, {"id": f"gid://shopify/InventoryItem/{payload['inventory_item_id']}",
                                              "first": 10})
    levels = [level_row(OWNER, lv, str(payload["inventory_item_id"]))
              for lv in data["inventoryItem"]["inventoryLevels"]["nodes"]]
    gql = next(lv for lv in levels if lv["location_id"] == str(location))
    assert typed(rest.writes["inventory_levels"][0], "on_hand") == typed(gql, "on_hand")
    assert gql["available"] == 17 and gql["on_hand"] is not None and gql["on_hand"] >= 17


def test_rows_have_exactly_the_table_columns(conn: psycopg.Connection[Any]) -> None:
    def columns(table: str) -> set[str]:
        # the columns a row carries: all but synced_at and the generated ones (computed by PostgreSQL)
        rows = conn.execute("select column_name from information_schema.columns where table_schema = 'shopsync' "
                            "and table_name = %s and column_name not in ('synced_at', 'source_observed_at')"  # stamped by the core
                                " and is_generated = 'NEVER'",
                            (table,)).fetchall()
        return {r["column_name"] for r in rows}

    gid = "gid://shopify/{}/1"
    money = {"shopMoney": {"amount": "1.00", "currencyCode": "USD"}}
    samples = {
        "products": product_row(OWNER, {"id": gid.format("Product")}),
        "product_variants": variant_row(OWNER, {"id": gid.format("ProductVariant")}, "1"),
        "inventory_levels": level_row(OWNER, {"location": {"id": gid.format("Location")}}, "5"),
        "customers": customer_row(OWNER, {"id": gid.format("Customer")}),
        "orders": order_row(OWNER, {"id": gid.format("Order"), "totalPriceSet": money}),
        "order_line_items": line_item_row(OWNER, {"id": gid.format("LineItem")}, "1", T),
        "order_fulfillments": fulfillment_row(OWNER, {"id": gid.format("Fulfillment")}, "1"),
    }
    for table, row in samples.items():
        assert set(row) == columns(table), table
    assert set(RESOURCE_TABLES["products"]) >= {"products", "product_variants", "inventory_levels",
                                                "inventory_locations"}


def test_delete_webhooks_and_their_version() -> None:
    gone = effect("products/delete", {"id": 8000000000042}, triggered_at=T)
    assert gone.resource == "products" and gone.deletes == {"products": ["8000000000042"]} and gone.deleted_at == T
    assert gone.writes == {}
    before = datetime.now(UTC)
    fallback = effect("orders/delete", {"id": 6000000000001})
    assert fallback.deletes == {"orders": ["6000000000001"]}
    assert fallback.deleted_at is not None and before <= fallback.deleted_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert effect("customers/delete", {"id": 7}, T).deletes == {"customers": ["7"]}
    assert set(WEBHOOK_TOPICS.values()) == {"products", "customers", "orders"} and len(WEBHOOK_TOPICS) == 10


def test_ids_from_gids_plain_and_escaped() -> None:
    assert legacy_id("gid://shopify/Product/123") == "123"
    assert legacy_id("gid:\\/\\/shopify\\/ProductVariant\\/45") == "45"   # as bulk JSONL escapes it
    assert legacy_id("gid://shopify/InventoryLevel/70000000001?inventory_item_id=5") == "70000000001"
    assert legacy_id(99) == "99"
    with pytest.raises(PermanentError, match="not a Shopify id"):
        legacy_id("gid://shopify/Product/abc")


@pytest.mark.parametrize(("topic", "payload", "message"), [
    ("products/frobnicate", {"id": 1}, "not a Shopify data webhook topic"),
    ("app/uninstalled", {"id": 1}, "not a Shopify data webhook topic"),
    ("products/update", ["not", "an", "object"], "not a JSON object"),
    ("products/update", {"title": "no id"}, "has no id"),
    ("customers/delete", {}, "has no id"),
    ("orders/updated", {"id": 5, "total_price": "twelve"}, "not a money amount"),
    ("orders/updated", {"id": 5, "updated_at": "yesterday"}, "not a timestamp"),
    ("inventory_levels/update", {"available": 3}, "inventory_item_id"),
    ("products/update", {"id": 1, "variants": [{"sku": "no id"}]}, "variant has no id"),
])
def test_bad_webhooks_fail_permanently_with_a_clear_message(topic: str, payload: Any, message: str) -> None:
    with pytest.raises(PermanentError, match=message):
        effect(topic, payload)


@pytest.mark.parametrize("line", [
    # a root line, Shopify's escaped slashes, nested objects and lists
    rb'{"id":"gid:\/\/shopify\/Product\/1","title":"A \"quoted\", \\ title","tags":["x"],"seo":{"t":null}}',
    # a child: __parentId last is cut off; its inventoryItem stays
    rb'{"id":"gid:\/\/shopify\/ProductVariant\/2","inventoryItem":{"id":"gid:\/\/shopify\/InventoryItem\/3"},'
    rb'"title":"x\",\"__parentId\":\"y","__parentId":"gid:\/\/shopify\/Product\/1"}',
])
def test_bulk_raw_is_the_line_itself_when_it_holds_what_raw_keeps(line: bytes) -> None:
    node = orjson.loads(line)
    raw = bulk_raw(line, node)
    assert isinstance(raw, orjson.Fragment)
    assert orjson.loads(orjson.dumps(raw)) == variant_row(OWNER, node, "1")["raw"]


@pytest.mark.parametrize("line", [
    rb'{"id":"gid:\/\/shopify\/ProductVariant\/2","__parentId":"gid:\/\/shopify\/Product\/1","title":"t"}',
    rb'{"id":"gid:\/\/shopify\/Product\/1","variants":{"edges":[]}}',
    rb'{"id":"gid:\/\/shopify\/ProductVariant\/2","inventoryItem":{"id":"x","inventoryLevels":[]},'
    rb'"__parentId":"gid:\/\/shopify\/Product\/1"}',
    rb'{"__parentId":"gid:\/\/shopify\/Product\/1"}',
])
def test_bulk_raw_falls_back_to_the_object_when_the_line_holds_more(line: bytes) -> None:
    # __parentId not last, an inline child connection (also inside the inventory item), nothing before it
    assert bulk_raw(line, orjson.loads(line)) is None
