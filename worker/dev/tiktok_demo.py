"""`make dev`'s TikTok Shop part: a TikTok sandbox whose demo seller lists part of the Shopify demo catalog (the
same seller SKUs, other prices and stock), connected the way a merchant connects it (``begin_install`` with no
shop → TikTok's consent page → our callback → claim), synced, and auto-linked to the Shopify demo store by SKU —
so the first pushes bring TikTok in line, and a price changed in the Shopify sandbox shows up on TikTok.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import psycopg

from sandbox.tiktok import DEMO_APP_KEY, DEMO_APP_SECRET, TikTokSandbox, TtDatasetSpec, TtShop

__all__ = ["TIKTOK_PORT", "DemoUser", "connect_and_link", "tiktok_env", "tiktok_sandbox"]

TIKTOK_PORT = int(os.environ.get("SHOPSYNC_DEV_TIKTOK_PORT", "8084"))
SERVICE_ID = "7300000000000000001"
LISTED_PRODUCTS = 10            # of the Shopify demo's products, listed on TikTok too
PUSH_TIMEOUT = 120.0

Conn = psycopg.Connection[dict[str, Any]]


class DemoUser(Protocol):
    conn: Conn
    org: Any

    def session(self) -> AbstractContextManager[None]: ...

    def claim(self, location: str) -> None: ...


def tiktok_env(web_port: int) -> dict[str, str]:
    base = f"http://127.0.0.1:{TIKTOK_PORT}"
    return {"SHOPSYNC_TIKTOK_APP_KEY": DEMO_APP_KEY, "SHOPSYNC_TIKTOK_APP_SECRET": DEMO_APP_SECRET,
            "SHOPSYNC_TIKTOK_SERVICE_ID": SERVICE_ID, "SHOPSYNC_TIKTOK_AUTHORIZE_URL": f"{base}/open/authorize",
            "SHOPSYNC_TIKTOK_API_BASE_URL": base, "SHOPSYNC_TIKTOK_AUTH_BASE_URL": base,
            "SHOPSYNC_TIKTOK_REQUESTS_PER_SECOND": "10"}


def tiktok_sandbox(web_port: int) -> tuple[TikTokSandbox, TtShop]:
    """The demo app (its redirect and webhook URLs point at the web process) and one seller's empty shop."""
    sandbox = TikTokSandbox(rate_limit=20)
    sandbox.add_app(DEMO_APP_KEY, DEMO_APP_SECRET, service_id=SERVICE_ID,
                    redirect_uri=f"http://127.0.0.1:{web_port}/tiktok/callback",
                    webhook_url=f"http://127.0.0.1:{web_port}/tiktok/webhooks")
    seller = sandbox.add_seller("Demo Seller")
    return sandbox, sandbox.add_shop(seller, "Demo TikTok Shop", TtDatasetSpec(products=0, orders=0))


def _list_on_tiktok(conn: Conn, shop: TtShop, shopify_store: Any) -> None:
    """The seller lists some Shopify products on TikTok under the same SKUs (once per sandbox run)."""
    if shop.products:
        return
    rows = conn.execute("select product_id, sku, title from shopsync.product_variants where store_id = %s "
                        "and deleted_at is null and sku is not null order by product_id, position",
                        (shopify_store,)).fetchall()
    by_product: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        by_product[r["product_id"]].append(r["sku"])
    for n, skus in enumerate(list(by_product.values())[:LISTED_PRODUCTS]):
        shop.add_product(f"TikTok listing {n + 1}", [(sku, "1.00", 1) for sku in skus])
    first = shop.all_skus()
    for k in range(3):
        shop.create_order([(first[k % len(first)].id, 1 + k)])


def _install(user: DemoUser) -> None:
    with user.session():
        row = user.conn.execute("select shopsync.begin_install(%s, 'tiktok', null) as r", (user.org,)).fetchone()
    assert row is not None
    approved = httpx.get(row["r"]["authorize_url"], timeout=10)           # the seller approves on TikTok
    landed = httpx.get(approved.headers["location"], timeout=30)          # TikTok sends them back to us
    if landed.status_code != 302 or "install_id" not in landed.headers.get("location", ""):
        raise RuntimeError(f"the TikTok callback answered {landed.status_code}: {landed.text[:300]}")
    user.claim(landed.headers["location"])


def _pushes_done(conn: Conn) -> bool:
    row = conn.execute("select count(*) as n from shopsync.jobs where kind in ('links.push', 'links.reconcile', "
                       "'tiktok.sync') "
                       "and state in ('queued', 'running')").fetchone()
    return row is not None and row["n"] == 0


def connect_and_link(conn: Conn, user: DemoUser, shop: TtShop, say: Callable[[str], None],
                     wait_synced: Callable[[Conn, str, str, Any], None]) -> None:
    shopify = conn.execute("select id from shopsync.stores where platform = 'shopify' and organization_id = %s",
                           (user.org,)).fetchone()
    assert shopify is not None
    _list_on_tiktok(conn, shop, shopify["id"])
    started = conn.execute("select now() as t").fetchone()["t"]  # type: ignore[index]
    _install(user)
    wait_synced(conn, "tiktok", shop.id, started)
    tiktok = conn.execute("select id from shopsync.stores where platform = 'tiktok' and shop_key = %s "
                          "and organization_id = %s", (shop.id, user.org)).fetchone()
    assert tiktok is not None
    with user.session():
        dry = conn.execute("select shopsync.auto_link_by_sku(%s, %s) as r", (shopify["id"], tiktok["id"])).fetchone()
        assert dry is not None
        report = dry["r"]
        say(f"auto-link by SKU (dry run): {len(report['matches'])} matches, {len(report['missing_in_target'])} "
            f"Shopify SKUs not on TikTok, {len(report['duplicates']['source']) + len(report['duplicates']['target'])}"
            " duplicates")
        conn.execute("select shopsync.auto_link_by_sku(%s, %s, false)", (shopify["id"], tiktok["id"]))
    # the sandbox keeps its shop in memory: after a restart it starts over, so read the linked SKUs back now
    # (links remember what they pushed before) instead of waiting for the hourly read-back
    conn.execute("select shopsync.enqueue_link_reconciles('0 seconds')")
    deadline = time.monotonic() + PUSH_TIMEOUT
    while not _pushes_done(conn) and time.monotonic() < deadline:
        time.sleep(0.5)
    stats = conn.execute("select links, active, pushed from shopsync.store_link_statistics where store_id = %s",
                         (tiktok["id"],)).fetchone()
    say(f"tiktok {shop.id} linked to Shopify: {stats}")
    for line in _demo_lines(conn, shopify["id"], shop):
        say(line)


def _demo_lines(conn: Conn, shopify_store: Any, shop: TtShop) -> Iterator[str]:
    link = conn.execute("select l.source_variant_id, v.sku from shopsync.product_links l "
                        "join shopsync.product_variants v on v.store_id = l.source_store_id "
                        "and v.id = l.source_variant_id where l.source_store_id = %s order by v.sku limit 1",
                        (shopify_store,)).fetchone()
    if link is None:
        return
    shopify = f"http://127.0.0.1:{os.environ.get('SHOPSYNC_DEV_SANDBOX_PORT', '8081')}"
    yield "try it: change a price in the Shopify sandbox and watch it arrive on TikTok:"
    yield (f"  curl -X POST {shopify}/_sandbox/shops/demo.myshopify.com/variants/{link['source_variant_id']} "
           "-d '{\"price\": \"12.34\"}'")
    yield f"  curl 'http://127.0.0.1:{TIKTOK_PORT}/_sandbox/shops/{shop.id}/skus?seller_sku={quote(link['sku'])}'"
