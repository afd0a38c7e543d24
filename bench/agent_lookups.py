"""Agent look-ups (docs/agents.md), through the real web process (``python -m worker web``, one uvicorn process,
configured only by environment variables) with an organization API key.

* **Synced**: one store with 100,000 customers (phones written both ``+36 30 …`` and ``06 30 …``) and 500,000
  orders (a line each, every second one fulfilled with tracking). ``find_customer`` by phone and ``find_orders``
  by customer id at 200 requests/s for 30 s, open loop (request k is due at t0 + k/200; its latency counts from
  then, waiting for one of 32 keep-alive connections included; the minimal client of ``shopify_webhooks``),
  each a different customer. Baseline, in the same run at the same rate: the same query in plain SQL
  (psycopg, a pool of 8 connections like the web process's, prepared statements) — for orders, the orders
  with their lines and fulfillments in one statement. Three runs; target p99 ≤ 20 ms.
* **Live** (policies ``api_only``): ``find_customer`` by email against each platform's sandbox, next to the
  same platform request made directly (same document or URL, a kept-alive httpx client), one after the
  other, alternating which goes first. Overhead = p50 through shopsync − p50 direct; target ≤ 5 ms. The
  Shopify sandbox runs in its own process; WooCommerce and ShopRenter in threads of this one (both sides wait
  on them alike). ShopRenter pairs are 0.4 s apart: its limiter's 2.85 requests/s (the shop's 3/s) would
  otherwise be what is measured.
"""

# long module: one benchmark with two halves (synced load, live overhead) that share the web process setup

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool

from bench.common import ROOT, Bench, Row, cluster_cpu_seconds, cpu_seconds, percentile, stop_process, wait_until
from bench.shopify_common import SandboxProcess, free_port, wire_store
from bench.shopify_webhooks import _Connection, _raw

NAME = "agent_lookups"
TITLE = "Agent look-ups: synced at 200/s (100k customers, 500k orders) vs plain SQL; live overhead vs the sandbox"
RATE = 200.0
POOL = 32
RUNS = 3
TARGET_P99 = 20.0
TARGET_OVERHEAD = 5.0

CUSTOMER_SQL = ("select * from shopsync.customers where store_id = %(s)s and phone_normalized = any(%(p)s) "
                "and deleted_at is null order by source_updated_at desc nulls last, id limit 10")
ORDERS_SQL = ("select o.*, (select json_agg(l) from shopsync.order_line_items l where l.store_id = o.store_id "
              "and l.order_id = o.id) as lines, (select json_agg(f) from shopsync.order_fulfillments f "
              "where f.store_id = o.store_id and f.order_id = o.id) as fulfillments from shopsync.orders o "
              "where o.store_id = %(s)s and o.customer_id = %(c)s and o.deleted_at is null "
              "order by coalesce(o.processed_at, o.source_created_at) desc nulls last, o.id desc limit 10")


# --- setup ---------------------------------------------------------------------------------------------------

def _owner_org(conn: psycopg.Connection[Any]) -> tuple[uuid.UUID, uuid.UUID]:
    user = uuid.uuid4()
    conn.execute("insert into auth.users (id, email) values (%s, %s)", (user, f"{user.hex[:8]}@bench.example"))
    row = conn.execute("select organization_id from shopsync.organization_members where user_id = %s",
                       (user,)).fetchone()
    assert row is not None
    return user, row[0]


def _key(conn: psycopg.Connection[Any], owner: uuid.UUID, org: uuid.UUID) -> str:
    """An API key made as a frontend makes one: create_api_key as the signed-in owner."""
    with conn.transaction():
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     (json.dumps({"role": "authenticated", "sub": str(owner)}),))
        conn.execute("set local role authenticated")
        row = conn.execute("select shopsync.create_api_key(%s, 'bench', p_requests_per_second => 1000, "
                           "p_burst => 1000)", (org,)).fetchone()
    assert row is not None
    return str(row[0]["key"])


def _seed(conn: psycopg.Connection[Any], customers: int, orders: int) -> tuple[uuid.UUID, uuid.UUID]:
    owner, org = _owner_org(conn)
    store = conn.execute("select shopsync.upsert_store(%s, 'shopify', 'lookups.myshopify.com')", (org,)).fetchone()
    assert store is not None
    p = {"s": store[0], "o": org, "c": customers, "n": orders}
    conn.execute("insert into shopsync.customers (store_id, id, organization_id, email, phone, first_name, last_name, "
                 "orders_count, source_created_at, source_updated_at) select %(s)s, 'c' || g, %(o)s, "
                 "'buyer' || g || '@bench.example', case when g %% 2 = 0 then '+36 30 ' else '06 30 ' end "
                 "|| (1000000 + g), 'Buyer', 'No' || g, 5, now() - g * interval '1 minute', "
                 "now() - g * interval '1 minute' from generate_series(1, %(c)s) g", p)
    conn.execute("insert into shopsync.orders (store_id, id, organization_id, name, order_number, customer_id, email, "
                 "financial_status, fulfillment_status, currency, total_price, processed_at, source_created_at, "
                 "source_updated_at) select %(s)s, 'o' || g, %(o)s, '#' || (1000 + g), (1000 + g)::text, "
                 "'c' || (1 + (g::bigint * 7919) %% %(c)s), "
                 "'buyer' || (1 + (g::bigint * 7919) %% %(c)s) || '@bench.example', "
                 "'paid', case when g %% 2 = 0 then 'fulfilled' else 'unfulfilled' end, 'EUR', 10 + g %% 90, "
                 "timestamptz '2025-01-01' + g * interval '1 minute', timestamptz '2025-01-01' + g * interval "
                 "'1 minute', now() from generate_series(1, %(n)s) g", p)
    conn.execute("insert into shopsync.order_line_items (store_id, id, order_id, organization_id, product_id, "
                 "variant_id, sku, title, quantity, price) select %(s)s, 'l' || g, 'o' || g, %(o)s, 'p' || g %% 500, "
                 "'v' || g %% 1500, 'SKU-' || g %% 1500, 'Item', 1 + g %% 3, 10 + g %% 90 "
                 "from generate_series(1, %(n)s) g", p)
    conn.execute("insert into shopsync.order_fulfillments (store_id, id, order_id, organization_id, status, "
                 "tracking_company, tracking_numbers, tracking_urls, source_created_at) select %(s)s, 'f' || g, "
                 "'o' || g, %(o)s, 'success', 'DHL', array['1Z' || g], array['https://track.example/1Z' || g], "
                 "timestamptz '2025-01-02' + g * interval '1 minute' from generate_series(2, %(n)s, 2) g", p)
    conn.execute("vacuum analyze shopsync.customers, shopsync.orders, shopsync.order_line_items, "
                 "shopsync.order_fulfillments")
    return owner, org


def _web_env(dsn: str, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHOPSYNC_", "SUPABASE_", "DATABASE_URL", "TEST_EFFECTS_DSN"))}
    env.update({"DATABASE_URL": dsn, "PYTHONPATH": str(ROOT), "SHOPSYNC_HOST": "127.0.0.1", "SHOPSYNC_PORT": str(port),
                "PORT": str(port), "SHOPSYNC_LOG_LEVEL": "WARNING", "SHOPSYNC_LOCAL_DEV": "true",
                "SHOPSYNC_PUBLIC_URL": f"http://127.0.0.1:{port}"})
    env.update(extra or {})
    return env


def _start_web(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    web = subprocess.Popen([sys.executable, "-m", "worker", "web"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL)

    def up() -> bool:
        if web.poll() is not None:
            raise RuntimeError("the web process exited early")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    if not wait_until(up, 60, 0.1):
        stop_process(web)
        raise RuntimeError("the web process did not come up")
    return web


# --- open-loop load --------------------------------------------------------------------------------------------

async def _open_loop(n: int, rate: float, one: Callable[[int], Awaitable[str]]) -> tuple[list[float], Counter[str]]:
    """Request k due at t0 + k/rate; its latency counts from then."""
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    async def timed(k: int, due: float) -> None:
        outcomes[await one(k)] += 1
        latencies.append((time.perf_counter() - due) * 1000)

    tasks = []
    t0 = time.perf_counter() + 0.05
    for k in range(n):
        due = t0 + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(timed(k, due)))
    await asyncio.gather(*tasks)
    return latencies, outcomes


async def _http_load(port: int, bodies: list[bytes], path: str, key: str, rate: float) -> tuple[list[float], Counter[str]]:
    host = f"127.0.0.1:{port}"
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    raws = [_raw(("POST", path, body, headers), host) for body in bodies]
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(POOL):
        conn = _Connection(*await asyncio.open_connection("127.0.0.1", port))
        await conn.send(_raw(("GET", "/healthz", None, {}), host))      # warm: the connection is accepted
        idle.put_nowait(conn)

    async def one(k: int) -> str:
        conn = await idle.get()
        try:
            status, _ = await conn.send(raws[k])
        finally:
            idle.put_nowait(conn)
        return str(status)

    try:
        return await _open_loop(len(raws), rate, one)
    finally:
        while not idle.empty():
            idle.get_nowait().writer.close()


async def _sql_load(dsn: str, query: str, params: list[dict[str, Any]], rate: float) -> tuple[list[float], Counter[str]]:
    async with AsyncConnectionPool(dsn, min_size=8, max_size=8, kwargs={"autocommit": True}) as pool:
        await pool.wait()
        for _ in range(16):                                    # warm: plans prepared on every connection
            async with pool.connection() as conn:
                await (await conn.execute(query, params[0], prepare=True)).fetchall()

        async def one(k: int) -> str:
            async with pool.connection() as conn:
                rows = await (await conn.execute(query, params[k], prepare=True)).fetchall()
            return "found" if rows else "none"

        return await _open_loop(len(params), rate, one)


# --- synced look-ups at 200/s ----------------------------------------------------------------------------------

def _synced(bench: Bench) -> list[Row]:
    customers, orders = (20_000, 100_000) if bench.quick else (100_000, 500_000)
    seconds = 5.0 if bench.quick else 30.0
    n = int(RATE * seconds)
    dsn = bench.db("synced")
    with psycopg.connect(dsn, autocommit=True) as conn:
        bench.say(f"seeding {customers:,} customers and {orders:,} orders (a line each, half fulfilled)")
        owner, org = _seed(conn, customers, orders)
        key = _key(conn, owner, org)
        store = str(conn.execute("select id from shopsync.stores where organization_id = %s", (org,)).fetchone()[0])  # type: ignore[index]
    port = free_port()
    web = _start_web(_web_env(dsn, port), port)
    rows: list[Row] = []
    results: dict[str, list[tuple[float, float, float, float]]] = {"phone": [], "orders": []}
    cpu_per_lookup: dict[str, list[list[float]]] = {"phone": [], "orders": []}
    rng = random.Random(18)
    try:
        # warm-up, not counted: the web process's pool grows to its size and each connection prepares its plans
        warm = [rng.randrange(1, customers + 1) for _ in range(int(RATE * 3))]
        for path, field, values in (("/v1/lookups/find_customer", "phone", [f"+36 30 {1000000 + g}" for g in warm]),
                                    ("/v1/lookups/find_orders", "customer_id", [f"c{g}" for g in warm])):
            asyncio.run(_http_load(port, [json.dumps({"store_id": store, field: v}).encode() for v in values], path,
                                   key, RATE))
        for run in range(1, RUNS + 1):
            picks = [rng.randrange(1, customers + 1) for _ in range(n)]
            phones = [f"+36 30 {1000000 + g}" for g in picks]              # half stored as 06 30 …
            digits = [[f"3630{1000000 + g}", f"0630{1000000 + g}"] for g in picks]
            cases: dict[str, tuple[str, list[bytes], str, list[dict[str, Any]]]] = {
                "phone": ("/v1/lookups/find_customer",
                          [json.dumps({"store_id": store, "phone": p}).encode() for p in phones],
                          CUSTOMER_SQL, [{"s": store, "p": d} for d in digits]),
                "orders": ("/v1/lookups/find_orders",
                           [json.dumps({"store_id": store, "customer_id": f"c{g}"}).encode() for g in picks],
                           ORDERS_SQL, [{"s": store, "c": f"c{g}"} for g in picks]),
            }
            for name, (path, bodies, query, params) in cases.items():
                bench.say(f"run {run}: {name}: {n:,} look-ups at {RATE:.0f}/s, then the same in plain SQL")
                cpu = (cpu_seconds(web.pid), cluster_cpu_seconds(bench.cluster), time.process_time())
                latencies, statuses = asyncio.run(_http_load(port, bodies, path, key, RATE))
                used = [(after - before) * 1000 / n for before, after in zip(
                    cpu, (cpu_seconds(web.pid), cluster_cpu_seconds(bench.cluster), time.process_time()), strict=True)]
                bench.say(f"  p50 {percentile(latencies, 50):.2f} ms p99 {percentile(latencies, 99):.2f} ms; CPU per "
                          f"look-up: web {used[0]:.2f} ms, PostgreSQL {used[1]:.2f} ms, load generator {used[2]:.2f} ms")
                cpu_per_lookup[name].append(used)
                if statuses != Counter({"200": n}):
                    bench.note(f"run {run} {name}: answers {dict(statuses)}")
                sql_latencies, found = asyncio.run(_sql_load(dsn, query, params, RATE))
                if found.get("none"):
                    bench.note(f"run {run} {name}: plain SQL found nothing for {found['none']} requests")
                results[name].append((percentile(latencies, 50), percentile(latencies, 99),
                                      percentile(sql_latencies, 50), percentile(sql_latencies, 99)))
    finally:
        stop_process(web)
    labels = {"phone": "customer by phone", "orders": "orders by customer (lines, fulfillments)"}
    for name, runs in results.items():
        for i, (p50, p99, s50, s99) in enumerate(runs, 1):
            rows.append(Row(NAME, f"{labels[name]} at {RATE:.0f}/s, run {i}: p99 (p50 {p50:.2f} ms)", p99, "ms",
                            f"plain SQL p99 {s99:.2f} ms (p50 {s50:.2f})", p99 / s99, f"p99 ≤ {TARGET_P99:.0f} ms",
                            p99 <= TARGET_P99))
    bench.note(f"synced: {customers:,} customers, {orders:,} orders ({orders:,} lines, {orders // 2:,} fulfillments) in "
               f"one store; {n:,} look-ups per case and run, each a different random customer; the web process "
               "answers over HTTP (auth, rate limit, policy, query, canonical model, audit row): 3 database round "
               "trips; the baseline is one")
    return rows


# --- live look-ups: shopsync's overhead over a direct call -----------------------------------------------------

SR_CLIENT_ID, SR_SECRET = "shopsync-bench-sr", "sr_bench_secret_0123456789"
Call = Callable[[int], Awaitable[None]]


async def _pairs(n: int, direct: Call, via: Call, spacing: float = 0.0) -> tuple[list[float], list[float]]:
    """n timed pairs after 5 untimed ones, one call after the other, alternating which goes first."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(n + 5):
        order = ((direct, times[0]), (via, times[1])) if i % 2 == 0 else ((via, times[1]), (direct, times[0]))
        for call, out in order:
            started = time.perf_counter()
            await call(i)
            if i >= 5:
                out.append((time.perf_counter() - started) * 1000)
            if spacing:
                await asyncio.sleep(spacing)
    return times


async def _seal_store(dsn: str, keys: str, org: uuid.UUID, platform: str, shop_key: str, kind: str,
                      fields: dict[str, Any]) -> uuid.UUID:
    from worker.config import load_settings
    from worker.connectors.store_secrets import seal_secrets
    from worker.db.direct import DirectDatabase
    from worker.rpc import stores
    from worker.sealing import Sealer

    db = await DirectDatabase.connect(dsn, listen=False)
    try:
        store = await stores.upsert_store(db, organization_id=org, platform=platform, shop_key=shop_key)
        box = seal_secrets(Sealer.from_settings(load_settings(_env_file=None, sealing_keys=keys)), store, kind, fields)
        await stores.put_store_credentials(db, store_id=store, kind=box["kind"], key_id=box["key_id"],
                                           sealed=box["sealed"])
        return store
    finally:
        await db.close()


def _live(bench: Bench) -> list[Row]:
    from sandbox.shoprenter import ShopRenterSandbox, SrDatasetSpec, serve_shoprenter_sandbox
    from sandbox.woocommerce import WooDatasetSpec, WooSandbox, serve_woocommerce_sandbox
    from worker.connectors.shopify.lookups import CUSTOMERS
    from worker.connectors.woocommerce.client import WooClient

    n = 40 if bench.quick else 300
    sr_n = 15 if bench.quick else 60
    dsn = bench.db("live")
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    rows: list[Row] = []
    woo = WooSandbox()
    woo_store = woo.add_store("bench", WooDatasetSpec(seed=3, products=20, customers=60, orders=40))
    ck, cs = woo_store.add_key(permissions="read")
    sr = ShopRenterSandbox(rate_limit=None)
    sr.add_app(SR_CLIENT_ID, SR_SECRET, redirect_uri=f"{web_url}/shoprenter/install",
               uninstall_uri=f"{web_url}/shoprenter/uninstall")
    sr_shop = sr.add_shop("bench", SrDatasetSpec(seed=3, products=20, customers=60, orders=40))
    sr.mark_installed(sr_shop, SR_CLIENT_ID)
    with SandboxProcess(products=20, orders=40, customers=60) as shopify, serve_woocommerce_sandbox(woo), \
            serve_shoprenter_sandbox(sr):
        wiring = wire_store(dsn, shopify, public_url=web_url)
        woo_url = woo.store_url(woo_store)
        with psycopg.connect(dsn, autocommit=True) as conn:
            org = conn.execute("select organization_id from shopsync.stores where id = %s",
                               (wiring.store_id,)).fetchone()[0]  # type: ignore[index]
            owner = conn.execute("select user_id from shopsync.organization_members where organization_id = %s",
                                 (org,)).fetchone()[0]  # type: ignore[index]
            key = _key(conn, owner, org)
        stores = {"shopify": wiring.store_id,
                  "woocommerce": asyncio.run(_seal_store(dsn, wiring.sealing_keys, org, "woocommerce", woo_url,
                                                         "woocommerce_keys", {"consumer_key": ck, "consumer_secret": cs})),
                  "shoprenter": asyncio.run(_seal_store(dsn, wiring.sealing_keys, org, "shoprenter", "bench",
                                                        "shoprenter_token", {"webhook_token": "bench"}))}
        with psycopg.connect(dsn, autocommit=True) as conn:
            for store in stores.values():
                for resource in ("products", "customers", "orders"):
                    conn.execute("insert into shopsync.store_access_policies (store_id, resource, organization_id, "
                                 "policy) values (%s, %s, %s, 'api_only') on conflict (store_id, resource) do update "
                                 "set policy = 'api_only'", (store, resource, org))
        env = _web_env(dsn, port, {**{k: v for k, v in wiring.env.items() if k.startswith("SHOPSYNC_")},
                                   "SHOPSYNC_PUBLIC_URL": web_url, "SHOPSYNC_LOG_LEVEL": "WARNING",
                                   "SHOPSYNC_SHOPIFY_LOOKUP_REQUESTS_PER_SECOND": "1000",
                                   "SHOPSYNC_WOOCOMMERCE_REQUESTS_PER_SECOND": "1000",
                                   "SHOPSYNC_SHOPRENTER_CLIENT_ID": SR_CLIENT_ID,
                                   "SHOPSYNC_SHOPRENTER_CLIENT_SECRET": SR_SECRET,
                                   "SHOPSYNC_SHOPRENTER_OAUTH_BASE_URL": sr.oauth_base_url,
                                   "SHOPSYNC_SHOPRENTER_API_BASE_URL": sr.api_url_template})
        web = _start_web(env, port)
        try:
            rows += asyncio.run(_measure(bench, web_url, key, stores, shopify.shop_url,
                                         str(shopify.info["token_response"]["access_token"]), CUSTOMERS,
                                         WooClient, woo_url, (ck, cs), sr, n, sr_n))
        finally:
            stop_process(web)
    return rows


async def _measure(bench: Bench, web_url: str, key: str, stores: dict[str, uuid.UUID], shop_url: str, token: str,
                   document: str, woo_client: Any, woo_url: str, woo_keys: tuple[str, str], sr: Any, n: int,
                   sr_n: int) -> list[Row]:
    rows: list[Row] = []
    graphql = f"{shop_url}/admin/api/2026-10/graphql.json"
    async with httpx.AsyncClient(timeout=30) as http, \
            httpx.AsyncClient(base_url=web_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as web:
        shopify_headers = {"X-Shopify-Access-Token": token, "Accept": "application/json"}
        found = (await http.post(graphql, json={"query": "{ customers(first: 60) { nodes { email } } }"},
                                 headers=shopify_headers)).json()
        shopify_emails = [c["email"] for c in found["data"]["customers"]["nodes"] if c["email"]]
        woo = woo_client(woo_url, *woo_keys, http=http)
        woo_emails = [c["email"] for c in await woo.get("/customers", {"per_page": 60, "role": "all"}) if c["email"]]
        answer = (await http.post(f"{sr.oauth_base_url}/bench/app/token", json={
            "grant_type": "client_credentials", "client_id": SR_CLIENT_ID, "client_secret": SR_SECRET})).json()
        sr_headers = {"Authorization": f"Bearer {answer['access_token']}", "Accept": "application/json"}
        sr_api = sr.api_url_template.replace("{shop}", "bench")
        sr_page = (await http.get(f"{sr_api}/customers", params={"full": 1, "limit": 60, "page": 0},
                                  headers=sr_headers)).json()
        sr_emails = [c["email"] for c in sr_page["items"] if c.get("email")]
        misses: Counter[str] = Counter()

        def via(platform: str, emails: list[str]) -> Call:
            async def call(i: int) -> None:
                r = await web.post("/v1/lookups/find_customer",
                                   json={"store_id": str(stores[platform]), "email": emails[i % len(emails)]})
                if r.status_code != 200 or r.json().get("count", 0) < 1:
                    misses[f"{platform} {r.status_code}"] += 1
            return call

        async def shopify_direct(i: int) -> None:
            email = shopify_emails[i % len(shopify_emails)]
            r = await http.post(graphql, headers=shopify_headers, json={
                "query": document, "variables": {"first": 10, "query": f'email:"{email}"'}})
            r.raise_for_status()

        async def woo_direct(i: int) -> None:
            await woo.get("/customers", {"email": woo_emails[i % len(woo_emails)], "role": "all", "per_page": 10})

        async def sr_direct(i: int) -> None:
            r = await http.get(f"{sr_api}/customers", headers=sr_headers, params={
                "email": sr_emails[i % len(sr_emails)], "full": 1, "limit": 10, "page": 0})
            r.raise_for_status()

        for platform, direct, emails, count, spacing in (
                ("shopify", shopify_direct, shopify_emails, n, 0.0),
                ("woocommerce", woo_direct, woo_emails, n, 0.0),
                ("shoprenter", sr_direct, sr_emails, sr_n, 0.4)):
            bench.say(f"live {platform}: {count} find_customer by email through shopsync, each next to a direct call")
            direct_ms, via_ms = await _pairs(count, direct, via(platform, emails), spacing)
            d50, v50 = percentile(direct_ms, 50), percentile(via_ms, 50)
            overhead = v50 - d50
            rows.append(Row(NAME, f"live {platform} find_customer: shopsync overhead p50 (through shopsync {v50:.2f} "
                                  f"ms, p99 {percentile(via_ms, 99):.2f})", overhead, "ms",
                            f"direct p50 {d50:.2f} ms (p99 {percentile(direct_ms, 99):.2f})", v50 / d50,
                            f"overhead ≤ {TARGET_OVERHEAD:.0f} ms", overhead <= TARGET_OVERHEAD))
        if misses:
            bench.note(f"live look-ups that did not find their customer: {dict(misses)}")
    bench.note("live: the policies are api_only; through shopsync = HTTP to the web process, begin_lookup (key, rate, "
               "policy), the store's sealed credentials, a limiter slot (Shopify's look-up rate, WooCommerce's store "
               "rate, ShopRenter's shop rate), the platform call on a kept connection, the sync's mapping, the audit "
               "row; direct = the same platform request from this process on a kept connection")
    return rows


def run(bench: Bench) -> list[Row]:
    return _synced(bench) + _live(bench)
