"""Product links end to end: a Shopify sandbox store and a TikTok sandbox store of one organization, linked by SKU
(dry run first), prices and stock pushed after the rules, a Shopify webhook's change reaching TikTok, promotion
locks / products under review / deleted SKUs → action_required (not retried until something changes), bad prices
refused per SKU, rate limits and 5xx retried, out-of-order and duplicated changes converging on the last value,
read-back of drift, and links kept inside their organization by RLS and by the RPCs."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest

from sandbox.shopify import DatasetSpec
from sandbox.tiktok import TtDatasetSpec, TtShop
from tests.conftest import as_role
from tests.platform_world import owner_org
from tests.tiktok_world import SHOPIFY_ID, SHOPIFY_SHOP, TtWorld
from worker.connectors.shopify.oauth import TokenSet
from worker.connectors.shopify.tokens import save_tokens
from worker.sealing import Sealer


@pytest.fixture
def with_shopify() -> bool:
    return True


@pytest.fixture
def tt_spec() -> TtDatasetSpec:
    return TtDatasetSpec(products=0, orders=0)


@pytest.fixture
def shopify_spec() -> DatasetSpec:
    return DatasetSpec(products=5, variants_per_product=3, customers=1, orders=1, locations=2)


class Linked:
    def __init__(self, tt: TtWorld, user: UUID, org: UUID, shopify: UUID, tiktok: UUID) -> None:
        self.tt, self.user, self.org, self.shopify, self.tiktok = tt, user, org, shopify, tiktok

    @property
    def shop(self) -> TtShop:
        return self.tt.shop

    def rpc(self, query: str, *args: Any) -> Any:
        with as_role(self.tt.conn, "authenticated", self.user):
            row = self.tt.conn.execute(query, args).fetchone()
        return None if row is None else next(iter(row.values()))

    def source(self) -> dict[str, dict[str, Any]]:
        """Shopify variants by SKU: id, price and stock as synced."""
        rows = self.tt.conn.execute(
            "select v.id, v.sku, v.price, v.inventory_item_id, coalesce((select sum(l.available) from "
            "shopsync.inventory_levels l where l.store_id = v.store_id and l.inventory_item_id = v.inventory_item_id), "
            "v.inventory_quantity) as quantity from shopsync.product_variants v where v.store_id = %s "
            "and v.deleted_at is null", (self.shopify,)).fetchall()
        return {r["sku"]: r for r in rows}

    def links(self) -> list[dict[str, Any]]:
        return self.tt.conn.execute("select * from shopsync.product_links order by target_sku_id").fetchall()

    def log(self, result: str | None = None) -> list[dict[str, Any]]:
        return self.tt.conn.execute("select * from shopsync.product_link_log where %s::text is null or result = %s "
                                    "order by id", (result, result)).fetchall()

    def calls(self, kind: str, since: int = 0) -> list[dict[str, Any]]:
        return [w for w in self.tt.sandbox.writes[since:] if w["kind"] == kind]


async def connect_shopify(tt: TtWorld, org: UUID) -> UUID:
    assert tt.shopify_sandbox is not None
    store = UUID(str(tt.scalar("select shopsync.upsert_store(%s, 'shopify', %s, null, 'connecting')",
                               (org, SHOPIFY_SHOP))))
    body = tt.shopify_sandbox.issue_token(SHOPIFY_SHOP, SHOPIFY_ID)
    await save_tokens(tt.db, Sealer.from_settings(tt.core), store, TokenSet.from_response(body, datetime.now(UTC)))
    tt.conn.execute("select shopsync.enqueue_job('shopify.activate', p_store_id => %s)", (store,))
    return store


def mirror(tt: TtWorld, store: UUID, *, extra: bool = True) -> None:
    """The seller lists the Shopify catalog on TikTok: one TikTok product per Shopify product, its SKUs under the
    same seller SKUs, at other prices and stock (the first push brings them in line)."""
    rows = tt.conn.execute("select product_id, sku from shopsync.product_variants where store_id = %s "
                           "order by product_id, position", (store,)).fetchall()
    by_product: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        by_product[r["product_id"]].append(r["sku"])
    for n, skus in enumerate(by_product.values()):
        tt.shop.add_product(f"TikTok listing {n}", [(sku, "1.00", 1) for sku in skus])
    if extra:
        tt.shop.add_product("Only on TikTok", [("TT-ONLY-1", "9.99", 4)])


async def linked(tt: TtWorld, *, auto: bool = True) -> Linked:
    user, org = owner_org(tt.conn)
    shopify = await connect_shopify(tt, org)
    async with tt.worker():
        await tt.until(lambda: tt.synced(shopify), what="the Shopify sync")
        await tt.until(tt.idle, what="an idle queue")
        mirror(tt, shopify)
        [tiktok] = await tt.install(user, org)
        await tt.until(lambda: tt.synced(tiktok), what="the TikTok sync")
        await tt.until(tt.idle, what="an idle queue")
        world = Linked(tt, user, org, shopify, tiktok)
        if auto:
            world.rpc("select shopsync.auto_link_by_sku(%s, %s, false)", shopify, tiktok)
            await tt.until(tt.idle, what="the first pushes")
    return world


def in_line(w: Linked) -> list[str]:
    """SKUs whose TikTok price or stock differs from the Shopify source (empty when everything converged)."""
    wrong = []
    for sku, src in w.source().items():
        try:
            target = w.shop.sku_by_seller_sku(sku)
        except KeyError:
            continue
        if target.price != src["price"] or sum(target.inventory.values()) != src["quantity"]:
            wrong.append(sku)
    return wrong


# --- linking ----------------------------------------------------------------------------------------------


async def test_auto_link_reports_before_it_links_and_never_guesses_between_duplicates(tt: TtWorld) -> None:
    w = await linked(tt, auto=False)
    source = w.source()
    some = sorted(source)
    # a duplicate on each side: a second Shopify variant under an existing SKU... and two TikTok SKUs sharing one
    tt.conn.execute("update shopsync.product_variants set sku = %s where store_id = %s and sku = %s",
                    (some[0], w.shopify, some[1]))
    tt.conn.execute("update shopsync.product_variants set sku = %s where store_id = %s and sku = %s",
                    (some[2], w.tiktok, some[3]))
    report = w.rpc("select shopsync.auto_link_by_sku(%s, %s)", w.shopify, w.tiktok)
    assert report["dry_run"] is True and report["created"] == 0 and w.links() == []
    assert report["duplicates"] == {"source": [some[0]], "target": [some[2]]}
    # some[1] left Shopify (renamed) but is still on TikTok; some[3]'s TikTok twin now answers to some[2]
    assert report["missing_in_source"] == sorted([some[1], "TT-ONLY-1"])
    assert report["missing_in_target"] == [some[3]]
    matched = {m["sku"] for m in report["matches"]}
    assert matched == set(source) - {some[0], some[1], some[2], some[3]}
    done = w.rpc("select shopsync.auto_link_by_sku(%s, %s, false)", w.shopify, w.tiktok)
    assert done["created"] == len(matched) and len(w.links()) == len(matched)
    again = w.rpc("select shopsync.auto_link_by_sku(%s, %s, false)", w.shopify, w.tiktok)
    assert again["created"] == 0 and again["already_linked"] == len(matched) and again["matches"] == []


async def test_linked_skus_take_the_source_values_and_a_shopify_webhook_reaches_tiktok(tt: TtWorld) -> None:
    w = await linked(tt)
    assert in_line(w) == []
    links = w.links()
    assert {link["status"] for link in links} == {"active"} and len(links) == 15
    assert {r["result"] for r in w.log()} == {"pushed"}
    # one price call and one stock call per TikTok product: 5 products
    assert len(w.calls("price")) == 5 and len(w.calls("inventory")) == 5
    # pushed by the TikTok store's job, several products per job (auto-link requested all five at once)
    jobs = tt.conn.execute("select store_id, result from shopsync.jobs where kind = 'links.push' "
                           "and state = 'succeeded'").fetchall()
    assert {j["store_id"] for j in jobs} == {w.tiktok}
    assert sum(j["result"]["products"] for j in jobs) >= 5 and max(j["result"]["products"] for j in jobs) > 1
    stats = tt.conn.execute("select * from shopsync.store_link_statistics where store_id = %s", (w.tiktok,)).fetchone()
    assert stats is not None and (stats["links"], stats["active"], stats["pushed"]) == (15, 15, 30)
    per_link = tt.conn.execute("select pushed, failed from shopsync.product_link_statistics where link_id = %s",
                               (links[0]["id"],)).fetchone()
    assert per_link == {"pushed": 2, "failed": 0}
    assert tt.shopify_sandbox is not None and tt.shopify_shop is not None
    variant = next(iter(w.source().values()))
    before = len(tt.sandbox.writes)
    async with tt.worker():
        tt.shopify_shop.update_variant(int(variant["id"]), price="42.50")       # the merchant edits in Shopify
        target = w.shop.sku_by_seller_sku(variant["sku"])
        await tt.until(lambda: target.price == Decimal("42.50"), what="the new price on TikTok")
        await tt.until(tt.idle, what="an idle queue")
    # only what changed was sent: one price call naming one SKU, no stock call
    assert [c["skus"] for c in w.calls("price", before)] == [{target.id: "42.50"}]
    # the TikTok store's synced copy shows what was pushed (no webhook reports our own change back)
    assert tt.scalar("select price from shopsync.product_variants where store_id = %s and id = %s",
                     (w.tiktok, target.id)) == Decimal("42.50")
    assert w.calls("inventory", before) == []
    location = tt.shopify_shop.location_ids()[0]
    async with tt.worker():
        tt.shopify_shop.set_inventory(int(variant["id"]), location, 3)
        await tt.until(lambda: tt.scalar("select available from shopsync.inventory_levels where store_id = %s and "
                                         "inventory_item_id = %s and location_id = %s",
                                         (w.shopify, variant["inventory_item_id"], str(location))) == 3,
                       what="the Shopify webhook applied")
        await tt.until(lambda: in_line(w) == [] and tt.idle(), what="the stock change on TikTok")
    assert len(w.calls("inventory", before)) == 1 and len(w.calls("price", before)) == 1


async def test_rules_shape_what_is_pushed_and_a_bad_price_is_refused_for_its_sku_alone(tt: TtWorld) -> None:
    w = await linked(tt)
    [a, b] = w.links()[:2]
    w.rpc("select shopsync.update_product_link(%s, %s)", a["id"], psycopg.types.json.Jsonb(
        {"price_multiplier": "1.2", "price_offset": "0.5", "price_rounding": ".99", "inventory_percentage": 50,
         "inventory_zero_below": 2, "inventory_cap": 10}))
    w.rpc("select shopsync.update_product_link(%s, %s)", b["id"], psycopg.types.json.Jsonb({"price_offset": "-10000"}))
    async with tt.worker():
        await tt.until(tt.idle, what="the pushes")
    source = {s["id"]: s for s in w.source().values()}
    src_a, src_b = source[a["source_variant_id"]], source[b["source_variant_id"]]
    target_a = w.shop.sku(a["target_sku_id"])
    raw = src_a["price"] * Decimal("1.2") + Decimal("0.5")
    expected = int(raw) + Decimal("0.99")
    assert target_a.price == (expected if expected >= raw else expected + 1)
    half = int(src_a["quantity"] * 50 / 100)
    assert sum(target_a.inventory.values()) == (0 if half < 2 else min(half, 10))
    refused = tt.conn.execute("select * from shopsync.product_links where id = %s", (b["id"],)).fetchone()
    assert refused is not None and refused["status"] == "error" and refused["last_error_code"] == "price_invalid"
    assert "positive" in refused["last_error"]
    assert w.shop.sku(b["target_sku_id"]).price == src_b["price"]          # left at the last good value
    assert [r["field"] for r in w.log("refused")] == ["price"]


# --- what the platform refuses -----------------------------------------------------------------------------


async def test_locks_reviews_and_deleted_skus_need_action_and_are_not_retried_until_something_changes(
        tt: TtWorld) -> None:
    w = await linked(tt)
    assert tt.shopify_shop is not None
    product = next(p for p in w.shop.products.values() if len(p.skus) == 3)
    locked, free, gone = product.skus
    by_target = {link["target_sku_id"]: link for link in w.links()}
    w.shop.lock_promotion(locked.id)
    w.shop.delete_sku(gone.id)
    before = len(tt.sandbox.writes)
    async with tt.worker():
        for sku in (locked, free, gone):
            tt.shopify_shop.update_variant(int(by_target[sku.id]["source_variant_id"]), price="77.00")
        assert tt.shopify_sandbox is not None and tt.shopify_sandbox.webhooks.wait_idle(10)
        await tt.until(lambda: free.price == Decimal("77.00") and tt.scalar(
            "select count(*) from shopsync.product_links where status = 'action_required'") == 2 and tt.idle(),
            what="the pushes")
    rows = {r["target_sku_id"]: r for r in w.links()}
    assert (rows[locked.id]["status"], rows[locked.id]["status_reason"]) == ("action_required", "promotion_locked")
    assert rows[locked.id]["last_error_code"] == "12019045" and locked.price != Decimal("77.00")
    assert (rows[gone.id]["status"], rows[gone.id]["status_reason"]) == ("action_required", "sku_deleted")
    assert rows[free.id]["status"] == "active"
    events = tt.conn.execute("select subject, details from shopsync.events where type = 'link.action_required' "
                             "order by id").fetchall()
    assert sorted(e["subject"] for e in events) == ["promotion_locked", "sku_deleted"]
    # the whole call failed on the lock: each SKU was then sent alone, so the free one still went through
    assert any(c["skus"] == {free.id: "77.00"} for c in w.calls("price", before))
    # nothing changed since: a re-check (the read-back's push) sends nothing for them
    calls = len(tt.sandbox.writes)
    tt.conn.execute("select shopsync_private.request_link_push(%s, %s)", (w.tiktok, product.id))
    async with tt.worker():
        await tt.until(tt.idle, what="the re-check")
    assert len(tt.sandbox.writes) == calls
    # the promotion ends and the source changes: the link is re-armed and pushes again
    w.shop.lock_promotion(locked.id, False)
    async with tt.worker():
        tt.shopify_shop.update_variant(int(by_target[locked.id]["source_variant_id"]), price="78.00")
        await tt.until(lambda: locked.price == Decimal("78.00") and tt.idle(), what="the re-armed push")
    assert tt.scalar("select status from shopsync.product_links where target_sku_id = %s", (locked.id,)) == "active"
    # a product under review takes stock but not prices
    w.shop.set_product_status(product.id, "PENDING")
    location = tt.shopify_shop.location_ids()[0]
    async with tt.worker():
        tt.shopify_shop.update_variant(int(by_target[free.id]["source_variant_id"]), price="12.00")
        tt.shopify_shop.set_inventory(int(by_target[free.id]["source_variant_id"]), location, 9)
        await tt.until(lambda: tt.scalar("select status_reason from shopsync.product_links where target_sku_id = %s",
                                         (free.id,)) == "product_not_live" and tt.idle(), what="the review refusal")
    assert free.price == Decimal("77.00")
    src = w.source()[free.seller_sku]
    assert sum(free.inventory.values()) == src["quantity"]


async def test_rate_limits_and_server_errors_are_retried_until_the_values_land(tt: TtWorld) -> None:
    w = await linked(tt)
    assert tt.shopify_shop is not None
    link = w.links()[0]
    tt.sandbox.faults.fail_next(2, 503, endpoint="prices")
    tt.sandbox.faults.rate_limit_next(2, endpoint="prices")
    async with tt.worker():
        tt.shopify_shop.update_variant(int(link["source_variant_id"]), price="55.55")
        target = w.shop.sku(link["target_sku_id"])
        await tt.until(lambda: target.price == Decimal("55.55") and tt.idle(), timeout=90, what="the retried push")
    assert tt.scalar("select status from shopsync.product_links where id = %s", (link["id"],)) == "active"
    assert tt.sandbox.counters["faults_injected"] >= 4


async def test_shuffled_duplicated_changes_converge_on_the_last_value_with_few_calls(tt: TtWorld) -> None:
    w = await linked(tt)
    assert tt.shopify_sandbox is not None and tt.shopify_shop is not None
    links = w.links()[:6]
    before = len(tt.sandbox.writes)
    tt.shopify_sandbox.webhooks.hold()
    for round_ in range(8):
        for link in links:
            price = f"{10 + round_}.{random.randint(10, 99)}"
            tt.shopify_shop.update_variant(int(link["source_variant_id"]), price=price)
    tt.shopify_sandbox.webhooks.faults.duplicate_rate = 0.3
    tt.shopify_sandbox.webhooks.release(shuffle=True)
    async with tt.worker():          # 8 jobs at once: pushes of one product still never overlap
        assert tt.shopify_sandbox.webhooks.wait_idle(30)
        await tt.until(lambda: tt.idle() and in_line(w) == [], timeout=90, what="convergence")
    products = {link["target_product_id"] for link in links}
    assert len(w.calls("price", before)) <= 3 * len(products)
    # never two pushes of one product at once: one job of the target store at a time
    jobs = tt.conn.execute("select store_id, started_at, finished_at from shopsync.jobs "
                           "where kind = 'links.push' and state = 'succeeded' order by started_at").fetchall()
    assert {job["store_id"] for job in jobs} == {w.tiktok}
    last_end: datetime | None = None
    for job in jobs:
        assert last_end is None or job["started_at"] >= last_end
        last_end = job["finished_at"]


async def test_a_push_waits_out_a_storm_of_source_deliveries_but_not_a_trickle(tt: TtWorld) -> None:
    w = await linked(tt)
    product = w.links()[0]["target_product_id"]

    def pending() -> dict[str, Any]:
        found = tt.scalar("select shopsync.link_push_due(%s)", (w.tiktok,))
        assert isinstance(found, list)
        return {p["product_id"]: p for p in found}

    def deliveries(store: UUID, n: int, age: str, topic: str = "products/update") -> None:
        tt.conn.execute("insert into shopsync.webhook_inbox (platform, delivery_id, store_id, topic, payload, "
                        "received_at) select 'shopify', gen_random_uuid()::text, %s, %s, '{}', "
                        "clock_timestamp() - %s::interval from generate_series(1, %s)", (store, topic, age, n))

    assert pending() == {}                              # everything pushed: nothing pending
    tt.conn.execute("select shopsync_private.request_link_push(%s, %s)", (w.tiktok, product))
    found = pending()
    assert list(found) == [product] and found[product]["storming"] is False
    assert 0 <= found[product]["quiet_s"] < 60
    seq = found[product]["seq"]
    tt.conn.execute("select shopsync_private.request_link_push(%s, %s)", (w.tiktok, product))
    assert pending()[product]["seq"] == seq + 1         # coalesced: one row, its sequence bumped
    deliveries(w.shopify, 5, "0")                       # a few edits: pushed after the short settle
    assert pending()[product]["storming"] is False
    deliveries(w.shopify, 20, "5 seconds")              # a storm that is over
    assert pending()[product]["storming"] is False
    other = UUID(str(tt.scalar("select shopsync.upsert_store(%s, 'woocommerce', 'https://other.test')", (w.org,))))
    deliveries(other, 20, "0")                          # a store the product is not linked to
    assert pending()[product]["storming"] is False
    deliveries(w.shopify, 20, "0", "orders/create")     # a busy shop's orders: pushes are not held back
    assert pending()[product]["storming"] is False
    deliveries(w.shopify, 6, "0")                       # six in the last two seconds: a bulk edit is going on
    assert pending()[product]["storming"] is True
    # one queued job for the whole store, whatever the number of products asking
    queued = tt.conn.execute("select count(*) as n from shopsync.jobs where kind = 'links.push' and store_id = %s "
                             "and state = 'queued'", (w.tiktok,)).fetchone()
    assert queued is not None and queued["n"] == 1


async def test_the_read_back_repairs_drift_on_the_target(tt: TtWorld) -> None:
    w = await linked(tt)
    link = w.links()[0]
    target = w.shop.sku(link["target_sku_id"])
    right = target.price
    w.shop.set_price(target.id, "1.11")                 # edited in TikTok Seller Center: no webhook fires
    w.shop.set_inventory(target.id, 0)                  # or sold there
    tt.conn.execute("select shopsync.enqueue_link_reconciles()")
    async with tt.worker():
        await tt.until(lambda: target.price == right and tt.idle(), what="the drift repaired")
    assert in_line(w) == []
    assert tt.scalar("select count(*) from shopsync.jobs where kind = 'links.reconcile' and state = 'succeeded'") == 1
    # drift the TikTok sync sees in its own copy (a sale there, an edit there) is repaired the same way
    tt.sandbox.clock.advance(2)
    w.shop.set_price(target.id, "2.22")
    tt.conn.execute("select shopsync.request_sync(%s, array['products'], 'incremental')", (w.tiktok,))
    async with tt.worker():
        await tt.until(lambda: target.price == right and tt.idle(), what="the drift the sync saw repaired")
    assert tt.scalar("select count(*) from shopsync.jobs where kind = 'links.reconcile'") == 1


# --- who may link what -------------------------------------------------------------------------------------


async def test_links_stay_inside_their_organization(tt: TtWorld) -> None:
    w = await linked(tt)
    link = w.links()[0]
    stranger, their_org = owner_org(tt.conn)
    with as_role(tt.conn, "authenticated", stranger):
        assert tt.conn.execute("select count(*) as n from shopsync.product_links").fetchone() == {"n": 0}
        assert tt.conn.execute("select count(*) as n from shopsync.product_link_log").fetchone() == {"n": 0}
        assert tt.conn.execute("select count(*) as n from shopsync.product_link_statistics").fetchone() == {"n": 0}
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown link"), as_role(tt.conn, "authenticated", stranger):
        tt.conn.execute("select shopsync.pause_product_link(%s)", (link["id"],))
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown store"), as_role(tt.conn, "authenticated", stranger):
        tt.conn.execute("select shopsync.create_product_link(%s, %s, %s, %s)",
                        (w.shopify, link["source_variant_id"], w.tiktok, "123"))
    # a member of both organizations still cannot join a store of one to a store of the other
    tt.conn.execute("insert into shopsync.organization_members (organization_id, user_id, role) values (%s, %s, 'owner')",
                    (w.org, stranger))
    their_store = UUID(str(tt.scalar("select shopsync.upsert_store(%s, 'tiktok', '999', null, 'active')", (their_org,))))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="different"), \
            as_role(tt.conn, "authenticated", stranger):
        tt.conn.execute("select shopsync.create_product_link(%s, %s, %s, %s)",
                        (w.shopify, link["source_variant_id"], their_store, "123"))
    # a member (not owner/admin) reads links but changes none; bad values are named
    member = owner_org(tt.conn)[0]
    tt.conn.execute("insert into shopsync.organization_members (organization_id, user_id, role) values (%s, %s, 'member')",
                    (w.org, member))
    with as_role(tt.conn, "authenticated", member):
        assert tt.conn.execute("select count(*) as n from shopsync.product_links").fetchone() == {"n": len(w.links())}
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(tt.conn, "authenticated", member):
        tt.conn.execute("select shopsync.delete_product_link(%s)", (link["id"],))
    for options, message in (({"price_multiplier": 0}, "price_multiplier"), ({"price_rounding": "99"}, ".99"),
                             ({"inventory_percentage": 150}, "0 to 100"), ({"colour": "red"}, "unknown link option"),
                             ({"price_offset": "abc"}, "invalid value")):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=message), \
                as_role(tt.conn, "authenticated", w.user):
            tt.conn.execute("select shopsync.update_product_link(%s, %s)",
                            (link["id"], psycopg.types.json.Jsonb(options)))
    # Shopify takes no pushed prices (no write capability published): refused by name
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="shopify stores cannot receive"), \
            as_role(tt.conn, "authenticated", w.user):
        tt.conn.execute("select shopsync.auto_link_by_sku(%s, %s)", (w.tiktok, w.shopify))
    with pytest.raises(psycopg.errors.UniqueViolation), as_role(tt.conn, "authenticated", w.user):
        tt.conn.execute("select shopsync.create_product_link(%s, %s, %s, %s)",
                        (w.shopify, link["source_variant_id"], w.tiktok, link["target_sku_id"]))
    # clients write nothing directly
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(tt.conn, "authenticated", w.user):
        tt.conn.execute("update shopsync.product_links set status = 'active'")
