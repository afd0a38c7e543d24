"""TikTok Shop's live look-ups (``LiveLookups``, for stores whose access policy is ``api_only``): signed Open API
calls with the authorization's tokens (renewed on the way, as a sync would), under the shop's slots in the database
rate limiter its sync takes (``tiktok:<app_key>:<shop id>``), mapped by the sync's own mapping.

* orders by customer: Get Order List (``POST /order/202309/orders/search``) filtered by ``buyer_user_id`` — the
  ``customer_id`` of TikTok orders is the buyer's user id; newest first, one page of up to 100.
* one order by id: Get Order Detail (``GET /order/202309/orders?ids=``; 21008111 — not this seller's — is none);
  by number: the same call, since a TikTok order's name and number are its id.
* variants by SKU: Search Products (``POST /product/202502/products/search``) filtered by ``seller_skus``, only
  the matching SKUs of live products kept.
* Not offered: customers (TikTok Shop gives sellers no customer records: buyers are anonymous to the shop), orders
  by email or phone (the order search has no such filter; the buyer email is an anonymised relay address and the
  recipient's phone comes masked), products by text (the product search has no title filter).

One HTTP client per event loop, kept. Nothing is written (a token renewal stores the new tokens, as a sync would).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from worker.connectors.base import shared_client
from worker.connectors.canonical import Owner
from worker.connectors.contract import CanonicalRows, LiveLookups, LiveStore
from worker.connectors.tiktok.client import TikTokClient
from worker.connectors.tiktok.errors import TikTokApiError
from worker.connectors.tiktok.mapping import order_rows, product_rows
from worker.connectors.tiktok.sync import ORDER_SEARCH, PRODUCT_SEARCH

if TYPE_CHECKING:
    from worker.connectors.tiktok.connector import TikTokConnector

__all__ = ["WHY_NOT", "tiktok_lookups"]

ORDER_DETAIL = "/order/202309/orders"
ORDER_NOT_FOUND = 21008111        # "The order or package does not belong to the current seller."
SEARCH_PAGE = 100                 # the most one search page gives: a buyer's orders, newest first
_EARLIEST = datetime.min.replace(tzinfo=UTC)

_NO_CUSTOMERS = "TikTok Shop gives sellers no customer records: buyers are anonymous to the shop"
WHY_NOT = {
    "customers_by_email": _NO_CUSTOMERS,
    "customers_by_phone": _NO_CUSTOMERS,
    "orders_by_email": "its order search has no email filter, and an order's buyer email is an anonymised relay "
                       "address",
    "orders_by_phone": "its order search has no phone filter, and the recipient's phone number comes masked",
    "products_by_text": "its product search has no title filter",
}


def _tiktok_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 30


def _newest_first(order: Mapping[str, Any]) -> tuple[datetime, int, str]:
    """As the synced look-ups order them: paid (else created) time, then id, newest first."""
    when = order.get("processed_at") or order.get("source_created_at") or _EARLIEST
    return when, len(str(order["id"])), str(order["id"])


class _Lookups:
    def __init__(self, connector: TikTokConnector) -> None:
        self.connector = connector

    @asynccontextmanager
    async def _client(self, store: LiveStore) -> AsyncIterator[TikTokClient]:
        c = self.connector
        c.settings.require_configured()
        http = shared_client(("tiktok", c.settings.request_timeout_seconds), c.http)
        async with c.open_client(store.context, store.store_id, http=http, credentials=store.credentials) as client:
            yield client

    def _orders(self, store: LiveStore, found: Any, limit: int) -> CanonicalRows:
        owner = Owner.of(store.store_id, store.organization_id)
        rows: dict[str, list[dict[str, Any]]] = {"orders": [], "order_line_items": []}
        for order in found if isinstance(found, list) else []:
            if isinstance(order, Mapping):
                for table, more in order_rows(owner, order).items():
                    rows[table] += more
        rows["orders"] = sorted(rows["orders"], key=_newest_first, reverse=True)[:limit]
        kept = {o["id"] for o in rows["orders"]}
        rows["order_line_items"] = [li for li in rows["order_line_items"] if li["order_id"] in kept]
        return rows

    async def orders_by_customer(self, store: LiveStore, customer_id: str, limit: int) -> CanonicalRows:
        if not _tiktok_id(customer_id):
            return {"orders": []}
        async with self._client(store) as client:
            data = await client.call("POST", ORDER_SEARCH, body={"buyer_user_id": customer_id},
                                     params={"page_size": SEARCH_PAGE, "sort_field": "create_time",
                                             "sort_order": "DESC"})
        return self._orders(store, data.get("orders"), limit)

    async def order_by_id(self, store: LiveStore, order_id: str, limit: int) -> CanonicalRows:
        if not _tiktok_id(order_id):
            return {"orders": []}
        async with self._client(store) as client:
            try:
                data = await client.call("GET", ORDER_DETAIL, params={"ids": order_id})
            except TikTokApiError as exc:
                if exc.code == ORDER_NOT_FOUND:
                    return {"orders": []}
                raise
        return self._orders(store, data.get("orders"), 1)

    async def orders_by_number(self, store: LiveStore, number: str, limit: int) -> CanonicalRows:
        return await self.order_by_id(store, number, limit)       # a TikTok order's name and number are its id

    async def variants_by_sku(self, store: LiveStore, sku: str, limit: int) -> CanonicalRows:
        async with self._client(store) as client:
            data = await client.call("POST", PRODUCT_SEARCH, body={"seller_skus": [sku]},
                                     params={"page_size": min(max(limit, 1), SEARCH_PAGE)})
        owner = Owner.of(store.store_id, store.organization_id)
        products: dict[str, dict[str, Any]] = {}
        variants: list[dict[str, Any]] = []
        for item in data.get("products") or []:
            if not isinstance(item, Mapping):
                continue
            rows = product_rows(owner, item)
            matching = [v for v in rows["product_variants"] if v["sku"] == sku and v["deleted_at"] is None]
            if matching:
                products[rows["products"][0]["id"]] = rows["products"][0]
                variants += matching
        variants = sorted(variants, key=lambda v: (v["product_id"], v["id"]))[:limit]      # as the synced look-up
        kept = {v["product_id"] for v in variants}
        return {"products": [p for pid, p in products.items() if pid in kept], "product_variants": variants}


def tiktok_lookups(connector: TikTokConnector) -> LiveLookups:
    found = _Lookups(connector)
    return LiveLookups(orders_by_customer=found.orders_by_customer, orders_by_number=found.orders_by_number,
                       order_by_id=found.order_by_id, variants_by_sku=found.variants_by_sku, why_not=WHY_NOT)
