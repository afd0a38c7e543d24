"""WooCommerce REST v3 objects → canonical rows (the same shape for sync pages and webhook bodies:
a WooCommerce webhook delivers the resource exactly as the REST GET returns it).

* Ids are WordPress post / user ids as text. Products and variations share one id space, so a simple
  product gets one variant row with the product's own id (its sku, price and stock live there) and a
  line item's ``variant_id`` is its ``variation_id`` or, for a simple product, its ``product_id``.
* Times come from the ``*_gmt`` fields (site-local ones are ambiguous); WooCommerce keeps whole seconds.
* Money arrives as strings; refunds are summarized from ``refunds[].total`` (negative amounts).
* ``raw`` is the object as received, except an order's ``line_items`` (each is its line item's ``raw``).
* WooCommerce has no fulfillments or inventory locations: those tables stay empty for its stores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from worker.connectors.canonical import (
    MappingError,
    Owner,
    WebhookEffect,
    enum_text,
    integer,
    money,
    numeric_id,
    parse_time,
    require,
    text,
)
from worker.connectors.woocommerce.settings import WEBHOOK_TOPICS
from worker.errors import PermanentError

__all__ = ["RESOURCE_TABLES", "customer_rows", "gmt", "order_rows", "product_rows", "variation_rows",
           "webhook_effect"]

RESOURCE_TABLES: Mapping[str, tuple[str, ...]] = {
    "products": ("products", "product_variants"),
    "customers": ("customers",),
    "orders": ("orders", "order_line_items"),
}


def gmt(value: Any) -> datetime | None:
    """A ``*_gmt`` field ("2026-01-31T10:00:00", no offset) → aware UTC datetime."""
    parsed = parse_time(value)
    return parsed if parsed is None or parsed.tzinfo is UTC else parsed.astimezone(UTC)


def _id(value: Any) -> str | None:
    if value is None or value == "" or value == 0 or value == "0":
        return None
    return numeric_id(value)


def _address(a: Any) -> dict[str, Any] | None:
    """WooCommerce's billing/shipping object in the canonical (Shopify-named) address shape."""
    if not isinstance(a, Mapping) or not any(a.values()):
        return None
    name = " ".join(p for p in (a.get("first_name"), a.get("last_name")) if p) or None
    return {"first_name": a.get("first_name") or None, "last_name": a.get("last_name") or None, "name": name,
            "company": a.get("company") or None, "address1": a.get("address_1") or None,
            "address2": a.get("address_2") or None, "city": a.get("city") or None,
            "province": a.get("state") or None, "province_code": a.get("state") or None, "country": None,
            "country_code": a.get("country") or None, "zip": a.get("postcode") or None,
            "phone": a.get("phone") or None}


def _names(items: Any) -> list[str]:
    return [str(i["name"]) for i in items or [] if isinstance(i, Mapping) and i.get("name")]


def _variant(o: Owner, v: Mapping[str, Any], product_id: str, title: str | None,
             updated: datetime | None) -> dict[str, Any]:
    sale = money(v.get("sale_price"))
    return {**o.cols(), "id": numeric_id(v["id"]), "product_id": product_id, "title": title,
            "sku": v.get("sku") or None, "barcode": v.get("global_unique_id") or None, "price": money(v.get("price")),
            "compare_at_price": money(v.get("regular_price")) if sale is not None else None, "currency": None,
            "position": integer(v.get("menu_order")), "inventory_item_id": None,
            "inventory_quantity": integer(v.get("stock_quantity")), "source_updated_at": updated,
            "deleted_at": None, "raw": dict(v)}


def _variation_title(v: Mapping[str, Any]) -> str | None:
    options = [str(a.get("option")) for a in v.get("attributes") or [] if isinstance(a, Mapping) and a.get("option")]
    return " / ".join(options) or v.get("name") or None


def variation_rows(o: Owner, v: Mapping[str, Any], product_id: Any = None) -> dict[str, list[dict[str, Any]]]:
    """One variation (from ``/variations``, which carries ``parent_id``, or a ``product.updated`` delivery of a
    variation, ``type: variation``): a variant row of its parent product."""
    v = require(v, "variation")
    parent = _id(product_id if product_id is not None else v.get("parent_id"))
    if parent is None:
        raise MappingError("variation has no parent product")
    return {"product_variants": [_variant(o, v, parent, _variation_title(v), gmt(v.get("date_modified_gmt")))]}


def product_rows(o: Owner, p: Mapping[str, Any],
                 variations: Sequence[Mapping[str, Any]] | None = None) -> dict[str, list[dict[str, Any]]]:
    """A product and its variants: the fetched ``variations`` of a variable product, or the product itself
    as the one variant of a simple product."""
    p = require(p, "product")
    pid = numeric_id(p["id"])
    updated = gmt(p.get("date_modified_gmt"))
    product = {**o.cols(), "id": pid, "title": text(p.get("name")), "handle": text(p.get("slug")),
               "status": enum_text(p.get("status")), "vendor": None, "product_type": enum_text(p.get("type")),
               "tags": _names(p.get("tags")), "source_created_at": gmt(p.get("date_created_gmt")),
               "source_updated_at": updated, "deleted_at": None, "raw": dict(p)}
    if p.get("type") == "variable" or variations:
        variants = [_variant(o, require(v, "variation"), pid, _variation_title(v),
                             gmt(v.get("date_modified_gmt")) or updated) for v in variations or []]
    else:
        variants = [_variant(o, p, pid, text(p.get("name")), updated)]
    return {"products": [product], "product_variants": variants}


def customer_rows(o: Owner, c: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    c = require(c, "customer")
    billing = c.get("billing") if isinstance(c.get("billing"), Mapping) else {}
    return {"customers": [{
        **o.cols(), "id": numeric_id(c["id"]), "email": c.get("email") or None,
        "phone": (billing or {}).get("phone") or None, "first_name": c.get("first_name") or None,
        "last_name": c.get("last_name") or None, "state": enum_text(c.get("role")), "accepts_marketing": None,
        "orders_count": integer(c.get("orders_count")), "total_spent": money(c.get("total_spent")),
        "currency": None, "tags": [], "default_address": _address(billing),
        "source_created_at": gmt(c.get("date_created_gmt")), "source_updated_at": gmt(c.get("date_modified_gmt")),
        "deleted_at": None, "redacted_at": None, "raw": dict(c)}]}


_FINANCIAL = {"pending": "pending", "on-hold": "pending", "processing": "paid", "completed": "paid",
              "cancelled": "voided", "refunded": "refunded", "failed": "failed"}


def order_rows(o: Owner, p: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    p = require(p, "order")
    oid = numeric_id(p["id"])
    updated = gmt(p.get("date_modified_gmt"))
    status = enum_text(p.get("status"))
    refunds = [r for r in p.get("refunds") or [] if isinstance(r, Mapping)]
    refunded = sum((abs(money(r.get("total")) or Decimal(0)) for r in refunds), Decimal(0))
    lines = [require(li, "line item") for li in p.get("line_items") or []]
    subtotal = sum((money(li.get("subtotal")) or Decimal(0) for li in lines), Decimal(0))
    billing = p.get("billing") if isinstance(p.get("billing"), Mapping) else {}
    order = {**o.cols(), "id": oid, "name": f"#{p.get('number') or oid}", "order_number": text(p.get("number")),
             "customer_id": _id(p.get("customer_id")), "email": (billing or {}).get("email") or None,
             "phone": (billing or {}).get("phone") or None,
             "financial_status": "partially_refunded" if refunds and status != "refunded"
             else _FINANCIAL.get(status or "", status),
             "fulfillment_status": "fulfilled" if status == "completed" else "unfulfilled",
             "currency": text(p.get("currency")), "subtotal_price": subtotal, "total_tax": money(p.get("total_tax")),
             "total_discounts": money(p.get("discount_total")), "total_shipping": money(p.get("shipping_total")),
             "total_price": money(p.get("total")), "total_refunded": refunded, "refunds_count": len(refunds),
             "shipping_address": _address(p.get("shipping")), "billing_address": _address(billing),
             "tags": [], "processed_at": gmt(p.get("date_paid_gmt")),
             "cancelled_at": updated if status == "cancelled" else None,
             "closed_at": gmt(p.get("date_completed_gmt")), "source_created_at": gmt(p.get("date_created_gmt")),
             "source_updated_at": updated, "deleted_at": None, "redacted_at": None,
             # the line items have rows of their own (as a Shopify order's child connections do)
             "raw": {k: v for k, v in p.items() if k != "line_items"}}
    items = []
    for li in lines:
        quantity = integer(li.get("quantity"))
        total, sub = money(li.get("total")), money(li.get("subtotal"))
        items.append({**o.cols(), "id": numeric_id(li["id"]), "order_id": oid,
                      "product_id": _id(li.get("product_id")),
                      "variant_id": _id(li.get("variation_id")) or _id(li.get("product_id")),
                      "sku": li.get("sku") or None, "title": text(li.get("name")), "quantity": quantity,
                      "price": money(li.get("price")),
                      "total_discount": (sub - total) if sub is not None and total is not None else None,
                      "source_updated_at": updated, "raw": dict(li)})
    return {"orders": [order], "order_line_items": items}


_WRITERS: dict[str, Callable[[Owner, Mapping[str, Any]], dict[str, list[dict[str, Any]]]]] = {
    "products": product_rows, "customers": customer_rows, "orders": order_rows,
}


def webhook_effect(topic: str, payload: Mapping[str, Any], *, store_id: UUID, organization_id: UUID,
                   triggered_at: datetime | None) -> WebhookEffect:
    """What one WooCommerce delivery changes. PermanentError for unknown topics and malformed payloads.
    A variable product's variations are not in its payload: only the product row is written, the variants
    keep what the last sync stored (the next incremental sync re-reads them)."""
    resource = WEBHOOK_TOPICS.get(topic)
    if resource is None:
        raise PermanentError(f"not a WooCommerce data webhook topic: {str(topic)[:60]!r}")
    if not isinstance(payload, Mapping):
        raise PermanentError(f"{topic} payload is not a JSON object")
    owner = Owner.of(store_id, organization_id)
    try:
        if topic.endswith(".deleted"):
            if payload.get("id") is None:
                raise MappingError("delete payload has no id")
            when = triggered_at or datetime.now(UTC)
            return WebhookEffect(resource, {}, {resource: [numeric_id(payload["id"])]}, when)
        if resource == "products" and payload.get("type") == "variation":
            # WooCommerce sends a variation's own payload (with parent_id) as product.updated
            return WebhookEffect(resource, variation_rows(owner, payload), {}, None)
        rows = _WRITERS[resource](owner, payload)
        if resource == "products" and payload.get("type") == "variable":
            rows = {"products": rows["products"]}
        return WebhookEffect(resource, {t: r for t, r in rows.items() if r}, {}, None)
    except PermanentError as exc:
        raise PermanentError(f"malformed {topic} payload: {exc}") from None
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        raise PermanentError(f"malformed {topic} payload ({type(exc).__name__})") from None
