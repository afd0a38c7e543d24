"""``links.push``: one target product's linked SKUs brought in line with their sources.

The job (one per target product at a time: its concurrency key) first lets a burst settle — it waits while new
changes keep arriving (``SETTLE`` apart, at most ``MAX_SETTLE``) or while a source store is in a burst of webhook
deliveries (a bulk edit: at most ``MAX_BURST_WAIT``), so ten changes of one variant in a burst make one push —
then reads every link of the product that may push —
with the source's price and stock *now*, so the newest stored value wins however and in whatever order changes
arrived — applies each link's rules, and sends only what differs from the value the target last confirmed:
prices in one call, stock in another (every warehouse of the SKU named: the target quantity in the default
warehouse, 0 in the others). Per-SKU results decide each link's status: ``action_required`` for what the
merchant must resolve (promotion lock, product under review or not live, deleted SKU — not retried until the link
or the source changes), ``error`` for refused values (a negative or non-numeric price after the rule is never
sent), ``active`` again once everything went through. Rate limits and 5xx are retried inside the call and then
by the queue with backoff. ``finish_link_push`` records the results and the sequence pushed; a change that
landed meanwhile gets a new job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from worker.connectors import registry
from worker.connectors.writes import ItemOutcome, ItemResult, PriceChange, StockChange, StoreWriter
from worker.errors import PermanentError, RetryableError
from worker.jobs.registry import Job, JobContext
from worker.links.rules import InventoryRule, PriceRule, Refused
from worker.rpc import product_links, stores

__all__ = ["push_handler"]

log = logging.getLogger("shopsync.links.push")

SETTLE = 0.25              # seconds without a new change before a push goes out
MAX_SETTLE = 2.0           # ... unless changes keep coming: then after this long anyway
MAX_BURST_WAIT = 30.0      # while a source store is in a burst of webhook deliveries, wait for it up to this long

_RESULT = {ItemOutcome.OK: "pushed", ItemOutcome.ACTION_REQUIRED: "action_required", ItemOutcome.REJECTED: "failed",
           ItemOutcome.RETRY: "retry"}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _same_price(a: Any, b: Decimal) -> bool:
    return a is not None and Decimal(str(a)) == b


class _Plan:
    """What to send and the rows to record, built from ``begin_link_push``'s links."""

    def __init__(self, links: Sequence[Mapping[str, Any]]) -> None:
        self.rows: list[dict[str, Any]] = []
        self.prices: list[PriceChange] = []
        self.stock: dict[str, tuple[int, list[str]]] = {}      # sku -> (quantity, warehouses)
        self.link_of: dict[str, Mapping[str, Any]] = {}
        self.price_of: dict[str, Decimal] = {}
        for link in links:
            sku = str(link["target_sku_id"])
            self.link_of[sku] = link
            if not link.get("source_found"):
                self._row(link, "price" if link["sync_price"] else "inventory", None, "action_required",
                          reason="source_deleted", message="the linked source variant was deleted")
                continue
            if link["sync_price"]:
                try:
                    price = PriceRule.of(link).apply(link.get("source_price"))
                    if not _same_price(link.get("last_pushed_price"), price):
                        self.prices.append(PriceChange(sku, price, link.get("target_currency")))
                        self.price_of[sku] = price
                except Refused as exc:
                    self._row(link, "price", None, "refused", reason=exc.reason, message=exc.message)
            if link["sync_inventory"]:
                try:
                    quantity = InventoryRule.of(link).apply(link.get("source_quantity"))
                    if link.get("last_pushed_quantity") != quantity:
                        self.stock[sku] = (quantity, [str(w) for w in link.get("warehouses") or []])
                except Refused as exc:
                    self._row(link, "inventory", None, "refused", reason=exc.reason, message=exc.message)

    def _row(self, link: Mapping[str, Any], field: str, new: Any, result: str, *, reason: str | None = None,
             code: str | None = None, message: str | None = None, duration_ms: int | None = None) -> None:
        old = link.get("last_pushed_price" if field == "price" else "last_pushed_quantity")
        self.rows.append({"link_id": str(link["link_id"]), "field": field, "old": _text(old), "new": _text(new),
                          "result": result, "reason": reason, "code": code, "message": message,
                          "duration_ms": duration_ms})

    def record(self, field: str, results: Sequence[ItemResult], values: Mapping[str, Any], duration_ms: int,
               levels: Mapping[str, Mapping[str, int]] | None = None) -> None:
        for r in results:
            link = self.link_of.get(r.item_id)
            if link is not None:
                self._row(link, field, values.get(r.item_id), _RESULT[r.outcome], reason=r.reason, code=r.code,
                          message=r.message, duration_ms=duration_ms)
                if levels and r.item_id in levels:
                    self.rows[-1]["levels"] = dict(levels[r.item_id])

    def stock_changes(self) -> list[StockChange]:
        return [StockChange(sku, {w: (quantity if i == 0 else 0) for i, w in enumerate(warehouses)})
                for sku, (quantity, warehouses) in self.stock.items()]


async def _fill_warehouses(writer: StoreWriter, product: str, plan: _Plan) -> None:
    """SKUs whose warehouses are not synced yet: ask the target once."""
    if all(warehouses for _, warehouses in plan.stock.values()):
        return
    state = await writer.read_group(product)
    for sku, (quantity, warehouses) in list(plan.stock.items()):
        if not warehouses:
            known = state.items.get(sku)
            plan.stock[sku] = (quantity, sorted(known.levels) if known and known.levels else [])


async def settle(jctx: JobContext, store_id: Any, product: str) -> None:
    """Return once the product's changes have stopped coming for ``SETTLE`` (bounded, see the module doc)."""
    started = time.monotonic()
    seq, _ = await product_links.link_push_pending(jctx.db, target_store_id=store_id, product_id=product)
    while True:
        await asyncio.sleep(SETTLE)
        latest, burst = await product_links.link_push_pending(jctx.db, target_store_id=store_id, product_id=product)
        waited = time.monotonic() - started
        if not ((latest != seq and waited < MAX_SETTLE) or (burst and waited < MAX_BURST_WAIT)):
            return
        seq = latest


async def push_product(jctx: JobContext, store: Mapping[str, Any], product: str,
                       job_id: int | None) -> dict[str, Any]:
    db = jctx.db
    await settle(jctx, store["id"], product)
    contract = registry.connector(str(store["platform"])).contract
    if contract.open_writer is None:
        raise PermanentError(f"{contract.display_name} stores cannot receive pushed prices or stock")
    begun = await product_links.begin_link_push(db, target_store_id=store["id"], product_id=product)
    seq = int(begun.get("seq") or 0)
    plan = _Plan(begun.get("links") or [])
    sent = {"prices": len(plan.prices), "inventory": len(plan.stock)}
    if plan.prices or plan.stock:
        try:
            async with contract.open_writer(jctx, store) as writer:
                if plan.prices:
                    started = time.perf_counter()
                    results = await writer.set_prices(product, plan.prices)
                    plan.record("price", results, {k: str(v) for k, v in plan.price_of.items()},
                                int((time.perf_counter() - started) * 1000))
                if plan.stock:
                    await _fill_warehouses(writer, product, plan)
                    started = time.perf_counter()
                    changes = plan.stock_changes()
                    results = await writer.set_inventory(product, changes)
                    plan.record("inventory", results, {c.item_id: sum(c.levels.values()) for c in changes},
                                int((time.perf_counter() - started) * 1000), {c.item_id: c.levels for c in changes})
        except RetryableError as exc:
            # recorded (the link shows why it waits), not marked done: the queue retries this job with backoff
            pending = [{"link_id": str(plan.link_of[sku]["link_id"]), "field": field, "old": None, "new": None,
                        "result": "retry", "reason": "platform_unavailable", "message": str(exc)[:300]}
                       for field, skus in (("price", [c.item_id for c in plan.prices]), ("inventory", list(plan.stock)))
                       for sku in skus]
            await product_links.finish_link_push(db, target_store_id=store["id"], product_id=product, seq=seq,
                                                 results=plan.rows + pending, job_id=job_id, done=False)
            raise
    requeued = await product_links.finish_link_push(db, target_store_id=store["id"], product_id=product, seq=seq,
                                                    results=plan.rows, job_id=job_id)
    return {"product_id": product, **sent, "requeued": requeued}


async def push_handler(job: Job, jctx: JobContext) -> Mapping[str, Any]:
    product = job.payload.get("product_id")
    if job.store_id is None or not isinstance(product, str) or not product:
        raise PermanentError(f"links.push job {job.id} names no target store or product")
    store = await stores.get_store(jctx.db, store_id=job.store_id)
    if store is None:
        return {"skipped": "the target store no longer exists"}
    if store["status"] != "active":
        # nothing is lost: links read the source again when the store is back (reconciliation requests pushes)
        return {"skipped": f"the target store is {store['status']}"}
    return await push_product(jctx, {**store, "id": job.store_id}, product, job.id)
