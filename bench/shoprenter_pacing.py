"""ShopRenter pacing: a full product sync of a 10,000-product sandbox shop that answers 429 past 3 requests
per second per app and shop (sliding one-second window), through the real handler and the database rate
limiter. Then two workers syncing two stores of the same shop at once (two organizations connected it):
together they must stay under the shop's limit too. Baseline: the 3 requests/s ShopRenter allows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import Bench, Row
from bench.rest_common import run_platform_sync, wire_rest_store
from bench.shopify_common import free_port
from sandbox.shoprenter import ShopRenterSandbox, SrDatasetSpec, serve_shoprenter_sandbox
from worker.config import load_settings
from worker.connectors.shoprenter import CONNECTOR
from worker.connectors.shoprenter.client import CREDENTIALS_KIND
from worker.connectors.shoprenter.settings import ShopRenterSettings
from worker.db.direct import DirectDatabase
from worker.runtime import build_registry
from worker.sealing import generate_key_spec

NAME = "shoprenter_pacing"
TITLE = "ShopRenter pacing: 3 requests/s per shop shared by all workers"
LIMIT = 3.0
TARGET_SHARE = 0.90
CLIENT_ID, SECRET, SHOP = "bench-sr", "bench-sr-secret", "benchshop"


def _used(sandbox: ShopRenterSandbox, since: int) -> tuple[int, float, int]:
    api = [r for r in sandbox.request_log[since:] if "/api/" in r.path]
    span = api[-1].time - api[0].time if len(api) > 1 else 0.0
    return len(api), span, sum(1 for r in sandbox.request_log[since:] if r.status == 429)


def run(bench: Bench) -> list[Row]:
    products = 1_000 if bench.quick else 10_000
    sandbox = ShopRenterSandbox(rate_limit=LIMIT)
    sandbox.add_app(CLIENT_ID, SECRET)
    sandbox.add_shop(SHOP, SrDatasetSpec(products=products, customers=10, orders=10))
    sandbox.mark_installed(SHOP, CLIENT_ID)
    dsn = bench.db()
    rows: list[Row] = []
    with serve_shoprenter_sandbox(sandbox, port=free_port()):
        core = load_settings(_env_file=None, database_url=dsn, sealing_keys=generate_key_spec("bench"),
                             log_level="WARNING")
        settings = ShopRenterSettings(_env_file=None, client_id=CLIENT_ID, client_secret=SECRET,  # type: ignore[call-arg]
                                      oauth_base_url=sandbox.oauth_base_url, api_base_url=sandbox.api_url_template)
        CONNECTOR._settings = settings
        stores = [wire_rest_store(dsn, core, "shoprenter", SHOP, CREDENTIALS_KIND,
                                  {"access_token": sandbox.issue_token(SHOP, CLIENT_ID)["access_token"],
                                   "webhook_token": "bench"},
                                  access_expires_at=datetime.now(UTC) + timedelta(hours=1)) for _ in range(3)]
        with __import__("psycopg").connect(dsn, autocommit=True) as conn:
            for s in stores:
                conn.execute("select shopsync.set_store_status(%s, 'active')", (s,))

        async def one(store: Any, worker: str) -> tuple[dict[str, Any], float]:
            db = await DirectDatabase.connect(dsn, listen=False)       # a worker process of its own
            try:
                return await run_platform_sync(db, core, build_registry(), "shoprenter", store, "products",
                                               worker_id=worker)
            finally:
                await db.close()

        bench.say(f"{products:,} products, one worker, limit {LIMIT:g}/s")
        start = len(sandbox.request_log)
        result, seconds = asyncio.run(one(stores[0], "w1"))
        n, span, refused = _used(sandbox, start)
        rate = (n - 1) / span if span else 0.0
        bench.note(f"ShopRenter: {n} API requests (pages of {settings.page_size}) in {seconds:.1f} s; client pace "
                   f"{settings.requests_per_second}/s; {result.get('inserted', 0):,} rows written (a product "
                   "row and its variant row each)")
        rows += [Row(NAME, "one worker: requests/s used", rate, "req/s", f"allowed {LIMIT:g}/s", rate / LIMIT,
                     f"≥ {TARGET_SHARE:.0%} and 0 × 429", rate / LIMIT >= TARGET_SHARE and refused == 0),
                 Row(NAME, "one worker: 429 responses", refused, "", "", None, "0", refused == 0)]

        bench.say("two workers, two stores of the same shop, at once")
        start = len(sandbox.request_log)

        async def both() -> list[tuple[dict[str, Any], float]]:
            return list(await asyncio.gather(one(stores[1], "w2"), one(stores[2], "w3")))

        asyncio.run(both())
        n, span, refused = _used(sandbox, start)
        rate = (n - 1) / span if span else 0.0
        rows += [Row(NAME, "two workers together: requests/s used", rate, "req/s", f"allowed {LIMIT:g}/s",
                     rate / LIMIT, f"≥ {TARGET_SHARE:.0%}, ≤ 100% and 0 × 429",
                     TARGET_SHARE <= rate / LIMIT <= 1.0 and refused == 0),
                 Row(NAME, "two workers together: 429 responses", refused, "", "", None, "0", refused == 0)]
    return rows
