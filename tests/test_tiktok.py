"""The TikTok Shop connector end to end against the sandbox over HTTP: the signer (published vectors, written
independently of the sandbox), consent → callback → claim → every authorized shop a store with its cipher, full
syncs in time windows under the search cap, incremental syncs, signed webhooks (forged, unsigned, unknown shop,
duplicates, deletes, deauthorization, expiring authorization), token refresh coalesced across workers and shops,
refused refreshes, and the envelope's error codes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import types
from typing import Any
from uuid import UUID

import httpx
import orjson
import psycopg
import pytest
from prometheus_client import REGISTRY, generate_latest

from sandbox.tiktok import TtDatasetSpec, webhook_signature
from tests.conftest import as_role
from tests.metrics_text import sample
from tests.platform_world import owner_org
from tests.tiktok_world import APP_KEY, APP_SECRET, FRONTEND, TtWorld
from worker.connectors.tiktok import CONNECTOR
from worker.connectors.tiktok.auth import sign, string_to_sign, verify_webhook
from worker.connectors.tiktok.errors import ErrorKind, TikTokApiError, classify
from worker.connectors.tiktok.tokens import load_tokens
from worker.errors import NeedsReauthError
from worker.jobs.registry import JobContext
from worker.sealing import Sealer

# --- the signer: written from the docs, checked against the published vectors ------------------------------


@pytest.mark.parametrize(("secret", "path", "query", "body", "expected"), [
    ("e59af819cc", "/authorization/202309/shops", {"app_key": "29a39d", "timestamp": "1623812664"}, b"",
     "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8"),        # the docs' example
    ("e59af819cc", "/event/202309/webhooks", {"app_key": "68xu9ks5p4i8", "timestamp": "1696909648",
                                              "shop_cipher": "ROW_xkMbgAAAeVAQra0eZWebFQq5aIK"},
     b'{"event_type":"PACKAGE_UPDATE","address":"https://partner.tiktokshop.com"}',
     "701dd6deb2389fe4c469b89bd37fc56f96a6da6afeb4d01c9077a65169752fa7"),        # an SDK's unit test (PUT)
    ("testsecret456", "/product/202502/products/search",
     {"app_key": "testkey123", "timestamp": "1700000000", "shop_cipher": "ROW_abc123", "page_size": "50",
      "page_token": "b2Zmc2V0PTUw"},
     b'{"status":"ACTIVATE","update_time_ge":1699990000,"update_time_le":1700000000}',
     "c8db3ea6bf029b361d4ca72af9fb7f4aebc986308a5eb483522577ff4bea6dc8"),        # computed independently
    ("testsecret456", "/product/202309/products/1729592969712207008/inventory/update",
     {"app_key": "testkey123", "timestamp": "1700000000", "shop_cipher": "ROW_abc123", "sign": "ignored"},
     b'{"skus":[{"id":"1729592969712207012","inventory":[{"warehouse_id":"7068517275539719942","quantity":0}]}]}',
     "9542321679cb8cc90581262efd7c0b32899bd797e72208e2e5900fd546467880"),
])
def test_the_signer_reproduces_the_published_vectors(secret: str, path: str, query: dict[str, str], body: bytes,
                                                     expected: str) -> None:
    assert sign(secret, path, query, body) == expected


def test_the_string_to_sign_and_webhook_check() -> None:
    assert string_to_sign("s", "/p", {"b": "2", "a": "1", "access_token": "t", "sign": "x"}, b"{}") == b"s/pa1b2{}s"
    body = (b'{"type":1,"tts_notification_id":"7380066284010030890","shop_id":"7495540735365777507",'
            b'"timestamp":1718305585,"data":{"is_on_hold_order":true,"order_id":"576653688135258178",'
            b'"order_status":"UNPAID","update_time":1718305585}}')
    official = "5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05"
    assert verify_webhook("abcdef", "123", body, official) and verify_webhook("abcdef", "123", body, official.upper())
    assert not verify_webhook("abcdef", "123", body + b" ", official)
    assert not verify_webhook("abcdef", "124", body, official) and not verify_webhook("abcdef", "123", body, None)


@pytest.mark.parametrize(("status", "code", "message", "kind"), [
    (200, 0, "Success", None),
    (429, None, "", ErrorKind.RATE_LIMITED),
    (200, 36009002, "Too many requests", ErrorKind.RATE_LIMITED),       # an error at HTTP 200 is still an error
    (200, 36009003, "Internal error", ErrorKind.TRANSIENT),
    (503, None, "", ErrorKind.TRANSIENT),
    (401, 105002, "Expired credentials", ErrorKind.TOKEN_EXPIRED),
    (401, 36009004, "Invalid credentials. The `x-tts-access-token` header is invalid.", ErrorKind.REAUTH),
    (400, 36009004, "Invalid credentials. The `shop_cipher` query parameter is invalid.", ErrorKind.REAUTH),
    (400, 36009004, "Unexpected identifier. The `shop_cipher` query parameter is not required", ErrorKind.PERMANENT),
    (200, 36004005, "can not find related auth record", ErrorKind.REAUTH),
    (401, 106001, "Invalid credentials. The `sign` query parameter is invalid.", ErrorKind.PERMANENT),
    (200, 12052180, "The total number of search results can not exceed 10000.", ErrorKind.PERMANENT),
])
def test_errors_are_classified_by_the_envelope_code(status: int, code: int | None, message: str,
                                                    kind: ErrorKind | None) -> None:
    assert classify(status, code, message) is kind


# --- connecting ------------------------------------------------------------------------------------------


def jctx(tt: TtWorld, worker: str = "t") -> JobContext:
    return JobContext(db=tt.db, settings=tt.core, worker_id=worker)


async def test_consent_connects_every_authorized_shop_and_syncs_it_in_windows(tt: TtWorld) -> None:
    second = tt.sandbox.add_shop(tt.shop.open_id, "Second Shop", TtDatasetSpec(seed=9, products=3, orders=2))
    user, org = owner_org(tt.conn)
    with as_role(tt.conn, "authenticated", user), pytest.raises(psycopg.errors.InvalidParameterValue):
        tt.conn.execute("select shopsync.begin_install(%s, 'tiktok', 'some-shop')", (org,))
    url = tt.begin(user, org)
    assert url.startswith(f"{tt.tiktok.authorize_url}?service_id={tt.tiktok.service_id}&state=")
    landed = await tt.consent(url)
    assert landed.status_code == 302 and landed.headers["location"].startswith(f"{FRONTEND}?platform=tiktok&shop=")
    first = tt.claim(user, org, landed.headers["location"])
    async with tt.worker():
        await tt.until(lambda: tt.scalar("select count(*) from shopsync.stores where platform = 'tiktok'") == 2,
                       what="a store per authorized shop")
        stores = [tt.store_of(tt.shop), tt.store_of(second)]
        await tt.until(lambda: all(tt.synced(s) for s in stores), what="both first syncs")
        await tt.until(tt.idle, what="an idle queue")
    assert first in stores
    for shop, store in ((tt.shop, stores[0]), (second, stores[1])):
        row = tt.conn.execute("select status, display_name, platform_info from shopsync.stores where id = %s",
                              (store,)).fetchone()
        assert row is not None and row["status"] == "active" and row["display_name"] == shop.info.name
        info = row["platform_info"]
        assert info["cipher"] == shop.cipher and info["token_anchor"] == str(first)
        assert sorted(info["authorization_shops"]) == sorted([tt.shop.id, second.id])
        assert tt.count("products", store) == len(shop.products)
        assert tt.count("product_variants", store) == len(shop.all_skus())
        assert tt.count("inventory_levels", store) == sum(len(s.inventory) for s in shop.all_skus())
        assert tt.count("inventory_locations", store) == len(shop.warehouses)
        assert tt.count("orders", store) == len(shop.orders)
        assert tt.count("order_line_items", store) == sum(len(o.lines) for o in shop.orders.values())
        # TikTok's webhooks point at us for every event type shopsync subscribes
        assert {e for (k, e), a in shop.webhook_addresses.items() if a == f"{tt.web_url}/tiktok/webhooks"} == \
            set(tt.tiktok.subscribe_events)
    # 40 products, a cap of 25: the walk split its time window instead of paging past the cap
    assert tt.sandbox.counters["search_cap_errors"] == 0 and tt.sandbox.counters["rate_limited"] == 0
    sku = tt.shop.all_skus()[0]
    row = tt.conn.execute("select sku, price, currency, inventory_quantity from shopsync.product_variants "
                          "where store_id = %s and id = %s", (stores[0], sku.id)).fetchone()
    assert row == {"sku": sku.seller_sku, "price": sku.price, "currency": "USD",
                   "inventory_quantity": sum(sku.inventory.values())}
    sealed = tt.scalar("select sealed from shopsync_private.store_credentials where store_id = %s", (first,))
    assert sealed.startswith("v1.") and "TTP_" not in sealed
    tokens, _ = await load_tokens(tt.db, Sealer.from_settings(tt.core), first) or (None, 0)
    assert tokens is not None and tokens.access_expires_at is not None
    assert abs(tokens.access_expires_at.timestamp() - (time.time() + 7 * 86400)) < 120     # absolute expiry kept


async def test_the_callback_trusts_only_states_it_issued(tt: TtWorld) -> None:
    user, org = owner_org(tt.conn)
    async with tt.web as web:
        assert (await web.get("/tiktok/callback", params={"code": "x"})).status_code == 400
        assert (await web.get("/tiktok/callback", params={"code": "x", "state": "forged"})).status_code == 401
    url = tt.begin(user, org)
    denied = await tt.consent(url, deny="1")
    assert denied.status_code == 302 and "status=denied" in denied.headers["location"]
    async with tt.web as web:                  # the state was used up by the refusal
        state = dict(httpx.URL(url).params)["state"]
        assert (await web.get("/tiktok/callback", params={"code": "x", "state": state})).status_code == 401
    assert tt.scalar("select count(*) from shopsync_private.pending_installs") == 0
    # a code TikTok refuses (spent, expired) sends the browser back with a reason, nothing parked
    state = dict(httpx.URL(tt.begin(user, org)).params)["state"]
    async with tt.web as web:
        refused = await web.get("/tiktok/callback", params={"code": "ROW_spent", "state": state})
    assert refused.status_code == 302 and "reason=authorization_refused" in refused.headers["location"]
    assert tt.scalar("select count(*) from shopsync_private.pending_installs") == 0


async def installed(tt: TtWorld) -> UUID:
    user, org = owner_org(tt.conn)
    [store] = await tt.install(user, org)
    async with tt.worker():
        await tt.until(lambda: tt.synced(store), what="the first sync")
        await tt.until(tt.idle, what="an idle queue")
    return store


async def test_incremental_sync_reads_what_changed_since_the_watermark(tt: TtWorld) -> None:
    store = await installed(tt)
    sku = tt.shop.all_skus()[3]
    tt.sandbox.clock.advance(5)
    tt.shop.set_price(sku.id, "3.21")
    tt.shop.set_inventory(sku.id, 77)
    order = tt.shop.create_order([(tt.shop.all_skus()[5].id, 1)])
    before = len(tt.sandbox.request_log)
    tt.conn.execute("select shopsync.request_sync(%s, null, 'incremental')", (store,))
    async with tt.worker():
        await tt.until(tt.idle, what="the incremental syncs")
    assert tt.scalar("select price from shopsync.product_variants where store_id = %s and id = %s",
                     (store, sku.id)) == sku.price
    assert tt.scalar("select available from shopsync.inventory_levels where store_id = %s and inventory_item_id = %s",
                     (store, sku.id)) == 77
    assert tt.count("orders", store) == len(tt.shop.orders) and order.id in \
        [r["id"] for r in tt.conn.execute("select id from shopsync.orders where store_id = %s", (store,))]
    searches = [r for r in tt.sandbox.request_log[before:] if r.path.endswith("/search")]
    assert len(searches) <= 4          # a few pages of what changed, not the whole shop again


# --- webhooks ----------------------------------------------------------------------------------------------


async def post(tt: TtWorld, body: dict[str, Any], *, signature: str | None = "sign",
               raw: bytes | None = None) -> httpx.Response:
    data = raw if raw is not None else orjson.dumps(body)
    headers = {"content-type": "application/json"}
    if signature == "sign":
        headers["authorization"] = webhook_signature(APP_KEY, APP_SECRET, data)
    elif signature is not None:
        headers["authorization"] = signature
    async with tt.web as web:
        return await web.post("/tiktok/webhooks", content=data, headers=headers)


def inbox(tt: TtWorld) -> int:
    return int(tt.scalar("select count(*) from shopsync.webhook_inbox"))


async def test_forged_unsigned_and_unknown_deliveries_write_nothing(tt: TtWorld,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    store = await installed(tt)
    body = {"type": 1, "tts_notification_id": "n-1", "shop_id": tt.shop.id, "timestamp": int(time.time()),
            "data": {"order_id": next(iter(tt.shop.orders)), "order_status": "IN_TRANSIT"}}
    forged = webhook_signature(APP_KEY, "not-the-secret", orjson.dumps(body))
    assert (await post(tt, body, signature=forged)).status_code == 401
    assert (await post(tt, body, signature=None)).status_code == 401
    assert (await post(tt, body, signature="")).status_code == 401
    assert inbox(tt) == 0
    with caplog.at_level(logging.WARNING):
        unknown = await post(tt, {**body, "shop_id": "1234567890123456789", "tts_notification_id": "n-2"})
    assert unknown.status_code == 404 and inbox(tt) == 0
    assert any("unknown shop" in r.getMessage() and "1234567890123456789" in r.getMessage() for r in caplog.records)
    assert (await post(tt, {**body, "type": 4})).json()["status"] == "ignored" and inbox(tt) == 0
    assert (await post(tt, {**body, "shop_id": None})).status_code == 400
    first, again = await post(tt, body), await post(tt, body)           # TikTok retries: the same notification id
    assert (first.json()["status"], again.json()["status"]) == ("accepted", "duplicate") and inbox(tt) == 1
    assert tt.scalar("select store_id from shopsync.webhook_inbox") == store


async def test_sandbox_webhooks_reread_and_apply_orders_products_and_authorization(tt: TtWorld) -> None:
    store = await installed(tt)
    product = next(iter(tt.shop.products.values()))
    async with tt.worker():
        order = tt.shop.create_order([(product.skus[0].id, 2)])
        tt.shop.set_order_status(next(iter(tt.shop.orders)), "CANCELLED")
        tt.shop.set_product_status(product.id, "DELETED")
        assert tt.sandbox.webhooks.wait_idle(10)
        await tt.until(lambda: tt.scalar("select count(*) from shopsync.webhook_inbox where status = 'pending'") == 0
                       and tt.idle(), what="the deliveries applied")
        assert tt.scalar("select count(*) from shopsync.order_line_items where store_id = %s and order_id = %s",
                         (store, order.id)) == 2
        assert tt.scalar("select financial_status from shopsync.orders where store_id = %s and id = %s",
                         (store, next(iter(tt.shop.orders)))) == "voided"
        assert tt.scalar("select deleted_at is not null from shopsync.products where store_id = %s and id = %s",
                         (store, product.id))
        tt.sandbox.warn_expiring(APP_KEY, tt.shop, days=4)
        tt.sandbox.deauthorize(APP_KEY, tt.shop)
        assert tt.sandbox.webhooks.wait_idle(10)
        await tt.until(lambda: tt.scalar("select status from shopsync.stores where id = %s", (store,)) == "uninstalled",
                       what="the deauthorization applied")
    event = tt.conn.execute("select type, details from shopsync.events where store_id = %s and "
                            "type = 'store.authorization_expiring'", (store,)).fetchone()
    assert event is not None and event["details"]["platform"] == "tiktok"
    assert tt.scalar("select count(*) from shopsync.webhook_inbox where status = 'failed'") == 0


# --- tokens ------------------------------------------------------------------------------------------------


async def two_shop_install(tt: TtWorld) -> list[UUID]:
    tt.sandbox.add_shop(tt.shop.open_id, "Second Shop", TtDatasetSpec(seed=9, products=2, orders=0))
    user, org = owner_org(tt.conn)
    await tt.install(user, org)
    async with tt.worker():
        await tt.until(lambda: tt.scalar("select count(*) from shopsync.stores where platform = 'tiktok' "
                                         "and status = 'active'") == 2, what="both shops active")
        await tt.until(tt.idle, what="an idle queue")
    return [r["id"] for r in tt.conn.execute("select id from shopsync.stores where platform = 'tiktok'")]


async def test_a_refresh_ahead_of_expiry_happens_once_for_every_job_and_shop(tt: TtWorld) -> None:
    stores = await two_shop_install(tt)
    tt.conn.execute("update shopsync_private.store_credentials set access_expires_at = now() + interval '1 minute'")
    refreshed = tt.sandbox.counters["token_refreshes"]

    async def read(store: UUID, worker: str) -> str:
        async with CONNECTOR.open_client(jctx(tt, worker), store) as client:
            await client.call("GET", "/logistics/202309/warehouses")
            return await client.tokens()

    tokens = await asyncio.gather(*(read(stores[i % 2], f"w{i}") for i in range(8)))
    assert tt.sandbox.counters["token_refreshes"] == refreshed + 1
    assert len(set(tokens)) == 1
    sealer = Sealer.from_settings(tt.core)
    pairs = [await load_tokens(tt.db, sealer, s) for s in stores]
    assert len({p[0].refresh_token for p in pairs if p}) == 1          # the new pair reached both shops
    assert all(p is not None and p[0].access_token == tokens[0] for p in pairs)


async def test_an_expired_token_answer_refreshes_once_and_retries(tt: TtWorld) -> None:
    store = await installed(tt)
    tt.sandbox.expire_access_tokens()           # TikTok's clock says expired; ours still thinks it is fine
    async with CONNECTOR.open_client(jctx(tt), store) as client:
        data = await client.call("GET", "/logistics/202309/warehouses")
    assert data["warehouses"] and tt.sandbox.counters["token_refreshes"] == 1


async def test_a_refused_refresh_pauses_every_shop_of_the_authorization_without_a_storm(tt: TtWorld) -> None:
    stores = await two_shop_install(tt)
    tt.sandbox.revoke_refresh_tokens()
    tt.conn.execute("update shopsync_private.store_credentials set access_expires_at = now() - interval '1 minute'")
    errors, api = tt.sandbox.counters["token_errors"], len(tt.sandbox.request_log)
    for store in stores:
        tt.conn.execute("select shopsync.request_sync(%s, array['products','orders'], 'incremental')", (store,))
    async with tt.worker():
        await tt.until(lambda: tt.scalar("select count(*) from shopsync.stores where status = 'needs_reauth'") == 2,
                       what="both shops needing re-authorization")
        await tt.until(tt.idle, what="an idle queue")
    assert tt.sandbox.counters["token_errors"] - errors <= 2
    assert [r for r in tt.sandbox.request_log[api:] if r.endpoint == "api"] == []
    reason = tt.scalar("select status_reason from shopsync.stores where id = %s", (stores[0],))
    assert "authorize" in reason and "TTP_" not in reason
    with pytest.raises(NeedsReauthError):
        async with CONNECTOR.open_client(jctx(tt), stores[0]) as client:
            await client.call("GET", "/logistics/202309/warehouses")


# --- the envelope ------------------------------------------------------------------------------------------


def platform_requests(outcome: str) -> float:
    try:
        return sample(generate_latest(REGISTRY).decode(),
                      f'shopsync_platform_requests_total{{platform="tiktok",outcome="{outcome}"}}')
    except AssertionError:           # no such series yet
        return 0.0


async def test_envelope_errors_at_http_200_retry_back_off_or_fail_by_code(tt: TtWorld) -> None:
    store = await installed(tt)
    before = {o: platform_requests(o) for o in ("ok", "throttled", "server_error", "client_error")}
    async with CONNECTOR.open_client(jctx(tt), store) as client:
        client.backoff_base = client.rate_limit_wait = 0.01
        tt.sandbox.faults.envelope_error_next(36009003, "Internal error. Please try again.", endpoint="warehouses")
        tt.sandbox.faults.rate_limit_next(1, endpoint="warehouses")
        tt.sandbox.faults.envelope_error_next(36009002, "Too many requests", endpoint="warehouses")
        assert (await client.call("GET", "/logistics/202309/warehouses"))["warehouses"]
        assert client.rate_limited == 2
        tt.sandbox.faults.envelope_error_next(105005, "Access denied: required access scope", endpoint="warehouses")
        with pytest.raises(TikTokApiError) as refused:
            await client.call("GET", "/logistics/202309/warehouses")
    assert refused.value.code == 105005
    answers = [(r.status, r.fault is not None) for r in tt.sandbox.request_log if r.group == "warehouses"][-5:]
    assert answers == [(200, True), (429, True), (200, True), (200, False), (200, True)]
    # counted by what the envelope said: a rate limit at HTTP 200 is a throttle, not an "ok"
    assert {o: platform_requests(o) - n for o, n in before.items()} == \
        {"ok": 1, "throttled": 2, "server_error": 1, "client_error": 1}


# --- time windows under the search cap ---------------------------------------------------------------------


class FakeSearch:
    """Items at given times; answers like TikTok: a total, pages of ``size``, the cap error past ``cap``."""

    def __init__(self, times: list[int], size: int, cap: int) -> None:
        self.times, self.size, self.cap, self.calls = sorted(times), size, cap, 0
        self.grow_after: int | None = None

    async def page(self, lo: int, hi: int, token: str | None) -> tuple[list[dict[str, Any]], int, str | None]:
        self.calls += 1
        if self.grow_after is not None and self.calls > self.grow_after:
            self.times = sorted(self.times + [lo] * self.cap)         # the shop grew inside this window
            self.grow_after = None
        found = [t for t in self.times if lo <= t <= hi]
        offset = int(token or 0)
        if len(found) > self.cap and offset + self.size > self.cap:
            raise TikTokApiError("cap", 12052180)
        page = [{"t": t} for t in found[offset:offset + self.size]]
        following = offset + self.size
        return page, len(found), str(following) if following < len(found) else None


async def walk(search: FakeSearch, checkpoint: dict[str, Any] | None = None,
               stop_after: int | None = None) -> tuple[list[int], dict[str, Any] | None]:
    from worker.connectors.tiktok.sync import windows

    seen: list[int] = []
    last = None
    async for items, cp, _ in windows(search, 0, 10_000, search.cap, checkpoint):  # type: ignore[arg-type]
        seen += [i["t"] for i in items]
        last = cp
        if stop_after is not None and len(seen) >= stop_after:
            break
    return seen, last


async def test_windows_split_under_the_cap_and_resume_from_their_checkpoint() -> None:
    times = [i * 7 % 10_000 for i in range(1, 301)]            # 300 items, a cap of 40
    search = FakeSearch(times, size=10, cap=40)
    seen, _ = await walk(search)
    assert sorted(seen) == sorted(times)
    # stopped part-way (a killed job), resumed from the checkpoint: the rest, nothing lost
    first, checkpoint = await walk(FakeSearch(times, size=10, cap=40), stop_after=120)
    assert checkpoint is not None and checkpoint["pending"]
    rest, _ = await walk(FakeSearch(times, size=10, cap=40), checkpoint)
    assert sorted(set(first) | set(rest)) == sorted(times) and len(first) + len(rest) == len(times)
    # a window that grows past the cap while it is paged is split and walked again
    growing = FakeSearch(times, size=10, cap=40)
    growing.grow_after = 3
    seen, _ = await walk(growing)
    assert set(times) <= set(seen)


async def test_a_walk_stopped_early_cancels_the_page_asked_for_ahead() -> None:
    from worker.connectors.tiktok.sync import windows

    class Stalling:
        """The first page answers; the next (asked for while the first is written) never does."""

        def __init__(self) -> None:
            self.asked: list[str | None] = []
            self.cancelled = False

        async def page(self, lo: int, hi: int, token: str | None) -> tuple[list[dict[str, Any]], int, str | None]:
            self.asked.append(token)
            if token is None:
                return [{"t": lo}], 2, "1"
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
            raise AssertionError("unreachable")

    search = Stalling()
    async with contextlib.aclosing(windows(search, 0, 10, 100, None)) as pages:  # type: ignore[arg-type]
        async for items, checkpoint, _ in pages:
            assert items == [{"t": 0}] and checkpoint == {"pending": [[0, 10]], "page_token": "1"}
            await asyncio.sleep(0)                 # the page ahead is on its way while this one is written
            break
    assert search.asked == [None, "1"] and search.cancelled


async def test_sends_of_one_shop_are_spaced_even_when_their_slots_bunch(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.connectors.tiktok import client

    clock = [100.0]
    slept: list[float] = []
    overshoot = [0.0, 0.3]          # the second sleep wakes 0.3 s late (a busy event loop)

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        clock[0] += seconds + (overshoot.pop(0) if overshoot else 0.0)
        await asyncio.sleep(0)

    monkeypatch.setattr(client, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(client, "asyncio", types.SimpleNamespace(sleep=sleep))
    monkeypatch.setattr(client.SendSpacing, "_next", {})
    monkeypatch.setattr(client.SendSpacing, "_sent", {})
    shop = client.SendSpacing("app:shop-1", 20.0)
    sent: list[float] = []

    async def send() -> None:
        await shop.wait()
        sent.append(round(clock[0], 6))

    await asyncio.gather(*(send() for _ in range(5)))             # five slots the limiter handed out together
    assert len(sent) == 5 and sent[0] == 100.0
    # whatever the wake-ups, the sends that went out are 1/20 s apart at least, in order of time
    assert all(b - a >= 0.05 - 1e-9 for a, b in zip(sent, sent[1:], strict=False))
    assert sent[-1] >= 100.0 + 0.3 + 4 * 0.05 - 1e-9               # the late wake-up pushed the rest back
    shop.defer(2.0)                                                  # a 429: nothing for 2 s
    await send()
    assert sent[-1] >= clock[0] - 1e-9 and sent[-1] - sent[-2] >= 2.0 - 1e-9
    count = len(slept)
    await client.SendSpacing("app:shop-2", 20.0).wait()             # another shop is not held back
    await client.SendSpacing("app:shop-3", 0).wait()                # no rate: no spacing
    assert len(slept) == count


@pytest.mark.parametrize("value", ["²", "١٢٣", "12a", "", " ", True, None, "1" * 31])
def test_ids_that_are_not_ascii_digits_are_refused(value: Any) -> None:
    from worker.connectors.canonical import MappingError
    from worker.connectors.tiktok.mapping import tiktok_id

    with pytest.raises(MappingError):
        tiktok_id(value)
    assert tiktok_id("7300000000000000042") == "7300000000000000042" and tiktok_id(42) == "42"


def test_settings_are_named_by_their_variables_and_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.connectors.tiktok.settings import EVENT_TYPES, load_tiktok_settings
    from worker.connectors.tiktok.webhooks import TOPICS
    from worker.errors import ConfigError

    assert set(TOPICS) == EVENT_TYPES
    monkeypatch.setenv("SHOPSYNC_TIKTOK_SUBSCRIBE_EVENTS", "order_status_change, SELLER_DEAUTHORIZATION,")
    assert load_tiktok_settings(_env_file=None).subscribe_events == ["ORDER_STATUS_CHANGE", "SELLER_DEAUTHORIZATION"]
    monkeypatch.setenv("SHOPSYNC_TIKTOK_SUBSCRIBE_EVENTS", "ORDER_STATUS_CHANGE,PRICE_CHANGE")
    monkeypatch.setenv("SHOPSYNC_TIKTOK_REQUESTS_PER_SECOND", "fast")
    monkeypatch.setenv("SHOPSYNC_TIKTOK_API_BASE_URL", "open-api.tiktokglobalshop.com")
    with pytest.raises(ConfigError) as refused:
        load_tiktok_settings(_env_file=None)
    message = str(refused.value)
    assert "SHOPSYNC_TIKTOK_SUBSCRIBE_EVENTS: unknown event type(s) PRICE_CHANGE" in message
    assert "SHOPSYNC_TIKTOK_REQUESTS_PER_SECOND: Input should be a valid number" in message
    assert "SHOPSYNC_TIKTOK_API_BASE_URL: must be an http(s) URL" in message


def test_the_tiktok_writer_implements_every_capability_it_declares() -> None:
    from worker.connectors.contract import WriteCapability
    from worker.connectors.tiktok.writes import TikTokWriter
    from worker.connectors.writes import missing_methods

    assert missing_methods(TikTokWriter, CONNECTOR.contract.writes) == []
    assert CONNECTOR.contract.writes == {WriteCapability.SET_PRICE, WriteCapability.SET_INVENTORY}
    assert missing_methods(object(), [WriteCapability.SET_PRICE]) == ["set_prices", "read_group"]
    assert missing_methods(TikTokWriter, [WriteCapability.CREATE_ORDER]) == ["create_order: no method defined"]
