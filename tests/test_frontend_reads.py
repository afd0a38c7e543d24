"""The frontend's reads under RLS use the same indexes as the service role's: checked with EXPLAIN as an
``authenticated`` member, on enough rows (two organizations, one user in both) that the planner's choice
is the one it makes at scale. Timings are in bench/frontend_reads.py, not here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.conftest import as_role, new_user, personal_org

Conn = psycopg.Connection[dict[str, Any]]
ORDERS_PER_STORE = 20_000


@dataclass
class Tenants:
    alice: uuid.UUID          # member of org A only
    both: uuid.UUID           # member of orgs A and B
    org_a: uuid.UUID
    org_b: uuid.UUID
    store_a: uuid.UUID
    store_b: uuid.UUID


def seed_store(conn: Conn, store: uuid.UUID, org: uuid.UUID, tag: str) -> None:
    params = {"s": store, "o": org, "t": tag, "n": ORDERS_PER_STORE}
    conn.execute("insert into shopsync.customers (store_id, id, organization_id, email, phone) "
                 "select %(s)s, 'c' || g, %(o)s, 'Buyer' || g || '@' || %(t)s || '.example', '+36 30 ' || (1000000 + g) "
                 "from generate_series(1, %(n)s / 4) g", params)
    conn.execute("insert into shopsync.orders (store_id, id, organization_id, name, customer_id, email, phone, "
                 "processed_at, source_updated_at) "
                 "select %(s)s, 'o' || g, %(o)s, '#' || (1000 + g), 'c' || (g %% (%(n)s / 4) + 1), "
                 "'buyer' || (g %% (%(n)s / 4) + 1) || '@' || %(t)s || '.example', null, "
                 "timestamptz '2026-01-01' + g * interval '1 minute', now() from generate_series(1, %(n)s) g", params)
    conn.execute("insert into shopsync.product_variants (store_id, id, product_id, organization_id, sku) "
                 "select %(s)s, 'v' || g, 'p' || (g / 3), %(o)s, %(t)s || '-SKU-' || g "
                 "from generate_series(1, %(n)s / 2) g", params)


@pytest.fixture
def tenants(conn: Conn) -> Iterator[Tenants]:
    alice, bob, both = new_user(conn), new_user(conn), new_user(conn)
    org_a, org_b = personal_org(conn, alice), personal_org(conn, bob)
    conn.execute("insert into shopsync.organization_members (organization_id, user_id, role) "
                 "values (%s, %s, 'member'), (%s, %s, 'member')", (org_a, both, org_b, both))
    stores = []
    for org, tag in ((org_a, "a"), (org_b, "b")):
        row = conn.execute("select shopsync.upsert_store(%s, 'shopify', %s) as id", (org, f"{tag}.myshopify.com"))
        store = row.fetchone()["id"]  # type: ignore[index]
        seed_store(conn, store, org, tag)
        stores.append(store)
    conn.execute("analyze shopsync.orders, shopsync.customers, shopsync.product_variants")
    yield Tenants(alice, both, org_a, org_b, stores[0], stores[1])


def plan(conn: Conn, user: uuid.UUID, query: str, params: Any = (), *, verbose: bool = False) -> str:
    with as_role(conn, "authenticated", user):
        rows = conn.execute(("explain verbose " if verbose else "explain ") + query, params).fetchall()
    return "\n".join(next(iter(r.values())) for r in rows)


def test_the_policy_runs_once_per_statement_and_compares_plainly(conn: Conn, tenants: Tenants) -> None:
    for user in (tenants.alice, tenants.both):
        text = plan(conn, user, "select count(*) from shopsync.orders", verbose=True)
        # the member's organizations are read once (an InitPlan); each row is only compared with them
        assert "InitPlan 1" in text and "shopsync.my_organization_ids(NULL::text[])" in text.split("->  ")[1], text
        # PostgreSQL 15 names the InitPlan's output $0, 17 (InitPlan 1).col1
        assert ("(orders.organization_id = ANY ($0))" in text
                or "(orders.organization_id = ANY ((InitPlan 1).col1))" in text), text
        assert "is_member" not in text and "SubPlan" not in text, text


@pytest.mark.parametrize(("what", "query", "index"), [
    ("orders of a customer by email in one store",
     "select * from shopsync.orders where store_id = %(store)s and email_normalized = 'buyer7@a.example'",
     "orders_email_normalized_idx"),
    ("latest orders of an organization",
     "select * from shopsync.orders where organization_id = %(org)s order by processed_at desc limit 20",
     "orders_org_processed_idx"),
    ("latest orders of a store",
     "select * from shopsync.orders where store_id = %(store)s order by processed_at desc limit 20",
     "orders_store_processed_idx"),
    ("an order by its name",
     "select * from shopsync.orders where store_id = %(store)s and name = '#1234'", "orders_name_idx"),
    ("orders of a customer", "select * from shopsync.orders where store_id = %(store)s and customer_id = 'c9'",
     "orders_customer_idx"),
    ("a customer by phone",
     "select * from shopsync.customers where store_id = %(store)s and phone_normalized = '36301000042'",
     "customers_phone_normalized_idx"),
    ("a customer by email across the organization",
     "select * from shopsync.customers where organization_id = %(org)s and email_normalized = 'buyer3@a.example'",
     "customers_org_email_idx"),
    ("a variant by SKU across the organization",
     "select * from shopsync.product_variants where organization_id = %(org)s and sku = 'a-SKU-77'",
     "product_variants_org_sku_idx"),
])
def test_frontend_queries_use_their_index_under_rls(conn: Conn, tenants: Tenants, what: str, query: str,
                                                    index: str) -> None:
    args = {"store": tenants.store_a, "org": tenants.org_a}
    for user in (tenants.alice, tenants.both):
        text = plan(conn, user, query, args)
        assert index in text, f"{what}: {text}"
        assert "Seq Scan" not in text and "Sort" not in text, f"{what}: {text}"


def test_the_fast_policies_are_as_strict_as_before(conn: Conn, tenants: Tenants) -> None:
    with as_role(conn, "authenticated", tenants.alice):
        mine = conn.execute("select count(*) as n from shopsync.orders").fetchone()
        theirs = conn.execute("select count(*) as n from shopsync.orders where store_id = %s",
                              (tenants.store_b,)).fetchone()
    with as_role(conn, "authenticated", tenants.both):
        everything = conn.execute("select count(*) as n from shopsync.orders").fetchone()
    assert mine is not None and theirs is not None and everything is not None
    assert (mine["n"], theirs["n"], everything["n"]) == (ORDERS_PER_STORE, 0, 2 * ORDERS_PER_STORE)
    stranger = new_user(conn)
    with as_role(conn, "authenticated", stranger):
        assert conn.execute("select count(*) as n from shopsync.orders").fetchone() == {"n": 0}
