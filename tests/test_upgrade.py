"""Upgrading a database of the previous release (0.1.0) to this code loses nothing and keeps working.

``tests/fixtures/release_0_1_0/`` holds that release's ``sql/`` and a data dump of a real ``make dev`` run at
that release (three stores synced from the sandboxes, one access policy changed, a queued GDPR
redaction) with the sealing key it used. The test builds the old schema with the real migrator, loads
the dump, migrates to the current code, compares every row, then syncs, applies a webhook and runs the
queued GDPR job on the upgraded database.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from sandbox import shoprenter as sr
from sandbox.serving import serve_app
from sandbox.shopify import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.platform_world import AppWorld, free_port
from worker.config import Settings
from worker.connectors.shopify import CONNECTOR as SHOPIFY
from worker.connectors.shopify.settings import ShopifySettings
from worker.connectors.shoprenter import CONNECTOR as SHOPRENTER
from worker.connectors.shoprenter.settings import ShopRenterSettings
from worker.db.direct import DirectDatabase
from worker.dev.localpg import LocalPostgres
from worker.migrate import migrate, migration_files
from worker.runtime import build_registry
from worker.web.app import create_app

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "release_0_1_0"
SHOPIFY_STORE = "fad7a0f0-0428-452e-9656-45bf3d4009f7"
SHOPRENTER_STORE = "494c13a8-459a-4a96-a7ca-e8a9e3f4727d"
WOO_STORE = "536a46c0-63cb-4b9d-b746-962f449c4781"
Conn = psycopg.Connection[dict[str, Any]]


def snapshot(conn: Conn) -> dict[str, list[dict[str, Any]]]:
    """Every row of every shopsync table (migration bookkeeping aside), in a stable order, as JSON."""
    tables = conn.execute("select n.nspname as schema, c.relname as name from pg_class c "
                          "join pg_namespace n on n.oid = c.relnamespace "
                          "where n.nspname in ('auth', 'shopsync', 'shopsync_private') and c.relkind = 'r' "
                          "and c.relname not in ('schema_migrations', 'maintenance_runs')").fetchall()
    rows: dict[str, list[dict[str, Any]]] = {}
    for t in tables:
        query = sql.SQL("select to_jsonb(t) as row from {}.{} t").format(sql.Identifier(t["schema"]),
                                                                       sql.Identifier(t["name"]))
        found = [r["row"] for r in conn.execute(query)]
        rows[f"{t['schema']}.{t['name']}"] = sorted(found, key=lambda r: json.dumps(r, sort_keys=True))
    return rows


@pytest.fixture
def old_database(local_pg: LocalPostgres) -> Iterator[str]:
    name = f"upgrade_{uuid.uuid4().hex[:8]}"
    local_pg.create_database(name)
    dsn = local_pg.dsn(name)
    migrate(dsn, sql_dir=FIXTURE / "sql", log=lambda _m: None)
    dump = gzip.decompress((FIXTURE / "data.sql.gz").read_bytes()).decode()
    statements = "\n".join(line for line in dump.splitlines() if not line.startswith("\\"))   # psql meta-commands
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("delete from shopsync_private.settings")       # the dump carries the release's own rows
        conn.execute(statements)
    try:
        yield dsn
    finally:
        with psycopg.connect(local_pg.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def test_upgrading_the_previous_release_loses_nothing(old_database: str) -> None:
    with psycopg.connect(old_database, autocommit=True, row_factory=dict_row) as conn:
        before = snapshot(conn)
        old_policies = {(str(r["store_id"]), resource): r[f"{resource}_policy"]
                        for r in conn.execute("select * from shopsync.store_sync_config")
                        for resource in ("products", "customers", "orders")}
    assert len(before["shopsync.orders"]) == 90 and ("536a46c0-63cb-4b9d-b746-962f449c4781", "customers") in old_policies

    applied = migrate(old_database, log=lambda _m: None)
    shipped = {f.name for f in migration_files("migrations", FIXTURE / "sql")}
    assert applied == [f.name for f in migration_files() if f.name not in shipped] and applied

    with psycopg.connect(old_database, autocommit=True, row_factory=dict_row) as conn:
        after = snapshot(conn)
        for table, rows in before.items():
            assert table in after, f"{table} is gone"
            # compare on the columns the old release had (new columns may have been added)
            old_columns = set(rows[0]) if rows else set()
            if table == "shopsync.store_sync_config":   # its policy columns moved to store_access_policies
                old_columns -= {"products_policy", "customers_policy", "orders_policy"}
            after_rows = after[table]
            if table == "shopsync_private.settings":     # later releases add retention keys (events); old ones stay
                old_values = {r["key"]: r["value"] for r in rows}
                after_rows = [{**r, "value": {k: v for k, v in r["value"].items() if k in old_values.get(r["key"], {})}}
                              if isinstance(r["value"], dict) and isinstance(old_values.get(r["key"]), dict) else r
                              for r in after_rows]
            projected = sorted(({k: r[k] for k in old_columns} for r in after_rows),
                               key=lambda r: json.dumps(r, sort_keys=True))
            expected = sorted(({k: r[k] for k in old_columns} for r in rows), key=lambda r: json.dumps(r, sort_keys=True))
            assert projected == expected, f"{table} changed"
        new_policies = {(str(store), resource): conn.execute("select shopsync_private.store_policy(%s, %s) as p",
                                                             (store, resource)).fetchone()["p"]  # type: ignore[index]
                        for store, resource in old_policies}
        assert new_policies == old_policies
        assert old_policies[(WOO_STORE, "customers")] == "api_only"
        assert migrate(old_database, log=lambda _m: None) == []      # and migrating again is a no-op


@pytest.fixture
async def upgraded(old_database: str, conn: Conn, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AppWorld]:
    migrate(old_database, log=lambda _m: None)
    # the sandbox shop make dev connected at that release: the same seed, so the same catalog
    shoprenter, _, shop = sr.demo_shoprenter_sandbox(spec=sr.SrDatasetSpec(products=30, customers=15, orders=25))
    with sr.serve_shoprenter_sandbox(shoprenter) as sr_url:
        port = free_port()
        web_url = f"http://127.0.0.1:{port}"
        core = Settings(_env_file=None, database_url=old_database,  # type: ignore[call-arg]
                        sealing_keys=(FIXTURE / "sealing.key").read_text().strip(), public_url=web_url,
                        local_dev=True, worker_concurrency=8)
        monkeypatch.setattr(SHOPIFY, "_settings", ShopifySettings(  # type: ignore[call-arg]
            _env_file=None, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET))
        monkeypatch.setattr(SHOPRENTER, "_settings", ShopRenterSettings(  # type: ignore[call-arg]
            _env_file=None, client_id=sr.DEMO_CLIENT_ID, client_secret=sr.DEMO_CLIENT_SECRET,
            oauth_base_url=f"{sr_url}/oauth", api_base_url=f"{sr_url}/shops/{{shop}}/api"))
        db = await DirectDatabase.connect(old_database, listen=True)
        with psycopg.connect(old_database, autocommit=True, row_factory=dict_row) as upgraded_conn:
            try:
                with serve_app(create_app(core), port=port, name="shopsync-web"):
                    jobs = build_registry()
                    world = AppWorld(web_url=web_url, core=core, db=db, conn=upgraded_conn, registry=jobs)
                    world.shoprenter_shop = shop     # type: ignore[attr-defined]
                    yield world
            finally:
                await db.close()


async def test_the_upgraded_database_syncs_applies_webhooks_and_runs_gdpr(upgraded: AppWorld) -> None:
    w = upgraded
    shop: sr.SrShop = w.shoprenter_shop             # type: ignore[attr-defined]
    async with w.worker():
        # the GDPR redaction queued before the upgrade runs on the new schema
        await w.until(lambda: w.jobs("gdpr.process")[0]["state"] == "succeeded", what="the queued GDPR job")
        assert w.scalar("select count(*) from shopsync.customers where store_id = %s and id = '7000000000001'",
                        (SHOPIFY_STORE,)) == 0
        assert w.scalar("select count(*) from shopsync.orders where store_id = %s and redacted_at is not null",
                        (SHOPIFY_STORE,)) > 0

        # a signed Shopify delivery for a store connected at the old release is applied
        body = json.dumps({"id": 7000000000002, "email": "ines@example.com", "first_name": "Inès",
                           "last_name": "Müller", "created_at": "2026-01-01T00:00:00Z",
                           "updated_at": "2030-01-01T00:00:00Z"}).encode()
        signature = base64.b64encode(hmac.new(DEMO_CLIENT_SECRET.encode(), body, hashlib.sha256).digest()).decode()
        async with httpx.AsyncClient(base_url=w.web_url) as web:
            answer = await web.post("/shopify/webhooks", content=body, headers={
                "X-Shopify-Topic": "customers/update", "X-Shopify-Hmac-Sha256": signature,
                "X-Shopify-Shop-Domain": "demo.myshopify.com", "X-Shopify-Webhook-Id": "after-upgrade-1"})
        assert answer.status_code == 200 and answer.json()["status"] == "accepted"
        await w.until(lambda: w.scalar("select first_name from shopsync.customers where store_id = %s and "
                                       "id = '7000000000002'", (SHOPIFY_STORE,)) == "Inès", what="the webhook")

        # the ShopRenter store syncs again (its stored token is refused by the new sandbox and renewed)
        shop.update_product(shop.product_ids()[0], name="Renamed after the upgrade")
        w.conn.execute("select shopsync.request_sync(%s, array['products'], 'full')", (SHOPRENTER_STORE,))
        await w.until(lambda: w.scalar("select count(*) from shopsync.sync_runs where store_id = %s and mode = 'full' "
                                       "and status = 'succeeded' and started_at > now() - interval '5 minutes'",
                                       (SHOPRENTER_STORE,)) == 1, what="the ShopRenter sync")
        await asyncio.sleep(0)
    assert w.scalar("select count(*) from shopsync.products where store_id = %s", (SHOPRENTER_STORE,)) == 30
    assert w.scalar("select count(*) from shopsync.products where store_id = %s and title = %s",
                    (SHOPRENTER_STORE, "Renamed after the upgrade")) == 1
