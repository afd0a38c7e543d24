"""Fulfillment orders: one per location an order's lines are assigned to, each line with what remains to ship.

``orderCreate`` makes them with the order; an order from the generated dataset gets its fulfillment orders the
first time anything asks (a fulfilled one's are CLOSED with nothing remaining). ``supportedActions`` follow the
status: OPEN and IN_PROGRESS fulfillment orders at a merchant location can be fulfilled (CREATE_FULFILLMENT);
CLOSED, CANCELLED and ON_HOLD ones cannot. Read as ``Order.fulfillmentOrders`` (a connection, also in bulk
exports) and ``fulfillmentOrder(id:)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sandbox.shopify.clock import format_gql
from sandbox.shopify.dataset import INVENTORY_ITEM_BASE, VARIANT_BASE
from sandbox.shopify.nodes import ConnField, NodeBuilder, NodeType, TypedNode, gid, list_connection
from sandbox.shopify.writes.model import FO_LINE_BASE, FULFILLMENT_ORDER_BASE, FulfillmentOrder, FulfillmentOrderLine

if TYPE_CHECKING:
    from sandbox.shopify.state import Shop

__all__ = ["create_for_order", "default_location", "ensure", "fulfillment_order_node", "page",
           "supported_actions", "views"]


def default_location(shop: Shop) -> int:
    """The first active location (where Shopify would route a line nothing else decides)."""
    return next((j for j, loc in enumerate(shop.catalog.locations) if loc["active"]), 0)


def _new(shop: Shop, o: int, j: int, lines: list[tuple[int, int, int]], at_us: int) -> FulfillmentOrder:
    store = shop.writes
    fo = FulfillmentOrder(store.next_id(FULFILLMENT_ORDER_BASE), o, j, "OPEN",
                          [FulfillmentOrderLine(store.next_id(FO_LINE_BASE), li_id, total, remaining)
                           for li_id, total, remaining in lines], at_us, at_us)
    fo.settle()
    store.fo_by_id[fo.id] = fo
    return fo


def create_for_order(shop: Shop, o: int, line_items: list[dict[str, Any]], at_us: int) -> list[FulfillmentOrder]:
    """The fulfillment orders of a new order: its lines grouped by their assigned location."""
    groups: dict[int, list[tuple[int, int, int]]] = {}
    for li in line_items:
        qty = int(li["quantity"])
        groups.setdefault(int(li["location_index"]), []).append((int(li["id"]), qty, qty))
    fos = [_new(shop, o, j, lines, at_us) for j, lines in sorted(groups.items())]
    shop.writes.fulfillment_orders[o] = fos
    return fos


def ensure(shop: Shop, o: int, rec: dict[str, Any] | None = None) -> list[FulfillmentOrder]:
    """An order's fulfillment orders, made on first use for an order of the generated dataset."""
    found = shop.writes.fulfillment_orders.get(o)
    if found is not None:
        return found
    rec = rec if rec is not None else shop.catalog.order(o)
    fulfilled = rec["fulfillment_status"] == "FULFILLED"
    groups: dict[int, list[tuple[int, int, int]]] = {}
    for li in rec["line_items"]:
        qty = int(li["quantity"])
        done = int(li.get("fulfilled_quantity", qty if fulfilled else 0))
        j = int(li.get("location_index", default_location(shop)))
        groups.setdefault(j, []).append((int(li["id"]), qty, max(qty - done, 0)))
    fos = [_new(shop, o, j, lines, int(rec["created_us"])) for j, lines in sorted(groups.items())]
    if rec["cancelled_us"]:
        for fo in fos:
            fo.status = "CANCELLED"
    shop.writes.fulfillment_orders[o] = fos
    return fos


def supported_actions(fo: FulfillmentOrder) -> list[str]:
    if fo.status in ("OPEN", "IN_PROGRESS"):
        actions = ["CREATE_FULFILLMENT", "MOVE", "HOLD"]
        return actions + ["SPLIT"] if sum(ln.remaining for ln in fo.lines) > 1 else actions
    if fo.status == "ON_HOLD":
        return ["RELEASE_HOLD", "HOLD", "MOVE"]
    return []


# --- nodes --------------------------------------------------------------------------------------------------

class _FO:
    __slots__ = ("b", "by_line", "fo", "rec")

    def __init__(self, b: NodeBuilder, fo: FulfillmentOrder, rec: dict[str, Any]) -> None:
        self.b = b
        self.fo = fo
        self.rec = rec
        self.by_line = {int(li["id"]): li for li in rec["line_items"]}


class _FOLine:
    __slots__ = ("b", "li", "ln", "rec")

    def __init__(self, c: _FO, ln: FulfillmentOrderLine) -> None:
        self.b = c.b
        self.ln = ln
        self.rec = c.rec
        self.li: dict[str, Any] = c.by_line.get(ln.line_item_id) or {}


def _assigned(c: _FO) -> dict[str, Any] | None:
    locations = c.b.catalog.locations
    if not 0 <= c.fo.location_index < len(locations):
        return None
    loc = locations[c.fo.location_index]
    return {"__typename": "FulfillmentOrderAssignedLocation", "name": loc["name"], "address1": loc["address1"],
            "city": loc["city"], "countryCode": loc["country_code"], "province": loc["province_code"],
            "zip": loc["zip"], "location": {"__typename": "Location", "id": gid("Location", loc["id"]),
                                            "name": loc["name"]}}


def _variant(c: _FOLine) -> dict[str, Any] | None:
    vid = c.li.get("variant_id")
    return {"__typename": "ProductVariant", "id": gid("ProductVariant", vid)} if vid else None


def _item_id(c: _FOLine) -> str | None:
    vid = c.li.get("variant_id")
    return gid("InventoryItem", INVENTORY_ITEM_BASE + int(vid) - VARIANT_BASE) if vid else None


FO_LINE = NodeType("FulfillmentOrderLineItem", {
    "id": lambda c: gid("FulfillmentOrderLineItem", c.ln.id),
    "remainingQuantity": lambda c: c.ln.remaining,
    "totalQuantity": lambda c: c.ln.total,
    "sku": lambda c: c.li.get("sku"),
    "productTitle": lambda c: c.li.get("title"),
    "variantTitle": lambda c: c.li.get("variant_title"),
    "variant": _variant,
    "inventoryItemId": _item_id,
    "lineItem": lambda c: c.b.line_item(c.li, c.rec) if c.li else None,
})

FULFILLMENT_ORDER = NodeType("FulfillmentOrder", {
    "id": lambda c: gid("FulfillmentOrder", c.fo.id),
    "status": lambda c: c.fo.status,
    "requestStatus": lambda c: "UNSUBMITTED",
    "supportedActions": lambda c: [{"__typename": "FulfillmentOrderSupportedAction", "action": a, "externalUrl": None}
                                   for a in supported_actions(c.fo)],
    "assignedLocation": _assigned,
    "orderId": lambda c: gid("Order", c.rec["id"]),
    "orderName": lambda c: c.rec["name"],
    "fulfillAt": lambda c: None,
    "fulfillmentHolds": lambda c: [{"__typename": "FulfillmentHold", "reason": "OTHER", "reasonNotes": None}]
    if c.fo.status == "ON_HOLD" else [],
    "createdAt": lambda c: format_gql(c.fo.created_us),
    "updatedAt": lambda c: format_gql(c.fo.updated_us),
    "lineItems": ConnField(
        lambda c, args: list_connection(c.fo.lines, lambda ln: FO_LINE.node(_FOLine(c, ln)), lambda ln: ln.id, args),
        lambda c: ((FO_LINE, _FOLine(c, ln)) for ln in c.fo.lines)),
})


def page(shop: Shop, rec: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """``Order.fulfillmentOrders(first:, ...)`` of the order ``rec``."""
    fos = ensure(shop, int(rec["index"]), rec)
    return list_connection(fos, lambda fo: FULFILLMENT_ORDER.node(_FO(shop.nodes, fo, rec)), lambda fo: fo.id, args)


def views(shop: Shop, rec: dict[str, Any]) -> Iterator[TypedNode]:
    return ((FULFILLMENT_ORDER, _FO(shop.nodes, fo, rec)) for fo in ensure(shop, int(rec["index"]), rec))


def fulfillment_order_node(shop: Shop, fo: FulfillmentOrder) -> dict[str, Any]:
    return FULFILLMENT_ORDER.node(_FO(shop.nodes, fo, shop.catalog.order(fo.order_index)))
