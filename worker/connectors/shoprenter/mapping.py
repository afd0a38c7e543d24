"""ShopRenter API items (``productExtend``, ``customers``, ``orderExtend`` with ``full=1``) → canonical rows.

* Ids are ShopRenter's outer ids (base64 of ``product-product_id=12``), kept as text; links are
  ``{"href": …/resource/<outer id>}``, so a linked id is the href's last segment.
* Every scalar is a string, and empty text may arrive as ``[]`` or ``{}`` (PHP's empty XML node): both
  become None.
* Times have no offset and are the shop's local time (``timezone``, Europe/Budapest by default).
* A variant is a product of its own whose ``parentProduct`` is another product: every product is also
  one ``product_variants`` row (its own id) under its parent. Stock is ``stock1`` … ``stock4`` summed.
* Order totals come from ``orderTotals`` (SUB_TOTAL, TAX, SHIPPING); ``total`` is the gross total. An
  order line's quantity is its ``stock1`` … ``stock4`` (taken per warehouse). ShopRenter order statuses
  are per shop (ids only): ``financial_status`` and ``fulfillment_status`` stay None, the status is in ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from worker.connectors.canonical import MappingError, Owner, integer, money, require

__all__ = ["RESOURCE_PATHS", "RESOURCE_TABLES", "customer_rows", "link_id", "local_time", "order_rows",
           "product_rows"]

RESOURCE_TABLES: Mapping[str, tuple[str, ...]] = {
    "products": ("products", "product_variants"),
    "customers": ("customers",),
    "orders": ("orders", "order_line_items"),
}
# resource → (API path, incremental filter parameter)
RESOURCE_PATHS: Mapping[str, tuple[str, str]] = {
    "products": ("productExtend", "updatedAfter"),
    "customers": ("customers", "updatedAtMin"),
    "orders": ("orderExtend", "updatedAtMin"),
}


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, list | dict) or value == "":
        return None
    return str(value)


def link_id(value: Any) -> str | None:
    """The outer id a ``{"href": ".../customers/<id>"}`` link points at."""
    href = value.get("href") if isinstance(value, Mapping) else None
    if not isinstance(href, str) or "/" not in href:
        return None
    tail = href.rstrip("/").rpartition("/")[2].split("?", 1)[0]
    return tail or None


def local_time(value: Any, zone: ZoneInfo) -> datetime | None:
    text = _str(value)
    if text is None or text.startswith("0000-00-00"):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        raise MappingError(f"not a timestamp: {text[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def _stock(item: Mapping[str, Any]) -> int | None:
    values = [integer(_str(item.get(f"stock{n}"))) for n in (1, 2, 3, 4)]
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _name(item: Mapping[str, Any], language: str | None = None) -> str | None:
    descriptions = [d for d in item.get("productDescriptions") or [] if isinstance(d, Mapping)]
    for d in descriptions:
        if language and link_id(d.get("language")) == language:
            return _str(d.get("name"))
    return _str(descriptions[0].get("name")) if descriptions else None


def product_rows(o: Owner, p: Mapping[str, Any], zone: ZoneInfo) -> dict[str, list[dict[str, Any]]]:
    p = require(p, "product")
    pid = str(p["id"])
    updated = local_time(p.get("dateUpdated"), zone)
    status = _str(p.get("status"))
    title = _name(p)
    product = {**o.cols(), "id": pid, "title": title, "handle": None,
               "status": {"1": "active", "0": "draft"}.get(status or "", status), "vendor": None,
               "product_type": None, "tags": [], "source_created_at": local_time(p.get("dateCreated"), zone),
               "source_updated_at": updated, "deleted_at": None, "raw": dict(p)}
    variant = {**o.cols(), "id": pid, "product_id": link_id(p.get("parentProduct")) or pid, "title": title,
               "sku": _str(p.get("sku")), "barcode": _str(p.get("gtin")), "price": money(_str(p.get("price"))),
               "compare_at_price": None, "currency": None, "position": None, "inventory_item_id": None,
               "inventory_quantity": _stock(p), "source_updated_at": updated, "deleted_at": None, "raw": {}}
    return {"products": [product], "product_variants": [variant]}


def customer_rows(o: Owner, c: Mapping[str, Any], zone: ZoneInfo) -> dict[str, list[dict[str, Any]]]:
    c = require(c, "customer")
    status = _str(c.get("status"))
    newsletter = _str(c.get("newsletter"))
    raw = {k: v for k, v in c.items() if k != "password"}       # a password hash is nobody's business here
    return {"customers": [{
        **o.cols(), "id": str(c["id"]), "email": _str(c.get("email")), "phone": _str(c.get("telephone")),
        "first_name": _str(c.get("firstname")), "last_name": _str(c.get("lastname")),
        "state": {"1": "enabled", "0": "disabled"}.get(status or "", status),
        "accepts_marketing": None if newsletter is None else newsletter == "1", "orders_count": None,
        "total_spent": None, "currency": None, "tags": [], "default_address": None,
        "source_created_at": local_time(c.get("dateCreated"), zone),
        "source_updated_at": local_time(c.get("dateUpdated"), zone), "deleted_at": None, "redacted_at": None,
        "raw": raw}]}


def _address(o: Mapping[str, Any], prefix: str) -> dict[str, Any] | None:
    def f(name: str) -> str | None:
        return _str(o.get(prefix + name))

    if not any(f(n) for n in ("Firstname", "Lastname", "Address1", "City", "Postcode")):
        return None
    country = o.get(f"{prefix}Country")
    first, last = f("Firstname"), f("Lastname")
    return {"first_name": first, "last_name": last, "name": " ".join(p for p in (first, last) if p) or None,
            "company": f("Company"), "address1": f("Address1"), "address2": f("Address2"), "city": f("City"),
            "province": f("ZoneName"), "province_code": None, "country": f("CountryName"),
            "country_code": _str(country.get("isoCode2")) if isinstance(country, Mapping) else None,
            "zip": f("Postcode"), "phone": _str(o.get("phone"))}


def _totals(o: Mapping[str, Any]) -> dict[str, Decimal | None]:
    found: dict[str, Decimal | None] = {}
    for t in o.get("orderTotals") or []:
        if isinstance(t, Mapping) and _str(t.get("type")):
            found[str(t["type"])] = (found.get(str(t["type"])) or Decimal(0)) + (money(_str(t.get("value")))
                                                                                or Decimal(0))
    return found


def order_rows(o: Owner, order: Mapping[str, Any], zone: ZoneInfo) -> dict[str, list[dict[str, Any]]]:
    order = require(order, "order")
    oid = str(order["id"])
    updated = local_time(order.get("dateUpdated"), zone)
    totals = _totals(order)
    currency = order.get("currency")
    number = _str(order.get("innerId"))
    row = {**o.cols(), "id": oid, "name": f"#{number}" if number else None, "order_number": number,
           "customer_id": link_id(order.get("customer")), "email": _str(order.get("email")),
           "phone": _str(order.get("phone")), "financial_status": None, "fulfillment_status": None,
           "currency": _str(currency.get("code")) if isinstance(currency, Mapping) else None,
           "subtotal_price": totals.get("SUB_TOTAL"), "total_tax": totals.get("TAX"), "total_discounts": None,
           "total_shipping": totals.get("SHIPPING"), "total_price": money(_str(order.get("total"))),
           "total_refunded": Decimal(0), "refunds_count": 0, "shipping_address": _address(order, "shipping"),
           "billing_address": _address(order, "payment"), "tags": [], "processed_at": None, "cancelled_at": None,
           "closed_at": None, "source_created_at": local_time(order.get("dateCreated"), zone),
           "source_updated_at": updated, "deleted_at": None, "redacted_at": None,
           "raw": {k: v for k, v in order.items() if k != "orderProducts"}}
    lines = []
    for li in order.get("orderProducts") or []:
        li = require(li, "order product")
        product = link_id(li.get("product"))
        lines.append({**o.cols(), "id": str(li["id"]), "order_id": oid, "product_id": product,
                      "variant_id": product, "sku": _str(li.get("sku")), "title": _str(li.get("name")),
                      "quantity": _stock(li), "price": money(_str(li.get("price"))), "total_discount": None,
                      "source_updated_at": updated, "raw": dict(li)})
    return {"orders": [row], "order_line_items": lines}
