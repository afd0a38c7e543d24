"""``fulfillmentCreate`` and ``fulfillmentTrackingInfoUpdate``.

One call fulfils line items of fulfillment orders of **one order at one location**: each listed fulfillment order
must support CREATE_FULFILLMENT (OPEN or IN_PROGRESS), each quantity must be at most the line's
``remainingQuantity`` (omitting the items fulfils everything that remains). The fulfillment (``#1001.1``,
``#1001.2``, ...) carries every tracking number of ``trackingInfo.numbers`` (paired with ``urls`` by position; a
known carrier without a URL gets its tracking URL); remaining quantities fall, a fulfillment order with nothing
left is CLOSED, the order becomes PARTIALLY_FULFILLED or FULFILLED, and a line that claimed stock takes it off
``on_hand`` at its location. Webhooks ``fulfillments/create``, ``orders/updated`` and ``orders/fulfilled`` or
``orders/partially_fulfilled``. ``userErrors`` are ``{field, message}`` (these payloads have no ``code``).

``fulfillmentTrackingInfoUpdate`` *replaces* the tracking entries with the ones sent (Shopify's replace-or-append
is unverified: send the full list) and sends ``fulfillments/update``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.shopify.clock import now_us
from sandbox.shopify.dataset import FULFILLMENT_BASE
from sandbox.shopify.gql import Field
from sandbox.shopify.nodes import gid, parse_gid
from sandbox.shopify.project import Projector
from sandbox.shopify.writes.common import require_any, user_error
from sandbox.shopify.writes.fulfillment_orders import supported_actions
from sandbox.shopify.writes.inputs import check_arguments
from sandbox.shopify.writes.model import (
    CREATED_FULFILLMENT_BASE,
    FULFILLMENT_LINE_BASE,
    FulfillmentOrder,
    FulfillmentOrderLine,
)

if TYPE_CHECKING:
    from sandbox.shopify.resolver import RequestContext
    from sandbox.shopify.state import Shop

__all__ = ["FULFILLMENT_SCOPES", "find_fulfillment", "fulfillment_create", "tracking_update"]

FULFILLMENT_SCOPES = ("write_assigned_fulfillment_orders", "write_merchant_managed_fulfillment_orders",
                      "write_third_party_fulfillment_orders")
CREATE_ARGS = {"fulfillment": "FulfillmentInput!", "message": "String"}
TRACK_ARGS = {"fulfillmentId": "ID!", "trackingInfoInput": "FulfillmentTrackingInput!", "notifyCustomer": "Boolean"}
CARRIER_URLS = {"UPS": "https://www.ups.com/track?tracknum=", "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels=",
                "DHL Express": "https://www.dhl.com/track?id=", "FedEx": "https://www.fedex.com/fedextrack/?trknbr="}
Pick = tuple[FulfillmentOrderLine, int]


def _tracking(info: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``FulfillmentTrackingInput`` -> entries ``{company, number, url}`` (numbers and urls pair by position)."""
    if not info:
        return []
    company = info.get("company")
    numbers = list(info.get("numbers") or ([info["number"]] if info.get("number") else []))
    urls = list(info.get("urls") or ([info["url"]] if info.get("url") else []))
    if not numbers:
        return [{"company": company, "number": None, "url": urls[0] if urls else None}] if company or urls else []
    out = []
    for n, number in enumerate(numbers):
        url = urls[n] if n < len(urls) else None
        if url is None and company in CARRIER_URLS:
            url = CARRIER_URLS[str(company)] + str(number)
        out.append({"company": company, "number": number, "url": url})
    return out


def _own(shop: Shop, o: int, key: str) -> list[dict[str, Any]]:
    """The order's ``line_items`` or ``fulfillments`` as overrides (copied from the generated ones first)."""
    ov = shop.catalog.orders.overrides.setdefault(o, {})
    if key not in ov:
        ov[key] = [dict(x) for x in shop.catalog.order(o)[key]]
    found: list[dict[str, Any]] = ov[key]
    return found


def _picks(fo: FulfillmentOrder, items: list[dict[str, Any]] | None, path: list[str],
           add: Any) -> list[Pick]:
    if items is None:
        return [(ln, ln.remaining) for ln in fo.lines if ln.remaining > 0]
    wanted: dict[int, int] = {}
    lines: dict[int, FulfillmentOrderLine] = {}
    for m, item in enumerate(items):
        ipath = [*path, "fulfillmentOrderLineItems", str(m)]
        parsed = parse_gid(item["id"])
        ln = fo.line(parsed[1]) if parsed and parsed[0] == "FulfillmentOrderLineItem" else None
        if ln is None:
            add([*ipath, "id"], "Fulfillment order line item does not exist.")
        elif item["quantity"] <= 0:
            add([*ipath, "quantity"], "Quantity must be greater than 0.")
        elif wanted.get(ln.id, 0) + item["quantity"] > ln.remaining:
            add([*ipath, "quantity"], f"Quantity {wanted.get(ln.id, 0) + item['quantity']} exceeds the remaining "
                f"quantity {ln.remaining} of fulfillment order line item {gid('FulfillmentOrderLineItem', ln.id)}.")
        else:
            wanted[ln.id] = wanted.get(ln.id, 0) + item["quantity"]
            lines[ln.id] = ln
    return [(lines[lid], q) for lid, q in wanted.items()]


def _plan(ctx: RequestContext, groups: list[dict[str, Any]],
          errors: list[dict[str, Any]]) -> list[tuple[FulfillmentOrder, list[Pick]]]:
    def add(field: list[str], message: str) -> None:
        errors.append(user_error("UserError", field, message))

    base = ["fulfillment", "lineItemsByFulfillmentOrder"]
    if not groups:
        add(base, "Line items by fulfillment order must have at least one fulfillment order.")
    visible = ctx.sandbox.order_visible(ctx.shop, ctx.scopes)
    plan: list[tuple[FulfillmentOrder, list[Pick]]] = []
    for n, group in enumerate(groups):
        path = [*base, str(n)]
        parsed = parse_gid(group["fulfillmentOrderId"])
        fo = ctx.shop.writes.fo_by_id.get(parsed[1]) if parsed and parsed[0] == "FulfillmentOrder" else None
        if fo is None or not ctx.shop.catalog.orders.alive(fo.order_index) or \
                (visible is not None and not visible(fo.order_index)):
            add([*path, "fulfillmentOrderId"], "Fulfillment order does not exist.")
            continue
        if "CREATE_FULFILLMENT" not in supported_actions(fo):
            add([*path, "fulfillmentOrderId"], f"Fulfillment order {gid('FulfillmentOrder', fo.id)} is {fo.status} "
                "and does not support the CREATE_FULFILLMENT action.")
            continue
        before = len(errors)
        picks = _picks(fo, group.get("fulfillmentOrderLineItems"), path, add)
        if not picks and len(errors) == before:
            add(path, "Fulfillment order has no remaining line items to fulfill.")
        plan.append((fo, picks))
    if len({fo.order_index for fo, _ in plan}) > 1:
        add(base, "All fulfillment orders must belong to the same order.")
    if len({fo.location_index for fo, _ in plan}) > 1:
        add(base, "All fulfillment orders must be assigned to the same location.")
    return plan


def fulfillment_create(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> dict[str, Any]:
    require_any(ctx, fld, *FULFILLMENT_SCOPES)
    check_arguments(fld, args, CREATE_ARGS)
    spec: dict[str, Any] = args["fulfillment"]
    errors: list[dict[str, Any]] = []
    plan = _plan(ctx, spec["lineItemsByFulfillmentOrder"], errors)
    if errors:
        return {"__typename": "FulfillmentCreatePayload", "fulfillment": None, "userErrors": errors}
    shop, catalog, store = ctx.shop, ctx.shop.catalog, ctx.shop.writes
    o, j = plan[0][0].order_index, plan[0][0].location_index
    lines = {int(li["id"]): li for li in _own(shop, o, "line_items")}
    stamp = now_us()
    entries: list[tuple[int, int, int]] = []
    for fo, picks in plan:
        for ln, qty in picks:
            ln.remaining -= qty
            li = lines[ln.line_item_id]
            li["fulfilled_quantity"] = int(li.get("fulfilled_quantity", 0)) + qty
            entries.append((store.next_id(FULFILLMENT_LINE_BASE), ln.line_item_id, qty))
            found = catalog.variant_by_id(int(li["variant_id"])) if li.get("claimed") else None
            if found is not None:  # the claimed stock leaves the building: on_hand (and committed) fall
                lvl = catalog.inventory_level(found[0], found[1], int(li["location_index"]))
                catalog.inventory[(found[0], found[1], int(li["location_index"]))] = (
                    int(lvl["available"]), int(lvl["on_hand"]) - qty, max(stamp, int(lvl["updated_us"]) + 1))
        fo.updated_us = stamp
        fo.settle()
    done = all(int(li.get("fulfilled_quantity", 0)) >= int(li["quantity"]) for li in lines.values())
    fulfillments = _own(shop, o, "fulfillments")
    name = catalog.order(o)["name"]
    fid = store.next_id(CREATED_FULFILLMENT_BASE)
    record: dict[str, Any] = {"id": fid, "status": "SUCCESS", "created_us": stamp,
              "updated_us": stamp, "tracking": _tracking(spec.get("trackingInfo")), "location_index": j,
              "line_items": entries, "name": f"{name}.{len(fulfillments) + 1}",
              "notify_customer": bool(spec.get("notifyCustomer")), "origin_address": spec.get("originAddress"),
              "message": args.get("message")}
    fulfillments.append(record)
    store.fulfillment_orders_of[fid] = o
    catalog.orders.overrides[o]["fulfillment_status"] = "FULFILLED" if done else "PARTIALLY_FULFILLED"
    catalog.orders.touch(o)
    rec = catalog.order(o)
    ctx.sandbox.emit(shop, "fulfillments/create", shop.nodes.fulfillment_rest(rec, record))
    order_payload = shop.nodes.order_rest(o)
    ctx.sandbox.emit(shop, "orders/updated", order_payload)
    ctx.sandbox.emit(shop, "orders/fulfilled" if done else "orders/partially_fulfilled", order_payload)
    return {"__typename": "FulfillmentCreatePayload", "fulfillment": shop.nodes.fulfillment(o, record),
            "userErrors": []}


def find_fulfillment(ctx: RequestContext, value: Any) -> tuple[int, dict[str, Any]] | None:
    """(order index, fulfillment record) of a Fulfillment GID, for orders the token may see."""
    parsed = parse_gid(value)
    if parsed is None or parsed[0] != "Fulfillment":
        return None
    fid = parsed[1]
    o = ctx.shop.writes.fulfillment_orders_of.get(fid, fid - FULFILLMENT_BASE - 1)
    catalog = ctx.shop.catalog
    visible = ctx.sandbox.order_visible(ctx.shop, ctx.scopes)
    if not catalog.orders.alive(o) or (visible is not None and not visible(o)):
        return None
    f = next((f for f in catalog.order(o)["fulfillments"] if int(f["id"]) == fid), None)
    return (o, f) if f is not None else None


def tracking_update(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> dict[str, Any]:
    require_any(ctx, fld, *FULFILLMENT_SCOPES)
    check_arguments(fld, args, TRACK_ARGS)
    found = find_fulfillment(ctx, args["fulfillmentId"])
    problem = "Fulfillment does not exist." if found is None else \
        "A cancelled fulfillment's tracking can't be updated." if found[1]["status"] == "CANCELLED" else None
    if found is None or problem is not None:
        return {"__typename": "FulfillmentTrackingInfoUpdatePayload", "fulfillment": None,
                "userErrors": [user_error("UserError", ["fulfillmentId"], str(problem))]}
    shop = ctx.shop
    o = found[0]
    record = next(f for f in _own(shop, o, "fulfillments") if int(f["id"]) == int(found[1]["id"]))
    record["tracking"] = _tracking(args["trackingInfoInput"])
    record["updated_us"] = max(now_us(), int(record["updated_us"]) + 1)
    if args.get("notifyCustomer"):
        record["notify_customer"] = True
    shop.catalog.orders.touch(o)
    ctx.sandbox.emit(shop, "fulfillments/update", shop.nodes.fulfillment_rest(shop.catalog.order(o), record))
    return {"__typename": "FulfillmentTrackingInfoUpdatePayload", "fulfillment": shop.nodes.fulfillment(o, record),
            "userErrors": []}
