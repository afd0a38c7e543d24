"""Organization API keys through the frontend RPCs (who may create, list and revoke them, what is kept of a key),
and the look-up functions' own refusals, as PostgREST would call them."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import psycopg
import pytest

from tests.conftest import as_role, new_user, personal_org
from tests.lookup_world import create_key, seed_store
from worker.lookups.keys import KEY_PATTERN

Conn = psycopg.Connection[dict[str, Any]]


def _error(conn: Conn, user: uuid.UUID, query: str, params: Any) -> str | None:
    try:
        with as_role(conn, "authenticated", user):
            conn.execute(query, params)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def _everything(conn: Conn) -> str:
    """Every row of every table in both schemas, as text."""
    tables = conn.execute("select schemaname, tablename from pg_tables "
                          "where schemaname in ('shopsync', 'shopsync_private')").fetchall()
    return "\n".join(repr(conn.execute(f'select * from {t["schemaname"]}."{t["tablename"]}"').fetchall())
                     for t in tables)


def test_a_key_is_shown_once_and_only_its_hash_and_prefix_are_kept(conn: Conn) -> None:
    owner = new_user(conn)
    org = personal_org(conn, owner)
    store = seed_store(conn, org)
    made = create_key(conn, owner, org, name="phone agent", store_ids=[store], resources=["orders", "customers"],
                      requests_per_second=5, burst=7)
    key = made["key"]
    assert KEY_PATTERN.match(key) and made["prefix"] == key[:16]
    assert (made["name"], made["store_ids"], sorted(made["resources"]), made["requests_per_second"], made["burst"]) == \
        ("phone agent", [str(store)], ["customers", "orders"], 5, 7)
    stored = conn.execute("select * from shopsync_private.api_keys where id = %s", (made["key_id"],)).fetchone()
    assert stored["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in _everything(conn) and key[16:] not in _everything(conn)
    logged = conn.execute("select details from shopsync.activity_log where action = 'api_key.created'").fetchone()
    assert logged["details"]["prefix"] == made["prefix"]
    # two keys never share a secret or a prefix
    again = create_key(conn, owner, org)
    assert again["key"] != key and again["prefix"] != made["prefix"]
    assert sorted(again["resources"]) == ["customers", "orders", "products"]      # default: every resource

    with as_role(conn, "authenticated", owner):
        listed = conn.execute("select * from shopsync.list_api_keys(%s)", (org,)).fetchall()
    assert [(r["prefix"], r["status"]) for r in listed] == [(again["prefix"], "active"), (made["prefix"], "active")]
    assert not {"key", "key_hash"} & set(listed[0])
    with as_role(conn, "authenticated", owner):
        conn.execute("select shopsync.revoke_api_key(%s)", (made["key_id"],))
        listed = conn.execute("select key_id, status, revoked_at from shopsync.list_api_keys(%s)", (org,)).fetchall()
    assert {r["key_id"]: r["status"] for r in listed}[uuid.UUID(made["key_id"])] == "revoked"
    assert _error(conn, owner, "select shopsync.revoke_api_key(%s)", (made["key_id"],)) == "55000"


def test_who_may_manage_keys(conn: Conn) -> None:
    owner, admin, member, stranger = new_user(conn), new_user(conn), new_user(conn), new_user(conn)
    org = personal_org(conn, owner)
    conn.execute("insert into shopsync.organization_members (organization_id, user_id, role) "
                 "values (%s, %s, 'admin'), (%s, %s, 'member')", (org, admin, org, member))
    key = create_key(conn, admin, org, name="by an admin")          # admins may
    create = "select shopsync.create_api_key(%s, 'x')"
    assert _error(conn, member, create, (org,)) == "42501"
    assert _error(conn, stranger, create, (org,)) == "42501"
    assert _error(conn, member, "select * from shopsync.list_api_keys(%s)", (org,)) == "42501"
    assert _error(conn, member, "select shopsync.revoke_api_key(%s)", (key["key_id"],)) == "42501"
    # another organization's key is unknown, as a key that does not exist
    assert _error(conn, stranger, "select shopsync.revoke_api_key(%s)", (key["key_id"],)) == "P0002"
    assert _error(conn, stranger, "select shopsync.revoke_api_key(%s)", (uuid.uuid4(),)) == "P0002"
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("set role anon")
        try:
            conn.execute(create, (org,))
        finally:
            conn.execute("reset role")


@pytest.mark.parametrize(("args", "sqlstate"), [
    ({"p_name": ""}, "22023"),
    ({"p_name": "x" * 101}, "22023"),
    ({"p_resources": ["invoices"]}, "22023"),
    ({"p_resources": []}, "22023"),
    ({"p_expires_at": "2000-01-01T00:00:00Z"}, "22023"),
    ({"p_requests_per_second": 0}, "22023"),
    ({"p_requests_per_second": 5000}, "22023"),
    ({"p_burst": 0}, "22023"),
    ({"p_store_ids": []}, "22023"),
    ({"p_store_ids": ["00000000-0000-4000-8000-000000000000"]}, "P0002"),
    ({"p_store_ids": "theirs"}, "P0002"),
])
def test_bad_key_settings_are_refused(conn: Conn, args: dict[str, Any], sqlstate: str) -> None:
    owner, other = new_user(conn), new_user(conn)
    org = personal_org(conn, owner)
    if args.get("p_store_ids") == "theirs":
        args = {"p_store_ids": [seed_store(conn, personal_org(conn, other), "theirs.myshopify.com")]}
    full = {"p_organization_id": org, "p_name": "k", **args}
    placeholders = ", ".join(f"{k} => %({k})s" for k in full)
    assert _error(conn, owner, f"select shopsync.create_api_key({placeholders})", full) == sqlstate
    assert conn.execute("select count(*) as n from shopsync_private.api_keys").fetchone()["n"] == 0


def test_the_audit_has_no_column_for_what_was_asked(conn: Conn) -> None:
    columns = [r["column_name"] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = 'shopsync' "
        "and table_name = 'lookup_audit' order by ordinal_position")]
    assert columns == ["id", "organization_id", "store_id", "key_id", "key_prefix", "user_id", "interface", "lookup",
                       "resource", "policy", "outcome", "status", "result_count", "latency_ms", "occurred_at"]


def test_lookup_synced_refuses_what_it_does_not_know(conn: Conn) -> None:
    owner = new_user(conn)
    store = seed_store(conn, personal_org(conn, owner))
    for lookup, values in (("drop_everything", ["x"]), ("customers_by_email", []),
                           ("customers_by_email", [str(i) for i in range(11)]), ("customers_by_email", [None])):
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("select shopsync.lookup_synced(%s, %s, %s::text[])", (store, lookup, values))
    found = conn.execute("select shopsync.lookup_synced(%s, 'customers_by_email', array['ann.buyer@example.com'], "
                         "1000) as r", (store,)).fetchone()["r"]
    assert [c["id"] for c in found["customers"]] == ["101"]
    assert not {"raw", "organization_id", "email_normalized"} & set(found["customers"][0])
