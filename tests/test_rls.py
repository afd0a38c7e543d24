"""Tenancy isolation, proven for every table shopsync has.

Two organizations A and B, each with a store and rows in every tenant table (and in every private
table), then:

* the table list comes from pg_tables, so a table added without coverage here fails the suite;
* an `authenticated` user of A (owner, admin, member) sees A's rows and none of B's anywhere;
* no client role can write any table, and every row is unchanged afterwards;
* `anon` reads nothing; no client role touches shopsync_private;
* EXECUTE on shopsync functions is exactly the documented frontend set for `authenticated`, none
  for `anon`;
* the store_sync_statistics view and gdpr_requests and webhook_inbox (owners/admins only) respect RLS;
* product links: each organization links its store to a second one (a TikTok target) — links, their log and
  the link statistics views are seeded and checked like every other tenant table.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.conftest import as_role, new_user, personal_org

PUBLIC_SCHEMA = "shopsync"
PRIVATE_SCHEMA = "shopsync_private"

# Every table shopsync has, and how its rows map to an organization (None: private, no tenant).
TENANT_TABLES: dict[str, str] = {
    "organizations": "id",
    "organization_members": "organization_id",
    "stores": "organization_id",
    "store_sync_config": "organization_id",
    "store_access_policies": "organization_id",
    "jobs": "organization_id",
    "webhook_inbox": "organization_id",
    "sync_runs": "organization_id",
    "sync_state": "organization_id",
    "activity_log": "organization_id",
    "events": "organization_id",
    "lookup_audit": "organization_id",
    "products": "organization_id",
    "product_variants": "organization_id",
    "inventory_locations": "organization_id",
    "inventory_levels": "organization_id",
    "customers": "organization_id",
    "orders": "organization_id",
    "order_line_items": "organization_id",
    "order_fulfillments": "organization_id",
    "gdpr_requests": "organization_id",
    "product_links": "organization_id",
    "product_link_log": "organization_id",
    "notification_channels": "organization_id",
    "notification_rules": "organization_id",
    "notification_settings": "organization_id",
    "notifications": "organization_id",
    "notification_events": "organization_id",
}
# Tenant tables only owners and admins may read.
ADMIN_ONLY_TABLES = {"gdpr_requests", "webhook_inbox"}
PRIVATE_TABLES = {
    "store_credentials",
    "oauth_states",
    "pending_installs",
    "job_concurrency_locks",
    "maintenance_runs",
    "settings",
    "schema_migrations",
    "rate_limits",
    "synced_resources",
    "synced_tables",
    "job_kinds",
    "event_types",
    "redacted_rows",
    "api_keys",
    "link_push_queue",
    "notification_channel_secrets",
    "notification_inbox",
    "webhook_subscriptions_seen",
}
VIEWS = {"store_sync_statistics", "product_link_statistics", "store_link_statistics"}

# The frontend RPCs: the only functions `authenticated` may execute (docs: frontend API).
FRONTEND_FUNCTIONS = {
    "is_member",
    "has_org_role",
    "my_organization_ids",
    "my_organizations",
    "create_organization",
    "my_stores",
    "trigger_sync",
    "set_sync_frequency",
    "set_sync_enabled",
    "set_access_policy",
    "disconnect_store",
    "claim_pending_install",
    "begin_install",
    "synced_record_counts",
    "create_api_key",
    "list_api_keys",
    "revoke_api_key",
    "create_product_link",
    "update_product_link",
    "pause_product_link",
    "delete_product_link",
    "auto_link_by_sku",
    "notification_event_types",
    "create_notification_rule",
    "update_notification_rule",
    "delete_notification_rule",
    "delete_notification_channel",
    "resume_notification_channel",
    "test_notification_channel",
    "set_notification_settings",
}

CLIENT_ROLES = ("anon", "authenticated")


@dataclass(frozen=True)
class World:
    owner_a: uuid.UUID
    admin_a: uuid.UUID
    member_a: uuid.UUID
    owner_b: uuid.UUID
    org_a: uuid.UUID
    org_b: uuid.UUID
    store_a: uuid.UUID
    store_b: uuid.UUID


def _scalar(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def _seed_store(conn: psycopg.Connection[Any], org: uuid.UUID, store: uuid.UUID, owner: uuid.UUID, tag: str) -> None:
    """Rows for one store in every tenant table, written the way the worker writes them."""
    ex = conn.execute
    ex("select shopsync.enqueue_job('shopify.sync', '{}'::jsonb, p_store_id => %s, p_resource => 'products', "
       "p_concurrency_key => %s)", (store, f"store:{store}"))
    ex("select shopsync.enqueue_job('shopify.sync', '{}'::jsonb, p_store_id => %s, p_resource => 'orders', "
       "p_dedupe_key => %s)", (store, f"sync:{store}:orders"))
    ex("select * from shopsync.record_webhook('shopify', %s, %s, 'products/update', '{\"id\": 1}'::jsonb)",
       (f"delivery-{tag}", store))
    ex("select shopsync.start_sync_run(%s, 'products', 'full')", (store,))
    ex("select shopsync.save_sync_state(%s, 'products', now(), '{\"page\": 2}'::jsonb)", (store,))
    ex("insert into shopsync.activity_log (organization_id, store_id, actor_user_id, action) "
       "values (%s, %s, %s, 'test.seeded')", (org, store, owner))
    params = {"s": store, "o": org, "t": tag}
    ex("insert into shopsync.products (store_id, id, organization_id, title) values (%(s)s, 'p1', %(o)s, %(t)s)",
       params)
    ex("insert into shopsync.product_variants (store_id, id, product_id, organization_id, sku) "
       "values (%(s)s, 'v1', 'p1', %(o)s, %(t)s)", params)
    ex("insert into shopsync.inventory_locations (store_id, id, organization_id, name) "
       "values (%(s)s, 'l1', %(o)s, %(t)s)", params)
    ex("insert into shopsync.inventory_levels (store_id, inventory_item_id, location_id, organization_id, available) "
       "values (%(s)s, 'i1', 'l1', %(o)s, 5)", params)
    ex("insert into shopsync.customers (store_id, id, organization_id, email) "
       "values (%(s)s, 'c1', %(o)s, %(t)s || '@example.test')", params)
    ex("insert into shopsync.orders (store_id, id, organization_id, name, customer_id) "
       "values (%(s)s, 'o1', %(o)s, %(t)s, 'c1')", params)
    ex("insert into shopsync.order_line_items (store_id, id, order_id, organization_id, sku, quantity) "
       "values (%(s)s, 'li1', 'o1', %(o)s, %(t)s, 1)", params)
    ex("insert into shopsync.order_fulfillments (store_id, id, order_id, organization_id, status) "
       "values (%(s)s, 'f1', 'o1', %(o)s, 'success')", params)
    ex("insert into shopsync.gdpr_requests (store_id, organization_id, platform, platform_request_id, request_type, "
       "subject) values (%(s)s, %(o)s, 'shopify', 'gdpr-' || %(t)s, 'customer_redact', "
       "jsonb_build_object('email', %(t)s || '@example.test'))", params)
    ex("select shopsync.put_store_credentials(%s, 'oauth', 'k1', %s)", (store, f"v1.fake-sealed-{tag}"))
    ex("select shopsync.create_oauth_state('shopify', %s, %s, %s)", (org, owner, f"{tag}-next.myshopify.com"))
    ex("select * from shopsync.park_pending_install('shopify', %s)", (f"{tag}-pending.myshopify.com",))
    ex("select shopsync.reserve_request_slot(%s, 3)", (f"shoprenter:{tag}",))
    ex("insert into shopsync.store_access_policies (store_id, resource, organization_id, policy) "
       "values (%(s)s, 'customers', %(o)s, 'api_only')", params)
    ex("select shopsync.record_event(%s, 'webhooks.recreated', %s)", (store, tag))
    ex("insert into shopsync_private.redacted_rows (store_id, table_name, row_id, redacted_at) "
       "values (%(s)s, 'customers', 'c-redacted', now())", params)
    key = ex("insert into shopsync_private.api_keys (organization_id, name, prefix, key_hash, resources) "
             "values (%s, %s, 'ssk_' || substr(md5(%s), 1, 12), encode(sha256(convert_to(%s, 'UTF8')), 'hex'), "
             "'{customers}') returning id", (org, tag, tag, tag)).fetchone()
    assert key is not None
    ex("select shopsync.record_lookup(%s, 'http', 'customers_by_email', 'answered', 200, 3.5, %s, %s, "
       "p_resource => 'customers', p_policy => 'sync', p_result_count => 1)", (org, store, key["id"]))
    target = _scalar(conn, "select shopsync.upsert_store(%s, 'tiktok', %s)", (org, f"77{ord(tag)}"))
    link = _scalar(conn, "insert into shopsync.product_links (organization_id, source_store_id, source_variant_id, "
                         "target_store_id, target_product_id, target_sku_id) values (%s, %s, 'v1', %s, 'tp1', 'ts1') "
                         "returning id", (org, store, target))
    ex("insert into shopsync.product_link_log (organization_id, link_id, target_store_id, field, new_value, result) "
       "values (%s, %s, %s, 'price', %s, 'pushed')", (org, link, target, tag))
    ex("select shopsync_private.request_link_push(%s, 'tp1')", (target,))
    # notifications: a channel with its sealed secret, a rule, settings, a message, and an event still waiting
    channel = _scalar(conn, "select (shopsync.put_notification_channel(%s, %s, gen_random_uuid(), %s, 'webhook', "
                            "'{\"url\": \"https://hooks.example.com\"}', 'k1', %s)) ->> 'id'",
                      (owner, org, f"hooks-{tag}", f"v1.fake-sealed-{tag}"))
    ex("insert into shopsync.notification_rules (organization_id, channel_id, group_window_seconds) "
       "values (%s, %s, 0)", (org, channel))
    ex("insert into shopsync.notification_settings (organization_id, summary_hour) values (%s, 8)", (org,))
    ex("select shopsync.record_event(%s, 'job.dead', %s)", (store, tag))
    ex("select shopsync.collect_notifications(100)")
    ex("select shopsync.record_event(%s, 'store.uninstalled', %s)", (store, tag))
    ex("select shopsync.record_webhook_check(%s, '{orders/create}', '{}')", (store,))


@pytest.fixture
def world(conn: psycopg.Connection[Any]) -> World:
    owner_a, owner_b = new_user(conn), new_user(conn)
    admin_a, member_a = new_user(conn), new_user(conn)
    org_a, org_b = personal_org(conn, owner_a), personal_org(conn, owner_b)
    conn.execute("insert into shopsync.organization_members (organization_id, user_id, role) "
                 "values (%s, %s, 'admin'), (%s, %s, 'member')", (org_a, admin_a, org_a, member_a))
    store_a = _scalar(conn, "select shopsync.upsert_store(%s, 'shopify', 'a.myshopify.com')", (org_a,))
    store_b = _scalar(conn, "select shopsync.upsert_store(%s, 'shopify', 'b.myshopify.com')", (org_b,))
    _seed_store(conn, org_a, store_a, owner_a, "a")
    _seed_store(conn, org_b, store_b, owner_b, "b")
    # a running job per store holds a concurrency lock; a maintenance task has run once
    claimed = conn.execute("select id from shopsync.claim_jobs('rls-test', 100)").fetchall()
    assert len(claimed) >= 2
    conn.execute("select shopsync.run_maintenance('reap_expired_leases', 0)")
    return World(owner_a, admin_a, member_a, owner_b, org_a, org_b, store_a, store_b)


def _discovered_tables(conn: psycopg.Connection[Any]) -> dict[str, set[str]]:
    rows = conn.execute("select schemaname, tablename from pg_tables where schemaname = any(%s)",
                        ([PUBLIC_SCHEMA, PRIVATE_SCHEMA],)).fetchall()
    found: dict[str, set[str]] = {PUBLIC_SCHEMA: set(), PRIVATE_SCHEMA: set()}
    for r in rows:
        found[r["schemaname"]].add(r["tablename"])
    return found


def _columns(conn: psycopg.Connection[Any], schema: str, table: str, writable: bool = False) -> list[str]:
    """Column names in order; with writable, only those an UPDATE may set (no identity/generated)."""
    rows = conn.execute("select column_name, is_identity, is_generated from information_schema.columns "
                        "where table_schema = %s and table_name = %s order by ordinal_position",
                        (schema, table)).fetchall()
    return [r["column_name"] for r in rows
            if not writable or (r["is_identity"] == "NO" and r["is_generated"] == "NEVER")]


def _insertable(conn: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    rows = conn.execute("select column_name from information_schema.columns where table_schema = %s "
                        "and table_name = %s and is_generated = 'NEVER' order by ordinal_position",
                        (schema, table)).fetchall()
    return [r["column_name"] for r in rows]


def _qualified(schema: str, table: str) -> sql.Composable:
    return sql.Identifier(schema, table)


def _snapshot(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, str]]:
    """Count and content hash of every shopsync table, read as superuser."""
    out: dict[str, tuple[int, str]] = {}
    for schema, tables in _discovered_tables(conn).items():
        for table in tables:
            row = conn.execute(sql.SQL("select count(*) as n, md5(coalesce(string_agg(x::text, '|' order by x::text), "
                                       "'')) as h from {} x").format(_qualified(schema, table))).fetchone()
            assert row is not None
            out[f"{schema}.{table}"] = (row["n"], row["h"])
    return out


def _attempt(conn: psycopg.Connection[Any], role: str, user: uuid.UUID | None, query: sql.Composable | str,
             params: Any = None) -> tuple[psycopg.Error | None, int, list[dict[str, Any]]]:
    """Run one statement as a client role in its own transaction (always rolled back).

    Returns (error or None, rowcount, rows).
    """
    try:
        with as_role(conn, role, user):
            cur = conn.execute(query, params)
            rows = cur.fetchall() if cur.description else []
            rowcount = cur.rowcount
            raise _Rollback(rowcount, rows)
    except _Rollback as done:
        return None, done.rowcount, done.rows
    except psycopg.Error as exc:
        return exc, -1, []


class _Rollback(Exception):
    """Carries a statement's result out of the transaction so that it is rolled back."""

    def __init__(self, rowcount: int, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rowcount = rowcount
        self.rows = rows


def _report(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


# ---- coverage -----------------------------------------------------------------------------------

def test_every_table_is_covered_and_seeded(conn: psycopg.Connection[Any], world: World) -> None:
    found = _discovered_tables(conn)
    assert found[PUBLIC_SCHEMA] == set(TENANT_TABLES), (
        "shopsync tables without RLS coverage in tests/test_rls.py (or covered tables that vanished): "
        f"{sorted(found[PUBLIC_SCHEMA] ^ set(TENANT_TABLES))}")
    assert found[PRIVATE_SCHEMA] == PRIVATE_TABLES, (
        f"shopsync_private tables without coverage: {sorted(found[PRIVATE_SCHEMA] ^ PRIVATE_TABLES)}")
    views = {r["viewname"] for r in conn.execute(
        "select viewname from pg_views where schemaname = any(%s)", ([PUBLIC_SCHEMA, PRIVATE_SCHEMA],))}
    assert views == VIEWS, f"views without coverage: {sorted(views ^ VIEWS)}"

    # every table has RLS on (a table without it would be readable in full by `authenticated`)
    no_rls = conn.execute("select n.nspname || '.' || c.relname as t from pg_class c "
                          "join pg_namespace n on n.oid = c.relnamespace "
                          "where n.nspname = any(%s) and c.relkind = 'r' and not c.relrowsecurity",
                          ([PUBLIC_SCHEMA, PRIVATE_SCHEMA],)).fetchall()
    assert no_rls == [], f"tables without row level security: {no_rls}"

    # the isolation tests below are not vacuous: both organizations have rows in every tenant table
    problems = []
    for table, org_col in TENANT_TABLES.items():
        counts = conn.execute(
            sql.SQL("select count(*) filter (where {c} = %s) as a, count(*) filter (where {c} = %s) as b from {t}")
            .format(c=sql.Identifier(org_col), t=_qualified(PUBLIC_SCHEMA, table)),
            (world.org_a, world.org_b)).fetchone()
        assert counts is not None
        if counts["a"] == 0 or counts["b"] == 0:
            problems.append(f"{table}: seeded rows A={counts['a']} B={counts['b']}")
    for table in PRIVATE_TABLES:
        n = _scalar(conn, sql.SQL("select count(*) from {}").format(_qualified(PRIVATE_SCHEMA, table)))
        if n == 0:
            problems.append(f"{PRIVATE_SCHEMA}.{table}: not seeded")
    _report(problems)


# ---- reads --------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["owner_a", "admin_a", "member_a", "owner_b"])
def test_authenticated_sees_only_own_organizations(conn: psycopg.Connection[Any], world: World, who: str) -> None:
    user: uuid.UUID = getattr(world, who)
    role_in_own = {"owner_a": "owner", "admin_a": "admin", "member_a": "member", "owner_b": "owner"}[who]
    own_org, other_org = (world.org_b, world.org_a) if who == "owner_b" else (world.org_a, world.org_b)
    own_store, other_store = (world.store_b, world.store_a) if who == "owner_b" else (world.store_a, world.store_b)
    my_orgs = {r["organization_id"] for r in conn.execute(
        "select organization_id from shopsync.organization_members where user_id = %s", (user,))}

    problems = []
    for table, org_col in TENANT_TABLES.items():
        columns = _columns(conn, PUBLIC_SCHEMA, table)
        store_expr = sql.SQL("store_id") if "store_id" in columns else sql.SQL("null::uuid")
        query = sql.SQL("select {c} as org, {s} as store from {t}").format(
            c=sql.Identifier(org_col), s=store_expr, t=_qualified(PUBLIC_SCHEMA, table))
        # what the superuser sees of the caller's organization
        expected_own = conn.execute(
            sql.SQL("select count(*) as n from {t} where {c} = %s").format(
                t=_qualified(PUBLIC_SCHEMA, table), c=sql.Identifier(org_col)), (own_org,)).fetchone()
        assert expected_own is not None
        if table in ADMIN_ONLY_TABLES and role_in_own == "member":
            expected_own["n"] = 0

        err, _, rows = _attempt(conn, "authenticated", user, query)
        if err is not None:
            problems.append(f"{table}: read failed for a member: {err.sqlstate} {err}")
            continue
        orgs = {r["org"] for r in rows}
        stores = {r["store"] for r in rows if r["store"] is not None}
        if other_org in orgs or other_store in stores:
            problems.append(f"{table}: {who} sees the other organization's rows")
        if not orgs <= my_orgs:
            problems.append(f"{table}: {who} sees rows of organizations it is not a member of: {orgs - my_orgs}")
        own_seen = sum(1 for r in rows if r["org"] == own_org)
        if own_seen != expected_own["n"]:
            problems.append(f"{table}: {who} sees {own_seen} of its organization's rows, expected {expected_own['n']}")
        if not stores <= _stores_of(conn, my_orgs):
            problems.append(f"{table}: {who} sees rows of stores outside its organizations: {stores}")
    _report(problems)


def _stores_of(conn: psycopg.Connection[Any], orgs: set[uuid.UUID]) -> set[uuid.UUID]:
    rows = conn.execute("select id from shopsync.stores where organization_id = any(%s)", (list(orgs),))
    return {r["id"] for r in rows}


def test_authenticated_without_membership_sees_nothing(conn: psycopg.Connection[Any], world: World) -> None:
    """A signed-up user of neither organization (only its own empty personal org) sees no A or B rows."""
    stranger = new_user(conn)
    problems = []
    for table, org_col in TENANT_TABLES.items():
        err, _, rows = _attempt(conn, "authenticated", stranger, sql.SQL("select {c} as org from {t}").format(
            c=sql.Identifier(org_col), t=_qualified(PUBLIC_SCHEMA, table)))
        if err is not None:
            problems.append(f"{table}: {err.sqlstate} {err}")
        elif {r["org"] for r in rows} & {world.org_a, world.org_b}:
            problems.append(f"{table}: a stranger sees tenant rows")
    _report(problems)


def test_authenticated_without_sub_claim_sees_nothing(conn: psycopg.Connection[Any], world: World) -> None:
    problems = []
    for table in TENANT_TABLES:
        err, _, rows = _attempt(conn, "authenticated", None,
                                sql.SQL("select 1 from {}").format(_qualified(PUBLIC_SCHEMA, table)))
        if err is None and rows:
            problems.append(f"{table}: {len(rows)} rows visible without a user")
        elif err is not None and err.sqlstate != "42501":
            problems.append(f"{table}: unexpected error {err.sqlstate} {err}")
    _report(problems)


def test_anon_reads_nothing(conn: psycopg.Connection[Any], world: World) -> None:
    targets = [(PUBLIC_SCHEMA, t) for t in TENANT_TABLES] + [(PRIVATE_SCHEMA, t) for t in PRIVATE_TABLES]
    targets += [(PUBLIC_SCHEMA, v) for v in VIEWS]
    problems = []
    for schema, table in targets:
        err, _, rows = _attempt(conn, "anon", None, sql.SQL("select * from {}").format(_qualified(schema, table)))
        if err is None:
            if rows:
                problems.append(f"{schema}.{table}: anon reads {len(rows)} rows")
        elif err.sqlstate != "42501":
            problems.append(f"{schema}.{table}: anon read failed with {err.sqlstate} (expected 42501): {err}")
    _report(problems)


@pytest.mark.parametrize("role", CLIENT_ROLES)
def test_no_client_role_reads_private_tables(conn: psycopg.Connection[Any], world: World, role: str) -> None:
    problems = []
    for table in sorted(PRIVATE_TABLES):
        err, _, _rows = _attempt(conn, role, world.owner_a,
                                 sql.SQL("select * from {}").format(_qualified(PRIVATE_SCHEMA, table)))
        if err is None or err.sqlstate != "42501":
            problems.append(f"{PRIVATE_SCHEMA}.{table}: {role} read gave {err and err.sqlstate} (expected 42501)")
    _report(problems)
    # not even by guessing a store id
    err, _, _ = _attempt(conn, role, world.owner_a,
                         "select sealed from shopsync_private.store_credentials where store_id = %s", (world.store_a,))
    assert err is not None and err.sqlstate == "42501"


# ---- writes -------------------------------------------------------------------------------------

def _write_statements(conn: psycopg.Connection[Any], schema: str, table: str,
                      other_org: uuid.UUID) -> list[tuple[str, sql.Composable, Any]]:
    target = _qualified(schema, table)
    first = sql.Identifier(_columns(conn, schema, table, writable=True)[0])
    statements: list[tuple[str, sql.Composable, Any]] = [
        ("insert", sql.SQL("insert into {} default values").format(target), None),
        ("update", sql.SQL("update {t} set {c} = {c}").format(t=target, c=first), None),
        ("delete", sql.SQL("delete from {}").format(target), None),
        ("truncate", sql.SQL("truncate {} cascade").format(target), None),
    ]
    if schema == PUBLIC_SCHEMA and table in TENANT_TABLES:
        org_col = sql.Identifier(TENANT_TABLES[table])
        statements += [
            ("targeted update", sql.SQL("update {t} set {c} = {c} where {o} = %s").format(
                t=target, c=first, o=org_col), (other_org,)),
            ("targeted delete", sql.SQL("delete from {t} where {o} = %s").format(t=target, o=org_col), (other_org,)),
            # every column a row can be given (generated columns are computed, never inserted)
            ("copying insert", sql.SQL("insert into {t} ({c}) overriding system value select {c} from {t} limit 1").format(
                t=target, c=sql.SQL(", ").join(map(sql.Identifier, _insertable(conn, schema, table)))), None),
        ]
    return statements


@pytest.mark.parametrize("role", CLIENT_ROLES)
def test_no_client_role_writes_any_table(conn: psycopg.Connection[Any], world: World, role: str) -> None:
    before = _snapshot(conn)
    targets = [(PUBLIC_SCHEMA, t) for t in TENANT_TABLES] + [(PRIVATE_SCHEMA, t) for t in PRIVATE_TABLES]
    targets += [(PUBLIC_SCHEMA, v) for v in VIEWS]
    problems = []
    for user in (world.owner_a, world.admin_a, world.member_a):
        for schema, table in targets:
            for label, statement, params in _write_statements(conn, schema, table, world.org_b):
                err, rowcount, _ = _attempt(conn, role, user, statement, params)
                if err is None:
                    if rowcount != 0 or label in ("insert", "copying insert", "truncate"):
                        problems.append(f"{schema}.{table}: {role} {label} succeeded ({rowcount} rows)")
                elif err.sqlstate != "42501" and table not in VIEWS:
                    # (a view that is not updatable refuses before privileges are checked; its
                    # privileges are asserted in test_client_roles_hold_no_write_privileges)
                    problems.append(f"{schema}.{table}: {role} {label} failed with {err.sqlstate}, "
                                    f"expected 42501: {err}")
        if role == "anon":
            break
    _report(problems)
    # nothing changed anywhere (every attempt was rolled back anyway; this proves none got through)
    assert _snapshot(conn) == before


def test_writes_in_a_committed_transaction_leave_other_org_unchanged(conn: psycopg.Connection[Any],
                                                                     world: World) -> None:
    """The same attempts committed (not rolled back): B's rows afterwards, as superuser, are identical."""
    before = _snapshot(conn)
    for table, org_col in TENANT_TABLES.items():
        for statement in (
            sql.SQL("update {t} set {c} = {c} where {o} = %s"),
            sql.SQL("delete from {t} where {o} = %s"),
        ):
            first = sql.Identifier(_columns(conn, PUBLIC_SCHEMA, table, writable=True)[0])
            query = statement.format(t=_qualified(PUBLIC_SCHEMA, table), c=first, o=sql.Identifier(org_col))
            try:
                with as_role(conn, "authenticated", world.owner_a):
                    cur = conn.execute(query, (world.org_b,))
                    assert cur.rowcount == 0, f"{table}: {cur.rowcount} of B's rows written by A"
            except psycopg.Error as exc:
                assert exc.sqlstate == "42501", f"{table}: {exc.sqlstate} {exc}"
    assert _snapshot(conn) == before


WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def test_client_roles_hold_no_write_privileges(conn: psycopg.Connection[Any]) -> None:
    """Catalog-level proof for every relation (tables and views), including column-level grants."""
    relations = conn.execute(
        "select c.oid, n.nspname || '.' || c.relname as name, n.nspname as schema from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = any(%s) and c.relkind in ('r', 'v', 'm', 'p', 'f')",
        ([PUBLIC_SCHEMA, PRIVATE_SCHEMA],)).fetchall()
    assert len(relations) == len(TENANT_TABLES) + len(PRIVATE_TABLES) + len(VIEWS)
    problems = []
    for rel in relations:
        for role in CLIENT_ROLES:
            for privilege in WRITE_PRIVILEGES:
                if _scalar(conn, "select has_table_privilege(%s, %s::oid, %s)", (role, rel["oid"], privilege)):
                    problems.append(f"{rel['name']}: {role} has {privilege}")
            for privilege in ("INSERT", "UPDATE", "REFERENCES"):
                if _scalar(conn, "select has_any_column_privilege(%s, %s::oid, %s)", (role, rel["oid"], privilege)):
                    problems.append(f"{rel['name']}: {role} has column-level {privilege}")
            can_select = _scalar(conn, "select has_any_column_privilege(%s, %s::oid, 'SELECT')", (role, rel["oid"]))
            expected = role == "authenticated" and rel["schema"] == PUBLIC_SCHEMA
            if can_select != expected:
                problems.append(f"{rel['name']}: {role} SELECT is {can_select}, expected {expected}")
    _report(problems)


# ---- functions ----------------------------------------------------------------------------------

def _functions(conn: psycopg.Connection[Any], schema: str) -> list[dict[str, Any]]:
    return conn.execute(
        "select p.oid, p.proname, p.oid::regprocedure::text as signature, "
        "has_function_privilege('authenticated', p.oid, 'EXECUTE') as authenticated, "
        "has_function_privilege('anon', p.oid, 'EXECUTE') as anon, "
        "has_function_privilege('service_role', p.oid, 'EXECUTE') as service_role "
        "from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = %s order by 3",
        (schema,)).fetchall()


def test_function_execute_privileges_are_exactly_the_frontend_set(conn: psycopg.Connection[Any]) -> None:
    functions = _functions(conn, PUBLIC_SCHEMA)
    names = {f["proname"] for f in functions}
    assert FRONTEND_FUNCTIONS <= names, f"documented frontend RPCs missing: {sorted(FRONTEND_FUNCTIONS - names)}"
    problems = []
    for f in functions:
        expected = f["proname"] in FRONTEND_FUNCTIONS
        if f["authenticated"] != expected:
            problems.append(f"{f['signature']}: authenticated EXECUTE is {f['authenticated']}, expected {expected}")
        if f["anon"]:
            problems.append(f"{f['signature']}: anon can EXECUTE")
        if not f["service_role"]:
            problems.append(f"{f['signature']}: service_role cannot EXECUTE")
    for f in _functions(conn, PRIVATE_SCHEMA):
        if f["authenticated"] or f["anon"]:
            problems.append(f"{f['signature']}: a client role can EXECUTE a private function")
    _report(problems)
    # and the private schema itself is closed to clients
    for role in CLIENT_ROLES:
        assert _scalar(conn, "select has_schema_privilege(%s, 'shopsync_private', 'USAGE')", (role,)) is False
        assert _scalar(conn, "select has_schema_privilege(%s, 'shopsync', 'CREATE')", (role,)) is False


SERVICE_CALLS: list[tuple[str, Callable[[World], tuple[Any, ...]]]] = [
    ("select * from shopsync.get_store_credentials(%s)", lambda w: (w.store_a,)),
    ("select * from shopsync.claim_jobs('evil', 10)", lambda w: ()),
    ("select shopsync.enqueue_job('shopify.sync', '{}'::jsonb, %s)", lambda w: (w.store_b,)),
    ("select shopsync.put_store_credentials(%s, 'oauth', 'k1', 'v1.attacker')", lambda w: (w.store_a,)),
    ("select shopsync.set_store_sync_frequency(%s, 'daily')", lambda w: (w.store_a,)),
    ("select shopsync.set_store_sync_enabled(%s, false)", lambda w: (w.store_b,)),
    ("select shopsync.retry_job(1)", lambda w: ()),
    ("select * from shopsync.credentials_to_reseal('other')", lambda w: ()),
    ("select shopsync.upsert_store(%s, 'shopify', 'evil.myshopify.com')", lambda w: (w.org_b,)),
    ("select shopsync.request_sync(%s)", lambda w: (w.store_b,)),
    ("select * from shopsync.sync_statistics()", lambda w: ()),
    ("select * from shopsync.list_jobs()", lambda w: ()),
    ("select shopsync.run_maintenance('prune_history', 0)", lambda w: ()),
    ("select * from shopsync.park_pending_install('shopify', 'x.myshopify.com')", lambda w: ()),
    ("select shopsync.reserve_request_slot('shoprenter:x', 1000)", lambda w: ()),
    ("select shopsync.defer_requests('shoprenter:x', 3600)", lambda w: ()),
    ("select shopsync.prepare_store_connection(%s, %s, 'woocommerce', 'https://x.example')",
     lambda w: (w.owner_a, w.org_a)),
    ("select * from shopsync.store_webhook_credentials(%s)", lambda w: (w.store_a,)),
    ("select * from shopsync.reissue_pending_install_claim('shoprenter', 'x')", lambda w: ()),
    ("select shopsync.uninstall_shop('shopify', 'x.myshopify.com', 'forged')", lambda w: ()),
    ("select shopsync_private.log_activity(%s, null, 'forged')", lambda w: (w.org_b,)),
    ("select * from shopsync_private.store_for_caller(%s, array['owner'])", lambda w: (w.store_a,)),
    ("select shopsync.lookup_synced(%s, 'customers_by_email', array['b@example.test'])", lambda w: (w.store_b,)),
    ("select * from shopsync.begin_lookup(%s, 'customers', p_user_id => %s)", lambda w: (w.store_b, w.owner_a)),
    ("select * from shopsync.lookup_stores(p_user_id => %s)", lambda w: (w.owner_b,)),
    ("select shopsync.record_lookup(%s, 'http', 'forged', 'answered', 200, 1)", lambda w: (w.org_b,)),
    ("select shopsync.lookup_key_status('x')", lambda w: ()),
    ("select shopsync.collect_notifications(100)", lambda w: ()),
    ("select shopsync.begin_notification_send(1)", lambda w: ()),
    ("select shopsync.finish_notification_send(1, 'sent')", lambda w: ()),
    ("select shopsync.put_notification_channel(%s, %s, gen_random_uuid(), 'x', 'webhook', '{}')",
     lambda w: (w.owner_a, w.org_a)),
    ("select * from shopsync.notification_secrets_to_reseal('other')", lambda w: ()),
    ("select shopsync.record_webhook_check(%s, '{}', '{a}')", lambda w: (w.store_b,)),
]


@pytest.mark.parametrize("role", CLIENT_ROLES)
def test_client_roles_cannot_call_service_functions(conn: psycopg.Connection[Any], world: World, role: str) -> None:
    before = _snapshot(conn)
    problems = []
    for query, params in SERVICE_CALLS:
        err, _, rows = _attempt(conn, role, world.owner_a, query, params(world))
        if err is None or err.sqlstate != "42501":
            problems.append(f"{query}: {role} got {err.sqlstate if err else 'success'} (expected 42501)")
    _report(problems)
    assert _snapshot(conn) == before


def test_anon_cannot_call_frontend_rpcs(conn: psycopg.Connection[Any], world: World) -> None:
    calls = [
        ("select * from shopsync.my_organizations()", ()),
        ("select * from shopsync.my_stores()", ()),
        ("select shopsync.create_organization('anon org')", ()),
        ("select shopsync.trigger_sync(%s)", (world.store_a,)),
        ("select shopsync.set_sync_frequency(%s, 'daily')", (world.store_a,)),
        ("select shopsync.set_sync_enabled(%s, false)", (world.store_a,)),
        ("select shopsync.set_access_policy(%s, 'products', 'not_allowed')", (world.store_a,)),
        ("select shopsync.disconnect_store(%s)", (world.store_a,)),
        ("select shopsync.claim_pending_install(gen_random_uuid(), 'x', %s)", (world.org_a,)),
        ("select shopsync.begin_install(%s, 'shopify', 'a.myshopify.com')", (world.org_a,)),
        ("select shopsync.is_member(%s)", (world.org_a,)),
    ]
    for query, params in calls:
        err, _, _ = _attempt(conn, "anon", None, query, params)
        assert err is not None and err.sqlstate == "42501", f"{query}: {err and err.sqlstate}"


def test_membership_helpers_answer_only_for_the_caller(conn: psycopg.Connection[Any], world: World) -> None:
    for user, org, expected in [(world.owner_a, world.org_a, True), (world.owner_a, world.org_b, False),
                                (world.member_a, world.org_a, True), (world.owner_b, world.org_a, False)]:
        with as_role(conn, "authenticated", user):
            assert _scalar(conn, "select shopsync.is_member(%s)", (org,)) is expected
    with as_role(conn, "authenticated", world.member_a):
        assert _scalar(conn, "select shopsync.has_org_role(%s, array['owner', 'admin'])", (world.org_a,)) is False
        assert _scalar(conn, "select shopsync.has_org_role(%s, array['member'])", (world.org_a,)) is True
    with as_role(conn, "authenticated", world.admin_a):
        assert _scalar(conn, "select shopsync.has_org_role(%s, array['owner', 'admin'])", (world.org_a,)) is True


# ---- the view and GDPR requests -----------------------------------------------------------------

def test_store_sync_statistics_view_respects_rls(conn: psycopg.Connection[Any], world: World) -> None:
    # (each organization's second store, a TikTok link target, is left out here)
    everything = {r["store_id"]: r for r in conn.execute("select * from shopsync.store_sync_statistics "
                                                          "where platform = 'shopify'")}
    assert set(everything) == {world.store_a, world.store_b}

    for user, own_store, own_org in [(world.owner_a, world.store_a, world.org_a),
                                     (world.member_a, world.store_a, world.org_a),
                                     (world.owner_b, world.store_b, world.org_b)]:
        with as_role(conn, "authenticated", user):
            rows = conn.execute("select * from shopsync.store_sync_statistics where platform = 'shopify'").fetchall()
        assert [r["store_id"] for r in rows] == [own_store]
        row = rows[0]
        assert row["organization_id"] == own_org
        assert (row["products"], row["variants"], row["customers"], row["orders"]) == (1, 1, 1, 1)
        # seeded: a products sync, an orders sync and a webhook job, all claimed by the fixture
        assert (row["jobs_queued"], row["jobs_running"]) == (0, 3)
        assert row["sync_enabled"] is True and row["frequency"] == "hourly"
        # a member's counts are the real ones (RLS filters other stores, never undercounts its own)
        assert row == everything[own_store]

    # asking for the other store by id gives nothing rather than an error or a leak
    with as_role(conn, "authenticated", world.owner_a):
        assert conn.execute("select * from shopsync.store_sync_statistics where store_id = %s",
                            (world.store_b,)).fetchall() == []
    # the view is security_invoker: it never runs with its owner's rights
    options = _scalar(conn, "select reloptions from pg_class where oid = 'shopsync.store_sync_statistics'::regclass")
    assert "security_invoker=true" in (options or [])


def test_gdpr_requests_are_for_owners_and_admins_only(conn: psycopg.Connection[Any], world: World) -> None:
    seeded_a = _scalar(conn, "select count(*) from shopsync.gdpr_requests where organization_id = %s", (world.org_a,))
    assert seeded_a == 1
    for user, expected in [(world.owner_a, 1), (world.admin_a, 1), (world.member_a, 0)]:
        with as_role(conn, "authenticated", user):
            rows = conn.execute("select organization_id, subject from shopsync.gdpr_requests").fetchall()
        assert len(rows) == expected
        assert all(r["organization_id"] == world.org_a for r in rows)
    # demoting the admin takes the access away at once
    conn.execute("update shopsync.organization_members set role = 'member' where user_id = %s and organization_id = %s",
                 (world.admin_a, world.org_a))
    with as_role(conn, "authenticated", world.admin_a):
        assert conn.execute("select 1 from shopsync.gdpr_requests").fetchall() == []


def test_removed_member_loses_access_at_once(conn: psycopg.Connection[Any], world: World) -> None:
    with as_role(conn, "authenticated", world.member_a):
        assert conn.execute("select id from shopsync.stores where platform = 'shopify'").fetchall() == \
            [{"id": world.store_a}]
    conn.execute("delete from shopsync.organization_members where user_id = %s and organization_id = %s",
                 (world.member_a, world.org_a))
    with as_role(conn, "authenticated", world.member_a):
        assert conn.execute("select id from shopsync.stores").fetchall() == []
        assert conn.execute("select 1 from shopsync.products").fetchall() == []
        orgs = {r["id"] for r in conn.execute("select id from shopsync.organizations")}
    assert orgs == {personal_org(conn, world.member_a)}
