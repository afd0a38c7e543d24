"""A local ShopRenter for shopsync's tests, benchmarks and ``make dev``.

Quick start (a test)::

    from sandbox.shoprenter import ShopRenterSandbox, SrDatasetSpec, serve_shoprenter_sandbox

    sandbox = ShopRenterSandbox(rate_limit=3.0)
    app = sandbox.add_app("client-id", "client-secret", redirect_uri="http://127.0.0.1:9000/sr/install")
    shop = sandbox.add_shop("demo", SrDatasetSpec(products=50))
    with serve_shoprenter_sandbox(sandbox) as base_url:
        sandbox.install(shop, app.client_id)       # signed GET to the app's RedirectUri; marks it installed
        token_url = f"{sandbox.oauth_base_url}/demo/app/token"    # replaces https://oauth.app.shoprenter.net
        api = sandbox.api_url(shop)                 # replaces https://demo.api2.myshoprenter.hu/api
        shop.update_product(1, price=1990)          # moves dateUpdated to the shop clock's now
        shop.create_order([(1, 2)])                 # fires order_confirm webhooks

What it speaks: the install/uninstall GETs with ShopRenter's hex HMAC, the client-credentials token endpoint
(expiring JWT-shaped tokens, no refresh), API2 resources ``productExtend``, ``customers``, ``orderExtend``,
``webHooks``, ``languages``, ``orderStatuses``, ``orderStatusDescriptions`` in JSON or XML with 0-based string
paging, the 3 requests/second/app/shop limit, unsigned webhook deliveries and injectable faults. See README.md.
"""

from typing import Any

from sandbox.shoprenter.app import create_app, serve_shoprenter_sandbox
from sandbox.shoprenter.dataset import LANGUAGES, ORDER_STATUSES, SrDatasetSpec
from sandbox.shoprenter.faults import FaultInjector, FaultRule
from sandbox.shoprenter.ids import decode_outer_id, outer_id
from sandbox.shoprenter.state import (
    DEFAULT_APP_URL_TEMPLATE,
    ShopRenterSandbox,
    SrApp,
    SrRequestRecord,
    SrShop,
    SrToken,
    sign_install_query,
)
from sandbox.shoprenter.webhooks import EVENTS, DeliveryRecord, SrWebhook, WebhookFaults

__all__ = [
    "DEFAULT_APP_URL_TEMPLATE",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_SHOP",
    "EVENTS",
    "LANGUAGES",
    "ORDER_STATUSES",
    "DeliveryRecord",
    "FaultInjector",
    "FaultRule",
    "ShopRenterSandbox",
    "SrApp",
    "SrDatasetSpec",
    "SrRequestRecord",
    "SrShop",
    "SrToken",
    "SrWebhook",
    "WebhookFaults",
    "create_app",
    "decode_outer_id",
    "demo_shoprenter_sandbox",
    "outer_id",
    "serve_shoprenter_sandbox",
    "sign_install_query",
]

DEMO_SHOP = "demo"
DEMO_CLIENT_ID = "shopsync-sr-sandbox-client"
DEMO_CLIENT_SECRET = "shopsync_sr_sandbox_secret"  # noqa: S105 (a local demo credential)


def demo_shoprenter_sandbox(*, shop: str = DEMO_SHOP, spec: SrDatasetSpec | None = None,
                            client_id: str = DEMO_CLIENT_ID, client_secret: str = DEMO_CLIENT_SECRET,
                            redirect_uri: str | None = None, uninstall_uri: str | None = None,
                            installed: bool = True, **sandbox_options: Any) -> tuple[ShopRenterSandbox, SrApp, SrShop]:
    """A sandbox with one app installed on one shop (what ``python -m sandbox.shoprenter`` serves)."""
    sandbox = ShopRenterSandbox(**sandbox_options)
    app = sandbox.add_app(client_id, client_secret, redirect_uri, uninstall_uri)
    demo = sandbox.add_shop(shop, spec or SrDatasetSpec())
    if installed:
        sandbox.mark_installed(demo, client_id)
    return sandbox, app, demo
