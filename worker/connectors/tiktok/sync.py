"""The TikTok Shop ``SyncSource``: one store + resource → canonical ``Batch``es for ``worker.sync.engine``.

TikTok's searches return at most ``search_cap`` (10,000) results per filter — asking for a page past them
answers 12052180 — so every walk goes through **time windows**: a window's first page says how many results it
matches (``total_count``); one that matches more than the cap is split in two and each half is walked
(windows ascend; a cap error met later — the shop grew meanwhile — splits the window and walks it again: writes
are idempotent). Pages of one window are followed with ``page_token``.

- **full** — products by ``create_time`` (which never changes, so windows stay stable), then orders by
  ``create_time``; warehouses (``inventory_locations``) first, one call.
- **incremental** — products and orders by ``update_time`` from the watermark − overlap to now.
- **reconcile** — every product / order id (windows again) compared with the stored ids; missing products are
  confirmed gone with Get Product (12019150), missing orders with Get Order Detail (21008111); SKUs no live
  product lists any more are soft-deleted.
- **customers** — TikTok Shop has no customer API (buyers are anonymised): the run completes with nothing.

Checkpoint (after every batch): ``{"pending": [[lo, hi], …], "page_token": …}`` — the windows still to walk,
the current one last — so a killed sync resumes on the page it stopped at.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from worker.connectors.canonical import Owner
from worker.connectors.tiktok.client import TikTokClient
from worker.connectors.tiktok.errors import TikTokApiError
from worker.connectors.tiktok.mapping import RESOURCE_TABLES, order_rows, product_rows, tiktok_id, warehouse_rows
from worker.errors import PermanentError
from worker.sync.batch import Batch, BatchRows
from worker.sync.engine import SyncContext, SyncSource
from worker.sync.reconcile import NumericIdSet, vanished

__all__ = ["ClientOpener", "SEARCH_CAP_ERROR", "Search", "tiktok_sync_source", "windows"]

ClientOpener = Callable[[SyncContext], AbstractAsyncContextManager[TikTokClient]]
SEARCH_CAP_ERROR = 12052180
EPOCH = 1_451_606_400          # 2016-01-01: before any TikTok Shop existed
AHEAD = 86_400                 # windows reach a day past our clock: TikTok's may be ahead (nothing is in the future)
PRODUCT_SEARCH = "/product/202502/products/search"
ORDER_SEARCH = "/order/202309/orders/search"


class Search:
    """One search endpoint filtered to ``[lo, hi]`` (unix seconds, inclusive) on ``field``."""

    def __init__(self, client: TikTokClient, path: str, items: str, field: str, *, upper: str, page_size: int,
                 sort: bool = False) -> None:
        self.client, self.path, self.items, self.field = client, path, items, field
        self.upper, self.page_size, self.sort = upper, page_size, sort

    async def page(self, lo: int, hi: int, token: str | None) -> tuple[list[dict[str, Any]], int, str | None]:
        body = {f"{self.field}_ge": lo, f"{self.field}_{self.upper}": hi if self.upper == "le" else hi + 1}
        params: dict[str, Any] = {"page_size": self.page_size, "page_token": token}
        if self.sort:
            params.update(sort_field=self.field, sort_order="ASC")
        data = await self.client.call("POST", self.path, params=params, body=body)
        found = [i for i in data.get(self.items) or [] if isinstance(i, dict)]
        total = data.get("total_count")
        following = str(data.get("next_page_token") or "") or None
        return found, int(total) if isinstance(total, int) else len(found), following


Page = tuple[list[dict[str, Any]], int, str | None]


async def _asked(search: Search, lo: int, hi: int, token: str | None) -> tuple[Page | TikTokApiError, datetime]:
    asked = datetime.now(UTC)
    try:
        return await search.page(lo, hi, token), asked
    except TikTokApiError as exc:
        if exc.code != SEARCH_CAP_ERROR:
            raise
        return exc, asked


async def windows(search: Search, lo: int, hi: int, cap: int, checkpoint: Mapping[str, Any] | None
                  ) -> AsyncGenerator[tuple[list[dict[str, Any]], dict[str, Any], datetime], None]:
    """Every item in ``[lo, hi]`` a page at a time, with the checkpoint to resume after that page and when
    the page was asked for. The next page of a window is asked for while this one is mapped and written."""
    pending = [[int(a), int(b)] for a, b in (checkpoint or {}).get("pending") or [[lo, hi]]]
    token = (checkpoint or {}).get("page_token") or None
    ahead: asyncio.Task[tuple[Page | TikTokApiError, datetime]] | None = None
    try:
        while pending:
            low, high = pending[-1]
            answer, asked = await (ahead if ahead is not None else _asked(search, low, high, token))
            ahead = None
            items: list[dict[str, Any]]
            if isinstance(answer, TikTokApiError):
                items, following, too_many = [], None, True     # the window grew past the cap while we paged it
            else:
                items, total, following = answer
                too_many = total > cap and token is None
            if too_many:
                if high <= low:
                    raise PermanentError(f"more than {cap} results share the second {low}: TikTok cannot list them")
                middle = (low + high) // 2
                pending[-1:] = [[middle + 1, high], [low, middle]]
                token = None
                continue
            token = following
            if token is None:
                pending.pop()
            else:
                ahead = asyncio.create_task(_asked(search, low, high, token))
            yield items, {"pending": [list(w) for w in pending], "page_token": token}, asked
    finally:
        if ahead is not None:
            ahead.cancel()
            with contextlib.suppress(BaseException):
                await ahead


class _Run:
    def __init__(self, ctx: SyncContext, client: TikTokClient, page_size: int, cap: int, overlap: timedelta,
                 batch_rows: int) -> None:
        self.ctx, self.client, self.page_size, self.cap = ctx, client, page_size, cap
        self.overlap, self.batch_rows = overlap, batch_rows
        self.owner = Owner.of(ctx.store_id, ctx.organization_id)

    def _search(self, field: str) -> Search:
        if self.ctx.resource == "products":
            return Search(self.client, PRODUCT_SEARCH, "products", field, upper="le", page_size=self.page_size)
        return Search(self.client, ORDER_SEARCH, "orders", field, upper="lt", page_size=self.page_size, sort=True)

    async def _walk(self, field: str, lo: int, hi: int) -> AsyncIterator[Batch]:
        mapper = product_rows if self.ctx.resource == "products" else order_rows
        root = RESOURCE_TABLES[self.ctx.resource][0]
        rows = BatchRows()
        checkpoint: dict[str, Any] | None = None
        # closed when we stop early, so the page asked for ahead is cancelled at once (not when collected)
        async with contextlib.aclosing(windows(self._search(field), lo, hi, self.cap, self.ctx.checkpoint)) as pages:
            async for items, checkpoint, asked in pages:
                rows.read_at(asked)
                for item in items:
                    with rows.record(item):        # one odd record is recorded and skipped, never the run's end
                        mapped = mapper(self.owner, item)
                        rows.extend(mapped)
                        rows.saw(mapped[root][0]["source_updated_at"])
                if rows.count >= self.batch_rows:
                    yield rows.batch(checkpoint)
        if rows.count or rows.errors:
            yield rows.batch(checkpoint)

    async def _warehouses(self) -> AsyncIterator[Batch]:
        if self.ctx.resource == "products":
            asked = datetime.now(UTC)
            data = await self.client.call("GET", "/logistics/202309/warehouses")
            rows = warehouse_rows(self.owner, data.get("warehouses") or [])
            if rows["inventory_locations"]:
                yield Batch(writes=rows, observed_at=asked)

    async def full(self) -> AsyncIterator[Batch]:
        async for batch in self._warehouses():
            yield batch
        async for batch in self._walk("create_time", EPOCH, int(time.time()) + AHEAD):
            yield batch

    async def incremental(self) -> AsyncIterator[Batch]:
        assert self.ctx.high_watermark is not None        # the engine runs a full sync first
        since = int((self.ctx.high_watermark - self.overlap).timestamp())
        async for batch in self._warehouses():
            yield batch
        async for batch in self._walk("update_time", since, int(time.time()) + AHEAD):
            yield batch

    async def reconcile(self) -> AsyncIterator[Batch]:
        present, skus = NumericIdSet(), NumericIdSet()
        listing = windows(self._search("create_time"), EPOCH, int(time.time()) + AHEAD, self.cap, None)
        async with contextlib.aclosing(listing) as pages:
            async for items, _, _ in pages:
                for item in items:
                    if item.get("status") == "DELETED":
                        continue
                    present.add(int(tiktok_id(item.get("id"))))
                    for sku in item.get("skus") or []:
                        if isinstance(sku, dict) and str(sku.get("id", "")).isascii() and str(sku["id"]).isdigit():
                            skus.add(int(sku["id"]))
        tables = [("products", present), ("product_variants", skus)] if self.ctx.resource == "products" \
            else [("orders", present)]
        for table, ids in tables:
            async for batch in vanished(self.ctx, table, ids, self._confirm_gone):
                yield batch

    async def _confirm_gone(self, table: str, candidates: list[str]) -> list[str]:
        if table == "product_variants":
            return candidates            # listed by no live product
        gone = []
        for found in candidates:
            try:
                if table == "products":
                    await self.client.call("GET", f"/product/202309/products/{found}")
                else:
                    await self.client.call("GET", "/order/202309/orders", params={"ids": found})
            except TikTokApiError as exc:
                if exc.code in (12019150, 21008111):
                    gone.append(found)
                    continue
                raise
        return gone


def tiktok_sync_source(open_client: ClientOpener, *, page_size: int = 100, cap: int = 10_000,
                       overlap: timedelta = timedelta(minutes=5), batch_rows: int = 2000) -> SyncSource:
    async def source(ctx: SyncContext) -> AsyncIterator[Batch]:
        if ctx.resource == "customers":
            return                          # no customer API: the run completes with nothing
        if ctx.resource not in RESOURCE_TABLES:
            raise PermanentError(f"TikTok Shop has no resource {ctx.resource!r}")
        async with open_client(ctx) as client:
            run = _Run(ctx, client, page_size, cap, overlap, batch_rows)
            mode = {"full": run.full, "incremental": run.incremental, "reconcile": run.reconcile}.get(ctx.mode)
            if mode is None:
                raise PermanentError(f"unknown sync mode {ctx.mode!r}")
            async for batch in mode():
                yield batch

    return source
