"""Shopify webhooks over real HTTP: the endpoint's checks, deliveries from the sandbox applied with the
staleness guard (duplicates, reordering, stale and tied versions), uninstall, subscription re-checks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import as_role, set_policy
from tests.platform_world import owner_org
from tests.shopify_world import CLIENT_ID, SECRET, SHOP, World
from tests.standins.server import make_jwt, serve_supabase
from worker.config import load_settings
from worker.db import open_database


def signed_headers(body: bytes, topic: str, *, shop: str = SHOP, secret: str = SECRET,
                   webhook_id: str | None = None, event_id: str | None = None,
                   triggered_at: str | None = None) -> dict[str, str]:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"X-Shopify-Hmac-Sha256": digest, "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": shop,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()), "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": triggered_at or datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "X-Shopify-API-Version": "2026-10",
            "Content-Type": "application/json"}


async def post(w: World, payload: Any, topic: str, *, raw: bytes | None = None, **kw: Any) -> Any:
    body = raw if raw is not None else json.dumps(payload).encode()
    async with w.web as web:
        return await web.post("/shopify/webhooks", content=body, headers=signed_headers(body, topic, **kw))


async def connected(w: World) -> Any:
    store_id = await w.connect()
    async with w.worker():
        await w.until(lambda: w.scalar("select count(*) from shopsync.sync_runs where status = 'succeeded'") == 3,
                      what="the first full sync")
        await w.until(w.idle)
    return store_id


def inbox(w: World) -> list[dict[str, Any]]:
    return w.conn.execute("select topic, delivery_id, status, error from shopsync.webhook_inbox order by id").fetchall()


async def test_the_endpoint_refuses_what_it_cannot_trust_and_dedupes(world: World) -> None:
    w = world
    store_id = await w.connect()
    product = w.shop.product(w.shop.product_ids()[0])
    body = json.dumps(product).encode()
    async with w.web as web:
        bad_sig = signed_headers(body, "products/update", secret="not-the-secret")
        assert (await web.post("/shopify/webhooks", content=body, headers=bad_sig)).status_code == 401
        tampered = signed_headers(body, "products/update")
        assert (await web.post("/shopify/webhooks", content=body + b" ", headers=tampered)).status_code == 401
        unsigned = {k: v for k, v in signed_headers(body, "products/update").items() if "Hmac" not in k}
        assert (await web.post("/shopify/webhooks", content=body, headers=unsigned)).status_code == 401
    assert (await post(w, product, "products/explode")).status_code == 400
    assert (await post(w, None, "products/update", raw=b"{not json")).status_code == 400
    assert (await post(w, [1, 2], "products/update")).status_code == 400
    assert (await post(w, product, "products/update", shop="evil.com")).status_code == 400
    unknown = await post(w, product, "products/update", shop="nobody.myshopify.com")
    assert unknown.status_code == 404 and unknown.json()["detail"] == "unknown shop"
    redact_unknown = await post(w, {"shop_domain": "nobody.myshopify.com"}, "shop/redact", shop="nobody.myshopify.com")
    assert redact_unknown.status_code == 200 and redact_unknown.json()["status"] == "ignored"
    huge = json.dumps({"id": 1, "padding": "x" * (3 * 1024 * 1024)}).encode()
    assert (await post(w, None, "products/update", raw=huge)).status_code == 413
    assert inbox(w) == []                                        # nothing above was stored

    first = await post(w, product, "products/update", webhook_id="delivery-1")
    again = await post(w, product, "products/update", webhook_id="delivery-1")      # Shopify's retry
    assert (first.status_code, first.json()["status"]) == (200, "accepted")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert [(r["topic"], r["delivery_id"]) for r in inbox(w)] == [("products/update", "delivery-1")]
    assert len(w.jobs("shopify.webhook")) == 1
    assert w.scalar("select store_id from shopsync.webhook_inbox") == store_id


async def test_sandbox_deliveries_keep_rows_current_despite_duplicates_and_reordering(world: World) -> None:
    w = world
    await connected(w)
    pid = w.shop.product_ids()[0]
    cid = w.shop.customer_ids()[0]
    async with w.worker():
        w.shop.update_product(pid, title="Renamed by the merchant")
        await w.until(lambda: w.scalar("select title from shopsync.products where id = %s", (str(pid),))
                      == "Renamed by the merchant", what="the product update")
        # the same event delivered twice, then a burst delivered in a shuffled order
        w.sandbox.webhooks.faults.duplicate_next = 1
        w.shop.update_customer(cid, first_name="Twice")
        w.sandbox.webhooks.hold()
        # REST payloads carry whole seconds: versions one second apart (within one second it is a tie)
        start = (int(time.time()) + 1) * 1_000_000
        for n in range(5):
            w.shop.update_product(pid, title=f"Version {n}", at_us=start + n * 1_000_000)
        w.sandbox.webhooks.release(shuffle=True)
        assert w.sandbox.webhooks.wait_idle(10)
        await w.until(w.idle, what="every delivery applied")
        gone = w.shop.product_ids()[1]
        w.shop.delete_product(gone)
        await w.until(lambda: w.scalar("select deleted_at is not null from shopsync.products where id = %s",
                                       (str(gone),)), what="the delete webhook")
        await w.until(w.idle)
    row = w.conn.execute("select title, deleted_at from shopsync.products where id = %s", (str(pid),)).fetchone()
    assert row is not None and row["title"] == "Version 4"          # the newest won, whatever the order
    assert row["deleted_at"] is None
    assert w.scalar("select first_name from shopsync.customers where id = %s", (str(cid),)) == "Twice"
    live_variants = w.scalar("select count(*) from shopsync.product_variants where product_id = %s "
                             "and deleted_at is null", (str(gone),))
    assert live_variants == 0                                    # they went with their product
    statuses = {r["status"] for r in inbox(w)}
    assert statuses <= {"processed", "ignored"}
    assert w.scalar("select count(*) from shopsync.jobs where kind = 'shopify.webhook' and state <> 'succeeded'") == 0


async def test_a_stale_delivery_never_overwrites_and_a_tie_applies(world: World) -> None:
    w = world
    await connected(w)
    pid = w.shop.product_ids()[1]
    current = w.shop.product(pid)
    stored = w.scalar("select source_updated_at from shopsync.products where id = %s", (str(pid),))
    older = {**current, "title": "Stale title", "updated_at": "2020-01-01T00:00:00Z"}
    tied = {**current, "title": "Same version, later delivery"}
    earlier = {**current, "title": "Same version, observed before the sync read it"}
    async with w.worker():
        assert (await post(w, older, "products/update")).status_code == 200
        await w.until(w.idle)
        assert w.scalar("select title from shopsync.products where id = %s", (str(pid),)) == current["title"]
        # a tie (same updated_at) is decided by when each version was observed: an event from before the
        # sync's read loses, one from after it wins
        assert (await post(w, earlier, "products/update", triggered_at="2020-01-01T00:00:00.5Z")).status_code == 200
        await w.until(w.idle)
        assert w.scalar("select title from shopsync.products where id = %s", (str(pid),)) == current["title"]
        assert (await post(w, tied, "products/update")).status_code == 200
        await w.until(w.idle)
    assert w.scalar("select title from shopsync.products where id = %s", (str(pid),)) == tied["title"]
    assert w.scalar("select source_updated_at from shopsync.products where id = %s", (str(pid),)) == stored
    # the same event id under a new delivery id is not applied again
    event = str(uuid.uuid4())
    async with w.worker():
        await post(w, {**current, "title": "First"}, "products/update", event_id=event)
        await w.until(w.idle)
        await post(w, {**current, "title": "Replay"}, "products/update", event_id=event)
        await w.until(w.idle)
    assert w.scalar("select title from shopsync.products where id = %s", (str(pid),)) == "First"
    assert inbox(w)[-1]["status"] == "ignored"


async def test_policies_decide_what_webhooks_store_and_which_topics_are_subscribed(world: World) -> None:
    w = world
    store_id = await connected(w)
    uri = f"{w.web_url}/shopify/webhooks"

    def topics() -> set[str]:
        return {s.topic for s in w.sandbox.subscriptions.values() if s.uri == uri}

    assert {"customers/update", "products/update", "orders/updated"} <= topics()
    set_policy(w.conn, store_id, "customers", "not_allowed")
    # Shopify dropped a subscription after failed deliveries
    dropped = next(s.id for s in w.sandbox.subscriptions.values() if s.topic == "products/update" and s.uri == uri)
    del w.sandbox.subscriptions[dropped]
    w.conn.execute("select shopsync.enqueue_job('shopify.check_webhooks', p_store_id => %s)", (store_id,))
    cid = w.shop.customer_ids()[0]
    async with w.worker():
        await w.until(w.idle, what="the subscription check")
        result = w.jobs("shopify.check_webhooks")[-1]["result"]
        assert result["created"] == ["PRODUCTS_UPDATE"]
        assert set(result["deleted"]) == {"CUSTOMERS_CREATE", "CUSTOMERS_UPDATE", "CUSTOMERS_DELETE"}
        assert "products/update" in topics() and not any(t.startswith("customers/") for t in topics())
        # a customers webhook that still arrives (sent before the change) is not stored
        before = w.scalar("select first_name from shopsync.customers where id = %s", (str(cid),))
        await post(w, {**w.shop.customer(cid), "first_name": "Not stored"}, "customers/update")
        await w.until(w.idle)
    assert w.scalar("select first_name from shopsync.customers where id = %s", (str(cid),)) == before
    assert inbox(w)[-1]["status"] == "ignored"


async def test_app_uninstalled_stops_the_store(world: World) -> None:
    w = world
    store_id = await connected(w)
    w.conn.execute("select shopsync.request_sync(%s)", (store_id,))
    async with w.worker(worker_kinds=["shopify.webhook"]):       # leave the syncs queued
        w.sandbox.uninstall(SHOP, CLIENT_ID)
        await w.until(lambda: w.scalar("select status from shopsync.stores") == "uninstalled",
                      what="the uninstall webhook")
    store = w.conn.execute("select status, status_reason from shopsync.stores").fetchone()
    assert store is not None and "uninstalled" in store["status_reason"]
    assert w.scalar("select count(*) from shopsync.jobs where kind = 'shopify.sync' and state = 'queued'") == 0
    assert w.scalar("select count(*) from shopsync.products") > 0        # data stays until shop/redact


async def test_disconnect_deletes_our_subscriptions_then_the_token(world: World) -> None:
    w = world
    store_id = await connected(w)
    uri = f"{w.web_url}/shopify/webhooks"
    ours = [s for s in w.sandbox.subscriptions.values() if s.uri == uri]
    assert ours
    user = w.scalar("select m.user_id from shopsync.organization_members m join shopsync.stores s "
                    "on s.organization_id = m.organization_id where s.id = %s", (store_id,))
    with as_role(w.conn, "authenticated", user):
        w.conn.execute("select shopsync.disconnect_store(%s)", (store_id,))
    async with w.worker():
        await w.until(w.idle, what="the disconnect job")
    [job] = w.jobs("shopify.disconnect")
    assert job["state"] == "succeeded" and len(job["result"]["removed"]["deleted"]) == len(ours)
    assert [s for s in w.sandbox.subscriptions.values() if s.uri == uri] == []
    assert w.scalar("select count(*) from shopsync_private.store_credentials where store_id = %s", (store_id,)) == 0


async def test_a_late_uninstall_leaves_a_reinstalled_store_alone(world: World) -> None:
    w = world
    store_id = await connected(w)
    # the merchant uninstalled and reinstalled; the uninstall's delivery (retried by Shopify) arrives after
    w.conn.execute("update shopsync.stores set connected_at = now() where id = %s", (store_id,))
    before = (datetime.now(UTC) - timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    async with w.worker():
        assert (await post(w, {"id": 1, "domain": SHOP}, "app/uninstalled", triggered_at=before)).status_code == 200
        await w.until(w.idle, what="the late uninstall")
        assert w.scalar("select status from shopsync.stores where id = %s", (store_id,)) == "active"
        # an uninstall from after the reinstall does count
        assert (await post(w, {"id": 1, "domain": SHOP}, "app/uninstalled")).status_code == 200
        await w.until(w.idle, what="the uninstall")
    assert w.scalar("select status from shopsync.stores where id = %s", (store_id,)) == "uninstalled"


async def test_compliance_webhooks_become_gdpr_requests_that_run(world: World) -> None:
    w = world
    store_id = await connected(w)
    customer = w.shop.customer(w.shop.customer_ids()[0])
    email = customer["email"]
    assert w.scalar("select count(*) from shopsync.customers where lower(email) = lower(%s)", (email,)) == 1
    # the same shop connected earlier by another organization: its copy must be redacted too
    _, other_org = owner_org(w.conn)
    old_store = w.scalar("select shopsync.upsert_store(%s, 'shopify', %s, null, 'uninstalled')", (other_org, SHOP))
    w.conn.execute("insert into shopsync.customers (store_id, id, organization_id, email) values (%s, %s, %s, %s)",
                   (old_store, str(customer["id"]), other_org, email))
    forged = await post(w, {"customer": {"id": customer["id"]}}, "customers/redact", secret="wrong")
    assert forged.status_code == 401
    async with w.worker():
        w.sandbox.send_customers_data_request(SHOP, customer["id"])
        await w.until(lambda: w.scalar("select count(*) from shopsync.gdpr_requests where status = 'completed'") == 2,
                      what="the data request, for both stores")
        w.sandbox.send_customers_redact(SHOP, customer["id"])
        await w.until(lambda: w.scalar("select count(*) from shopsync.gdpr_requests where status = 'completed'") == 4,
                      what="the redaction, in both stores")
        await w.until(w.idle)
    export = w.conn.execute("select result, started_at, completed_at from shopsync.gdpr_requests "
                            "where request_type = 'data_request' and store_id = %s", (store_id,)).fetchone()
    assert export is not None and export["started_at"] and export["completed_at"]
    assert email in str(export["result"])
    assert w.scalar("select count(*) from shopsync.customers where id = %s", (str(customer["id"]),)) == 0  # both
    for table in ("orders", "customers", "webhook_inbox", "order_fulfillments"):
        leaked = w.scalar(f"select count(*) from shopsync.{table} t where t::text ilike %s and "  # noqa: S608
                          "store_id = %s", (f"%{email}%", store_id))
        assert leaked == 0, table

    async with w.worker():
        w.sandbox.send_shop_redact(SHOP)
        await w.until(lambda: w.scalar("select count(*) from shopsync.gdpr_requests where status = 'completed'") == 6,
                      what="the shop redaction, of both stores")
    assert w.scalar("select count(*) from shopsync.stores") == 0
    assert w.scalar("select count(*) from shopsync.products") == 0
    assert w.scalar("select count(*) from shopsync.gdpr_requests where completed_at is not null") == 6


async def test_the_supabase_path_syncs_and_applies_webhooks(world: World) -> None:
    """The same connector on the worker's other database path (PostgREST RPC + Realtime stand-ins)."""
    w = world
    secret = "shopify-supabase-path-secret-0123456789"
    with serve_supabase(w.core.database_url.get_secret_value(), secret) as url:   # type: ignore[union-attr]
        db = await open_database(load_settings(db_mode="supabase", supabase_url=url,
                                               supabase_service_role_key=make_jwt(secret, "service_role")))
        try:
            store_id = await w.connect()
            pid = w.shop.product_ids()[0]
            async with w.worker(db=db):
                await w.until(lambda: w.scalar("select count(*) from shopsync.sync_runs "
                                               "where status = 'succeeded'") == 3, what="the full sync")
                w.shop.update_product(pid, title="Via PostgREST")
                await w.until(lambda: w.scalar("select title from shopsync.products where id = %s", (str(pid),))
                              == "Via PostgREST", what="the webhook")
                await w.until(w.idle)
        finally:
            await db.close()
    assert w.scalar("select status from shopsync.stores where id = %s", (store_id,)) == "active"
    assert w.scalar("select count(*) from shopsync.products") == 6
    assert w.scalar("select count(*) from shopsync.jobs where state = 'dead'") == 0


async def test_a_revoked_app_pauses_the_store_and_says_why(world: World) -> None:
    w = world
    store_id = await connected(w)
    w.sandbox.revoke_tokens(SHOP, CLIENT_ID)
    w.conn.execute("update shopsync_private.store_credentials set access_expires_at = now()")
    w.conn.execute("select shopsync.request_sync(%s)", (store_id,))
    async with w.worker():
        await w.until(lambda: w.scalar("select status from shopsync.stores") == "needs_reauth",
                      what="needs_reauth")
        await w.until(w.idle)
    store = w.conn.execute("select status_reason from shopsync.stores").fetchone()
    assert store is not None and "invalid_grant" in store["status_reason"]
    assert w.scalar("select count(*) from shopsync.jobs where kind = 'shopify.sync' and state = 'queued'") == 0
    assert w.sandbox.counters.get("oauth_invalid_grant", 0) == 1            # one refusal, no retry storm
