"""TikTok product links: a Shopify variant's change reaching its TikTok SKU, coalescing under a burst of shuffled
and duplicated webhooks, and the request rate of a bulk reprice.

Processes: the Shopify sandbox (own process, its control channel edits variants and holds/releases webhooks),
``python -m worker web`` and ``python -m worker worker`` configured only by environment variables, and this
process running the TikTok sandbox (``TikTokSandbox(rate_limit=20)``: a sliding second per app and shop, 429 +
36009002 past it) and measuring. Both stores are connected the way the worker does it (``shopify.activate``,
``tiktok.activate``: webhooks registered, full syncs), then auto-linked by SKU.

1. Latency: one price edit at a time in the Shopify sandbox → its ``products/update`` webhook → web → inbox →
   ``shopify.webhook`` applies it → the link trigger → ``links.push`` → the TikTok price update, timed from the
   edit to the TikTok sandbox applying it. Baseline: the same edit until shopsync stored it (the webhook path
   alone: the variant row's ``synced_at``).
2. Coalescing: 10 edits per linked variant (prices; one in five variants also gets a stock edit), webhooks held,
   then released shuffled with 30% sent twice. Counted: TikTok price + inventory calls per product, and the final
   TikTok values against the last values set. Baseline: the number of edits.
3. Bulk reprice: 5,000 linked SKUs (500 TikTok products × 10) of a store whose rows a sync would write, every
   price raised in one statement (as a sync writing new prices does) → 500 pushes through the shared limiter at
   the configured 19 requests/s per shop. Baseline: the configured rate.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.common import ROOT, Bench, Row, percentile, stop_process, wait_until
from bench.shopify_common import SandboxProcess, free_port, wire_store
from sandbox.tiktok import TikTokSandbox, TtDatasetSpec, TtShop, serve_tiktok_sandbox
from worker.connectors.tiktok.oauth import TokenSet
from worker.connectors.tiktok.tokens import save_tokens
from worker.db.direct import DirectDatabase
from worker.sealing import Sealer

NAME = "tiktok_links"
TITLE = "TikTok product links: Shopify webhook → TikTok value, coalescing, bulk reprice pacing"
KEY, SECRET, SERVICE = "bench-tt", "bench-tt-secret", "7300000000000000042"
RATE = 18.0                     # shopsync's configured requests/s per TikTok shop (90% of what the sandbox allows)
SANDBOX_LIMIT = 20              # what the sandbox lets through per sliding second
Conn = psycopg.Connection[dict[str, Any]]


def _worker(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "worker", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL)


@contextmanager
def _as_user(conn: Conn, user: Any) -> Iterator[None]:
    with conn.transaction():
        conn.execute("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                     (json.dumps({"sub": str(user), "role": "authenticated"}),))
        yield


def _idle(conn: Conn) -> bool:
    row = conn.execute("select count(*) as n from shopsync.jobs where state in ('queued', 'running') "
                       "and run_at <= now()").fetchone()
    return row is not None and row["n"] == 0


def _synced(conn: Conn, store: Any) -> bool:
    row = conn.execute("select count(*) as n from shopsync.sync_state where store_id = %s "
                       "and last_full_sync_at is not null", (store,)).fetchone()
    return row is not None and row["n"] == 3


def _wire_tiktok(dsn: str, core: Any, org: Any, shop: TtShop, tokens: dict[str, Any]) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("select shopsync.upsert_store(%s, 'tiktok', %s, %s, 'connecting', %s, %s)",
                           (org, shop.id, shop.info.name, shop.id,
                            json.dumps({"cipher": shop.cipher, "authorization_shops": [shop.id]}))).fetchone()
        assert row is not None
        store = row[0]

    async def save() -> None:
        db = await DirectDatabase.connect(dsn, listen=False)
        try:
            await save_tokens(db, Sealer.from_settings(core), store, TokenSet.from_answer(tokens))
        finally:
            await db.close()

    asyncio.run(save())
    return store


def _bulk_source(conn: Conn, org: Any, skus: list[tuple[str, Decimal, int]]) -> Any:
    """A store whose variants a sync wrote (its platform is never called here)."""
    row = conn.execute("select shopsync.upsert_store(%s, 'woocommerce', 'https://bulk.bench.test') as s",
                       (org,)).fetchone()
    assert row is not None
    store = row["s"]
    with conn.cursor().copy("copy shopsync.product_variants (store_id, id, product_id, organization_id, sku, price, "
                            "inventory_quantity, source_updated_at) from stdin") as copy:
        for n, (sku, price, quantity) in enumerate(skus):
            copy.write_row((store, str(n + 1), str(n // 10 + 1), org, sku, price, quantity, datetime.now(UTC)))
    return store


def _writes(tts: TikTokSandbox, since: int, products: set[str] | None = None) -> list[dict[str, Any]]:
    with tts.lock:
        return [w for w in tts.writes[since:] if products is None or w["product"] in products]


def _kinds(requests: list[Any]) -> str:
    """Requests by what they did: price / inventory updates, product reads, others."""
    counts: dict[str, int] = {}
    for r in requests:
        kind = "price" if r.path.endswith("/prices/update") else "inventory" if r.path.endswith("/inventory/update") \
            else "read" if r.method == "GET" else "other"
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def _densest(requests: list[Any]) -> int:
    """The most requests in any sliding second, by the time the sandbox logged them."""
    times, best, start = sorted(r.time for r in requests), 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def run(bench: Bench) -> list[Row]:
    linked = 40 if bench.quick else 100
    samples = 15 if bench.quick else 40
    bulk_products = 100 if bench.quick else 500
    dsn = bench.db()
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    rows: list[Row] = []
    with SandboxProcess(products=linked, orders=0, customers=0, variants=1, locations=1) as shopify:
        wiring = wire_store(dsn, shopify, public_url=web_url)
        tts = TikTokSandbox(rate_limit=SANDBOX_LIMIT, webhook_retry_delays=(0.5, 1.0, 2.0))
        tts.add_app(KEY, SECRET, service_id=SERVICE, webhook_url=f"{web_url}/tiktok/webhooks")
        shop = tts.add_shop(tts.add_seller("Bench Seller"), "Bench Shop", TtDatasetSpec(products=0, orders=0))
        with serve_tiktok_sandbox(tts, port=free_port()) as tt_url, \
                psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
            env = {**wiring.env, "SHOPSYNC_HOST": "127.0.0.1", "SHOPSYNC_PORT": str(port), "PORT": str(port),
                   "SHOPSYNC_POLL_INTERVAL": "1", "SHOPSYNC_TIKTOK_APP_KEY": KEY, "SHOPSYNC_TIKTOK_APP_SECRET": SECRET,
                   "SHOPSYNC_TIKTOK_SERVICE_ID": SERVICE, "SHOPSYNC_TIKTOK_API_BASE_URL": tt_url,
                   "SHOPSYNC_TIKTOK_AUTH_BASE_URL": tt_url, "SHOPSYNC_TIKTOK_AUTHORIZE_URL": f"{tt_url}/open/authorize",
                   "SHOPSYNC_TIKTOK_REQUESTS_PER_SECOND": str(RATE)}
            procs = [_worker(["web"], env), _worker(["worker"], env)]
            try:
                rows += _measure(bench, conn, dsn, wiring, shopify, tts, shop, linked, samples, bulk_products)
            finally:
                for proc in procs:
                    stop_process(proc)
    return rows


def _measure(bench: Bench, conn: Conn, dsn: str, wiring: Any, shopify: SandboxProcess, tts: TikTokSandbox,
             shop: TtShop, linked: int, samples: int, bulk_products: int) -> list[Row]:
    org = conn.execute("select organization_id from shopsync.stores where id = %s", (wiring.store_id,)).fetchone()
    assert org is not None
    org = org["organization_id"]
    user = conn.execute("select user_id from shopsync.organization_members where organization_id = %s",
                        (org,)).fetchone()["user_id"]  # type: ignore[index]
    conn.execute("select shopsync.enqueue_job('shopify.activate', p_store_id => %s)", (wiring.store_id,))
    bench.say(f"Shopify: {linked} products (1 variant each), connected and synced by the worker")
    if not wait_until(lambda: _synced(conn, wiring.store_id) and _idle(conn), 180, 0.2):
        raise RuntimeError("the Shopify store did not sync")
    variants = conn.execute("select id, sku, price from shopsync.product_variants where store_id = %s order by id",
                            (wiring.store_id,)).fetchall()
    for v in variants:        # listed on TikTok under the same SKU, at another price and stock
        shop.add_product(f"Listing {v['sku']}", [(v["sku"], "1.00", 1)])
    rng = random.Random(11)
    bulk = [(f"BULK-{p:04d}-{k:02d}", Decimal(rng.randint(500, 9000)) / 100, rng.randint(0, 80))
            for p in range(bulk_products) for k in range(10)]
    for p in range(bulk_products):
        shop.add_product(f"Bulk {p}", [(sku, "1.00", 1) for sku, _, _ in bulk[p * 10:(p + 1) * 10]])
    tiktok = _wire_tiktok(dsn, wiring.core, org, shop, tts.issue_tokens(KEY))
    conn.execute("select shopsync.enqueue_job('tiktok.activate', p_store_id => %s)", (tiktok,))
    bench.say(f"TikTok: {linked} + {len(bulk):,} SKUs, connected and synced by the worker")
    if not wait_until(lambda: _synced(conn, tiktok) and _idle(conn), 300, 0.2):
        raise RuntimeError("the TikTok store did not sync")
    with _as_user(conn, user):
        conn.execute("select shopsync.auto_link_by_sku(%s, %s, false)", (wiring.store_id, tiktok))
    if not wait_until(lambda: _idle(conn), 120, 0.2):
        raise RuntimeError("the first pushes did not finish")

    # --- 1. latency ---------------------------------------------------------------------------------------
    bench.say(f"latency: {samples} price edits in Shopify, one at a time")
    push_ms: list[float] = []
    apply_ms: list[float] = []
    for k in range(samples):
        v = variants[k % len(variants)]
        price = f"{rng.randint(1000, 9999) / 100:.2f}"
        target = shop.sku_by_seller_sku(v["sku"])
        since = len(tts.writes)
        started = time.time()
        shopify.call("edit_variants", edits=[{"id": int(v["id"]), "price": price}])
        if not wait_until(lambda t=target, p=price: t.price == Decimal(p), 15, 0.005):  # type: ignore[misc]
            raise RuntimeError(f"edit {k} did not reach TikTok")
        done = [w["at"] for w in _writes(tts, since) if target.id in w["skus"]]
        push_ms.append((done[0] - started) * 1000)
        stored = conn.execute("select synced_at from shopsync.product_variants where store_id = %s and id = %s",
                              (wiring.store_id, v["id"])).fetchone()
        assert stored is not None
        apply_ms.append((stored["synced_at"].timestamp() - started) * 1000)
        time.sleep(0.3)
    wait_until(lambda: _idle(conn), 30, 0.1)
    p50, p99 = percentile(push_ms, 50), percentile(push_ms, 99)
    a50, a99 = percentile(apply_ms, 50), percentile(apply_ms, 99)
    rows = [Row(NAME, "Shopify edit → stored by shopsync, p50 (baseline)", a50, "ms"),
            Row(NAME, "Shopify edit → stored by shopsync, p99 (baseline)", a99, "ms"),
            Row(NAME, "Shopify edit → TikTok value updated, p50", p50, "ms", f"stored {a50:,.0f} ms", p50 / a50,
                "≤ 1,000 ms", p50 <= 1000),
            Row(NAME, "Shopify edit → TikTok value updated, p99", p99, "ms", f"stored {a99:,.0f} ms", p99 / a99,
                "≤ 3,000 ms", p99 <= 3000)]

    # --- 2. coalescing ------------------------------------------------------------------------------------
    bench.say(f"coalescing: {linked * 10:,} edits over {linked} variants, shuffled, 30% delivered twice")
    final: dict[str, tuple[Decimal | None, int | None]] = {}
    edits: list[dict[str, Any]] = []
    for n, v in enumerate(variants):
        price, available = None, None
        for step in range(10):
            if n % 5 == 0 and step == 9:
                available = rng.randint(0, 50)
                edits.append({"id": int(v["id"]), "available": available})
            else:
                price = Decimal(rng.randint(1000, 9999)) / 100
                edits.append({"id": int(v["id"]), "price": str(price)})
        final[v["sku"]] = (price, available)
    products = {shop.product_of(shop.sku_by_seller_sku(v["sku"]).id).id for v in variants}
    since = len(tts.writes)
    shopify.call("webhooks", action="hold", duplicate_rate=0.3)
    shopify.call("edit_variants", edits=edits)
    released = time.perf_counter()
    shopify.call("webhooks", action="release", shuffle=True)
    shopify.call("webhooks", action="wait_idle", timeout=120)
    burst_s = time.perf_counter() - released
    wait_until(lambda: _idle(conn), 180, 0.1)
    settle_s = time.perf_counter() - released
    calls = _writes(tts, since, products)
    per_product = len(calls) / len(products)
    wrong = 0
    for sku, (price, available) in final.items():
        target = shop.sku_by_seller_sku(sku)
        if (price is not None and target.price != price) or \
                (available is not None and sum(target.inventory.values()) != available):
            wrong += 1
    delivered = shopify.call("webhooks")["delivered"]
    prices = sum(c["kind"] == "price" for c in calls)
    bench.note(f"coalescing: {len(edits):,} edits → {len(calls)} TikTok calls ({prices} price, {len(calls) - prices} "
               f"inventory) in {settle_s:.1f} s from the release (the deliveries took {burst_s:.1f} s); the Shopify "
               f"sandbox made {delivered:,} deliveries in all (first pushes and latency edits included)")
    rows += [Row(NAME, "edits (baseline)", len(edits), ""),
             Row(NAME, "price + inventory calls per product", per_product, "", f"{len(edits) / len(products):.0f} "
                 "edits per product", len(calls) / len(edits), "≤ 2 per product", per_product <= 2),
             Row(NAME, "final TikTok values different from the source", wrong, "", "", None, "0", wrong == 0)]

    # --- 3. bulk reprice ----------------------------------------------------------------------------------
    bench.say(f"bulk reprice: {len(bulk):,} linked SKUs at {RATE:g} requests/s")
    source = _bulk_source(conn, org, bulk)
    with _as_user(conn, user):
        conn.execute("select shopsync.auto_link_by_sku(%s, %s, false)", (source, tiktok))
    first = len(tts.request_log)
    wait_until(lambda: _idle(conn), 600, 0.5)
    first_limited = tts.counters["rate_limited"]
    start = len(tts.request_log)
    conn.execute("update shopsync.product_variants set price = price + 1 where store_id = %s", (source,))
    wait_until(lambda: _idle(conn), 600, 0.5)
    api = [r for r in tts.request_log[start:] if r.endpoint == "api"]
    span = api[-1].time - api[0].time if len(api) > 1 else 0.0
    rate = (len(api) - 1) / span if span else 0.0
    refused = tts.counters["rate_limited"] - first_limited
    wrong = sum(1 for sku, price, _ in bulk if shop.sku_by_seller_sku(sku).price != price + 1)
    first_push = [r for r in tts.request_log[first:start] if r.endpoint == "api"]
    bench.note(f"bulk reprice: {len(api)} TikTok requests ({_kinds(api)}) in {span:.1f} s (10 SKUs per price call), "
               f"at most {_densest(api)} in a second as the sandbox saw them; the first push of the {len(bulk):,} new "
               f"links took {len(first_push)} requests ({_kinds(first_push)}; {first_limited} answered 429, at most "
               f"{_densest(first_push)} in a second); sandbox limit {SANDBOX_LIMIT}/s")
    rows += [Row(NAME, "configured rate (baseline)", RATE, "req/s"),
             Row(NAME, f"bulk reprice of {len(bulk):,} SKUs: request rate", rate, "req/s", f"{RATE:g} req/s",
                 rate / RATE, "≥ 90%", rate / RATE >= 0.9),
             Row(NAME, "bulk reprice: rate-limit errors (429 / 36009002)", refused, "", "", None, "0", refused == 0),
             Row(NAME, "bulk reprice: SKUs not at the new price", wrong, "", "", None, "0", wrong == 0)]
    return rows
