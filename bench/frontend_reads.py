"""Frontend reads under RLS vs the service role: the queries a frontend makes with the user's JWT, each
next to the same query as the service role with the organization filter written out, in the same run.

Three organizations with two stores each (600,000 orders, 150,000 customers, 120,000 variants); one user
is a member of organization A, another of A and B. Each query runs on one connection per role, the
authenticated one set up the way PostgREST does it (``request.jwt.claims``, ``set role authenticated``),
alternating with its service-role twin so both see the same machine. Ratio = p50 under RLS / p50 as the
service role; target ≤ 1.5× for every query.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from bench.common import Bench, Row

NAME = "frontend_reads"
TITLE = "Frontend reads: authenticated member under RLS vs the service role with an explicit filter"
TARGET = 1.5
CASE_SECONDS = 30.0      # per query: enough samples for p50/p99, bounded when a query is slow


def _seed(conn: psycopg.Connection[Any], stores: int, orders_per_store: int) -> dict[str, Any]:
    users = {"solo": uuid.uuid4(), "multi": uuid.uuid4(), "other": uuid.uuid4()}
    for uid in users.values():
        conn.execute("insert into auth.users (id, email) values (%s, %s)", (uid, f"{uid.hex[:8]}@bench.example"))
    orgs = [conn.execute("select organization_id from shopsync.organization_members where user_id = %s",
                         (users[u],)).fetchone()[0] for u in ("solo", "other")]           # type: ignore[index]
    orgs.append(conn.execute("insert into shopsync.organizations (name) values ('third') returning id").fetchone()[0])  # type: ignore[index]
    # "multi" belongs to A and B (and to its own personal organization, which is empty)
    conn.execute("insert into shopsync.organization_members (organization_id, user_id, role) "
                 "values (%s, %s, 'member'), (%s, %s, 'member')", (orgs[0], users["multi"], orgs[1], users["multi"]))
    store_ids = []
    for o, org in enumerate(orgs):
        for s in range(stores):
            store = conn.execute("select shopsync.upsert_store(%s, 'shopify', %s)",
                                 (org, f"shop{o}-{s}.myshopify.com")).fetchone()[0]    # type: ignore[index]
            store_ids.append((org, store))
            params = {"s": store, "o": org, "n": orders_per_store, "t": f"{o}{s}"}
            conn.execute("insert into shopsync.customers (store_id, id, organization_id, email, phone, first_name) "
                         "select %(s)s, 'c' || g, %(o)s, 'Buyer' || g || '@s' || %(t)s || '.example', "
                         "'+36 30 ' || (1000000 + g), 'Name' || g from generate_series(1, %(n)s / 4) g", params)
            conn.execute("insert into shopsync.orders (store_id, id, organization_id, name, customer_id, email, "
                         "financial_status, total_price, currency, processed_at, source_updated_at) "
                         "select %(s)s, 'o' || g, %(o)s, '#' || (1000 + g), 'c' || (g %% (%(n)s / 4) + 1), "
                         "'buyer' || (g %% (%(n)s / 4) + 1) || '@s' || %(t)s || '.example', 'paid', 10 + g %% 90, "
                         "'EUR', timestamptz '2025-01-01' + (g * 37 %% 500000) * interval '1 minute', now() "
                         "from generate_series(1, %(n)s) g", params)
            conn.execute("insert into shopsync.product_variants (store_id, id, product_id, organization_id, sku, price) "
                         "select %(s)s, 'v' || g, 'p' || (g / 3), %(o)s, 'S' || %(t)s || '-' || g, 9.99 "
                         "from generate_series(1, %(n)s / 5) g", params)
    conn.execute("vacuum analyze shopsync.orders, shopsync.customers, shopsync.product_variants, "
                 "shopsync.organization_members")
    return {"users": users, "orgs": orgs, "stores": store_ids}


def _session(dsn: str, role: str, user: uuid.UUID | None = None) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn, autocommit=True)
    claims = {"role": role, **({"sub": str(user)} if user else {})}
    conn.execute("select set_config('request.jwt.claims', %s, false)", (json.dumps(claims),))
    conn.execute(f"set role {role}")
    return conn


def _timed(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    rows = conn.execute(query, params).fetchall()
    return (time.perf_counter() - started) * 1000, rows


def run(bench: Bench) -> list[Row]:
    orders_per_store = 20_000 if bench.quick else 100_000
    repeats = 40 if bench.quick else 300
    dsn = bench.db()
    with psycopg.connect(dsn, autocommit=True) as conn:
        bench.say(f"seeding 3 organizations × 2 stores × {orders_per_store:,} orders")
        world = _seed(conn, 2, orders_per_store)
    (org_a, store_a), org_b = world["stores"][0], world["orgs"][1]
    args = {"a": org_a, "b": org_b, "store": store_a, "email": "buyer42@s00.example", "name": "#1777",
            "sku": "S00-4242", "phone": "36301000099"}
    # (label, user, query under RLS, the same query as the service role with the organization written out)
    cases: list[tuple[str, str, str, str]] = [
        ("count(*) of the member's orders", "solo", "select count(*) from shopsync.orders",
         "select count(*) from shopsync.orders where organization_id = %(a)s"),
        ("count(*) of the orders of a member of 2 organizations", "multi", "select count(*) from shopsync.orders",
         "select count(*) from shopsync.orders where organization_id = any (array[%(a)s, %(b)s]::uuid[])"),
        ("orders of a customer by email in one store", "solo",
         "select * from shopsync.orders where store_id = %(store)s and email_normalized = %(email)s",
         "select * from shopsync.orders where store_id = %(store)s and email_normalized = %(email)s "
         "and organization_id = %(a)s"),
        ("latest 20 orders of the organization", "multi",
         "select * from shopsync.orders where organization_id = %(a)s order by processed_at desc limit 20",
         "select * from shopsync.orders where organization_id = %(a)s order by processed_at desc limit 20"),
        ("latest 20 orders of a store", "solo",
         "select * from shopsync.orders where store_id = %(store)s order by processed_at desc limit 20",
         "select * from shopsync.orders where store_id = %(store)s and organization_id = %(a)s "
         "order by processed_at desc limit 20"),
        ("an order by name", "solo", "select * from shopsync.orders where store_id = %(store)s and name = %(name)s",
         "select * from shopsync.orders where store_id = %(store)s and name = %(name)s and organization_id = %(a)s"),
        ("a customer by phone in one store", "solo",
         "select * from shopsync.customers where store_id = %(store)s and phone_normalized = %(phone)s",
         "select * from shopsync.customers where store_id = %(store)s and phone_normalized = %(phone)s "
         "and organization_id = %(a)s"),
        ("a variant by SKU in the organization", "multi",
         "select * from shopsync.product_variants where organization_id = %(a)s and sku = %(sku)s",
         "select * from shopsync.product_variants where organization_id = %(a)s and sku = %(sku)s"),
    ]
    members = {u: _session(dsn, "authenticated", world["users"][u]) for u in ("solo", "multi")}
    service = _session(dsn, "service_role")
    rows: list[Row] = []
    try:
        for label, user, rls_query, service_query in cases:
            member = members[user]
            rls_times: list[float] = []
            svc_times: list[float] = []
            budget = time.monotonic() + CASE_SECONDS
            for i in range(repeats + 10):
                if i > 30 and time.monotonic() > budget:
                    break                                # a slow case (e.g. the old per-row policies) stops early
                first, second = ((member, rls_query), (service, service_query))[:: 1 if i % 2 else -1]
                t1, r1 = _timed(first[0], first[1], args)
                t2, r2 = _timed(second[0], second[1], args)
                if i < 10:
                    continue                         # warm-up: caches, prepared statements
                (rls_times, svc_times)[0 if first[0] is member else 1].append(t1)
                (rls_times, svc_times)[0 if second[0] is member else 1].append(t2)
                if i == 10 and sorted(map(repr, r1)) != sorted(map(repr, r2)):
                    bench.note(f"{label}: RLS and service-role answers differ")
            p50 = statistics.median
            p99: Callable[[list[float]], float] = lambda xs: sorted(xs)[int(len(xs) * 0.99) - 1]   # noqa: E731
            ratio = p50(rls_times) / p50(svc_times)
            rows.append(Row(NAME, f"{label}: p50 (p99)", p50(rls_times), "ms",
                            f"service role {p50(svc_times):.3f} ms ({p99(svc_times):.3f})", ratio,
                            f"≤ {TARGET}×", ratio <= TARGET))
            bench.note(f"{label}: authenticated p50 {p50(rls_times):.3f} ms p99 {p99(rls_times):.3f} ms; "
                       f"service role p50 {p50(svc_times):.3f} ms p99 {p99(svc_times):.3f} ms")
    finally:
        for c in (*members.values(), service):
            c.close()
    return rows
