"""Records -> ShopRenter's JSON and XML shapes.

Field names and value styles follow the response fixtures in github.com/Shoprenter/sr-api-docs
(``fixtures/api/product_extend``, ``customer``, ``order_extend``, ``order_product``, ``webhook``, ...):

* every scalar is a string (``"price": "2200.0000"``, ``"stock1": "12"``, ``"status": "1"``);
* empty text comes back as ``[]`` in productExtend and ``{}`` in customers (PHP's empty XML node turned into
  JSON) but as ``""`` in orderExtend — each as in its fixture;
* linked resources are ``{"href": ...}`` only, even with ``full=1`` (it expands the items, not their links);
  ``orderExtend`` embeds ``language``, ``currency``, ``shippingCountry``/``paymentCountry``, ``orderTotals`` and
  ``orderProducts``;
* ``orderProducts`` have no quantity field: the quantity is ``stock1`` + ... + ``stock4`` (taken per warehouse);
  ``total`` is net price × quantity; ``orderExtend.total`` is the *gross* order total;
* ``productDescriptions[].language`` is an href: map it to a code via ``/languages``;
* a product that is no variant child has ``parentProduct`` pointing at itself (as in the fixture and the
  orderProduct ``parentProduct`` description: "If not exists, then this value is equal with the 'product'").

The webhook payload (``order_payload``) follows docs ``development/api/07_webhook.md``: ``{"orders": {"order":
[{...}]}}`` with ``total`` = net, ``totalGross`` = gross and line items under ``orderProducts.orderProduct`` (these
do carry ``quantity``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from sandbox.shoprenter.dataset import (
    CURRENCIES,
    LANGUAGES,
    ORDER_STATUSES,
    TAX_RATE,
    Catalog,
    Customer,
    Order,
    Product,
    money,
)
from sandbox.shoprenter.ids import format_local, outer_id

__all__ = [
    "DEFAULT_WEBHOOK_FIELDS",
    "WEBHOOK_FIELDS",
    "Fmt",
    "customer_item",
    "language_item",
    "order_item",
    "order_payload",
    "order_status_description_item",
    "order_status_item",
    "product_item",
    "to_xml",
]

LANG_ID = {code: lid for lid, code, _ in LANGUAGES}


def _href(api: str, path: str, kind: str, inner: int, extra: str = "") -> dict[str, str]:
    return {"href": f"{api}/{path}/{outer_id(kind, inner, extra)}"}


def _s(value: int | Decimal | str) -> str:
    return str(value)


class Fmt:
    """How a shop renders dates: its time zone and the date/time separator."""

    __slots__ = ("sep", "tz")

    def __init__(self, tz: str, sep: str = "T") -> None:
        self.tz = tz
        self.sep = sep

    def date(self, seconds: int) -> str:
        return format_local(seconds, self.tz, self.sep)

    def sql_date(self, seconds: int) -> str:
        return format_local(seconds, self.tz, " ")


def product_item(p: Product, api: str, fmt: Fmt) -> dict[str, Any]:
    pid = outer_id("product", p.inner_id)
    created, updated = fmt.date(p.created), fmt.date(p.updated)
    net = p.price
    gross = (net * (1 + TAX_RATE / 100)).quantize(Decimal("1"))
    prices = [{"customerGroup": {"id": outer_id("customerGroup", 8), "innerId": "8", "default": True},
               "net": _s(net.quantize(Decimal("1"))), "netOriginal": _s(net.quantize(Decimal("1"))),
               "netSpecial": None, "gross": _s(gross), "grossOriginal": _s(gross), "grossSpecial": None,
               "currencyCode": "HUF"}]
    descriptions = []
    for lid, code, _ in LANGUAGES:
        if code not in p.names:
            continue
        did = outer_id("productDescription", p.inner_id, f"&language_id={lid}")
        descriptions.append({
            "href": f"{api}/productDescriptions/{did}", "id": did, "name": p.names[code],
            "metaKeywords": [], "metaDescription": [],
            "shortDescription": p.short_descriptions.get(code) or [], "description": [],
            "parameters": [], "packagingUnit": [], "measurementUnit": "db" if code == "hu" else "pc",
            "customContentTitle": [], "customContent": [], "dateCreated": created, "dateUpdated": updated,
            "videoCode": [], "product": {"href": f"{api}/products/{pid}"},
            "language": _href(api, "languages", "language", lid)})
    parent = p.parent_id if p.parent_id is not None else p.inner_id
    return {
        "href": f"{api}/productExtend/{pid}", "id": pid, "innerId": _s(p.inner_id), "sku": p.sku,
        "modelNumber": p.model_number or [], "gtin": p.gtin or [], "orderable": "1", "price": money(p.price),
        "cost": money(p.cost), "multiplier": "1.0000", "multiplierLock": "0", "loyaltyPoints": [],
        "stock1": _s(p.stock[0]), "stock2": _s(p.stock[1]), "stock3": _s(p.stock[2]), "stock4": _s(p.stock[3]),
        "subtractStock": "1", "mainPicture": f"product/{p.sku.lower()}.jpg", "width": "0.00", "height": "0.00",
        "length": "0.00", "weight": f"{p.weight:.2f}", "status": _s(p.status), "shipped": "1",
        "minimalOrderNumber": "1", "maximalOrderNumber": "0", "minimalOrderNumberMultiply": "0",
        "availableDate": "0000-00-00", "quantity": "0.0000", "sortOrder": "0", "dateCreated": created,
        "dateUpdated": updated, "imageAlt": [], "freeShipping": "0", "productAttributeExtend": [],
        "productPrices": prices, "taxClass": _href(api, "taxClasses", "taxClass", 10),
        "noStockStatus": _href(api, "stockStatuses", "stockStatus", 5),
        "inStockStatus": _href(api, "stockStatuses", "stockStatus", 9),
        "productClass": _href(api, "productClasses", "productClass", 1),
        "parentProduct": _href(api, "products", "product", parent),
        "volumeUnit": _href(api, "lengthClasses", "lengthClass", 1),
        "weightUnit": _href(api, "weightClasses", "weightClass", 1),
        "manufacturer": _href(api, "manufacturers", "manufacturer", 1 + p.inner_id % 5),
        "allImages": {"mainImage": f"{api.rsplit('/api', 1)[0]}/custom/image/product/{p.sku.lower()}.jpg"},
        "productDescriptions": descriptions, "productRelatedProductRelations": [], "productCategoryRelations": [],
        "productSpecials": [], "productProductBadgeRelations": [],
        "productListAttributeValueRelations": {"href": f"{api}/productListAttributeValueRelations?productId={pid}"},
        "numberAttributeValues": {"href": f"{api}/numberAttributeValues?productId={pid}"},
        "textAttributeValues": {"href": f"{api}/textAttributeValues?productId={pid}"},
        "productTags": [], "productCollateralProductRelations": [], "customerGroupProductPrices": [],
        "relatedProducts": {"href": f"{api}/products/{pid}/relatedProducts"},
        "collateralProducts": {"href": f"{api}/products/{pid}/collateralProducts"}, "urlAliases": [],
    }


def customer_item(c: Customer, api: str, fmt: Fmt) -> dict[str, Any]:
    cid = outer_id("customer", c.inner_id)
    return {
        "href": f"{api}/customers/{cid}", "id": cid, "innerId": _s(c.inner_id), "firstname": c.firstname,
        "lastname": c.lastname, "email": c.email, "telephone": c.telephone or {}, "fax": {},
        "password": c.password_hash, "newsletter": _s(c.newsletter), "status": _s(c.status),
        "approved": _s(c.approved), "dateCreated": fmt.date(c.created), "dateUpdated": fmt.date(c.updated),
        "freeShipping": "0",
        "defaultAddress": _href(api, "addresses", "address", c.address_id) if c.address_id else None,
        "customerGroup": _href(api, "customerGroups", "customerGroup", c.customer_group_id),
        "addresses": {"href": f"{api}/addresses?customerId={cid}"},
        "loyaltyPoints": {"href": f"{api}/loyaltyPoints?customerId={cid}"},
    }


def language_item(lid: int, api: str) -> dict[str, Any]:
    code, name = next((c, n) for i, c, n in LANGUAGES if i == lid)
    locale = "hu_HUN.UTF-8,hu_HUN,hu-hun,hungarian" if code == "hu" else "en_GB.UTF-8,en_GB,en-gb,english"
    oid = outer_id("language", lid)
    return {"href": f"{api}/languages/{oid}", "id": oid, "innerId": _s(lid), "name": name, "code": code,
            "locale": locale, "sortOrder": _s(lid), "status": "1"}


def _currency(code: str, api: str, fmt: Fmt, at: int) -> dict[str, Any]:
    cur_id, places = CURRENCIES.get(code, (9, 2))
    oid = outer_id("currency", cur_id)
    return {"href": f"{api}/currencies/{oid}", "id": oid, "name": code, "code": code, "symbolLeft": "",
            "symbolRight": " Ft" if code == "HUF" else f" {code}", "decimalPlace": _s(places),
            "value": "1.00000000", "status": "1", "dateUpdated": fmt.sql_date(at)}


def _country(api: str) -> dict[str, Any]:
    oid = outer_id("country", 97)
    return {"href": f"{api}/countries/{oid}", "id": oid, "name": "Magyarország", "isoCode2": "HU",
            "isoCode3": "HUN", "status": "1", "zones": {"href": f"{api}/zones?countryId={oid}"}}


def order_status_item(status_id: int, api: str) -> dict[str, Any]:
    oid = outer_id("orderStatus", status_id)
    return {"href": f"{api}/orderStatuses/{oid}", "id": oid,
            "orderStatusDescriptions": {"href": f"{api}/orderStatusDescriptions?orderStatusId={oid}"}}


def order_status_description_item(status_id: int, lid: int, api: str) -> dict[str, Any]:
    oid = outer_id("orderStatusDescription", status_id, f"&language_id={lid}")
    hu, en, color = ORDER_STATUSES[status_id]
    return {"href": f"{api}/orderStatusDescriptions/{oid}", "id": oid, "name": hu if lid == 1 else en,
            "color": color, "orderStatus": _href(api, "orderStatuses", "orderStatus", status_id),
            "language": _href(api, "languages", "language", lid)}


def order_item(o: Order, api: str, fmt: Fmt, catalog: Catalog) -> dict[str, Any]:
    oid = outer_id("order", o.inner_id)
    order_href = {"href": f"{api}/orders/{oid}"}
    created, updated = fmt.date(o.created), fmt.date(o.updated)
    lines = []
    for ln in o.lines:
        lid = outer_id("orderProduct", ln.inner_id)
        prod = catalog.products.get(ln.product_id)
        parent = prod.parent_id if prod is not None and prod.parent_id is not None else ln.product_id
        s1, s2, s3, s4 = ln.stocks
        lines.append({
            "href": f"{api}/orderProducts/{lid}", "id": lid, "innerId": _s(ln.inner_id), "name": ln.name,
            "sku": ln.sku, "productInnerId": _s(ln.product_id), "modelNumber": ln.model_number,
            "originalPrice": money(ln.price), "price": money(ln.price),
            "grossPrice": money(ln.gross_price), "originalGrossPrice": money(ln.gross_price),
            "total": money(ln.price * ln.quantity), "taxRate": money(ln.tax_rate), "stock1": _s(s1),
            "stock2": _s(s2), "stock3": _s(s3), "stock4": _s(s4), "subtractStock": "1", "dateCreated": created,
            "dateUpdated": created, "width": "0.00", "height": "0.00", "length": "0.00", "weight": "0.00",
            "parentProduct": _href(api, "products", "product", parent), "order": order_href,
            "product": _href(api, "products", "product", ln.product_id),
            "orderProductOptions": {"href": f"{api}/orderProductOptions?orderProductId={lid}"}})
    totals = []
    rows = [("Nettó részösszeg:", o.subtotal_net, "SUB_TOTAL", 1), ("ÁFA (27%):", o.tax, "TAX", 3),
            (f"{o.shipping_method}:", o.shipping_net, "SHIPPING", 6), ("Bruttó végösszeg:", o.total_gross, "TOTAL", 8)]
    for n, (name, value, kind, sort) in enumerate(rows):
        tid = outer_id("orderTotal", o.inner_id * 10 + n)
        totals.append({"href": f"{api}/orderTotals/{tid}", "id": tid, "name": name,
                       "valueText": f"{value:.0f} Ft", "value": money(value), "sortOrder": _s(sort), "type": kind,
                       "key": "", "description": "", "dateCreated": created, "dateUpdated": created,
                       "order": order_href})
    lang_id = LANG_ID.get(o.language, 1)
    return {
        "href": f"{api}/orderExtend/{oid}", "id": oid, "innerId": _s(o.inner_id), "invoiceId": _s(o.invoice_id),
        "invoicePrefix": "SR", "firstname": o.firstname, "lastname": o.lastname, "phone": o.phone, "fax": "",
        "email": o.email, "shippingFirstname": o.firstname, "shippingLastname": o.lastname, "shippingCompany": "",
        "shippingAddress1": o.address1, "shippingAddress2": "", "shippingCity": o.city,
        "shippingPostcode": o.postcode, "shippingZoneName": "", "shippingCountryName": "Magyarország",
        "shippingAddressFormat": "", "shippingMethodName": o.shipping_method,
        "shippingMethodLocalizedName": o.shipping_method, "shippingMethodTaxRate": money(TAX_RATE),
        "shippingMethodTaxName": "", "shippingMethodExtension": o.shipping_extension,
        "shippingReceivingPointId": "0", "paymentFirstname": o.firstname, "paymentLastname": o.lastname,
        "paymentCompany": "", "paymentAddress1": o.address1, "paymentAddress2": "", "paymentCity": o.city,
        "paymentPostcode": o.postcode, "paymentZoneName": "", "paymentCountryName": "Magyarország",
        "paymentAddressFormat": "", "paymentMethodName": o.payment_method, "paymentMethodCode": o.payment_code,
        "paymentMethodTaxRate": "0.0000", "paymentMethodTaxName": "", "paymentMethodAfter": "1", "taxNumber": "",
        "comment": o.comment, "total": money(o.total_gross), "value": "1.00000000", "couponTaxRate": "-1.0000",
        "dateCreated": created, "dateUpdated": updated, "ip": o.ip, "pickPackPontShopCode": "",
        "loyaltyPointsTaxRate": "-1.0000",
        "customer": _href(api, "customers", "customer", o.customer_id) if o.customer_id is not None else None,
        "customerGroup": _href(api, "customerGroups", "customerGroup", 8), "shippingZone": None,
        "shippingCountry": _country(api), "paymentZone": None, "paymentCountry": _country(api),
        "orderStatus": _href(api, "orderStatuses", "orderStatus", o.status_id) if o.status_id else None,
        "language": language_item(lang_id, api), "currency": _currency(o.currency, api, fmt, o.created),
        "shippingMode": {"href": f"{api}/shippingModes/{outer_id('shippingMode', 18)}"}, "coupon": None,
        "orderTotals": totals, "orderProducts": lines, "orderGiftWrappings": [], "orderAddressIdentifications": [],
    }


# --- webhook payloads -----------------------------------------------------------------------------------

# Keys of the documented example payload, in order (development/api/07_webhook.md).
DEFAULT_WEBHOOK_FIELDS: tuple[str, ...] = (
    "order_storeName", "order_innerId", "order_innerResourceId", "order_outerResourceId", "order_firstname",
    "order_lastname", "order_phone", "order_fax", "order_email", "order_cart_token", "order_shippingFirstname",
    "order_shippingLastname", "order_shippingCompany", "order_shippingAddress1", "order_shippingAddress2",
    "order_shippingCity", "order_shippingCountryName", "order_shippingZoneName", "order_shippingPostcode",
    "order_paymentFirstname", "order_paymentLastname", "order_paymentCompany", "order_paymentAddress1",
    "order_paymentAddress2", "order_paymentCity", "order_paymentCountryName", "order_paymentZoneName",
    "order_shippingMethodName", "order_shippingNetPrice", "order_shippingGrossPrice",
    "order_shippingInnerResourceId", "order_paymentMethodName", "order_paymentNetPrice", "order_paymentGrossPrice",
    "order_couponCode", "order_couponGrossPrice", "order_languageId", "order_languageCode", "order_comment",
    "order_total", "order_totalGross", "order_taxPrice", "order_currency", "order_paymentPostcode",
    "order_paymentTaxnumber", "orderHistory_status", "orderHistory_statusText", "orderHistory_comment",
    "orderProduct_innerId", "orderProduct_innerResourceId", "orderProduct_outerResourceId", "orderProduct_name",
    "orderProduct_sku", "orderProduct_price", "orderProduct_currency", "orderProduct_taxRate",
    "orderProduct_quantity", "orderProduct_image", "orderProduct_category", "orderProduct_volume",
    "orderProduct_weight",
)
# Everything ``fields`` may ask for (a subset of the docs' table: the ones the sandbox can fill).
WEBHOOK_FIELDS: frozenset[str] = frozenset(DEFAULT_WEBHOOK_FIELDS) | {
    "order_email_hash", "order_customerId", "order_shippingMethodCode", "order_paymentMethodCode",
    "order_shippingCountryIsoCode2", "order_paymentCountryIsoCode2", "orderProduct_productId",
    "orderProduct_grossPrice", "orderProduct_gtin", "orderProduct_model", "orderHistory_dateAdded",
}


def order_payload(o: Order, shop_name: str, catalog: Catalog, fmt: Fmt, fields: Iterable[str] | None = None,
                  history_comment: str = "") -> dict[str, Any]:
    """One ``order`` object of the webhook body; ``fields`` picks keys as ``webHookParameters.fields`` does."""
    oid = outer_id("order", o.inner_id)
    hu, _, _ = ORDER_STATUSES.get(o.status_id, ("", "", ""))
    full: dict[str, Any] = {
        "storeName": shop_name, "innerId": _s(o.inner_id), "innerResourceId": f"orders/{oid}",
        "outerResourceId": "", "firstname": o.firstname, "lastname": o.lastname, "phone": o.phone, "fax": "",
        "email": o.email, "email_hash": hashlib.sha256(o.email.encode()).hexdigest(), "cart_token": o.cart_token,
        "shippingFirstname": o.firstname, "shippingLastname": o.lastname, "shippingCompany": "",
        "shippingAddress1": o.address1, "shippingAddress2": "", "shippingCity": o.city,
        "shippingCountryName": "Magyarország", "shippingZoneName": "", "shippingPostcode": o.postcode,
        "paymentFirstname": o.firstname, "paymentLastname": o.lastname, "paymentCompany": "",
        "paymentAddress1": o.address1, "paymentAddress2": "", "paymentCity": o.city,
        "paymentCountryName": "Magyarország", "paymentZoneName": "", "shippingMethodName": o.shipping_method,
        "shippingMethodCode": o.shipping_extension, "shippingNetPrice": float(o.shipping_net),
        "shippingGrossPrice": _s(o.shipping_gross),
        "shippingInnerResourceId": f"shippingModeExtend/{outer_id('shippingMode', 18)}",
        "shippingCountryIsoCode2": "HU", "paymentCountryIsoCode2": "HU", "paymentMethodName": o.payment_method,
        "paymentMethodCode": o.payment_code, "paymentNetPrice": 0, "paymentGrossPrice": 0, "couponCode": "",
        "couponGrossPrice": None, "languageId": _s(LANG_ID.get(o.language, 1)), "languageCode": o.language,
        "comment": o.comment, "total": f"{o.total_net:.0f}", "totalGross": f"{o.total_gross:.0f}",
        "taxPrice": _s(o.tax), "currency": o.currency, "paymentPostcode": o.postcode, "paymentTaxnumber": "",
        "customerId": _s(o.customer_id or 0),
    }
    history = {"status": _s(o.status_id), "statusText": hu, "comment": history_comment,
               "dateAdded": fmt.sql_date(o.updated)}
    line_items: list[dict[str, Any]] = []
    for ln in o.lines:
        lid = outer_id("orderProduct", ln.inner_id)
        prod = catalog.products.get(ln.product_id)
        line_items.append({
            "innerId": _s(ln.inner_id), "innerResourceId": f"orderProducts/{lid}", "outerResourceId": "",
            "name": ln.name, "sku": ln.sku, "price": f"{ln.price:.0f}", "currency": o.currency,
            "taxRate": money(ln.tax_rate), "quantity": _s(ln.quantity),
            "image": f"https://{shop_name}.shoprenter.hu/custom/{shop_name}/image/no_image.jpg", "category": "",
            "volume": {"height": "0.00", "width": "0.00", "length": "0.00",
                       "volumeUnit": [{"unit": "cm", "language": "hu"}, {"unit": "cm", "language": "en"}]},
            "weight": {"weight": f"{prod.weight:.2f}" if prod else "0.00",
                       "weightUnit": [{"unit": "kg", "language": "hu"}, {"unit": "kg", "language": "en"}]},
            "productId": _s(ln.product_id), "grossPrice": _s(ln.gross_price), "gtin": prod.gtin if prod else "",
            "model": ln.model_number,
        })
    wanted = list(DEFAULT_WEBHOOK_FIELDS) if fields is None else [f for f in fields if f in WEBHOOK_FIELDS]
    out: dict[str, Any] = {}
    hist_out: dict[str, Any] = {}
    line_keys: list[str] = []
    for name in wanted:
        prefix, _, key = name.partition("_")
        if prefix == "order":
            out[key] = full[key]
        elif prefix == "orderHistory":
            hist_out[key] = history[key]
        elif prefix == "orderProduct":
            line_keys.append(key)
    if hist_out:
        out["orderHistory"] = hist_out
    if line_keys:
        out["orderProducts"] = {"orderProduct": [{k: item[k] for k in line_keys} for item in line_items]}
    return out


# --- XML -------------------------------------------------------------------------------------------------

_PLAIN = frozenset({"page", "pageCount", "limit"})  # the paging numbers are bare in the docs' get_page.xml


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml_value(name: str, value: Any, out: list[str]) -> None:
    if value is None or value == [] or value == {} or value == "":
        out.append(f"<{name}/>")
    elif isinstance(value, dict):
        out.append(f"<{name}>")
        for k, v in value.items():
            _xml_value(k, v, out)
        out.append(f"</{name}>")
    elif isinstance(value, list):
        # "items" holds <item> children (docs' get_page.xml); other lists repeat the element (get_id.xml "fields")
        if name == "items":
            out.append("<items>")
            for v in value:
                _xml_value("item", v, out)
            out.append("</items>")
        else:
            for v in value:
                _xml_value(name, v, out)
    elif isinstance(value, bool):
        out.append(f"<{name}>{int(value)}</{name}>")
    elif isinstance(value, int | float | Decimal) or (name in _PLAIN and str(value).isdigit()):
        out.append(f"<{name}>{escape(str(value))}</{name}>")
    else:
        out.append(f"<{name}>{_cdata(str(value))}</{name}>")


def to_xml(obj: Any, root: str = "response") -> bytes:
    """Minimal, well-formed XML in ShopRenter's style: ``<response>``, CDATA text, ``<items><item>``."""
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>']
    _xml_value(root, obj, out)
    if out[-1] == f"<{root}/>":
        out[-1] = f"<{root}></{root}>"
    return "".join(out).encode()
