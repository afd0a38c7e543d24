"""The look-ups, listed once: each operation's parameters, answer, description, the resource whose access policy
routes it, and how its parameters become one look-up (``Plan``: the name a connector's ``LiveLookups`` knows it
by, the values the synced tables are compared with, the value a live look-up gets). The HTTP endpoints, the
OpenAPI document and the MCP tools are all generated from ``OPERATIONS``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from worker.lookups import normalize
from worker.lookups.models import (
    CustomersAnswer,
    FindCustomer,
    FindOrders,
    FindProducts,
    GetOrder,
    ListStores,
    OrdersAnswer,
    ProductsAnswer,
    Rows,
    StoresAnswer,
    customers_from_rows,
    orders_from_rows,
    products_from_rows,
)
from worker.lookups.normalize import BadInput

__all__ = ["OPERATIONS", "Operation", "Plan"]


@dataclass(frozen=True)
class Plan:
    lookup: str                       # a LiveLookups name: customers_by_phone, orders_by_customer, ...
    resource: str
    synced_values: tuple[str, ...]
    live_value: str
    limit: int


@dataclass(frozen=True)
class Operation:
    name: str
    title: str
    description: str
    params: type[BaseModel]
    answer: type[BaseModel]
    resource: str | None              # None: not about one store's data (list_stores)
    plan: Callable[[Any, str | None], Plan] | None = None         # (params, default phone region) → Plan
    items: tuple[str, Callable[[Mapping[str, Rows]], list[Any]]] | None = None   # answer field, rows → items


def _one_of(params: BaseModel, names: tuple[str, ...]) -> str:
    given = [n for n in names if getattr(params, n) is not None]
    if len(given) != 1:
        raise BadInput(f"give exactly one of {', '.join(names)}" + (f" (got {', '.join(given)})" if given else ""))
    return given[0]


def _phone_plan(lookup: str, resource: str, value: str, region: str | None, limit: int) -> Plan:
    e164, candidates = normalize.phone(value, region)
    return Plan(lookup, resource, candidates, e164, limit)


def _find_customer(p: FindCustomer, region: str | None) -> Plan:
    if _one_of(p, ("email", "phone")) == "email":
        email = normalize.email(p.email or "")
        return Plan("customers_by_email", "customers", (email,), email, p.limit)
    return _phone_plan("customers_by_phone", "customers", p.phone or "", p.phone_region or region, p.limit)


def _find_orders(p: FindOrders, region: str | None) -> Plan:
    by = _one_of(p, ("customer_id", "email", "phone", "order_number"))
    if by == "customer_id":
        customer = normalize.identifier(p.customer_id or "", "customer_id")
        return Plan("orders_by_customer", "orders", (customer,), customer, p.limit)
    if by == "email":
        email = normalize.email(p.email or "")
        return Plan("orders_by_email", "orders", (email,), email, p.limit)
    if by == "phone":
        return _phone_plan("orders_by_phone", "orders", p.phone or "", p.phone_region or region, p.limit)
    number = normalize.order_number(p.order_number or "")
    return Plan("orders_by_number", "orders", (f"#{number}", number), number, p.limit)


def _get_order(p: GetOrder, region: str | None) -> Plan:
    order = normalize.identifier(p.order_id, "order_id")
    return Plan("order_by_id", "orders", (order,), order, 1)


def _find_products(p: FindProducts, region: str | None) -> Plan:
    if _one_of(p, ("sku", "text")) == "sku":
        sku = normalize.sku(p.sku or "")
        return Plan("variants_by_sku", "products", (sku,), sku, p.limit)
    words = normalize.words(p.text or "")
    return Plan("products_by_text", "products", words, " ".join(words), p.limit)


OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    Operation("list_stores", "List the stores you may look up",
              "The stores this API key (or signed-in user) may look up: each one's platform, status, the access "
              "policy of each resource (sync: answered from shopsync's copy; api_only: asked live, nothing kept; "
              "not_allowed: refused) and the look-ups its platform can answer live. Call it first to learn store ids.",
              ListStores, StoresAnswer, None),
    Operation("find_customer", "Find a customer by email or phone",
              "A store's customers with this email address or phone number (give exactly one). Phone numbers are "
              "matched however the store wrote them; give them with +country code or pass phone_region.",
              FindCustomer, CustomersAnswer, "customers", _find_customer, ("customers", customers_from_rows)),
    Operation("find_orders", "Find orders by customer, email, phone or order number",
              "A store's orders, newest first, with their status, lines, fulfillments and tracking: by customer_id "
              "(from find_customer), email, phone or order_number (#1001) — give exactly one.",
              FindOrders, OrdersAnswer, "orders", _find_orders, ("orders", orders_from_rows)),
    Operation("get_order", "Get one order by id",
              "One order of a store by its id, with status, lines, fulfillments and tracking (an empty list when "
              "there is no such order).",
              GetOrder, OrdersAnswer, "orders", _get_order, ("orders", orders_from_rows)),
    Operation("find_products", "Find products by SKU or title words",
              "A store's products with price and stock per variant: by a variant's exact sku (only matching "
              "variants are listed) or by text (every word in the title) — give exactly one.",
              FindProducts, ProductsAnswer, "products", _find_products, ("products", products_from_rows)),
)}
