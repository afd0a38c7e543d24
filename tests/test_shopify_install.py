"""Installing the Shopify app end to end (frontend RPC → sandbox authorize → our callback → worker),
installs started on Shopify's side, forged callbacks, and rotating-token refreshes.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from uuid import UUID

import httpx
import psycopg
import pytest

from sandbox.shopify.oauth import sign_callback
from tests.conftest import as_role
from tests.platform_world import owner_org
from tests.shopify_world import FRONTEND, SECRET, SHOP, World
from worker.connectors.shopify.oauth import ShopifyOAuth, TokenSet
from worker.connectors.shopify.tokens import StoreTokens, load_tokens, save_tokens
from worker.errors import NeedsReauthError
from worker.rpc import stores
from worker.sealing import Sealer


def begin(conn: psycopg.Connection[Any], user: UUID, org: UUID, shop: str = SHOP,
          return_to: str | None = None) -> str:
    with as_role(conn, "authenticated", user):
        row = conn.execute("select shopsync.begin_install(%s, 'shopify', %s, %s) as r", (org, shop, return_to)).fetchone()
    assert row is not None
    return str(row["r"]["authorize_url"])


def claim(conn: psycopg.Connection[Any], user: UUID, org: UUID, landing: str) -> UUID:
    """What the frontend does on landing: claim the install with the signed-in user's session."""
    token = dict(parse_qsl(urlsplit(landing).fragment))
    with as_role(conn, "authenticated", user):
        row = conn.execute("select shopsync.claim_pending_install(%s, %s, %s) as s",
                           (token["install_id"], token["claim_token"], org)).fetchone()
    assert row is not None
    return UUID(str(row["s"]))


async def authorize(url: str) -> str:
    """The merchant approves on (sandbox) Shopify; returns where Shopify sends the browser."""
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(url)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def stored_counts(w: World) -> dict[str, int]:
    return {t: w.scalar(f"select count(*) from shopsync.{t}") for t in
            ("products", "product_variants", "inventory_levels", "customers", "orders", "order_line_items")}


async def test_install_from_the_frontend_connects_syncs_and_subscribes(world: World) -> None:
    w = world
    user, org = owner_org(w.conn)
    url = begin(w.conn, user, org, "Demo.myshopify.com", FRONTEND + "/stores")
    assert url.startswith(f"{w.sandbox_url}/shops/demo.myshopify.com/admin/oauth/authorize?client_id=")
    callback = await authorize(url)
    assert callback.startswith(f"{w.web_url}/shopify/callback?")
    async with w.web as web:
        answer = await web.get(callback)
    assert answer.status_code == 302
    landing = answer.headers["location"]
    assert landing.startswith(FRONTEND + "/stores?platform=shopify&shop=demo.myshopify.com&status=pending#install_id=")
    [exchange] = w.jobs("shopify.exchange")
    assert str(exchange["payload"]["code"]["sealed"]).startswith("v1.")                 # sealed, not plain
    assert callback.split("code=")[1].split("&")[0] not in str(exchange["payload"])

    async with w.worker():
        claim(w.conn, user, org, landing)
        await w.until(lambda: w.scalar("select count(*) from shopsync.sync_runs where status = 'succeeded'") == 3,
                      what="three successful sync runs")
        await w.until(w.idle, what="an idle queue")
    store = w.conn.execute("select * from shopsync.stores").fetchone()
    assert store is not None
    assert (store["organization_id"], store["shop_key"], store["status"]) == (org, SHOP, "active")
    assert store["display_name"] and store["platform_info"]["api_version"] == w.shopify.api_version
    creds = w.conn.execute("select * from shopsync_private.store_credentials").fetchone()
    assert creds is not None and creds["kind"] == "shopify_offline" and creds["sealed"].startswith("v1.")
    assert creds["access_expires_at"] is not None and creds["refresh_expires_at"] is not None
    tokens = [t for t in w.sandbox.tokens if w.sandbox.tokens[t].shop == SHOP]
    assert tokens and all(t not in creds["sealed"] for t in tokens)
    topics = {s.topic for s in w.sandbox.subscriptions.values() if s.uri == f"{w.web_url}/shopify/webhooks"}
    assert {"products/update", "orders/updated", "customers/delete", "app/uninstalled",
            "inventory_levels/update"} <= topics
    counts = stored_counts(w)
    assert counts["products"] == 6 and counts["customers"] == 4 and counts["orders"] == 5
    assert counts["product_variants"] > 0 and counts["inventory_levels"] > 0 and counts["order_line_items"] > 0
    assert w.scalar("select count(*) from shopsync.jobs where state = 'dead'") == 0

    # reinstalling the shop reuses the store and its data
    callback = await authorize(begin(w.conn, user, org))
    async with w.web as web:
        landing = (await web.get(callback)).headers["location"]
    async with w.worker():
        await w.until(lambda: w.scalar("select count(*) from shopsync_private.pending_installs "
                                       "where credentials is not null") == 1, what="the reinstall's tokens")
        claim(w.conn, user, org, landing)
        await w.until(lambda: w.scalar("select count(*) from shopsync.sync_runs where status = 'succeeded'") == 6,
                      what="the reinstall's full syncs")
        await w.until(w.idle)
    assert w.scalar("select count(*) from shopsync.stores") == 1
    assert stored_counts(w) == counts


async def test_install_started_on_shopify_is_parked_then_claimed(world: World) -> None:
    w = world
    params = {"shop": SHOP, "timestamp": str(int(time.time())), "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvZGVtbw"}
    params["hmac"] = sign_callback(params, SECRET)
    async with w.web as web:
        answer = await web.get("/shopify/install?" + urlencode(params))
        assert answer.status_code == 302
        authorize_url = answer.headers["location"]
        assert authorize_url.startswith(f"{w.sandbox_url}/shops/{SHOP}/admin/oauth/authorize?")
        landing = await web.get(await authorize(authorize_url))
    assert landing.status_code == 302
    target = urlsplit(landing.headers["location"])
    assert dict(parse_qsl(target.query)) == {"platform": "shopify", "shop": SHOP, "status": "pending"}
    parked = dict(parse_qsl(target.fragment))            # never in the query: kept out of server logs
    assert set(parked) == {"install_id", "claim_token"}
    assert w.scalar("select count(*) from shopsync.stores") == 0

    async with w.worker():
        await w.until(lambda: w.scalar("select count(*) from shopsync_private.pending_installs "
                                       "where credentials is not null") == 1, what="parked tokens")
        user, org = owner_org(w.conn)
        with as_role(w.conn, "authenticated", user):
            store_id = w.conn.execute("select shopsync.claim_pending_install(%s, %s, %s) as s",
                                      (parked["install_id"], parked["claim_token"], org)).fetchone()["s"]  # type: ignore[index]
        await w.until(lambda: w.scalar("select count(*) from shopsync.sync_runs where status = 'succeeded'") == 3,
                      what="the claimed store's first sync")
        await w.until(w.idle)
    store = w.conn.execute("select * from shopsync.stores where id = %s", (store_id,)).fetchone()
    assert store is not None and store["status"] == "active" and store["organization_id"] == org
    assert w.scalar("select credentials is null from shopsync_private.pending_installs") is True
    assert w.scalar("select count(*) from shopsync_private.store_credentials where store_id = %s", (store_id,)) == 1

    # Shopify opening the app for a connected shop goes straight to the frontend
    params["timestamp"] = str(int(time.time()))
    params["hmac"] = sign_callback({k: v for k, v in params.items() if k != "hmac"}, SECRET)
    async with w.web as web:
        again = await web.get("/shopify/install?" + urlencode(params))
    assert again.status_code == 302 and again.headers["location"].startswith(FRONTEND + "?")
    assert f"store_id={store_id}" in again.headers["location"]


async def test_forged_or_replayed_callbacks_write_nothing(world: World) -> None:
    w = world
    user, org = owner_org(w.conn)
    callback = await authorize(begin(w.conn, user, org))
    good = dict(parse_qsl(urlsplit(callback).query))

    def signed(**changes: str) -> dict[str, str]:
        params = {k: v for k, v in {**good, **changes}.items() if k != "hmac"}
        return {**params, "hmac": sign_callback(params, SECRET)}

    forged = [
        {**good, "hmac": "0" * 64},                                   # wrong signature
        {**good, "code": "another-code"},                             # altered after signing
        {k: v for k, v in good.items() if k != "hmac"},               # unsigned
        signed(timestamp=str(int(time.time()) - 3600)),               # replayed an hour later
        signed(shop="evil.myshopify.com"),                            # state bound to another shop
        signed(shop="demo.myshopify.com.evil.com"),                   # hostile shop
        signed(state="0" * 64),                                       # unknown state
        {**{k: v for k, v in good.items() if k != "hmac"}, "hmac": sign_callback(
            {k: v for k, v in good.items() if k != "hmac"}, "not-the-secret")},
    ]
    async with w.web as web:
        for params in forged:
            answer = await web.get("/shopify/callback?" + urlencode(params))
            assert answer.status_code == 401, (params, answer.text)
            assert answer.json()["error"] == "unauthorized"
        assert w.scalar("select count(*) from shopsync.jobs") == 0
        assert w.scalar("select count(*) from shopsync_private.oauth_states where consumed_at is not null") == 0
        assert (await web.get("/shopify/callback?" + urlencode(good))).status_code == 302
        assert (await web.get("/shopify/callback?" + urlencode(good))).status_code == 401      # single use
        assert (await web.get("/shopify/callback?" + urlencode(signed(code="")))).status_code in (400, 401)
    assert len(w.jobs("shopify.exchange")) == 1


# --- tokens ------------------------------------------------------------------------------------------------

async def connected_store(w: World, *, expiring: bool = True) -> tuple[UUID, Sealer]:
    """A store with tokens issued by the sandbox, without going through OAuth."""
    _, org = owner_org(w.conn)
    store_id = UUID(str(w.scalar("select shopsync.upsert_store(%s, 'shopify', %s)", (org, SHOP))))
    sealer = Sealer.from_settings(w.core)
    body = w.sandbox.issue_token(SHOP, w.shopify.client_id or "", expiring=expiring)
    await save_tokens(w.db, sealer, store_id, TokenSet.from_response(body, datetime.now(UTC)))
    return store_id, sealer


def provider(w: World, store_id: UUID, sealer: Sealer, owner: str, oauth: ShopifyOAuth) -> StoreTokens:
    return StoreTokens(w.db, sealer, oauth, store_id, SHOP, owner=owner, refresh_margin=300)


async def test_racing_workers_refresh_a_rotating_token_once(world: World) -> None:
    w = world
    store_id, sealer = await connected_store(w)
    w.sandbox.expire_access_tokens()
    w.conn.execute("update shopsync_private.store_credentials set access_expires_at = now() + interval '10 seconds'")
    oauth = ShopifyOAuth(w.shopify)
    try:
        # two per worker process: jobs of one process share its worker id
        racers = [provider(w, store_id, sealer, f"worker-{i % 2}", oauth) for i in range(4)]
        w.sandbox.faults.slow(0.3, n=1, endpoint="token")     # a slow refresh makes the race real
        tokens = await asyncio.gather(*(r() for r in racers))
    finally:
        await oauth.aclose()
    assert len(set(tokens)) == 1
    assert w.sandbox.counters.get("oauth_refreshed", 0) == 1
    assert w.sandbox.counters.get("oauth_refresh_reuse", 0) == 0
    assert sum(r.refreshes for r in racers) == 1
    found = await load_tokens(w.db, sealer, store_id)
    assert found is not None and found[1] == 2 and found[0].access_token == tokens[0]
    assert w.scalar("select refresh_lock_owner from shopsync_private.store_credentials") is None


async def test_a_refused_refresh_means_reauth(world: World) -> None:
    w = world
    store_id, sealer = await connected_store(w)
    w.sandbox.revoke_tokens(SHOP, w.shopify.client_id or "")
    w.conn.execute("update shopsync_private.store_credentials set access_expires_at = now()")
    oauth = ShopifyOAuth(w.shopify)
    try:
        with pytest.raises(NeedsReauthError, match="invalid_grant"):
            await provider(w, store_id, sealer, "w", oauth)()
    finally:
        await oauth.aclose()
    assert w.scalar("select refresh_lock_owner from shopsync_private.store_credentials") is None


async def test_after_a_refusal_no_other_job_of_the_store_sends_a_request(world: World,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The store is marked needs_reauth in the transaction that fails the refused job, before its store lock
    is released: with two workers and more syncs of the store queued, the refused request is the last."""
    w = world
    marking = stores.mark_store_needs_reauth

    async def slow_marking(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.5)        # a slow round trip: a marking made apart from the failure shows its gap
        await marking(*args, **kwargs)

    monkeypatch.setattr(stores, "mark_store_needs_reauth", slow_marking)
    store_id = await w.connect()
    async with w.worker():
        await w.until(lambda: w.scalar("select count(*) from shopsync.sync_runs where status = 'succeeded'") == 3,
                      what="the first full sync")
        await w.until(w.idle)
    w.sandbox.revoke_tokens(SHOP, w.shopify.client_id or "")
    refused_at = len(w.sandbox.request_log)
    for _ in range(3):
        w.conn.execute("select shopsync.request_sync(%s, array['products', 'customers', 'orders'], 'incremental')",
                       (store_id,))
    async with w.worker(worker_id="worker-a"), w.worker(worker_id="worker-b"):
        await w.until(w.idle, what="the queue to settle")
    sent = [r for r in list(w.sandbox.request_log)[refused_at:] if r.endpoint != "token"]
    assert [r.status for r in sent] == [401], [(r.path, r.status) for r in sent]
    store = w.conn.execute("select status, status_reason from shopsync.stores where id = %s", (store_id,)).fetchone()
    assert store is not None and store["status"] == "needs_reauth"
    states = {j["state"] for j in w.jobs("shopify.sync") if j["created_at"] > w.jobs()[0]["created_at"]}
    assert "queued" not in states and "running" not in states


async def test_a_legacy_token_is_migrated_by_token_exchange(world: World) -> None:
    w = world
    store_id, sealer = await connected_store(w, expiring=False)
    assert w.scalar("select kind from shopsync_private.store_credentials") == "shopify_offline_legacy"
    oauth = ShopifyOAuth(w.shopify)
    try:
        token = await provider(w, store_id, sealer, "w", oauth)()
    finally:
        await oauth.aclose()
    assert w.sandbox.counters.get("oauth_migrated", 0) == 1
    row = w.conn.execute("select kind, access_expires_at from shopsync_private.store_credentials").fetchone()
    assert row is not None and row["kind"] == "shopify_offline" and row["access_expires_at"] is not None
    found = await load_tokens(w.db, sealer, store_id)
    assert found is not None and found[0].access_token == token and found[0].refresh_token


async def test_a_forwarded_consent_screen_cannot_connect_someone_elses_shop(world: World) -> None:
    """OAuth login CSRF: the attacker begins an install for their organization and gets a merchant to
    approve it. The merchant's browser holds the claim token, and only the attacker could claim it."""
    w = world
    attacker, attacker_org = owner_org(w.conn)
    merchant, merchant_org = owner_org(w.conn)
    callback = await authorize(begin(w.conn, attacker, attacker_org))       # approved by the merchant
    async with w.web as web:
        landing = (await web.get(callback)).headers["location"]          # in the merchant's browser
    with pytest.raises(psycopg.Error) as caught:
        claim(w.conn, merchant, merchant_org, landing)
    assert caught.value.sqlstate == "P0002"
    with pytest.raises(psycopg.Error) as wrong_org:
        claim(w.conn, attacker, merchant_org, landing)                    # nor for another organization
    assert wrong_org.value.sqlstate in ("42501", "P0002")
    assert w.scalar("select count(*) from shopsync.stores") == 0
    assert w.scalar("select count(*) from shopsync.jobs where kind = 'shopify.install_claimed'") == 0
