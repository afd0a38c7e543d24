"""The Shopify sync source against the real sandbox over HTTP and a real database, driven by sync_handler:
bulk full syncs, resume after a kill, failed/expired/busy bulk operations, incremental, reconcile,
staleness, and the list_synced_ids function."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from sandbox.shopify import DatasetSpec, ShopifySandbox, serve_shopify_sandbox
from sandbox.shopify.state import Shop
from tests.conftest import job_context, new_user, personal_org
from worker.connectors.shopify import queries as q
from worker.connectors.shopify.bulk import BulkRunner
from worker.connectors.shopify.graphql import ShopifyGraphQL
from worker.connectors.shopify.sync import shopify_sync_source
from worker.db.direct import DirectDatabase
from worker.errors import DatabaseError, RetryableError
from worker.jobs.registry import Job
from worker.sync.engine import Batch, SyncContext, SyncSource, sync_handler

SHOP = "sync-test.myshopify.com"
CLIENT_ID = "sync-client"


@dataclass
class Env:
    sandbox: ShopifySandbox
    shop: Shop
    token: str

    def opener(self) -> Any:
        @asynccontextmanager
        async def open_client(ctx: SyncContext) -> AsyncIterator[ShopifyGraphQL]:
            assert ctx.shop_key == SHOP

            async def provider() -> str:
                return self.token

            async with ShopifyGraphQL(SHOP, provider, api_version="2026-10",
                                      base_url=self.sandbox.shop_url(self.shop), backoff_base=0.01) as client:
                yield client
        return open_client

    def source(self, **options: Any) -> SyncSource:
        options.setdefault("bulk_poll_interval", 0.02)
        return shopify_sync_source(self.opener(), **options)

    def graphql_requests(self) -> list[Any]:
        return [r for r in self.sandbox.request_log if r.endpoint == "graphql"]


@contextmanager
def sandbox_env(spec: DatasetSpec, **options: Any) -> Iterator[Env]:
    options.setdefault("throttle", False)
    options.setdefault("bulk_run_seconds", 0.05)
    options.setdefault("bulk_created_delay", 0.01)
    sandbox = ShopifySandbox(**options)
    sandbox.add_app(CLIENT_ID, "shpss_sync")
    shop = sandbox.add_shop(SHOP, spec)
    with serve_shopify_sandbox(sandbox):
        yield Env(sandbox, shop, sandbox.issue_token(shop, CLIENT_ID)["access_token"])


@pytest.fixture
def store_id(conn: psycopg.Connection[Any]) -> str:
    org = personal_org(conn, new_user(conn))
    return str(conn.execute("select shopsync.upsert_store(%s, 'shopify', %s) as id", (org, SHOP)).fetchone()["id"])


async def claim(db: DirectDatabase, store_id: str, resource: str, mode: str) -> Job:
    await db.rpc("request_sync", {"p_store_id": store_id, "p_resources": [resource], "p_mode": mode})
    rows = await db.rpc("claim_jobs", {"p_worker": "t", "p_limit": 1, "p_kinds": ["shopify.sync"]})
    return Job.from_row(rows[0])


async def run(db: DirectDatabase, dsn: str, store_id: str, resource: str, mode: str,
              source: SyncSource) -> dict[str, Any]:
    job = await claim(db, store_id, resource, mode)
    result = dict(await sync_handler(source)(job, job_context(db, dsn)))
    await db.rpc("complete_jobs", {"p_worker": "t", "p_ids": [job.id], "p_results": [result]})
    return result


def count(conn: psycopg.Connection[Any], table: str, where: str = "true") -> int:
    return int(conn.execute(f"select count(*) as n from shopsync.{table} where {where}").fetchone()["n"])


def expected(shop: Shop) -> dict[str, int]:
    orders = [shop.order(o) for o in shop.order_ids()]
    spec = shop.catalog.spec
    return {"products": len(shop.product_ids()), "product_variants": len(shop.variant_ids()),
            "inventory_levels": len(shop.variant_ids()) * spec.locations, "inventory_locations": spec.locations,
            "customers": len(shop.customer_ids()), "orders": len(orders),
            "order_line_items": sum(len(o["line_items"]) for o in orders),
            "order_fulfillments": sum(len(o["fulfillments"]) for o in orders)}


SPEC = DatasetSpec(products=70, variants_per_product=3, customers=30, orders=60, line_items_per_order=4,
                   locations=2)


# --- full sync ------------------------------------------------------------------------------------------

async def test_full_sync_writes_the_whole_dataset_in_batches(db: DirectDatabase, dsn: str,
                                                             conn: psycopg.Connection[Any], store_id: str) -> None:
    with sandbox_env(SPEC, bulk_interleave=0.8) as env:
        source = env.source(batch_rows=40)
        for resource in ("products", "customers", "orders"):
            result = await run(db, dsn, store_id, resource, "full", source)
            assert result["mode"] == "full" and result["skipped"] == 0
        want = expected(env.shop)
        assert env.sandbox.counters["bulk_operations"] == 3
    for table, n in want.items():
        assert count(conn, table) == n, table
    assert count(conn, "order_line_items", "source_updated_at is null") == 0
    # line items carry their order's version; ids are legacy numbers; money is numeric
    mismatched = conn.execute("select count(*) as n from shopsync.order_line_items li join shopsync.orders o "
                              "on o.store_id = li.store_id and o.id = li.order_id "
                              "where li.source_updated_at <> o.source_updated_at").fetchone()["n"]
    assert mismatched == 0
    assert count(conn, "products", "id !~ '^[0-9]+$'") == 0 and count(conn, "orders", "total_price > 0") == 60
    assert count(conn, "orders", "refunds_count > 0 and total_refunded > 0") > 0
    runs = conn.execute("select status, created_count from shopsync.sync_runs order by id").fetchall()
    assert [r["status"] for r in runs] == ["succeeded"] * 3 and runs[0]["created_count"] == \
        want["products"] + want["product_variants"] + want["inventory_levels"] + want["inventory_locations"]
    states = {r["resource"]: r for r in conn.execute("select * from shopsync.sync_state")}
    newest = conn.execute("select max(source_updated_at) as t from shopsync.products").fetchone()["t"]
    assert states["products"]["high_watermark"] == newest and states["products"]["checkpoint"] is None


class Killed(Exception):
    pass


def killed_after(source: SyncSource, batches: int) -> SyncSource:
    """Stops the sync (as a crash would) once ``batches`` batches with rows went through the engine."""
    async def wrapped(ctx: SyncContext) -> AsyncIterator[Batch]:
        inner = source(ctx)
        seen = 0
        try:
            async for batch in inner:
                yield batch
                seen += bool(batch.writes)
                if seen == batches:
                    raise Killed("worker killed")
        finally:
            await inner.aclose()    # type: ignore[attr-defined]
    return wrapped


async def test_a_killed_full_sync_resumes_the_same_operation(db: DirectDatabase, dsn: str,
                                                             conn: psycopg.Connection[Any], store_id: str) -> None:
    with sandbox_env(SPEC, bulk_interleave=0.9) as env:
        # one resource's operation lifecycle: no other exports started early (tested separately)
        source = env.source(batch_rows=50, start_other_exports=False)
        job = await claim(db, store_id, "orders", "full")
        with pytest.raises(Killed):
            await sync_handler(killed_after(source, 3))(job, job_context(db, dsn))
        state = conn.execute("select checkpoint from shopsync.sync_state").fetchone()["checkpoint"]
        assert state["mode"] == "full" and state["lines_done"] > 0 and state["bulk_operation_id"]
        written = count(conn, "orders") + count(conn, "order_line_items") + count(conn, "order_fulfillments")
        assert 0 < written < sum(v for k, v in expected(env.shop).items() if k.startswith("order"))
        again = await sync_handler(source)(job, job_context(db, dsn))
        assert env.sandbox.counters["bulk_operations"] == 1          # the same operation, re-read
        want = expected(env.shop)
    for table in ("orders", "order_line_items", "order_fulfillments"):
        assert count(conn, table) == want[table], table
    assert again["inserted"] == sum(want[t] for t in ("orders", "order_line_items", "order_fulfillments")) - written
    # children of parents in the skipped part still got their order's version
    assert count(conn, "order_line_items", "source_updated_at is null") == 0


async def test_a_first_full_sync_starts_every_export_at_once(db: DirectDatabase, dsn: str,
                                                             conn: psycopg.Connection[Any], store_id: str) -> None:
    with sandbox_env(SPEC, bulk_run_seconds=0.3) as env:
        await run(db, dsn, store_id, "products", "full", env.source())
        # the customers and orders exports were started by the products sync and left as their checkpoints
        ops = sorted(env.sandbox.bulk.ops.values(), key=lambda o: o.id)
        assert len(ops) == 3
        started = {r["resource"]: r["checkpoint"] for r in conn.execute(
            "select resource, checkpoint from shopsync.sync_state where resource <> 'products'")}
        assert {r: c["bulk_operation_id"] for r, c in started.items()} == {"customers": ops[1].gid,
                                                                           "orders": ops[2].gid}
        for resource in ("customers", "orders"):
            await run(db, dsn, store_id, resource, "full", env.source())
        assert env.sandbox.counters["bulk_operations"] == 3          # picked up, not started again
        want = expected(env.shop)
        # a second full sync of an already synced store starts only its own export
        await run(db, dsn, store_id, "customers", "full", env.source())
        assert env.sandbox.counters["bulk_operations"] == 4
    for table, n in want.items():
        assert count(conn, table) == n, table


async def test_failed_and_expired_bulk_operations_are_replaced(db: DirectDatabase, dsn: str,
                                                               conn: psycopg.Connection[Any], store_id: str) -> None:
    with sandbox_env(SPEC) as env:
        env.sandbox.bulk.fail_next("FAILED", "INTERNAL_SERVER_ERROR")
        await run(db, dsn, store_id, "customers", "full", env.source(start_other_exports=False))
        assert env.sandbox.counters["bulk_operations"] == 2
        assert count(conn, "customers") == len(env.shop.customer_ids())
        # a checkpoint left on an operation whose result has since expired
        op = max(env.sandbox.bulk.ops.values(), key=lambda o: o.id)
        env.sandbox.bulk.expire(op.id)
        await db.rpc("save_sync_state", {"p_store_id": store_id, "p_resource": "customers",
                                         "p_checkpoint": {"bulk_operation_id": op.gid, "lines_done": 5,
                                                          "mode": "full"}})
        env.shop.update_customer(env.shop.customer_ids()[0], first_name="Renamed")
        await run(db, dsn, store_id, "customers", "full", env.source(start_other_exports=False))
        assert env.sandbox.counters["bulk_operations"] == 3
    assert conn.execute("select first_name from shopsync.customers where first_name = 'Renamed'").fetchone()


async def test_a_running_operation_is_adopted_or_waited_for(db: DirectDatabase, dsn: str,
                                                            conn: psycopg.Connection[Any], store_id: str) -> None:
    # the operations run long enough to be running still when the sync looks, on a loaded machine too
    with sandbox_env(SPEC, bulk_concurrency=1, bulk_run_seconds=3.0) as env:
        ours = env.sandbox.bulk.create(env.shop, CLIENT_ID, env.sandbox.apps[CLIENT_ID].scopes, q.BULK_CUSTOMERS,
                                       False, "2026-10")[0]
        assert ours is not None
        await run(db, dsn, store_id, "customers", "full", env.source())
        assert env.sandbox.counters["bulk_operations"] == 1          # adopted, not a second export
        assert count(conn, "customers") == len(env.shop.customer_ids())
        other = env.sandbox.bulk.create(env.shop, CLIENT_ID, env.sandbox.apps[CLIENT_ID].scopes,
                                        "{ customers { edges { node { id } } } }", False, "2026-10")[0]
        assert other is not None
        with pytest.raises(RetryableError, match="another bulk operation is running") as info:
            await run(db, dsn, store_id, "customers", "full", env.source())
        assert info.value.retry_in is not None and info.value.retry_in > 0


# --- incremental -------------------------------------------------------------------------------------------

async def set_watermark(db: DirectDatabase, store_id: str, resource: str, at: datetime) -> None:
    await db.rpc("save_sync_state", {"p_store_id": store_id, "p_resource": resource, "p_high_watermark": at,
                                     "p_full_sync_done": True})


async def test_incremental_picks_up_only_changed_objects(db: DirectDatabase, dsn: str,
                                                         conn: psycopg.Connection[Any], store_id: str) -> None:
    anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    spec = DatasetSpec(products=40, variants_per_product=6, customers=20, orders=30, line_items_per_order=9,
                       locations=4, anchor=anchor)
    with sandbox_env(spec) as env:
        source = env.source(overlap=timedelta(0))
        for resource in ("products", "customers", "orders"):
            await run(db, dsn, store_id, resource, "full", source)
        base = {t: count(conn, t) for t in expected(env.shop)}
        # the watermark sits inside one second; changes at its start must still be found (">=", quoted)
        mark = datetime.now(UTC).replace(microsecond=600_000) + timedelta(seconds=1)
        for resource in ("products", "customers", "orders"):
            await set_watermark(db, store_id, resource, mark)
        same_second = int(mark.replace(microsecond=100_000).timestamp() * 1_000_000)
        pids = env.shop.product_ids()[:3]
        env.shop.update_product(pids[0], title="Changed 0", at_us=same_second)
        env.shop.update_product(pids[1], title="Changed 1", at_us=same_second + 5_000_000)
        env.shop.update_variant(env.shop.catalog.variant(2, 0)["id"], price="123.45", at_us=same_second + 6_000_000)
        env.shop.set_inventory(env.shop.variant_ids()[0], env.shop.location_ids()[3], 42)   # no product change
        env.shop.update_customer(env.shop.customer_ids()[4], first_name="Newname", at_us=same_second + 7_000_000)
        oid = max(env.shop.order_ids(), key=lambda o: len(env.shop.order(o)["line_items"]))
        env.shop.update_order(oid, tags=["changed"], at_us=same_second + 8_000_000)
        before = datetime.now(UTC)
        requests_before = len(env.graphql_requests())
        await run(db, dsn, store_id, "products", "incremental", source)
        product_requests = env.graphql_requests()[requests_before:]
        await run(db, dsn, store_id, "customers", "incremental", source)
        await run(db, dsn, store_id, "orders", "incremental", source)
        costs = [r.detail.get("requested", 0) for r in env.graphql_requests()]
    assert {t: count(conn, t) for t in base} == base                 # nothing new, nothing duplicated
    touched = {r["id"] for r in conn.execute("select id from shopsync.products where synced_at >= %s", (before,))}
    assert touched == {str(p) for p in pids}                          # the variant change bumped product 2
    assert conn.execute("select title from shopsync.products where id = %s", (str(pids[0]),)).fetchone()["title"] \
        == "Changed 0"
    assert count(conn, "product_variants", "price = 123.45") == 1
    # 6 variants (4 per page) and 4 locations (3 per page) were paged further
    assert count(conn, "product_variants", f"synced_at >= '{before.isoformat()}'") == 6 * 3
    assert count(conn, "inventory_levels", f"synced_at >= '{before.isoformat()}'") == 6 * 3 * 4
    assert {r.detail.get("operation") for r in product_requests} >= {"ProductsPage", "VariantsMore", "LevelsMore"}
    assert [r["id"] for r in conn.execute("select id from shopsync.customers where synced_at >= %s", (before,))] == \
        [str(env.shop.customer_ids()[4])]
    assert [r["id"] for r in conn.execute("select id from shopsync.orders where synced_at >= %s", (before,))] == \
        [str(oid)]
    lines = count(conn, "order_line_items", f"order_id = '{oid}' and synced_at >= '{before.isoformat()}'")
    assert lines == len(env.shop.order(oid)["line_items"]) > 5       # more lines than one page holds
    assert max(costs) < 1000
    states = {r["resource"]: r["high_watermark"] for r in conn.execute("select * from shopsync.sync_state")}
    assert states["orders"] == datetime.fromtimestamp((same_second + 8_000_000) // 1_000_000, UTC)


async def test_incremental_on_a_100k_product_shop_makes_at_most_three_requests(
        db: DirectDatabase, dsn: str, conn: psycopg.Connection[Any], store_id: str) -> None:
    anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with sandbox_env(DatasetSpec(products=100_000, customers=1, orders=1, anchor=anchor), throttle=True) as env:
        await set_watermark(db, store_id, "products", datetime.now(UTC))
        changed = env.shop.product_ids()[5000:5010]
        for pid in changed:
            env.shop.update_product(pid, title=f"New {pid}")
        requests_before = len(env.graphql_requests())
        result = await run(db, dsn, store_id, "products", "incremental", env.source())
        made = env.graphql_requests()[requests_before:]
    assert result["mode"] == "incremental" and len(made) <= 3
    assert {r["id"] for r in conn.execute("select id from shopsync.products")} == {str(p) for p in changed}
    assert count(conn, "product_variants") == 30 and count(conn, "inventory_locations") == 2
    assert all(r.status == 200 and "throttled" not in r.detail for r in made)


# --- reconcile ---------------------------------------------------------------------------------------------

async def test_reconcile_soft_deletes_what_vanished(db: DirectDatabase, dsn: str, conn: psycopg.Connection[Any],
                                                    store_id: str) -> None:
    with sandbox_env(SPEC) as env:
        source = env.source()
        for resource in ("products", "customers", "orders"):
            await run(db, dsn, store_id, resource, "full", source)
        shop = env.shop
        gone_product, shrunk = shop.product_ids()[10], shop.product_ids()[11]
        gone_variant = shop.catalog.variant(11, 2)["id"]                  # its 3rd variant goes
        shop.delete_product(gone_product)
        shop.update_product(shrunk, variant_count=2)
        gone_customer, gone_order = shop.customer_ids()[3], shop.order_ids()[7]
        shop.delete_customer(gone_customer)
        shop.delete_order(gone_order)
        conn.execute("insert into shopsync.customers (store_id, id, organization_id) "
                     "select id, '424242', organization_id from shopsync.stores")
        results = {r: await run(db, dsn, store_id, r, "reconcile", env.source(reconcile_page=25))
                   for r in ("products", "customers", "orders")}
    deleted = {t: {r["id"] for r in conn.execute(f"select id from shopsync.{t} where deleted_at is not null")}
               for t in ("products", "product_variants", "customers", "orders")}
    variants_of_gone = {r["id"] for r in conn.execute(
        "select id from shopsync.product_variants where product_id = %s", (str(gone_product),))}
    assert deleted["products"] == {str(gone_product)}
    assert deleted["product_variants"] == variants_of_gone | {str(gone_variant)}
    assert deleted["customers"] == {str(gone_customer), "424242"}
    assert deleted["orders"] == {str(gone_order)}
    assert results["products"]["deleted"] == 1 + 3 + 1 and results["orders"]["mode"] == "reconcile"
    assert conn.execute("select last_reconciled_at from shopsync.sync_state where resource = 'orders'"
                        ).fetchone()["last_reconciled_at"] is not None


# --- staleness ---------------------------------------------------------------------------------------------

async def test_an_older_version_does_not_overwrite_a_newer_row(db: DirectDatabase, dsn: str,
                                                               conn: psycopg.Connection[Any], store_id: str) -> None:
    with sandbox_env(SPEC) as env:
        cid = env.shop.customer_ids()[2]
        org = conn.execute("select organization_id from shopsync.stores").fetchone()["organization_id"]
        newer = datetime.now(UTC) + timedelta(days=1)    # e.g. a webhook applied a later version first
        conn.execute("insert into shopsync.customers (store_id, id, organization_id, email, source_updated_at) "
                     "values (%s, %s, %s, 'newer@example.com', %s)", (store_id, str(cid), org, newer))
        result = await run(db, dsn, store_id, "customers", "full", env.source())
        customers = len(env.shop.customer_ids())
    row = conn.execute("select email, source_updated_at from shopsync.customers where id = %s", (str(cid),)).fetchone()
    assert row["email"] == "newer@example.com" and row["source_updated_at"] == newer
    assert result["skipped"] == 1 and count(conn, "customers") == customers


# --- list_synced_ids ---------------------------------------------------------------------------------------

async def test_list_synced_ids_pages_live_ids(db: DirectDatabase, conn: psycopg.Connection[Any],
                                              store_id: str) -> None:
    conn.execute("insert into shopsync.orders (store_id, id, organization_id, deleted_at) "
                 "select s.id, g::text, s.organization_id, case when g % 5 = 0 then now() end "
                 "from shopsync.stores s, generate_series(100, 124) g")
    pages: list[list[str]] = []
    after = None
    while True:
        page = await db.rpc("list_synced_ids", {"p_table": "orders", "p_store_id": store_id, "p_after": after,
                                                "p_limit": 7})
        pages.append(page)
        if len(page) < 7:
            break
        after = page[-1]
    flat = [i for p in pages for i in p]
    assert flat == sorted(str(g) for g in range(100, 125) if g % 5) and len(pages) == 3
    for bad in ("order_line_items", "stores", None):
        with pytest.raises(DatabaseError) as info:
            await db.rpc("list_synced_ids", {"p_table": bad, "p_store_id": store_id})
        assert info.value.sqlstate == "22023"
    with pytest.raises(DatabaseError) as info:
        await db.rpc("list_synced_ids", {"p_table": "orders", "p_store_id": store_id, "p_limit": 0})
    assert info.value.sqlstate == "22023"


async def test_bulk_lines_are_whole_whatever_the_chunks() -> None:
    # lines split anywhere across chunks (one across three), blank lines, CRLF, no final newline;
    # resumed readers get None for children up to the skip and still see parents
    chunks = [b'{"id":"gid://shopify/Product/1","title":"A"}\n{"id":"gid://sho', b"pify/ProductVariant/2",
              b'","__parentId":"gid://shopify/Product/1"}\r\n\n  \n{"id":"gid://shopify/Product/3","ti',
              b'tle":"\xc3\xa9"}']

    def serve(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk
        return httpx.Response(200, content=body())

    async with httpx.AsyncClient(transport=httpx.MockTransport(serve)) as http:
        runner = BulkRunner(None, http)  # type: ignore[arg-type]  # downloading needs no GraphQL client
        got = [item async for item in runner.lines("http://bulk.test/x.jsonl")]
        resumed = [item async for item in runner.lines("http://bulk.test/x.jsonl", skip=2)]
    assert [(n, obj) for n, obj, _ in got] == [
        (1, {"id": "gid://shopify/Product/1", "title": "A"}),
        (2, {"id": "gid://shopify/ProductVariant/2", "__parentId": "gid://shopify/Product/1"}),
        (3, {"id": "gid://shopify/Product/3", "title": "é"})]
    assert [line for _, _, line in got][1] == b'{"id":"gid://shopify/ProductVariant/2","__parentId":"gid://shopify/Product/1"}'
    assert [(n, obj) for n, obj, _ in resumed] == [(n, obj) for n, obj, _ in got[:1]] + [(2, None)] + [
        (n, obj) for n, obj, _ in got[2:]]
