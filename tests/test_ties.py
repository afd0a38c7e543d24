"""Two versions of a record inside one ``updated_at`` second (platforms give seconds) are ordered by when each
was observed — a webhook's ``X-Shopify-Triggered-At``, a sync page's request time — not by which write came
last: 50 products changed twice within one second end at their newest version whatever order the deliveries
and sync pages arrive in."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandbox.shopify import DatasetSpec
from tests.shopify_world import World

PRODUCTS = 50


@pytest.fixture
def spec() -> DatasetSpec:
    return DatasetSpec(products=PRODUCTS, customers=2, orders=2)


async def first_sync(w: World) -> Any:
    store_id = await w.connect()
    async with w.worker():
        await w.until(lambda: w.scalar("select count(*) from shopsync.sync_runs where status = 'succeeded'") == 3,
                      what="the first full sync")
        await w.until(w.idle)
    return store_id


def two_versions_in_one_second(w: World) -> tuple[list[Any], list[Any]]:
    """Every product changed to "old …", then to "new …", both inside one future second; their deliveries
    held and handed back (old ones first)."""
    second = (int(time.time()) + 2) * 1_000_000
    w.sandbox.webhooks.hold()
    for p in w.shop.product_ids():
        w.shop.update_product(p, at_us=second + 100_000, title=f"old {p}")
    for p in w.shop.product_ids():
        w.shop.update_product(p, at_us=second + 600_000, title=f"new {p}")
    held = w.sandbox.webhooks.take_held()
    assert len(held) == 2 * PRODUCTS
    return held[:PRODUCTS], held[PRODUCTS:]


async def deliver(w: World, deliveries: list[Any]) -> None:
    async with w.web as web:
        for d in deliveries:
            answer = await web.post("/shopify/webhooks", content=d.body, headers=d.headers())
            assert answer.status_code == 200, answer.text


def titles(w: World, store_id: Any) -> dict[str, str]:
    rows = w.conn.execute("select id, title from shopsync.products where store_id = %s", (store_id,)).fetchall()
    return {r["id"]: r["title"] for r in rows}


def stale(w: World, store_id: Any) -> list[str]:
    found = titles(w, store_id)
    return [str(p) for p in w.shop.product_ids() if found.get(str(p)) != f"new {p}"]


async def test_two_deliveries_of_one_second_in_reverse_order_end_at_the_newest(world: World) -> None:
    w = world
    store_id = await first_sync(w)
    old, new = two_versions_in_one_second(w)
    await deliver(w, new + old)                       # the newest first: the older ones are applied last
    async with w.worker():
        await w.until(w.idle, what="the deliveries applied")
    assert stale(w, store_id) == []
    statuses = w.conn.execute("select status, count(*) as n from shopsync.webhook_inbox group by 1").fetchall()
    assert {r["status"]: r["n"] for r in statuses} == {"processed": 2 * PRODUCTS}


async def test_a_late_delivery_loses_to_a_sync_page_that_read_a_newer_version(world: World) -> None:
    w = world
    store_id = await first_sync(w)
    old, _new = two_versions_in_one_second(w)
    w.conn.execute("select shopsync.request_sync(%s, array['products'], 'incremental')", (store_id,))
    async with w.worker():
        await w.until(w.idle, what="the incremental sync")
    assert stale(w, store_id) == []                   # the page read the newest version
    await deliver(w, old)                             # then the first change's deliveries arrive, late
    async with w.worker():
        await w.until(w.idle, what="the late deliveries")
    assert stale(w, store_id) == []
