"""Shopify's live look-ups (``LiveLookups``, for stores whose access policy is ``api_only``): Admin GraphQL
searches with the store's token, mapped by the sync's own mapping so the answer is the canonical model.

* customers: ``customers(query: "email:…" | "phone:…")``;
* orders: ``orders(query: "customer_id:…" | "email:…" | "name:…")``, ``order(id:)``; by phone through the
  customers with that phone (the orders search has no phone term), so orders without a customer are not found;
* products: ``productVariants(query: "sku:…")`` with each variant's product, ``products(query: <words>)``.

Search values are quoted and escaped (a value never becomes search syntax). Each request first takes a slot of
the store's look-up rate in the database limiter (``lookup_requests_per_second``, shared by every web process)
and then follows the shop's cost bucket like the sync does. One HTTP client per event loop, kept (its
connections too). Nothing is written, and nothing is logged but the shop and what failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from worker.connectors import canonical
from worker.connectors.base import shared_client
from worker.connectors.contract import CanonicalRows, LiveLookups, LiveStore
from worker.connectors.shopify import queries as q
from worker.connectors.shopify.graphql import ShopifyGraphQL
from worker.connectors.shopify.mapping import (
    customer_row,
    fulfillment_row,
    legacy_id,
    line_item_row,
    order_row,
    product_row,
    variant_row,
)
from worker.connectors.shopify.oauth import ShopifyOAuth
from worker.connectors.shopify.tokens import StoreTokens
from worker.ratelimit import DbRateLimiter

if TYPE_CHECKING:
    from worker.connectors.shopify.connector import ShopifyConnector

__all__ = ["shopify_lookups"]

# a query may cost at most 1000 points (objects, and connections by their first:): a search reads at most
# MAX_ORDERS orders with ORDER_LINES lines each; one order by id reads up to 100 lines
ORDER_LINES = 10
MAX_ORDERS = 8
MAX_NODES = 50
PRODUCT_VARIANTS = 25
MAX_PRODUCTS = 20
PHONE_CUSTOMERS = 5        # customers with one phone number whose orders are read
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _order_fields(lines: int, fulfillments: int) -> str:
    return (f"{q.ORDER_FIELDS} fulfillments(first: {fulfillments}) {{ {q.FULFILLMENT_FIELDS} }} "
            f"refunds(first: 10) {{ id }} lineItems(first: {lines}) {{ nodes {{ {q.LINE_ITEM_FIELDS} }} }}")


CUSTOMERS = f"""query LookupCustomers($first: Int!, $query: String!) {{
  customers(first: $first, query: $query, sortKey: UPDATED_AT, reverse: true) {{ nodes {{ {q.CUSTOMER_FIELDS} }} }}
}}"""
CUSTOMER_IDS = """query LookupCustomerIds($first: Int!, $query: String!) {
  customers(first: $first, query: $query) { nodes { id } }
}"""
ORDERS = f"""query LookupOrders($first: Int!, $query: String!) {{
  orders(first: $first, query: $query, sortKey: PROCESSED_AT, reverse: true) {{
    nodes {{ {_order_fields(ORDER_LINES, 5)} }}
  }}
}}"""
ORDER = f"""query LookupOrder($id: ID!) {{ order(id: $id) {{ {_order_fields(100, 20)} }} }}"""
VARIANTS = f"""query LookupVariants($first: Int!, $query: String!) {{
  productVariants(first: $first, query: $query) {{ nodes {{ {q.VARIANT_FIELDS} product {{ {q.PRODUCT_FIELDS} }} }} }}
}}"""
PRODUCTS = f"""query LookupProducts($first: Int!, $query: String!) {{
  products(first: $first, query: $query) {{
    nodes {{ {q.PRODUCT_FIELDS} variants(first: {PRODUCT_VARIANTS}) {{ nodes {{ {q.VARIANT_FIELDS} }} }} }}
  }}
}}"""


def quoted(value: str) -> str:
    """A search value as one quoted term: whatever it holds, it stays a value."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _nodes(data: Mapping[str, Any], path: str) -> list[Mapping[str, Any]]:
    found: Any = data
    for key in path.split("."):
        found = found.get(key) if isinstance(found, Mapping) else None
    nodes = found.get("nodes") if isinstance(found, Mapping) else None
    return [n for n in nodes or [] if isinstance(n, Mapping)]


def _owner(store: LiveStore) -> canonical.Owner:
    return canonical.Owner.of(store.store_id, store.organization_id)


def _order_rows(owner: canonical.Owner, nodes: list[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {"orders": [], "order_line_items": [], "order_fulfillments": []}
    for node in nodes:
        order = order_row(owner, node)
        rows["orders"].append(order)
        rows["order_line_items"] += [line_item_row(owner, li, order["id"], order["source_updated_at"])
                                     for li in _nodes(node, "lineItems")]
        rows["order_fulfillments"] += [fulfillment_row(owner, f, order["id"])
                                       for f in node.get("fulfillments") or [] if isinstance(f, Mapping)]
    return rows


class _Lookups:
    def __init__(self, connector: ShopifyConnector) -> None:
        self.connector = connector

    @asynccontextmanager
    async def _client(self, store: LiveStore) -> AsyncIterator[tuple[ShopifyGraphQL, DbRateLimiter]]:
        s = self.connector.settings
        s.require_configured()
        ctx = store.context
        http = shared_client(("shopify", s.request_timeout_seconds),
                             lambda: httpx.AsyncClient(timeout=s.request_timeout_seconds, follow_redirects=False))
        shop = store.shop_key
        tokens = StoreTokens(ctx.db, self.connector.sealer(ctx.settings), ShopifyOAuth(s, client=http),
                             store.store_id, shop, owner=ctx.worker_id, refresh_margin=s.refresh_margin_seconds,
                             preloaded=store.credentials)
        pacer = DbRateLimiter(ctx.db, f"shopify:{shop}:lookups", s.lookup_requests_per_second)
        async with ShopifyGraphQL(shop, tokens, api_version=s.api_version, base_url=s.shop_url(shop),
                                  timeout=s.request_timeout_seconds, client=http) as client:
            yield client, pacer

    async def _query(self, store: LiveStore, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        async with self._client(store) as (client, pacer):
            await pacer.wait()
            return await client.query(document, variables)

    async def _customers(self, store: LiveStore, search: str, limit: int) -> CanonicalRows:
        data = await self._query(store, CUSTOMERS, {"first": min(limit, MAX_NODES), "query": search})
        owner = _owner(store)
        return {"customers": [customer_row(owner, n) for n in _nodes(data, "customers")]}

    async def _orders(self, store: LiveStore, search: str, limit: int) -> dict[str, list[dict[str, Any]]]:
        data = await self._query(store, ORDERS, {"first": min(limit, MAX_ORDERS), "query": search})
        return _order_rows(_owner(store), _nodes(data, "orders"))

    async def customers_by_email(self, store: LiveStore, email: str, limit: int) -> CanonicalRows:
        return await self._customers(store, f"email:{quoted(email)}", limit)

    async def customers_by_phone(self, store: LiveStore, phone: str, limit: int) -> CanonicalRows:
        return await self._customers(store, f"phone:{quoted(phone)}", limit)

    async def orders_by_customer(self, store: LiveStore, customer_id: str, limit: int) -> CanonicalRows:
        if not customer_id.isdigit():
            return {"orders": []}      # not a Shopify customer id: there is no such customer
        return await self._orders(store, f"customer_id:{customer_id}", limit)

    async def orders_by_email(self, store: LiveStore, email: str, limit: int) -> CanonicalRows:
        return await self._orders(store, f"email:{quoted(email)}", limit)

    async def orders_by_number(self, store: LiveStore, number: str, limit: int) -> CanonicalRows:
        return await self._orders(store, f"name:{quoted(number)}", limit)

    async def orders_by_phone(self, store: LiveStore, phone: str, limit: int) -> CanonicalRows:
        data = await self._query(store, CUSTOMER_IDS, {"first": PHONE_CUSTOMERS, "query": f"phone:{quoted(phone)}"})
        rows: dict[str, list[dict[str, Any]]] = {"orders": [], "order_line_items": [], "order_fulfillments": []}
        for node in _nodes(data, "customers"):
            found = await self._orders(store, f"customer_id:{legacy_id(node['id'])}", limit)
            for table, more in found.items():
                rows[table] += more
        newest = sorted(rows["orders"], key=lambda o: (o["processed_at"] or o["source_created_at"] or _EPOCH,
                                                       o["id"]), reverse=True)[:limit]
        kept = {o["id"] for o in newest}
        return {"orders": newest, **{t: [r for r in rows[t] if r["order_id"] in kept]
                                     for t in ("order_line_items", "order_fulfillments")}}

    async def order_by_id(self, store: LiveStore, order_id: str, limit: int) -> CanonicalRows:
        if not order_id.isdigit():
            return {"orders": []}
        data = await self._query(store, ORDER, {"id": f"gid://shopify/Order/{order_id}"})
        node = data.get("order")
        return _order_rows(_owner(store), [node] if isinstance(node, Mapping) else [])

    async def variants_by_sku(self, store: LiveStore, sku: str, limit: int) -> CanonicalRows:
        data = await self._query(store, VARIANTS, {"first": min(limit, MAX_NODES), "query": f"sku:{quoted(sku)}"})
        owner = _owner(store)
        products: dict[str, dict[str, Any]] = {}
        variants = []
        for node in _nodes(data, "productVariants"):
            product = node.get("product")
            if not isinstance(product, Mapping):
                continue
            row = products.setdefault(legacy_id(product["id"]), product_row(owner, product))
            variants.append(variant_row(owner, node, row["id"]))
        return {"products": list(products.values()), "product_variants": variants}

    async def products_by_text(self, store: LiveStore, text: str, limit: int) -> CanonicalRows:
        search = " ".join(quoted(word) for word in text.split())
        data = await self._query(store, PRODUCTS, {"first": min(limit, MAX_PRODUCTS), "query": search})
        owner = _owner(store)
        rows: dict[str, list[dict[str, Any]]] = {"products": [], "product_variants": []}
        for node in _nodes(data, "products"):
            product = product_row(owner, node)
            rows["products"].append(product)
            rows["product_variants"] += [variant_row(owner, v, product["id"]) for v in _nodes(node, "variants")]
        return rows


def shopify_lookups(connector: ShopifyConnector) -> LiveLookups:
    found = _Lookups(connector)
    return LiveLookups(customers_by_email=found.customers_by_email, customers_by_phone=found.customers_by_phone,
                       orders_by_customer=found.orders_by_customer, orders_by_email=found.orders_by_email,
                       orders_by_phone=found.orders_by_phone, orders_by_number=found.orders_by_number,
                       order_by_id=found.order_by_id, variants_by_sku=found.variants_by_sku,
                       products_by_text=found.products_by_text)
