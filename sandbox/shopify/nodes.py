"""GraphQL node shapes and REST (webhook) payloads built from ``dataset`` records.

GraphQL nodes are *full* dicts — every modelled field — with nested connections as ``LazyConnection``
and argument-taking fields as ``LazyValue``; ``project.Projector`` keeps what the request selected.
Scalar encodings follow the Admin API: IDs are GIDs, ``DateTime`` is second-precision UTC, ``Money`` and
``Decimal`` are strings, ``UnsignedInt64`` (``numberOfOrders``) is a string.

REST payloads follow the shape of Shopify's webhook bodies (snake_case, lowercase enums, comma-joined
tags, ``admin_graphql_api_id``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sandbox.shopify.clock import format_gql, format_rest
from sandbox.shopify.dataset import LOCATION_BASE, MAX_CHILDREN, Catalog, decode_cursor, encode_cursor, money
from sandbox.shopify.gql import LazyConnection, LazyValue
from sandbox.shopify.project import FieldError

if TYPE_CHECKING:
    from sandbox.shopify.state import Shop

__all__ = ["MAX_PAGE_SIZE", "NodeBuilder", "connection", "gid", "page_args", "parse_gid"]

MAX_PAGE_SIZE = 250
T = TypeVar("T")

QUANTITY_NAMES = ("available", "on_hand", "committed", "incoming", "reserved", "damaged", "safety_stock",
                  "quality_control")


def gid(kind: str, legacy_id: int | str) -> str:
    return f"gid://shopify/{kind}/{legacy_id}"


def parse_gid(value: Any) -> tuple[str, int] | None:
    """``gid://shopify/Product/123`` (query string allowed) -> ("Product", 123)."""
    if not isinstance(value, str) or not value.startswith("gid://shopify/"):
        return None
    kind, _, rest = value[len("gid://shopify/"):].partition("/")
    num = rest.split("?", 1)[0]
    return (kind, int(num)) if num.isdigit() else None


def page_args(args: dict[str, Any]) -> tuple[int | None, int | None, str | None, str | None]:
    """Validate ``first``/``last``/``after``/``before`` the way the Admin API does."""
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise FieldError("you must provide one of first or last", "argumentLiteralsIncompatible")
    for name, value in (("first", first), ("last", last)):
        if value is None:
            continue
        if not isinstance(value, int) or value < 0:
            raise FieldError(f"Argument '{name}' must be a non-negative integer", "argumentLiteralsIncompatible")
        if value > MAX_PAGE_SIZE:
            # Sandbox wording; the rule (a page holds at most 250 nodes) is Shopify's.
            raise FieldError(f"The '{name}' argument cannot exceed {MAX_PAGE_SIZE}.", "MAX_PAGE_SIZE_EXCEEDED",
                             maximum=MAX_PAGE_SIZE)
    after, before = args.get("after"), args.get("before")
    return first, last, after if isinstance(after, str) else None, before if isinstance(before, str) else None


def connection(nodes: list[Any], cursors: list[str], has_next: bool, has_previous: bool) -> dict[str, Any]:
    return {
        "edges": [{"cursor": c, "node": n} for n, c in zip(nodes, cursors, strict=True)],
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def list_connection(items: Sequence[T], build: Callable[[T], dict[str, Any]], key: Callable[[T], int],
                    args: dict[str, Any]) -> dict[str, Any]:
    """A connection over a small in-memory list (variants of a product, line items of an order)."""
    first, last, after, before = page_args(args)
    lo, hi = 0, len(items)
    if after:
        decoded = decode_cursor(after)
        if decoded is None:
            raise FieldError("Invalid cursor", "invalidCursor")
        lo = next((p + 1 for p, it in enumerate(items) if key(it) == decoded[0]), len(items))
    if before:
        decoded = decode_cursor(before)
        if decoded is None:
            raise FieldError("Invalid cursor", "invalidCursor")
        hi = next((p for p, it in enumerate(items) if key(it) == decoded[0]), 0)
    window = list(items[lo:hi])
    if first is not None:
        chosen, has_next, has_prev = window[:first], len(window) > first, lo > 0
    else:
        n = last or 0
        chosen = window[-n:] if n else []
        has_next, has_prev = hi < len(items), len(window) > len(chosen)
    nodes = [build(it) for it in chosen]
    cursors = [encode_cursor(key(it), key(it)) for it in chosen]
    return connection(nodes, cursors, has_next, has_prev)


def _money_bag(cents: int, currency: str) -> dict[str, Any]:
    amount = {"__typename": "MoneyV2", "amount": money(cents), "currencyCode": currency}
    return {"__typename": "MoneyBag", "shopMoney": amount, "presentmentMoney": dict(amount)}


def _first_n(items: list[T], args: dict[str, Any]) -> list[T]:
    first = args.get("first")
    return items[:first] if isinstance(first, int) else items


class NodeBuilder:
    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.catalog: Catalog = shop.catalog
        self.currency = shop.catalog.spec.currency

    # --- products --------------------------------------------------------------------------------------

    def product(self, i: int) -> dict[str, Any]:
        rec = self.catalog.product(i)
        variants = self.catalog.variants(i, rec)
        option_names: dict[str, list[str]] = {}
        for v in variants:
            for name, value in v["options"]:
                values = option_names.setdefault(name, [])
                if value not in values:
                    values.append(value)
        pid = gid("Product", rec["id"])
        return {
            "__typename": "Product",
            "id": pid,
            "legacyResourceId": str(rec["id"]),
            "title": rec["title"],
            "handle": rec["handle"],
            "status": rec["status"],
            "vendor": rec["vendor"],
            "productType": rec["product_type"],
            "tags": list(rec["tags"]),
            "descriptionHtml": rec["description"],
            "description": str(rec["description"]).replace("<p>", "").replace("</p>", ""),
            "createdAt": format_gql(rec["created_us"]),
            "updatedAt": format_gql(rec["updated_us"]),
            "publishedAt": format_gql(rec["created_us"]) if rec["status"] == "ACTIVE" else None,
            "templateSuffix": None,
            "onlineStoreUrl": None,
            "tracksInventory": True,
            "isGiftCard": False,
            "totalInventory": LazyValue(lambda _a: sum(self.catalog.inventory_total(i, int(v["index"]))
                                                       for v in variants)),
            "variantsCount": {"count": len(variants), "precision": "EXACT"},
            "options": [{"__typename": "ProductOption", "id": gid("ProductOption", rec["id"] * 10 + n),
                         "name": name, "position": n + 1, "values": values}
                        for n, (name, values) in enumerate(option_names.items())],
            "variants": LazyConnection(
                lambda args: list_connection(variants, lambda v: self.variant(i, int(v["index"]), rec, v),
                                             lambda v: int(v["id"]), args),
                lambda: (self.variant(i, int(v["index"]), rec, v) for v in variants)),
        }

    def variant(self, i: int, k: int, product: dict[str, Any] | None = None,
                rec: dict[str, Any] | None = None) -> dict[str, Any]:
        product = product or self.catalog.product(i)
        rec = rec or self.catalog.variant(i, k, product)
        vid = gid("ProductVariant", rec["id"])
        return {
            "__typename": "ProductVariant",
            "id": vid,
            "legacyResourceId": str(rec["id"]),
            "title": rec["title"],
            "displayName": f"{product['title']} - {rec['title']}",
            "sku": rec["sku"],
            "barcode": rec["barcode"],
            "price": money(rec["price_cents"]),
            "compareAtPrice": money(rec["compare_at_cents"]),
            "position": rec["position"],
            "taxable": rec["taxable"],
            "inventoryPolicy": rec["inventory_policy"],
            "availableForSale": product["status"] == "ACTIVE",
            "inventoryQuantity": LazyValue(lambda _a: self.catalog.inventory_total(i, k)),
            "selectedOptions": [{"__typename": "SelectedOption", "name": n, "value": v} for n, v in rec["options"]],
            "createdAt": format_gql(rec["created_us"]),
            "updatedAt": format_gql(rec["updated_us"]),
            "product": {"__typename": "Product", "id": gid("Product", product["id"]), "title": product["title"],
                        "handle": product["handle"], "legacyResourceId": str(product["id"])},
            "inventoryItem": self.inventory_item(i, k, rec, vid),
        }

    def inventory_item(self, i: int, k: int, variant: dict[str, Any], variant_gid: str) -> dict[str, Any]:
        item_gid = gid("InventoryItem", variant["inventory_item_id"])
        locations = [j for j, loc in enumerate(self.catalog.locations) if loc["active"]]

        def level_for(args: dict[str, Any]) -> dict[str, Any] | None:
            parsed = parse_gid(args.get("locationId"))
            j = self.catalog.location_index(parsed[1]) if parsed else None
            return self.inventory_level(i, k, j, variant) if j is not None else None

        return {
            "__typename": "InventoryItem",
            "id": item_gid,
            "legacyResourceId": str(variant["inventory_item_id"]),
            "sku": variant["sku"],
            "tracked": True,
            "requiresShipping": True,
            "createdAt": format_gql(variant["created_us"]),
            "updatedAt": format_gql(variant["updated_us"]),
            "variant": {"__typename": "ProductVariant", "id": variant_gid},
            "inventoryLevel": LazyValue(level_for),
            "inventoryLevels": LazyConnection(
                lambda args: list_connection(locations, lambda j: self.inventory_level(i, k, j, variant),
                                             lambda j: LOCATION_BASE + j + 1, args),
                lambda: (self.inventory_level(i, k, j, variant) for j in locations)),
        }

    def inventory_level(self, i: int, k: int, j: int, variant: dict[str, Any] | None = None) -> dict[str, Any]:
        lvl = self.catalog.inventory_level(i, k, j, variant)
        loc = self.catalog.locations[j]
        values = {"available": lvl["available"], "on_hand": lvl["on_hand"], "committed": lvl["committed"]}
        updated = format_gql(lvl["updated_us"])

        def quantities(args: dict[str, Any]) -> list[dict[str, Any]]:
            names = args.get("names") or ["available"]
            return [{"__typename": "InventoryQuantity", "id": None, "name": n, "quantity": values.get(n, 0),
                     "updatedAt": updated} for n in names if n in QUANTITY_NAMES]

        item_gid = gid("InventoryItem", lvl["inventory_item_id"])
        return {
            "__typename": "InventoryLevel",
            "id": f"gid://shopify/InventoryLevel/{loc['id']}?inventory_item_id={lvl['inventory_item_id']}",
            "location": {"__typename": "Location", "id": gid("Location", loc["id"]), "name": loc["name"]},
            "item": {"__typename": "InventoryItem", "id": item_gid},
            "quantities": LazyValue(quantities),
            "canDeactivate": True,
            "createdAt": format_gql(loc["created_us"]),
            "updatedAt": updated,
        }

    # --- locations -------------------------------------------------------------------------------------

    def location(self, j: int) -> dict[str, Any]:
        loc = self.catalog.locations[j]

        def all_levels() -> Iterator[dict[str, Any]]:
            for i in range(self.catalog.products.count):
                if self.catalog.products.alive(i):
                    prod = self.catalog.product(i)
                    for k in range(int(prod["variant_count"])):
                        yield self.inventory_level(i, k, j)

        def levels_page(args: dict[str, Any]) -> dict[str, Any]:
            keys = [(i, k) for i in range(self.catalog.products.count) if self.catalog.products.alive(i)
                    for k in range(int(self.catalog.product(i)["variant_count"]))]
            return list_connection(keys, lambda ik: self.inventory_level(ik[0], ik[1], j),
                                   lambda ik: ik[0] * MAX_CHILDREN + ik[1], args)

        return {
            "__typename": "Location",
            "id": gid("Location", loc["id"]),
            "legacyResourceId": str(loc["id"]),
            "name": loc["name"],
            "isActive": loc["active"],
            "fulfillsOnlineOrders": True,
            "hasActiveInventory": True,
            "address": {"__typename": "LocationAddress", "address1": loc["address1"], "address2": None,
                        "city": loc["city"], "provinceCode": loc["province_code"], "countryCode": loc["country_code"],
                        "country": loc["country"], "zip": loc["zip"],
                        "formatted": [loc["address1"], f"{loc['city']} {loc['zip']}", loc["country"]]},
            "createdAt": format_gql(loc["created_us"]),
            "updatedAt": format_gql(loc["updated_us"]),
            "inventoryLevels": LazyConnection(levels_page, all_levels),
        }

    # --- customers -------------------------------------------------------------------------------------

    def mailing_address(self, addr: dict[str, Any] | None, model: str = "CustomerAddress") -> dict[str, Any] | None:
        if addr is None:
            return None
        return {
            "__typename": "MailingAddress",
            "id": f"gid://shopify/MailingAddress/{addr['id']}?model_name={model}",
            "firstName": addr["first_name"],
            "lastName": addr["last_name"],
            "name": addr["name"],
            "company": addr["company"],
            "address1": addr["address1"],
            "address2": addr["address2"],
            "city": addr["city"],
            "province": addr["province_code"],
            "provinceCode": addr["province_code"],
            "country": addr["country"],
            "countryCodeV2": addr["country_code"],
            "zip": addr["zip"],
            "phone": addr["phone"],
            "formatted": [p for p in (addr["address1"], addr["address2"], f"{addr['city']} {addr['zip']}",
                                      addr["country"]) if p],
        }

    def customer(self, i: int) -> dict[str, Any]:
        rec = self.catalog.customer(i)
        addr = self.mailing_address(rec["address"])
        return {
            "__typename": "Customer",
            "id": gid("Customer", rec["id"]),
            "legacyResourceId": str(rec["id"]),
            "email": rec["email"],
            "phone": rec["phone"],
            "firstName": rec["first_name"],
            "lastName": rec["last_name"],
            "displayName": f"{rec['first_name']} {rec['last_name']}",
            "state": rec["state"],
            "tags": list(rec["tags"]),
            "note": rec["note"],
            "verifiedEmail": rec["verified_email"],
            "taxExempt": False,
            "numberOfOrders": LazyValue(lambda _a: str(self.catalog.customer_stats(i)[0])),
            "amountSpent": LazyValue(lambda _a: {"__typename": "MoneyV2",
                                                 "amount": money(self.catalog.customer_stats(i)[1]),
                                                 "currencyCode": self.currency}),
            "defaultAddress": addr,
            "addresses": LazyValue(lambda a: _first_n([addr] if addr else [], a)),
            "emailMarketingConsent": {"__typename": "CustomerEmailMarketingConsentState",
                                      "marketingState": "SUBSCRIBED" if "newsletter" in rec["tags"] else
                                      "NOT_SUBSCRIBED", "marketingOptInLevel": "SINGLE_OPT_IN",
                                      "consentUpdatedAt": None},
            "createdAt": format_gql(rec["created_us"]),
            "updatedAt": format_gql(rec["updated_us"]),
        }

    # --- orders ----------------------------------------------------------------------------------------

    def order(self, o: int) -> dict[str, Any]:
        rec = self.catalog.order(o)
        cur = self.currency
        lines: list[dict[str, Any]] = rec["line_items"]
        customer = None
        if rec["customer_id"] is not None:
            cust = self.catalog.customer(int(rec["customer_index"]))
            customer = {"__typename": "Customer", "id": gid("Customer", rec["customer_id"]),
                        "legacyResourceId": str(rec["customer_id"]), "email": cust["email"],
                        "firstName": cust["first_name"], "lastName": cust["last_name"],
                        "displayName": f"{cust['first_name']} {cust['last_name']}"}
        fulfillments = [self._fulfillment(f, cur) for f in rec["fulfillments"]]
        refunds = [{"__typename": "Refund", "id": gid("Refund", r["id"]), "note": None,
                    "totalRefundedSet": _money_bag(r["amount_cents"], cur), "createdAt": format_gql(r["created_us"]),
                    "updatedAt": format_gql(r["created_us"])} for r in rec["refunds"]]
        line_total = sum(int(li["price_cents"]) * int(li["quantity"]) for li in lines)
        return {
            "__typename": "Order",
            "id": gid("Order", rec["id"]),
            "legacyResourceId": str(rec["id"]),
            "name": rec["name"],
            "email": rec["email"],
            "phone": rec["phone"],
            "displayFinancialStatus": rec["financial_status"],
            "displayFulfillmentStatus": rec["fulfillment_status"],
            "currencyCode": cur,
            "presentmentCurrencyCode": cur,
            "subtotalPriceSet": _money_bag(rec["subtotal_cents"], cur),
            "totalPriceSet": _money_bag(rec["total_cents"], cur),
            "currentTotalPriceSet": _money_bag(int(rec["total_cents"]) - int(rec["refunded_cents"]), cur),
            "totalTaxSet": _money_bag(rec["tax_cents"], cur),
            "totalDiscountsSet": _money_bag(rec["discount_cents"], cur),
            "totalShippingPriceSet": _money_bag(rec["shipping_cents"], cur),
            "totalRefundedSet": _money_bag(rec["refunded_cents"], cur),
            "totalLineItemsPriceSet": _money_bag(line_total, cur),
            "customer": customer,
            "shippingAddress": self.mailing_address(rec["shipping_address"], "Address"),
            "billingAddress": self.mailing_address(rec["billing_address"], "Address"),
            "tags": list(rec["tags"]),
            "note": rec["note"],
            "test": False,
            "confirmed": True,
            "closed": rec["closed_us"] is not None,
            "cancelReason": "OTHER" if rec["cancelled_us"] else None,
            "processedAt": format_gql(rec["processed_us"]),
            "cancelledAt": format_gql(rec["cancelled_us"]),
            "closedAt": format_gql(rec["closed_us"]),
            "createdAt": format_gql(rec["created_us"]),
            "updatedAt": format_gql(rec["updated_us"]),
            "lineItems": LazyConnection(
                lambda args: list_connection(lines, lambda li: self._line_item(li, rec), lambda li: int(li["id"]),
                                             args),
                lambda: (self._line_item(li, rec) for li in lines)),
            "fulfillments": LazyValue(lambda a: _first_n(fulfillments, a)),
            "refunds": LazyValue(lambda a: _first_n(refunds, a)),
        }

    def _line_item(self, li: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
        cur = self.currency
        qty, price, disc = int(li["quantity"]), int(li["price_cents"]), int(li["discount_cents"])
        product = variant = None
        if li["product_id"] is not None and self.catalog.products.live_index(int(li["product_id"])) is not None:
            product = {"__typename": "Product", "id": gid("Product", li["product_id"])}
            if self.catalog.variant_by_id(int(li["variant_id"])) is not None:
                variant = {"__typename": "ProductVariant", "id": gid("ProductVariant", li["variant_id"])}
        fulfilled = order["fulfillment_status"] == "FULFILLED"
        return {
            "__typename": "LineItem",
            "id": gid("LineItem", li["id"]),
            "title": li["title"],
            "name": f"{li['title']} - {li['variant_title']}" if li["variant_title"] else li["title"],
            "sku": li["sku"],
            "vendor": li["vendor"],
            "quantity": qty,
            "currentQuantity": qty,
            "unfulfilledQuantity": 0 if fulfilled else qty,
            "variantTitle": li["variant_title"],
            "taxable": True,
            "requiresShipping": True,
            "originalUnitPriceSet": _money_bag(price, cur),
            "discountedUnitPriceSet": _money_bag(price - disc // max(qty, 1), cur),
            "originalTotalSet": _money_bag(price * qty, cur),
            "totalDiscountSet": _money_bag(disc, cur),
            "product": product,
            "variant": variant,
        }

    def _fulfillment(self, f: dict[str, Any], cur: str) -> dict[str, Any]:
        tracking = [{"__typename": "FulfillmentTrackingInfo", "company": f["company"], "number": f["number"],
                     "url": f["url"]}]
        return {
            "__typename": "Fulfillment",
            "id": gid("Fulfillment", f["id"]),
            "legacyResourceId": str(f["id"]),
            "status": f["status"],
            "displayStatus": "FULFILLED",
            "trackingInfo": LazyValue(lambda a: _first_n(tracking, a)),
            "createdAt": format_gql(f["created_us"]),
            "updatedAt": format_gql(f["updated_us"]),
        }

    # --- REST payloads (webhook bodies) -----------------------------------------------------------------

    def product_rest(self, i: int) -> dict[str, Any]:
        rec = self.catalog.product(i)
        variants = self.catalog.variants(i, rec)
        names: list[str] = []
        for v in variants:
            for name, _ in v["options"]:
                if name not in names:
                    names.append(name)
        return {
            "admin_graphql_api_id": gid("Product", rec["id"]),
            "body_html": rec["description"],
            "created_at": format_rest(rec["created_us"]),
            "handle": rec["handle"],
            "id": rec["id"],
            "product_type": rec["product_type"],
            "published_at": format_rest(rec["created_us"]) if rec["status"] == "ACTIVE" else None,
            "template_suffix": None,
            "title": rec["title"],
            "updated_at": format_rest(rec["updated_us"]),
            "vendor": rec["vendor"],
            "status": str(rec["status"]).lower(),
            "published_scope": "global",
            "tags": ", ".join(rec["tags"]),
            "variants": [self._variant_rest(i, v) for v in variants],
            "variant_gids": [{"admin_graphql_api_id": gid("ProductVariant", v["id"]),
                              "updated_at": format_rest(v["updated_us"])} for v in variants],
            "options": [{"name": n, "id": rec["id"] * 10 + p, "product_id": rec["id"], "position": p + 1,
                         "values": sorted({val for v in variants for name, val in v["options"] if name == n})}
                        for p, n in enumerate(names)],
            "images": [],
            "image": None,
            "media": [],
            "category": None,
            "has_variants_that_requires_components": False,
        }

    def _variant_rest(self, i: int, v: dict[str, Any]) -> dict[str, Any]:
        opts = [val for _, val in v["options"]] + [None, None, None]
        qty = self.catalog.inventory_total(i, int(v["index"]))
        return {
            "admin_graphql_api_id": gid("ProductVariant", v["id"]),
            "barcode": v["barcode"],
            "compare_at_price": money(v["compare_at_cents"]),
            "created_at": format_rest(v["created_us"]),
            "id": v["id"],
            "inventory_policy": str(v["inventory_policy"]).lower(),
            "position": v["position"],
            "price": money(v["price_cents"]),
            "product_id": v["product_id"],
            "sku": v["sku"],
            "taxable": v["taxable"],
            "title": v["title"],
            "updated_at": format_rest(v["updated_us"]),
            "option1": opts[0],
            "option2": opts[1],
            "option3": opts[2],
            "image_id": None,
            "inventory_item_id": v["inventory_item_id"],
            "inventory_quantity": qty,
            "old_inventory_quantity": qty,
            "inventory_management": "shopify",
            "requires_shipping": True,
            "grams": v["weight_grams"],
            "weight": v["weight_grams"],
            "weight_unit": "g",
        }

    def _address_rest(self, addr: dict[str, Any] | None, customer_id: int | None = None) -> dict[str, Any] | None:
        if addr is None:
            return None
        out = {"first_name": addr["first_name"], "last_name": addr["last_name"], "name": addr["name"],
               "company": addr["company"], "address1": addr["address1"], "address2": addr["address2"],
               "city": addr["city"], "province": addr["province_code"], "province_code": addr["province_code"],
               "country": addr["country"], "country_code": addr["country_code"], "zip": addr["zip"],
               "phone": addr["phone"]}
        if customer_id is not None:
            out.update({"id": addr["id"], "customer_id": customer_id, "country_name": addr["country"],
                        "default": True})
        return out

    def customer_rest(self, i: int) -> dict[str, Any]:
        rec = self.catalog.customer(i)
        addr = self._address_rest(rec["address"], rec["id"])
        return {
            "id": rec["id"],
            "email": rec["email"],
            "created_at": format_rest(rec["created_us"]),
            "updated_at": format_rest(rec["updated_us"]),
            "first_name": rec["first_name"],
            "last_name": rec["last_name"],
            "state": str(rec["state"]).lower(),
            "note": rec["note"],
            "verified_email": rec["verified_email"],
            "multipass_identifier": None,
            "tax_exempt": False,
            "phone": rec["phone"],
            "currency": self.currency,
            "tags": ", ".join(rec["tags"]),
            "addresses": [addr] if addr else [],
            "tax_exemptions": [],
            "admin_graphql_api_id": gid("Customer", rec["id"]),
            "default_address": addr,
            "email_marketing_consent": {"state": "subscribed" if "newsletter" in rec["tags"] else "not_subscribed",
                                        "opt_in_level": "single_opt_in", "consent_updated_at": None},
        }

    def order_rest(self, o: int) -> dict[str, Any]:
        rec = self.catalog.order(o)
        cur = self.currency

        def price_set(cents: int) -> dict[str, Any]:
            return {"shop_money": {"amount": money(cents), "currency_code": cur},
                    "presentment_money": {"amount": money(cents), "currency_code": cur}}

        customer = None
        if rec["customer_id"] is not None:
            cust = self.catalog.customer(int(rec["customer_index"]))
            customer = {"id": cust["id"], "email": cust["email"], "first_name": cust["first_name"],
                        "last_name": cust["last_name"], "phone": cust["phone"], "state": str(cust["state"]).lower(),
                        "admin_graphql_api_id": gid("Customer", cust["id"]),
                        "created_at": format_rest(cust["created_us"]), "updated_at": format_rest(cust["updated_us"])}
        fstatus = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(str(rec["fulfillment_status"]))
        lines = rec["line_items"]
        return {
            "id": rec["id"],
            "admin_graphql_api_id": gid("Order", rec["id"]),
            "name": rec["name"],
            "number": int(rec["order_number"]) - 1000,
            "order_number": rec["order_number"],
            "email": rec["email"],
            "contact_email": rec["email"],
            "phone": rec["phone"],
            "created_at": format_rest(rec["created_us"]),
            "updated_at": format_rest(rec["updated_us"]),
            "processed_at": format_rest(rec["processed_us"]),
            "cancelled_at": format_rest(rec["cancelled_us"]),
            "cancel_reason": "other" if rec["cancelled_us"] else None,
            "closed_at": format_rest(rec["closed_us"]),
            "currency": cur,
            "presentment_currency": cur,
            "financial_status": str(rec["financial_status"]).lower(),
            "fulfillment_status": fstatus,
            "subtotal_price": money(rec["subtotal_cents"]),
            "total_price": money(rec["total_cents"]),
            "current_total_price": money(int(rec["total_cents"]) - int(rec["refunded_cents"])),
            "total_tax": money(rec["tax_cents"]),
            "total_discounts": money(rec["discount_cents"]),
            "total_line_items_price": money(sum(int(li["price_cents"]) * int(li["quantity"]) for li in lines)),
            "total_shipping_price_set": price_set(rec["shipping_cents"]),
            "total_price_set": price_set(rec["total_cents"]),
            "test": False,
            "confirmed": True,
            "tags": ", ".join(rec["tags"]),
            "note": rec["note"],
            "customer": customer,
            "billing_address": self._address_rest(rec["billing_address"]),
            "shipping_address": self._address_rest(rec["shipping_address"]),
            "line_items": [{
                "id": li["id"], "admin_graphql_api_id": gid("LineItem", li["id"]), "title": li["title"],
                "name": f"{li['title']} - {li['variant_title']}" if li["variant_title"] else li["title"],
                "sku": li["sku"], "vendor": li["vendor"], "quantity": li["quantity"], "price": money(li["price_cents"]),
                "product_id": li["product_id"], "variant_id": li["variant_id"], "variant_title": li["variant_title"],
                "total_discount": money(li["discount_cents"]), "taxable": True, "requires_shipping": True,
                "fulfillable_quantity": 0 if fstatus == "fulfilled" else li["quantity"], "fulfillment_status": fstatus,
            } for li in lines],
            "fulfillments": [{
                "id": f["id"], "order_id": rec["id"], "status": str(f["status"]).lower(),
                "tracking_company": f["company"],
                "tracking_number": f["number"], "tracking_url": f["url"], "tracking_numbers": [f["number"]],
                "tracking_urls": [f["url"]], "created_at": format_rest(f["created_us"]),
                "updated_at": format_rest(f["updated_us"]), "admin_graphql_api_id": gid("Fulfillment", f["id"]),
            } for f in rec["fulfillments"]],
            "refunds": [{
                "id": r["id"], "order_id": rec["id"], "created_at": format_rest(r["created_us"]),
                "admin_graphql_api_id": gid("Refund", r["id"]), "note": None,
                "transactions": [{"amount": money(r["amount_cents"]), "kind": "refund", "status": "success",
                                  "currency": cur}],
            } for r in rec["refunds"]],
        }

    def inventory_level_rest(self, i: int, k: int, j: int) -> dict[str, Any]:
        lvl = self.catalog.inventory_level(i, k, j)
        loc = self.catalog.locations[j]
        return {
            "inventory_item_id": lvl["inventory_item_id"],
            "location_id": loc["id"],
            "available": lvl["available"],
            "updated_at": format_rest(lvl["updated_us"]),
            "admin_graphql_api_id":
                f"gid://shopify/InventoryLevel/{loc['id']}?inventory_item_id={lvl['inventory_item_id']}",
        }
