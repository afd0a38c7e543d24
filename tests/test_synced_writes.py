"""The canonical write path, on both database paths: batched upserts with the staleness guard."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.conftest import new_user, personal_org
from tests.standins.server import make_jwt, serve_supabase
from worker.config import load_settings
from worker.db import Database, open_database
from worker.errors import DatabaseError

JWT_SECRET = "synced-writes-test-secret-0123456789abcdef"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["direct", "supabase"])
def settings_env(request: pytest.FixtureRequest, dsn: str) -> Iterator[dict[str, Any]]:
    if request.param == "direct":
        yield {"database_url": dsn}
        return
    with serve_supabase(dsn, JWT_SECRET) as url:
        yield {"db_mode": "supabase", "supabase_url": url,
               "supabase_service_role_key": make_jwt(JWT_SECRET, "service_role")}


@pytest.fixture
async def db(settings_env: dict[str, Any]) -> AsyncIterator[Database]:
    database = await open_database(load_settings(**settings_env), listen=False)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def store(conn: psycopg.Connection[Any]) -> tuple[str, str]:
    org = personal_org(conn, new_user(conn))
    sid = conn.execute("select shopsync.upsert_store(%s, 'shopify', 'w.myshopify.com') as id", (org,)).fetchone()["id"]
    return str(sid), str(org)


def product(store: tuple[str, str], pid: str, title: str, updated: datetime) -> dict[str, Any]:
    return {"store_id": store[0], "id": pid, "organization_id": store[1], "title": title, "handle": title.lower(),
            "status": "ACTIVE", "vendor": "Acme", "product_type": "Shoe", "tags": ["a", "b"],
            "source_created_at": T0, "source_updated_at": updated, "deleted_at": None,
            "raw": {"id": pid, "title": title, "nested": {"x": [1, 2]}}}


def titles(conn: psycopg.Connection[Any]) -> dict[str, str]:
    return {r["id"]: r["title"] for r in conn.execute("select id, title from shopsync.products")}


async def test_inserts_then_updates_with_counts(db: Database, conn: psycopg.Connection[Any],
                                                store: tuple[str, str]) -> None:
    rows = [product(store, str(i), f"P{i}", T0) for i in range(50)]
    assert await db.write_synced("products", rows) == {"inserted": 50, "updated": 0, "skipped": 0}
    newer = [product(store, str(i), f"New{i}", T0 + timedelta(minutes=1)) for i in range(10)]
    assert await db.write_synced("products", newer) == {"inserted": 0, "updated": 10, "skipped": 0}
    got = titles(conn)
    assert got["3"] == "New3" and got["30"] == "P30" and len(got) == 50
    row = conn.execute("select tags, raw from shopsync.products where id = '3'").fetchone()
    assert row["tags"] == ["a", "b"] and row["raw"]["nested"] == {"x": [1, 2]}


async def test_older_data_never_overwrites_newer(db: Database, conn: psycopg.Connection[Any],
                                                 store: tuple[str, str]) -> None:
    await db.write_synced("products", [product(store, "1", "Current", T0 + timedelta(hours=1))])
    result = await db.write_synced("products", [product(store, "1", "Stale", T0)])
    assert result == {"inserted": 0, "updated": 0, "skipped": 1}
    assert titles(conn)["1"] == "Current"


async def test_a_tie_applies_the_later_delivery(db: Database, conn: psycopg.Connection[Any],
                                                store: tuple[str, str]) -> None:
    await db.write_synced("products", [product(store, "1", "First", T0)])
    assert (await db.write_synced("products", [product(store, "1", "Second", T0)]))["updated"] == 1
    assert titles(conn)["1"] == "Second"


async def test_numeric_and_composite_keys(db: Database, conn: psycopg.Connection[Any],
                                          store: tuple[str, str]) -> None:
    level = {"store_id": store[0], "inventory_item_id": "ii1", "location_id": "loc1", "organization_id": store[1],
             "available": 5, "on_hand": 7, "source_updated_at": T0, "deleted_at": None, "raw": {}}
    await db.write_synced("inventory_levels", [level])
    await db.write_synced("inventory_levels", [level | {"available": 3, "source_updated_at": T0 + timedelta(1)}])
    assert conn.execute("select available from shopsync.inventory_levels").fetchone()["available"] == 3
    variant = {"store_id": store[0], "id": "v1", "product_id": "1", "organization_id": store[1], "title": "Red",
               "sku": "R-1", "barcode": None, "price": Decimal("19.99"), "compare_at_price": None, "currency": "EUR",
               "position": 1, "inventory_item_id": "ii1", "inventory_quantity": 3, "source_updated_at": T0,
               "deleted_at": None, "raw": {"id": "v1"}}
    await db.write_synced("product_variants", [variant])
    assert conn.execute("select price from shopsync.product_variants").fetchone()["price"] == Decimal("19.99")


async def test_bad_input_is_refused_and_writes_nothing(db: Database, conn: psycopg.Connection[Any],
                                                       store: tuple[str, str]) -> None:
    with pytest.raises(DatabaseError) as bad_table:
        await db.write_synced("jobs", [{"id": 1}])
    assert bad_table.value.sqlstate in ("22023", "42P01")
    missing_raw = product(store, "9", "NoRaw", T0) | {"raw": None}
    with pytest.raises(DatabaseError) as not_null:
        await db.write_synced("products", [product(store, "8", "Fine", T0), missing_raw])
    assert not_null.value.sqlstate == "23502"
    assert titles(conn) == {}            # the whole batch is one statement: all or nothing


async def test_soft_delete_is_guarded_by_version(conn: psycopg.Connection[Any], store: tuple[str, str],
                                                 db: Database) -> None:
    await db.write_synced("products", [product(store, "1", "Old", T0), product(store, "2", "Recreated",
                                                                             T0 + timedelta(days=2))])
    n = conn.execute("select shopsync.mark_synced_deleted('products', %s, array['1','2'], %s) as n",
                     (store[0], T0 + timedelta(days=1))).fetchone()["n"]
    assert n == 1
    rows = {r["id"]: r["deleted_at"] for r in conn.execute("select id, deleted_at from shopsync.products")}
    assert rows["1"] is not None and rows["2"] is None
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("select shopsync.mark_synced_deleted('order_line_items', %s, array['1'])", (store[0],))


async def test_a_batch_may_repeat_an_object_and_the_newest_wins(db: Database, conn: psycopg.Connection[Any],
                                                                 store: tuple[str, str]) -> None:
    rows = [product(store, "1", "Newer", T0 + timedelta(hours=1)), product(store, "1", "Older", T0),
            product(store, "2", "Two", T0)]
    assert await db.write_synced("products", rows) == {"inserted": 2, "updated": 0, "skipped": 1}
    assert titles(conn) == {"1": "Newer", "2": "Two"}


async def test_organization_always_comes_from_the_store(db: Database, conn: psycopg.Connection[Any],
                                                        store: tuple[str, str]) -> None:
    other_org = personal_org(conn, new_user(conn))
    await db.write_synced("products", [product(store, "1", "P", T0) | {"organization_id": str(other_org)}])
    org = conn.execute("select organization_id from shopsync.products").fetchone()["organization_id"]
    assert str(org) == store[1]


async def test_an_older_page_does_not_revive_a_deleted_row(db: Database, conn: psycopg.Connection[Any],
                                                           store: tuple[str, str]) -> None:
    await db.write_synced("products", [product(store, "1", "P", T0)])
    conn.execute("select shopsync.mark_synced_deleted('products', %s, array['1'], %s)", (store[0], T0 + timedelta(1)))
    assert (await db.write_synced("products", [product(store, "1", "P", T0)]))["skipped"] == 1
    assert conn.execute("select deleted_at from shopsync.products").fetchone()["deleted_at"] is not None


async def test_a_write_for_a_job_no_longer_held_is_refused(db: Database, conn: psycopg.Connection[Any],
                                                           store: tuple[str, str]) -> None:
    job = conn.execute("select shopsync.enqueue_job('shopify.sync', p_store_id => %s, p_resource => 'products') as id",
                       (store[0],)).fetchone()["id"]
    conn.execute("select * from shopsync.claim_jobs('w1', 1)")
    ok = await db.write_synced("products", [product(store, "1", "Held", T0)], job_id=job, worker_id="w1")
    assert ok["inserted"] == 1
    with pytest.raises(DatabaseError) as intruder:
        await db.write_synced("products", [product(store, "2", "Other", T0)], job_id=job, worker_id="w2")
    assert intruder.value.sqlstate == "55000"
    conn.execute("select shopsync.cancel_job(%s)", (job,))
    with pytest.raises(DatabaseError) as cancelled:
        await db.write_synced("products", [product(store, "1", "Late", T0 + timedelta(1))], job_id=job, worker_id="w1")
    assert cancelled.value.sqlstate == "55000"
    assert titles(conn) == {"1": "Held"}


async def test_a_redacted_row_stays_redacted(db: Database, conn: psycopg.Connection[Any],
                                             store: tuple[str, str]) -> None:
    def order(email: str | None, updated: datetime) -> dict[str, Any]:
        return {"store_id": store[0], "id": "o1", "organization_id": store[1], "email": email,
                "source_updated_at": updated, "redacted_at": None, "raw": {"email": email}, "total_refunded": 0,
                "refunds_count": 0, "tags": []}

    await db.write_synced("orders", [order("a@example.com", T0)])
    conn.execute("update shopsync.orders set email = null, raw = '{}', redacted_at = now()")
    result = await db.write_synced("orders", [order("a@example.com", T0 + timedelta(days=1))])
    assert result == {"inserted": 0, "updated": 0, "skipped": 1}
    row = conn.execute("select email, raw, redacted_at from shopsync.orders").fetchone()
    assert row["email"] is None and row["raw"] == {} and row["redacted_at"] is not None


async def test_kept_columns_survive_a_source_that_does_not_send_them(db: Database, conn: psycopg.Connection[Any],
                                                                     store: tuple[str, str]) -> None:
    level = {"store_id": store[0], "inventory_item_id": "ii1", "location_id": "loc1", "organization_id": store[1],
             "available": 5, "on_hand": 7, "source_updated_at": T0, "deleted_at": None, "raw": {}}
    await db.write_synced("inventory_levels", [level])
    webhook = level | {"available": 4, "on_hand": None, "source_updated_at": T0 + timedelta(1)}
    assert (await db.write_synced("inventory_levels", [webhook], keep=["on_hand"]))["updated"] == 1
    row = conn.execute("select available, on_hand from shopsync.inventory_levels").fetchone()
    assert (row["available"], row["on_hand"]) == (4, 7)
    new = webhook | {"location_id": "loc2"}                     # a new row simply takes what was sent
    await db.write_synced("inventory_levels", [new], keep=["on_hand"])
    assert conn.execute("select on_hand from shopsync.inventory_levels where location_id = 'loc2'"
                        ).fetchone()["on_hand"] is None


async def test_an_unchanged_row_is_not_rewritten(db: Database, conn: psycopg.Connection[Any],
                                                 store: tuple[str, str]) -> None:
    await db.write_synced("products", [product(store, "1", "Same", T0)])
    before = conn.execute("select synced_at, xmin::text as x from shopsync.products").fetchone()
    result = await db.write_synced("products", [product(store, "1", "Same", T0)])
    assert result == {"inserted": 0, "updated": 0, "skipped": 1}
    after = conn.execute("select synced_at, xmin::text as x from shopsync.products").fetchone()
    assert after == before                                   # no new row version: no WAL, no Realtime event


async def test_a_fresh_write_inserts_directly_and_falls_back_to_the_merge(db: Database, conn: psycopg.Connection[Any],
                                                                         store: tuple[str, str]) -> None:
    rows = [product(store, str(i), f"P{i}", T0) for i in range(3)]
    assert await db.write_synced("products", rows, fresh=True) == {"inserted": 3, "updated": 0, "skipped": 0}
    # the same keys again (a resumed full sync): the guarded merge decides, nothing fails
    again = [product(store, "2", "Newer", T0 + timedelta(1)), product(store, "3", "New", T0)]
    assert await db.write_synced("products", again, fresh=True) == {"inserted": 1, "updated": 1, "skipped": 0}
    assert titles(conn) == {"0": "P0", "1": "P1", "2": "Newer", "3": "New"}
    # a row claiming another organization never lands as such, fresh or not
    stray = product(store, "4", "Stray", T0) | {"organization_id": str(personal_org(conn, new_user(conn)))}
    await db.write_synced("products", [stray], fresh=True)
    assert conn.execute("select organization_id::text as o from shopsync.products where id = '4'").fetchone()["o"] \
        == store[1]


@pytest.mark.parametrize("fresh", [True, False])
async def test_times_and_arrays_land_as_given_whatever_their_zone(db: Database, conn: psycopg.Connection[Any],
                                                                 store: tuple[str, str], fresh: bool) -> None:
    plus2 = timezone(timedelta(hours=2))
    same_instant = datetime(2026, 1, 1, 2, 0, 0, 123456, tzinfo=plus2)          # equal to T0 + 123456 µs
    rows = [product(store, "a", "A", T0) | {"tags": [], "source_created_at": T0.replace(microsecond=123456)},
            product(store, "b", "B", T0) | {"tags": ["x", "y"], "source_created_at": same_instant},
            product(store, "c", "C", datetime(2026, 3, 29, 1, 30, tzinfo=plus2)) | {"source_created_at": None}]
    assert (await db.write_synced("products", rows, fresh=fresh))["inserted"] == 3
    found = {r["id"]: r for r in conn.execute("select id, tags, source_created_at, source_updated_at "
                                              "from shopsync.products")}
    assert found["a"]["tags"] == [] and found["b"]["tags"] == ["x", "y"]
    assert found["a"]["source_created_at"] == found["b"]["source_created_at"] == same_instant
    assert found["c"]["source_created_at"] is None
    assert found["c"]["source_updated_at"] == datetime(2026, 3, 28, 23, 30, tzinfo=UTC)


def test_json_merges_follow_the_tables_columns(conn: psycopg.Connection[Any], store: tuple[str, str]) -> None:
    # every synced table has its compiled JSON merge, and regenerating them (as every migration does)
    # picks up a column added since; all inside one rolled-back transaction
    names = {r["proname"] for r in conn.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
        "where n.nspname = 'shopsync_private' and p.proname like 'merge\\_json\\_%'")}
    assert names == {f"merge_json_{t}" for t in ("inventory_locations", "products", "product_variants",
                                                 "inventory_levels", "customers", "orders", "order_line_items",
                                                 "order_fulfillments")}
    row = {"store_id": store[0], "id": "p1", "organization_id": store[1], "title": "T", "tags": [],
           "source_updated_at": T0.isoformat(), "raw": {}, "season": "winter"}
    with conn.transaction(force_rollback=True):
        conn.execute("alter table shopsync.products add column season text")
        conn.execute("select shopsync_private.define_row_mergers()")
        result = conn.execute("select shopsync.upsert_synced('products', %s) as r",
                              (psycopg.types.json.Jsonb([row]),)).fetchone()["r"]
        assert result == {"inserted": 1, "updated": 0, "skipped": 0}
        assert conn.execute("select season from shopsync.products where id = 'p1'").fetchone()["season"] == "winter"
    assert conn.execute("select count(*) as n from information_schema.columns where table_schema = 'shopsync' "
                        "and table_name = 'products' and column_name = 'season'").fetchone()["n"] == 0
