"""Price and inventory writes to one TikTok shop (the ``set_price`` / ``set_inventory`` capabilities).

* ``set_prices``: one ``POST /product/202309/products/{id}/prices/update`` for the product's SKUs. It is all or
  nothing and says nothing per SKU, so when it fails for a reason one SKU may cause (a promotion lock, a refused
  amount, a SKU that is gone) and several SKUs were sent, each is sent alone to find which. Reasons: 12019045 /
  12052038 → ``promotion_locked``; 12019113 → ``product_not_live`` (under review, deactivated); 12019150 →
  ``product_deleted``; 12052557 → ``sku_deleted``; 12052012, 12052073, 12052092, 12052570, 12052096 →
  ``price_rejected``.
* ``set_inventory``: one ``POST …/inventory/update`` with every warehouse of each SKU. TikTok answers HTTP 200,
  ``code: 0`` and lists failed SKUs in ``data.errors`` (their codes in ``detail.extra_errors``): 12052393 →
  ``promotion_locked``; 12052557 → ``sku_deleted``; 12052003 → ``product_not_live``; 12019024 →
  ``quantity_rejected``; 12019028 (the SKU's warehouses changed) → the product is read again and those SKUs sent
  once more with its current warehouses.
* ``read_group``: Get Product — status, and each SKU's price and stock per warehouse.
Rate limits and transient errors are the client's (retried, then ``RetryableError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from worker.connectors.tiktok.client import TikTokClient
from worker.connectors.tiktok.errors import TikTokApiError
from worker.connectors.writes import GroupState, ItemOutcome, ItemResult, ItemState, PriceChange, StockChange

__all__ = ["PRICE_REASONS", "TikTokWriter"]

PRICE_REASONS = {12019045: "promotion_locked", 12052038: "promotion_locked", 12019113: "product_not_live",
                 12019150: "product_deleted", 12052557: "sku_deleted", 12052012: "price_rejected",
                 12052073: "price_rejected", 12052092: "price_rejected", 12052570: "price_rejected",
                 12052096: "price_rejected"}
INVENTORY_REASONS = {12052393: "promotion_locked", 12052557: "sku_deleted", 12052003: "product_not_live",
                     12019024: "quantity_rejected", 12052036: "quantity_rejected", 12019028: "warehouses_changed"}
_WHOLE_PRODUCT = frozenset({12019113, 12019150})
_ACTION = frozenset({"promotion_locked", "product_not_live", "product_deleted", "sku_deleted"})


def _result(item_id: str, reason: str, code: int, message: str) -> ItemResult:
    outcome = ItemOutcome.ACTION_REQUIRED if reason in _ACTION else ItemOutcome.REJECTED
    return ItemResult(item_id, outcome, reason, str(code), message[:300])


class TikTokWriter:
    def __init__(self, client: TikTokClient) -> None:
        self.client = client

    # --- prices -------------------------------------------------------------------------------------------
    async def set_prices(self, group: str, changes: Sequence[PriceChange]) -> list[ItemResult]:
        if not changes:
            return []
        try:
            await self._price_call(group, changes)
            return [ItemResult.ok(c.item_id) for c in changes]
        except TikTokApiError as exc:
            reason = PRICE_REASONS.get(exc.code)
            if reason is None:
                return [_result(c.item_id, "platform_error", exc.code, exc.tiktok_message) for c in changes]
            if exc.code in _WHOLE_PRODUCT or len(changes) == 1:
                return [_result(c.item_id, reason, exc.code, exc.tiktok_message) for c in changes]
        # one SKU may be the cause: send each alone
        results = []
        for change in changes:
            results += await self.set_prices(group, [change])
        return results

    async def _price_call(self, group: str, changes: Sequence[PriceChange]) -> None:
        skus = [{"id": c.item_id, "price": {"amount": str(c.amount.quantize(Decimal("0.01"), ROUND_HALF_UP)),
                                            "currency": c.currency or "USD"}} for c in changes]
        await self.client.call("POST", f"/product/202309/products/{group}/prices/update", body={"skus": skus})

    # --- inventory ----------------------------------------------------------------------------------------
    async def set_inventory(self, group: str, changes: Sequence[StockChange]) -> list[ItemResult]:
        if not changes:
            return []
        results = await self._inventory_call(group, changes)
        moved = [c for c in changes if any(r.item_id == c.item_id and r.reason == "warehouses_changed"
                                           for r in results)]
        if moved:
            state = await self.read_group(group)
            again = []
            for change in moved:
                now = state.items.get(change.item_id)
                if now is None or not now.levels:
                    continue
                total, warehouses = sum(change.levels.values()), sorted(now.levels)
                again.append(StockChange(change.item_id,
                                         {w: (total if i == 0 else 0) for i, w in enumerate(warehouses)}))
            retried = {r.item_id: r for r in await self._inventory_call(group, again)} if again else {}
            results = [retried.get(r.item_id, r) if r.reason == "warehouses_changed" else r for r in results]
        return results

    async def _inventory_call(self, group: str, changes: Sequence[StockChange]) -> list[ItemResult]:
        skus = [{"id": c.item_id, "inventory": [{"warehouse_id": w, "quantity": int(q)} for w, q in c.levels.items()]}
                for c in changes]
        try:
            data = await self.client.call("POST", f"/product/202309/products/{group}/inventory/update",
                                          body={"skus": skus})
        except TikTokApiError as exc:
            reason = PRICE_REASONS.get(exc.code, "platform_error")
            return [_result(c.item_id, reason, exc.code, exc.tiktok_message) for c in changes]
        failed: dict[str, ItemResult] = {}
        for error in data.get("errors") or []:
            detail = error.get("detail") if isinstance(error, dict) else None
            if not isinstance(detail, dict) or not detail.get("sku_id"):
                continue
            extra = [e for e in detail.get("extra_errors") or [] if isinstance(e, dict)]
            code = int(extra[0].get("code") or error.get("code") or 0) if extra else int(error.get("code") or 0)
            message = str((extra[0] if extra else error).get("message") or "")
            sku_id = str(detail["sku_id"])
            failed[sku_id] = _result(sku_id, INVENTORY_REASONS.get(code, "platform_error"), code, message)
        return [failed.get(c.item_id) or ItemResult.ok(c.item_id) for c in changes]

    # --- reading back -------------------------------------------------------------------------------------
    async def read_group(self, group: str) -> GroupState:
        try:
            data = await self.client.call("GET", f"/product/202309/products/{group}")
        except TikTokApiError as exc:
            if exc.code == 12019150:
                return GroupState("DELETED", False)
            raise
        items: dict[str, ItemState] = {}
        for sku in data.get("skus") or []:
            if not isinstance(sku, dict) or not sku.get("id"):
                continue
            price: Any = sku.get("price") if isinstance(sku.get("price"), dict) else {}
            amount = price.get("sale_price") or price.get("tax_exclusive_price")
            levels = {str(e.get("warehouse_id")): int(e.get("quantity") or 0) for e in sku.get("inventory") or []
                      if isinstance(e, dict) and e.get("warehouse_id")}
            items[str(sku["id"])] = ItemState(Decimal(str(amount)) if amount not in (None, "") else None,
                                              price.get("currency"), levels)
        status = str(data.get("status") or "")
        return GroupState(status, status == "ACTIVATE", items)
