"""The look-ups' parameters and answers (pydantic: the JSON schemas of the OpenAPI document and the MCP tools).

Answers are the canonical model: what the synced tables hold, without ``raw`` — built by ``from_rows`` from
canonical rows, which come either from the synced tables (``lookup_synced``) or from a connector's live
look-up (its sync's own mapping), so both paths answer in exactly the same shape. Money is a decimal string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

__all__ = ["Address", "CustomersAnswer", "FindCustomer", "FindOrders", "FindProducts", "Fulfillment", "GetOrder",
           "LineItem", "ListStores", "Order", "OrdersAnswer", "Product", "ProductsAnswer", "StoreInfo",
           "StoresAnswer", "Variant", "customers_from_rows", "money_text", "orders_from_rows", "products_from_rows"]


def money_text(value: Decimal) -> str:
    """19.9900 → "19.99", 20 → "20.00", 0.125 → "0.125": never an exponent."""
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        normalized = normalized.quantize(Decimal("0.01"))
    return format(normalized, "f")


Money = Annotated[Decimal, PlainSerializer(money_text, return_type=str)]
# every time in UTC, whichever zone the platform (ShopRenter: the shop's) or the database gave it in
Time = Annotated[datetime, AfterValidator(lambda t: t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC))]
Texts = Annotated[list[str], BeforeValidator(lambda v: [] if v is None else v)]   # a null array column: none
StoreId = Annotated[UUID, Field(description="The store to look in (from list_stores).")]
Limit = Annotated[int, Field(ge=1, le=50, description="At most this many results (newest first).")]
PhoneRegion = Annotated[str | None, Field(
    default=None, pattern=r"^[A-Za-z]{2}$",
    description="ISO 3166 country code for a phone number written without +country code (e.g. HU).")]
Email = Annotated[str | None, Field(default=None, min_length=3, max_length=254,
                                    description="Email address (case does not matter).")]
Phone = Annotated[str | None, Field(default=None, min_length=3, max_length=40,
                                    description="Phone number, best in international format: +36 30 123 4567.")]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- parameters ------------------------------------------------------------------------------------------------

class ListStores(_Params):
    """No parameters: the caller's stores."""


class FindCustomer(_Params):
    store_id: StoreId
    email: Email = None
    phone: Phone = None
    phone_region: PhoneRegion = None
    limit: Limit = 10


class FindOrders(_Params):
    store_id: StoreId
    customer_id: Annotated[str | None, Field(default=None, min_length=1, max_length=100,
                                             description="The customer's id (from find_customer).")] = None
    email: Email = None
    phone: Phone = None
    order_number: Annotated[str | None, Field(default=None, min_length=1, max_length=40,
                                              description="The order's name or number: #1001 or 1001.")] = None
    phone_region: PhoneRegion = None
    limit: Limit = 10


class GetOrder(_Params):
    store_id: StoreId
    order_id: Annotated[str, Field(min_length=1, max_length=100, description="The order's id.")]


class FindProducts(_Params):
    store_id: StoreId
    sku: Annotated[str | None, Field(default=None, min_length=1, max_length=100,
                                     description="A variant's SKU (exact).")] = None
    text: Annotated[str | None, Field(default=None, min_length=1, max_length=200,
                                      description="Words that must all be in the product's title.")] = None
    limit: Limit = 10


# --- answers ---------------------------------------------------------------------------------------------------

class Address(BaseModel):
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province: str | None = None
    province_code: str | None = None
    country: str | None = None
    country_code: str | None = None
    zip: str | None = None
    phone: str | None = None


class Customer(BaseModel):
    id: str
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    state: str | None = None
    accepts_marketing: bool | None = None
    orders_count: int | None = None
    total_spent: Money | None = None
    currency: str | None = None
    tags: Texts = Field(default_factory=list)
    default_address: Address | None = None
    created_at: Time | None = None
    updated_at: Time | None = None


class LineItem(BaseModel):
    id: str
    product_id: str | None = None
    variant_id: str | None = None
    sku: str | None = None
    title: str | None = None
    quantity: int | None = None
    price: Money | None = None
    total_discount: Money | None = None


class Fulfillment(BaseModel):
    id: str
    status: str | None = None
    tracking_company: str | None = None
    tracking_numbers: Texts = Field(default_factory=list)
    tracking_urls: Texts = Field(default_factory=list)
    created_at: Time | None = None
    updated_at: Time | None = None


class Order(BaseModel):
    id: str
    name: str | None = None
    order_number: str | None = None
    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    currency: str | None = None
    subtotal_price: Money | None = None
    total_tax: Money | None = None
    total_discounts: Money | None = None
    total_shipping: Money | None = None
    total_price: Money | None = None
    total_refunded: Money | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    tags: Texts = Field(default_factory=list)
    processed_at: Time | None = None
    cancelled_at: Time | None = None
    closed_at: Time | None = None
    created_at: Time | None = None
    updated_at: Time | None = None
    line_items: list[LineItem] = Field(default_factory=list)
    fulfillments: list[Fulfillment] = Field(default_factory=list)


class Variant(BaseModel):
    id: str
    title: str | None = None
    sku: str | None = None
    barcode: str | None = None
    price: Money | None = None
    compare_at_price: Money | None = None
    currency: str | None = None
    inventory_quantity: int | None = Field(default=None, description="Units in stock, when the platform counts them.")
    in_stock: bool | None = Field(default=None, description="inventory_quantity > 0; null when not counted.")


class Product(BaseModel):
    id: str
    title: str | None = None
    handle: str | None = None
    status: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    tags: Texts = Field(default_factory=list)
    variants: list[Variant] = Field(default_factory=list)


Source = Literal["synced", "live"]


class _Answer(BaseModel):
    store_id: UUID
    lookup: str = Field(description="Which look-up answered, e.g. customers_by_phone.")
    policy: Literal["sync", "api_only"] = Field(description="The store's access policy for the resource.")
    source: Source = Field(description="synced: shopsync's copy; live: asked the platform just now (not kept).")
    count: int


class CustomersAnswer(_Answer):
    customers: list[Customer]


class OrdersAnswer(_Answer):
    orders: list[Order]


class ProductsAnswer(_Answer):
    products: list[Product]


class StoreInfo(BaseModel):
    store_id: UUID
    platform: str
    shop_key: str
    display_name: str | None = None
    status: str
    policies: dict[str, str] = Field(description="Each resource's access policy: sync, api_only or not_allowed.")
    live_lookups: list[str] = Field(description="The look-ups the platform can answer live (for api_only).")


class StoresAnswer(BaseModel):
    count: int
    stores: list[StoreInfo]


# --- canonical rows → answers ----------------------------------------------------------------------------------
# Both paths' rows are put in one order here (newest first; lines and variants in id order, numbers numerically),
# so an answer does not depend on whether it came from the synced tables or from the platform.

Rows = Sequence[Mapping[str, Any]]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _id_key(row: Mapping[str, Any]) -> tuple[int, str]:
    text = str(row.get("id"))
    return len(text), text          # "9" before "10", as platforms number them


def _newest(*times: Any) -> datetime:
    for t in times:
        if isinstance(t, datetime):
            return t if t.tzinfo else t.replace(tzinfo=UTC)
        if isinstance(t, str) and t:
            parsed = datetime.fromisoformat(t)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return _EPOCH


def _with_times(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**row, "created_at": row.get("source_created_at"), "updated_at": row.get("source_updated_at")}


def customers_from_rows(rows: Mapping[str, Rows]) -> list[Customer]:
    found = sorted(rows.get("customers") or [], key=_id_key)
    found.sort(key=lambda c: _newest(c.get("source_updated_at")), reverse=True)
    return [Customer.model_validate(_with_times(r)) for r in found]


def orders_from_rows(rows: Mapping[str, Rows]) -> list[Order]:
    lines: dict[str, list[Mapping[str, Any]]] = {}
    for li in sorted(rows.get("order_line_items") or [], key=_id_key):
        lines.setdefault(str(li["order_id"]), []).append(li)
    shipped: dict[str, list[Mapping[str, Any]]] = {}
    for f in sorted(rows.get("order_fulfillments") or [], key=_id_key):
        shipped.setdefault(str(f["order_id"]), []).append(_with_times(f))
    found = sorted(rows.get("orders") or [], key=_id_key, reverse=True)
    found.sort(key=lambda o: _newest(o.get("processed_at"), o.get("source_created_at")), reverse=True)
    return [Order.model_validate({**_with_times(o), "line_items": lines.get(str(o["id"]), []),
                                  "fulfillments": shipped.get(str(o["id"]), [])})
            for o in found]


def products_from_rows(rows: Mapping[str, Rows]) -> list[Product]:
    variants: dict[str, list[dict[str, Any]]] = {}
    for v in sorted(rows.get("product_variants") or [], key=_id_key):
        quantity = v.get("inventory_quantity")
        variants.setdefault(str(v["product_id"]), []).append(
            {**v, "in_stock": None if quantity is None else int(quantity) > 0})
    found = sorted(rows.get("products") or [], key=lambda p: (str(p.get("title") or ""), _id_key(p)))
    return [Product.model_validate({**p, "variants": variants.get(str(p["id"]), [])}) for p in found]
