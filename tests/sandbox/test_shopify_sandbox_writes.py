"""The Shopify sandbox's write side over real HTTP: orderCreate, order search, orderCancel, fulfillment orders,
fulfillmentCreate and tracking updates — with their userErrors and webhooks."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from sandbox.shopify import DEFAULT_SCOPES, DatasetSpec
from tests.sandbox.shopify_writes_kit import (
    FIND,
    FULFILLMENT_CREATE,
    ORDER_CANCEL,
    ORDER_CREATE,
    TRACK,
    basic_order,
    gid,
    level,
    variant_line,
    world,
)
from tests.sandbox.test_shopify_sandbox import CLIENT_ID, SHOP


def test_order_create_is_a_real_order_found_by_tag_and_source_identifier() -> None:
    with world() as w:
        shop = w.shop
        variant = shop.variant_ids()[0]
        price = shop.product(shop.product_ids()[0])["variants"][0]["price"]
        order = basic_order(
            "ss-ord-7c1f0e2a", variant_line(variant, 2),
            {"title": "Gift wrap", "sku": "WRAP-1", "quantity": 1,
             "priceSet": {"shopMoney": {"amount": "3.50", "currencyCode": "USD"}}},
            email="buyer@example.com", phone="+4915112345678", note="Imported from retailer-a #1042",
            customAttributes=[{"key": "shopsync_source_order", "value": "retailer-a:gid://shopify/Order/555"}],
            financialStatus="PAID", processedAt="2026-01-03T09:12:00Z",
            shippingAddress={"firstName": "A", "lastName": "B", "address1": "Str 1", "city": "Berlin",
                             "zip": "10115", "countryCode": "DE"})
        order["sourceIdentifier"] = "retailer-a:555"
        created = w.create_order(order)
        assert created["userErrors"] == []
        made = created["order"]
        assert made["name"].startswith("#") and made["sourceIdentifier"] == "retailer-a:555"
        assert made["tags"] == ["shopsync", "ss-ord-7c1f0e2a"] and made["sourceName"] == "shopsync"
        assert made["customAttributes"] == [{"key": "shopsync_source_order",
                                             "value": "retailer-a:gid://shopify/Order/555"}]
        assert made["displayFinancialStatus"] == "PAID" and made["displayFulfillmentStatus"] == "UNFULFILLED"
        assert made["shippingAddress"] == {"address1": "Str 1", "city": "Berlin", "zip": "10115", "countryCodeV2": "DE"}
        first, wrap = made["lineItems"]["nodes"]
        assert first["variant"] == {"id": gid("ProductVariant", variant)} and first["quantity"] == 2
        assert first["originalUnitPriceSet"]["shopMoney"]["amount"] == price  # the price comes from the variant
        assert wrap["variant"] is None and wrap["sku"] == "WRAP-1" and wrap["title"] == "Gift wrap"
        total = f"{2 * float(price) + 3.5:.2f}"
        assert made["totalPriceSet"]["shopMoney"] == {"amount": total, "currencyCode": "USD"}

        # the existing read paths see it: by id, by search (tag, quoted and escaped source_identifier), counts
        by_id = w.gql("query O($id: ID!) { order(id: $id) { id note email processedAt } }", {"id": made["id"]})
        assert by_id["data"]["order"] == {"id": made["id"], "note": "Imported from retailer-a #1042",
                                          "email": "buyer@example.com", "processedAt": "2026-01-03T09:12:00Z"}
        for q in ("tag:ss-ord-7c1f0e2a", "source_identifier:'retailer-a:555'", "source_identifier:retailer-a\\:555",
                  "tag:ss-ord-7c1f0e2a source_name:shopsync", f"name:{made['name']}"):
            found = w.gql(FIND, {"q": q})["data"]
            assert [n["id"] for n in found["orders"]["nodes"]] == [made["id"]], q
            assert found["ordersCount"]["count"] == 1
        assert w.gql(FIND, {"q": "tag:ss-ord-7c1f0e2a tag_not:shopsync"})["data"]["ordersCount"]["count"] == 0
        assert w.gql(FIND, {"q": "tag:nobody-has-this"})["data"]["orders"]["nodes"] == []

        # bulk exports include it, filtered by the same search
        run = w.gql("mutation R($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } "
                    "userErrors { message } } }",
                    {"q": '{ orders(query: "tag:ss-ord-7c1f0e2a") { edges { node { id sourceIdentifier tags } } } }'})
        assert run["data"]["bulkOperationRunQuery"]["userErrors"] == []
        deadline = time.monotonic() + 20
        while (op := w.gql("{ currentBulkOperation { status url } }")["data"]["currentBulkOperation"])["status"] \
                != "COMPLETED":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        lines = [json.loads(line) for line in httpx.get(op["url"]).text.splitlines()]
        assert lines == [{"id": made["id"], "sourceIdentifier": "retailer-a:555",
                          "tags": ["shopsync", "ss-ord-7c1f0e2a"]}]

        # webhooks: orders/create (and orders/paid) carry the REST order
        hook = w.hooks("orders/create")[-1]
        assert hook["admin_graphql_api_id"] == made["id"] and hook["tags"] == "shopsync, ss-ord-7c1f0e2a"
        assert hook["source_identifier"] == "retailer-a:555" and hook["source_name"] == "shopsync"
        assert hook["note_attributes"] == [{"name": "shopsync_source_order",
                                            "value": "retailer-a:gid://shopify/Order/555"}]
        assert [li["sku"] for li in hook["line_items"]] == [first["sku"], "WRAP-1"]
        assert w.hooks("orders/paid")[-1]["id"] == int(made["legacyResourceId"])

        # the in-process helpers
        assert [o["admin_graphql_api_id"] for o in shop.created_orders()] == [made["id"]]
        assert shop.count_orders(tag="ss-ord-7c1f0e2a") == 1
        assert shop.count_orders(source_identifier="retailer-a:555") == 1


def test_identical_calls_make_two_orders_and_bad_input_makes_none() -> None:
    with world() as w:
        variant = w.shop.variant_ids()[1]
        order = basic_order("ss-ord-twice", variant_line(variant, 1), name="#R-1042")
        first, second = w.create_order(order), w.create_order(order)
        assert first["userErrors"] == second["userErrors"] == []
        assert first["order"]["id"] != second["order"]["id"]  # no idempotency key: two orders
        assert first["order"]["name"] == second["order"]["name"] == "#R-1042"  # duplicate names are accepted
        assert w.shop.count_orders(tag="ss-ord-twice") == 2
        assert len(w.hooks("orders/create")) == 2
        # a custom line may name its product: no variant, and the order reads back
        product = w.shop.product_ids()[2]
        custom = w.create_order(basic_order("ss-custom", {"productId": gid("Product", product), "title": "Engraving",
                                                          "quantity": 1}))
        assert custom["userErrors"] == [] and custom["order"]["lineItems"]["nodes"][0]["variant"] is None
        read = w.gql("query O($id: ID!) { order(id: $id) { lineItems(first: 5) { nodes { product { id } "
                     "variant { id } } } } }", {"id": custom["order"]["id"]})
        assert read["data"]["order"]["lineItems"]["nodes"] == [{"product": {"id": gid("Product", product)},
                                                                "variant": None}]

        before = w.shop.count_orders()
        cases = [
            (basic_order("bad", {"variantId": gid("ProductVariant", 1), "quantity": 1}),
             ["order", "lineItems", "0", "variantId"], "INVALID"),
            (basic_order("bad", variant_line(variant, 0)), ["order", "lineItems", "0", "quantity"], "INVALID"),
            (basic_order("bad", {"quantity": 1, "sku": "X"}), ["order", "lineItems", "0", "title"], "INVALID"),
            (basic_order("bad", variant_line(variant, 1), shippingAddress={"address1": "1 Main", "city": "NYC",
                                                                           "countryCode": "US", "provinceCode": "ZZ"}),
             ["order", "shippingAddress", "provinceCode"], "INVALID"),
            (basic_order("bad", variant_line(variant, 1), billingAddress={"countryCode": "US", "zip": "ABC"}),
             ["order", "billingAddress", "zip"], "INVALID"),
            (basic_order("bad", variant_line(variant, 1), email="not-an-email"), ["order", "email"], "INVALID"),
            (basic_order("bad", variant_line(variant, 1), processedAt="2099-01-01T00:00:00Z"),
             ["order", "processedAt"], "PROCESSED_AT_INVALID"),
            (basic_order("bad"), ["order", "lineItems"], "INVALID"),
        ]
        for bad, field, code in cases:
            refused = w.create_order(bad)
            assert refused["order"] is None, field
            assert any(e["field"] == field and e["code"] == code and e["message"] for e in refused["userErrors"]), \
                (field, refused["userErrors"])
        # type errors are GraphQL errors, as Shopify's variable coercion gives them
        for bad_order, bad_options, where in (
                (basic_order("bad", variant_line(variant, 1), shippingAddress={"countryCode": "XX"}), None,
                 "shippingAddress.countryCode"),
                (basic_order("bad", variant_line(variant, 1)), {"inventoryBehavior": "BYPASS"}, "inventoryBehavior"),
                (basic_order("bad", {"variantId": gid("ProductVariant", variant)}), None, "lineItems.0.quantity")):
            body = w.gql(ORDER_CREATE, {"order": bad_order, "options": bad_options})
            assert body["data"]["orderCreate"] is None
            assert body["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE" and where in body["errors"][0]["message"]
        assert w.shop.count_orders() == before
        # without write_orders: ACCESS_DENIED
        read_only = w.sandbox.issue_token(w.shop, CLIENT_ID, scopes=DEFAULT_SCOPES)["access_token"]
        resp = httpx.post(w.sandbox.graphql_url(SHOP), json={"query": ORDER_CREATE, "variables": {"order": order}},
                          headers={"X-Shopify-Access-Token": read_only})
        assert resp.json()["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"


def test_inventory_behaviour_bypass_decrement_and_oversell() -> None:
    with world() as w:
        shop = w.shop
        variant = shop.variant_ids()[3]
        loc0, loc1 = shop.location_ids()
        shop.update_variant(variant, inventory_policy="DENY")
        shop.set_stock(variant, loc0, 3)
        shop.set_stock(variant, loc1, 10)
        committed = level(shop, variant, loc0)["committed"]

        w.create_order(basic_order("ss-bypass", variant_line(variant, 2)))  # BYPASS is the default
        assert level(shop, variant, loc0)["available"] == 3

        obey = {"inventoryBehaviour": "DECREMENT_OBEYING_POLICY"}
        made = w.create_order(basic_order("ss-obey", variant_line(variant, 2)), obey)["order"]
        lvl = level(shop, variant, loc0)
        assert lvl["available"] == 1 and lvl["committed"] == committed + 2
        fos = shop.fulfillment_orders(made["id"])
        assert [fo["location_id"] for fo in fos] == [gid("Location", loc0)]
        hook = w.hooks("inventory_levels/update")[-1]
        assert hook["available"] == 1 and hook["location_id"] == loc0

        # loc0 cannot cover 5 but loc1 can: the line goes there
        made = w.create_order(basic_order("ss-obey-2", variant_line(variant, 5)), obey)["order"]
        assert [fo["location_id"] for fo in shop.fulfillment_orders(made["id"])] == [gid("Location", loc1)]
        assert level(shop, variant, loc1)["available"] == 5

        # nobody can cover 50 of a DENY variant: refused, nothing taken
        refused = w.create_order(basic_order("ss-oversell", variant_line(variant, 50)), obey)
        assert refused["order"] is None and refused["userErrors"][0]["code"] == "INVENTORY_CLAIM_FAILED"
        assert level(shop, variant, loc1)["available"] == 5
        assert shop.count_orders(tag="ss-oversell") == 0
        # ignoring the policy oversells at the first location that stocks it (available goes negative)
        w.create_order(basic_order("ss-ignore", variant_line(variant, 8)),
                       {"inventoryBehaviour": "DECREMENT_IGNORING_POLICY"})
        assert level(shop, variant, loc0)["available"] == 1 - 8
        # CONTINUE variants may be oversold even when obeying the policy
        shop.update_variant(variant, inventory_policy="CONTINUE")
        assert w.create_order(basic_order("ss-continue", variant_line(variant, 50)), obey)["userErrors"] == []


def test_order_cancel_restocks_and_refuses_a_second_cancel() -> None:
    with world() as w:
        shop = w.shop
        variant = shop.variant_ids()[2]
        loc0 = shop.location_ids()[0]
        shop.set_stock(variant, loc0, 20)
        shop.set_stock(variant, shop.location_ids()[1], 0)
        made = w.create_order(basic_order("ss-cancel", variant_line(variant, 4), financialStatus="PAID"),
                              {"inventoryBehaviour": "DECREMENT_OBEYING_POLICY"})["order"]
        assert level(shop, variant, loc0)["available"] == 16
        args = {"orderId": made["id"], "reason": "CUSTOMER", "restock": True,
                "refundMethod": {"originalPaymentMethodsRefund": True}, "notifyCustomer": False,
                "staffNote": "duplicate from retailer"}
        cancelled = w.gql(ORDER_CANCEL, args)["data"]["orderCancel"]
        assert cancelled["orderCancelUserErrors"] == [] and cancelled["job"]["id"].startswith("gid://shopify/Job/")
        job = w.gql("query J($id: ID!) { job(id: $id) { id done } }", {"id": cancelled["job"]["id"]})
        assert job["data"]["job"]["done"] is True
        order = w.fulfillment_orders(made["id"])
        assert order["cancelledAt"] and order["cancelReason"] == "CUSTOMER"
        assert [fo["status"] for fo in order["fulfillmentOrders"]["nodes"]] == ["CANCELLED"]
        assert order["fulfillmentOrders"]["nodes"][0]["supportedActions"] == []
        assert level(shop, variant, loc0)["available"] == 20
        hook = w.hooks("orders/cancelled")[-1]
        assert hook["id"] == int(made["legacyResourceId"]) and hook["cancel_reason"] == "customer"
        assert hook["financial_status"] == "refunded"
        assert any(h["id"] == hook["id"] and h["cancelled_at"] for h in w.hooks("orders/updated"))

        again = w.gql(ORDER_CANCEL, args)["data"]["orderCancel"]
        assert again["job"] is None and again["orderCancelUserErrors"][0]["code"] == "INVALID"
        unknown = w.gql(ORDER_CANCEL, {**args, "orderId": gid("Order", 1)})["data"]["orderCancel"]
        assert unknown["orderCancelUserErrors"][0]["code"] == "NOT_FOUND"
        missing = w.gql("mutation { orderCancel(orderId: \"gid://shopify/Order/1\") { job { id } } }")
        assert missing["errors"][0]["extensions"]["code"] == "missingRequiredArguments"
        assert "reason, restock" in missing["errors"][0]["message"]
        fo = order["fulfillmentOrders"]["nodes"][0]
        refused = w.gql(FULFILLMENT_CREATE, {"fulfillment": {"lineItemsByFulfillmentOrder": [
            {"fulfillmentOrderId": fo["id"]}]}})["data"]["fulfillmentCreate"]
        assert refused["fulfillment"] is None and "CREATE_FULFILLMENT" in refused["userErrors"][0]["message"]


def test_partial_fulfillments_with_several_tracking_numbers_then_tracking_update() -> None:
    with world() as w:
        shop = w.shop
        v1, v2 = shop.variant_ids()[4], shop.variant_ids()[5]
        made = w.create_order(basic_order("ss-ship", variant_line(v1, 3), variant_line(v2, 1)))["order"]
        order = w.fulfillment_orders(made["id"])
        (fo,) = order["fulfillmentOrders"]["nodes"]
        assert fo["status"] == "OPEN" and {"action": "CREATE_FULFILLMENT"} in fo["supportedActions"]
        assert fo["assignedLocation"]["location"]["id"] == gid("Location", shop.location_ids()[0])
        line1, line2 = fo["lineItems"]["nodes"]
        assert (line1["remainingQuantity"], line1["totalQuantity"]) == (3, 3)
        assert line1["lineItem"]["variant"] == {"id": gid("ProductVariant", v1)}
        assert order["fulfillments"] == [] and order["displayFulfillmentStatus"] == "UNFULFILLED"

        def fulfil(items: list[dict[str, Any]] | None, tracking: dict[str, Any] | None = None) -> dict[str, Any]:
            group: dict[str, Any] = {"fulfillmentOrderId": fo["id"]}
            if items is not None:
                group["fulfillmentOrderLineItems"] = items
            spec: dict[str, Any] = {"lineItemsByFulfillmentOrder": [group], "notifyCustomer": True}
            if tracking:
                spec["trackingInfo"] = tracking
            result: dict[str, Any] = w.gql(FULFILLMENT_CREATE, {"fulfillment": spec})["data"]["fulfillmentCreate"]
            return result

        tracking = {"company": "DHL Express", "numbers": ["JD0001", "JD0002"],
                    "urls": ["https://track.example/JD0001"]}
        first = fulfil([{"id": line1["id"], "quantity": 2}], tracking)
        assert first["userErrors"] == []
        made_f = first["fulfillment"]
        assert made_f["status"] == "SUCCESS" and made_f["name"] == f"{made['name']}.1"
        assert made_f["trackingInfo"] == [
            {"company": "DHL Express", "number": "JD0001", "url": "https://track.example/JD0001"},
            {"company": "DHL Express", "number": "JD0002", "url": "https://www.dhl.com/track?id=JD0002"}]
        assert [n["quantity"] for n in made_f["fulfillmentLineItems"]["nodes"]] == [2]
        hook = w.hooks("fulfillments/create")[-1]
        assert hook["tracking_numbers"] == ["JD0001", "JD0002"] and hook["order_id"] == int(made["legacyResourceId"])
        assert [(li["id"], li["quantity"]) for li in hook["line_items"]] == \
            [(int(line1["lineItem"]["id"].rsplit("/", 1)[1]), 2)]
        assert hook["notify_customer"] is True

        after = w.fulfillment_orders(made["id"])
        assert after["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
        fo_after = after["fulfillmentOrders"]["nodes"][0]
        assert fo_after["status"] == "IN_PROGRESS"
        assert [n["remainingQuantity"] for n in fo_after["lineItems"]["nodes"]] == [1, 1]

        # more than remains, a line that is not in the fulfillment order: refused, nothing changes
        over = fulfil([{"id": line1["id"], "quantity": 2}])
        assert over["fulfillment"] is None and over["userErrors"] == [
            {"field": ["fulfillment", "lineItemsByFulfillmentOrder", "0", "fulfillmentOrderLineItems", "0", "quantity"],
             "message": over["userErrors"][0]["message"]}]
        assert "remaining" in over["userErrors"][0]["message"]
        stranger = fulfil([{"id": gid("FulfillmentOrderLineItem", 1), "quantity": 1}])
        assert stranger["fulfillment"] is None
        assert [n["remainingQuantity"] for n in w.fulfillment_orders(made["id"])["fulfillmentOrders"]["nodes"][0]
                ["lineItems"]["nodes"]] == [1, 1]

        # a held fulfillment order cannot be fulfilled; released, the rest goes (items omitted: all that remains)
        shop.hold_fulfillment_order(fo["id"])
        held = fulfil(None)
        assert held["fulfillment"] is None and "CREATE_FULFILLMENT" in held["userErrors"][0]["message"]
        shop.release_fulfillment_order(fo["id"])
        rest = fulfil(None, {"company": "UPS", "number": "1Z999"})
        assert rest["userErrors"] == []
        done = w.fulfillment_orders(made["id"])
        assert done["displayFulfillmentStatus"] == "FULFILLED"
        closed = done["fulfillmentOrders"]["nodes"][0]
        assert closed["status"] == "CLOSED" and closed["supportedActions"] == []
        assert [f["name"] for f in done["fulfillments"]] == [f"{made['name']}.1", f"{made['name']}.2"]
        second = done["fulfillments"][1]
        assert second["trackingInfo"] == [{"company": "UPS", "number": "1Z999",
                                           "url": "https://www.ups.com/track?tracknum=1Z999"}]
        assert sorted(n["quantity"] for n in second["fulfillmentLineItems"]["nodes"]) == [1, 1]
        assert second["location"] == {"id": gid("Location", shop.location_ids()[0])}
        assert fulfil(None)["fulfillment"] is None  # a CLOSED fulfillment order
        assert w.hooks("orders/updated")[-1]["fulfillment_status"] == "fulfilled"

        # tracking update replaces the numbers and sends fulfillments/update
        updated = w.gql(TRACK, {"fulfillmentId": made_f["id"], "notifyCustomer": True,
                                "trackingInfoInput": {"company": "FedEx", "numbers": ["F1", "F2", "F3"]}})
        payload = updated["data"]["fulfillmentTrackingInfoUpdate"]
        assert payload["userErrors"] == []
        assert [t["number"] for t in payload["fulfillment"]["trackingInfo"]] == ["F1", "F2", "F3"]
        hook = w.hooks("fulfillments/update")[-1]
        assert hook["tracking_numbers"] == ["F1", "F2", "F3"] and hook["tracking_company"] == "FedEx"
        reread = w.fulfillment_orders(made["id"])["fulfillments"][0]
        assert [t["number"] for t in reread["trackingInfo"]] == ["F1", "F2", "F3"]
        missing = w.gql(TRACK, {"fulfillmentId": gid("Fulfillment", 42), "trackingInfoInput": {"number": "x"}})
        assert missing["data"]["fulfillmentTrackingInfoUpdate"]["userErrors"][0]["field"] == ["fulfillmentId"]


def test_generated_orders_get_fulfillment_orders_and_one_call_spans_one_order() -> None:
    with world(DatasetSpec(products=20, customers=5, orders=40, locations=2)) as w:
        shop = w.shop
        fulfilled = unfulfilled = None
        for oid in shop.order_ids():
            status = shop.order(oid)["fulfillment_status"]
            if status == "fulfilled" and fulfilled is None:
                fulfilled = oid
            if status is None and not shop.order(oid)["cancelled_at"] and unfulfilled is None:
                unfulfilled = oid
        assert fulfilled is not None and unfulfilled is not None
        done = w.fulfillment_orders(gid("Order", fulfilled))["fulfillmentOrders"]["nodes"]
        assert {fo["status"] for fo in done} == {"CLOSED"}
        assert all(n["remainingQuantity"] == 0 for fo in done for n in fo["lineItems"]["nodes"])
        open_fo = w.fulfillment_orders(gid("Order", unfulfilled))["fulfillmentOrders"]["nodes"][0]
        assert open_fo["status"] == "OPEN"
        ours = w.create_order(basic_order("ss-two", variant_line(shop.variant_ids()[0], 1)))["order"]
        our_fo = w.fulfillment_orders(ours["id"])["fulfillmentOrders"]["nodes"][0]
        both = w.gql(FULFILLMENT_CREATE, {"fulfillment": {"lineItemsByFulfillmentOrder": [
            {"fulfillmentOrderId": open_fo["id"]}, {"fulfillmentOrderId": our_fo["id"]}]}})
        errors = both["data"]["fulfillmentCreate"]["userErrors"]
        assert any("same order" in e["message"] for e in errors)
        one = w.gql(FULFILLMENT_CREATE, {"fulfillment": {"lineItemsByFulfillmentOrder": [
            {"fulfillmentOrderId": open_fo["id"]}]}})["data"]["fulfillmentCreate"]
        assert one["userErrors"] == [] and shop.order(unfulfilled)["fulfillment_status"] == "fulfilled"
