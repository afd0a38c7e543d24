"""A local TikTok Shop for shopsync's tests, benchmarks and ``make dev``.

Quick start (a test)::

    from sandbox.tiktok import TikTokSandbox, TtDatasetSpec, serve_tiktok_sandbox

    sandbox = TikTokSandbox(rate_limit=10)                     # requests/s per app and shop; None = off
    app = sandbox.add_app("app-key", "app-secret", redirect_uri="http://127.0.0.1:9000/tiktok/callback",
                          webhook_url="http://127.0.0.1:9000/tiktok/webhooks")
    seller = sandbox.add_seller("Demo Seller")
    shop = sandbox.add_shop(seller, "Demo Shop", TtDatasetSpec(products=30, orders=20))
    with serve_tiktok_sandbox(sandbox) as base_url:            # replaces the API, auth and consent hosts
        tokens = sandbox.issue_tokens(app.app_key)             # or /open/authorize → code → /api/v2/token/get
        shop.lock_promotion(shop.all_skus()[0].id)             # price updates of that SKU now fail (12019045)

What it speaks: request signatures (the documented algorithm) and the timestamp window, tokens with absolute
expiries and rotating refresh tokens, authorized shops with ciphers, product search with page tokens and the
10,000-result cap, product detail, price and inventory updates (per-SKU partial failures inside ``code: 0``,
promotion locks, product status), orders, warehouses, 429/36009002 throttling, signed webhooks, faults.
See README.md.
"""

from typing import Any

from sandbox.tiktok.app import create_app, serve_tiktok_sandbox
from sandbox.tiktok.dataset import TtDatasetSpec
from sandbox.tiktok.faults import FaultInjector, FaultRule
from sandbox.tiktok.model import TtApp, TtOrder, TtProduct, TtSeller, TtSku, TtWarehouse
from sandbox.tiktok.signing import request_sign, string_to_sign, webhook_signature
from sandbox.tiktok.state import TikTokSandbox, TtRequestRecord, TtShop
from sandbox.tiktok.webhooks import EVENT_TYPES, DeliveryRecord, WebhookFaults

__all__ = [
    "DEMO_APP_KEY",
    "DEMO_APP_SECRET",
    "EVENT_TYPES",
    "DeliveryRecord",
    "FaultInjector",
    "FaultRule",
    "TikTokSandbox",
    "TtApp",
    "TtDatasetSpec",
    "TtOrder",
    "TtProduct",
    "TtRequestRecord",
    "TtSeller",
    "TtShop",
    "TtSku",
    "TtWarehouse",
    "WebhookFaults",
    "create_app",
    "demo_tiktok_sandbox",
    "request_sign",
    "serve_tiktok_sandbox",
    "string_to_sign",
    "webhook_signature",
]

DEMO_APP_KEY = "shopsync-tt-sandbox"
DEMO_APP_SECRET = "shopsync_tt_sandbox_secret"  # noqa: S105 (a local demo credential)


def demo_tiktok_sandbox(*, spec: TtDatasetSpec | None = None, app_key: str = DEMO_APP_KEY,
                        app_secret: str = DEMO_APP_SECRET, redirect_uri: str | None = None,
                        webhook_url: str | None = None, **options: Any) -> tuple[TikTokSandbox, TtApp, TtShop]:
    """A sandbox with one app and one seller owning one shop (what ``python -m sandbox.tiktok`` serves)."""
    sandbox = TikTokSandbox(**options)
    app = sandbox.add_app(app_key, app_secret, redirect_uri=redirect_uri, webhook_url=webhook_url)
    seller = sandbox.add_seller("Demo Seller")
    shop = sandbox.add_shop(seller, "Demo TikTok Shop", spec or TtDatasetSpec())
    return sandbox, app, shop
