"""The ShopRenter ``SyncSource``: one store + resource → canonical ``Batch``es for ``worker.sync.engine``.

- **full** — every page (0, 1, …) of ``productExtend`` / ``customers`` / ``orderExtend`` with ``full=1`` and
  ``limit=200``; checkpoint ``{"page"}`` after each.
- **incremental** — the same with ``updatedAfter`` (products) or ``updatedAtMin`` (customers, orders) set
  to the watermark − overlap, in the shop's local time; checkpoint ``{"since", "page"}``.
- **reconcile** — every id (pages without ``full=1`` hold only links), compared with the stored ids;
  missing ones are re-fetched one by one (404 = gone) before they are soft-deleted.
Every request waits for the shop's slot in the shared rate limiter (3 requests/s per app and shop).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from worker.connectors.canonical import Owner
from worker.connectors.shoprenter.client import ShopRenterClient, SrPage
from worker.connectors.shoprenter.mapping import (
    RESOURCE_PATHS,
    RESOURCE_TABLES,
    customer_rows,
    link_id,
    order_rows,
    product_rows,
)
from worker.errors import PermanentError
from worker.sync.batch import Batch, BatchRows
from worker.sync.engine import SyncContext, SyncSource
from worker.sync.reconcile import vanished

__all__ = ["ClientOpener", "shoprenter_sync_source"]

ClientOpener = Callable[[SyncContext], AbstractAsyncContextManager[ShopRenterClient]]
_MAPPERS = {"products": product_rows, "customers": customer_rows, "orders": order_rows}
_FORMAT = "%Y-%m-%dT%H:%M:%S"


class _Run:
    def __init__(self, ctx: SyncContext, client: ShopRenterClient, limit: int, overlap: timedelta,
                 zone: ZoneInfo) -> None:
        self.ctx, self.client, self.limit, self.overlap, self.zone = ctx, client, limit, overlap, zone
        self.owner = Owner.of(ctx.store_id, ctx.organization_id)
        self.path, self.filter = RESOURCE_PATHS[ctx.resource]

    def _batch(self, page: SrPage, checkpoint: dict[str, Any]) -> Batch:
        rows = BatchRows()
        rows.read_at(page.requested_at)
        mapper = _MAPPERS[self.ctx.resource]
        root = RESOURCE_TABLES[self.ctx.resource][0]
        for item in page.items:
            with rows.record(item):
                mapped = mapper(self.owner, item, self.zone)
                for row in mapped.get(root, ()):
                    rows.saw(row["source_updated_at"])
                rows.extend(mapped)
        return rows.batch(checkpoint)

    async def _pages(self, params: dict[str, Any], extra: dict[str, Any]) -> AsyncIterator[Batch]:
        start = int((self.ctx.checkpoint or {}).get("page", -1)) + 1
        async for page in self.client.pages(self.path, params, limit=self.limit, start=start):
            yield self._batch(page, {**extra, "page": page.number})

    async def full(self) -> AsyncIterator[Batch]:
        async for batch in self._pages({}, {}):
            yield batch

    async def incremental(self) -> AsyncIterator[Batch]:
        cp = self.ctx.checkpoint or {}
        if isinstance(cp.get("since"), str):
            since = cp["since"]
        else:
            assert self.ctx.high_watermark is not None      # the engine runs a full sync first
            since = (self.ctx.high_watermark - self.overlap).astimezone(self.zone).strftime(_FORMAT)
        async for batch in self._pages({self.filter: since}, {"since": since}):
            yield batch

    async def reconcile(self) -> AsyncIterator[Batch]:
        present: set[str] = set()
        async for page in self.client.pages(self.path, {}, full=False):
            for item in page.items:
                found = item.get("id") or link_id(item)
                if found:
                    present.add(str(found))
        tables = ("products", "product_variants") if self.ctx.resource == "products" else (self.ctx.resource,)
        for table in tables:
            async for batch in vanished(self.ctx, table, present, self._confirm_gone):
                yield batch

    async def _confirm_gone(self, table: str, candidates: list[str]) -> list[str]:
        gone = []
        for outer_id in candidates:
            if await self.client.get(f"{self.path}/{outer_id}", missing_ok=True) is None:
                gone.append(outer_id)
        return gone


def shoprenter_sync_source(open_client: ClientOpener, *, limit: int = 200, overlap: timedelta = timedelta(minutes=5),
                           timezone: str = "Europe/Budapest") -> SyncSource:
    zone = ZoneInfo(timezone)

    async def source(ctx: SyncContext) -> AsyncIterator[Batch]:
        if ctx.resource not in RESOURCE_TABLES:
            raise PermanentError(f"ShopRenter has no resource {ctx.resource!r}")
        async with open_client(ctx) as client:
            run = _Run(ctx, client, limit, overlap, zone)
            mode = {"full": run.full, "incremental": run.incremental, "reconcile": run.reconcile}.get(ctx.mode)
            if mode is None:
                raise PermanentError(f"unknown sync mode {ctx.mode!r}")
            async for batch in mode():
                yield batch

    return source
