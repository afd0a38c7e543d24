"""REST v3 object shapes, as ``GET /wp-json/wc/v3/...`` returns them (context ``view``).

Field lists follow WooCommerce's v3 controllers (class-wc-rest-products-controller.php,
class-wc-rest-product-variations-controller.php, class-wc-rest-orders-controller.php,
class-wc-rest-customers-controller.php, class-wc-rest-webhooks-v2-controller.php). Shapes worth knowing:

* IDs are ints; money is a string (``"12.50"``), except ``line_items[].price`` which is a number (a float,
  the unit price after discounts) — as in real responses.
* Dates: ``date_*`` in site time and ``date_*_gmt`` in UTC, both ``YYYY-MM-DDTHH:MM:SS`` without an offset.
* A variable product's ``regular_price``/``sale_price`` are ``""`` and its ``price`` is the cheapest variation.
* ``GET /products/{variation_id}`` answers the variation *as a product* (``type: "variation"``,
  ``parent_id``, no categories). WooCommerce's ``product.updated`` webhook for a variation carries exactly this.
* ``refunds[].total`` is negative (``"-5.00"``).
"""

# long module: one renderer per REST v3 object shape, kept side by side in WooCommerce's field order.

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from sandbox.woocommerce.clock import format_gmt, format_local
from sandbox.woocommerce.dataset import Catalog, money, slugify

if TYPE_CHECKING:
    from sandbox.woocommerce.state import WooStore
    from sandbox.woocommerce.webhooks import WooWebhook

__all__ = ["Resources", "select_fields"]

CATEGORY_TERM_BASE = 15
REFUND_ID_BASE = 50_000_000
TAG_TERM_BASE = 40
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "HUF": "Ft", "CAD": "$", "AUD": "$", "JPY": "¥"}
_EMPTY_DIMENSIONS = {"length": "", "width": "", "height": ""}


def select_fields(obj: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """WordPress ``_fields``: top-level keys, or ``a.b`` for nested ones."""
    out: dict[str, Any] = {}
    for f in fields:
        head, _, rest = f.partition(".")
        if head not in obj:
            continue
        if not rest:
            out[head] = obj[head]
        elif isinstance(obj[head], dict):
            inner = select_fields(obj[head], [rest])
            existing = out.get(head)
            out[head] = {**existing, **inner} if isinstance(existing, dict) else inner
    return out


def _active_cents(rec: dict[str, Any]) -> int:
    sale = rec.get("sale_cents")
    return int(sale) if sale is not None else int(rec["regular_cents"])


def _stock_status(rec: dict[str, Any]) -> str:
    if "stock_status" in rec:
        return str(rec["stock_status"])
    if rec.get("manage_stock") and rec.get("stock_quantity") is not None:
        return "instock" if int(rec["stock_quantity"]) > 0 else "outofstock"
    return "instock"


class Resources:
    """Builds REST dicts for one store. Callers hold the sandbox lock."""

    def __init__(self, store: WooStore) -> None:
        self.store = store

    @property
    def cat(self) -> Catalog:
        return self.store.catalog

    def _dates(self, prefix: str, seconds: int | None) -> dict[str, str | None]:
        off = self.store.utc_offset_s
        return {prefix: format_local(seconds, off), f"{prefix}_gmt": format_gmt(seconds)}

    def _links(self, path: str, collection: str, **extra: str) -> dict[str, list[dict[str, str]]]:
        rest = self.store.rest_url
        links = {"self": [{"href": f"{rest}/wc/v3/{path}"}], "collection": [{"href": f"{rest}/wc/v3/{collection}"}]}
        for rel, p in extra.items():
            links[rel] = [{"href": f"{rest}/wc/v3/{p}"}]
        return links

    # --- products ------------------------------------------------------------------------------------------

    def _price_html(self, cents: int, regular: int | None = None) -> str:
        sym = CURRENCY_SYMBOLS.get(self.store.currency, "")
        amount = (f'<span class="woocommerce-Price-amount amount"><bdi><span class="woocommerce-Price-currencySymbol">'
                  f'{sym}</span>{money(cents)}</bdi></span>')
        if regular is not None and regular != cents:
            old = (f'<span class="woocommerce-Price-amount amount"><bdi><span class="woocommerce-Price-currencySymbol">'
                   f'{sym}</span>{money(regular)}</bdi></span>')
            return f'<del aria-hidden="true">{old}</del> <ins aria-hidden="true">{amount}</ins>'
        return amount

    def _common_product(self, rec: dict[str, Any]) -> dict[str, Any]:
        return {
            "virtual": False, "downloadable": False, "downloads": [], "download_limit": -1, "download_expiry": -1,
            "tax_status": "taxable", "tax_class": "",
        }

    def product(self, i: int) -> dict[str, Any]:
        cat = self.cat
        rec = cat.product(i)
        pid = int(cat.p_ids[i])
        nvar = int(rec["nvar"])
        home = self.store.home_url
        if nvar:
            variations = [cat.variation(i, k) for k in range(nvar)]
            live = [v for v in variations if v.get("status", "publish") == "publish"] or variations
            cheapest = min(_active_cents(v) for v in live)
            price, regular, sale = money(cheapest), "", ""
            on_sale = any(v.get("sale_cents") is not None for v in live)
            stock_status = "instock" if any(_stock_status(v) == "instock" for v in live) else "outofstock"
            top = max(_active_cents(v) for v in live)
            price_html = self._price_html(cheapest) if top == cheapest else \
                f"{self._price_html(cheapest)} &ndash; {self._price_html(top)}"
            options: list[str] = []
            colors: list[str] = []
            for v in variations:
                for name, value in v["options"]:
                    target = options if name == "Size" else colors
                    if value not in target:
                        target.append(value)
            attributes: list[dict[str, Any]] = [
                {"id": 0, "name": "Size", "slug": "Size", "position": 0, "visible": True, "variation": True,
                 "options": options}]
            if colors:
                attributes.append({"id": 0, "name": "Color", "slug": "Color", "position": 1, "visible": True,
                                   "variation": True, "options": colors})
        else:
            active = _active_cents(rec)
            price, regular = money(active), money(int(rec["regular_cents"]))
            sale = money(int(rec["sale_cents"])) if rec.get("sale_cents") is not None else ""
            on_sale = rec.get("sale_cents") is not None
            stock_status = _stock_status(rec)
            price_html = self._price_html(active, int(rec["regular_cents"]))
            attributes = []
        category = str(rec["category"])
        cats = self.cat.categories()
        out: dict[str, Any] = {
            "id": pid,
            "name": rec["name"],
            "slug": rec["slug"],
            "permalink": f"{home}/product/{rec['slug']}/",
            **self._dates("date_created", int(cat.p_created[i])),
            **self._dates("date_modified", int(cat.p_modified[i])),
            "type": rec["type"],
            "status": rec["status"],
            "featured": bool(rec["featured"]),
            "catalog_visibility": "visible",
            "description": rec["description"],
            "short_description": rec["short_description"],
            "sku": rec["sku"],
            "price": price,
            "regular_price": regular,
            "sale_price": sale,
            "date_on_sale_from": None, "date_on_sale_from_gmt": None,
            "date_on_sale_to": None, "date_on_sale_to_gmt": None,
            "on_sale": on_sale,
            "purchasable": rec["status"] == "publish" and price != "",
            "total_sales": rec["total_sales"],
            **self._common_product(rec),
            "external_url": "", "button_text": "",
            "manage_stock": bool(rec["manage_stock"]),
            "stock_quantity": rec["stock_quantity"],
            "backorders": "no", "backorders_allowed": False, "backordered": False, "low_stock_amount": None,
            "sold_individually": False,
            "weight": rec["weight"],
            "dimensions": dict(_EMPTY_DIMENSIONS),
            "shipping_required": True, "shipping_taxable": True, "shipping_class": "", "shipping_class_id": 0,
            "reviews_allowed": True, "average_rating": "0.00", "rating_count": 0,
            "upsell_ids": [], "cross_sell_ids": [],
            "parent_id": 0,
            "purchase_note": "",
            "categories": [{"id": CATEGORY_TERM_BASE + cats.index(category) if category in cats else 0,
                            "name": category, "slug": slugify(category)}],
            "tags": [{"id": TAG_TERM_BASE + self.cat.tags().index(t) if t in self.cat.tags() else 0, "name": t,
                      "slug": slugify(t)} for t in rec["tags"]],
            "images": [],
            "attributes": attributes,
            "default_attributes": [],
            "variations": [pid + 1 + k for k in range(nvar)],
            "grouped_products": [],
            "menu_order": 0,
            "price_html": price_html,
            "related_ids": [],
            "meta_data": [],
            "stock_status": stock_status,
            "has_options": bool(nvar),
            "post_password": "",
            "global_unique_id": "",
            "_links": self._links(f"products/{pid}", "products"),
        }
        for key in ("price", "regular_price", "sale_price"):
            if key in rec and isinstance(rec[key], str):  # a test may pin a raw value
                out[key] = rec[key]
        return out

    def _variation_core(self, i: int, k: int) -> tuple[dict[str, Any], dict[str, Any]]:
        cat = self.cat
        parent = cat.product(i)
        v = cat.variation(i, k)
        active = _active_cents(v)
        core: dict[str, Any] = {
            "id": int(cat.p_ids[i]) + 1 + k,
            **self._dates("date_created", cat.variation_created(i, k)),
            **self._dates("date_modified", cat.variation_modified(i, k)),
            "description": v["description"],
            "permalink": f"{self.store.home_url}/product/{parent['slug']}/?" +
                         "&".join(f"attribute_{n.lower()}={val}" for n, val in v["options"]),
            "sku": v["sku"],
            "global_unique_id": "",
            "price": money(active),
            "regular_price": money(int(v["regular_cents"])),
            "sale_price": money(int(v["sale_cents"])) if v.get("sale_cents") is not None else "",
            "date_on_sale_from": None, "date_on_sale_from_gmt": None,
            "date_on_sale_to": None, "date_on_sale_to_gmt": None,
            "on_sale": v.get("sale_cents") is not None,
            "status": v["status"],
            "purchasable": v["status"] == "publish",
            **self._common_product(v),
            "manage_stock": bool(v["manage_stock"]),
            "stock_quantity": v["stock_quantity"],
            "stock_status": _stock_status(v),
            "backorders": "no", "backorders_allowed": False, "backordered": False, "low_stock_amount": None,
            "weight": v["weight"],
            "dimensions": dict(_EMPTY_DIMENSIONS),
            "shipping_class": "", "shipping_class_id": 0,
        }
        return core, {"parent": parent, "variation": v}

    def variation(self, i: int, k: int) -> dict[str, Any]:
        """``GET /products/{id}/variations/{vid}``."""
        core, ctx = self._variation_core(i, k)
        pid = int(self.cat.p_ids[i])
        v = ctx["variation"]
        parent = ctx["parent"]
        return {
            **core,
            "image": None,
            "attributes": [{"id": 0, "name": n, "slug": n, "option": val} for n, val in v["options"]],
            "menu_order": k + 1,
            "meta_data": [],
            "name": f"{parent['name']} - " + ", ".join(val for _, val in v["options"]),
            "type": "variation",
            "parent_id": pid,
            "_links": self._links(f"products/{pid}/variations/{core['id']}", f"products/{pid}/variations",
                                  up=f"products/{pid}"),
        }

    def variation_as_product(self, i: int, k: int) -> dict[str, Any]:
        """``GET /products/{variation_id}``: the variation through the products controller."""
        core, ctx = self._variation_core(i, k)
        v = ctx["variation"]
        parent = ctx["parent"]
        pid = int(self.cat.p_ids[i])
        label = ", ".join(val for _, val in v["options"])
        slug = f"{parent['slug']}-{slugify(label)}"
        out: dict[str, Any] = {
            "id": core["id"],
            "name": f"{parent['name']} - {label}",
            "slug": slug,
            "permalink": core["permalink"],
            **{key: core[key] for key in ("date_created", "date_created_gmt", "date_modified", "date_modified_gmt")},
            "type": "variation",
            "status": v["status"],
            "featured": False,
            "catalog_visibility": "visible",
            "description": v["description"],
            "short_description": parent["short_description"],
            "sku": core["sku"],
            "price": core["price"],
            "regular_price": core["regular_price"],
            "sale_price": core["sale_price"],
            "date_on_sale_from": None, "date_on_sale_from_gmt": None,
            "date_on_sale_to": None, "date_on_sale_to_gmt": None,
            "on_sale": core["on_sale"],
            "purchasable": core["purchasable"],
            "total_sales": 0,
            **self._common_product(v),
            "external_url": "", "button_text": "",
            "manage_stock": core["manage_stock"],
            "stock_quantity": core["stock_quantity"],
            "backorders": "no", "backorders_allowed": False, "backordered": False, "low_stock_amount": None,
            "sold_individually": False,
            "weight": core["weight"],
            "dimensions": dict(_EMPTY_DIMENSIONS),
            "shipping_required": True, "shipping_taxable": True, "shipping_class": "", "shipping_class_id": 0,
            "reviews_allowed": False, "average_rating": "0.00", "rating_count": 0,
            "upsell_ids": [], "cross_sell_ids": [],
            "parent_id": pid,
            "purchase_note": "",
            "categories": [],
            "tags": [],
            "images": [],
            "attributes": [{"id": 0, "name": n, "slug": n, "option": val} for n, val in v["options"]],
            "default_attributes": [],
            "variations": [],
            "grouped_products": [],
            "menu_order": k + 1,
            "price_html": self._price_html(_active_cents(v), int(v["regular_cents"])),
            "related_ids": [],
            "meta_data": [],
            "stock_status": core["stock_status"],
            "has_options": False,
            "post_password": "",
            "global_unique_id": "",
            "_links": self._links(f"products/{core['id']}", "products", up=f"products/{pid}"),
        }
        return out

    # --- customers -----------------------------------------------------------------------------------------

    def customer(self, j: int) -> dict[str, Any]:
        cat = self.cat
        rec = cat.customer(j)
        uid = int(cat.c_ids[j])
        email_hash = hashlib.md5(str(rec["email"]).lower().encode()).hexdigest()  # noqa: S324 (Gravatar's scheme)
        return {
            "id": uid,
            **self._dates("date_created", int(cat.c_created[j])),
            **self._dates("date_modified", int(cat.c_modified[j])),
            "email": rec["email"],
            "first_name": rec["first_name"],
            "last_name": rec["last_name"],
            "role": rec["role"],
            "username": rec["username"],
            "billing": dict(rec["billing"]),
            "shipping": dict(rec["shipping"]),
            "is_paying_customer": bool(rec["is_paying_customer"]),
            "avatar_url": f"https://secure.gravatar.com/avatar/{email_hash}?s=96&d=mm&r=g",
            "meta_data": [],
            "_links": self._links(f"customers/{uid}", "customers"),
        }

    # --- orders --------------------------------------------------------------------------------------------

    def _guest_address(self, o: int) -> tuple[dict[str, str], dict[str, str]]:
        oid = int(self.cat.o_ids[o])
        email = f"guest.{oid}@example.org"
        address = {"first_name": "Guest", "last_name": f"Buyer {oid}", "company": "",
                   "address_1": f"{o % 900 + 1} Main St", "address_2": "", "city": "Austin", "state": "TX",
                   "postcode": "73301", "country": "US"}
        return {**address, "email": email, "phone": ""}, {**address, "phone": ""}

    def order(self, o: int) -> dict[str, Any]:
        cat = self.cat
        rec = cat.order(o)
        oid = int(cat.o_ids[o])
        c = rec["customer_index"]
        if c is not None and c < len(cat.c_ids) and c not in cat.c_gone:
            customer = cat.customer(c)
            billing, shipping = dict(customer["billing"]), dict(customer["shipping"])
            customer_id = int(cat.c_ids[c])
        else:
            billing, shipping = self._guest_address(o)
            customer_id = 0
        billing.update(rec.get("billing", {}))
        shipping.update(rec.get("shipping", {}))
        lines, subtotal_cents = self._line_items(rec)
        discount = subtotal_cents * int(rec["discount_pct"]) // 100
        # Spread the discount over the lines (the last absorbs rounding), like a fixed-cart coupon.
        remaining = discount
        for n, line in enumerate(lines):
            share = remaining if n == len(lines) - 1 else line["_sub"] * discount // max(subtotal_cents, 1)
            remaining -= share
            total = line["_sub"] - share
            line["total"] = money(total)
            line["price"] = round(total / 100 / max(int(line["quantity"]), 1), 6)
            del line["_sub"]
        shipping_cents = int(rec["shipping_cents"])
        total_cents = subtotal_cents - discount + shipping_cents
        refunds = self._refunds(o, rec, total_cents, lines)
        status = str(rec["status"])
        method, title = rec["payment"]
        currency = str(rec.get("currency", self.store.currency))
        paid = rec.get("date_paid")
        order_key = "wc_order_" + hashlib.sha1(f"{cat.seed}:{oid}".encode()).hexdigest()[:13]  # noqa: S324
        home = self.store.home_url
        out: dict[str, Any] = {
            "id": oid,
            "parent_id": 0,
            "status": status,
            "currency": currency,
            "version": self.store.wc_version,
            "prices_include_tax": False,
            **self._dates("date_created", int(cat.o_created[o])),
            **self._dates("date_modified", int(cat.o_modified[o])),
            "discount_total": money(discount),
            "discount_tax": "0.00",
            "shipping_total": money(shipping_cents),
            "shipping_tax": "0.00",
            "cart_tax": "0.00",
            "total": money(total_cents),
            "total_tax": "0.00",
            "customer_id": customer_id,
            "order_key": order_key,
            "billing": billing,
            "shipping": shipping,
            "payment_method": method,
            "payment_method_title": title,
            "transaction_id": f"txn_{oid:08d}" if paid else "",
            "customer_ip_address": f"203.0.113.{oid % 250 + 1}",
            "customer_user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
            "created_via": "checkout",
            "customer_note": rec["customer_note"],
            **self._dates("date_completed", rec.get("date_completed")),
            **self._dates("date_paid", paid),
            "cart_hash": hashlib.md5(f"cart:{oid}".encode()).hexdigest(),  # noqa: S324
            "number": str(rec.get("number", oid)),
            "meta_data": [],
            "line_items": lines,
            "tax_lines": [],
            "shipping_lines": [] if not shipping_cents else [
                {"id": 1 + o * 50 + 49, "method_title": "Flat rate", "method_id": "flat_rate", "instance_id": "1",
                 "total": money(shipping_cents), "total_tax": "0.00", "taxes": [], "tax_status": "taxable",
                 "meta_data": []}],
            "fee_lines": [],
            "coupon_lines": [] if not discount else [
                {"id": 1 + o * 50 + 48, "code": "save10", "discount": money(discount), "discount_tax": "0.00",
                 "discount_type": "percent", "nominal_amount": 10, "free_shipping": False, "meta_data": []}],
            "refunds": refunds,
            "payment_url": f"{home}/checkout/order-pay/{oid}/?pay_for_order=true&key={order_key}",
            "is_editable": status in ("pending", "on-hold", "auto-draft"),
            "needs_payment": status in ("pending", "failed"),
            "needs_processing": True,
            "currency_symbol": CURRENCY_SYMBOLS.get(currency, ""),
            "_links": self._links(f"orders/{oid}", "orders",
                                  **({"customer": f"customers/{customer_id}"} if customer_id else {})),
        }
        return out

    def _line_items(self, rec: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        cat = self.cat
        lines: list[dict[str, Any]] = []
        subtotal = 0
        for line in rec["line_items"]:
            i = int(line["product_index"])
            k = line.get("variation_index")
            product = cat.product(i)
            pid = int(cat.p_ids[i])
            qty = int(line["quantity"])
            if k is not None and k < int(product["nvar"]):
                v = cat.variation(i, int(k))
                unit = int(line.get("unit_cents", _active_cents(v)))
                label = ", ".join(val for _, val in v["options"])
                name, sku, vid = f"{product['name']} - {label}", v["sku"], pid + 1 + int(k)
                meta = [{"id": int(line["id"]) * 10 + n, "key": name_.lower(), "value": val, "display_key": name_,
                         "display_value": val} for n, (name_, val) in enumerate(v["options"])]
                parent_name: str | None = product["name"]
            else:
                unit = int(line.get("unit_cents", _active_cents(product)))
                name, sku, vid, meta, parent_name = product["name"], product["sku"], 0, [], None
            sub = unit * qty
            subtotal += sub
            lines.append({
                "id": int(line["id"]),
                "name": line.get("name", name),
                "product_id": pid,
                "variation_id": vid,
                "quantity": qty,
                "tax_class": "",
                "subtotal": money(sub),
                "subtotal_tax": "0.00",
                "total": money(sub),
                "total_tax": "0.00",
                "taxes": [],
                "meta_data": meta,
                "sku": sku,
                "global_unique_id": "",
                "price": 0.0,
                "image": {"id": "", "src": ""},
                "parent_name": parent_name,
                "_sub": sub,
            })
        return lines, subtotal

    def _refunds(self, o: int, rec: dict[str, Any], total_cents: int, lines: list[dict[str, Any]]) -> list[Any]:
        cat = self.cat
        refunds: list[dict[str, Any]] = []
        refund_id = REFUND_ID_BASE + o  # generated refunds get a band of their own; new ones use post IDs
        if rec["status"] == "refunded":
            refunds.append({"id": refund_id, "reason": "Order fully refunded.", "total": money(-total_cents)})
        elif rec.get("partial_refund") and lines:
            amount = min(500, total_cents)
            refunds.append({"id": refund_id, "reason": "Damaged in transit", "total": money(-amount)})
        for extra in cat.extra_refunds.get(o, []):
            refunds.append({"id": extra["id"], "reason": extra["reason"], "total": money(-int(extra["cents"]))})
        return list(reversed(refunds))  # newest first, like WC_Order::get_refunds()

    # --- webhooks ------------------------------------------------------------------------------------------

    def webhook(self, wh: WooWebhook) -> dict[str, Any]:
        return {
            "id": wh.id,
            "name": wh.name,
            "status": wh.status,
            "topic": wh.topic,
            "resource": wh.resource,
            "event": wh.event,
            "hooks": list(wh.hooks),
            "delivery_url": wh.delivery_url,
            **self._dates("date_created", wh.created_s),
            **self._dates("date_modified", wh.modified_s),
            "_links": self._links(f"webhooks/{wh.id}", "webhooks"),
        }
