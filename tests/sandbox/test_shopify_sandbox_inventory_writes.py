"""The Shopify sandbox's inventory writes and write faults over real HTTP: inventorySetQuantities with
``@idempotent`` and ``changeFromQuantity``, inventoryActivate, productVariants by SKU, locations, and the fault
that commits a write and loses its answer."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
import pytest

from tests.sandbox.shopify_writes_kit import (
    ACTIVATE,
    ORDER_CREATE,
    SET_QUANTITIES,
    World,
    basic_order,
    gid,
    level,
    variant_line,
    wait_until,
    world,
)

NO_KEY = SET_QUANTITIES.replace(", $key: String!", "").replace(" @idempotent(key: $key)", "")


def item_of(w: World, variant: int) -> str:
    product = next(p for p in w.shop.product_ids() if any(v["id"] == variant for v in w.shop.product(p)["variants"]))
    item = next(v["inventory_item_id"] for v in w.shop.product(product)["variants"] if v["id"] == variant)
    return gid("InventoryItem", item)


def quantities(w: World, variant: int, location: int, quantity: int, change_from: Any = ...) -> dict[str, Any]:
    q: dict[str, Any] = {"inventoryItemId": item_of(w, variant), "locationId": gid("Location", location),
                         "quantity": quantity}
    if change_from is not ...:
        q["changeFromQuantity"] = change_from
    return q


def set_input(*qs: dict[str, Any], name: str = "available", reason: str = "correction") -> dict[str, Any]:
    return {"name": name, "reason": reason, "referenceDocumentUri": "gid://shopsync/SyncJob/1", "quantities": list(qs)}


def run_set(w: World, data: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    body = w.gql(SET_QUANTITIES, {"input": data, "key": key or str(uuid.uuid4())})
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["inventorySetQuantities"]
    return payload


def test_set_quantities_compare_and_swap_and_its_errors() -> None:
    with world() as w:
        shop = w.shop
        variant, other = shop.variant_ids()[0], shop.variant_ids()[1]
        loc0, loc1 = shop.location_ids()
        shop.set_stock(variant, loc0, 5, emit=False)
        on_hand = level(shop, variant, loc0)["on_hand"]

        done = run_set(w, set_input(quantities(w, variant, loc0, 12, 5)))
        assert done["userErrors"] == []
        group = done["inventoryAdjustmentGroup"]
        assert group["reason"] == "correction" and group["referenceDocumentUri"] == "gid://shopsync/SyncJob/1"
        assert {(c["name"], c["delta"], c["quantityAfterChange"]) for c in group["changes"]} == \
            {("available", 7, 12), ("on_hand", 7, on_hand + 7)}
        assert group["changes"][0]["location"] == {"id": gid("Location", loc0)}
        lvl = level(shop, variant, loc0)
        assert lvl["available"] == 12 and lvl["on_hand"] == on_hand + 7
        hook = w.hooks("inventory_levels/update")[-1]
        assert hook["available"] == 12 and hook["location_id"] == loc0
        assert hook["admin_graphql_api_id"].startswith(f"gid://shopify/InventoryLevel/{loc0}?inventory_item_id=")

        stale = run_set(w, set_input(quantities(w, variant, loc0, 3, 5)))
        assert stale["inventoryAdjustmentGroup"] is None
        assert stale["userErrors"] == [{"code": "CHANGE_FROM_QUANTITY_STALE",
                                        "field": ["input", "quantities", "0", "changeFromQuantity"],
                                        "message": "The changeFromQuantity value does not match persisted value."}]
        assert run_set(w, set_input(quantities(w, variant, loc0, 3, None)))["userErrors"] == []  # null: no check
        assert level(shop, variant, loc0)["available"] == 3

        # all or nothing: one bad quantity and the good one is not applied either
        mixed = run_set(w, set_input(quantities(w, other, loc1, 40, None), quantities(w, variant, loc0, 9, 8)))
        assert [e["code"] for e in mixed["userErrors"]] == ["CHANGE_FROM_QUANTITY_STALE"]
        assert level(shop, other, loc1)["available"] != 40

        codes = {
            "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR": set_input(quantities(w, variant, loc0, 1, None),
                                                                      quantities(w, variant, loc0, 2, None)),
            "INVALID_NAME": set_input(quantities(w, variant, loc0, 1, None), name="incoming"),
            "INVALID_REASON": set_input(quantities(w, variant, loc0, 1, None), reason="because"),
            "INVALID_QUANTITY_TOO_HIGH": set_input(quantities(w, variant, loc0, 2_000_000_000, None)),
            "INVALID_QUANTITY_NEGATIVE": set_input(quantities(w, variant, loc0, -1, None), name="on_hand"),
            "INVALID_INVENTORY_ITEM": set_input({**quantities(w, variant, loc0, 1, None),
                                                 "inventoryItemId": gid("InventoryItem", 1)}),
            "INVALID_LOCATION": set_input({**quantities(w, variant, loc0, 1, None), "locationId": gid("Location", 1)}),
        }
        for code, data in codes.items():
            refused = run_set(w, data)
            assert refused["inventoryAdjustmentGroup"] is None and [e["code"] for e in refused["userErrors"]] == [code]

        # not stocked at a location until inventoryActivate
        shop.unstock(other, loc1)
        not_stocked = run_set(w, set_input(quantities(w, other, loc1, 4, None)))
        assert not_stocked["userErrors"][0]["code"] == "ITEM_NOT_STOCKED_AT_LOCATION"
        read = w.gql("query L($i: ID!, $l: ID!) { inventoryItem(id: $i) { inventoryLevel(locationId: $l) { id } } }",
                     {"i": item_of(w, other), "l": gid("Location", loc1)})
        assert read["data"]["inventoryItem"]["inventoryLevel"] is None
        activate = {"inventoryItemId": item_of(w, other), "locationId": gid("Location", loc1), "available": 2}
        act = w.gql(ACTIVATE, {**activate, "key": str(uuid.uuid4())})["data"]["inventoryActivate"]
        assert act["userErrors"] == [] and act["inventoryLevel"]["quantities"][0] == {"name": "available", "quantity": 2}
        again = w.gql(ACTIVATE, {**activate, "key": str(uuid.uuid4())})["data"]["inventoryActivate"]
        assert again["inventoryLevel"] is None and again["userErrors"][0]["field"] == ["available"]
        assert run_set(w, set_input(quantities(w, other, loc1, 4, 2)))["userErrors"] == []

        # top-level refusals: more than 250 quantities, changeFromQuantity left out, no write_inventory
        many = [quantities(w, variant, loc0, 1, None)] * 251
        too_many = w.gql(SET_QUANTITIES, {"input": set_input(*many), "key": str(uuid.uuid4())})
        assert too_many["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
        omitted = w.gql(SET_QUANTITIES, {"input": set_input(quantities(w, variant, loc0, 1)), "key": "k-omitted"})
        assert omitted["data"]["inventorySetQuantities"] is None and "changeFromQuantity" in omitted["errors"][0]["message"]
        removed = w.gql(SET_QUANTITIES, {"input": set_input({**quantities(w, variant, loc0, 1), "compareQuantity": 3}),
                                         "key": "k-removed"})
        assert removed["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE"  # gone since 2026-04


def test_idempotent_directive_by_version_and_replay_mismatch_concurrency() -> None:
    with world() as w:
        shop = w.shop
        variant = shop.variant_ids()[2]
        loc0 = shop.location_ids()[0]
        shop.set_stock(variant, loc0, 10, emit=False)

        missing = w.gql(NO_KEY, {"input": set_input(quantities(w, variant, loc0, 1, None))})
        assert missing["data"]["inventorySetQuantities"] is None and "@idempotent" in missing["errors"][0]["message"]
        optional = w.gql(NO_KEY, {"input": set_input(quantities(w, variant, loc0, 11, None))}, version="2026-01")
        assert optional["data"]["inventorySetQuantities"]["userErrors"] == []
        undefined = w.gql(SET_QUANTITIES, {"input": set_input(quantities(w, variant, loc0, 1, None)), "key": "k"},
                          version="2025-10")
        assert undefined["errors"][0]["extensions"]["code"] == "undefinedDirective"
        legacy = w.gql(NO_KEY, {"input": set_input(quantities(w, variant, loc0, 1))}, version="2026-01")
        assert legacy["data"]["inventorySetQuantities"]["userErrors"][0]["code"] == "COMPARE_QUANTITY_REQUIRED"
        blank = w.gql(SET_QUANTITIES, {"input": set_input(quantities(w, variant, loc0, 1, None)), "key": "  "})
        assert blank["data"]["inventorySetQuantities"] is None

        # the same key and input: the first answer again, applied once
        hooks_before = len(w.hooks("inventory_levels/update"))
        data = set_input(quantities(w, variant, loc0, 20, 11))
        first = run_set(w, data, key="key-1")
        shop.set_stock(variant, loc0, 7, emit=False)  # someone else moves the stock meanwhile
        replay = run_set(w, data, key="key-1")
        assert replay == first and first["userErrors"] == []
        assert level(shop, variant, loc0)["available"] == 7  # not re-applied
        assert len(w.hooks("inventory_levels/update")) == hooks_before + 1
        mismatch = run_set(w, set_input(quantities(w, variant, loc0, 21, 7)), key="key-1")
        assert mismatch["inventoryAdjustmentGroup"] is None
        assert mismatch["userErrors"][0]["code"] == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
        # a literal key works as well as a variable one; the key belongs to one mutation
        literal = SET_QUANTITIES.replace(", $key: String!", "").replace("key: $key", 'key: "key-1"')
        again = w.gql(literal, {"input": data})["data"]["inventorySetQuantities"]
        assert again == first
        other_mutation = w.gql(ACTIVATE, {"inventoryItemId": item_of(w, variant), "locationId": gid("Location", loc0),
                                          "key": "key-1"})["data"]["inventoryActivate"]
        assert other_mutation["userErrors"][0]["message"].startswith("The same idempotency key")

        # while a first request is still running, the same key is IDEMPOTENCY_CONCURRENT_REQUEST
        w.sandbox.faults.slow_write_next(1, seconds=1.0, mutation="inventorySetQuantities")
        slow_data = set_input(quantities(w, variant, loc0, 30, 7))
        results: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: results.update(slow=run_set(w, slow_data, key="key-2")))
        thread.start()
        wait_until(lambda: any(k == "key-2" for _c, k in shop.writes.idempotency))
        concurrent = run_set(w, slow_data, key="key-2")
        assert concurrent["userErrors"][0]["code"] == "IDEMPOTENCY_CONCURRENT_REQUEST"
        thread.join(10)
        assert results["slow"]["userErrors"] == [] and level(shop, variant, loc0)["available"] == 30
        assert run_set(w, slow_data, key="key-2") == results["slow"]


def test_product_variants_by_sku_and_locations() -> None:
    with world() as w:
        shop = w.shop
        vids = shop.variant_ids()
        sku = shop.product(shop.product_ids()[3])["variants"][1]["sku"]
        doc = """query BySku($q: String!) { productVariants(first: 10, query: $q) {
            nodes { id sku barcode inventoryItem { id duplicateSkuCount } product { id } } } }"""
        found = w.gql(doc, {"q": f"sku:{sku}"})["data"]["productVariants"]["nodes"]
        assert [n["sku"] for n in found] == [sku] and found[0]["inventoryItem"]["duplicateSkuCount"] == 0
        assert w.gql(doc, {"q": f"sku:{sku.lower()}"})["data"]["productVariants"]["nodes"] == found
        assert w.gql(doc, {"q": "sku:NOPE-1"})["data"]["productVariants"]["nodes"] == []
        shop.update_variant(vids[0], sku="DUP 1")
        shop.update_variant(vids[7], sku="DUP 1")
        dups = w.gql(doc, {"q": "sku:'DUP 1'"})["data"]["productVariants"]["nodes"]
        assert [n["id"] for n in dups] == [gid("ProductVariant", vids[0]), gid("ProductVariant", vids[7])]
        assert {n["inventoryItem"]["duplicateSkuCount"] for n in dups} == {1}
        barcode = found[0]["barcode"]
        assert [n["sku"] for n in w.gql(doc, {"q": f"barcode:{barcode}"})["data"]["productVariants"]["nodes"]] == [sku]
        by_product = w.gql(doc, {"q": f"product_id:{shop.product_ids()[3]}"})["data"]["productVariants"]["nodes"]
        assert len(by_product) == 3 and sku in {n["sku"] for n in by_product}

        locations = w.gql("""{ locations(first: 50) { nodes { id legacyResourceId name isActive fulfillsOnlineOrders
            shipsInventory } pageInfo { hasNextPage } } }""")["data"]["locations"]
        assert [n["id"] for n in locations["nodes"]] == [gid("Location", j) for j in shop.location_ids()]
        assert locations["nodes"][0]["isActive"] is True and locations["pageInfo"]["hasNextPage"] is False


def test_lost_answer_commits_the_write_and_drops_or_times_out() -> None:
    with world() as w:
        shop = w.shop
        variant, loc0 = shop.variant_ids()[6], shop.location_ids()[0]
        order = basic_order("ss-lost-1", variant_line(variant, 1))
        w.sandbox.faults.lose_answer_next(1, mutation="orderCreate")
        assert w.gql("{ shop { id } }")["data"]["shop"]  # a query does not take the rule
        with pytest.raises(httpx.RemoteProtocolError):
            w.post(ORDER_CREATE, {"order": order})
        # the order exists, its webhook went out: the client must look it up, not create it again
        assert shop.count_orders(tag="ss-lost-1") == 1
        assert any(h["source_identifier"] == "retailer-a:ss-lost-1" for h in w.hooks("orders/create"))
        assert w.sandbox.counters["write_answers_lost"] == 1
        assert any(r.detail.get("write_fault") == "lost_answer:drop" for r in w.sandbox.request_log)
        assert w.create_order(order)["userErrors"] == []  # the rule is used up; a blind retry duplicates
        assert shop.count_orders(tag="ss-lost-1") == 2

        # the hanging kind: the client times out, the write is there
        w.sandbox.faults.lose_answer_next(1, mutation="orderCreate", how="hang", seconds=2.0)
        with pytest.raises(httpx.ReadTimeout):
            w.post(ORDER_CREATE, {"order": basic_order("ss-lost-2", variant_line(variant, 1))}, timeout=0.3)
        assert shop.count_orders(tag="ss-lost-2") == 1

        # a lost inventory answer + a retry with the same key: the stored answer, applied once
        shop.set_stock(variant, loc0, 4, emit=False)
        w.sandbox.faults.lose_answer_next(1, mutation=("inventorySetQuantities",))
        data = set_input(quantities(w, variant, loc0, 9, 4))
        with pytest.raises(httpx.RemoteProtocolError):
            w.post(SET_QUANTITIES, {"input": data, "key": "lost-key"})
        assert level(shop, variant, loc0)["available"] == 9
        retried = run_set(w, data, key="lost-key")
        assert retried["userErrors"] == [] and retried["inventoryAdjustmentGroup"]["changes"][0]["delta"] == 5

        # a throttled mutation never ran, so it does not use the rule up
        w.sandbox.faults.lose_answer_next(1, mutation="orderCreate")
        w.sandbox.bucket(shop, w.sandbox.tokens[w.token].client_id).drain()
        throttled = w.gql(ORDER_CREATE, {"order": basic_order("ss-throttled", variant_line(variant, 1))})
        assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED" and "data" not in throttled
        assert shop.count_orders(tag="ss-throttled") == 0
        w.sandbox.throttle = False
        with pytest.raises(httpx.RemoteProtocolError):
            w.post(ORDER_CREATE, {"order": basic_order("ss-throttled", variant_line(variant, 1))})
        assert shop.count_orders(tag="ss-throttled") == 1


def test_a_share_of_writes_lose_their_answer_and_every_one_commits() -> None:
    with world(throttle=False) as w:
        variant = w.shop.variant_ids()[8]
        w.sandbox.faults.lose_answers(0.3, mutation="orderCreate")
        lost = 0
        for n in range(20):
            try:
                resp = w.post(ORDER_CREATE, {"order": basic_order(f"ss-share-{n}", variant_line(variant, 1))})
                assert resp.json()["data"]["orderCreate"]["userErrors"] == []
            except httpx.RemoteProtocolError:
                lost += 1
        assert 0 < lost < 20 and w.sandbox.counters["write_answers_lost"] == lost
        assert all(w.shop.count_orders(tag=f"ss-share-{n}") == 1 for n in range(20))
        assert len(w.shop.created_orders()) == 20
        w.sandbox.faults.clear()
        assert w.create_order(basic_order("ss-after", variant_line(variant, 1)))["userErrors"] == []
