"""The WooCommerce ``SyncSource``: one store + resource → canonical ``Batch``es for ``worker.sync.engine``.

- **full** — every page of ``/products``, ``/customers`` or ``/orders`` in id order (new rows land on the
  last page; if rows are deleted meanwhile the client steps back, so nothing is skipped). Variations: on
  WooCommerce 10.3+ a second pass over the store-wide ``/variations`` (which names each one's
  ``parent_id``); before that, ``/products/{id}/variations`` per variable product. Checkpoint
  ``{"phase", "page"}`` after every batch (pages are written together, about 2,000 rows at a time).
- **incremental** — products, variations (10.3+) and orders with ``modified_after`` (GMT, exclusive) =
  watermark − overlap. Before 10.3 a variation's change does not move its product's ``date_modified``:
  those arrive by webhook (``product.updated`` with the variation) or the next full sync. WooCommerce's
  customers endpoint has no date filter: every page is read and only customers modified since then are
  written. Checkpoint ``{"since", "phase", "page"}``.
- **reconcile** — every id (``_fields=id``) compared with the stored ids; missing ones are re-asked with
  ``include=`` before they are soft-deleted (a trashed product counts as gone).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

from worker.connectors.canonical import Owner
from worker.connectors.woocommerce.client import Page, WooClient
from worker.connectors.woocommerce.mapping import (
    RESOURCE_TABLES,
    customer_rows,
    gmt,
    order_rows,
    product_rows,
    variation_rows,
)
from worker.errors import PermanentError
from worker.sync.batch import Batch, BatchRows
from worker.sync.engine import SyncContext, SyncSource
from worker.sync.reconcile import NumericIdSet, vanished

__all__ = ["ClientOpener", "woo_sync_source"]

ClientOpener = Callable[[SyncContext], AbstractAsyncContextManager[WooClient]]

_PATHS = {"products": "/products", "customers": "/customers", "orders": "/orders"}
_FILTERABLE = frozenset({"products", "orders"})       # have modified_after
_GONE_STATUSES = frozenset({"trash"})


def _merged(first: Batch, second: Batch) -> Batch:
    """Two consecutive batches as one: rows and errors appended, the later checkpoint, the newer watermark,
    the earlier read."""
    writes = {t: list(r) for t, r in first.writes.items()}
    for table, rows in second.writes.items():
        writes.setdefault(table, []).extend(rows)
    marks = [m for m in (first.high_watermark, second.high_watermark) if m is not None]
    reads = [r for r in (first.observed_at, second.observed_at) if r is not None]
    return Batch(writes=writes, checkpoint=second.checkpoint, high_watermark=max(marks) if marks else None,
                 errors=(*first.errors, *second.errors), observed_at=min(reads) if reads else None)


class _Run:
    def __init__(self, ctx: SyncContext, client: WooClient, per_page: int, overlap: timedelta,
                 batch_rows: int) -> None:
        self.ctx = ctx
        self.client = client
        self.per_page = per_page
        self.overlap = overlap
        self.batch_rows = batch_rows
        self.owner = Owner.of(ctx.store_id, ctx.organization_id)
        self.path = _PATHS[ctx.resource]

    async def _variations(self, product_id: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        async for page in self.client.pages(f"/products/{int(product_id)}/variations", {"orderby": "id",
                                            "order": "asc"}, per_page=100):
            found.extend(page.items)
        return found

    async def _store_wide_variations(self) -> bool:
        """WooCommerce 10.3+ lists every variation at ``/variations``; older stores answer 404 there."""
        cp = self.ctx.checkpoint or {}
        if isinstance(cp.get("store_wide"), bool):
            return bool(cp["store_wide"])
        response = await self.client.request("GET", "/variations", params={"per_page": 1}, expect=(400, 404))
        return response.status_code == 200

    async def _batch(self, page: Page, checkpoint: Mapping[str, Any], since: Any = None,
                     per_product: bool = True) -> Batch:
        rows = BatchRows()
        rows.read_at(page.requested_at)
        variations: dict[int, list[dict[str, Any]]] = {}
        if self.ctx.resource == "products" and per_product:
            variable = [p for p in page.items if p.get("type") == "variable" and p.get("variations")]
            # the client's gate bounds how many of these run at once (one by default)
            fetched = await asyncio.gather(*(self._variations(p["id"]) for p in variable))
            variations = {id(p): v for p, v in zip(variable, fetched, strict=True)}
        for item in page.items:
            with rows.record(item):
                if self.ctx.resource == "products":
                    mapped = product_rows(self.owner, item, variations.get(id(item)))
                    if not per_product and item.get("type") == "variable":
                        mapped = {"products": mapped["products"]}     # its variants come from /variations
                elif self.ctx.resource == "customers":
                    mapped = customer_rows(self.owner, item)
                else:
                    mapped = order_rows(self.owner, item)
                updated = mapped[RESOURCE_TABLES[self.ctx.resource][0]][0]["source_updated_at"]
                if since is not None and (updated is None or updated < since):
                    continue              # customers: unchanged since the last run (no server-side filter)
                rows.saw(updated)
                rows.extend(mapped)
        return rows.batch(checkpoint)

    def _variation_batch(self, page: Page, checkpoint: Mapping[str, Any]) -> Batch:
        rows = BatchRows()
        rows.read_at(page.requested_at)
        for variation in page.items:
            with rows.record(variation):
                rows.extend(variation_rows(self.owner, variation))
        return rows.batch(checkpoint)

    async def _walk(self, params: dict[str, Any], extra: dict[str, Any],
                    local_filter: Any = None) -> AsyncIterator[Batch]:
        """The resource's pages, then (products on 10.3+) the store-wide variations, from the checkpoint on,
        as batches of about ``batch_rows`` rows (several pages: fewer, larger writes)."""
        pending: Batch | None = None
        async for batch in self._pages(params, extra, local_filter):
            pending = batch if pending is None else _merged(pending, batch)
            if sum(len(r) for r in pending.writes.values()) >= self.batch_rows:
                yield pending
                pending = None
        if pending is not None:
            yield pending

    async def _pages(self, params: dict[str, Any], extra: dict[str, Any],
                     local_filter: Any = None) -> AsyncIterator[Batch]:
        cp = self.ctx.checkpoint or {}
        phase = cp.get("phase", "main")
        start = int(cp.get("page") or 0) + 1
        store_wide = self.ctx.resource == "products" and await self._store_wide_variations()
        mark = {**extra, "store_wide": store_wide}
        if phase == "main":
            async for page in self.client.pages(self.path, params, per_page=self.per_page, start=start):
                yield await self._batch(page, {**mark, "phase": "main", "page": page.number}, local_filter,
                                        per_product=not store_wide)
            start = 1
        if store_wide:
            async for page in self.client.pages("/variations", params, per_page=self.per_page, start=start):
                yield self._variation_batch(page, {**mark, "phase": "variations", "page": page.number})

    async def full(self) -> AsyncIterator[Batch]:
        async for batch in self._walk({"orderby": "id", "order": "asc"}, {}):
            yield batch

    async def incremental(self) -> AsyncIterator[Batch]:
        cp = self.ctx.checkpoint or {}
        if isinstance(cp.get("since"), str):
            since = gmt(cp["since"])
        else:
            assert self.ctx.high_watermark is not None      # the engine runs a full sync first
            since = self.ctx.high_watermark - self.overlap
        assert since is not None
        since_text = since.strftime("%Y-%m-%dT%H:%M:%S")
        params: dict[str, Any] = {"orderby": "id", "order": "asc"}
        local_filter = None
        if self.ctx.resource in _FILTERABLE:
            # exclusive bound; one second earlier so rows modified in the watermark's own second are re-read
            params.update(modified_after=(since - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                          dates_are_gmt="true")
        else:
            local_filter = since.replace(microsecond=0)
        async for batch in self._walk(params, {"since": since_text}, local_filter):
            yield batch

    async def reconcile(self) -> AsyncIterator[Batch]:
        present = NumericIdSet()
        variants = NumericIdSet()       # products: a list page names each product's variation ids
        fields = "id,type,variations" if self.ctx.resource == "products" else "id"
        async for page in self.client.pages(self.path, {"orderby": "id", "order": "asc", "_fields": fields},
                                            per_page=100):
            for item in page.items:
                if not str(item.get("id", "")).isdigit():
                    continue
                present.add(int(item["id"]))
                if self.ctx.resource == "products":
                    if item.get("type") == "variable":
                        for vid in item.get("variations") or []:
                            variants.add(int(vid))
                    else:
                        variants.add(int(item["id"]))       # a simple product is its own variant
        async for batch in vanished(self.ctx, self.ctx.resource, present, self._confirm_gone):
            yield batch
        if self.ctx.resource == "products":
            async for batch in vanished(self.ctx, "product_variants", variants, self._confirm_gone):
                yield batch

    async def _confirm_gone(self, table: str, candidates: list[str]) -> list[str]:
        if table == "product_variants":
            return candidates      # named by no live product's variation list (there is no bulk lookup)
        gone = [c for c in candidates if not c.isdigit()]
        numeric = [c for c in candidates if c.isdigit()]
        for start in range(0, len(numeric), 100):
            chunk = numeric[start:start + 100]
            items = await self.client.get(self.path, {"include": ",".join(chunk), "per_page": 100,
                                                      "_fields": "id,status"})
            alive = {str(i.get("id")) for i in items if isinstance(i, dict) and i.get("status") not in _GONE_STATUSES}
            gone.extend(c for c in chunk if c not in alive)
        return gone


def woo_sync_source(open_client: ClientOpener, *, per_page: int = 100, overlap: timedelta = timedelta(minutes=5),
                    batch_rows: int = 2000) -> SyncSource:
    async def source(ctx: SyncContext) -> AsyncIterator[Batch]:
        if ctx.resource not in RESOURCE_TABLES:
            raise PermanentError(f"WooCommerce has no resource {ctx.resource!r}")
        async with open_client(ctx) as client:
            run = _Run(ctx, client, per_page, overlap, batch_rows)
            mode = {"full": run.full, "incremental": run.incremental, "reconcile": run.reconcile}.get(ctx.mode)
            if mode is None:
                raise PermanentError(f"unknown sync mode {ctx.mode!r}")
            async for batch in mode():
                yield batch

    return source
