"""The Shopify ``SyncSource``: one store + resource → canonical ``Batch``es for ``worker.sync.engine``.

Modes (``SyncContext.mode``):

- **full** — one bulk operation per resource, its JSONL streamed in batches of about ``batch_rows`` rows. On
  a store's first full sync the first job also starts the other resources' operations (API 2026-01+ runs
  five at once), so Shopify builds them in parallel; each resource's job resumes its operation.
  Checkpoint ``{"bulk_operation_id", "lines_done"}`` (saved once right after the operation starts, then
  after every batch): a killed sync re-opens the same operation's result and skips the lines already
  written; a FAILED / CANCELED / EXPIRED operation or a vanished result file starts a new one. Products
  also write every location (a small paginated query). The high-water mark is the newest ``updatedAt``
  seen, never later than the operation's ``createdAt`` (the export is a snapshot taken from then on).
- **incremental** — ``updatedAt``-sorted pages filtered by ``updated_at:>='<watermark − overlap>'``
  (quoted, ``>=``: from API 2026-10 ``>`` drops the whole second). Nested children that do not fit in
  the page are paged further. Checkpoint ``{"since", "after"}``.
- **reconcile** — id-only pages of everything the shop has, compared with ``list_synced_ids`` pages;
  ids missing at the source are confirmed gone with ``nodes(ids:)`` before they are soft-deleted.
"""
# long module: one _Run drives the three modes (bulk full, incremental, reconcile) over shared paging and row plumbing

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from worker.connectors.canonical import Owner
from worker.connectors.shopify import queries as q
from worker.connectors.shopify.bulk import (
    FAILED_STATES,
    TERMINAL,
    BulkOperation,
    BulkRunner,
    ParentFacts,
    ResultGone,
    gid_kind,
)
from worker.connectors.shopify.graphql import ShopifyGraphQL
from worker.connectors.shopify.mapping import (
    RESOURCE_TABLES,
    bulk_raw,
    customer_row,
    fulfillment_row,
    legacy_id,
    level_row,
    line_item_row,
    location_row,
    order_row,
    parse_time,
    product_row,
    variant_row,
)
from worker.errors import PermanentError, RetryableError
from worker.rpc import syncs
from worker.sync.batch import Batch, BatchRows
from worker.sync.engine import SyncContext, SyncSource
from worker.sync.reconcile import NumericIdSet, vanished

__all__ = ["ClientOpener", "shopify_sync_source"]

log = logging.getLogger("shopsync.shopify.sync")

ClientOpener = Callable[[SyncContext], AbstractAsyncContextManager[ShopifyGraphQL]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_BULK_QUERIES = {"products": q.BULK_PRODUCTS, "customers": q.BULK_CUSTOMERS, "orders": q.BULK_ORDERS}
_CONCURRENT_BULK_SINCE = "2026-01"        # API versions sort as strings (YYYY-MM)
_GID_KINDS = {"products": "Product", "product_variants": "ProductVariant", "customers": "Customer",
              "orders": "Order"}


def _iso_second(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _connection(value: Any) -> tuple[list[dict[str, Any]], bool, str | None]:
    """(nodes, has next page, end cursor) of a ``{ nodes pageInfo }`` selection."""
    if not isinstance(value, Mapping):
        return [], False, None
    nodes = [n for n in value.get("nodes") or [] if isinstance(n, dict)]
    page = value.get("pageInfo") or {}
    return nodes, bool(page.get("hasNextPage")), page.get("endCursor")


def _dig(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


@dataclass(frozen=True)
class _Options:
    overlap: timedelta
    bulk_poll_interval: float
    batch_rows: int
    bulk_timeout: float
    download_timeout: float
    max_bulk_attempts: int
    reconcile_page: int
    start_other_exports: bool


class _Run:
    def __init__(self, ctx: SyncContext, client: ShopifyGraphQL, opts: _Options) -> None:
        self.ctx = ctx
        self.client = client
        self.opts = opts
        self.owner = Owner.of(ctx.store_id, ctx.organization_id)
        self.resource = ctx.resource

    # --- shared ----------------------------------------------------------------------------------------

    async def _more(self, document: str, path: str, variables: dict[str, Any], size: int,
                    after: str | None) -> AsyncIterator[dict[str, Any]]:
        """Nodes of a nested connection from ``after`` on (its first page came with the parent)."""
        while True:
            data = await self.client.query(document, {**variables, "first": size, "after": after})
            nodes, has_next, cursor = _connection(_dig(data, path))
            for node in nodes:
                yield node
            if not has_next:
                return
            if not cursor or cursor == after:
                raise PermanentError(f"Shopify {self.client.shop}: {path} has a next page but no new cursor")
            after = cursor

    async def _locations(self, rows: BatchRows, first: Any = None) -> None:
        """Every location into ``rows``; ``first`` is a page that came with another query."""
        after: str | None = None
        if first is not None:
            nodes, has_next, after = _connection(first)
            for node in nodes:
                with rows.record(node):
                    rows.add("inventory_locations", location_row(self.owner, node))
            if not has_next:
                return
        rows.read_at(datetime.now(UTC))
        async for node in self._more(q.LOCATIONS_PAGE, "locations", {}, q.LOCATIONS_PAGE_SIZE, after):
            with rows.record(node):
                rows.add("inventory_locations", location_row(self.owner, node))

    # --- full: bulk operations -----------------------------------------------------------------------

    async def full(self) -> AsyncIterator[Batch]:
        cp = self.ctx.checkpoint or {}
        op_id = cp.get("bulk_operation_id") if isinstance(cp.get("bulk_operation_id"), str) else None
        skip = int(cp.get("lines_done") or 0) if op_id else 0
        if self.resource == "products":
            rows = BatchRows()
            await self._locations(rows)
            if rows.count:
                yield rows.batch(None)
        query = _BULK_QUERIES[self.resource]
        timeout = httpx.Timeout(self.opts.download_timeout, connect=30.0)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as http:
            runner = BulkRunner(self.client, http, poll_interval=self.opts.bulk_poll_interval,
                                timeout=self.opts.bulk_timeout)
            op: BulkOperation | None = await runner.get(op_id) if op_id else None
            started = 0
            while True:
                if op is None or op.status in FAILED_STATES:
                    if op is not None:
                        log.warning("shopify %s: bulk operation %s ended %s (%s); starting a new one",
                                    self.client.shop, op.id, op.status, op.error_code or "no error code")
                    started += 1
                    if started > self.opts.max_bulk_attempts:
                        raise RetryableError(f"Shopify {self.client.shop}: {self.opts.max_bulk_attempts} bulk "
                                             f"operations for {self.resource} did not complete")
                    op, skip = await runner.start(query), 0
                    # saved at once: a sync killed while Shopify exports picks up the same operation
                    yield Batch(checkpoint={"bulk_operation_id": op.id, "lines_done": 0})
                    if started == 1 and not cp and self.opts.start_other_exports:
                        await self._start_other_exports(runner)
                if op.status not in TERMINAL:
                    op = await runner.wait(op.id)
                if op.status != "COMPLETED":
                    continue
                if op.url is None:          # nothing to export (an empty shop)
                    return
                try:
                    async for batch in self._consume(runner, op, skip):
                        yield batch
                except ResultGone as exc:
                    log.warning("shopify %s: result of bulk operation %s is gone (%s); starting a new one",
                                self.client.shop, op.id, exc)
                    op = None
                    continue
                return

    async def _start_other_exports(self, runner: BulkRunner) -> None:
        """A store's first full sync: start the other resources' exports now, so Shopify builds them while
        this one streams (API 2026-01+ runs up to five bulk queries per app and shop at once). Each is left
        as that resource's checkpoint; its own (queued) full sync picks it up instead of starting one."""
        if self.client.api_version < _CONCURRENT_BULK_SINCE:
            return
        for other in _BULK_QUERIES:
            if other == self.resource:
                continue
            state = await syncs.get_sync_context(self.ctx.db, store_id=self.ctx.store_id, resource=other)
            if (state is None or state["policy"] != "sync" or state["last_full_sync_at"] is not None
                    or state["high_watermark"] is not None or state["checkpoint"] is not None):
                continue            # synced before, not wanted, or already under way
            try:
                op = await runner.start(_BULK_QUERIES[other])
            except (RetryableError, PermanentError) as exc:
                log.info("shopify %s: %s export not started early (%s)", self.client.shop, other, exc)
                return
            await syncs.save_sync_state(self.ctx.db, store_id=self.ctx.store_id, resource=other, high_watermark=None,
                                        checkpoint={"bulk_operation_id": op.id, "lines_done": 0, "mode": "full"},
                                        job_id=self.ctx.job.id, worker=self.ctx.job_context.worker_id)

    async def _consume(self, runner: BulkRunner, op: BulkOperation, skip: int) -> AsyncIterator[Batch]:
        assert op.url is not None
        rows = BatchRows()
        facts = ParentFacts()
        last = skip
        orphans = 0
        async for number, obj, line in runner.lines(op.url, skip):
            if number <= skip:
                if obj is not None and self.resource == "orders" and gid_kind(obj.get("id")) == "Order":
                    facts.put(int(legacy_id(obj["id"])), self._us(parse_time(obj.get("updatedAt"))))
                continue
            if obj is None:
                continue
            rows.read_at(op.created_at)        # the export reads the shop from its start on
            with rows.record(obj):
                orphans += self._bulk_line(obj, line, rows, facts)
            last = number
            if rows.count >= self.opts.batch_rows:
                yield rows.batch({"bulk_operation_id": op.id, "lines_done": number}, op.created_at)
        if orphans:
            log.warning("shopify %s: %d bulk lines came before their parent", self.client.shop, orphans)
        if rows.count:
            yield rows.batch({"bulk_operation_id": op.id, "lines_done": last}, op.created_at)

    @staticmethod
    def _us(value: datetime | None) -> int | None:
        return None if value is None else (value - _EPOCH) // _US

    def _bulk_line(self, obj: dict[str, Any], line: bytes, rows: BatchRows, facts: ParentFacts) -> int:
        """Map one JSONL line into ``rows``; returns 1 for a child whose parent was not seen."""
        kind = gid_kind(obj.get("id"))
        o = self.owner
        raw = bulk_raw(line, obj)
        if kind == "Product":
            row = product_row(o, obj, raw)
            rows.saw(row["source_updated_at"])
            rows.add("products", row)
        elif kind == "ProductVariant":
            rows.add("product_variants", variant_row(o, obj, legacy_id(obj["__parentId"]), raw))
        elif kind == "InventoryLevel":
            rows.add("inventory_levels", level_row(o, obj, raw=raw))
        elif kind == "Customer":
            row = customer_row(o, obj, raw)
            rows.saw(row["source_updated_at"])
            rows.add("customers", row)
        elif kind == "Order":
            self._order(obj, rows, with_lines=False, raw=raw)
            facts.put(int(legacy_id(obj["id"])), self._us(parse_time(obj.get("updatedAt"))))
        elif kind == "LineItem":
            parent = int(legacy_id(obj["__parentId"]))
            us = facts.get(parent)
            updated = None if us is None else _EPOCH + timedelta(microseconds=us)
            rows.add("order_line_items", line_item_row(o, obj, str(parent), updated, raw))
            return 0 if parent in facts else 1
        else:
            log.debug("shopify %s: skipping a bulk line of kind %s", self.client.shop, kind)
        return 0

    def _order(self, node: dict[str, Any], rows: BatchRows, *, with_lines: bool, raw: Any = None) -> dict[str, Any]:
        row = order_row(self.owner, node, raw)
        rows.saw(row["source_updated_at"])
        rows.add("orders", row)
        for f in node.get("fulfillments") or []:
            rows.add("order_fulfillments", fulfillment_row(self.owner, f, row["id"]))
        return row

    # --- incremental ------------------------------------------------------------------------------------

    async def incremental(self) -> AsyncIterator[Batch]:
        cp = self.ctx.checkpoint or {}
        since_text = cp.get("since") if isinstance(cp.get("since"), str) else None
        if since_text is None:
            if self.ctx.high_watermark is None:
                raise PermanentError("an incremental sync needs a high-water mark; run a full sync first")
            since_text = _iso_second(self.ctx.high_watermark - self.opts.overlap)
        after = cp.get("after") if isinstance(cp.get("after"), str) else None
        search = f"updated_at:>='{since_text}'"
        document, root, size = {
            "products": (q.PRODUCTS_PAGE, "products", q.PRODUCTS_PAGE_SIZE),
            "customers": (q.CUSTOMERS_PAGE, "customers", q.CUSTOMERS_PAGE_SIZE),
            "orders": (q.ORDERS_PAGE, "orders", q.ORDERS_PAGE_SIZE),
        }[self.resource]
        while True:
            variables: dict[str, Any] = {"first": size, "after": after, "query": search}
            if self.resource == "products":
                variables["withLocations"] = after is None     # locations come along with the first page
            rows = BatchRows()
            rows.read_at(datetime.now(UTC))
            data = await self.client.query(document, variables)
            nodes, has_next, cursor = _connection(data.get(root))
            if self.resource == "products" and data.get("locations") is not None:
                await self._locations(rows, data["locations"])
            for node in nodes:
                with rows.record(node):
                    if self.resource == "products":
                        await self._product_page_node(node, rows)
                    elif self.resource == "customers":
                        row = customer_row(self.owner, node)
                        rows.saw(row["source_updated_at"])
                        rows.add("customers", row)
                    else:
                        await self._order_page_node(node, rows)
            yield rows.batch({"since": since_text, "after": cursor or after})
            if not has_next:
                return
            if not cursor or cursor == after:
                raise PermanentError(f"Shopify {self.client.shop}: {root} has a next page but no new cursor")
            after = cursor

    async def _product_page_node(self, node: dict[str, Any], rows: BatchRows) -> None:
        row = product_row(self.owner, node)
        rows.saw(row["source_updated_at"])
        rows.add("products", row)
        variants, has_next, cursor = _connection(node.get("variants"))
        for variant in variants:
            await self._variant_node(variant, row["id"], rows)
        if has_next:
            async for variant in self._more(q.PRODUCT_VARIANTS_MORE, "product.variants", {"id": node["id"]},
                                            q.PRODUCT_VARIANTS_MORE_SIZE, cursor):
                await self._variant_node(variant, row["id"], rows)

    async def _variant_node(self, node: dict[str, Any], product_id: str, rows: BatchRows) -> None:
        row = variant_row(self.owner, node, product_id)
        rows.add("product_variants", row)
        item = node.get("inventoryItem")
        if not isinstance(item, Mapping) or row["inventory_item_id"] is None:
            return
        levels, has_next, cursor = _connection(item.get("inventoryLevels"))
        for level in levels:
            rows.add("inventory_levels", level_row(self.owner, level, row["inventory_item_id"]))
        if has_next:
            async for level in self._more(q.LEVELS_MORE, "inventoryItem.inventoryLevels", {"id": item["id"]},
                                          q.LEVELS_MORE_SIZE, cursor):
                rows.add("inventory_levels", level_row(self.owner, level, row["inventory_item_id"]))

    async def _order_page_node(self, node: dict[str, Any], rows: BatchRows) -> None:
        fulfillments, refunds = node.get("fulfillments") or [], node.get("refunds") or []
        if len(fulfillments) >= q.ORDER_FULFILLMENTS_IN_PAGE or len(refunds) >= q.ORDER_REFUNDS_IN_PAGE:
            # the page's short lists may be cut off: fetch them whole so refunds_count is right
            more = (await self.client.query(q.ORDER_LISTS_MORE, {"id": node["id"]})).get("order") or {}
            node = {**node, "fulfillments": more.get("fulfillments") or fulfillments,
                    "refunds": more.get("refunds") or refunds}
        row = self._order(node, rows, with_lines=True)
        lines, has_next, cursor = _connection(node.get("lineItems"))
        for line in lines:
            rows.add("order_line_items", line_item_row(self.owner, line, row["id"], row["source_updated_at"]))
        if has_next:
            async for line in self._more(q.ORDER_LINE_ITEMS_MORE, "order.lineItems", {"id": node["id"]},
                                         q.ORDER_LINE_ITEMS_MORE_SIZE, cursor):
                rows.add("order_line_items", line_item_row(self.owner, line, row["id"], row["source_updated_at"]))

    # --- reconcile ----------------------------------------------------------------------------------------

    async def reconcile(self) -> AsyncIterator[Batch]:
        if self.resource == "orders" and not await self._sees_all_orders():
            # without read_all_orders Shopify hides orders older than 60 days: they are not gone
            log.warning("shopify %s: no read_all_orders scope; orders are not reconciled", self.client.shop)
            return
        source = await self._source_ids()
        for table, ids in source.items():
            async for batch in vanished(self.ctx, table, ids, self._confirm_gone, self.opts.reconcile_page):
                yield batch

    async def _sees_all_orders(self) -> bool:
        data = await self.client.query("query Scopes { currentAppInstallation { accessScopes { handle } } }")
        scopes = _dig(data, "currentAppInstallation.accessScopes") or []
        handles = {s.get("handle") for s in scopes if isinstance(s, Mapping)}
        return bool(handles & {"read_all_orders", "write_all_orders"})

    async def _source_ids(self) -> dict[str, NumericIdSet]:
        if self.resource == "products":
            products, variants = NumericIdSet(), NumericIdSet()
            async for node in self._more(q.PRODUCT_IDS, "products", {}, q.PRODUCT_IDS_PAGE_SIZE, None):
                products.add(int(legacy_id(node["id"])))
                nodes, has_next, cursor = _connection(node.get("variants"))
                for v in nodes:
                    variants.add(int(legacy_id(v["id"])))
                if has_next:
                    async for v in self._more(q.VARIANT_IDS_MORE, "product.variants", {"id": node["id"]},
                                              q.ID_PAGE_SIZE, cursor):
                        variants.add(int(legacy_id(v["id"])))
            return {"products": products, "product_variants": variants}
        document = q.CUSTOMER_IDS if self.resource == "customers" else q.ORDER_IDS
        ids = NumericIdSet()
        async for node in self._more(document, self.resource, {}, q.ID_PAGE_SIZE, None):
            ids.add(int(legacy_id(node["id"])))
        return {self.resource: ids}

    async def _confirm_gone(self, table: str, candidates: list[str]) -> list[str]:
        """Of ids missing from the scan, those Shopify really no longer has (created-after-scan ids stay)."""
        gone: list[str] = []
        kind = _GID_KINDS[table]
        for start in range(0, len(candidates), q.NODES_EXIST_SIZE):
            chunk = candidates[start:start + q.NODES_EXIST_SIZE]
            numeric = [c for c in chunk if c.isdigit()]
            gone.extend(c for c in chunk if not c.isdigit())     # no such Shopify id can exist
            if not numeric:
                continue
            data = await self.client.query(q.NODES_EXIST, {"ids": [f"gid://shopify/{kind}/{c}" for c in numeric]})
            found = data.get("nodes") or []
            gone.extend(c for c, node in zip(numeric, found, strict=False) if node is None)
        return gone


def shopify_sync_source(open_client: ClientOpener, *, overlap: timedelta = timedelta(minutes=5),
                        bulk_poll_interval: float = 1.0, batch_rows: int = 5000, bulk_timeout: float = 6 * 3600.0,
                        download_timeout: float = 300.0, max_bulk_attempts: int = 3,
                        reconcile_page: int = 10_000, start_other_exports: bool = True) -> SyncSource:
    """The Shopify source for ``sync_handler``. ``open_client`` gives the store's GraphQL client."""
    if batch_rows < 1 or reconcile_page < 1 or max_bulk_attempts < 1:
        raise ValueError("batch_rows, reconcile_page and max_bulk_attempts must be positive")
    opts = _Options(overlap, bulk_poll_interval, batch_rows, bulk_timeout, download_timeout, max_bulk_attempts,
                    reconcile_page, start_other_exports)

    async def source(ctx: SyncContext) -> AsyncIterator[Batch]:
        if ctx.resource not in RESOURCE_TABLES:
            raise PermanentError(f"Shopify has no resource {ctx.resource!r}")
        if ctx.mode not in ("full", "incremental", "reconcile"):
            raise PermanentError(f"unknown sync mode {ctx.mode!r}")
        async with open_client(ctx) as client:
            run = _Run(ctx, client, opts)
            mode = run.full if ctx.mode == "full" else run.incremental if ctx.mode == "incremental" \
                else run.reconcile
            async for batch in mode():
                yield batch

    return source
