"""ShopRenter end to end: the sandbox over HTTP, shopsync's web process on a real port, a real worker.
Signed install → parked → entry → claim → token, webhooks, full sync under the 3 requests/s limit; order
hints re-fetched; uninstall; forged, replayed and hostile calls refused with nothing stored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import psycopg
import pytest

from sandbox.serving import serve_app
from sandbox.shoprenter import ShopRenterSandbox, SrDatasetSpec, SrShop, serve_shoprenter_sandbox
from tests.conftest import as_role
from tests.platform_world import AppWorld, free_port, owner_org
from worker.config import Settings
from worker.connectors.registry import publish_configs
from worker.connectors.shoprenter import CONNECTOR
from worker.connectors.shoprenter.settings import ShopRenterSettings
from worker.db.direct import DirectDatabase
from worker.runtime import build_registry
from worker.sealing import generate_key_spec
from worker.web.app import create_app

CLIENT_ID = "shopsync-sr-test"
SECRET = "sr_test_secret_0123456789"
FRONTEND = "http://frontend.test"


@dataclass(kw_only=True)
class SrWorld(AppWorld):
    sandbox: ShopRenterSandbox
    shop: SrShop

    async def install(self, user: UUID, org: UUID) -> UUID:
        """The merchant installs in the ShopRenter admin, opens the app, signs in and claims the shop."""
        response = await asyncio.to_thread(self.sandbox.install, self.shop, CLIENT_ID)
        assert response.status_code == 302, response.text
        query = await asyncio.to_thread(self.sandbox.install_query, self.shop, CLIENT_ID, app_url=False)
        async with self.web as web:
            entry = await web.get("/shoprenter/entry", params=query)
        assert entry.status_code == 302, entry.text
        fragment = parse_qs(urlsplit(entry.headers["location"]).fragment)
        with as_role(self.conn, "authenticated", user):
            row = self.conn.execute("select shopsync.claim_pending_install(%s, %s, %s) as s",
                                    (fragment["install_id"][0], fragment["claim_token"][0], org)).fetchone()
        assert row is not None
        return UUID(str(row["s"]))

    def count(self, table: str, store: UUID) -> int:
        return int(self.scalar(f"select count(*) from shopsync.{table} where store_id = %s and deleted_at is null",
                               (store,)) if table not in ("order_line_items",) else
                   self.scalar(f"select count(*) from shopsync.{table} where store_id = %s", (store,)))

    def synced(self, store: UUID) -> bool:
        return self.scalar("select count(*) from shopsync.sync_state where store_id = %s "
                           "and last_full_sync_at is not null", (store,)) == 3


@pytest.fixture
def sr_spec() -> SrDatasetSpec:
    return SrDatasetSpec(seed=3, products=30, customers=8, orders=10, line_items_per_order=3)


@pytest.fixture
async def sr(dsn: str, conn: psycopg.Connection[dict[str, Any]], sr_spec: SrDatasetSpec,
             monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SrWorld]:
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    sandbox = ShopRenterSandbox(rate_limit=3.0)
    sandbox.add_app(CLIENT_ID, SECRET, redirect_uri=f"{web_url}/shoprenter/install",
                    uninstall_uri=f"{web_url}/shoprenter/uninstall")
    shop = sandbox.add_shop("demo", sr_spec)
    with serve_shoprenter_sandbox(sandbox):
        core = Settings(_env_file=None, database_url=dsn, sealing_keys=generate_key_spec("test"),  # type: ignore[call-arg]
                        public_url=web_url, frontend_url=FRONTEND, local_dev=True, worker_concurrency=8)
        settings = ShopRenterSettings(_env_file=None, client_id=CLIENT_ID, client_secret=SECRET,  # type: ignore[call-arg]
                                      oauth_base_url=sandbox.oauth_base_url, api_base_url=sandbox.api_url_template,
                                      page_size=10)
        monkeypatch.setattr(CONNECTOR, "_settings", settings)
        db = await DirectDatabase.connect(dsn, listen=True)
        await publish_configs(db, core)
        try:
            with serve_app(create_app(core), port=port, name="shopsync-web"):
                yield SrWorld(web_url=web_url, core=core, db=db, conn=conn, registry=build_registry(),
                              sandbox=sandbox, shop=shop)
        finally:
            await db.close()


async def test_install_claim_and_first_sync_under_the_rate_limit(sr: SrWorld) -> None:
    user, org = owner_org(sr.conn)
    store = await sr.install(user, org)
    async with sr.worker():
        await sr.until(lambda: sr.synced(store), what="the first full sync")
        await sr.until(sr.idle, what="an idle queue")
    assert sr.scalar("select status from shopsync.stores where id = %s", (store,)) == "active"
    assert sr.count("products", store) == 30 and sr.count("product_variants", store) == 30
    assert sr.count("customers", store) == 8 and sr.count("orders", store) == 10
    assert sr.count("order_line_items", store) == sum(len(sr.shop.order(i).lines) for i in sr.shop.order_ids())
    # paged 10 at a time at 3 requests/s: many requests, at most one refused (on a loaded machine a request can
    # reach the shop tens of ms after its slot, squeezing the strict one-second window; the benchmark measures
    # the steady state with 0 x 429), and the pace kept
    assert sr.sandbox.counters["rate_limited"] <= 1
    assert len(sr.sandbox.request_log) > 8
    admitted = sorted(r.time - r.duration for r in sr.sandbox.request_log if r.endpoint == "api" and r.status != 429)
    assert (len(admitted) - 1) / (admitted[-1] - admitted[0]) <= 3.0
    # the token is sealed, never stored in the clear; the webhooks point at this store with its token
    sealed = sr.scalar("select sealed from shopsync_private.store_credentials where store_id = %s", (store,))
    assert sealed.startswith("v1.") and "access_token" not in sealed
    urls = [p["url"] for h in sr.shop.webhooks.values() for p in h.parameters]
    assert sorted(h.event for h in sr.shop.webhooks.values()) == ["order_confirm", "order_status_change"]
    assert all(u.startswith(f"{sr.web_url}/shoprenter/webhooks/{store}/") for u in urls)
    # the API's answers map onto the canonical columns
    order_id = sr.shop.order_ids()[0]
    row = sr.conn.execute("select * from shopsync.orders where store_id = %s and order_number = %s",
                          (store, str(order_id))).fetchone()
    assert row is not None and row["email"] == sr.shop.order(order_id).email
    assert row["total_price"] == sr.shop.order(order_id).total_gross and row["currency"]


async def test_order_hints_are_refetched_and_applied(sr: SrWorld) -> None:
    user, org = owner_org(sr.conn)
    store = await sr.install(user, org)
    async with sr.worker():
        await sr.until(lambda: sr.synced(store), what="the first full sync")
        before = sr.count("orders", store)
        await asyncio.to_thread(sr.shop.create_order, [(sr.shop.product_ids()[0], 2)])
        await sr.until(lambda: sr.count("orders", store) == before + 1, what="the new order from its hint")
        first = sr.shop.order_ids()[0]
        await asyncio.to_thread(sr.shop.update_order, first, status=5)
        await sr.until(lambda: sr.scalar(
            "select source_updated_at from shopsync.orders where store_id = %s and order_number = %s",
            (store, str(first))).timestamp() >= sr.shop.order(first).updated, what="the status change")
    inbox = sr.conn.execute("select status from shopsync.webhook_inbox where store_id = %s", (store,)).fetchall()
    assert inbox and all(r["status"] == "processed" for r in inbox)


async def test_webhook_tokens_and_bodies_are_checked(sr: SrWorld) -> None:
    user, org = owner_org(sr.conn)
    store = await sr.install(user, org)
    async with sr.worker():
        await sr.until(lambda: sr.synced(store), what="the first full sync")
    token = next(iter(sr.shop.webhooks.values())).parameters[0]["url"].rsplit("/", 1)[1]
    body = {"orders": {"order": [{"innerResourceId": f"orders/{sr.shop.outer_id('order', 1)}"}]}}
    async with sr.web as web:
        wrong = await web.post(f"/shoprenter/webhooks/{store}/{'x' * len(token)}", json=body)
        other = await web.post(f"/shoprenter/webhooks/{UUID(int=7)}/{token}", json=body)
        garbage = await web.post(f"/shoprenter/webhooks/{store}/{token}", content=b"{not json")
        empty = await web.post(f"/shoprenter/webhooks/{store}/{token}", json={"orders": {}})
        good = await web.post(f"/shoprenter/webhooks/{store}/{token}", json=body)
        again = await web.post(f"/shoprenter/webhooks/{store}/{token}", json=body)
    assert (wrong.status_code, other.status_code, garbage.status_code, empty.status_code) == (401, 401, 400, 400)
    assert good.json()["status"] == "accepted" and again.json()["status"] == "duplicate"
    assert sr.scalar("select count(*) from shopsync.webhook_inbox where store_id = %s", (store,)) == 1


async def test_forged_replayed_and_hostile_installs_store_nothing(sr: SrWorld) -> None:
    fresh = await asyncio.to_thread(sr.sandbox.install_query, sr.shop, CLIENT_ID)
    forged = {**fresh, "hmac": "0" * 64}
    replayed = await asyncio.to_thread(sr.sandbox.install_query, sr.shop, CLIENT_ID, 1_600_000_000)
    hostile = {**fresh, "app_url": "https://evil.example/phish"}
    async with sr.web as web:
        answers = [await web.get("/shoprenter/install", params=q) for q in (forged, replayed, hostile)]
        uninstall = await web.get("/shoprenter/uninstall", params=forged)
    assert [a.status_code for a in answers] == [401, 401, 400] and uninstall.status_code == 401
    assert "too old" in answers[1].json()["detail"]
    assert sr.scalar("select count(*) from shopsync_private.pending_installs") == 0
    assert sr.scalar("select count(*) from shopsync.stores") == 0


async def test_demo_order_signatures_are_accepted(sr: SrWorld) -> None:
    response = await asyncio.to_thread(sr.sandbox.install, sr.shop, CLIENT_ID, "demo")
    assert response.status_code == 302 and response.headers["location"].startswith("https://demo.shoprenter.hu/")
    assert sr.scalar("select count(*) from shopsync_private.pending_installs where shop_key = 'demo'") == 1


async def test_uninstall_marks_every_store_and_schedules_deletion(sr: SrWorld) -> None:
    user, org = owner_org(sr.conn)
    store = await sr.install(user, org)
    async with sr.worker():
        await sr.until(lambda: sr.synced(store), what="the first full sync")
        response = await asyncio.to_thread(sr.sandbox.uninstall, sr.shop, CLIENT_ID)
        assert response is not None and response.status_code == 200
    assert sr.scalar("select status from shopsync.stores where id = %s", (store,)) == "uninstalled"
    purge = sr.jobs("store.purge_uninstalled")
    assert len(purge) == 1 and purge[0]["state"] == "queued"
    hours = sr.scalar("select extract(epoch from run_at - now()) / 3600 from shopsync.jobs where id = %s",
                      (purge[0]["id"],))
    assert 47.9 < float(hours) <= 48.0
    # when the grace period ends with the store still uninstalled, its data goes
    sr.conn.execute("update shopsync.jobs set run_at = now() where id = %s", (purge[0]["id"],))
    async with sr.worker():
        await sr.until(lambda: sr.scalar("select count(*) from shopsync.stores where id = %s", (store,)) == 0,
                       what="the store's data deleted")
    assert sr.scalar("select count(*) from shopsync.products where store_id = %s", (store,)) == 0


async def test_two_stores_of_one_shop_share_its_rate_limit(sr: SrWorld, dsn: str) -> None:
    # two organizations connected the same shop; two workers sync them at once: together under 3/s
    (u1, o1), (u2, o2) = owner_org(sr.conn), owner_org(sr.conn)
    s1 = await sr.install(u1, o1)
    s2 = await sr.install(u2, o2)
    other_db = await DirectDatabase.connect(dsn, listen=True)
    try:
        async with sr.worker(), sr.worker(db=other_db):
            await sr.until(lambda: sr.synced(s1) and sr.synced(s2), what="both first full syncs")
    finally:
        await other_db.close()
    assert sr.count("products", s1) == sr.count("products", s2) == 30
    # together at the shared pace: with a limiter per store the two would send at twice the rate and draw
    # a 429 every few requests. One 429 is tolerated: a strict one-second window cannot be kept to the
    # millisecond on a loaded machine (a new connection's first request reaches the shop tens of ms after
    # its slot, squeezing its window); the benchmark measures the steady state with 0 x 429.
    admitted = sorted(r.time - r.duration for r in sr.sandbox.request_log if r.endpoint == "api" and r.status != 429)
    assert len(admitted) >= 16
    assert (len(admitted) - 1) / (admitted[-1] - admitted[0]) <= 3.0
    assert sr.sandbox.counters["rate_limited"] <= 1


def test_rows_map_shoprenter_shapes(sr_spec: SrDatasetSpec) -> Iterator[None] | None:
    """Empty text as [] / {} becomes None; links become ids; local times get the shop's zone."""
    from zoneinfo import ZoneInfo

    from worker.connectors.canonical import Owner
    from worker.connectors.shoprenter.mapping import customer_rows, link_id, local_time

    owner = Owner.of(UUID(int=1), UUID(int=2))
    row = customer_rows(owner, {"id": "Y3VzdG9tZXItY3VzdG9tZXJfaWQ9MQ==", "firstname": "Anna", "lastname": {},
                                "email": "a@example.test", "telephone": [], "status": "1", "newsletter": "0",
                                "password": "hash", "dateUpdated": "2026-03-01T10:00:00"},
                        ZoneInfo("Europe/Budapest"))["customers"][0]
    assert row["last_name"] is None and row["phone"] is None and row["state"] == "enabled"
    assert row["accepts_marketing"] is False and "password" not in row["raw"]
    assert row["source_updated_at"].utcoffset().total_seconds() == 3600
    assert link_id({"href": "http://x/api/customers/abc="}) == "abc="
    assert local_time("0000-00-00 00:00:00", ZoneInfo("UTC")) is None
    return None


async def test_an_expired_token_is_replaced_and_an_uninstalled_app_needs_reauth(sr: SrWorld) -> None:
    user, org = owner_org(sr.conn)
    store = await sr.install(user, org)
    async with sr.worker():
        await sr.until(lambda: sr.synced(store), what="the first full sync")
    issued = sr.sandbox.counters["tokens_issued"]
    # ShopRenter expired the token early (the stored expiry still looks fine): one 401, a new token, done
    sr.sandbox.expire_tokens(sr.shop)
    sr.conn.execute("select shopsync.request_sync(%s, array['customers'], 'full')", (store,))
    async with sr.worker():
        await sr.until(sr.idle, what="the sync with a replaced token")
    assert sr.jobs("shoprenter.sync")[-1]["state"] == "succeeded"
    assert sr.sandbox.counters["tokens_issued"] == issued + 1
    # the app was removed without the uninstall call reaching us: the store needs re-authorization
    sr.sandbox.mark_installed(sr.shop, CLIENT_ID, installed=False)
    sr.sandbox.revoke_tokens(sr.shop)
    sr.conn.execute("select shopsync.request_sync(%s, array['orders'], 'full')", (store,))
    async with sr.worker():
        await sr.until(sr.idle, what="the refused sync")
    row = sr.conn.execute("select status, status_reason from shopsync.stores where id = %s", (store,)).fetchone()
    assert row is not None and row["status"] == "needs_reauth" and "refused" in row["status_reason"]


async def test_check_webhooks_repairs_subscriptions(sr: SrWorld) -> None:
    user, org = owner_org(sr.conn)
    store = await sr.install(user, org)
    async with sr.worker():
        await sr.until(lambda: sr.synced(store), what="the first full sync")
        await sr.until(sr.idle, what="an idle queue")
    hooks = sorted(sr.shop.webhooks.values(), key=lambda h: h.inner_id)
    with sr.sandbox.lock:
        hooks[0].status = 0                                   # switched off in the admin
        hooks[1].parameters = [{"type": "json", "url": f"{sr.web_url}/shoprenter/webhooks/{store}/old-token"}]
    sr.conn.execute("select shopsync.enqueue_job('shoprenter.check_webhooks', p_store_id => %s)", (store,))
    async with sr.worker():
        await sr.until(sr.idle, what="the check")
    result = sr.jobs("shoprenter.check_webhooks")[-1]["result"]
    assert result["enabled"] == [hooks[0].event] and result["created"] == [hooks[1].event]
    assert result["deleted"] == [hooks[1].event]
    live = list(sr.shop.webhooks.values())
    assert sorted(h.event for h in live) == ["order_confirm", "order_status_change"]
    assert all(h.status == 1 and "old-token" not in h.parameters[0]["url"] for h in live)


async def test_a_full_sync_resuming_after_the_last_page_completes(sr: SrWorld) -> None:
    user, org = owner_org(sr.conn)
    store = await sr.install(user, org)
    async with sr.worker():
        await sr.until(lambda: sr.synced(store), what="the first full sync")
        await sr.until(sr.idle, what="an idle queue")
    # a run killed after writing the last page (8 customers, 10 a page: page 0 is the last) resumes there;
    # ShopRenter answers the page after it with 400 / 40008, which is the end, not a permanent error
    sr.conn.execute("update shopsync.sync_state set checkpoint = '{\"page\": 0, \"mode\": \"full\"}' "
                    "where store_id = %s and resource = 'customers'", (store,))
    before = sr.sandbox.counters["status_400"]
    sr.conn.execute("select shopsync.request_sync(%s, array['customers'], 'full')", (store,))
    async with sr.worker():
        await sr.until(sr.idle, what="the resumed sync")
    assert sr.sandbox.counters["status_400"] == before + 1                     # the page past the last, once
    assert sr.jobs("shoprenter.sync")[-1]["state"] == "succeeded"
    assert sr.scalar("select checkpoint from shopsync.sync_state where store_id = %s and resource = 'customers'",
                     (store,)) is None
    assert sr.count("customers", store) == 8


async def test_disconnect_removes_our_webhooks_then_the_credentials(sr: SrWorld) -> None:
    user, org = owner_org(sr.conn)
    store = await sr.install(user, org)
    async with sr.worker():
        await sr.until(lambda: sr.synced(store), what="the first full sync")
        await sr.until(sr.idle, what="an idle queue")
    assert len(sr.shop.webhooks) == 2
    with as_role(sr.conn, "authenticated", user):
        sr.conn.execute("select shopsync.disconnect_store(%s)", (store,))
    async with sr.worker():
        await sr.until(sr.idle, what="the disconnect job")
    [job] = sr.jobs("shoprenter.disconnect")
    assert job["state"] == "succeeded" and job["result"]["credentials_deleted"] is True
    assert sorted(job["result"]["removed"]["deleted"]) == ["order_confirm", "order_status_change"]
    assert sr.shop.webhooks == {}
    assert sr.scalar("select count(*) from shopsync_private.store_credentials where store_id = %s", (store,)) == 0
    assert sr.scalar("select status from shopsync.stores where id = %s", (store,)) == "disconnected"


async def test_a_late_uninstall_leaves_a_reinstalled_store_alone(sr: SrWorld) -> None:
    user, org = owner_org(sr.conn)
    store = await sr.install(user, org)
    # the merchant removed and re-added the app; ShopRenter's uninstall call (signed a minute ago) arrives now
    sr.conn.execute("update shopsync.stores set connected_at = now() where id = %s", (store,))
    status = sr.scalar("select status from shopsync.stores where id = %s", (store,))
    late = await asyncio.to_thread(sr.sandbox.install_query, sr.shop, CLIENT_ID, int(time.time()) - 60,
                                   app_url=False)
    async with sr.web as web:
        answer = await web.get("/shoprenter/uninstall", params=late)
    assert answer.status_code == 200 and answer.json()["stores"] == 0
    assert sr.scalar("select status from shopsync.stores where id = %s", (store,)) == status != "uninstalled"
    # one signed after the reinstall does mark it
    fresh = await asyncio.to_thread(sr.sandbox.install_query, sr.shop, CLIENT_ID, int(time.time()) + 1,
                                    app_url=False)
    async with sr.web as web:
        answer = await web.get("/shoprenter/uninstall", params=fresh)
    assert answer.status_code == 200 and answer.json()["stores"] == 1
    assert sr.scalar("select status from shopsync.stores where id = %s", (store,)) == "uninstalled"
