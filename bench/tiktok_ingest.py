"""TikTok Shop ingest: a full sync of a sandbox shop (products with 1–3 SKUs, stock per warehouse, orders with their
line items) through the real handler — signed requests over HTTP, time windows split under the search cap, page
tokens, mapping, guarded writes — against plain COPY of the same rows in the same run. The sandbox runs in its own
process (``python -m sandbox.tiktok --json``); pacing off (TikTok's limit is per shop and unpublished: this
measures shopsync, not the limit).

shopsync's own part — what the project's ingest target is defined on (for Shopify: the export ready → the last
row written) — is measured by syncing the same shop again into a fresh database with every answer ready: the
first run records each answer's bytes, the second gets them at once from an httpx transport (everything else —
signing, the client, parsing, mapping, the writes — as in the first). The whole path is reported, not gated."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import httpx
import psycopg

from bench.common import Bench, Row
from bench.rest_common import JsonSandbox, run_platform_sync
from bench.shopify_common import free_port, table_counts
from bench.shopify_ingest import copy_baseline
from worker.config import load_settings
from worker.connectors.tiktok import CONNECTOR
from worker.connectors.tiktok import connector as tiktok_connector
from worker.connectors.tiktok.oauth import TokenSet
from worker.connectors.tiktok.settings import TikTokSettings
from worker.connectors.tiktok.tokens import save_tokens
from worker.db.direct import DirectDatabase
from worker.runtime import build_registry
from worker.sealing import Sealer, generate_key_spec

NAME = "tiktok_ingest"
TITLE = "TikTok Shop ingest: full sync vs plain COPY of the same rows"
TARGET_SHARE = 0.40
TABLES = ("products", "product_variants", "inventory_locations", "inventory_levels", "orders", "order_line_items")


Key = tuple[str, str, str]


def _key(request: httpx.Request) -> Key:
    # the page token tells pages of one search apart (each resource here is one time window: ≤ the cap)
    return request.method, request.url.path, request.url.params.get("page_token", "")


class _Recording(httpx.AsyncBaseTransport):
    """The real transport, keeping every answer's status and bytes."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.answers: dict[Key, tuple[int, bytes]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.answers[_key(request)] = (response.status_code, body)
        return httpx.Response(response.status_code, headers=response.headers, content=body)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Ready(httpx.AsyncBaseTransport):
    """Every answer at once, from a recording."""

    def __init__(self, answers: dict[Key, tuple[int, bytes]]) -> None:
        self.answers = answers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        status, body = self.answers[_key(request)]
        return httpx.Response(status, headers={"content-type": "application/json"}, content=body)


def _through(transport: httpx.AsyncBaseTransport) -> Any:
    """``httpx`` as the connector module sees it, its clients sending through ``transport``."""
    return SimpleNamespace(**{**vars(httpx), "AsyncClient": lambda **kw: httpx.AsyncClient(transport=transport, **kw)})


async def _sync_all(dsn: str, core: Any, store: UUID) -> dict[str, tuple[dict[str, Any], float]]:
    db = await DirectDatabase.connect(dsn, listen=False)
    registry = build_registry()
    try:
        return {r: await run_platform_sync(db, core, registry, "tiktok", store, r) for r in ("products", "orders")}
    finally:
        await db.close()


def _wire(dsn: str, core: Any, info: dict[str, Any]) -> UUID:
    with psycopg.connect(dsn, autocommit=True) as conn:
        user = conn.execute("insert into auth.users (id, email) values (gen_random_uuid(), 'tt@bench.test') "
                            "returning id").fetchone()
        assert user is not None
        org = conn.execute("select organization_id from shopsync.organization_members where user_id = %s",
                           (user[0],)).fetchone()
        assert org is not None
        row = conn.execute("select shopsync.upsert_store(%s, 'tiktok', %s, null, 'active', %s, %s)",
                           (org[0], info["shop_id"], info["shop_id"],
                            json.dumps({"cipher": info["shop_cipher"], "authorization_shops": [info["shop_id"]]}))
                           ).fetchone()
        assert row is not None
        store = UUID(str(row[0]))

    async def save() -> None:
        db = await DirectDatabase.connect(dsn, listen=False)
        try:
            await save_tokens(db, Sealer.from_settings(core), store, TokenSet.from_answer(info["tokens"]))
        finally:
            await db.close()

    asyncio.run(save())
    return store


def run(bench: Bench) -> list[Row]:
    products, orders = (1_000, 1_000) if bench.quick else (10_000, 10_000)
    dsn = bench.db()
    args = ["--port", str(free_port()), "--products", str(products), "--orders", str(orders), "--max-skus", "3",
            "--warehouses", "2"]
    with JsonSandbox("sandbox.tiktok", *args) as sandbox:
        info = sandbox.info
        core = load_settings(_env_file=None, database_url=dsn, sealing_keys=generate_key_spec("bench"),
                             log_level="WARNING")
        CONNECTOR._settings = TikTokSettings(  # type: ignore[call-arg]
            _env_file=None, app_key=info["app_key"], app_secret=info["app_secret"], service_id=info["service_id"],
            api_base_url=info["base_url"], auth_base_url=info["base_url"], requests_per_second=1000)
        store = _wire(dsn, core, info)
        bench.say(f"{products:,} products (1–3 SKUs, 2 warehouses) + {orders:,} orders: full sync")
        recording = _Recording()
        tiktok_connector.httpx = _through(recording)        # type: ignore[attr-defined]
        try:
            sandbox_cpu, own_cpu = sandbox.cpu_seconds(), time.process_time()
            results = asyncio.run(_sync_all(dsn, core, store))
            sandbox_cpu, own_cpu = sandbox.cpu_seconds() - sandbox_cpu, time.process_time() - own_cpu
            bench.say(f"the same sync into a fresh database, the {len(recording.answers)} answers ready")
            again = bench.db("ready")
            tiktok_connector.httpx = _through(_Ready(recording.answers))  # type: ignore[attr-defined]
            ready_cpu = time.process_time()
            ready = asyncio.run(_sync_all(again, core, _wire(again, core, info)))
            ready_cpu = time.process_time() - ready_cpu
        finally:
            tiktok_connector.httpx = httpx                  # type: ignore[attr-defined]
    counts = table_counts(dsn, TABLES)
    records = sum(counts.values())
    if table_counts(again, TABLES) != counts:
        raise RuntimeError("the sync with the answers ready wrote other rows than the first")
    seconds = sum(s for _, s in results.values())
    own_seconds = sum(s for _, s in ready.values())
    bench.say(f"{records:,} records in {seconds:.1f} s ({own_seconds:.1f} s with the answers ready); COPY baseline")
    copy_seconds = copy_baseline(dsn)
    copy_rate, rate, own_rate = records / copy_seconds, records / seconds, records / own_seconds
    bench.note("TikTok: records = " + ", ".join(f"{t} {c:,}" for t, c in counts.items()) +
               "; signed requests over HTTP, pages of 100, time windows split under the 10,000 cap, pacing off")
    bench.note(f"TikTok: CPU during the sync: shopsync {own_cpu:.1f} s, the sandbox (same 2 cores) {sandbox_cpu:.1f} s, "
               f"over {seconds:.1f} s of wall time; with the answers ready: shopsync {ready_cpu:.1f} s over "
               f"{own_seconds:.1f} s")
    rows = [Row(NAME, "plain COPY of the same rows (baseline)", copy_rate, "rec/s"),
            Row(NAME, "shopsync's own part: the same sync, answers ready (the target)", own_rate, "rec/s",
                f"plain COPY {copy_rate:,.0f} rec/s", own_rate / copy_rate, f"≥ {TARGET_SHARE:.0%} of COPY",
                own_rate / copy_rate >= TARGET_SHARE),
            Row(NAME, "full sync, whole path with the sandbox (reported)", rate, "rec/s",
                f"plain COPY {copy_rate:,.0f} rec/s", rate / copy_rate)]
    for resource, (result, secs) in results.items():
        rows.append(Row(NAME, f"{resource}: sync seconds, whole path ({result.get('inserted', 0):,} rows inserted)",
                        secs, "s"))
    return rows
