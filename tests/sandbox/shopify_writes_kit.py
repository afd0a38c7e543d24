"""Shared set-up of the Shopify write-side tests: a served sandbox with a write-scoped token, a webhook receiver
subscribed to the flow topics, and the GraphQL documents a flow client sends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from sandbox.shopify import DEFAULT_SCOPES, WRITE_SCOPES, DatasetSpec, ShopifySandbox
from sandbox.shopify.state import Shop
from tests.sandbox.test_shopify_sandbox import CLIENT_ID, SHOP, Receiver, V, make, serve_receiver, served

SCOPES = DEFAULT_SCOPES + WRITE_SCOPES
TOPICS = ("ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED", "ORDERS_PAID", "FULFILLMENTS_CREATE",
          "FULFILLMENTS_UPDATE", "INVENTORY_LEVELS_UPDATE")

ORDER_CREATE = """mutation OrderCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    order {
      id legacyResourceId name createdAt sourceName sourceIdentifier tags note email
      customAttributes { key value }
      displayFinancialStatus displayFulfillmentStatus
      totalPriceSet { shopMoney { amount currencyCode } }
      shippingAddress { address1 city zip countryCodeV2 }
      lineItems(first: 50) { nodes { id sku quantity title variant { id } originalUnitPriceSet { shopMoney { amount } } } }
    }
    userErrors { field message code }
  }
}"""

ORDER_CANCEL = """mutation OrderCancel($orderId: ID!, $reason: OrderCancelReason!, $restock: Boolean!,
                     $refundMethod: OrderCancelRefundMethodInput, $notifyCustomer: Boolean, $staffNote: String) {
  orderCancel(orderId: $orderId, reason: $reason, restock: $restock, refundMethod: $refundMethod,
              notifyCustomer: $notifyCustomer, staffNote: $staffNote) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}"""

FULFILLMENT_ORDERS = """query FOs($id: ID!) {
  order(id: $id) {
    id name displayFulfillmentStatus cancelledAt cancelReason
    fulfillmentOrders(first: 5) {
      nodes {
        id status supportedActions { action } assignedLocation { name location { id } }
        lineItems(first: 20) { nodes { id remainingQuantity totalQuantity lineItem { id sku quantity variant { id } } } }
      }
    }
    fulfillments(first: 10) {
      id name status displayStatus location { id }
      trackingInfo(first: 10) { company number url }
      fulfillmentLineItems(first: 20) { nodes { id quantity lineItem { id sku } } }
    }
  }
}"""

FULFILLMENT_CREATE = """mutation FulfillmentCreate($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) {
    fulfillment {
      id name status displayStatus createdAt
      trackingInfo(first: 10) { company number url }
      fulfillmentLineItems(first: 100) { nodes { id quantity lineItem { id sku } } }
    }
    userErrors { field message }
  }
}"""

TRACK = """mutation Track($fulfillmentId: ID!, $trackingInfoInput: FulfillmentTrackingInput!, $notifyCustomer: Boolean) {
  fulfillmentTrackingInfoUpdate(fulfillmentId: $fulfillmentId, trackingInfoInput: $trackingInfoInput,
                                notifyCustomer: $notifyCustomer) {
    fulfillment { id status trackingInfo(first: 10) { company number url } }
    userErrors { field message }
  }
}"""

SET_QUANTITIES = """mutation SetQty($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup {
      id createdAt reason referenceDocumentUri
      changes(quantityNames: ["available", "on_hand"]) { name delta quantityAfterChange item { id } location { id } }
    }
    userErrors { code field message }
  }
}"""

ACTIVATE = """mutation Activate($inventoryItemId: ID!, $locationId: ID!, $available: Int, $key: String!) {
  inventoryActivate(inventoryItemId: $inventoryItemId, locationId: $locationId, available: $available)
      @idempotent(key: $key) {
    inventoryLevel { id location { id } quantities(names: ["available", "on_hand"]) { name quantity } }
    userErrors { field message }
  }
}"""

FIND = """query Find($q: String!) {
  orders(first: 10, query: $q, sortKey: CREATED_AT, reverse: true) {
    nodes { id name sourceIdentifier tags customAttributes { key value } cancelledAt }
  }
  ordersCount(query: $q) { count }
}"""


def gid(kind: str, legacy: int | str) -> str:
    return f"gid://shopify/{kind}/{legacy}"


@dataclass
class World:
    sandbox: ShopifySandbox
    shop: Shop
    token: str
    receiver: Receiver

    def post(self, query: str, variables: dict[str, Any] | None = None, *, version: str = V,
             timeout: float = 10.0) -> httpx.Response:
        return httpx.post(f"{self.sandbox.shop_url(SHOP)}/admin/api/{version}/graphql.json",
                          json={"query": query, "variables": variables or {}},
                          headers={"X-Shopify-Access-Token": self.token}, timeout=timeout)

    def gql(self, query: str, variables: dict[str, Any] | None = None, *, version: str = V) -> dict[str, Any]:
        resp = self.post(query, variables, version=version)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def hooks(self, topic: str) -> list[dict[str, Any]]:
        """Bodies delivered for ``topic`` so far (after the dispatcher went idle)."""
        assert self.sandbox.webhooks.wait_idle()
        import json

        with self.receiver.lock:
            return [json.loads(b) for h, b in self.receiver.received if h["x-shopify-topic"] == topic]

    def create_order(self, order: dict[str, Any], options: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.gql(ORDER_CREATE, {"order": order, "options": options})
        assert "errors" not in body, body
        payload: dict[str, Any] = body["data"]["orderCreate"]
        return payload

    def fulfillment_orders(self, order_id: str) -> dict[str, Any]:
        body = self.gql(FULFILLMENT_ORDERS, {"id": order_id})
        assert "errors" not in body, body
        order: dict[str, Any] = body["data"]["order"]
        return order


def level(shop: Shop, variant: int, location: int) -> dict[str, Any]:
    """The inventory level the in-process helper reads (it must be stocked)."""
    found = shop.inventory_level(variant, location)
    assert found is not None
    return found


def variant_line(variant: int, quantity: int) -> dict[str, Any]:
    return {"variantId": gid("ProductVariant", variant), "quantity": quantity}


def basic_order(tag: str, *lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"lineItems": list(lines), "tags": ["shopsync", tag], "sourceName": "shopsync",
            "sourceIdentifier": f"retailer-a:{tag}", **fields}


@contextmanager
def world(spec: DatasetSpec | None = None, **options: Any) -> Iterator[World]:
    sandbox, _app, shop = make(spec or DatasetSpec(products=20, customers=5, orders=10, locations=2), **options)
    receiver = Receiver()
    with served(sandbox), serve_receiver(receiver) as hooks:
        token = sandbox.issue_token(shop, CLIENT_ID, scopes=SCOPES)["access_token"]
        w = World(sandbox, shop, token, receiver)
        for topic in TOPICS:
            created = w.gql("""mutation S($topic: WebhookSubscriptionTopic!, $uri: URL!) {
              webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
                userErrors { message } } }""", {"topic": topic, "uri": f"{hooks}/hooks/{topic.lower()}"})
            assert created["data"]["webhookSubscriptionCreate"]["userErrors"] == []
        yield w


def wait_until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
