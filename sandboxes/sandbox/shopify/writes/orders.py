"""``orderCreate``: a real order in the shop, as Shopify makes one from the API.

Lines are catalog lines (``variantId`` + ``quantity``: title, SKU and price from the variant unless ``priceSet``
is sent) or custom lines (``title``, ``priceSet``, ``quantity``, ``sku``). Each line is assigned to a location:
the first active location that stocks the variant with enough ``available`` (else the first that stocks it,
else the shop's first location); one fulfillment order per location used. ``options.inventoryBehaviour``:

* ``BYPASS`` (the default) claims nothing;
* ``DECREMENT_IGNORING_POLICY`` takes the quantity off ``available`` at the line's location (``committed`` grows,
  ``on_hand`` stays) even into negative stock;
* ``DECREMENT_OBEYING_POLICY`` does the same, but a variant whose ``inventoryPolicy`` is DENY and that no location
  can cover refuses the whole order (``INVENTORY_CLAIM_FAILED``).

There is no idempotency key and names may repeat: two identical calls make two orders. The new order is an
ordinary catalog order (queries, search by ``tag:``/``source_identifier:``, bulk exports, ``orders/create``).
Not modelled (accepted, listed in ``extensions.sandbox.notes``): taxes, discounts, transactions, metafields,
customer upsert, ``fulfillment``/``fulfillmentStatus``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sandbox.shopify.clock import now_us, parse_timestamp
from sandbox.shopify.dataset import LINE_ITEM_BASE, MAX_CHILDREN
from sandbox.shopify.gql import Field
from sandbox.shopify.nodes import parse_gid
from sandbox.shopify.project import Projector
from sandbox.shopify.writes.addresses import address_errors, address_record
from sandbox.shopify.writes.common import app_numeric_id, cents, require_any, user_error
from sandbox.shopify.writes.fulfillment_orders import create_for_order, default_location
from sandbox.shopify.writes.inputs import check_arguments

if TYPE_CHECKING:
    from sandbox.shopify.resolver import RequestContext

__all__ = ["order_create"]

ARGS = {"order": "OrderCreateOrderInput!", "options": "OrderCreateOptionsInput"}
ADDRESS_BASE = 9_500_000_000_000
FUTURE_SLACK_US = 60_000_000  # clocks differ; a minute ahead is still "now"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-.]{4,19}$")
_NOT_MODELLED = ("discountCode", "fulfillment", "fulfillmentStatus", "metafields", "taxLines", "transactions",
                 "companyLocationId", "presentmentCurrency", "closedAt", "userId")
Line = tuple[dict[str, Any], tuple[int, int] | None, str]  # (line record, (product, variant) index, policy)


class _Errors(list[dict[str, Any]]):
    def add(self, path: list[str], message: str, code: str = "INVALID") -> None:
        self.append(user_error("OrderCreateUserError", ["order", *path], message, code))


def _payload(order: dict[str, Any] | None, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"__typename": "OrderCreatePayload", "order": order, "userErrors": errors}


def _line(ctx: RequestContext, item: dict[str, Any], n: int, errors: _Errors) -> Line | None:
    catalog = ctx.shop.catalog
    path = ["lineItems", str(n)]
    qty = int(item["quantity"])
    if qty <= 0:
        errors.add([*path, "quantity"], "Quantity must be greater than or equal to 1")
    price: int | None = None
    if item.get("priceSet"):
        price = cents(item["priceSet"]["shopMoney"]["amount"])
        if price is None or price < 0:
            errors.add([*path, "priceSet"], "Price must be a valid, non-negative amount")
    variant_id = item.get("variantId")
    if variant_id is not None:
        parsed = parse_gid(variant_id)
        found = catalog.variant_by_id(parsed[1]) if parsed and parsed[0] == "ProductVariant" else None
        if found is None:
            errors.add([*path, "variantId"], f"Variant {variant_id} does not exist")
            return None
        i, k = found
        product = catalog.product(i)
        v = catalog.variant(i, k, product)
        rec = {"title": product["title"], "vendor": product["vendor"], "sku": v["sku"], "quantity": qty,
               "price_cents": v["price_cents"] if price is None else price, "discount_cents": 0,
               "product_id": product["id"], "variant_id": v["id"],
               "variant_title": None if v["title"] == "Default Title" else v["title"]}
        return rec, (i, k), str(v["inventory_policy"])
    product_id = None
    if item.get("productId") is not None:
        parsed = parse_gid(item["productId"])
        if parsed is None or parsed[0] != "Product" or catalog.products.live_index(parsed[1]) is None:
            errors.add([*path, "productId"], f"Product {item['productId']} does not exist")
            return None
        product_id = parsed[1]
    title = item.get("title")
    if not title or not str(title).strip():
        errors.add([*path, "title"], "Title can't be blank")
        return None
    rec = {"title": str(title), "vendor": item.get("vendor"), "sku": item.get("sku"), "quantity": qty,
           "price_cents": price or 0, "discount_cents": 0, "product_id": product_id, "variant_id": None,
           "variant_title": item.get("variantTitle")}
    return rec, None, "CONTINUE"


def _assign(ctx: RequestContext, lines: list[Line], behaviour: str,
            errors: _Errors) -> dict[tuple[int, int, int], int]:
    """Give each line its location; -> the ``available`` to take per level (empty under BYPASS)."""
    catalog = ctx.shop.catalog
    fallback = default_location(ctx.shop)
    active = [j for j, loc in enumerate(catalog.locations) if loc["active"]]
    planned: dict[tuple[int, int, int], int] = {}
    for n, (li, key, policy) in enumerate(lines):
        li["claimed"] = False
        if key is None:
            li["location_index"] = fallback
            continue
        i, k = key
        qty = int(li["quantity"])
        stocked = [j for j in active if catalog.stocked(i, k, j)]
        enough = next((j for j in stocked if int(catalog.inventory_level(i, k, j)["available"])
                       - planned.get((i, k, j), 0) >= qty), None)
        if behaviour == "DECREMENT_OBEYING_POLICY" and enough is None and policy == "DENY":
            errors.add(["lineItems", str(n), "quantity"],
                       f"Not enough inventory available for {li['sku'] or li['title']}", "INVENTORY_CLAIM_FAILED")
            continue
        j = enough if enough is not None else stocked[0] if stocked else fallback
        li["location_index"] = j
        if behaviour != "BYPASS" and j in stocked:
            planned[(i, k, j)] = planned.get((i, k, j), 0) + qty
            li["claimed"] = True
    return planned


def _customer(ctx: RequestContext, order: dict[str, Any], errors: _Errors) -> int | None:
    customer = order.get("customer")
    if customer is not None and order.get("customerId") is not None:
        errors.add(["customer"], "Provide either customer or customerId, not both", "REDUNDANT_CUSTOMER_FIELDS")
        return None
    if isinstance(customer, dict) and customer.get("toUpsert") is not None:
        ctx.notes.append("orderCreate: order.customer.toUpsert is accepted but not modelled (no customer linked)")
    target = (customer.get("toAssociate") or {}).get("id") if isinstance(customer, dict) else order.get("customerId")
    if target is None:
        return None
    parsed = parse_gid(target)
    ci = ctx.shop.catalog.customers.live_index(parsed[1]) if parsed and parsed[0] == "Customer" else None
    if ci is None:
        errors.add(["customer", "toAssociate", "id"] if customer is not None else ["customerId"],
                   f"Customer {target} does not exist")
    return ci


def _check_order(ctx: RequestContext, order: dict[str, Any], errors: _Errors) -> int | None:
    """The checks outside the lines; -> processedAt in microseconds (None: now)."""
    if not order.get("lineItems"):
        errors.add(["lineItems"], "Line items must have at least one line item")
    elif len(order["lineItems"]) > MAX_CHILDREN:
        errors.add(["lineItems"], f"The sandbox models at most {MAX_CHILDREN} line items per order")
    email, phone = order.get("email"), order.get("phone")
    if email is not None and not _EMAIL.match(email):
        errors.add(["email"], "Email is invalid")
    if phone is not None and not _PHONE.match(phone):
        errors.add(["phone"], "Phone is invalid")
    for key in ("shippingAddress", "billingAddress"):
        if order.get(key):
            for path, message in address_errors(order[key], [key]):
                errors.add(path, message)
    for key in _NOT_MODELLED:
        if order.get(key) is not None:
            ctx.notes.append(f"orderCreate: order.{key} is accepted but not modelled")
    if order.get("processedAt") is None:
        return None
    parsed = parse_timestamp(order["processedAt"])
    processed = parsed[0] if parsed else None
    if processed is None or processed > now_us() + FUTURE_SLACK_US:
        errors.add(["processedAt"], "Processed at must not be in the future", "PROCESSED_AT_INVALID")
    return processed


def _tags(value: Any) -> list[str]:
    seen: dict[str, str] = {}
    for tag in value if isinstance(value, list) else [value] if value else []:
        for part in str(tag).split(","):
            part = part.strip()
            if part and part.lower() not in seen:
                seen[part.lower()] = part
    return sorted(seen.values())


def order_create(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> dict[str, Any]:
    require_any(ctx, fld, "write_orders")
    check_arguments(fld, args, ARGS)
    order: dict[str, Any] = args["order"]
    options: dict[str, Any] = args.get("options") or {}
    shop, catalog = ctx.shop, ctx.shop.catalog
    errors = _Errors()
    processed = _check_order(ctx, order, errors)
    customer_index = _customer(ctx, order, errors)
    lines = [line for n, item in enumerate(order.get("lineItems") or [])
             if (line := _line(ctx, item, n, errors)) is not None]
    behaviour = str(options.get("inventoryBehaviour") or "BYPASS")
    claims = _assign(ctx, lines, behaviour, errors) if not errors else {}
    if errors:
        return _payload(None, errors)

    t = catalog.orders
    o = catalog.new_index(t)
    created = t.created[o]
    stored = [{**li, "id": LINE_ITEM_BASE + o * MAX_CHILDREN + n, "fulfilled_quantity": 0}
              for n, (li, _key, _policy) in enumerate(lines)]
    shipping = sum(cents(s["priceSet"]["shopMoney"]["amount"]) or 0 for s in order.get("shippingLines") or [])
    customer = catalog.customer(customer_index) if customer_index is not None else None
    ov: dict[str, Any] = {
        "customer_index": customer_index, "line_items": stored,
        "email": order.get("email") or (customer["email"] if customer else None),
        "phone": order.get("phone") or (customer["phone"] if customer else None),
        "shipping_address": address_record(order.get("shippingAddress"), shop.writes.next_id(ADDRESS_BASE)),
        "billing_address": address_record(order.get("billingAddress"), shop.writes.next_id(ADDRESS_BASE)),
        "note": order.get("note"), "tags": _tags(order.get("tags")),
        "custom_attributes": [{"key": a["key"], "value": a["value"]} for a in order.get("customAttributes") or []],
        "source_name": order.get("sourceName") or str(app_numeric_id(ctx.client_id)),
        "source_identifier": order.get("sourceIdentifier"), "po_number": order.get("poNumber"),
        "financial_status": order.get("financialStatus") or "PENDING", "fulfillment_status": "UNFULFILLED",
        "processed_us": processed if processed is not None else created,
        "currency": order.get("currency") or catalog.spec.currency, "shipping_cents": shipping, "tax_cents": 0,
        "cancelled_us": None, "closed_us": None, "test": bool(order.get("test")), "created_by": ctx.client_id,
        "inventory_behaviour": behaviour, "send_receipt": bool(options.get("sendReceipt")),
    }
    if order.get("name"):
        ov["name"] = str(order["name"])  # Shopify accepts a name another order already has
    t.overrides[o] = ov
    catalog.after_order_change(o)
    for (i, k, j), qty in claims.items():
        available, on_hand, stamp = _level(ctx, i, k, j)
        catalog.inventory[(i, k, j)] = (available - qty, on_hand, max(now_us(), stamp + 1))
    create_for_order(shop, o, stored, created)
    shop.writes.created_orders.append(o)
    ctx.sandbox.count("orders_created")
    ctx.sandbox.emit(shop, "orders/create", shop.nodes.order_rest(o))
    if ov["financial_status"] == "PAID":
        ctx.sandbox.emit(shop, "orders/paid", shop.nodes.order_rest(o))
    for i, k, j in claims:
        ctx.sandbox.emit(shop, "inventory_levels/update", shop.nodes.inventory_level_rest(i, k, j))
    return _payload(shop.nodes.order(o), [])


def _level(ctx: RequestContext, i: int, k: int, j: int) -> tuple[int, int, int]:
    lvl = ctx.shop.catalog.inventory_level(i, k, j)
    return int(lvl["available"]), int(lvl["on_hand"]), int(lvl["updated_us"])
