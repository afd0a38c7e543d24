"""A local WooCommerce for shopsync's tests, benchmarks and ``make dev``.

Quick start (a test)::

    from sandbox.woocommerce import WooDatasetSpec, WooSandbox, serve_woocommerce_sandbox

    sandbox = WooSandbox()
    store = sandbox.add_store("demo", WooDatasetSpec(products=50, orders=40))
    ck, cs = store.add_key(permissions="read_write")
    with serve_woocommerce_sandbox(sandbox, https=True) as base_url:
        url = sandbox.store_url(store)              # f"{base_url}/stores/demo" — the store's home URL
        httpx.get(f"{url}/wp-json/wc/v3/products", auth=(ck, cs), verify=sandbox.ca_file)
        store.update_product(store.product_ids()[0], regular_price="12.50")   # date_modified moves, webhook queued
        sandbox.faults.fail_next(2, 503, endpoint="rest")                     # the next two REST calls fail

What it speaks: WordPress REST discovery, WooCommerce REST API v3 (products, variations, customers, orders,
webhooks, system_status) with WooCommerce's real authentication (Basic/query over HTTPS, OAuth 1.0a over HTTP),
WP pagination headers and parameter validation, signed webhook deliveries with the ping and the auto-disable rule,
and injectable failures. Each module's docstring cites the WooCommerce/WordPress source it follows.
"""

from typing import Any

from sandbox.woocommerce.app import create_app, serve_woocommerce_sandbox
from sandbox.woocommerce.auth import ApiKey, oauth1_sign, signature_base_string
from sandbox.woocommerce.clock import StoreClock
from sandbox.woocommerce.dataset import WooDatasetSpec
from sandbox.woocommerce.faults import FaultRule, WooFaults
from sandbox.woocommerce.state import RequestRecord, WooSandbox, WooStore
from sandbox.woocommerce.webhooks import DeliveryRecord, WooWebhook, WooWebhookFaults, sign_woo_webhook

__all__ = [
    "DEMO_STORE",
    "ApiKey",
    "DeliveryRecord",
    "FaultRule",
    "RequestRecord",
    "StoreClock",
    "WooDatasetSpec",
    "WooFaults",
    "WooSandbox",
    "WooStore",
    "WooWebhook",
    "WooWebhookFaults",
    "create_app",
    "demo_woo_sandbox",
    "oauth1_sign",
    "serve_woocommerce_sandbox",
    "sign_woo_webhook",
    "signature_base_string",
]

DEMO_STORE = "demo"


def demo_woo_sandbox(*, store: str = DEMO_STORE, spec: WooDatasetSpec | None = None, permissions: str = "read_write",
                     wc_version: str = "9.4.2", wp_version: str = "6.7.1",
                     **sandbox_options: Any) -> tuple[WooSandbox, WooStore, tuple[str, str]]:
    """A sandbox with one store and one API key (what ``python -m sandbox.woocommerce`` serves)."""
    sandbox = WooSandbox(**sandbox_options)
    demo = sandbox.add_store(store, spec or WooDatasetSpec(), wc_version=wc_version, wp_version=wp_version)
    return sandbox, demo, demo.add_key(permissions=permissions)
