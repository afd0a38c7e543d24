"""WooCommerce ingest: a full sync of a sandbox store (products with variations, customers, orders with line
items) through the real handler — paged REST over HTTP with OAuth 1.0a signing, mapping, guarded writes —
against plain COPY of the same rows in the same run. The sandbox runs in its own process.

Pacing is off and 4 requests may be in flight (a merchant who knows their server can allow that); the polite
default (one request at a time, 4/s) is about the store, not shopsync's throughput."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import Bench, Row
from bench.rest_common import JsonSandbox, run_platform_sync, wire_rest_store
from bench.shopify_common import free_port, table_counts
from bench.shopify_ingest import copy_baseline
from worker.config import load_settings
from worker.connectors.woocommerce import CONNECTOR
from worker.connectors.woocommerce.connector import CREDENTIALS_KIND
from worker.connectors.woocommerce.settings import WooSettings
from worker.db.direct import DirectDatabase
from worker.runtime import build_registry
from worker.sealing import generate_key_spec

NAME = "woocommerce_ingest"
TITLE = "WooCommerce ingest: full sync vs plain COPY of the same rows"
TARGET_SHARE = 0.40
TABLES = ("products", "product_variants", "customers", "orders", "order_line_items")


async def _sync_all(dsn: str, core: Any, store_id: Any) -> dict[str, tuple[dict[str, Any], float]]:
    db = await DirectDatabase.connect(dsn, listen=False)
    registry = build_registry()
    try:
        return {r: await run_platform_sync(db, core, registry, "woocommerce", store_id, r)
                for r in ("products", "customers", "orders")}
    finally:
        await db.close()


def run(bench: Bench) -> list[Row]:
    products, orders, customers = (1_000, 1_000, 300) if bench.quick else (20_000, 20_000, 5_000)
    dsn = bench.db()
    args = ["--port", str(free_port()), "--products", str(products), "--orders", str(orders), "--customers",
            str(customers), "--variable-share", "0.2", "--variations", "3", "--wc-version", "10.3.1"]
    with JsonSandbox("sandbox.woocommerce", *args) as sandbox:
        keys = generate_key_spec("bench")
        core = load_settings(_env_file=None, database_url=dsn, sealing_keys=keys, local_dev=True,
                             log_level="WARNING")
        CONNECTOR._settings = WooSettings(_env_file=None, requests_per_second=0, concurrency=4)  # type: ignore[call-arg]
        store_id = wire_rest_store(dsn, core, "woocommerce", sandbox.info["store_url"], CREDENTIALS_KIND, {
            "consumer_key": sandbox.info["consumer_key"], "consumer_secret": sandbox.info["consumer_secret"],
            "webhook_secret": "bench"})
        with __import__("psycopg").connect(dsn, autocommit=True) as conn:
            conn.execute("select shopsync.set_store_status(%s, 'active')", (store_id,))
        bench.say(f"{products:,} products (20% variable × 3) + {customers:,} customers + {orders:,} orders: full sync")
        sandbox_cpu, own_cpu = sandbox.cpu_seconds(), time.process_time()
        results = asyncio.run(_sync_all(dsn, core, store_id))
        sandbox_cpu, own_cpu = sandbox.cpu_seconds() - sandbox_cpu, time.process_time() - own_cpu
    counts = table_counts(dsn, TABLES)
    records = sum(counts.values())
    seconds = sum(s for _, s in results.values())
    bench.say(f"{records:,} records in {seconds:.1f} s; COPY baseline")
    copy_seconds = copy_baseline(dsn)
    copy_rate, rate = records / copy_seconds, records / seconds
    bench.note("WooCommerce: records = " + ", ".join(f"{t} {c:,}" for t, c in counts.items()) +
               "; OAuth 1.0a over HTTP (every request signed), per_page 100, WooCommerce 10.3 (store-wide /variations), "
               "up to 4 pages in flight, pacing off")
    bench.note(f"WooCommerce: CPU during the sync: shopsync {own_cpu:.1f} s, the sandbox (a stand-in for the "
               f"store's server, on the same 2 cores) {sandbox_cpu:.1f} s, over {seconds:.1f} s of wall time")
    rows = [Row(NAME, "plain COPY of the same rows (baseline)", copy_rate, "rec/s"),
            Row(NAME, "full sync, whole path (REST paging, mapping, writes)", rate, "rec/s",
                f"plain COPY {copy_rate:,.0f} rec/s", rate / copy_rate, f"≥ {TARGET_SHARE:.0%} of COPY",
                rate / copy_rate >= TARGET_SHARE)]
    for resource, (result, secs) in results.items():
        rows.append(Row(NAME, f"{resource}: sync seconds ({result.get('inserted', 0):,} rows inserted)", secs, "s"))
    return rows
