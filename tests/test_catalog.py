"""The synced-resource catalog: a synced table added the documented way — one migration that creates it
and inserts its catalog entry — gets everything a synced table has, and a wrong entry stops migrate.

Everything here goes through the real migrator (``shopsync migrate``) on a copy of ``sql/`` with one
more migration, as a project adding a table would ship it.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import as_role, new_user, personal_org
from worker.migrate import migrate
from worker.paths import SQL_DIR

Conn = psycopg.Connection[dict[str, Any]]

ORDER_NOTES = """
create table shopsync.order_notes (
  store_id uuid not null references shopsync.stores (id) on delete cascade,
  id text not null,
  order_id text not null,
  organization_id uuid not null,
  author_email text,
  body text,
  source_updated_at timestamptz,
  deleted_at timestamptz,
  raw jsonb not null default '{}'::jsonb,
  synced_at timestamptz not null default now(),
  primary key (store_id, id)
);
insert into shopsync_private.synced_tables
  (table_name, resource, position, key_columns, version_column, soft_delete, reconcile, subject_link, subject_column,
   redaction, personal_columns, description)
values ('order_notes', 'orders', 33, '{store_id,id}', 'source_updated_at', true, true, 'order', 'order_id', 'scrub',
        '{author_email,body}', 'notes staff wrote on orders');
"""


def migrate_with(tmp_path: Path, dsn: str, name: str, text: str) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "migrations" / name).write_text(text)
    migrate(dsn, sql_dir=sql_dir, log=lambda _m: None)


def scalar(conn: Conn, query: str, params: Any = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def note(store: Any, org: Any, note_id: str, order_id: str, body: str, version: str) -> dict[str, Any]:
    return {"store_id": str(store), "id": note_id, "order_id": order_id, "organization_id": str(org),
            "author_email": "staff@example.test", "body": body, "source_updated_at": version, "deleted_at": None,
            "raw": {"id": note_id, "body": body, "email": "staff@example.test", "kind": "note"}}


def upsert(conn: Conn, rows: list[dict[str, Any]]) -> dict[str, int]:
    result: dict[str, int] = scalar(conn, "select shopsync.upsert_synced('order_notes', %s::jsonb)",
                                    (psycopg.types.json.Jsonb(rows),))
    return result


def test_a_table_added_by_migration_and_catalog_entry_gets_everything(tmp_path: Path, dsn: str, conn: Conn) -> None:
    migrate_with(tmp_path, dsn, "0100_order_notes.sql", ORDER_NOTES)
    owner_a, owner_b = new_user(conn), new_user(conn)
    org_a, org_b = personal_org(conn, owner_a), personal_org(conn, owner_b)
    store_a = scalar(conn, "select shopsync.upsert_store(%s, 'shopify', 'a.myshopify.com')", (org_a,))
    store_b = scalar(conn, "select shopsync.upsert_store(%s, 'shopify', 'b.myshopify.com')", (org_b,))
    conn.execute("insert into shopsync.customers (store_id, id, organization_id, email) "
                 "values (%s, 'c1', %s, 'ann@example.test')", (store_a, org_a))
    conn.execute("insert into shopsync.orders (store_id, id, organization_id, customer_id, email) "
                 "values (%s, 'o1', %s, 'c1', 'ann@example.test'), (%s, 'o2', %s, 'c9', 'bob@example.test')",
                 (store_a, org_a, store_a, org_a))

    # the staleness-guarded merge (compiled for the new table at migrate)
    assert upsert(conn, [note(store_a, org_a, "n1", "o1", "first", "2026-01-01T00:00:00Z"),
                         note(store_a, org_a, "n2", "o2", "other order", "2026-01-01T00:00:00Z")])["inserted"] == 2
    assert upsert(conn, [note(store_b, org_b, "n1", "x1", "tenant b", "2026-01-01T00:00:00Z")])["inserted"] == 1
    assert upsert(conn, [note(store_a, org_a, "n1", "o1", "older", "2025-12-31T00:00:00Z")])["skipped"] == 1
    assert upsert(conn, [note(store_a, org_a, "n1", "o1", "newer", "2026-01-02T00:00:00Z")])["updated"] == 1
    assert scalar(conn, "select body from shopsync.order_notes where store_id = %s and id = 'n1'", (store_a,)) == "newer"
    forged = note(store_a, org_b, "n3", "o1", "forged org", "2026-01-01T00:00:00Z")   # org comes from the store
    upsert(conn, [forged])
    assert scalar(conn, "select organization_id from shopsync.order_notes where id = 'n3'") == org_a

    # row level security: a member reads their organization's notes, nobody else's
    with as_role(conn, "authenticated", owner_a):
        seen = {(str(r["store_id"]), r["id"]) for r in conn.execute("select store_id, id from shopsync.order_notes")}
    assert seen == {(str(store_a), "n1"), (str(store_a), "n2"), (str(store_a), "n3")}
    with as_role(conn, "anon"), pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select * from shopsync.order_notes")

    # statistics count it (as the member, under RLS too)
    with as_role(conn, "authenticated", owner_a):
        counts = scalar(conn, "select record_counts from shopsync.store_sync_statistics where store_id = %s",
                        (store_a,))
    assert counts["order_notes"] == 3 and counts["orders"] == 2

    # reconciliation: its ids can be listed and soft-deleted, and a deleted note stays deleted for older data
    assert scalar(conn, "select shopsync.list_synced_ids('order_notes', %s)", (store_a,)) == ["n1", "n2", "n3"]
    assert scalar(conn, "select shopsync.mark_synced_deleted('order_notes', %s, '{n3}', '2026-01-05')",
                  (store_a,)) == 1
    assert scalar(conn, "select shopsync.list_synced_ids('order_notes', %s)", (store_a,)) == ["n1", "n2"]
    assert upsert(conn, [forged])["skipped"] == 1

    # GDPR: the export carries the subject's notes; the redaction scrubs them (and only theirs)
    export = gdpr(conn, store_a, "data_request", {"customer_id": "c1"})
    assert [n["id"] for n in export["order_notes"]] == ["n1", "n3"] and export["counts"]["order_notes"] == 2
    gdpr(conn, store_a, "customer_redact", {"customer_id": "c1"})
    n1 = conn.execute("select * from shopsync.order_notes where store_id = %s and id = 'n1'", (store_a,)).fetchone()
    assert n1 is not None and n1["author_email"] is None and n1["body"] is None
    assert "email" not in n1["raw"] and n1["raw"]["kind"] == "note"
    n2 = conn.execute("select * from shopsync.order_notes where store_id = %s and id = 'n2'", (store_a,)).fetchone()
    assert n2 is not None and n2["body"] == "other order"

    # the access policy of its resource: switching orders away from 'sync' removes the notes too
    with as_role(conn, "authenticated", owner_a):
        conn.execute("select shopsync.set_access_policy(%s, 'orders', 'api_only')", (store_a,))
    assert scalar(conn, "select count(*) from shopsync.order_notes where store_id = %s", (store_a,)) == 0
    assert scalar(conn, "select count(*) from shopsync.order_notes where store_id = %s", (store_b,)) == 1


def gdpr(conn: Conn, store: Any, request_type: str, subject: dict[str, Any]) -> dict[str, Any]:
    request = scalar(conn, "select request_id from shopsync.record_gdpr_request('shopify', %s, %s, %s, %s::jsonb)",
                     (store, request_type, f"test-{uuid.uuid4()}", psycopg.types.json.Jsonb(subject)))
    conn.execute(f"select shopsync.gdpr_{request_type}(%s)", (request,))
    result: dict[str, Any] = scalar(conn, "select result from shopsync.gdpr_requests where id = %s", (request,))
    return result


@pytest.mark.parametrize(("entry", "problem"), [
    ("('notes_x', 'orders', 40, '{store_id,id}', 'source_updated_at', false, '{}')", "no table shopsync.notes_x"),
    ("('bad_notes', 'orders', 40, '{store_id,note_id}', 'source_updated_at', false, '{}')",
     "must be the primary key"),
    ("('bad_notes', 'orders', 40, '{store_id,id}', 'body', false, '{}')", "must be a timestamptz column"),
    ("('bad_notes', 'orders', 40, '{store_id,id}', 'source_updated_at', true, '{}')",
     "soft_delete needs a deleted_at"),
    ("('bad_notes', 'orders', 40, '{store_id,id}', 'source_updated_at', false, '{phone}')", "no column phone"),
])
def test_a_wrong_catalog_entry_stops_migrate_with_the_reason(tmp_path: Path, dsn: str, conn: Conn, entry: str,
                                                             problem: str) -> None:
    migration = """
    create table shopsync.bad_notes (store_id uuid not null, id text not null, organization_id uuid not null,
                                     body text, source_updated_at timestamptz, raw jsonb not null default '{}',
                                     synced_at timestamptz not null default now(), primary key (store_id, id));
    insert into shopsync_private.synced_tables
      (table_name, resource, position, key_columns, version_column, soft_delete, personal_columns, description)
    values """ + entry[:-1] + ", 'bad');"
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=problem):
        migrate_with(tmp_path, dsn, "0100_bad_notes.sql", migration)
    # the functions phase rolled back: the database still works as before
    assert scalar(conn, "select count(*) from shopsync.synced_catalog()") == 8
