"""``links.push``: a target store's linked SKUs brought in line with their sources.

One job per target store at a time (its concurrency key ``links.push:<store>``; a change queues one when none
is queued) pushes every product of the store that is *due*, several at once through one client, so the calls of
many products share the store's limiter and keep it busy — and two workers never push one product at once.

When a product is due — its own changes coalesce: it waits until its last change is ``SETTLE`` old (ten quick
edits of one variant make one push). While a source store of its links is in a storm of catalog webhook
deliveries (``STORM_DELIVERIES`` about products, variants or stock in the last ``STORM_SECONDS``, e.g. a bulk
edit in its admin; orders do not count), it waits for the storm to end: such deliveries arrive in any order, so
the product's newest value may still be on its way, however long it has been quiet. ``MAX_DELAY`` after the
job first saw it pending it is pushed anyway (a storm that never ends). The job waits (polling, one worker
slot) while anything of its store is pending, and ends when nothing is.

A push reads every link of the product that may push with the source's price and stock *now*, so the newest
stored value wins however and in whatever order changes arrived — applies each link's rules, and sends only
what differs from the value the target last confirmed: prices in one call, stock in another (every warehouse
of the SKU named: the target quantity in the default warehouse, 0 in the others). Per-SKU results decide each
link's status: ``action_required`` for what the merchant must resolve (promotion lock, product under review or
not live, deleted SKU — not retried until the link or the source changes), ``error`` for refused values (a
negative or non-numeric price after the rule is never sent), ``active`` again once everything went through.
Rate limits and 5xx are retried inside the call and then by the queue with backoff (the job stops starting
pushes and fails retryably). ``finish_link_push`` records the results and the sequence pushed; a change that
landed meanwhile keeps the product pending.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Any

from worker.connectors import registry
from worker.connectors.writes import ItemOutcome, ItemResult, PriceChange, StockChange, StoreWriter
from worker.errors import PermanentError, RetryableError
from worker.jobs.registry import Job, JobContext
from worker.links.rules import InventoryRule, PriceRule, Refused
from worker.rpc import product_links, stores
from worker.rpc.product_links import PendingPush

__all__ = ["due", "push_handler", "push_store"]

log = logging.getLogger("shopsync.links.push")

SETTLE = 0.25              # seconds since a product's own last change before it is pushed
STORM_DELIVERIES = 6       # a source store receiving this many webhook deliveries ...
STORM_SECONDS = 2.0        # ... within this long is in a storm: its products wait for it to end
MAX_DELAY = 60.0           # ... but at most this long after the job first saw them pending
PARALLEL = 16              # products pushed at once by one job (their requests share the store's limiter)
POLL = 0.25                # how often the job looks at what is pending (sooner when a product settles sooner)

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


def due(pending: PendingPush, waited: float) -> bool:
    """Whether a pending product is pushed now (``waited``: seconds since the job first saw it pending)."""
    return waited >= MAX_DELAY or (pending.quiet >= SETTLE and not pending.storming)


async def push_product(jctx: JobContext, writer: StoreWriter, store: Mapping[str, Any], product: str,
                       job_id: int | None) -> dict[str, Any]:
    db = jctx.db
    begun = await product_links.begin_link_push(db, target_store_id=store["id"], product_id=product)
    seq = int(begun.get("seq") or 0)
    plan = _Plan(begun.get("links") or [])
    sent = {"prices": len(plan.prices), "inventory": len(plan.stock)}
    try:
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
        # recorded (the link shows why it waits), not marked done: the queue retries the job with backoff
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


class _StorePush:
    """One job's pushes for one target store: the writer is opened on the first due product and shared."""

    def __init__(self, jctx: JobContext, store: Mapping[str, Any], job_id: int | None) -> None:
        self.jctx, self.store, self.job_id = jctx, store, job_id
        self.contract = registry.connector(str(store["platform"])).contract
        self.exits = AsyncExitStack()
        self.writer: StoreWriter | None = None
        self.running: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self.first_seen: dict[str, float] = {}
        self.ready: deque[str] = deque()
        self.next_look = 0.0
        self.failure: BaseException | None = None
        self.stats = {"products": 0, "prices": 0, "inventory": 0}

    async def open(self) -> StoreWriter:
        if self.writer is None:
            if self.contract.open_writer is None:
                raise PermanentError(f"{self.contract.display_name} stores cannot receive pushed prices or stock")
            writer: StoreWriter = await self.exits.enter_async_context(self.contract.open_writer(self.jctx,
                                                                                                   self.store))
            self.writer = writer
        return self.writer

    def collect(self, task: asyncio.Task[dict[str, Any]], *, product: str) -> None:
        self.running.pop(product, None)
        self.first_seen.pop(product, None)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.failure = self.failure or exc
            return
        done = task.result()
        self.stats["products"] += 1
        self.stats["prices"] += done["prices"]
        self.stats["inventory"] += done["inventory"]

    async def look(self) -> bool:
        """Read what is pending: the due products become ``ready`` (oldest change first) and the next look is
        planned — at most ``POLL`` away, sooner when a product settles sooner. False when nothing is pending."""
        pending = [p for p in await product_links.link_push_due(
            self.jctx.db, target_store_id=self.store["id"], storm_deliveries=STORM_DELIVERIES,
            storm_seconds=STORM_SECONDS) if p.product_id not in self.running]
        now = time.monotonic()
        ready, waits = [], [POLL]
        for p in pending:
            if due(p, now - self.first_seen.setdefault(p.product_id, now)):
                ready.append(p.product_id)
            elif not p.storming:
                waits.append(SETTLE - p.quiet)
        self.ready = deque(ready)
        self.next_look = now + max(min(waits), 0.01)
        return bool(pending)

    def launch(self, writer: StoreWriter, product: str) -> None:
        task = asyncio.create_task(push_product(self.jctx, writer, self.store, product, self.job_id))
        task.add_done_callback(functools.partial(self.collect, product=product))
        self.running[product] = task

    async def run(self) -> dict[str, Any]:
        async with self.exits:
            try:
                while self.failure is None:
                    # between looks, a finished push makes room for the next ready product without a query
                    if time.monotonic() >= self.next_look and not await self.look() and not self.running:
                        break
                    while self.ready and len(self.running) < PARALLEL:
                        product = self.ready.popleft()
                        if product not in self.running:
                            self.launch(await self.open(), product)
                    pause = max(self.next_look - time.monotonic(), 0.01)
                    if self.running:
                        await asyncio.wait(list(self.running.values()), timeout=pause,
                                           return_when=asyncio.FIRST_COMPLETED)
                    else:
                        await asyncio.sleep(pause)
            except asyncio.CancelledError:
                for task in self.running.values():
                    task.cancel()
                raise
            finally:
                if self.running:      # a failure (or a cancel): let the pushes under way record their results
                    await asyncio.wait(list(self.running.values()))
        if self.failure is not None:
            raise self.failure
        return self.stats


async def push_store(jctx: JobContext, store: Mapping[str, Any], job_id: int | None) -> dict[str, Any]:
    """Push every due product of the target store until none is pending."""
    return await _StorePush(jctx, store, job_id).run()


async def push_handler(job: Job, jctx: JobContext) -> Mapping[str, Any]:
    if job.store_id is None:
        raise PermanentError(f"links.push job {job.id} names no target store")
    store = await stores.get_store(jctx.db, store_id=job.store_id)
    if store is None:
        return {"skipped": "the target store no longer exists"}
    if store["status"] != "active":
        # nothing is lost: links read the source again when the store is back (reconciliation requests pushes)
        return {"skipped": f"the target store is {store['status']}"}
    return await push_store(jctx, {**store, "id": job.store_id}, job.id)
