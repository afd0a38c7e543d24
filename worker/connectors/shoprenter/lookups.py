"""ShopRenter's live look-ups (``LiveLookups``, for stores whose access policy is ``api_only``): API2 filters
with the store's token, under the shop's 3 requests/s shared with its sync (the database limiter), mapped by the
sync's own mapping.

* customers by email: ``customers?email=``; orders by email: ``orderExtend?email=``; by customer: the
  customer's email (``customers/{id}``), then its orders, kept when they link that customer; by number:
  ``orderExtend?innerId=``; by id: ``orderExtend/{id}``.
* products by SKU: ``productExtend?sku=``, with the parent product of a variant (``productExtend/{parent}``).
* Not offered, because API2 has no such filter: customers or orders by phone, products by text.

One HTTP client per event loop, kept. Nothing is written (a token renewal stores the new token, as a sync
would).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from worker.connectors.base import shared_client
from worker.connectors.canonical import Owner
from worker.connectors.contract import CanonicalRows, LiveLookups, LiveStore
from worker.connectors.shoprenter.client import ShopRenterClient, ShopRenterTokens
from worker.connectors.shoprenter.mapping import customer_rows, link_id, order_rows, product_rows
from worker.errors import PermanentError

if TYPE_CHECKING:
    from worker.connectors.shoprenter.connector import ShopRenterConnector

__all__ = ["shoprenter_lookups"]

MAX_LIMIT = 200        # ShopRenter's page size limit


def _path(resource: str, item_id: str) -> str:
    return f"{resource}/{quote(item_id, safe='=')}"      # outer ids are base64: a '/' must stay in the segment


def _items(body: Any, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(body, Mapping):
        raise PermanentError(f"ShopRenter: {what} did not answer a page object")
    return [i for i in body.get("items") or [] if isinstance(i, Mapping)]


class _Lookups:
    def __init__(self, connector: ShopRenterConnector) -> None:
        self.connector = connector

    @asynccontextmanager
    async def _client(self, store: LiveStore) -> AsyncIterator[ShopRenterClient]:
        c, ctx = self.connector, store.context
        s = c.settings
        s.require_configured()
        http = shared_client(("shoprenter", s.request_timeout_seconds), c.http)
        tokens = ShopRenterTokens(ctx.db, c.sealer(ctx.settings), http, store.store_id, store.shop_key,
                                  token_url=s.token_url(store.shop_key), client_id=str(s.client_id),
                                  client_secret=s.secret(), margin=s.token_margin_seconds,
                                  preloaded=store.credentials)
        yield ShopRenterClient(s.api_url(store.shop_key), tokens, http=http, pacer=c.pacer(ctx.db, store.shop_key))

    async def _get(self, store: LiveStore, path: str, params: Mapping[str, Any] | None = None) -> Any:
        async with self._client(store) as client:
            return await client.get(path, params, missing_ok=True)

    async def _page(self, store: LiveStore, resource: str, params: Mapping[str, Any],
                    limit: int) -> list[Mapping[str, Any]]:
        body = await self._get(store, resource, {**params, "full": 1, "limit": min(max(limit, 1), MAX_LIMIT),
                                                 "page": 0})
        return [] if body is None else _items(body, resource)

    def _owner(self, store: LiveStore) -> Owner:
        return Owner.of(store.store_id, store.organization_id)

    def _orders(self, store: LiveStore, found: list[Mapping[str, Any]], limit: int) -> CanonicalRows:
        rows: dict[str, list[dict[str, Any]]] = {"orders": [], "order_line_items": []}
        newest = sorted(found, key=lambda o: (str(o.get("dateCreated") or ""), str(o.get("innerId") or "")),
                        reverse=True)[:limit]
        for order in newest:
            for table, more in order_rows(self._owner(store), order, self.connector.zone).items():
                rows[table] += more
        return rows

    async def customers_by_email(self, store: LiveStore, email: str, limit: int) -> CanonicalRows:
        found = await self._page(store, "customers", {"email": email}, limit)
        rows: list[dict[str, Any]] = []
        for customer in found:
            rows += customer_rows(self._owner(store), customer, self.connector.zone)["customers"]
        return {"customers": rows}

    async def orders_by_email(self, store: LiveStore, email: str, limit: int) -> CanonicalRows:
        return self._orders(store, await self._page(store, "orderExtend", {"email": email}, MAX_LIMIT), limit)

    async def orders_by_customer(self, store: LiveStore, customer_id: str, limit: int) -> CanonicalRows:
        customer = await self._get(store, _path("customers", customer_id))
        email = customer.get("email") if isinstance(customer, Mapping) else None
        if not isinstance(email, str) or not email:
            return {"orders": []}
        found = await self._page(store, "orderExtend", {"email": email}, MAX_LIMIT)
        return self._orders(store, [o for o in found if link_id(o.get("customer")) == customer_id], limit)

    async def orders_by_number(self, store: LiveStore, number: str, limit: int) -> CanonicalRows:
        if not number.isdigit():
            return {"orders": []}
        return self._orders(store, await self._page(store, "orderExtend", {"innerId": number}, limit), limit)

    async def order_by_id(self, store: LiveStore, order_id: str, limit: int) -> CanonicalRows:
        order = await self._get(store, _path("orderExtend", order_id))
        return self._orders(store, [order] if isinstance(order, Mapping) and order.get("id") else [], 1)

    async def variants_by_sku(self, store: LiveStore, sku: str, limit: int) -> CanonicalRows:
        zone = self.connector.zone
        products: dict[str, dict[str, Any]] = {}
        variants: list[dict[str, Any]] = []
        for item in await self._page(store, "productExtend", {"sku": sku}, limit):
            rows = product_rows(self._owner(store), item, zone)
            variant = rows["product_variants"][0]
            parent = variant["product_id"]
            if parent not in products:
                if parent == variant["id"]:
                    products[parent] = rows["products"][0]
                else:
                    found = await self._get(store, _path("productExtend", parent))
                    if not isinstance(found, Mapping) or not found.get("id"):
                        continue
                    products[parent] = product_rows(self._owner(store), found, zone)["products"][0]
            variants.append(variant)
        return {"products": list(products.values()), "product_variants": variants}


def shoprenter_lookups(connector: ShopRenterConnector) -> LiveLookups:
    found = _Lookups(connector)
    return LiveLookups(customers_by_email=found.customers_by_email, orders_by_customer=found.orders_by_customer,
                       orders_by_email=found.orders_by_email, orders_by_number=found.orders_by_number,
                       order_by_id=found.order_by_id, variants_by_sku=found.variants_by_sku)
