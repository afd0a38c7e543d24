"""A local Shopify for shopsync's tests, benchmarks and ``make dev``.

Quick start (a test)::

    from sandbox.shopify import DatasetSpec, ShopifySandbox, serve_shopify_sandbox

    sandbox = ShopifySandbox()
    app = sandbox.add_app("client-id", "shpss_secret", scopes=("read_products", "read_orders"))
    shop = sandbox.add_shop("demo.myshopify.com", DatasetSpec(products=100))
    with serve_shopify_sandbox(sandbox) as base_url:
        shop_url = sandbox.shop_url(shop)   # f"{base_url}/shops/demo.myshopify.com" replaces https://demo.myshopify.com
        tokens = sandbox.issue_token(shop, app.client_id)        # or run the real OAuth flow against shop_url
        ...
        shop.update_product(shop.product_ids()[0], title="New")  # bumps updatedAt, sends products/update
        sandbox.faults.fail_next(2, 503, endpoint="graphql")      # the next two GraphQL calls fail

What it speaks: OAuth (authorize redirect with Shopify's callback HMAC, code exchange, expiring offline
tokens with rotating refresh tokens, token exchange for legacy tokens), the GraphQL Admin API for the
operations shopsync uses (with cost extensions, a leaky bucket and THROTTLED), bulk query operations with
streamed JSONL, and real signed webhook deliveries with retries and delivery faults. See each module's
docstring for the exact behaviour and the Shopify sources it follows.
"""

from typing import Any

from sandbox.shopify.app import create_app, serve_shopify_sandbox
from sandbox.shopify.dataset import DatasetSpec
from sandbox.shopify.faults import FLOW_MUTATIONS, FaultInjector, FaultRule
from sandbox.shopify.oauth import callback_query_string, sign_callback
from sandbox.shopify.state import (
    DEFAULT_SCOPES,
    LATEST_VERSION,
    SUPPORTED_VERSIONS,
    WRITE_SCOPES,
    AppConfig,
    Shop,
    ShopifySandbox,
)
from sandbox.shopify.webhooks import WebhookFaults, sign_webhook

__all__ = [
    "DEFAULT_SCOPES",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_SHOP",
    "FLOW_MUTATIONS",
    "LATEST_VERSION",
    "SUPPORTED_VERSIONS",
    "WRITE_SCOPES",
    "AppConfig",
    "DatasetSpec",
    "FaultInjector",
    "FaultRule",
    "Shop",
    "ShopifySandbox",
    "WebhookFaults",
    "callback_query_string",
    "create_app",
    "demo_sandbox",
    "serve_shopify_sandbox",
    "sign_callback",
    "sign_webhook",
]

DEMO_SHOP = "demo.myshopify.com"
DEMO_CLIENT_ID = "shopsync-sandbox-client"
DEMO_CLIENT_SECRET = "shpss_shopsync_sandbox_secret"  # noqa: S105 (a local demo credential)


def demo_sandbox(*, shop: str = DEMO_SHOP, spec: DatasetSpec | None = None, client_id: str = DEMO_CLIENT_ID,
                 client_secret: str = DEMO_CLIENT_SECRET, scopes: tuple[str, ...] = DEFAULT_SCOPES,
                 plan: str = "standard", **sandbox_options: Any) -> tuple[ShopifySandbox, AppConfig, Shop]:
    """A sandbox with one app and one shop (what ``python -m sandbox.shopify`` serves)."""
    sandbox = ShopifySandbox(**sandbox_options)
    app = sandbox.add_app(client_id, client_secret, scopes=scopes)
    demo = sandbox.add_shop(shop, spec or DatasetSpec(), plan=plan)
    return sandbox, app, demo
