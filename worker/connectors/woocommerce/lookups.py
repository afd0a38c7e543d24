"""WooCommerce's live look-ups (``LiveLookups``, for stores whose access policy is ``api_only``): REST v3
searches with the store's keys, through the store's shared pacer (the same slots its sync takes), mapped by the
sync's own mapping.

* customers by email: ``/customers?email=`` (exact). Customers by phone: not offered — the customers search
  covers the WordPress user (login, email, names), not the billing phone.
* orders: ``/orders?customer=``; by email or phone ``/orders?search=`` (WooCommerce searches the billing and
  shipping address fields) and then kept only when the email is the same, or the phone's digits end with the
  number's national digits; by number ``/orders/{number}`` (WooCommerce numbers orders by id unless a plugin
  changes it); by id ``/orders/{id}``.
* products: ``/products?sku=`` (finds variations too, each with its product), ``/products?search=`` (the
  variations of variable products read from ``/products/{id}/variations``).

One guarded HTTP client per event loop, kept (store URLs are user input: the SSRF guard applies). Nothing is
written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import phonenumbers

from worker.connectors.base import shared_client
from worker.connectors.canonical import Owner
from worker.connectors.contract import CanonicalRows, LiveLookups, LiveStore
from worker.connectors.rest import json_body
from worker.connectors.store_secrets import load_secrets
from worker.connectors.woocommerce.client import WooClient
from worker.connectors.woocommerce.mapping import customer_rows, order_rows, product_rows, variation_rows
from worker.errors import NeedsReauthError, PermanentError

if TYPE_CHECKING:
    from worker.connectors.woocommerce.connector import WooConnector

__all__ = ["woocommerce_lookups"]

SEARCH_PAGE = 50          # orders read per search, before the exact match keeps the right ones


def _digits(value: Any) -> str:
    return "".join(c for c in str(value or "") if c.isdigit())


def _items(body: Any, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(body, list):
        raise PermanentError(f"WooCommerce: {what} did not answer a list")
    return [i for i in body if isinstance(i, Mapping)]


def _merge(found: list[dict[str, list[dict[str, Any]]]]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for part in found:
        for table, more in part.items():
            rows.setdefault(table, []).extend(more)
    return rows


class _Lookups:
    def __init__(self, connector: WooConnector) -> None:
        self.connector = connector

    @asynccontextmanager
    async def _client(self, store: LiveStore) -> AsyncIterator[WooClient]:
        c, ctx = self.connector, store.context
        secrets = await load_secrets(ctx.db, c.sealer(ctx.settings), store.store_id, preloaded=store.credentials)
        if secrets is None or not secrets.fields.get("consumer_key"):
            raise NeedsReauthError("the WooCommerce store has no API keys: connect it again")
        s = c.settings
        http = shared_client(("woocommerce", s.private_allowed(ctx.settings), s.ca_file, s.request_timeout_seconds),
                             lambda: c.http(ctx.settings))
        yield c.client(http, store.shop_key, secrets.fields["consumer_key"], secrets.fields["consumer_secret"],
                       c.pacer(ctx.db, store.store_id))

    async def _get(self, store: LiveStore, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The JSON answer, or None for a 404 (no such object)."""
        async with self._client(store) as client:
            response = await client.request("GET", path, params=params, expect=(404,))
            return None if response.status_code == 404 else json_body(response, client.transport.name)

    async def _orders(self, store: LiveStore, params: Mapping[str, Any], keep: Any = None) -> CanonicalRows:
        owner = Owner.of(store.store_id, store.organization_id)
        found = _items(await self._get(store, "/orders", {"orderby": "date", "order": "desc", **params}), "/orders")
        return _merge([order_rows(owner, o) for o in found if keep is None or keep(o)])

    async def customers_by_email(self, store: LiveStore, email: str, limit: int) -> CanonicalRows:
        found = _items(await self._get(store, "/customers", {"email": email, "role": "all", "per_page": limit}),
                       "/customers")
        owner = Owner.of(store.store_id, store.organization_id)
        return _merge([customer_rows(owner, c) for c in found])

    async def orders_by_customer(self, store: LiveStore, customer_id: str, limit: int) -> CanonicalRows:
        if not customer_id.isdigit():
            return {"orders": []}
        return await self._orders(store, {"customer": customer_id, "per_page": limit})

    async def orders_by_email(self, store: LiveStore, email: str, limit: int) -> CanonicalRows:
        rows = await self._orders(store, {"search": email, "per_page": SEARCH_PAGE},
                                  keep=lambda o: str((o.get("billing") or {}).get("email") or "").strip().lower()
                                  == email)
        return _first_orders(rows, limit)

    async def orders_by_phone(self, store: LiveStore, phone: str, limit: int) -> CanonicalRows:
        national = str(phonenumbers.parse(phone).national_number)
        rows = await self._orders(store, {"search": national, "per_page": SEARCH_PAGE},
                                  keep=lambda o: _digits((o.get("billing") or {}).get("phone")).endswith(national))
        return _first_orders(rows, limit)

    async def order_by_id(self, store: LiveStore, order_id: str, limit: int) -> CanonicalRows:
        if not order_id.isdigit():
            return {"orders": []}
        found = await self._get(store, f"/orders/{order_id}")
        owner = Owner.of(store.store_id, store.organization_id)
        return order_rows(owner, found) if isinstance(found, Mapping) else {"orders": []}

    async def orders_by_number(self, store: LiveStore, number: str, limit: int) -> CanonicalRows:
        if number.isdigit():
            found = await self.order_by_id(store, number, 1)
            if any(o.get("order_number") == number for o in found.get("orders", [])):
                return found
        return await self._orders(store, {"search": number, "per_page": SEARCH_PAGE},
                                  keep=lambda o: str(o.get("number")) == number)

    async def variants_by_sku(self, store: LiveStore, sku: str, limit: int) -> CanonicalRows:
        owner = Owner.of(store.store_id, store.organization_id)
        found = _items(await self._get(store, "/products", {"sku": sku, "per_page": limit}), "/products")
        parts: list[dict[str, list[dict[str, Any]]]] = []
        parents: dict[str, dict[str, Any]] = {}
        for item in found:
            if item.get("type") == "variation":
                parent = str(item.get("parent_id") or "")
                if parent and parent not in parents:
                    product = await self._get(store, f"/products/{int(parent)}")
                    if isinstance(product, Mapping):
                        parents[parent] = product_rows(owner, product, [])["products"][0]
                if parent in parents:
                    parts.append(variation_rows(owner, item))
            else:
                parts.append(product_rows(owner, item))
        rows = _merge(parts)
        rows["products"] = [*rows.get("products", []), *parents.values()]
        rows["product_variants"] = [v for v in rows.get("product_variants", []) if v["sku"] == sku]
        return rows

    async def products_by_text(self, store: LiveStore, text: str, limit: int) -> CanonicalRows:
        owner = Owner.of(store.store_id, store.organization_id)
        found = _items(await self._get(store, "/products", {"search": text, "per_page": limit}), "/products")
        parts = []
        for product in found:
            variations = None
            if product.get("type") == "variable":
                variations = _items(await self._get(store, f"/products/{int(product['id'])}/variations",
                                                    {"per_page": 50}), "variations")
            parts.append(product_rows(owner, product, variations))
        return _merge(parts)


def _first_orders(rows: CanonicalRows, limit: int) -> CanonicalRows:
    orders = list(rows.get("orders", []))[:limit]
    kept = {o["id"] for o in orders}
    lines = [r for r in rows.get("order_line_items", []) if r["order_id"] in kept]
    return {"orders": orders, "order_line_items": lines}


def woocommerce_lookups(connector: WooConnector) -> LiveLookups:
    found = _Lookups(connector)
    return LiveLookups(customers_by_email=found.customers_by_email, orders_by_customer=found.orders_by_customer,
                       orders_by_email=found.orders_by_email, orders_by_phone=found.orders_by_phone,
                       orders_by_number=found.orders_by_number, order_by_id=found.order_by_id,
                       variants_by_sku=found.variants_by_sku, products_by_text=found.products_by_text)
