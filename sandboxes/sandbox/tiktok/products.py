"""Product endpoints: Search Products (202502; 202309 answers the same), Get Product (202309), Update Price and
Update Inventory (202309).

* Search: filters ``status`` (ALL by default, DELETED included), ``create_time_ge/le``, ``update_time_ge/le``
  (inclusive), ``seller_skus`` (≤ 10 → 12019027), ``sku_ids`` (≤ 10 → 12019087); results in (create_time, id)
  order [unverified: TikTok documents none]; offset page tokens; ``total_count``; the last page's
  ``next_page_token`` is ``""``. No page may reach past ``sandbox.search_cap`` results when the filter matches
  more (12052180 "The total number of search results can not exceed 10000.").
* Update Price: all or nothing, a failure is a non-zero envelope code (12019113 status not ACTIVATE, 12019045
  promotion lock, 12052012 format, 12052073 zero, 12052570 above ``max_price``, 12052553 duplicate SKU,
  12052557 SKU not of the product); ``data`` is always empty.
* Update Inventory: HTTP 200 and ``code: 0`` with per-SKU failures in ``data.errors`` (code 12052990 and the
  real codes in ``detail.extra_errors``): 12019028 warehouses missing/unrelated, 12019024 quantity out of range,
  12052393 promotion lock below current stock, 12052557 unknown SKU; the other SKUs are applied.
"""

from __future__ import annotations

import re
import time
from bisect import bisect_left, bisect_right
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.tiktok.gateway import authenticate, envelope, json_object, page_token, search_request
from sandbox.tiktok.model import TtProduct
from sandbox.tiktok.render import product_json
from sandbox.tiktok.state import TikTokSandbox, TtShop

__all__ = ["ProductEndpoints"]

_AMOUNT = re.compile(r"^\d{1,7}(\.\d{1,2})?$")
_GONE = ("DELETED",)


def _int_filter(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    return int(value) if isinstance(value, int | str) and str(value).lstrip("-").isdigit() else None


def _sku_error(sku_id: str, code: int, message: str, warehouse_id: str = "") -> dict[str, Any]:
    return {"code": 12052990, "message": "batch update inventory error",
            "detail": {"sku_id": sku_id, "extra_errors": [{"code": code, "message": message,
                                                           "warehouse_id": warehouse_id}]}}


class ProductEndpoints:
    def __init__(self, sandbox: TikTokSandbox) -> None:
        self.sandbox = sandbox

    def _product(self, shop: TtShop, product_id: str) -> TtProduct | None:
        found = shop.products.get(product_id)
        return None if found is None or found.status in _GONE else found

    async def search(self, request: Request) -> Response:
        search = await search_request(self.sandbox, request)
        if isinstance(search, Response):
            return search
        caller, size, offset, body = search
        seller_skus = body.get("seller_skus") or []
        sku_ids = body.get("sku_ids") or []
        if len(seller_skus) > 10:
            return envelope(12019027, "The maximum count of “seller_skus” in the search filter is 10.")
        if len(sku_ids) > 10:
            return envelope(12019087, "The number of SKU IDs exceeds the limit of 10")
        status = str(body.get("status") or "ALL")
        bounds = {k: _int_filter(body, k) for k in ("create_time_ge", "create_time_le", "update_time_ge",
                                                      "update_time_le")}
        shop = caller.require_shop()
        with self.sandbox.lock:
            ordered, created = shop.products_by_created()
            low, high = bounds["create_time_ge"], bounds["create_time_le"]
            window = ordered[bisect_left(created, low) if low is not None else 0:
                             bisect_right(created, high) if high is not None else len(ordered)]
            plain = status == "ALL" and not seller_skus and not sku_ids and \
                bounds["update_time_ge"] is None and bounds["update_time_le"] is None
            matched = window if plain else []
            for p in [] if plain else window:
                if status != "ALL" and p.status != status:
                    continue
                if not _within(p.create_time, bounds["create_time_ge"], bounds["create_time_le"]) or \
                        not _within(p.update_time, bounds["update_time_ge"], bounds["update_time_le"]):
                    continue
                skus = p.live_skus()
                if seller_skus and not any(s.seller_sku in seller_skus for s in skus):
                    continue
                if sku_ids and not any(s.id in sku_ids for s in skus):
                    continue
                matched.append(p)
            total = len(matched)
            if total > self.sandbox.search_cap and offset + size > self.sandbox.search_cap:
                self.sandbox.count("search_cap_errors")
                return envelope(12052180, "The total number of search results can not exceed 10000.")
            page = [product_json(p) for p in matched[offset:offset + size]]
        following = offset + size
        return envelope(0, "Success", {"products": page, "total_count": total,
                                       "next_page_token": page_token(following) if following < total else ""})

    async def detail(self, request: Request) -> Response:
        caller = await authenticate(self.sandbox, request)
        if isinstance(caller, Response):
            return caller
        with self.sandbox.lock:
            product = self._product(caller.require_shop(), request.path_params["product_id"])
            if product is None or product.status == "FREEZE":
                return envelope(12019150, "The product ID does not exist.")
            return envelope(0, "Success", product_json(product, detail=True))

    async def update_price(self, request: Request) -> Response:
        caller = await authenticate(self.sandbox, request)
        if isinstance(caller, Response):
            return caller
        body = json_object(caller.body)
        if isinstance(body, Response):
            return body
        shop = caller.require_shop()
        with self.sandbox.lock:
            product = self._product(shop, request.path_params["product_id"])
            if product is None:
                return envelope(12019150, "The product ID does not exist.")
            items = body.get("skus")
            if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
                return envelope(36009004, "invalid param error: skus", status=400)
            ids = [str(i.get("id")) for i in items]
            if len(set(ids)) != len(ids):
                return envelope(12052553, "Sku id duplicate")
            planned: list[tuple[str, Decimal]] = []
            for item in items:
                sku = product.sku(str(item.get("id")))
                if sku is None:
                    return envelope(12052557, "The SKU ID does not belong to the product.")
                price = item.get("price") if isinstance(item.get("price"), dict) else {}
                text = price.get("amount")
                if not isinstance(text, str) or not _AMOUNT.match(text) or price.get("currency") != product.currency:
                    return envelope(12052012, "Incorrect price format")
                value = Decimal(text)
                if value <= 0:
                    return envelope(12052073, "The product price is invalid")
                if value > self.sandbox.max_price:
                    return envelope(12052570, "product price exceed limit")
                planned.append((sku.id, value))
            if product.status != "ACTIVATE":
                return envelope(12019113, "product status is invalid")
            if any(s.promotion_locked for s in product.live_skus() if s.id in ids):
                return envelope(12019045, "price is locked")
            for sku_id, value in planned:
                sku = product.sku(sku_id)
                assert sku is not None
                sku.price = value
            product.update_time = max(self.sandbox.clock.seconds(), product.update_time)
            self.sandbox.writes.append({"kind": "price", "shop": shop.id, "product": product.id,
                                        "skus": {s: str(v) for s, v in planned}, "at": time.time()})
        return envelope(0, "Success", {})

    async def update_inventory(self, request: Request) -> Response:
        caller = await authenticate(self.sandbox, request)
        if isinstance(caller, Response):
            return caller
        body = json_object(caller.body)
        if isinstance(body, Response):
            return body
        shop = caller.require_shop()
        with self.sandbox.lock:
            product = self._product(shop, request.path_params["product_id"])
            if product is None:
                return envelope(12019150, "The product ID does not exist.")
            if product.status == "FREEZE":
                return envelope(12019113, "product status is invalid")
            items = body.get("skus")
            if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
                return envelope(36009004, "invalid param error: skus", status=400)
            errors: list[dict[str, Any]] = []
            applied: dict[str, dict[str, int]] = {}
            for item in items:
                sku_id = str(item.get("id"))
                error = self._inventory_error(product, sku_id, item.get("inventory"))
                if error is not None:
                    errors.append(error)
                    continue
                sku = product.sku(sku_id)
                assert sku is not None
                levels = {str(e.get("warehouse_id") or next(iter(sku.inventory))): int(e["quantity"])
                          for e in item["inventory"]}
                sku.inventory.update(levels)
                applied[sku_id] = levels
            if applied:
                product.update_time = max(self.sandbox.clock.seconds(), product.update_time)
            self.sandbox.writes.append({"kind": "inventory", "shop": shop.id, "product": product.id, "skus": applied,
                                        "failed": [e["detail"]["sku_id"] for e in errors], "at": time.time()})
        return envelope(0, "Success", {"errors": errors} if errors else {})

    def _inventory_error(self, product: TtProduct, sku_id: str, inventory: Any) -> dict[str, Any] | None:
        sku = product.sku(sku_id)
        if sku is None:
            return _sku_error(sku_id, 12052557, "The SKU ID does not belong to the product.")
        if not isinstance(inventory, list) or not inventory or not all(isinstance(e, dict) for e in inventory):
            return _sku_error(sku_id, 12052036, "The inventory is necessary")
        named = [str(e.get("warehouse_id") or "") for e in inventory]
        if len(sku.inventory) > 1 or any(named):
            if sorted(named) != sorted(sku.inventory):
                return _sku_error(sku_id, 12019028, "Multiple warehouses detected. Include all warehouse IDs assigned "
                                                    "to this SKU and do not add unrelated warehouses.")
        low = 0 if self.sandbox.accept_zero_quantity else 1
        for entry in inventory:
            quantity = entry.get("quantity")
            wh = str(entry.get("warehouse_id") or next(iter(sku.inventory)))
            if not isinstance(quantity, int) or isinstance(quantity, bool) or not low <= quantity <= 99_999:
                return _sku_error(sku_id, 12019024, "stock count is invalid", wh)
            if sku.promotion_locked and quantity < sku.inventory.get(wh, 0):
                return _sku_error(sku_id, 12052393, "Product locked for Promotion and stock can't be updated below "
                                                    "current stock", wh)
        return None


def _within(value: int, low: int | None, high: int | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)
