"""Privacy requests: recording, the gdpr.process job, and what export / redaction really do to the data.

Stores are filled from the Shopify sandbox's REST payloads (customers, orders with line items and
fulfillments, webhook deliveries), so `raw` looks like what a connector stores. Store B holds the very
same platform data (same ids, same emails) in another organization: nothing may leak across.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from sandbox.shopify import DatasetSpec, ShopifySandbox
from tests.conftest import as_role, job_context, new_user, personal_org
from worker.connectors.shopify.mapping import webhook_effect
from worker.db.direct import DirectDatabase
from worker.db.values import to_json
from worker.errors import PermanentError, RetryableError
from worker.gdpr import JOB_KIND, gdpr_handler, register_jobs
from worker.jobs.registry import Job, JobContext, JobRegistry
from worker.rpc import synced_writes

Conn = psycopg.Connection[Any]
WORKER = "gdpr-test-worker"
TARGET = 7000000000002            # a sandbox customer with three orders and a phone number
OTHER = 7000000000003
# Keys that must not survive anywhere in a redacted object (REST and GraphQL spellings).
PII_KEYS = {"email", "phone", "first_name", "last_name", "firstName", "lastName", "displayName", "address1",
            "address2", "zip", "city", "company", "latitude", "longitude", "customer", "billing_address",
            "shipping_address", "billingAddress", "shippingAddress", "note", "contact_email", "browser_ip",
            "client_details", "clientIp", "destination", "default_address", "addresses"}


@pytest.fixture(scope="module")
def shop() -> Any:
    sandbox = ShopifySandbox()
    return sandbox.add_shop("gdpr-test.myshopify.com", DatasetSpec(products=2, customers=6, orders=12))


def context(db: DirectDatabase, dsn: str) -> JobContext:
    return job_context(db, dsn, WORKER)


# --- filling stores ----------------------------------------------------------------------------------

def new_store(conn: Conn, shop_key: str = "gdpr-test.myshopify.com") -> tuple[str, uuid.UUID, uuid.UUID]:
    """(store id, organization id, owner user id) of a new store in a new personal organization."""
    owner = new_user(conn)
    org = personal_org(conn, owner)
    store = conn.execute("select shopsync.upsert_store(%s, 'shopify', %s) as id", (org, shop_key)).fetchone()["id"]
    return str(store), org, owner


def extras(order: dict[str, Any]) -> dict[str, Any]:
    # what real order payloads also carry: the buyer's browser and device
    return {**order, "browser_ip": "203.0.113.7",
            "client_details": {"browser_ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "accept_language": "en"}}


def insert_order(conn: Conn, store: str, order: Mapping[str, Any], *, email: Any = "same", phone: Any = "same") -> None:
    customer = order.get("customer") or {}
    conn.execute(
        "insert into shopsync.orders (store_id, id, organization_id, name, order_number, customer_id, email, phone,"
        " currency, total_price, total_tax, shipping_address, billing_address, raw)"
        " select %s, %s, organization_id, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s from shopsync.stores where id = %s",
        (store, str(order["id"]), order["name"], str(order["order_number"]),
         str(customer["id"]) if customer else None, order["email"] if email == "same" else email,
         order["phone"] if phone == "same" else phone, order["currency"], Decimal(order["total_price"]),
         Decimal(order["total_tax"]), Jsonb(order["shipping_address"]), Jsonb(order["billing_address"]),
         Jsonb(order), store))
    for li in order["line_items"]:
        conn.execute(
            "insert into shopsync.order_line_items (store_id, id, order_id, organization_id, product_id, sku, title,"
            " quantity, price, raw) select %s, %s, %s, organization_id, %s, %s, %s, %s, %s, %s"
            " from shopsync.stores where id = %s",
            (store, str(li["id"]), str(order["id"]), str(li["product_id"]), li["sku"], li["title"], li["quantity"],
             Decimal(li["price"]), Jsonb(li), store))
    for f in order["fulfillments"]:
        raw = {**f, "destination": order["shipping_address"], "email": order["email"]}
        conn.execute(
            "insert into shopsync.order_fulfillments (store_id, id, order_id, organization_id, status, tracking_company,"
            " raw) select %s, %s, %s, organization_id, %s, %s, %s from shopsync.stores where id = %s",
            (store, str(f["id"]), str(order["id"]), f["status"], f["tracking_company"], Jsonb(raw), store))


def fill_store(conn: Conn, store: str, shop: Any) -> None:
    """Every sandbox customer and order, plus three orders that reach the target only indirectly."""
    for cid in shop.customer_ids():
        c = shop.customer(cid)
        conn.execute(
            "insert into shopsync.customers (store_id, id, organization_id, email, phone, first_name, last_name,"
            " default_address, raw) select %s, %s, organization_id, %s, %s, %s, %s, %s, %s"
            " from shopsync.stores where id = %s",
            (store, str(c["id"]), c["email"], c["phone"], c["first_name"], c["last_name"], Jsonb(c["default_address"]),
             Jsonb(c), store))
    for oid in shop.order_ids():
        insert_order(conn, store, extras(shop.order(oid)))
    target = shop.customer(TARGET)
    base = shop.order(shop.order_ids()[0])
    template = {**base, "line_items": [{**li, "id": li["id"] + 10**15} for li in base["line_items"]],
                "fulfillments": []}
    # a guest checkout under the target's email (other case), one with only the target's phone (other
    # formatting), and one the platform names in order_ids only
    guest = {**template, "id": 9100000000001, "name": "#9001", "customer": None, "email": target["email"].upper(),
             "contact_email": target["email"].upper(), "phone": None}
    insert_order(conn, store, guest)
    template = {**template, "line_items": [{**li, "id": li["id"] + 10**15} for li in template["line_items"]]}
    phone_digits = target["phone"].removeprefix("+1")
    by_phone = {**template, "id": 9100000000002, "name": "#9002", "customer": None, "email": None,
                "contact_email": None, "phone": f"+1 ({phone_digits[:3]}) {phone_digits[3:6]}-{phone_digits[6:]}"}
    insert_order(conn, store, by_phone)
    template = {**template, "line_items": [{**li, "id": li["id"] + 10**15} for li in template["line_items"]]}
    named = {**template, "id": 9100000000003, "name": "#9003", "customer": None, "email": "old-alias@example.net",
             "contact_email": "old-alias@example.net", "phone": None}
    insert_order(conn, store, named)


def orders_of(shop: Any, customer: int) -> set[str]:
    return {str(o) for o in shop.order_ids() if (shop.order(o)["customer"] or {}).get("id") == customer}


def store_tables(conn: Conn) -> list[tuple[str, str]]:
    """Every table with a store_id column, from the catalog (a table added later is included)."""
    return [(r["nspname"], r["relname"]) for r in conn.execute(
        "select n.nspname, c.relname from pg_attribute a join pg_class c on c.oid = a.attrelid"
        " join pg_namespace n on n.oid = c.relnamespace where a.attname = 'store_id' and not a.attisdropped"
        " and c.relkind in ('r', 'p') and n.nspname in ('shopsync', 'shopsync_private') order by 1, 2")]


def store_rows(conn: Conn, store: str, *, skip: tuple[str, ...] = ("gdpr_requests", "activity_log")) -> dict[str, Any]:
    """Every row of the store in every table (but the request log and the activity log), as JSON."""
    out: dict[str, Any] = {}
    for schema, table in store_tables(conn):
        if table in skip:
            continue
        rows = conn.execute(f'select to_jsonb(t) as row from "{schema}"."{table}" t where t.store_id = %s'
                            f" order by to_jsonb(t)::text", (store,)).fetchall()
        out[f"{schema}.{table}"] = [r["row"] for r in rows]
    return out


def keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_anywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_anywhere(v)}
    return set()


# --- driving requests ---------------------------------------------------------------------------------

async def record(db: DirectDatabase, store: str, request_type: str, subject: Mapping[str, Any] | None = None,
                 request_id: str | None = None) -> int:
    rows = await db.rpc("record_gdpr_request", {"p_platform": "shopify", "p_store_id": store,
                                                "p_request_type": request_type, "p_platform_request_id": request_id,
                                                "p_subject": dict(subject or {})})
    return int(rows[0]["request_id"])


async def claim(db: DirectDatabase) -> Job:
    rows = await db.rpc("claim_jobs", {"p_worker": WORKER, "p_limit": 1, "p_kinds": [JOB_KIND]})
    assert len(rows) == 1
    return Job.from_row(rows[0])


async def run_job(db: DirectDatabase, dsn: str) -> tuple[Job, Mapping[str, Any]]:
    """Claim the next gdpr job, run the handler, complete the job like the worker does."""
    job = await claim(db)
    result = await gdpr_handler(job, context(db, dsn))
    done = await db.rpc("complete_jobs", {"p_worker": WORKER, "p_ids": [job.id],
                                          "p_results": [json.loads(json.dumps(dict(result), default=str))]})
    assert done == 1
    return job, result


def request_row(conn: Conn, request_id: int) -> dict[str, Any]:
    row = conn.execute("select * from shopsync.gdpr_requests where id = %s", (request_id,)).fetchone()
    assert row is not None
    return dict(row)


@pytest.fixture
def stores(conn: Conn, shop: Any) -> Iterator[dict[str, Any]]:
    a, org_a, owner_a = new_store(conn)
    b, _, _ = new_store(conn)       # same shop data, another organization
    fill_store(conn, a, shop)
    fill_store(conn, b, shop)
    yield {"a": a, "b": b, "org_a": org_a, "owner_a": owner_a}


# --- recording ---------------------------------------------------------------------------------------

async def test_record_validates_dedupes_and_enqueues_without_personal_data(db: DirectDatabase,
                                                                          conn: Conn) -> None:
    store, _, _ = new_store(conn)
    subject = {"customer_id": 42, "emails": [" Alice@Example.COM "], "phones": ["+1 555 010 0001"],
               "order_ids": [1001, "gid://shopify/Order/1002"]}
    first = await db.rpc("record_gdpr_request", {"p_platform": "shopify", "p_store_id": store,
                                                 "p_request_type": "customer_redact", "p_platform_request_id": "wh-1",
                                                 "p_subject": subject})
    again = await db.rpc("record_gdpr_request", {"p_platform": "shopify", "p_store_id": store,
                                                 "p_request_type": "customer_redact", "p_platform_request_id": "wh-1",
                                                 "p_subject": subject})
    assert first[0]["duplicate"] is False and again[0]["duplicate"] is True
    assert again[0]["request_id"] == first[0]["request_id"]
    request = request_row(conn, first[0]["request_id"])
    assert request["subject"] == {"customer_id": "42", "emails": ["alice@example.com"], "phones": ["+1 555 010 0001"],
                                  "order_ids": ["1001", "1002"]}
    assert request["status"] == "received" and request["store_id"] == uuid.UUID(store)
    jobs = conn.execute("select * from shopsync.jobs where kind = 'gdpr.process'").fetchall()
    assert len(jobs) == 1
    assert jobs[0]["payload"] == {"request_id": first[0]["request_id"]}       # no personal data in jobs
    assert jobs[0]["dedupe_key"] == f"gdpr:{first[0]['request_id']}" and jobs[0]["store_id"] == uuid.UUID(store)
    assert conn.execute("select count(*) as n from shopsync.gdpr_requests").fetchone()["n"] == 1
    # without a platform request id every delivery is a request of its own
    await record(db, store, "data_request", {"customer_id": 42})
    await record(db, store, "data_request", {"customer_id": 42})
    assert conn.execute("select count(*) as n from shopsync.gdpr_requests").fetchone()["n"] == 3

    bad_calls: list[tuple[dict[str, Any], str]] = [
        ({"p_request_type": "erase_everything"}, "22023"),
        ({"p_request_type": None}, "22023"),
        ({"p_store_id": str(uuid.uuid4())}, "P0002"),
        ({"p_platform": "woocommerce"}, "22023"),
        ({"p_subject": {}}, "22023"),                          # nobody to look for
        ({"p_subject": {"emails": {"a": "b"}}}, "22023"),
        ({"p_subject": ["alice@example.com"]}, "22023"),
    ]
    for change, sqlstate in bad_calls:
        args = {"p_platform": "shopify", "p_store_id": store, "p_request_type": "data_request",
                "p_platform_request_id": None, "p_subject": {"customer_id": 1}, **change}
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select * from shopsync.record_gdpr_request(%(p_platform)s, %(p_store_id)s::uuid,"
                         " %(p_request_type)s, %(p_platform_request_id)s, %(p_subject)s)",
                         {**args, "p_subject": Jsonb(args["p_subject"])})
        assert info.value.sqlstate == sqlstate, change
    assert conn.execute("select count(*) as n from shopsync.gdpr_requests").fetchone()["n"] == 3


def test_register_jobs_adds_the_handler() -> None:
    registry = JobRegistry()
    register_jobs(registry)
    assert registry.kinds() == [JOB_KIND, "store.purge_uninstalled"] and registry.handler(JOB_KIND) is gdpr_handler


# --- data_request --------------------------------------------------------------------------------------

@pytest.mark.parametrize("by", ["id", "email", "phone"])
async def test_data_request_exports_the_subject_and_nobody_else(db: DirectDatabase, dsn: str, conn: Conn,
                                                               shop: Any, stores: dict[str, Any], by: str) -> None:
    target = shop.customer(TARGET)
    subject: dict[str, Any] = {
        "id": {"customer_id": TARGET, "order_ids": [9100000000003]},
        "email": {"emails": [target["email"].upper()]},
        "phone": {"phones": [target["phone"].replace("+1555", "+1 555 ")]},
    }[by]
    no_jobs = ("gdpr_requests", "activity_log", "jobs")
    before = store_rows(conn, stores["a"], skip=no_jobs)
    request_id = await record(db, stores["a"], "data_request", subject, request_id=f"dr-{by}")
    job, result = await run_job(db, dsn)

    request = request_row(conn, request_id)
    assert request["status"] == "completed" and request["started_at"] and request["completed_at"]
    export = request["result"]
    assert [c["id"] for c in export["customers"]] == [str(TARGET)]
    assert export["customers"][0]["raw"] == target                           # raw included, as stored
    expected_orders = orders_of(shop, TARGET) | {"9100000000001", "9100000000002"}
    if by == "id":
        expected_orders.add("9100000000003")                                 # named by the platform
    assert {o["id"] for o in export["orders"]} == expected_orders
    assert all(o["store_id"] == stores["a"] for key in ("customers", "orders", "order_line_items",
                                                        "order_fulfillments") for o in export[key])
    line_orders = {li["order_id"] for li in export["order_line_items"]}
    assert line_orders == expected_orders and all(li["raw"] for li in export["order_line_items"])
    stored_fulfillments = conn.execute(
        "select count(*) as n from shopsync.order_fulfillments where store_id = %s and order_id = any(%s)",
        (stores["a"], list(expected_orders))).fetchone()["n"]
    assert stored_fulfillments > 0 and len(export["order_fulfillments"]) == stored_fulfillments
    assert export["counts"] == {"customers": 1, "orders": len(expected_orders),
                                "order_line_items": len(export["order_line_items"]),
                                "order_fulfillments": stored_fulfillments}
    other = shop.customer(OTHER)
    assert other["email"] not in json.dumps(export)                           # other customers stay out
    # the job carries counts only; the subject's identifiers are gone from the request
    assert result["counts"] == export["counts"] and result["status"] == "completed"
    jobs_text = json.dumps(conn.execute("select to_jsonb(j) as j from shopsync.jobs j where id = %s",
                                        (job.id,)).fetchone()["j"]).lower()
    assert target["email"].lower() not in jobs_text and target["phone"] not in jobs_text
    assert request["subject"] == ({"customer_id": str(TARGET)} if by == "id" else {})
    assert store_rows(conn, stores["a"], skip=no_jobs) == before             # an export changes no data
    assert conn.execute("select count(*) as n from shopsync.activity_log where action = 'gdpr.data_request'"
                        " and store_id = %s", (stores["a"],)).fetchone()["n"] == 1


async def test_only_owners_and_admins_read_requests_and_results(db: DirectDatabase, dsn: str, conn: Conn,
                                                               shop: Any, stores: dict[str, Any]) -> None:
    request_id = await record(db, stores["a"], "data_request", {"customer_id": TARGET})
    job, _ = await run_job(db, dsn)
    member, admin = new_user(conn), new_user(conn)
    conn.execute("insert into shopsync.organization_members (organization_id, user_id, role) values"
                 " (%s, %s, 'member'), (%s, %s, 'admin')", (stores["org_a"], member, stores["org_a"], admin))
    email = shop.customer(TARGET)["email"]
    for user, visible in ((stores["owner_a"], True), (admin, True), (member, False)):
        with as_role(conn, "authenticated", user):
            rows = conn.execute("select id, result from shopsync.gdpr_requests").fetchall()
            assert [r["id"] for r in rows] == ([request_id] if visible else [])
            if visible:
                assert rows[0]["result"]["customers"][0]["email"] == email
            # members do see the job, which names the request and counts, nothing personal
            job_rows = conn.execute("select to_jsonb(j) as j from shopsync.jobs j where id = %s", (job.id,)).fetchall()
            assert len(job_rows) == 1 and email not in json.dumps(job_rows[0]["j"])
            assert job_rows[0]["j"]["payload"] == {"request_id": request_id}


# --- customer_redact ---------------------------------------------------------------------------------

def add_webhooks(conn: Conn, store: str, shop: Any) -> None:
    target, other = shop.customer(TARGET), shop.customer(OTHER)
    target_order = sorted(orders_of(shop, TARGET))[0]
    other_order = sorted(orders_of(shop, OTHER))[0]
    deliveries = [
        ("customers/update", target),
        ("orders/updated", extras(shop.order(target_order))),
        ("customers/update", other),
        ("orders/updated", shop.order(other_order)),
        ("customers/redact", {"shop_id": shop.shop_id, "shop_domain": shop.domain,
                              "customer": {"id": TARGET, "email": target["email"], "phone": target["phone"]},
                              "orders_to_redact": sorted(int(o) for o in orders_of(shop, TARGET))}),
    ]
    for topic, payload in deliveries:
        conn.execute("select * from shopsync.record_webhook('shopify', %s, %s, %s, %s)",
                     (f"{store}:{uuid.uuid4()}", store, topic, Jsonb(payload)))


def inbox(conn: Conn, store: str) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute("select id, topic, payload from shopsync.webhook_inbox where store_id = %s"
                                          " order by id", (store,))]


async def test_customer_redact_removes_personal_data_everywhere_and_only_the_subjects(
        db: DirectDatabase, dsn: str, conn: Conn, shop: Any, stores: dict[str, Any]) -> None:
    a = stores["a"]
    add_webhooks(conn, a, shop)
    add_webhooks(conn, stores["b"], shop)
    target, other = shop.customer(TARGET), shop.customer(OTHER)
    revenue_before = conn.execute("select sum(total_price) as s, count(*) as n from shopsync.orders where store_id = %s",
                                  (a,)).fetchone()
    other_rows = {t: conn.execute(f"select to_jsonb(t) as r from shopsync.{t} t where store_id = %s and {col} = any(%s)"
                                  " order by 1", (a, ids)).fetchall()
                  for t, col, ids in (("customers", "id", [str(OTHER)]),
                                      ("orders", "id", list(orders_of(shop, OTHER))),
                                      ("order_line_items", "order_id", list(orders_of(shop, OTHER))))}
    inbox_before = inbox(conn, a)
    b_before = store_rows(conn, stores["b"])
    subject = {"customer_id": TARGET, "emails": [target["email"]], "phones": [target["phone"]],
               "order_ids": [9100000000003]}
    request_id = await record(db, a, "customer_redact", subject, request_id="redact-1")
    _, result = await run_job(db, dsn)

    redacted_orders = orders_of(shop, TARGET) | {"9100000000001", "9100000000002", "9100000000003"}
    counts = result["counts"]
    assert counts["customers_deleted"] == 1 and counts["orders_redacted"] == len(redacted_orders)
    assert counts["order_line_items_redacted"] == 0          # sandbox line items carry nothing personal
    assert counts["order_fulfillments_redacted"] > 0
    assert counts["webhook_inbox_deleted"] == 1 and counts["webhook_inbox_scrubbed"] == 2
    assert conn.execute("select count(*) as n from shopsync.customers where store_id = %s and id = %s",
                        (a, str(TARGET))).fetchone()["n"] == 0
    # orders stay, anonymized: revenue figures survive
    revenue_after = conn.execute("select sum(total_price) as s, count(*) as n from shopsync.orders where store_id = %s",
                                 (a,)).fetchone()
    assert revenue_after == revenue_before
    for order in conn.execute("select * from shopsync.orders where store_id = %s and id = any(%s)",
                              (a, list(redacted_orders))):
        assert order["email"] is None and order["phone"] is None and order["redacted_at"] is not None
        assert order["shipping_address"] is None and order["billing_address"] is None
        assert not keys_anywhere(order["raw"]) & PII_KEYS, order["id"]
        assert order["raw"]["name"] == order["name"] and order["raw"]["total_price"]     # business data kept
        assert order["raw"]["line_items"][0]["name"]                  # a line item's name is not personal
    for f in conn.execute("select raw from shopsync.order_fulfillments where store_id = %s and order_id = any(%s)",
                          (a, list(redacted_orders))):
        assert not keys_anywhere(f["raw"]) & PII_KEYS and f["raw"]["tracking_number"]
    # webhook deliveries: the customer's own gone, the order's and the request's own scrubbed
    after = {row["id"]: row for row in inbox(conn, a)}
    for row in inbox_before:
        payload = row["payload"]
        about_target = (payload.get("id") == TARGET or (payload.get("customer") or {}).get("id") == TARGET)
        if row["topic"] == "customers/update" and about_target:
            assert row["id"] not in after
        elif about_target:
            assert not keys_anywhere(after[row["id"]]["payload"]) & PII_KEYS
            assert after[row["id"]]["payload"].get("orders_to_redact") == payload.get("orders_to_redact")
        else:
            assert after[row["id"]]["payload"] == payload                     # other customers untouched
    # nothing identifying the subject is left in any table of the store
    text = json.dumps(store_rows(conn, a)).lower()
    for value in (target["email"].lower(), target["phone"], target["phone"][-7:],
                  target["default_address"]["address1"].lower()):
        assert value not in text, value
    assert other["email"] in text
    for table, rows in other_rows.items():
        assert conn.execute(f"select to_jsonb(t) as r from shopsync.{table} t where store_id = %s and"
                            f" {'id' if table != 'order_line_items' else 'order_id'} = any(%s) order by 1",
                            (a, [str(OTHER)] if table == "customers" else list(orders_of(shop, OTHER)))
                            ).fetchall() == rows
    assert store_rows(conn, stores["b"]) == b_before                          # the other store: untouched
    request = request_row(conn, request_id)
    assert request["status"] == "completed" and request["subject"] == {"customer_id": str(TARGET)}
    assert request["result"] == {"counts": counts}

    # idempotent: the same job delivered again, and a second request for the same person
    data_only = ("gdpr_requests", "activity_log", "jobs", "redacted_rows")
    snapshot = store_rows(conn, a, skip=data_only)
    tombstones = conn.execute("select row_id, redacted_at from shopsync_private.redacted_rows where store_id = %s",
                              (a,)).fetchall()
    assert [t["row_id"] for t in tombstones] == [str(TARGET)]     # the subject stays out of later data
    await db.rpc("enqueue_job", {"p_kind": JOB_KIND, "p_payload": {"request_id": request_id}, "p_store_id": a})
    _, again = await run_job(db, dsn)
    assert again["already_completed"] is True and again["counts"] == counts
    await record(db, a, "customer_redact", subject, request_id="redact-2")
    _, second = await run_job(db, dsn)
    assert second["already_completed"] is False and set(second["counts"].values()) == {0}
    assert store_rows(conn, a, skip=data_only) == snapshot
    # the later request moves the line: data older than it stays out too
    later = conn.execute("select redacted_at from shopsync_private.redacted_rows where store_id = %s", (a,)).fetchall()
    assert len(later) == 1 and later[0]["redacted_at"] > tombstones[0]["redacted_at"]


async def test_a_redaction_stays_final_until_the_platform_sends_newer_data(
        db: DirectDatabase, dsn: str, conn: Conn, shop: Any, stores: dict[str, Any]) -> None:
    a = stores["a"]
    request_id = await record(db, a, "customer_redact", {"customer_id": TARGET}, request_id="final-1")
    await run_job(db, dsn)
    received: datetime = request_row(conn, request_id)["received_at"]
    order_id = sorted(orders_of(shop, TARGET))[0]

    def changes(at: datetime) -> dict[str, list[dict[str, Any]]]:
        """The subject and one of their orders as the platform sends them, last changed ``at``."""
        def rows(topic: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
            return webhook_effect(topic, {**payload, "updated_at": at.isoformat()}, store_id=uuid.UUID(a),
                                  organization_id=stores["org_a"], triggered_at=at).writes
        return {**rows("customers/update", shop.customer(TARGET)),
                **{k: [dict(r) for r in v] for k, v in rows("orders/updated", extras(shop.order(order_id))).items()}}

    def subject_state() -> tuple[int, Any, Any]:
        customers = conn.execute("select count(*) as n from shopsync.customers where store_id = %s and id = %s",
                                 (a, str(TARGET))).fetchone()["n"]
        order = conn.execute("select email, redacted_at from shopsync.orders where store_id = %s and id = %s",
                             (a, order_id)).fetchone()
        return customers, order["email"], order["redacted_at"]

    assert subject_state()[:2] == (0, None)
    # data as old as the request, by every path: a webhook's apply, the supabase path's upsert, the COPY
    # path (a first full sync's straight-into-the-table path too), reconcile's writes go the same ways
    old = changes(received - timedelta(minutes=5))
    await synced_writes.apply_synced_changes(db, store_id=a, writes=old, observed_at=received)
    for table, rows in old.items():
        await db.rpc("upsert_synced", {"p_table": table, "p_rows": to_json(rows)})
        assert (await db.write_synced(table, rows, fresh=True))["inserted"] == 0
        await db.write_synced(table, rows)
    customers, email, redacted_at = subject_state()
    assert customers == 0 and email is None and redacted_at is not None
    # the platform changed the customer after the request: that is new data, and it is stored
    new = changes(received + timedelta(seconds=5))
    await synced_writes.apply_synced_changes(db, store_id=a, writes=new, observed_at=received + timedelta(seconds=5))
    customers, email, redacted_at = subject_state()
    assert customers == 1 and email == extras(shop.order(order_id))["email"] and redacted_at is None


async def test_strip_keeps_business_data_of_rest_and_graphql_shapes(conn: Conn, shop: Any) -> None:
    order = extras(shop.order(sorted(orders_of(shop, TARGET))[0]))
    graphql = {"__typename": "Order", "id": "gid://shopify/Order/1", "name": "#1001", "email": "a@example.com",
               "phone": "+15550100001", "clientIp": "203.0.113.7", "note": "leave at the door",
               "customer": {"id": "gid://shopify/Customer/2", "displayName": "A B"},
               "shippingAddress": {"firstName": "A", "address1": "1 Main St", "zip": "10001"},
               "totalPriceSet": {"shopMoney": {"amount": "10.00", "currencyCode": "USD"}},
               "lineItems": [{"title": "Hat", "name": "Hat - Red", "quantity": 1}],
               "displayAddress": {"name": "A B", "city": "Paris", "formatted": ["1 Main St"], "country": "France"}}
    for raw in (order, graphql, shop.customer(TARGET)):
        stripped = conn.execute("select shopsync_private.gdpr_strip_pii(%s) as s", (Jsonb(raw),)).fetchone()["s"]
        assert not keys_anywhere(stripped) & PII_KEYS
        assert stripped["id"] == raw["id"]
    stripped = conn.execute("select shopsync_private.gdpr_strip_pii(%s) as s", (Jsonb(order),)).fetchone()["s"]
    assert stripped["name"] == order["name"] and stripped["total_price"] == order["total_price"]
    assert stripped["line_items"] == order["line_items"]
    address = conn.execute("select shopsync_private.gdpr_strip_pii(%s) as s",
                           (Jsonb({"name": "A B", "first_name": "A", "country": "France", "province": "IDF"}),)
                           ).fetchone()["s"]
    assert address == {"country": "France", "province": "IDF"}     # a name inside an address is personal


# --- shop_redact -------------------------------------------------------------------------------------

def fill_everything_else(conn: Conn, store: str) -> None:
    """Rows in every other table that has a store_id: catalog, sync bookkeeping, credentials, installs."""
    def run(statement: str, *args: Any) -> None:
        conn.execute(statement, args)

    org_of = "(select organization_id from shopsync.stores where id = %s)"
    run(f"insert into shopsync.products (store_id, id, organization_id, title) values (%s, '1', {org_of}, 'Hat')",
        store, store)
    run(f"insert into shopsync.product_variants (store_id, id, product_id, organization_id) values"
        f" (%s, '11', '1', {org_of})", store, store)
    run(f"insert into shopsync.inventory_locations (store_id, id, organization_id) values (%s, '5', {org_of})",
        store, store)
    run(f"insert into shopsync.inventory_levels (store_id, inventory_item_id, location_id, organization_id, available)"
        f" values (%s, '111', '5', {org_of}, 3)", store, store)
    run("insert into shopsync_private.redacted_rows (store_id, table_name, row_id, redacted_at) values"
        " (%s, 'customers', '99', now())", store)
    run("select shopsync.start_sync_run(%s, 'orders', 'full')", store)
    run("select shopsync.save_sync_state(%s, 'orders', now())", store)
    run("select shopsync.put_store_credentials(%s, 'oauth', 'k1', 'v1.sealed')", store)
    run("select shopsync.request_sync(%s, array['products'])", store)
    run(f"insert into shopsync.store_access_policies (store_id, resource, organization_id, policy) values"
        f" (%s, 'customers', {org_of}, 'api_only')", store, store)
    run("select * from shopsync.record_webhook('shopify', %s, %s, 'shop/redact', '{\"shop_id\": 1}')",
        f"{store}:shop-redact", store)
    run("insert into shopsync_private.pending_installs (platform, shop_key, claim_token_hash, expires_at, store_id,"
        " credentials) select platform, shop_key, 'x', now() + interval '1 day', id, '{\"sealed\": \"v1.x\"}'"
        " from shopsync.stores where id = %s", store)
    run("select shopsync.create_oauth_state('shopify', organization_id, null, shop_key) from shopsync.stores"
        " where id = %s", store)
    run(f"select shopsync.record_lookup({org_of}, 'http', 'customers_by_email', 'refused', 403, 1.5, %s)",
        store, store)
    # notifications: a channel with a rule for this store, a message about it, its webhook topics seen
    run("select shopsync.put_notification_channel(m.user_id, s.organization_id, gen_random_uuid(), 'ops', 'webhook',"
        " '{\"url\": \"https://hooks.example.com\"}') from shopsync.stores s join shopsync.organization_members m"
        " on m.organization_id = s.organization_id and m.role = 'owner' where s.id = %s", store)
    run("insert into shopsync.notification_rules (organization_id, channel_id, store_id, group_window_seconds)"
        " select c.organization_id, c.id, s.id, 0 from shopsync.stores s join shopsync.notification_channels c"
        " on c.organization_id = s.organization_id where s.id = %s", store)
    run("insert into shopsync.notifications (organization_id, channel_id, kind, dedupe_key, store_id)"
        " select c.organization_id, c.id, 'events', 'seeded', s.id from shopsync.stores s"
        " join shopsync.notification_channels c on c.organization_id = s.organization_id where s.id = %s", store)
    run("select shopsync.record_webhook_check(%s, '{orders/create}', '{}')", store)


async def test_shop_redact_deletes_every_row_of_the_store_and_keeps_the_request(
        db: DirectDatabase, dsn: str, conn: Conn, shop: Any, stores: dict[str, Any]) -> None:
    a, b = stores["a"], stores["b"]
    for store in (a, b):
        fill_everything_else(conn, store)
        add_webhooks(conn, store, shop)
    seeded = {f"{s}.{t}" for s, t in store_tables(conn)} - {"shopsync.gdpr_requests", "shopsync.activity_log",
                                                            "shopsync.events"}
    before_a = store_rows(conn, a)
    assert {t for t, rows in before_a.items() if rows} == seeded     # the test reaches every table there is
    before_b = store_rows(conn, b)
    request_id = await record(db, a, "shop_redact", {"customer_id": 1}, request_id="shop-redact-1")
    pending = await record(db, a, "customer_redact", {"customer_id": TARGET}, request_id="redact-pending")
    job, result = await run_job(db, dsn)
    assert job.payload == {"request_id": request_id}

    for schema, table in store_tables(conn):
        n = conn.execute(f'select count(*) as n from "{schema}"."{table}" where store_id = %s', (a,)).fetchone()["n"]
        assert n == 0, f"{schema}.{table} still has rows of the redacted store"
    assert conn.execute("select count(*) as n from shopsync.stores where id = %s", (a,)).fetchone()["n"] == 0
    assert conn.execute("select count(*) as n from shopsync_private.oauth_states o join shopsync.stores s"
                        " on s.shop_key = o.shop_key where s.id = %s", (b,)).fetchone()["n"] == 1
    assert conn.execute("select count(*) as n from shopsync_private.oauth_states").fetchone()["n"] == 1
    assert store_rows(conn, b) == before_b                                   # the other organization's copy stays
    request = request_row(conn, request_id)
    assert request["status"] == "completed" and request["store_id"] is None and request["subject"] == {}
    assert request["received_at"] <= request["started_at"] <= request["completed_at"]
    assert request["organization_id"] == stores["org_a"]
    counts = request["result"]["counts"]
    assert counts["orders"] == len(before_a["shopsync.orders"]) and counts["stores"] == 1
    assert counts["shopsync_private.store_credentials"] == 1 and counts["gdpr_requests_superseded"] == 1
    assert result["counts"] == counts and result["status"] == "completed"
    superseded = request_row(conn, pending)
    assert superseded["status"] == "completed" and superseded["result"]["superseded_by"] == request_id
    assert superseded["subject"] == {"customer_id": str(TARGET)}
    # the job ran to completion (detached from the store, not cascaded away) and holds no personal data
    finished = conn.execute("select state, store_id, result from shopsync.jobs where id = %s", (job.id,)).fetchone()
    assert finished["state"] == "succeeded" and finished["store_id"] is None
    assert finished["result"]["counts"] == counts
    assert conn.execute("select count(*) as n from shopsync.jobs where kind = 'gdpr.process' and state = 'queued'"
                        ).fetchone()["n"] == 0
    log = conn.execute("select * from shopsync.activity_log where action = 'gdpr.shop_redact'").fetchall()
    assert len(log) == 1 and log[0]["organization_id"] == stores["org_a"] and log[0]["details"]["request_id"] == request_id
    # a late redelivery of the same request changes nothing and queues nothing
    again = await db.rpc("record_gdpr_request", {"p_platform": "shopify", "p_store_id": b,
                                                 "p_request_type": "shop_redact", "p_platform_request_id": "shop-redact-1",
                                                 "p_subject": {}})
    assert again == [{"request_id": request_id, "duplicate": True}]
    assert conn.execute("select count(*) as n from shopsync.jobs where kind = 'gdpr.process' and state = 'queued'"
                        ).fetchone()["n"] == 0


# --- failures ----------------------------------------------------------------------------------------

async def test_a_failure_is_recorded_redacted_rolled_back_and_retried(db: DirectDatabase, dsn: str, conn: Conn,
                                                                     stores: dict[str, Any]) -> None:
    a = stores["a"]
    conn.execute("""
        create function public.fail_once() returns trigger language plpgsql as $$
        begin raise exception 'disk hiccup access_token=shpat_0123456789abcdef0123'; end $$;
        create trigger fail_once before update on shopsync.orders for each row execute function public.fail_once();
    """)
    request_id = await record(db, a, "customer_redact", {"customer_id": TARGET})
    job = await claim(db)
    with pytest.raises(RetryableError) as info:
        await gdpr_handler(job, context(db, dsn))
    assert "hiccup" in str(info.value) and "shpat_0123456789" not in str(info.value)
    request = request_row(conn, request_id)
    assert request["status"] == "failed" and "hiccup" in request["error"] and "shpat_0123456789" not in request["error"]
    assert request["subject"] == {"customer_id": str(TARGET)}
    # one transaction: the customer deleted before the failing update is back
    assert conn.execute("select count(*) as n from shopsync.customers where store_id = %s and id = %s",
                        (a, str(TARGET))).fetchone()["n"] == 1
    conn.execute("drop trigger fail_once on shopsync.orders")
    assert await db.rpc("fail_job", {"p_worker": WORKER, "p_id": job.id, "p_error": str(info.value),
                                     "p_retry_in_seconds": 0}) == "queued"
    _, result = await run_job(db, dsn)
    assert result["counts"]["customers_deleted"] == 1
    request = request_row(conn, request_id)
    assert request["status"] == "completed" and request["error"] is None


async def test_bad_payloads_and_unknown_requests_are_permanent(db: DirectDatabase, dsn: str, conn: Conn) -> None:
    store, _, _ = new_store(conn)
    for payload in ({}, {"request_id": "abc"}, {"request_id": 987654321}):
        await db.rpc("enqueue_job", {"p_kind": JOB_KIND, "p_payload": payload, "p_store_id": store})
        job = await claim(db)
        with pytest.raises(PermanentError):
            await gdpr_handler(job, context(db, dsn))
        assert await db.rpc("fail_job", {"p_worker": WORKER, "p_id": job.id, "p_error": "x",
                                         "p_retryable": False}) == "dead"


async def test_a_job_no_longer_held_changes_nothing(db: DirectDatabase, dsn: str, conn: Conn,
                                                    stores: dict[str, Any]) -> None:
    a = stores["a"]
    request_id = await record(db, a, "customer_redact", {"customer_id": TARGET})
    job = await claim(db)
    await db.rpc("cancel_job", {"p_job_id": job.id})
    with pytest.raises(RetryableError, match="no longer held"):
        await gdpr_handler(job, context(db, dsn))
    # the operation itself refuses too, whoever calls it with the stale job
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select shopsync.gdpr_customer_redact(%s, %s, %s)", (request_id, job.id, WORKER))
    assert info.value.sqlstate == "55000"
    assert request_row(conn, request_id)["status"] == "received"
    assert conn.execute("select count(*) as n from shopsync.customers where store_id = %s and id = %s",
                        (a, str(TARGET))).fetchone()["n"] == 1
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select shopsync.gdpr_data_request(%s)", (request_id,))     # wrong operation for the type
    assert info.value.sqlstate == "22023"
