"""The frontend RPCs (called as `authenticated`, like supabase-js through PostgREST) and the SQL admin
helpers (called as the superuser and as `service_role`): results, side effects, activity log, and
every error code with a message that says what was wrong.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.conftest import as_role, new_user, personal_org, policy_of, set_policy

Conn = psycopg.Connection[Any]
RESOURCES = ("products", "customers", "orders")
FREQUENCIES = {"15min": dt.timedelta(minutes=15), "30min": dt.timedelta(minutes=30), "hourly": dt.timedelta(hours=1),
               "6hours": dt.timedelta(hours=6), "daily": dt.timedelta(days=1)}
MY_STORES_COLUMNS = {
    "store_id", "organization_id", "platform", "shop_key", "display_name", "status", "status_reason", "sync_status",
    "sync_started_at", "sync_completed_at", "last_sync_error", "enabled", "frequency", "next_sync_at",
    "products_policy", "customers_policy", "orders_policy", "created_at", "access_policies",
}


@dataclass(frozen=True)
class Team:
    owner: uuid.UUID
    admin: uuid.UUID
    member: uuid.UUID
    org: uuid.UUID
    store: uuid.UUID
    outsider: uuid.UUID      # owner of another organization
    other_org: uuid.UUID
    other_store: uuid.UUID


@pytest.fixture
def team(conn: Conn) -> Team:
    owner, admin, member, outsider = (new_user(conn) for _ in range(4))
    org, other_org = personal_org(conn, owner), personal_org(conn, outsider)
    conn.execute("insert into shopsync.organization_members (organization_id, user_id, role) "
                 "values (%s, %s, 'admin'), (%s, %s, 'member')", (org, admin, org, member))
    store = scalar(conn, "select shopsync.upsert_store(%s, 'shopify', 'a.myshopify.com')", (org,))
    other_store = scalar(conn, "select shopsync.upsert_store(%s, 'shopify', 'b.myshopify.com')", (other_org,))
    return Team(owner, admin, member, org, store, outsider, other_org, other_store)


# ---- helpers ------------------------------------------------------------------------------------

def scalar(conn: Conn, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def rpc(conn: Conn, user: uuid.UUID | None, query: str, params: Any = None) -> list[dict[str, Any]]:
    """Run one statement as an `authenticated` user (None: a token without a subject)."""
    with as_role(conn, "authenticated", user):
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def rpc_scalar(conn: Conn, user: uuid.UUID | None, query: str, params: Any = None) -> Any:
    rows = rpc(conn, user, query, params)
    assert len(rows) == 1
    return next(iter(rows[0].values()))


def rpc_error(conn: Conn, user: uuid.UUID | None, query: str, params: Any, sqlstate: str,
              role: str = "authenticated") -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        with as_role(conn, role, user):
            conn.execute(query, params)
    assert caught.value.sqlstate == sqlstate, f"expected {sqlstate}, got {caught.value.sqlstate}: {caught.value}"
    return caught.value


def message(exc: psycopg.Error) -> str:
    return exc.diag.message_primary or ""


@contextmanager
def admin_session(conn: Conn, who: str) -> Iterator[None]:
    """A transaction as the superuser or as `service_role` (the worker's role on Supabase)."""
    if who == "service_role":
        with as_role(conn, "service_role"):
            yield
    else:
        with conn.transaction():
            yield


def admin_error(conn: Conn, who: str, query: str, params: Any, sqlstate: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        with admin_session(conn, who):
            conn.execute(query, params)
    assert caught.value.sqlstate == sqlstate, f"expected {sqlstate}, got {caught.value.sqlstate}: {caught.value}"
    return caught.value


def db_now(conn: Conn) -> dt.datetime:
    value: dt.datetime = scalar(conn, "select now()")
    return value


def assert_near(actual: dt.datetime | None, expected: dt.datetime, slack: dt.timedelta = dt.timedelta(seconds=30)
                ) -> None:
    assert actual is not None
    assert abs(actual - expected) <= slack, f"{actual} is not within {slack} of {expected}"


def sync_config(conn: Conn, store: uuid.UUID) -> dict[str, Any]:
    row = conn.execute("select * from shopsync.store_sync_config where store_id = %s", (store,)).fetchone()
    assert row is not None
    return row


def store_row(conn: Conn, store: uuid.UUID) -> dict[str, Any]:
    row = conn.execute("select * from shopsync.stores where id = %s", (store,)).fetchone()
    assert row is not None
    return row


def jobs_of(conn: Conn, store: uuid.UUID, state: str | None = None) -> list[dict[str, Any]]:
    return conn.execute("select * from shopsync.jobs where store_id = %s and (%s::text is null or state = %s) "
                        "order by id", (store, state, state)).fetchall()


def activity(conn: Conn, action: str, store: uuid.UUID | None = None) -> list[dict[str, Any]]:
    return conn.execute("select * from shopsync.activity_log where action = %s "
                        "and (%s::uuid is null or store_id = %s) order by id", (action, store, store)).fetchall()


def seed_catalog(conn: Conn, store: uuid.UUID, org: uuid.UUID) -> None:
    """A product with a variant, a location and a stock level, plus a customer and an order."""
    p = {"s": store, "o": org}
    conn.execute("insert into shopsync.products (store_id, id, organization_id) values (%(s)s, 'p1', %(o)s)", p)
    conn.execute("insert into shopsync.product_variants (store_id, id, product_id, organization_id) "
                 "values (%(s)s, 'v1', 'p1', %(o)s)", p)
    conn.execute("insert into shopsync.inventory_locations (store_id, id, organization_id) values (%(s)s, 'l1', %(o)s)",
                 p)
    conn.execute("insert into shopsync.inventory_levels (store_id, inventory_item_id, location_id, organization_id) "
                 "values (%(s)s, 'i1', 'l1', %(o)s)", p)
    conn.execute("insert into shopsync.customers (store_id, id, organization_id) values (%(s)s, 'c1', %(o)s)", p)
    conn.execute("insert into shopsync.orders (store_id, id, organization_id) values (%(s)s, 'o1', %(o)s)", p)
    conn.execute("select shopsync.save_sync_state(%s, 'products', now())", (store,))
    conn.execute("select shopsync.save_sync_state(%s, 'customers', now())", (store,))


def count_rows(conn: Conn, table: str, store: uuid.UUID) -> int:
    n: int = scalar(conn, f"select count(*) from shopsync.{table} where store_id = %s", (store,))
    return n


def make_dead_job(conn: Conn, store: uuid.UUID, kind: str, dedupe_key: str | None = None) -> int:
    job: int = scalar(conn, "select shopsync.enqueue_job(%s, '{}'::jsonb, p_store_id => %s, p_dedupe_key => %s)",
                      (kind, store, dedupe_key))
    claimed = conn.execute("select id from shopsync.claim_jobs('test-worker', 1, array[%s])", (kind,)).fetchall()
    assert claimed == [{"id": job}]
    state = scalar(conn, "select shopsync.fail_job('test-worker', %s, 'boom', p_retryable => false)", (job,))
    assert state == "dead"
    return job


# ---- my_organizations / create_organization / my_stores -----------------------------------------

def test_my_organizations(conn: Conn, team: Team) -> None:
    rows = rpc(conn, team.owner, "select * from shopsync.my_organizations()")
    assert [(r["organization_id"], r["role"], r["personal"]) for r in rows] == [(team.org, "owner", True)]

    rows = rpc(conn, team.member, "select * from shopsync.my_organizations()")
    own = scalar(conn, "select id from shopsync.organizations where personal and created_by = %s", (team.member,))
    assert {(r["organization_id"], r["role"], r["personal"]) for r in rows} == {
        (own, "owner", True), (team.org, "member", True)}
    assert rows[0]["personal"] is True   # personal organizations first
    assert team.other_org not in {r["organization_id"] for r in rows}

    err = rpc_error(conn, None, "select * from shopsync.my_organizations()", None, "42501")
    assert "not authenticated" in message(err)


def test_create_organization(conn: Conn, team: Team) -> None:
    org = rpc_scalar(conn, team.member, "select shopsync.create_organization('  Acme Team  ')")
    assert isinstance(org, uuid.UUID)
    row = conn.execute("select name, personal, created_by from shopsync.organizations where id = %s", (org,)).fetchone()
    assert row == {"name": "Acme Team", "personal": False, "created_by": team.member}
    members = conn.execute("select user_id, role from shopsync.organization_members where organization_id = %s",
                           (org,)).fetchall()
    assert members == [{"user_id": team.member, "role": "owner"}]
    mine = rpc(conn, team.member, "select * from shopsync.my_organizations()")
    assert {"organization_id": org, "role": "owner", "personal": False} in [
        {k: r[k] for k in ("organization_id", "role", "personal")} for r in mine]
    logged = conn.execute("select actor_user_id from shopsync.activity_log where organization_id = %s "
                          "and action = 'organization.created'", (org,)).fetchall()
    assert logged == [{"actor_user_id": team.member}]

    for bad in ("", "   ", "x" * 201, None):
        err = rpc_error(conn, team.member, "select shopsync.create_organization(%s::text)", (bad,), "22023")
        assert "1 to 200 characters" in message(err)
    err = rpc_error(conn, None, "select shopsync.create_organization('nobody')", None, "42501")
    assert "not authenticated" in message(err)


def test_my_stores(conn: Conn, team: Team) -> None:
    rows = rpc(conn, team.member, "select * from shopsync.my_stores()")
    assert [r["store_id"] for r in rows] == [team.store]
    row = rows[0]
    assert set(row) == MY_STORES_COLUMNS
    assert row["organization_id"] == team.org and row["platform"] == "shopify"
    assert row["shop_key"] == "a.myshopify.com" and row["status"] == "active" and row["sync_status"] == "idle"
    assert row["enabled"] is True and row["frequency"] == "hourly" and row["next_sync_at"] is not None
    assert (row["products_policy"], row["customers_policy"], row["orders_policy"]) == ("sync", "sync", "sync")
    assert row["access_policies"] == {"products": "sync", "customers": "sync", "orders": "sync"}

    # sync status written by the worker shows up
    run = scalar(conn, "select shopsync.start_sync_run(%s, 'orders', 'full')", (team.store,))
    conn.execute("select shopsync.finish_sync_run(%s, 'failed', p_error => 'rate limited')", (run,))
    row = rpc(conn, team.owner, "select * from shopsync.my_stores(%s)", (team.org,))[0]
    assert row["sync_status"] == "error" and row["last_sync_error"] == "rate limited"
    assert row["sync_completed_at"] is not None

    assert rpc(conn, team.outsider, "select store_id from shopsync.my_stores()") == [{"store_id": team.other_store}]
    err = rpc_error(conn, team.owner, "select * from shopsync.my_stores(%s)", (team.other_org,), "42501")
    assert str(team.other_org) in message(err)
    # an organization that does not exist answers exactly like one the caller is not in
    missing = uuid.uuid4()
    err2 = rpc_error(conn, team.owner, "select * from shopsync.my_stores(%s)", (missing,), "42501")
    assert message(err2).replace(str(missing), "X") == message(err).replace(str(team.other_org), "X")
    rpc_error(conn, None, "select * from shopsync.my_stores()", None, "42501")


# ---- trigger_sync ---------------------------------------------------------------------------------

def test_trigger_sync_enqueues_one_job_per_synced_resource_and_dedupes(conn: Conn, team: Team) -> None:
    ids = rpc_scalar(conn, team.member, "select shopsync.trigger_sync(%s)", (team.store,))
    assert len(ids) == 3 and len(set(ids)) == 3
    jobs = {j["resource"]: j for j in jobs_of(conn, team.store)}
    assert set(jobs) == set(RESOURCES)
    for resource, job in jobs.items():
        assert job["id"] in ids
        assert job["kind"] == "shopify.sync" and job["state"] == "queued"
        assert job["organization_id"] == team.org
        assert job["payload"] == {"mode": "incremental", "reason": "manual"}
        assert job["dedupe_key"] == f"sync:{team.store}:{resource}"
        assert job["concurrency_key"] == f"store:{team.store}"

    # again, and from another member: the same jobs come back, nothing new is queued
    assert rpc_scalar(conn, team.owner, "select shopsync.trigger_sync(%s)", (team.store,)) == ids
    only_products = rpc_scalar(conn, team.admin, "select shopsync.trigger_sync(%s, %s::text[], 'full')",
                               (team.store, ["products"]))
    assert only_products == [jobs["products"]["id"]]
    per_resource = conn.execute("select resource, count(*) as n from shopsync.jobs where store_id = %s "
                                "and state = 'queued' group by resource", (team.store,)).fetchall()
    assert {r["resource"]: r["n"] for r in per_resource} == dict.fromkeys(RESOURCES, 1)

    # a resource whose policy is not 'sync' gets no job
    set_policy(conn, team.other_store, "customers", "api_only")
    other_ids = rpc_scalar(conn, team.outsider, "select shopsync.trigger_sync(%s)", (team.other_store,))
    assert len(other_ids) == 2
    assert {j["resource"] for j in jobs_of(conn, team.other_store)} == {"products", "orders"}

    logged = activity(conn, "sync.requested", team.store)
    assert [a["actor_user_id"] for a in logged] == [team.member, team.owner, team.admin]
    assert logged[0]["details"]["jobs"] == ids


def test_trigger_sync_validates_its_arguments(conn: Conn, team: Team) -> None:
    for bad_mode in ("turbo", "reconcile", None):
        err = rpc_error(conn, team.member, "select shopsync.trigger_sync(%s, null, %s::text)", (team.store, bad_mode),
                        "22023")
        assert str(bad_mode if bad_mode else "null") in message(err)
        assert "full or incremental" in message(err)
    err = rpc_error(conn, team.member, "select shopsync.trigger_sync(%s, %s::text[])",
                    (team.store, ["products", "widgets"]), "22023")
    assert "widgets" in message(err) and "products, customers or orders" in message(err)
    assert jobs_of(conn, team.store) == []   # nothing half-done


def test_trigger_sync_does_not_leak_store_existence(conn: Conn, team: Team) -> None:
    missing = uuid.uuid4()
    unknown = rpc_error(conn, team.member, "select shopsync.trigger_sync(%s)", (missing,), "P0002")
    foreign = rpc_error(conn, team.member, "select shopsync.trigger_sync(%s)", (team.other_store,), "P0002")
    assert message(unknown) == f"unknown store {missing}"
    assert message(foreign) == f"unknown store {team.other_store}"
    assert (unknown.diag.message_detail, unknown.diag.message_hint) == (foreign.diag.message_detail,
                                                                        foreign.diag.message_hint)
    # bad arguments for a foreign store still say "unknown store", not which argument was wrong
    rpc_error(conn, team.member, "select shopsync.trigger_sync(%s, null, 'turbo')", (team.other_store,), "P0002")
    assert jobs_of(conn, team.other_store) == []


def test_trigger_sync_needs_an_active_store_and_a_user(conn: Conn, team: Team) -> None:
    conn.execute("select shopsync.set_store_status(%s, 'needs_reauth', 'token revoked')", (team.store,))
    err = rpc_error(conn, team.member, "select shopsync.trigger_sync(%s)", (team.store,), "55000")
    assert "needs_reauth" in message(err) and "active" in message(err)
    assert err.diag.message_hint == "token revoked"

    err = rpc_error(conn, None, "select shopsync.trigger_sync(%s)", (team.store,), "42501")
    assert message(err) == "not authenticated"
    assert jobs_of(conn, team.store) == []


# ---- set_sync_frequency / set_sync_enabled --------------------------------------------------------

def test_set_sync_frequency(conn: Conn, team: Team) -> None:
    for user, frequency in [(team.owner, "daily"), (team.admin, "15min"), (team.owner, "6hours")]:
        now = db_now(conn)
        returned = rpc_scalar(conn, user, "select shopsync.set_sync_frequency(%s, %s)", (team.store, frequency))
        cfg = sync_config(conn, team.store)
        assert cfg["frequency"] == frequency and cfg["next_sync_at"] == returned
        assert_near(returned, now + FREQUENCIES[frequency])
    assert [a["actor_user_id"] for a in activity(conn, "sync.frequency", team.store)] == [
        team.owner, team.admin, team.owner]

    # once the scheduler has enqueued a sync, the next one is due one period after it (never in the past)
    conn.execute("update shopsync.store_sync_config set last_sync_enqueued_at = now() - interval '10 minutes' "
                 "where store_id = %s", (team.store,))
    last = sync_config(conn, team.store)["last_sync_enqueued_at"]
    for frequency in ("15min", "daily", "30min"):
        returned = rpc_scalar(conn, team.owner, "select shopsync.set_sync_frequency(%s, %s)", (team.store, frequency))
        assert returned == last + FREQUENCIES[frequency], frequency
    now = db_now(conn)
    returned = rpc_scalar(conn, team.admin, "select shopsync.set_sync_frequency(%s, '6hours')", (team.store,))
    conn.execute("update shopsync.store_sync_config set last_sync_enqueued_at = now() - interval '1 day' "
                 "where store_id = %s", (team.store,))
    overdue = rpc_scalar(conn, team.admin, "select shopsync.set_sync_frequency(%s, 'hourly')", (team.store,))
    assert_near(overdue, db_now(conn), dt.timedelta(seconds=5))   # overdue: due now, not in the past
    assert returned > now

    err = rpc_error(conn, team.member, "select shopsync.set_sync_frequency(%s, 'daily')", (team.store,), "42501")
    assert "member" in message(err) and "owner or admin" in message(err)
    err = rpc_error(conn, team.owner, "select shopsync.set_sync_frequency(%s, 'weekly')", (team.store,), "22023")
    assert "weekly" in message(err) and "15min, 30min, hourly, 6hours, daily" in message(err)
    rpc_error(conn, team.owner, "select shopsync.set_sync_frequency(%s, null)", (team.store,), "22023")
    rpc_error(conn, team.owner, "select shopsync.set_sync_frequency(%s, 'daily')", (team.other_store,), "P0002")
    assert sync_config(conn, team.store)["frequency"] == "hourly"   # unchanged by the refused calls
    assert sync_config(conn, team.other_store)["frequency"] == "hourly"


def test_set_sync_enabled(conn: Conn, team: Team) -> None:
    rpc(conn, team.admin, "select shopsync.set_sync_enabled(%s, false)", (team.store,))
    cfg = sync_config(conn, team.store)
    assert cfg["enabled"] is False and cfg["next_sync_at"] is None
    assert rpc(conn, team.member, "select enabled, next_sync_at from shopsync.my_stores()") == [
        {"enabled": False, "next_sync_at": None}]

    now = db_now(conn)
    rpc(conn, team.owner, "select shopsync.set_sync_enabled(%s, true)", (team.store,))
    cfg = sync_config(conn, team.store)
    assert cfg["enabled"] is True
    assert cfg["next_sync_at"] is not None and cfg["next_sync_at"] >= now
    assert_near(cfg["next_sync_at"], now + FREQUENCIES["hourly"])

    logged = activity(conn, "sync.enabled", team.store)
    assert [(a["actor_user_id"], a["details"]["enabled"]) for a in logged] == [(team.admin, False), (team.owner, True)]

    rpc_error(conn, team.member, "select shopsync.set_sync_enabled(%s, false)", (team.store,), "42501")
    err = rpc_error(conn, team.owner, "select shopsync.set_sync_enabled(%s, null)", (team.store,), "22023")
    assert "true or false" in message(err)
    rpc_error(conn, team.owner, "select shopsync.set_sync_enabled(%s, false)", (team.other_store,), "P0002")
    assert sync_config(conn, team.store)["enabled"] is True


# ---- set_access_policy ------------------------------------------------------------------------------

def test_set_access_policy_validates(conn: Conn, team: Team) -> None:
    err = rpc_error(conn, team.owner, "select shopsync.set_access_policy(%s, 'products', 'maybe')", (team.store,),
                    "22023")
    assert "maybe" in message(err) and "sync, api_only or not_allowed" in message(err)
    err = rpc_error(conn, team.owner, "select shopsync.set_access_policy(%s, 'widgets', 'sync')", (team.store,),
                    "22023")
    assert "widgets" in message(err) and "products, customers or orders" in message(err)
    rpc_error(conn, team.member, "select shopsync.set_access_policy(%s, 'products', 'sync')", (team.store,), "42501")
    rpc_error(conn, team.owner, "select shopsync.set_access_policy(%s, 'products', 'not_allowed')",
              (team.other_store,), "P0002")
    assert policy_of(conn, team.other_store, "products") == "sync"


def test_set_access_policy_not_allowed_purges_only_that_store_and_resource(conn: Conn, team: Team) -> None:
    second = scalar(conn, "select shopsync.upsert_store(%s, 'shopify', 'second.myshopify.com')", (team.org,))
    for store, org in [(team.store, team.org), (second, team.org), (team.other_store, team.other_org)]:
        seed_catalog(conn, store, org)
        rpc(conn, team.owner if org == team.org else team.outsider, "select shopsync.trigger_sync(%s)", (store,))
    purged = rpc_scalar(conn, team.admin, "select shopsync.set_access_policy(%s, 'products', 'not_allowed')",
                        (team.store,))
    assert purged == 4   # product, variant, location, level
    for table in ("products", "product_variants", "inventory_locations", "inventory_levels"):
        assert count_rows(conn, table, team.store) == 0, table
        assert count_rows(conn, table, second) == 1, table
        assert count_rows(conn, table, team.other_store) == 1, table
    assert count_rows(conn, "customers", team.store) == 1 and count_rows(conn, "orders", team.store) == 1
    states = {r["resource"] for r in conn.execute(
        "select resource from shopsync.sync_state where store_id = %s", (team.store,))}
    assert states == {"customers"}

    jobs = {j["resource"]: j for j in jobs_of(conn, team.store)}
    assert jobs["products"]["state"] == "cancelled" and jobs["products"]["last_error"] == "access policy changed"
    assert jobs["customers"]["state"] == "queued" and jobs["orders"]["state"] == "queued"
    assert {j["state"] for j in jobs_of(conn, second)} == {"queued"}
    assert {j["state"] for j in jobs_of(conn, team.other_store)} == {"queued"}
    assert policy_of(conn, team.store, "products") == "not_allowed"

    ids = rpc_scalar(conn, team.member, "select shopsync.trigger_sync(%s)", (team.store,))
    assert sorted(ids) == sorted([jobs["customers"]["id"], jobs["orders"]["id"]])
    assert rpc_scalar(conn, team.member, "select shopsync.trigger_sync(%s, array['products'])", (team.store,)) == []
    assert [j for j in jobs_of(conn, team.store, "queued") if j["resource"] == "products"] == []

    logged = activity(conn, "access_policy.changed", team.store)
    assert [(a["actor_user_id"], a["details"]) for a in logged] == [
        (team.admin, {"resource": "products", "policy": "not_allowed", "rows_removed": 4})]

    # back to sync: the next trigger syncs products again
    assert rpc_scalar(conn, team.owner, "select shopsync.set_access_policy(%s, 'products', 'sync')", (team.store,)) == 0
    assert len(rpc_scalar(conn, team.member, "select shopsync.trigger_sync(%s)", (team.store,))) == 3


def test_set_access_policy_api_only_purges_orders(conn: Conn, team: Team) -> None:
    seed_catalog(conn, team.store, team.org)
    conn.execute("insert into shopsync.order_line_items (store_id, id, order_id, organization_id) "
                 "values (%s, 'li1', 'o1', %s)", (team.store, team.org))
    conn.execute("insert into shopsync.order_fulfillments (store_id, id, order_id, organization_id) "
                 "values (%s, 'f1', 'o1', %s)", (team.store, team.org))
    assert rpc_scalar(conn, team.owner, "select shopsync.set_access_policy(%s, 'orders', 'api_only')",
                      (team.store,)) == 3
    for table in ("orders", "order_line_items", "order_fulfillments"):
        assert count_rows(conn, table, team.store) == 0
    assert count_rows(conn, "products", team.store) == 1 and count_rows(conn, "customers", team.store) == 1


# ---- disconnect_store -----------------------------------------------------------------------------

def test_disconnect_store(conn: Conn, team: Team) -> None:
    conn.execute("select shopsync.put_store_credentials(%s, 'oauth', 'k1', 'v1.fake-sealed')", (team.store,))
    conn.execute("select shopsync.put_store_credentials(%s, 'oauth', 'k1', 'v1.fake-sealed')", (team.other_store,))
    rpc(conn, team.member, "select shopsync.trigger_sync(%s)", (team.store,))
    running = conn.execute("select id from shopsync.claim_jobs('test-worker', 1)").fetchall()
    assert len(running) == 1
    assert scalar(conn, "select count(*) from shopsync_private.job_concurrency_locks") == 1

    rpc_error(conn, team.member, "select shopsync.disconnect_store(%s)", (team.store,), "42501")
    rpc_error(conn, team.owner, "select shopsync.disconnect_store(%s)", (team.other_store,), "P0002")
    assert store_row(conn, team.store)["status"] == "active"

    rpc(conn, team.admin, "select shopsync.disconnect_store(%s)", (team.store,))
    store = store_row(conn, team.store)
    assert store["status"] == "disconnected" and store["status_reason"] == "disconnected by a user"
    # the credentials stay for the platform's disconnect job (it removes our webhooks with them first)
    jobs = jobs_of(conn, team.store)
    [disconnect] = [j for j in jobs if j["kind"] == "shopify.disconnect"]
    assert disconnect["state"] == "queued" and disconnect["dedupe_key"] == f"disconnect:{team.store}"
    jobs = [j for j in jobs if j is not disconnect]
    assert len(jobs) == 3 and {j["state"] for j in jobs} == {"cancelled"}
    assert {j["last_error"] for j in jobs} == {"store disconnected"}
    assert scalar(conn, "select count(*) from shopsync_private.store_credentials where store_id = %s",
                  (team.store,)) == 1
    # ... which then forgets them; only while the store is still disconnected, and never another store's
    assert scalar(conn, "select shopsync.forget_store_credentials(%s)", (team.other_store,)) is False
    assert scalar(conn, "select shopsync.forget_store_credentials(%s, 'webhooks left')", (team.store,)) is True
    assert scalar(conn, "select count(*) from shopsync_private.store_credentials where store_id = %s",
                  (team.store,)) == 0
    assert scalar(conn, "select count(*) from shopsync_private.store_credentials where store_id = %s",
                  (team.other_store,)) == 1
    assert store_row(conn, team.store)["status_reason"] == "webhooks left"
    # the running job's handler may still be writing until its next heartbeat: the store lock stays
    # until its lease has expired, then the reaper frees it
    assert scalar(conn, "select count(*) from shopsync_private.job_concurrency_locks") == 1
    conn.execute("update shopsync.jobs set lease_expires_at = now() - interval '1 second' where lease_owner is not null")
    conn.execute("select shopsync.reap_expired_leases()")
    assert scalar(conn, "select count(*) from shopsync_private.job_concurrency_locks") == 0
    cfg = sync_config(conn, team.store)
    assert cfg["enabled"] is False and cfg["next_sync_at"] is None
    assert [a["actor_user_id"] for a in activity(conn, "store.disconnected", team.store)] == [team.admin]

    err = rpc_error(conn, team.owner, "select shopsync.disconnect_store(%s)", (team.store,), "55000")
    assert "already disconnected" in message(err)
    err = rpc_error(conn, team.member, "select shopsync.trigger_sync(%s)", (team.store,), "55000")
    assert "disconnected" in message(err)
    err = rpc_error(conn, team.owner, "select shopsync.set_sync_enabled(%s, true)", (team.store,), "55000")
    assert "disconnected" in message(err)
    assert sync_config(conn, team.store)["enabled"] is False
    # the worker's scheduler leaves it alone too
    conn.execute("update shopsync.store_sync_config set enabled = true, next_sync_at = now() - interval '1 minute' "
                 "where store_id = %s", (team.store,))
    conn.execute("update shopsync.store_sync_config set next_sync_at = now() + interval '1 hour' where store_id = %s",
                 (team.other_store,))
    assert scalar(conn, "select shopsync.enqueue_due_syncs()") == 0


# ---- claim_pending_install ------------------------------------------------------------------------

def park(conn: Conn, shop: str = "Parked.myshopify.com", ttl: int = 3600) -> tuple[uuid.UUID, str]:
    row = conn.execute("select * from shopsync.park_pending_install('shopify', %s, '{\"plan\": \"basic\"}'::jsonb, %s)",
                       (shop, ttl)).fetchone()
    assert row is not None
    return row["install_id"], row["claim_token"]


def test_claim_pending_install(conn: Conn, team: Team) -> None:
    install, token = park(conn)
    query = "select shopsync.claim_pending_install(%s, %s, %s)"

    err = rpc_error(conn, team.member, query, (install, token, team.org), "42501")
    assert str(team.org) in message(err)
    rpc_error(conn, team.owner, query, (install, token, team.other_org), "42501")
    rpc_error(conn, None, query, (install, token, team.org), "42501")
    wrong = rpc_error(conn, team.owner, query, (install, token + "x", team.org), "P0002")
    rpc_error(conn, team.owner, query, (install, None, team.org), "P0002")
    rpc_error(conn, team.owner, query, (uuid.uuid4(), token, team.org), "P0002")

    store = rpc_scalar(conn, team.admin, query, (install, token, team.org))
    row = store_row(conn, store)
    assert (row["organization_id"], row["platform"], row["shop_key"], row["status"]) == (
        team.org, "shopify", "parked.myshopify.com", "connecting")
    jobs = jobs_of(conn, store)
    assert [(j["kind"], j["state"], j["payload"]) for j in jobs] == [
        ("shopify.install_claimed", "queued", {"install_id": str(install)})]
    claimed = conn.execute("select claimed_at, claimed_by_organization, store_id "
                           "from shopsync_private.pending_installs where id = %s", (install,)).fetchone()
    assert claimed is not None and claimed["claimed_at"] is not None
    assert (claimed["claimed_by_organization"], claimed["store_id"]) == (team.org, store)
    assert [a["actor_user_id"] for a in activity(conn, "store.connected", store)] == [team.admin]
    # the new store is listed for the organization, in 'connecting'
    assert {"store_id": store, "status": "connecting"} in rpc(conn, team.member,
                                                              "select store_id, status from shopsync.my_stores()")

    reused = rpc_error(conn, team.owner, query, (install, token, team.org), "P0002")
    expired_install, expired_token = park(conn, "late.myshopify.com")
    conn.execute("update shopsync_private.pending_installs set expires_at = now() - interval '1 second' where id = %s",
                 (expired_install,))
    expired = rpc_error(conn, team.owner, query, (expired_install, expired_token, team.org), "P0002")
    # one answer for every failure: a token holder learns nothing about why
    assert message(wrong) == message(reused) == message(expired) == "unknown, expired or already claimed install"
    assert scalar(conn, "select count(*) from shopsync.stores where shop_key = 'late.myshopify.com'") == 0


def test_begin_install(conn: Conn, team: Team) -> None:
    query = "select shopsync.begin_install(%s, 'shopify', %s, %s)"
    not_configured = rpc_error(conn, team.owner, query, (team.org, "new.myshopify.com", None), "55000")
    assert "not configured" in message(not_configured)
    conn.execute("""select shopsync.set_platform_config('shopify', jsonb_build_object(
        'shop_pattern', '^[a-z0-9][a-z0-9-]*\\.myshopify\\.com$', 'state_ttl_seconds', 300,
        'authorize_url', 'https://{shop}/admin/oauth/authorize?client_id=abc&scope=read_products'))""")

    rpc_error(conn, team.member, query, (team.org, "new.myshopify.com", None), "42501")
    rpc_error(conn, team.owner, query, (team.other_org, "new.myshopify.com", None), "42501")
    rpc_error(conn, None, query, (team.org, "new.myshopify.com", None), "42501")
    for hostile in ("evil.com", "x.myshopify.com.evil.com", "https://x.myshopify.com/admin", "-x.myshopify.com",
                    "x.myshopify.com\nHost: evil", "", "a" * 300 + ".myshopify.com"):
        err = rpc_error(conn, team.owner, query, (team.org, hostile, None), "22023")
        assert len(message(err)) < 200
    assert scalar(conn, "select count(*) from shopsync_private.oauth_states") == 0

    started = rpc_scalar(conn, team.admin, query, (team.org, "  New-Shop.MyShopify.com ", "http://localhost:3000/x"))
    url = started["authorize_url"]
    assert url.startswith("https://new-shop.myshopify.com/admin/oauth/authorize?client_id=abc&scope=read_products&state=")
    nonce = url.rsplit("state=", 1)[1]
    assert len(nonce) == 64
    state = conn.execute("select * from shopsync_private.oauth_states").fetchone()
    assert state is not None and state["state_hash"] != nonce          # only the hash is kept
    assert (state["organization_id"], state["user_id"], state["shop_key"], state["return_to"]) == (
        team.org, team.admin, "new-shop.myshopify.com", "http://localhost:3000/x")
    assert 290 <= (state["expires_at"] - state["created_at"]).total_seconds() <= 300
    consumed = conn.execute("select * from shopsync.consume_oauth_state('shopify', %s, 'new-shop.myshopify.com')",
                            (nonce,)).fetchall()
    assert [r["organization_id"] for r in consumed] == [team.org]
    assert conn.execute("select * from shopsync.consume_oauth_state('shopify', %s, 'new-shop.myshopify.com')",
                        (nonce,)).fetchall() == []                          # single use


# ---- activity log -----------------------------------------------------------------------------------

def test_activity_log_records_the_caller_of_every_action(conn: Conn, team: Team) -> None:
    conn.execute("delete from shopsync.activity_log")
    rpc(conn, team.member, "select shopsync.trigger_sync(%s)", (team.store,))
    rpc(conn, team.admin, "select shopsync.set_sync_frequency(%s, 'daily')", (team.store,))
    rpc(conn, team.owner, "select shopsync.set_sync_enabled(%s, false)", (team.store,))
    rpc(conn, team.admin, "select shopsync.set_access_policy(%s, 'customers', 'api_only')", (team.store,))
    rpc(conn, team.owner, "select shopsync.disconnect_store(%s)", (team.store,))
    rows = conn.execute("select action, actor_user_id, organization_id, store_id from shopsync.activity_log "
                        "order by id").fetchall()
    assert [(r["action"], r["actor_user_id"]) for r in rows] == [
        ("sync.requested", team.member), ("sync.frequency", team.admin), ("sync.enabled", team.owner),
        ("access_policy.changed", team.admin), ("store.disconnected", team.owner)]
    assert {(r["organization_id"], r["store_id"]) for r in rows} == {(team.org, team.store)}
    # members read their organization's log; the outsider reads none of it
    assert len(rpc(conn, team.member, "select id from shopsync.activity_log where organization_id = %s",
                   (team.org,))) == 5
    assert rpc(conn, team.outsider, "select id from shopsync.activity_log where organization_id = %s",
               (team.org,)) == []


# ---- admin helpers (superuser and service_role) -----------------------------------------------------

ADMINS = ["postgres", "service_role"]


@pytest.mark.parametrize("who", ADMINS)
def test_admin_set_store_sync_enabled(conn: Conn, team: Team, who: str) -> None:
    with admin_session(conn, who):
        conn.execute("select shopsync.set_store_sync_enabled(%s, false)", (team.store,))
    assert sync_config(conn, team.store)["enabled"] is False and sync_config(conn, team.store)["next_sync_at"] is None
    with admin_session(conn, who):
        conn.execute("select shopsync.set_store_sync_enabled(%s, true)", (team.store,))
    assert sync_config(conn, team.store)["enabled"] is True and sync_config(conn, team.store)["next_sync_at"]
    logged = activity(conn, "sync.enabled", team.store)
    assert [(a["details"], a["actor_user_id"]) for a in logged] == [
        ({"enabled": False, "by": "admin"}, None), ({"enabled": True, "by": "admin"}, None)]

    missing = uuid.uuid4()
    err = admin_error(conn, who, "select shopsync.set_store_sync_enabled(%s, true)", (missing,), "P0002")
    assert str(missing) in message(err)
    admin_error(conn, who, "select shopsync.set_store_sync_enabled(%s, null)", (team.store,), "22023")
    conn.execute("select shopsync.set_store_status(%s, 'disconnected')", (team.store,))
    err = admin_error(conn, who, "select shopsync.set_store_sync_enabled(%s, true)", (team.store,), "55000")
    assert "disconnected" in message(err)
    with admin_session(conn, who):   # disabling a disconnected store is fine
        conn.execute("select shopsync.set_store_sync_enabled(%s, false)", (team.store,))


@pytest.mark.parametrize("who", ADMINS)
def test_admin_set_store_sync_frequency(conn: Conn, team: Team, who: str) -> None:
    now = db_now(conn)
    with admin_session(conn, who):
        returned = scalar(conn, "select shopsync.set_store_sync_frequency(%s, '6hours')", (team.store,))
    assert_near(returned, now + FREQUENCIES["6hours"])
    assert sync_config(conn, team.store)["frequency"] == "6hours"
    missing = uuid.uuid4()
    err = admin_error(conn, who, "select shopsync.set_store_sync_frequency(%s, 'daily')", (missing,), "P0002")
    assert str(missing) in message(err)
    err = admin_error(conn, who, "select shopsync.set_store_sync_frequency(%s, 'fortnightly')", (team.store,), "22023")
    assert "fortnightly" in message(err) and "15min, 30min, hourly, 6hours, daily" in message(err)
    assert sync_config(conn, team.store)["frequency"] == "6hours"


@pytest.mark.parametrize("who", ADMINS)
def test_admin_sync_statistics(conn: Conn, team: Team, who: str) -> None:
    s, o = team.store, team.org
    conn.execute("insert into shopsync.products (store_id, id, organization_id, deleted_at) values "
                 "(%s, 'p1', %s, null), (%s, 'p2', %s, null), (%s, 'p3', %s, now())", (s, o) * 3)
    conn.execute("insert into shopsync.product_variants (store_id, id, product_id, organization_id, deleted_at) "
                 "values (%s, 'v1', 'p1', %s, null), (%s, 'v3', 'p3', %s, now())", (s, o) * 2)
    conn.execute("insert into shopsync.customers (store_id, id, organization_id, deleted_at) values "
                 "(%s, 'c1', %s, null), (%s, 'c2', %s, now())", (s, o) * 2)
    conn.execute("insert into shopsync.orders (store_id, id, organization_id, deleted_at) values "
                 "(%s, 'o1', %s, null), (%s, 'o2', %s, null), (%s, 'o3', %s, null), (%s, 'o4', %s, now())",
                 (s, o) * 4)
    conn.execute("insert into shopsync.products (store_id, id, organization_id) values (%s, 'p1', %s)",
                 (team.other_store, team.other_org))
    make_dead_job(conn, s, "shopify.webhook")
    rpc(conn, team.owner, "select shopsync.trigger_sync(%s)", (s,))
    conn.execute("select * from shopsync.claim_jobs('test-worker', 1)")
    ok = scalar(conn, "select shopsync.start_sync_run(%s, 'products', 'full')", (s,))
    conn.execute("select shopsync.finish_sync_run(%s, 'succeeded', 2)", (ok,))
    bad = scalar(conn, "select shopsync.start_sync_run(%s, 'orders', 'full')", (s,))
    conn.execute("select shopsync.finish_sync_run(%s, 'failed', p_error => 'boom')", (bad,))

    with admin_session(conn, who):
        row = conn.execute("select * from shopsync.sync_statistics(%s)", (s,)).fetchone()
        everything = conn.execute("select store_id from shopsync.sync_statistics()").fetchall()
    assert row is not None
    assert (row["products"], row["variants"], row["customers"], row["orders"]) == (2, 1, 1, 3)
    assert (row["jobs_queued"], row["jobs_running"], row["jobs_dead"]) == (2, 1, 1)
    assert row["last_successful_sync_at"] is not None and row["failed_runs_24h"] == 1
    assert row["sync_status"] == "error" and row["last_sync_error"] == "boom"
    assert (row["sync_enabled"], row["frequency"], row["status"]) == (True, "hourly", "active")
    assert {r["store_id"] for r in everything} == {team.store, team.other_store}

    missing = uuid.uuid4()
    err = admin_error(conn, who, "select * from shopsync.sync_statistics(%s)", (missing,), "P0002")
    assert str(missing) in message(err)


@pytest.mark.parametrize("who", ADMINS)
def test_admin_retry_and_requeue_dead_jobs(conn: Conn, team: Team, who: str) -> None:
    first = make_dead_job(conn, team.store, "shopify.webhook")
    second = make_dead_job(conn, team.store, "shopify.install_claimed")
    third = make_dead_job(conn, team.store, "shopify.sync", dedupe_key="sync:dup")
    other = make_dead_job(conn, team.other_store, "shopify.webhook")

    with admin_session(conn, who):
        dead = conn.execute("select id, last_error, attempts from shopsync.list_jobs('dead')").fetchall()
    assert {d["id"] for d in dead} == {first, second, third, other}
    assert {d["last_error"] for d in dead} == {"boom"}

    with admin_session(conn, who):
        assert scalar(conn, "select shopsync.retry_job(%s)", (first,)) == first
    job = conn.execute("select state, attempts, finished_at from shopsync.jobs where id = %s", (first,)).fetchone()
    assert job == {"state": "queued", "attempts": 0, "finished_at": None}
    err = admin_error(conn, who, "select shopsync.retry_job(%s)", (first,), "55000")
    assert "queued" in message(err) and "dead or cancelled" in message(err)
    admin_error(conn, who, "select shopsync.retry_job(-1)", None, "P0002")

    # an equivalent job is queued meanwhile: retrying the dead duplicate is refused, requeue skips it
    conn.execute("select shopsync.enqueue_job('shopify.sync', p_store_id => %s, p_dedupe_key => 'sync:dup')",
                 (team.store,))
    err = admin_error(conn, who, "select shopsync.retry_job(%s)", (third,), "23505")
    assert str(third) in message(err)
    with admin_session(conn, who):
        assert scalar(conn, "select shopsync.requeue_store_dead_jobs(%s)", (team.store,)) == 1
    states = {r["id"]: r["state"] for r in conn.execute("select id, state from shopsync.jobs")}
    assert (states[second], states[third], states[other]) == ("queued", "dead", "dead")
    with admin_session(conn, who):
        assert scalar(conn, "select shopsync.requeue_store_dead_jobs(%s)", (team.store,)) == 0
    missing = uuid.uuid4()
    err = admin_error(conn, who, "select shopsync.requeue_store_dead_jobs(%s)", (missing,), "P0002")
    assert str(missing) in message(err)


@pytest.mark.parametrize("who", ADMINS)
def test_admin_list_jobs(conn: Conn, team: Team, who: str) -> None:
    rpc(conn, team.member, "select shopsync.trigger_sync(%s)", (team.store,))
    dead = make_dead_job(conn, team.other_store, "shopify.webhook")
    with admin_session(conn, who):
        queued = conn.execute("select * from shopsync.list_jobs('queued')").fetchall()
        by_store = conn.execute("select * from shopsync.list_jobs(p_store_id => %s)", (team.other_store,)).fetchall()
        limited = conn.execute("select * from shopsync.list_jobs(p_limit => 2)").fetchall()
        by_kind = conn.execute("select * from shopsync.list_jobs(p_kind => 'shopify.webhook')").fetchall()
    assert len(queued) == 3 and {j["store_id"] for j in queued} == {team.store}
    assert [j["id"] for j in by_store] == [dead]
    assert len(limited) == 2 and limited[0]["id"] > limited[1]["id"]
    assert [j["id"] for j in by_kind] == [dead]
    err = admin_error(conn, who, "select * from shopsync.list_jobs('zombie')", None, "22023")
    assert "zombie" in message(err) and "queued, running, succeeded, dead or cancelled" in message(err)
    admin_error(conn, who, "select * from shopsync.list_jobs(p_limit => 0)", None, "22023")


@pytest.mark.parametrize("who", ADMINS)
def test_admin_set_retention_and_prune_history(conn: Conn, team: Team, who: str) -> None:
    for bad in ("1 minute", "11 years"):
        err = admin_error(conn, who, "select shopsync.set_retention(p_finished_jobs => %s::interval)", (bad,), "22023")
        assert "finished_jobs" in message(err) and "between 1 hour and 10 years" in message(err)
    err = admin_error(conn, who, "select shopsync.set_retention(p_activity_log => '-1 day')", None, "22023")
    assert "activity_log" in message(err)
    with admin_session(conn, who):
        settings = scalar(conn, "select shopsync.set_retention(p_finished_jobs => '2 days', p_sync_runs => '10 days')")
    assert settings["finished_jobs"] == "2 days" and settings["sync_runs"] == "10 days"
    assert settings["dead_jobs"] == "30 days"   # untouched keys stay

    s, o = team.store, team.org
    job = {}
    for name, state, age in [("old_done", "succeeded", "3 days"), ("new_done", "succeeded", "1 day"),
                             ("old_cancelled", "cancelled", "3 days"), ("old_dead", "dead", "31 days"),
                             ("young_dead", "dead", "3 days")]:
        job[name] = scalar(conn, "insert into shopsync.jobs (kind, store_id, organization_id, state, finished_at) "
                                 "values ('shopify.sync', %s, %s, %s, now() - %s::interval) returning id",
                           (s, o, state, age))
    job["old_queued"] = scalar(conn, "insert into shopsync.jobs (kind, store_id, organization_id, created_at, run_at) "
                                     "values ('shopify.sync', %s, %s, now() - interval '90 days', "
                                     "now() - interval '90 days') returning id", (s, o))
    inbox = {}
    for name, status, age in [("old_processed", "processed", "8 days"), ("old_pending", "pending", "8 days"),
                              ("new_processed", "processed", "1 day")]:
        inbox[name] = scalar(conn, "insert into shopsync.webhook_inbox (platform, delivery_id, store_id, "
                                   "organization_id, topic, payload, status, received_at) values ('shopify', %s, %s, "
                                   "%s, 'orders/create', '{}', %s, now() - %s::interval) returning id",
                             (name, s, o, status, age))
    runs = {}
    for name, status, age in [("old_run", "succeeded", "11 days"), ("old_running", "running", "11 days"),
                              ("new_run", "failed", "1 day")]:
        runs[name] = scalar(conn, "insert into shopsync.sync_runs (store_id, organization_id, resource, mode, "
                                  "status, started_at) values (%s, %s, 'orders', 'full', %s, now() - %s::interval) "
                                  "returning id", (s, o, status, age))
    conn.execute("delete from shopsync.activity_log")
    old_log = scalar(conn, "insert into shopsync.activity_log (organization_id, action, created_at) "
                           "values (%s, 'old', now() - interval '181 days') returning id", (o,))
    new_log = scalar(conn, "insert into shopsync.activity_log (organization_id, action) "
                           "values (%s, 'new') returning id", (o,))

    conn.execute("insert into shopsync_private.rate_limits (key, next_free_at) values "
                 "('shoprenter:gone', now() - interval '2 days'), ('shoprenter:busy', now())")

    with admin_session(conn, who):
        result = scalar(conn, "select shopsync.prune_history()")
    assert result == {"jobs": 2, "dead_jobs": 1, "webhook_inbox": 1, "sync_runs": 1, "activity_log": 1,
                      "oauth_states": 0, "pending_installs": 0, "rate_limits": 1, "events": 0,
                      "lookup_audit": 0, "product_link_log": 0}
    assert [r["key"] for r in conn.execute("select key from shopsync_private.rate_limits")] == ["shoprenter:busy"]
    left_jobs = {r["id"] for r in conn.execute("select id from shopsync.jobs")}
    assert left_jobs == {job["new_done"], job["young_dead"], job["old_queued"]}
    assert {r["id"] for r in conn.execute("select id from shopsync.webhook_inbox")} == {
        inbox["old_pending"], inbox["new_processed"]}
    assert {r["id"] for r in conn.execute("select id from shopsync.sync_runs")} == {
        runs["old_running"], runs["new_run"]}
    assert {r["id"] for r in conn.execute("select id from shopsync.activity_log")} == {new_log}
    assert old_log != new_log


# ---- scheduling -----------------------------------------------------------------------------------

def test_new_store_is_due_at_once(conn: Conn, team: Team) -> None:
    before = db_now(conn)
    store = scalar(conn, "select shopsync.upsert_store(%s, 'woocommerce', 'https://shop.example')", (team.org,))
    cfg = sync_config(conn, store)
    assert cfg["enabled"] is True and cfg["frequency"] == "hourly" and cfg["organization_id"] == team.org
    assert_near(cfg["next_sync_at"], before, dt.timedelta(seconds=5))


def test_enqueue_due_syncs(conn: Conn, team: Team) -> None:
    org = team.org

    def store(shop: str, platform: str = "shopify") -> uuid.UUID:
        value: uuid.UUID = scalar(conn, "select shopsync.upsert_store(%s, %s, %s)", (org, platform, shop))
        return value

    due, woo = team.store, store("https://woo.example", "woocommerce")
    reauth, disabled, not_due, recent = store("r.myshopify.com"), store("d.myshopify.com"), store(
        "n.myshopify.com"), store("m.myshopify.com")
    conn.execute("update shopsync.store_sync_config set next_sync_at = now() - interval '1 minute'")
    conn.execute("update shopsync.store_sync_config set frequency = '15min' where store_id = %s", (woo,))
    conn.execute("update shopsync.store_sync_config set next_sync_at = now() - interval '1 minute' "
                 "where store_id = %s", (woo,))   # (a frequency change reschedules: make it due again)
    conn.execute("select shopsync.set_store_status(%s, 'needs_reauth', 'expired')", (reauth,))
    conn.execute("select shopsync.set_store_sync_enabled(%s, false)", (disabled,))
    conn.execute("update shopsync.store_sync_config set next_sync_at = now() + interval '10 minutes' "
                 "where store_id in (%s, %s)", (not_due, team.other_store))
    conn.execute("update shopsync.stores set sync_completed_at = now() - interval '1 minute' where id = %s", (recent,))
    before = {r["store_id"]: r for r in conn.execute("select * from shopsync.store_sync_config")}

    now = db_now(conn)
    assert scalar(conn, "select shopsync.enqueue_due_syncs()") == 2
    after = {r["store_id"]: r for r in conn.execute("select * from shopsync.store_sync_config")}

    for s, kind in [(due, "shopify.sync"), (woo, "woocommerce.sync")]:
        jobs = jobs_of(conn, s)
        assert sorted(j["resource"] for j in jobs) == sorted(RESOURCES)
        assert {(j["kind"], j["state"], j["payload"]["reason"]) for j in jobs} == {(kind, "queued", "schedule")}
        assert after[s]["last_sync_enqueued_at"] is not None
    assert_jittered(after[due]["next_sync_at"], now, FREQUENCIES["hourly"])
    assert_jittered(after[woo]["next_sync_at"], now, FREQUENCIES["15min"])

    for s in (reauth, disabled, not_due, recent, team.other_store):
        assert jobs_of(conn, s, "queued") == [], s
    # skipped for a sync that finished moments ago, but its schedule still moves on
    assert_jittered(after[recent]["next_sync_at"], now, FREQUENCIES["hourly"])
    assert after[recent]["last_sync_enqueued_at"] is None
    for s in (reauth, disabled, not_due, team.other_store):
        assert after[s]["next_sync_at"] == before[s]["next_sync_at"], s
    assert after[disabled]["next_sync_at"] is None

    # nothing is due any more
    assert scalar(conn, "select shopsync.enqueue_due_syncs()") == 0
    assert len(conn.execute("select id from shopsync.jobs where state = 'queued'").fetchall()) == 6


def assert_jittered(value: dt.datetime, now: dt.datetime, every: dt.timedelta) -> None:
    """One frequency later, +-10% (the schedule's jitter), give or take the test's own seconds."""
    assert now + every * 0.9 - dt.timedelta(seconds=5) <= value <= now + every * 1.1 + dt.timedelta(seconds=5), value


def test_every_due_store_is_enqueued_and_their_schedules_spread(conn: Conn, team: Team) -> None:
    """6,000 stores connected in the same minute: one call enqueues all of them (set-based batches, not
    a capped loop), and their next runs spread over the hour instead of all firing in the same minute."""
    conn.execute("insert into shopsync.stores (organization_id, platform, shop_key, status) "
                 "select %s, 'shopify', 'bulk-' || n || '.myshopify.com', 'active' from generate_series(1, 6000) n",
                 (team.org,))
    conn.execute("update shopsync.store_sync_config set next_sync_at = now() - interval '3 minutes'")
    lag = scalar(conn, "select (shopsync.queue_metrics() ->> 'schedule_lag_seconds')::float")
    assert 170 < lag < 400                                 # the most overdue store has waited ~3 minutes
    assert scalar(conn, "select shopsync.enqueue_due_syncs(p_batch => 2500)") == 6002      # and the team's two
    assert scalar(conn, "select count(*) from shopsync.jobs where kind = 'shopify.sync' and state = 'queued'") \
        == 6002 * len(RESOURCES)
    assert scalar(conn, "select (shopsync.queue_metrics() ->> 'schedule_lag_seconds')::float") == 0
    spread = conn.execute("select extract(epoch from max(next_sync_at) - min(next_sync_at)) as width, "
                          "count(distinct date_trunc('minute', next_sync_at)) as minutes "
                          "from shopsync.store_sync_config").fetchone()
    assert spread["width"] > 10 * 60 and spread["minutes"] >= 10        # hourly +-10%: ~12 minutes wide


def test_run_maintenance_runs_once_per_period(conn: Conn, team: Team) -> None:
    conn.execute("update shopsync.store_sync_config set next_sync_at = now() - interval '1 minute'")
    first = scalar(conn, "select shopsync.run_maintenance('enqueue_due_syncs', 60)")
    # both stores' syncs, and a first webhook-subscription check for each (active, never checked)
    assert first == {"task": "enqueue_due_syncs",
                     "result": {"syncs": 2, "reconciliations": 0, "webhook_checks": 2,
                                "link_reconciles": 0}}
    conn.execute("update shopsync.store_sync_config set next_sync_at = now() - interval '1 minute'")
    with as_role(conn, "service_role"):
        second = scalar(conn, "select shopsync.run_maintenance('enqueue_due_syncs', 60)")
    assert second == {"task": "enqueue_due_syncs", "skipped": "ran recently"}
    last = conn.execute("select * from shopsync_private.maintenance_runs where task = 'enqueue_due_syncs'").fetchone()
    assert last is not None and last["last_result"]["syncs"] == 2

    err = admin_error(conn, "postgres", "select shopsync.run_maintenance('vacuum_everything')", None, "22023")
    assert "vacuum_everything" in message(err)
    assert scalar(conn, "select shopsync.run_maintenance('reap_expired_leases', 60)") == {
        "task": "reap_expired_leases", "result": 0}


def test_enqueue_notifies_once_per_statement(conn: Conn, dsn: str, team: Team) -> None:
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("listen shopsync_jobs")
        conn.execute("insert into shopsync.jobs (kind, store_id, organization_id) "
                     "select 'shopify.webhook', %s, %s from generate_series(1, 3)", (team.store, team.org))
        notes = list(listener.notifies(timeout=1.0, stop_after=5))
        assert [(n.channel, n.payload) for n in notes] == [("shopsync_jobs", "")]

        # two enqueue statements (two transactions): two wake-ups
        conn.execute("select shopsync.enqueue_job('shopify.webhook', p_store_id => %s)", (team.store,))
        conn.execute("select shopsync.enqueue_job('shopify.webhook', p_store_id => %s)", (team.store,))
        notes = list(listener.notifies(timeout=1.0, stop_after=5))
        assert len(notes) == 2

        # a rolled-back enqueue wakes nobody
        with pytest.raises(psycopg.errors.RaiseException), conn.transaction():
            conn.execute("select shopsync.enqueue_job('shopify.webhook', p_store_id => %s)", (team.store,))
            conn.execute("do $$ begin raise exception 'abort'; end $$")
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []


def test_periodic_checks_reconcile_and_recheck_webhooks_once_per_interval(conn: Conn, team: Team) -> None:
    conn.execute("insert into shopsync.sync_state (store_id, resource, organization_id, last_full_sync_at, "
                 "last_reconciled_at) values (%s, 'products', %s, now() - interval '3 days', now() - interval '2 days'),"
                 " (%s, 'orders', %s, now() - interval '3 days', now() - interval '1 hour'),"
                 " (%s, 'customers', %s, now() - interval '3 days', null)",
                 (team.store, team.org, team.store, team.org, team.store, team.org))
    set_policy(conn, team.store, "customers", "api_only")
    conn.execute("update shopsync.stores set status = 'needs_reauth' where id = %s", (team.other_store,))
    result = scalar(conn, "select shopsync.enqueue_periodic_checks()")
    assert result == {"reconciliations": 1, "webhook_checks": 1}
    jobs = conn.execute("select kind, store_id, resource, payload->>'mode' as mode from shopsync.jobs "
                        "order by id").fetchall()
    assert [(j["kind"], j["store_id"], j["resource"], j["mode"]) for j in jobs] == [
        ("shopify.sync", team.store, "products", "reconcile"), ("shopify.check_webhooks", team.store, None, None)]
    # the check is not enqueued again within its interval, even after the first one finished
    conn.execute("update shopsync.jobs set state = 'succeeded', finished_at = now()")
    assert scalar(conn, "select shopsync.enqueue_periodic_checks()")["webhook_checks"] == 0
    conn.execute("update shopsync.jobs set created_at = now() - interval '7 hours'")
    assert scalar(conn, "select shopsync.enqueue_periodic_checks()")["webhook_checks"] == 1


def test_reconnecting_a_disconnected_store_turns_syncing_back_on(conn: Conn, team: Team) -> None:
    rpc(conn, team.owner, "select shopsync.disconnect_store(%s)", (team.store,))
    assert scalar(conn, "select enabled from shopsync.store_sync_config where store_id = %s", (team.store,)) is False
    # installs reconnect through 'connecting' (tokens first, then activation)
    again = scalar(conn, "select shopsync.upsert_store(%s, 'shopify', 'a.myshopify.com', null, 'connecting')",
                   (team.org,))
    assert again == team.store
    assert scalar(conn, "select enabled from shopsync.store_sync_config where store_id = %s", (team.store,)) is True
