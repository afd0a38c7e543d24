"""Shopify objects → canonical rows, from both shapes Shopify sends.

* GraphQL nodes (sync: bulk JSONL lines and paginated queries, selected by ``queries.py``): camelCase,
  GIDs, upper-case enums, ``MoneyBag``s.
* REST payloads (webhook bodies): snake_case, numeric ids, lower-case enums, comma-joined tags.

Both give the same typed columns: ids are numeric legacy ids as text, enums lower-case snake_case
(``ACTIVE`` / ``active`` → ``active``; REST's ``partial`` fulfillment → ``partially_fulfilled``), money is
``Decimal``, timestamps are aware ``datetime``s, addresses one snake_case shape. ``raw`` is the object as
received (a GraphQL node without its child connections, or the REST payload).

Columns neither shape carries stay ``None``: ``product_variants.currency`` (a variant's price is a bare
amount in both), and what REST webhooks lack: ``customers.orders_count``/``total_spent`` and
``inventory_levels.on_hand``.
"""
# long module: each Shopify object's two shapes (GraphQL nodes, REST webhook payloads) map side by side here

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from uuid import UUID

import orjson

from worker.connectors.canonical import MappingError, Owner, WebhookEffect, parse_time
from worker.connectors.canonical import enum_text as _enum
from worker.connectors.canonical import integer as _int
from worker.connectors.canonical import money as _money
from worker.connectors.canonical import require as _require
from worker.connectors.canonical import text as _text
from worker.errors import PermanentError

__all__ = [
    "NOT_IN_WEBHOOKS",
    "RESOURCE_TABLES",
    "WEBHOOK_TOPICS",
    "WebhookEffect",
    "customer_row",
    "fulfillment_row",
    "legacy_id",
    "level_row",
    "line_item_row",
    "location_row",
    "order_row",
    "parse_time",
    "product_row",
    "variant_row",
    "webhook_effect",
]

RESOURCE_TABLES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "products": ("products", "product_variants", "inventory_locations", "inventory_levels"),
    "customers": ("customers",),
    "orders": ("orders", "order_line_items", "order_fulfillments"),
})

WEBHOOK_TOPICS: Mapping[str, str] = MappingProxyType({
    "products/create": "products",
    "products/update": "products",
    "products/delete": "products",
    "inventory_levels/update": "products",
    "customers/create": "customers",
    "customers/update": "customers",
    "customers/delete": "customers",
    "orders/create": "orders",
    "orders/updated": "orders",
    "orders/delete": "orders",
})

# Columns REST webhook payloads do not carry (see the module docstring): a delivery keeps what a sync
# stored there instead of nulling it (write_synced's ``keep``).
NOT_IN_WEBHOOKS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "customers": ("orders_count", "total_spent"),
    "inventory_levels": ("on_hand",),
})

# GraphQL keys that are child connections: not part of the parent's ``raw``
CHILD_CONNECTIONS = frozenset({"variants", "inventoryLevels", "lineItems", "__parentId"})
_INLINE_CHILDREN = tuple(CHILD_CONNECTIONS - {"__parentId"})

_GID = re.compile(r"^gid:(?:\\?/){2}shopify(?:\\?/)[A-Za-z]+(?:\\?/)(\d+)(?:\?.*)?$")


# --- scalars ----------------------------------------------------------------------------------------------

def legacy_id(value: Any) -> str:
    """``gid://shopify/Product/123`` (also escaped ``gid:\\/\\/…``, or with ``?query``), ``123`` → ``"123"``."""
    if isinstance(value, bool):
        raise MappingError(f"not a Shopify id: {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # the common case first (a hot path: once per object of a full sync): gid://shopify/Type/123
        if value.startswith("gid://shopify/"):
            tail = value.rpartition("/")[2]
            if tail.isdigit():
                return tail
        text = value.strip()
        if text.isdigit():
            return text
        m = _GID.match(text)
        if m:
            return m.group(1)
    raise MappingError(f"not a Shopify id: {str(value)[:80]!r}")


def _opt_id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return None if value is None else legacy_id(value)


def _currency(value: Any) -> str | None:
    if isinstance(value, Mapping):
        inner = value.get("shopMoney") or value.get("shop_money") or value
        value = inner.get("currencyCode") or inner.get("currency_code") if isinstance(inner, Mapping) else None
    return str(value) if value else None


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):      # REST: "a, b"
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, Sequence):
        return [str(t) for t in value]
    raise MappingError(f"tags are neither a list nor a string: {type(value).__name__}")


def _order_number(name: Any, explicit: Any = None) -> str | None:
    if explicit is not None:
        return str(explicit)
    digits = re.search(r"\d+", str(name or ""))   # GraphQL has no order number: "#1001" → "1001"
    return digits.group(0) if digits else None


_ADDRESS_KEYS = ("first_name", "last_name", "name", "company", "address1", "address2", "city", "province",
                 "province_code", "country", "country_code", "zip", "phone")
_GQL_ADDRESS = {"firstName": "first_name", "lastName": "last_name", "provinceCode": "province_code",
                "countryCodeV2": "country_code", "countryCode": "country_code"}


def _address(value: Any) -> dict[str, Any] | None:
    """One snake_case address shape from a GraphQL MailingAddress or a REST address."""
    if not isinstance(value, Mapping):
        return None
    out: dict[str, Any] = dict.fromkeys(_ADDRESS_KEYS)
    for key, item in value.items():
        name = _GQL_ADDRESS.get(key, key)
        if name in out and item is not None:
            out[name] = item
    return out


def _node_raw(node: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k not in CHILD_CONNECTIONS}


_PARENT_KEY = b',"__parentId":"'
_ESCAPED_NUL = b"\\u0000"         # stripped from the parsed object: the raw bytes cannot be used


def bulk_raw(line: bytes, node: Mapping[str, Any]) -> orjson.Fragment | None:
    """A bulk JSONL line's ``raw``, as its own bytes, when they hold exactly what ``_node_raw`` keeps: no
    child connection inline and ``__parentId``, if any, the last key (cut off). At a million lines this
    saves copying every object and serializing it again. None: use the object (also when the line holds an
    escaped NUL, which ``load_json`` stripped from the object but the bytes still carry)."""
    if _ESCAPED_NUL in line:
        return None
    if "__parentId" in node:
        cut = line.rfind(_PARENT_KEY)
        if cut < 0 or not line.endswith(b'"}') or b'"' in line[cut + len(_PARENT_KEY):-2]:
            return None
        line = line[:cut] + b"}"
    if any(key in node for key in _INLINE_CHILDREN):
        return None
    item = node.get("inventoryItem")
    if isinstance(item, Mapping) and not CHILD_CONNECTIONS.isdisjoint(item):
        return None
    return orjson.Fragment(line)


# --- rows from GraphQL nodes ------------------------------------------------------------------------------

def product_row(o: Owner, node: Mapping[str, Any], raw: Any = None) -> dict[str, Any]:
    node = _require(node, "product")
    return {**o.cols(), "id": legacy_id(node["id"]), "title": _text(node.get("title")),
            "handle": _text(node.get("handle")), "status": _enum(node.get("status")),
            "vendor": _text(node.get("vendor")), "product_type": _text(node.get("productType")),
            "tags": _tags(node.get("tags")), "source_created_at": parse_time(node.get("createdAt")),
            "source_updated_at": parse_time(node.get("updatedAt")), "deleted_at": None,
            "raw": _node_raw(node) if raw is None else raw}


def variant_row(o: Owner, node: Mapping[str, Any], product_id: str | None = None, raw: Any = None) -> dict[str, Any]:
    node = _require(node, "variant")
    pid = product_id or _opt_id(node.get("product")) or _opt_id(node.get("__parentId"))
    if pid is None:
        raise MappingError("variant has no product")
    item = node.get("inventoryItem")
    if raw is None:
        raw = _node_raw(node)
        if isinstance(item, Mapping):
            raw["inventoryItem"] = _node_raw(item)
    return {**o.cols(), "id": legacy_id(node["id"]), "product_id": pid, "title": _text(node.get("title")),
            "sku": _text(node.get("sku")), "barcode": _text(node.get("barcode")), "price": _money(node.get("price")),
            "compare_at_price": _money(node.get("compareAtPrice")), "currency": None,
            "position": _int(node.get("position")), "inventory_item_id": _opt_id(item),
            "inventory_quantity": _int(node.get("inventoryQuantity")),
            "source_updated_at": parse_time(node.get("updatedAt")), "deleted_at": None, "raw": raw}


def level_row(o: Owner, node: Mapping[str, Any], inventory_item_id: str | None = None,
              raw: Any = None) -> dict[str, Any]:
    if not isinstance(node, Mapping):
        raise MappingError("inventory level is not an object")
    item = inventory_item_id or _opt_id(node.get("item"))
    location = _opt_id(node.get("location"))
    if item is None or location is None:
        raise MappingError("inventory level lacks its item or location")
    quantities = {q.get("name"): q.get("quantity") for q in node.get("quantities") or [] if isinstance(q, Mapping)}
    return {**o.cols(), "inventory_item_id": item, "location_id": location,
            "available": _int(quantities.get("available")), "on_hand": _int(quantities.get("on_hand")),
            "source_updated_at": parse_time(node.get("updatedAt")), "deleted_at": None,
            "raw": _node_raw(node) if raw is None else raw}


def location_row(o: Owner, node: Mapping[str, Any]) -> dict[str, Any]:
    node = _require(node, "location")
    active = node.get("isActive")
    return {**o.cols(), "id": legacy_id(node["id"]), "name": _text(node.get("name")),
            "active": None if active is None else bool(active),
            "source_updated_at": parse_time(node.get("updatedAt")), "deleted_at": None, "raw": _node_raw(node)}


def customer_row(o: Owner, node: Mapping[str, Any], raw: Any = None) -> dict[str, Any]:
    node = _require(node, "customer")
    consent = node.get("emailMarketingConsent")
    marketing = consent.get("marketingState") if isinstance(consent, Mapping) else None
    return {**o.cols(), "id": legacy_id(node["id"]), "email": _text(node.get("email")),
            "phone": _text(node.get("phone")), "first_name": _text(node.get("firstName")),
            "last_name": _text(node.get("lastName")), "state": _enum(node.get("state")),
            "accepts_marketing": None if marketing is None else str(marketing).upper() == "SUBSCRIBED",
            "orders_count": _int(node.get("numberOfOrders")), "total_spent": _money(node.get("amountSpent")),
            "currency": _currency(node.get("amountSpent")), "tags": _tags(node.get("tags")),
            "default_address": _address(node.get("defaultAddress")),
            "source_created_at": parse_time(node.get("createdAt")),
            "source_updated_at": parse_time(node.get("updatedAt")), "deleted_at": None, "redacted_at": None,
            "raw": _node_raw(node) if raw is None else raw}


def order_row(o: Owner, node: Mapping[str, Any], raw: Any = None) -> dict[str, Any]:
    node = _require(node, "order")
    refunds = node.get("refunds") or []
    return {**o.cols(), "id": legacy_id(node["id"]), "name": _text(node.get("name")),
            "order_number": _order_number(node.get("name")), "customer_id": _opt_id(node.get("customer")),
            "email": _text(node.get("email")), "phone": _text(node.get("phone")),
            "financial_status": _enum(node.get("displayFinancialStatus")),
            "fulfillment_status": _enum(node.get("displayFulfillmentStatus")),
            "currency": _text(node.get("currencyCode")), "subtotal_price": _money(node.get("subtotalPriceSet")),
            "total_tax": _money(node.get("totalTaxSet")), "total_discounts": _money(node.get("totalDiscountsSet")),
            "total_shipping": _money(node.get("totalShippingPriceSet")),
            "total_price": _money(node.get("totalPriceSet")),
            "total_refunded": _money(node.get("totalRefundedSet")) or Decimal(0),
            "refunds_count": len(refunds) if isinstance(refunds, list) else 0,
            "shipping_address": _address(node.get("shippingAddress")),
            "billing_address": _address(node.get("billingAddress")), "tags": _tags(node.get("tags")),
            "processed_at": parse_time(node.get("processedAt")), "cancelled_at": parse_time(node.get("cancelledAt")),
            "closed_at": parse_time(node.get("closedAt")), "source_created_at": parse_time(node.get("createdAt")),
            "source_updated_at": parse_time(node.get("updatedAt")), "deleted_at": None, "redacted_at": None,
            "raw": _node_raw(node) if raw is None else raw}


def line_item_row(o: Owner, node: Mapping[str, Any], order_id: str,
                  order_updated_at: datetime | None, raw: Any = None) -> dict[str, Any]:
    node = _require(node, "line item")
    return {**o.cols(), "id": legacy_id(node["id"]), "order_id": order_id, "product_id": _opt_id(node.get("product")),
            "variant_id": _opt_id(node.get("variant")), "sku": _text(node.get("sku")),
            "title": _text(node.get("title")), "quantity": _int(node.get("quantity")),
            "price": _money(node.get("originalUnitPriceSet")), "total_discount": _money(node.get("totalDiscountSet")),
            "source_updated_at": order_updated_at, "raw": _node_raw(node) if raw is None else raw}


def fulfillment_row(o: Owner, node: Mapping[str, Any], order_id: str) -> dict[str, Any]:
    node = _require(node, "fulfillment")
    tracking = [t for t in node.get("trackingInfo") or [] if isinstance(t, Mapping)]
    return {**o.cols(), "id": legacy_id(node["id"]), "order_id": order_id, "status": _enum(node.get("status")),
            "tracking_company": _text(tracking[0].get("company")) if tracking else None,
            "tracking_numbers": [str(t["number"]) for t in tracking if t.get("number")],
            "tracking_urls": [str(t["url"]) for t in tracking if t.get("url")],
            "source_created_at": parse_time(node.get("createdAt")),
            "source_updated_at": parse_time(node.get("updatedAt")), "raw": _node_raw(node)}


# --- rows from REST payloads (webhooks) ------------------------------------------------------------------

def _rest_product(o: Owner, p: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    pid = legacy_id(p["id"])
    product = {**o.cols(), "id": pid, "title": _text(p.get("title")), "handle": _text(p.get("handle")),
               "status": _enum(p.get("status")), "vendor": _text(p.get("vendor")),
               "product_type": _text(p.get("product_type")), "tags": _tags(p.get("tags")),
               "source_created_at": parse_time(p.get("created_at")),
               "source_updated_at": parse_time(p.get("updated_at")), "deleted_at": None, "raw": dict(p)}
    variants = []
    for v in p.get("variants") or []:
        v = _require(v, "variant")
        variants.append({**o.cols(), "id": legacy_id(v["id"]), "product_id": pid, "title": _text(v.get("title")),
                         "sku": _text(v.get("sku")), "barcode": _text(v.get("barcode")),
                         "price": _money(v.get("price")), "compare_at_price": _money(v.get("compare_at_price")),
                         "currency": None, "position": _int(v.get("position")),
                         "inventory_item_id": _opt_id(v.get("inventory_item_id")),
                         "inventory_quantity": _int(v.get("inventory_quantity")),
                         "source_updated_at": parse_time(v.get("updated_at")), "deleted_at": None, "raw": dict(v)})
    return {"products": [product], "product_variants": variants}


def _rest_level(o: Owner, p: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    item, location = p.get("inventory_item_id"), p.get("location_id")
    if item is None or location is None:
        raise MappingError("inventory level lacks inventory_item_id or location_id")
    return {"inventory_levels": [{**o.cols(), "inventory_item_id": legacy_id(item), "location_id": legacy_id(location),
                                  "available": _int(p.get("available")), "on_hand": _int(p.get("on_hand")),
                                  "source_updated_at": parse_time(p.get("updated_at")), "deleted_at": None,
                                  "raw": dict(p)}]}


def _rest_customer(o: Owner, c: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    consent = c.get("email_marketing_consent")
    state = consent.get("state") if isinstance(consent, Mapping) else None
    accepts = None if state is None else str(state).lower() == "subscribed"
    if accepts is None and c.get("accepts_marketing") is not None:   # older payloads
        accepts = bool(c["accepts_marketing"])
    return {"customers": [{
        **o.cols(), "id": legacy_id(c["id"]), "email": _text(c.get("email")), "phone": _text(c.get("phone")),
        "first_name": _text(c.get("first_name")), "last_name": _text(c.get("last_name")),
        "state": _enum(c.get("state")), "accepts_marketing": accepts, "orders_count": _int(c.get("orders_count")),
        "total_spent": _money(c.get("total_spent")), "currency": _text(c.get("currency")),
        "tags": _tags(c.get("tags")), "default_address": _address(c.get("default_address")),
        "source_created_at": parse_time(c.get("created_at")), "source_updated_at": parse_time(c.get("updated_at")),
        "deleted_at": None, "redacted_at": None, "raw": dict(c)}]}


_REST_FULFILLMENT_STATUS = {None: "unfulfilled", "partial": "partially_fulfilled", "fulfilled": "fulfilled",
                            "restocked": "restocked"}


def _rest_refunded(refunds: Sequence[Any]) -> Decimal:
    total = Decimal(0)
    for refund in refunds:
        for t in (refund.get("transactions") or []) if isinstance(refund, Mapping) else []:
            if isinstance(t, Mapping) and t.get("kind") == "refund" and t.get("status") == "success":
                total += _money(t.get("amount")) or Decimal(0)
    return total


def _rest_order(o: Owner, p: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    oid = legacy_id(p["id"])
    updated = parse_time(p.get("updated_at"))
    refunds = p.get("refunds") or []
    fstatus = p.get("fulfillment_status")
    order = {**o.cols(), "id": oid, "name": _text(p.get("name")),
             "order_number": _order_number(p.get("name"), p.get("order_number")),
             "customer_id": _opt_id(p.get("customer")), "email": _text(p.get("email")), "phone": _text(p.get("phone")),
             "financial_status": _enum(p.get("financial_status")),
             "fulfillment_status": _REST_FULFILLMENT_STATUS.get(fstatus, _enum(fstatus)),
             "currency": _text(p.get("currency")), "subtotal_price": _money(p.get("subtotal_price")),
             "total_tax": _money(p.get("total_tax")), "total_discounts": _money(p.get("total_discounts")),
             "total_shipping": _money(p.get("total_shipping_price_set")), "total_price": _money(p.get("total_price")),
             "total_refunded": _rest_refunded(refunds), "refunds_count": len(refunds),
             "shipping_address": _address(p.get("shipping_address")),
             "billing_address": _address(p.get("billing_address")), "tags": _tags(p.get("tags")),
             "processed_at": parse_time(p.get("processed_at")), "cancelled_at": parse_time(p.get("cancelled_at")),
             "closed_at": parse_time(p.get("closed_at")), "source_created_at": parse_time(p.get("created_at")),
             "source_updated_at": updated, "deleted_at": None, "redacted_at": None, "raw": dict(p)}
    lines = []
    for li in p.get("line_items") or []:
        li = _require(li, "line item")
        lines.append({**o.cols(), "id": legacy_id(li["id"]), "order_id": oid,
                      "product_id": _opt_id(li.get("product_id")), "variant_id": _opt_id(li.get("variant_id")),
                      "sku": _text(li.get("sku")),
                      "title": _text(li.get("title")), "quantity": _int(li.get("quantity")),
                      "price": _money(li.get("price")), "total_discount": _money(li.get("total_discount")),
                      "source_updated_at": updated, "raw": dict(li)})
    fulfillments = []
    for f in p.get("fulfillments") or []:
        f = _require(f, "fulfillment")
        numbers = f.get("tracking_numbers") or ([f["tracking_number"]] if f.get("tracking_number") else [])
        urls = f.get("tracking_urls") or ([f["tracking_url"]] if f.get("tracking_url") else [])
        fulfillments.append({**o.cols(), "id": legacy_id(f["id"]), "order_id": oid, "status": _enum(f.get("status")),
                             "tracking_company": _text(f.get("tracking_company")),
                             "tracking_numbers": [str(n) for n in numbers], "tracking_urls": [str(u) for u in urls],
                             "source_created_at": parse_time(f.get("created_at")),
                             "source_updated_at": parse_time(f.get("updated_at")), "raw": dict(f)})
    return {"orders": [order], "order_line_items": lines, "order_fulfillments": fulfillments}


_WRITERS: dict[str, Callable[[Owner, Mapping[str, Any]], dict[str, list[dict[str, Any]]]]] = {
    "products/create": _rest_product, "products/update": _rest_product,
    "inventory_levels/update": _rest_level,
    "customers/create": _rest_customer, "customers/update": _rest_customer,
    "orders/create": _rest_order, "orders/updated": _rest_order,
}
_DELETES = {"products/delete": "products", "customers/delete": "customers", "orders/delete": "orders"}


def webhook_effect(topic: str, payload: Mapping[str, Any], *, store_id: UUID, organization_id: UUID,
                   triggered_at: datetime | None) -> WebhookEffect:
    """What one data webhook changes. PermanentError for unknown topics and malformed payloads."""
    resource = WEBHOOK_TOPICS.get(topic)
    if resource is None:
        raise PermanentError(f"not a Shopify data webhook topic: {str(topic)[:60]!r}")
    if not isinstance(payload, Mapping):
        raise PermanentError(f"{topic} payload is not a JSON object")
    owner = Owner.of(store_id, organization_id)
    try:
        if topic in _DELETES:
            if payload.get("id") is None:
                raise MappingError("delete payload has no id")
            # the delete's version: when Shopify says it happened, else now (a later re-create still wins)
            when = parse_time(triggered_at) or datetime.now(UTC)
            return WebhookEffect(resource, {}, {_DELETES[topic]: [legacy_id(payload["id"])]}, when)
        if topic != "inventory_levels/update" and payload.get("id") is None:
            raise MappingError("payload has no id")
        writes = {table: rows for table, rows in _WRITERS[topic](owner, payload).items() if rows}
        return WebhookEffect(resource, writes, {}, None)
    except PermanentError as exc:
        raise PermanentError(f"malformed {topic} payload: {exc}") from None
    except (TypeError, AttributeError, ValueError) as exc:
        raise PermanentError(f"malformed {topic} payload ({type(exc).__name__})") from None
