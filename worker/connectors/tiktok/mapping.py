"""TikTok Shop objects → canonical rows (the same shapes from searches, detail reads and webhook re-fetches).

* Products: ``products`` (status lower-cased: ``activate``, ``pending`` = under review, ``seller_deactivated``,
  ``deleted``…; a DELETED product is stored soft-deleted at its ``update_time``), one ``product_variants`` row per
  SKU (id = SKU id, ``sku`` = seller SKU, ``price`` = ``sale_price``, ``currency``, ``inventory_item_id`` = the
  SKU id, ``inventory_quantity`` = the sum over warehouses) and one ``inventory_levels`` row per SKU and warehouse
  (``location_id`` = warehouse id, ``available`` = quantity). Warehouses are ``inventory_locations``.
* Orders: ``orders`` (TikTok's status → financial/fulfillment status; amounts from ``payment``; the buyer e-mail
  is TikTok's anonymised relay address) and one ``order_line_items`` row per TikTok line item — TikTok lists one
  line item per unit, so each has quantity 1 [an inference: the schema has no quantity field].
* Times are unix seconds → aware UTC datetimes; ids stay strings (they exceed 2^53: never floats).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from worker.connectors.canonical import MappingError, Owner, enum_text, money, require, text

__all__ = ["RESOURCE_TABLES", "order_rows", "product_rows", "tiktok_id", "unix_time", "warehouse_rows"]

RESOURCE_TABLES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "products": ("products", "product_variants", "inventory_locations", "inventory_levels"),
    "orders": ("orders", "order_line_items"),
})

_FINANCIAL = {"UNPAID": "pending", "ON_HOLD": "paid", "CANCELLED": "voided", "CANCEL": "voided"}
_FULFILLMENT = {"PARTIALLY_SHIPPING": "partially_fulfilled", "AWAITING_COLLECTION": "fulfilled",
                "IN_TRANSIT": "fulfilled", "DELIVERED": "fulfilled", "COMPLETED": "fulfilled"}


def tiktok_id(value: Any, what: str = "id") -> str:
    """An id as TikTok means it: digits as text (a JSON number in some webhook samples: parsed exactly)."""
    if value.__class__ is str and value.isascii() and value.isdigit() and len(value) <= 30:   # the common case
        return str(value)
    if isinstance(value, bool) or value is None:
        raise MappingError(f"{what} is missing")
    found = str(value).strip()
    if not (found.isascii() and found.isdigit()) or len(found) > 30:      # not "²" or Arabic-Indic digits
        raise MappingError(f"not a TikTok {what}: {found[:40]!r}")
    return found


def unix_time(value: Any) -> datetime | None:
    if value is None or value == "" or value == 0:
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise MappingError(f"not a unix time: {str(value)[:40]!r}") from None


def product_rows(o: Owner, p: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Raw objects are kept as received (not copied): rows are written and dropped, never changed."""
    p = require(p, "product")
    pid = tiktok_id(p["id"], "product id")
    owner = o.cols()
    updated = unix_time(p.get("update_time"))
    deleted = (updated or datetime.now(UTC)) if p.get("status") == "DELETED" else None
    skus = [require(s, "SKU") for s in p.get("skus") or []]
    product = {**owner, "id": pid, "title": text(p.get("title")), "handle": None,
               "status": enum_text(p.get("status")), "vendor": None, "product_type": None, "tags": [],
               "source_created_at": unix_time(p.get("create_time")), "source_updated_at": updated,
               "deleted_at": deleted, "raw": {k: v for k, v in p.items() if k != "skus"}}
    variants, levels = [], []
    for position, s in enumerate(skus, 1):
        sid = tiktok_id(s["id"], "SKU id")
        price: Mapping[str, Any] = s["price"] if isinstance(s.get("price"), Mapping) else {}
        stock = [e for e in s.get("inventory") or [] if isinstance(e, Mapping)]
        quantities = [int(e.get("quantity") or 0) for e in stock]
        variants.append({**owner, "id": sid, "product_id": pid, "title": text(s.get("seller_sku")),
                         "sku": text(s.get("seller_sku")) or None, "barcode": None,
                         "price": money(price.get("sale_price") or price.get("tax_exclusive_price")),
                         "compare_at_price": None, "currency": text(price.get("currency")), "position": position,
                         "inventory_item_id": sid, "inventory_quantity": sum(quantities) if stock else None,
                         "source_updated_at": updated, "deleted_at": deleted, "raw": s})
        for entry, quantity in zip(stock, quantities, strict=True):
            levels.append({**owner, "inventory_item_id": sid,
                           "location_id": tiktok_id(entry.get("warehouse_id"), "warehouse id"), "available": quantity,
                           "on_hand": None, "source_updated_at": updated, "deleted_at": deleted, "raw": entry})
    return {"products": [product], "product_variants": variants, "inventory_levels": levels}


def warehouse_rows(o: Owner, warehouses: Sequence[Any]) -> dict[str, list[dict[str, Any]]]:
    rows = []
    for w in warehouses:
        w = require(w, "warehouse")
        rows.append({**o.cols(), "id": tiktok_id(w["id"], "warehouse id"), "name": text(w.get("name")),
                     "active": w.get("effect_status") == "ENABLED", "source_updated_at": None, "deleted_at": None,
                     "raw": dict(w)})
    return {"inventory_locations": rows}


def _address(a: Any) -> dict[str, Any] | None:
    if not isinstance(a, Mapping) or not a:
        return None
    return {"first_name": a.get("first_name") or None, "last_name": a.get("last_name") or None,
            "name": a.get("name") or None, "company": None,
            "address1": a.get("address_line1") or a.get("address_detail") or None,
            "address2": a.get("address_line2") or None, "city": None, "province": None, "province_code": None,
            "country": None, "country_code": a.get("region_code") or None, "zip": a.get("postal_code") or None,
            "phone": a.get("phone_number") or None}


def order_rows(o: Owner, p: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    p = require(p, "order")
    oid = tiktok_id(p["id"], "order id")
    status = str(p.get("status") or "")
    updated = unix_time(p.get("update_time"))
    pay: Mapping[str, Any] = p["payment"] if isinstance(p.get("payment"), Mapping) else {}
    discounts = [money(pay.get(k)) for k in ("seller_discount", "platform_discount")]
    order = {**o.cols(), "id": oid, "name": oid, "order_number": oid, "customer_id": text(p.get("user_id")),
             "email": p.get("buyer_email") or None, "phone": None,
             "financial_status": _FINANCIAL.get(status, "paid"),
             "fulfillment_status": _FULFILLMENT.get(status, "unfulfilled"), "currency": text(pay.get("currency")),
             "subtotal_price": money(pay.get("sub_total")), "total_tax": money(pay.get("tax")),
             "total_discounts": sum((d for d in discounts if d is not None), Decimal(0)),
             "total_shipping": money(pay.get("shipping_fee")), "total_price": money(pay.get("total_amount")),
             "total_refunded": Decimal(0), "refunds_count": 0, "shipping_address": _address(p.get("recipient_address")),
             "billing_address": None, "tags": [], "processed_at": unix_time(p.get("paid_time")),
             "cancelled_at": unix_time(p.get("cancel_time")) if status in ("CANCELLED", "CANCEL") else None,
             "closed_at": updated if status == "COMPLETED" else None,
             "source_created_at": unix_time(p.get("create_time")),
             "source_updated_at": updated, "deleted_at": None, "redacted_at": None,
             "raw": {k: v for k, v in p.items() if k != "line_items"}}
    lines = []
    for li in p.get("line_items") or []:
        li = require(li, "line item")
        seller_discount, platform_discount = money(li.get("seller_discount")), money(li.get("platform_discount"))
        lines.append({**o.cols(), "id": tiktok_id(li["id"], "line item id"), "order_id": oid,
                      "product_id": text(li.get("product_id")), "variant_id": text(li.get("sku_id")),
                      "sku": li.get("seller_sku") or None, "title": text(li.get("product_name")), "quantity": 1,
                      "price": money(li.get("sale_price")),
                      "total_discount": (seller_discount or Decimal(0)) + (platform_discount or Decimal(0)),
                      "source_updated_at": updated, "raw": dict(li)})
    return {"orders": [order], "order_line_items": lines}
