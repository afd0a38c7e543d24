"""``ShopifySandbox``: apps, shops, tokens, buckets, faults, logs — everything tests poke at.

One lock (``sandbox.lock``) guards all state; HTTP handlers, the bulk writer threads, the webhook
dispatcher and test code all take it. Mutation helpers on ``Shop`` change data exactly like a merchant
would (``updatedAt`` moves forward) and emit the matching webhooks.
"""

# long module: Shop and ShopifySandbox are the one-lock state tests drive; their helpers are a single API.

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.shopify.bulk_ops import BulkManager
from sandbox.shopify.clock import US, format_gql, format_rest, now_us
from sandbox.shopify.dataset import MAX_CHILDREN, VARIANT_BASE, Catalog, DatasetSpec
from sandbox.shopify.faults import FaultInjector
from sandbox.shopify.nodes import NodeBuilder, gid, parse_gid
from sandbox.shopify.throttle import PLAN_RESTORE_RATES, LeakyBucket
from sandbox.shopify.webhooks import Delivery, WebhookDispatcher, WebhookSubscription, topic_name
from sandbox.shopify.writes.shop_api import ShopWriteHelpers
from sandbox.shopify.writes.state import WriteState

__all__ = [
    "DEFAULT_SCOPES",
    "LATEST_VERSION",
    "WRITE_SCOPES",
    "SUPPORTED_VERSIONS",
    "AccessToken",
    "AppConfig",
    "RefreshToken",
    "RequestRecord",
    "Shop",
    "ShopifySandbox",
]

# Quarterly versions, each supported ≥ 12 months; 2026-10 is the newest stable (late 2026).
SUPPORTED_VERSIONS = ("2025-10", "2026-01", "2026-04", "2026-07", "2026-10")
LATEST_VERSION = SUPPORTED_VERSIONS[-1]
DEFAULT_SCOPES = ("read_products", "read_customers", "read_orders", "read_all_orders", "read_inventory",
                  "read_locations")
# what cross-store flows need on top (orderCreate/orderCancel, fulfillmentCreate, inventory writes)
WRITE_SCOPES = ("write_orders", "write_merchant_managed_fulfillment_orders", "write_inventory")
ORDER_WINDOW_US = 60 * 86_400 * US  # without read_all_orders only the last 60 days of orders are visible


@dataclass
class AppConfig:
    """A Shopify app (Dev Dashboard entry). ``old_client_secret`` models a rotation in progress."""

    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    old_client_secret: str | None = None
    sign_webhooks_with_old_secret: bool = False  # "it can take up to an hour" for the new secret to sign
    redirect_urls: tuple[str, ...] = ()  # empty: any redirect_uri is accepted
    access_token_ttl: float = 3600.0
    refresh_token_ttl: float = 90 * 86_400.0
    code_ttl: float = 60.0
    # False: a used refresh token dies at once (the brief's strict model). True: Shopify's Aug 2026 behaviour —
    # the previous refresh token keeps working until the app uses its replacement (≤ 30 days).
    refresh_grace: bool = False
    api_version: str = LATEST_VERSION  # version of webhook payloads
    app_webhooks: dict[str, str] = field(default_factory=dict)  # topic -> uri, like shopify.app.toml
    compliance_uri: str | None = None  # customers/data_request, customers/redact, shop/redact
    name: str = "shopsync"

    def secret_ok(self, secret: str | None) -> bool:
        if not secret:
            return False
        good = [self.client_secret] + ([self.old_client_secret] if self.old_client_secret else [])
        return any(secrets.compare_digest(secret, s) for s in good)

    @property
    def webhook_secret(self) -> str:
        if self.sign_webhooks_with_old_secret and self.old_client_secret:
            return self.old_client_secret
        return self.client_secret


@dataclass
class AccessToken:
    token: str
    shop: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float | None  # None: legacy non-expiring offline token
    online: bool = False
    revoked: bool = False
    created_at: float = field(default_factory=time.time)

    def valid(self, now: float) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


@dataclass
class RefreshToken:
    token: str
    shop: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    state: str = "active"  # active | rotated | revoked
    replaced_by: str | None = None
    previous: str | None = None
    first_used_at: float | None = None


@dataclass
class AuthCode:
    code: str
    shop: str
    client_id: str
    scopes: tuple[str, ...]
    created_at: float
    online: bool
    used: bool = False


@dataclass
class Installation:
    client_id: str
    scopes: tuple[str, ...]
    installed_at: float
    active: bool = True


@dataclass
class RequestRecord:
    at: float
    method: str
    path: str
    endpoint: str
    shop: str | None
    status: int
    duration: float
    fault: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Shop(ShopWriteHelpers):
    """One store: its data (``catalog``), installed apps, and merchant-style mutation helpers (the write side's
    in-process helpers come from ``writes.shop_api``)."""

    def __init__(self, sandbox: ShopifySandbox, domain: str, shop_id: int, spec: DatasetSpec, plan: str,
                 name: str | None, anchor_us: int) -> None:
        self.sandbox = sandbox
        self.domain = domain
        self.shop_id = shop_id
        self.plan = plan
        self.name = name or domain.split(".")[0].replace("-", " ").title()
        self.email = f"owner@{domain}"
        self.created_us = anchor_us - spec.history_days * 86_400 * US
        self.catalog = Catalog(spec, anchor_us)
        self.nodes = NodeBuilder(self)
        self.writes = WriteState(self)  # fulfillment orders, idempotency keys, ... of the API's writes
        self.installations: dict[str, Installation] = {}

    # --- lookups ---------------------------------------------------------------------------------------

    @property
    def store_handle(self) -> str:
        return self.domain.split(".")[0]

    def _product_index(self, product: int | str) -> int:
        legacy = _legacy(product, "Product")
        i = self.catalog.products.live_index(legacy)
        if i is None:
            raise KeyError(f"no product {product!r} in {self.domain}")
        return i

    def _customer_index(self, customer: int | str) -> int:
        i = self.catalog.customers.live_index(_legacy(customer, "Customer"))
        if i is None:
            raise KeyError(f"no customer {customer!r} in {self.domain}")
        return i

    def _order_index(self, order: int | str) -> int:
        i = self.catalog.orders.live_index(_legacy(order, "Order"))
        if i is None:
            raise KeyError(f"no order {order!r} in {self.domain}")
        return i

    def product_ids(self) -> list[int]:
        with self.sandbox.lock:
            t = self.catalog.products
            return [t.legacy_id(i) for i in range(t.count) if i not in t.deleted]

    def customer_ids(self) -> list[int]:
        with self.sandbox.lock:
            t = self.catalog.customers
            return [t.legacy_id(i) for i in range(t.count) if i not in t.deleted]

    def order_ids(self) -> list[int]:
        with self.sandbox.lock:
            t = self.catalog.orders
            return [t.legacy_id(i) for i in range(t.count) if i not in t.deleted]

    def variant_ids(self) -> list[int]:
        with self.sandbox.lock:
            out: list[int] = []
            t = self.catalog.products
            for i in range(t.count):
                if i not in t.deleted:
                    out.extend(int(v["id"]) for v in self.catalog.variants(i))
            return out

    def location_ids(self) -> list[int]:
        with self.sandbox.lock:
            return [int(loc["id"]) for loc in self.catalog.locations]

    def product(self, product: int | str) -> dict[str, Any]:
        """The product as a products/update webhook would carry it (REST shape)."""
        with self.sandbox.lock:
            return self.nodes.product_rest(self._product_index(product))

    def customer(self, customer: int | str) -> dict[str, Any]:
        with self.sandbox.lock:
            return self.nodes.customer_rest(self._customer_index(customer))

    def order(self, order: int | str) -> dict[str, Any]:
        with self.sandbox.lock:
            return self.nodes.order_rest(self._order_index(order))

    # --- merchant actions (each emits its webhook) -------------------------------------------------------

    def update_product(self, product: int | str, *, at_us: int | None = None, emit: bool = True,
                       **fields: Any) -> dict[str, Any]:
        """Change product fields (title, status, vendor, product_type, tags, handle, description, price);
        ``updatedAt`` moves to now (or ``at_us``, microseconds, to place it inside a given second)."""
        with self.sandbox.lock:
            i = self._product_index(product)
            ov = self.catalog.products.overrides.setdefault(i, {})
            price = fields.pop("price", None)
            for key, value in fields.items():
                ov[_PRODUCT_FIELDS.get(key, key)] = value
            stamp = self.catalog.products.touch(i, at_us)
            rec = self.catalog.product(i)
            for k in range(int(rec["variant_count"])):
                vov = self.catalog.variant_overrides.setdefault((i, k), {})
                vov["updated_us"] = stamp
                if price is not None:
                    vov["price_cents"] = _cents(price)
            payload = self.nodes.product_rest(i)
        if emit:
            self.sandbox.emit(self, "products/update", payload)
        return payload

    def touch_products(self, products: Iterable[int | str], *, at_us: int | None = None) -> None:
        """Bump ``updatedAt`` without changing anything else (and emit products/update)."""
        for p in products:
            self.update_product(p, at_us=at_us)

    def update_variant(self, variant: int | str, *, at_us: int | None = None, **fields: Any) -> dict[str, Any]:
        with self.sandbox.lock:
            i, k = self._variant(variant)
            vov = self.catalog.variant_overrides.setdefault((i, k), {})
            for key, value in fields.items():
                if key in ("price", "compare_at_price"):
                    vov["price_cents" if key == "price" else "compare_at_cents"] = \
                        None if value is None else _cents(value)
                else:
                    vov[key] = value
            stamp = self.catalog.products.touch(i, at_us)
            vov["updated_us"] = stamp
            payload = self.nodes.product_rest(i)
        self.sandbox.emit(self, "products/update", payload)
        return payload

    def _variant(self, variant: int | str) -> tuple[int, int]:
        parsed = parse_gid(variant) if isinstance(variant, str) else None
        legacy = parsed[1] if parsed else int(variant)
        found = self.catalog.variant_by_id(legacy) or self.catalog.variant_by_inventory_item(legacy)
        if found is None:
            raise KeyError(f"no variant or inventory item {variant!r} in {self.domain}")
        return found

    def set_inventory(self, variant_or_item: int | str, location: int | str, available: int) -> dict[str, Any]:
        """Set ``available`` at a location (on_hand follows); emits inventory_levels/update."""
        with self.sandbox.lock:
            i, k = self._variant(variant_or_item)
            j = self.catalog.location_index(_legacy(location, "Location"))
            if j is None:
                raise KeyError(f"no location {location!r}")
            current = self.catalog.inventory_level(i, k, j)
            committed = int(current["committed"])
            stamp = max(now_us(), int(current["updated_us"]) + 1)
            self.catalog.inventory[(i, k, j)] = (available, available + committed, stamp)
            payload = self.nodes.inventory_level_rest(i, k, j)
        self.sandbox.emit(self, "inventory_levels/update", payload)
        return payload

    def create_product(self, *, title: str | None = None, variants: int | None = None, **fields: Any) -> int:
        with self.sandbox.lock:
            t = self.catalog.products
            i = self.catalog.new_index(t)
            ov = t.overrides.setdefault(i, {})
            if title is not None:
                ov["title"] = title
            if variants is not None:
                ov["variant_count"] = max(1, min(int(variants), MAX_CHILDREN))
            for key, value in fields.items():
                ov[_PRODUCT_FIELDS.get(key, key)] = value
            payload = self.nodes.product_rest(i)
        self.sandbox.emit(self, "products/create", payload)
        return t.legacy_id(i)

    def delete_product(self, product: int | str) -> None:
        with self.sandbox.lock:
            i = self._product_index(product)
            t = self.catalog.products
            t.deleted.add(i)
            t.version += 1
            legacy = t.legacy_id(i)
        self.sandbox.emit(self, "products/delete", {"id": legacy})

    def update_customer(self, customer: int | str, *, at_us: int | None = None, **fields: Any) -> dict[str, Any]:
        with self.sandbox.lock:
            i = self._customer_index(customer)
            ov = self.catalog.customers.overrides.setdefault(i, {})
            for key, value in fields.items():
                ov[key] = value
            self.catalog.customers.touch(i, at_us)
            payload = self.nodes.customer_rest(i)
        self.sandbox.emit(self, "customers/update", payload)
        return payload

    def create_customer(self, **fields: Any) -> int:
        with self.sandbox.lock:
            t = self.catalog.customers
            i = self.catalog.new_index(t)
            t.overrides.setdefault(i, {}).update(fields)
            payload = self.nodes.customer_rest(i)
        self.sandbox.emit(self, "customers/create", payload)
        return t.legacy_id(i)

    def delete_customer(self, customer: int | str) -> None:
        with self.sandbox.lock:
            i = self._customer_index(customer)
            t = self.catalog.customers
            t.deleted.add(i)
            t.version += 1
            legacy = t.legacy_id(i)
        self.sandbox.emit(self, "customers/delete", {"id": legacy})

    def update_order(self, order: int | str, *, at_us: int | None = None, **fields: Any) -> dict[str, Any]:
        """Change order fields (tags, note, email, financial_status, fulfillment_status, ...)."""
        with self.sandbox.lock:
            o = self._order_index(order)
            self.catalog.before_order_change(o)
            ov = self.catalog.orders.overrides.setdefault(o, {})
            for key, value in fields.items():
                ov[key] = value
            self.catalog.orders.touch(o, at_us)
            self.catalog.after_order_change(o)
            payload = self.nodes.order_rest(o)
        self.sandbox.emit(self, "orders/updated", payload)
        return payload

    def create_order(self, *, customer: int | str | None = None, line_items: list[tuple[int | str, int]] | None = None,
                     **fields: Any) -> int:
        """A new order; ``line_items`` are (variant id, quantity) pairs (defaults: one random line)."""
        with self.sandbox.lock:
            t = self.catalog.orders
            o = self.catalog.new_index(t)
            ov = t.overrides.setdefault(o, {})
            if customer is not None:
                ov["customer_index"] = self._customer_index(customer)
            if line_items:
                lines = []
                for k, (variant, qty) in enumerate(line_items):
                    i, vk = self._variant(variant)
                    v = self.catalog.variant(i, vk)
                    p = self.catalog.product(i)
                    lines.append({"id": 15_000_000_000_000 + o * MAX_CHILDREN + k, "title": p["title"],
                                  "vendor": p["vendor"], "sku": v["sku"], "quantity": qty,
                                  "price_cents": v["price_cents"], "discount_cents": 0, "product_id": p["id"],
                                  "variant_id": v["id"], "variant_title": v["title"]})
                ov["line_items"] = lines
            ov.update(fields)
            self.catalog.after_order_change(o)
            payload = self.nodes.order_rest(o)
        self.sandbox.emit(self, "orders/create", payload)
        return t.legacy_id(o)

    def delete_order(self, order: int | str) -> None:
        with self.sandbox.lock:
            o = self._order_index(order)
            self.catalog.before_order_change(o)
            t = self.catalog.orders
            t.deleted.add(o)
            t.version += 1
            legacy = t.legacy_id(o)
        self.sandbox.emit(self, "orders/delete", {"id": legacy})

    # --- REST shop payload -----------------------------------------------------------------------------

    def rest(self) -> dict[str, Any]:
        return {"id": self.shop_id, "name": self.name, "email": self.email, "domain": self.domain,
                "myshopify_domain": self.domain, "plan_name": self.plan, "currency": self.catalog.spec.currency,
                "iana_timezone": "UTC", "timezone": "(GMT+00:00) UTC", "created_at": format_rest(self.created_us),
                "updated_at": format_rest(self.created_us), "shop_owner": "Sandbox Owner", "country_code": "US"}

    def graphql(self) -> dict[str, Any]:
        plus = self.plan in ("plus", "enterprise")
        return {"__typename": "Shop", "id": gid("Shop", self.shop_id), "name": self.name, "email": self.email,
                "contactEmail": self.email, "myshopifyDomain": self.domain, "currencyCode": self.catalog.spec.currency,
                "ianaTimezone": "UTC", "timezoneAbbreviation": "UTC", "timezoneOffset": "+0000",
                "url": f"https://{self.domain}", "primaryDomain": {"__typename": "Domain", "host": self.domain,
                                                                   "url": f"https://{self.domain}"},
                "plan": {"__typename": "ShopPlan", "displayName": self.plan.title(), "publicDisplayName":
                         self.plan.title(), "partnerDevelopment": False, "shopifyPlus": plus},
                "createdAt": format_gql(self.created_us), "updatedAt": format_gql(self.created_us)}


_PRODUCT_FIELDS = {"productType": "product_type", "descriptionHtml": "description", "body_html": "description"}


def _legacy(value: int | str, kind: str) -> int:
    if isinstance(value, int):
        return value
    parsed = parse_gid(value)
    if parsed is None or parsed[0] != kind:
        if value.isdigit():
            return int(value)
        raise KeyError(f"not a {kind} id: {value!r}")
    return parsed[1]


def _cents(value: Any) -> int:
    from decimal import Decimal

    return int((Decimal(str(value)) * 100).to_integral_value())


class ShopifySandbox:
    """Config and state of a local Shopify; pass it to ``create_app`` / ``serve_shopify_sandbox``.

    Knobs (all attributes may be changed while the server runs):

    * ``throttle`` — enforce the cost bucket (False for benchmarks; costs are still reported);
    * ``bucket_size`` / ``restore_rate`` — override the per-plan bucket for new buckets;
    * ``max_query_cost`` — single-query limit (Shopify: 1000) -> ``MAX_COST_EXCEEDED``;
    * ``supported_versions`` — anything else in ``YYYY-MM`` form older than the oldest falls forward to it,
      any other version answers 404;
    * ``bulk_*`` — bulk operation timing, concurrency and line interleaving (see ``bulk_ops.py``);
    * ``allow_http_webhooks`` — accept ``http://`` subscription URIs (Shopify requires https).
    """

    def __init__(self, *, throttle: bool = True, bucket_size: float | None = None,
                 restore_rate: float | None = None, max_query_cost: int = 1000,
                 supported_versions: tuple[str, ...] = SUPPORTED_VERSIONS, bulk_created_delay: float = 0.05,
                 bulk_run_seconds: float = 0.2, bulk_concurrency: int | None = None, bulk_interleave: float = 0.35,
                 allow_http_webhooks: bool = True, seed: int = 0, webhook_retry_delays: tuple[float, ...] = (
                     0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4), webhook_timeout: float = 5.0) -> None:
        self.lock = threading.RLock()
        self.throttle = throttle
        self.bucket_size = bucket_size
        self.restore_rate = restore_rate
        self.max_query_cost = max_query_cost
        self.supported_versions = supported_versions
        self.allow_http_webhooks = allow_http_webhooks
        self.seed = seed
        self.apps: dict[str, AppConfig] = {}
        self.shops: dict[str, Shop] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.codes: dict[str, AuthCode] = {}
        self.migrations: dict[str, tuple[str, str, float]] = {}  # legacy token -> (access, refresh, at)
        self.buckets: dict[tuple[str, str], LeakyBucket] = {}
        self.faults = FaultInjector(seed=seed)
        self.request_log: deque[RequestRecord] = deque(maxlen=20_000)
        self.counters: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self.base_url: str | None = None
        self.started_us = now_us()
        self._next_shop_id = 60_000_000_000
        self._tmp: Path | None = None
        self.bulk = BulkManager(self, created_delay=bulk_created_delay, run_seconds=bulk_run_seconds,
                                concurrency=bulk_concurrency, interleave=bulk_interleave)
        self.subscriptions: dict[int, WebhookSubscription] = {}
        self._next_subscription_id = 1_100_000_000
        self.webhooks = WebhookDispatcher(self, retry_delays=webhook_retry_delays, timeout=webhook_timeout)

    def count(self, name: str, n: int = 1) -> None:
        """Bump a counter (from any thread: the server loop, threadpool, bulk writers, webhook dispatcher)."""
        with self._count_lock:
            self.counters[name] += n

    # --- setup -----------------------------------------------------------------------------------------

    def add_app(self, client_id: str | None = None, client_secret: str | None = None, **config: Any) -> AppConfig:
        app = AppConfig(client_id=client_id or secrets.token_hex(16), client_secret=client_secret or
                        "shpss_" + secrets.token_hex(16), **config)
        with self.lock:
            self.apps[app.client_id] = app
        return app

    def add_shop(self, domain: str, spec: DatasetSpec | None = None, *, plan: str = "standard",
                 name: str | None = None) -> Shop:
        spec = spec or DatasetSpec()
        anchor = int(spec.anchor.timestamp() * US) if spec.anchor else (self.started_us // US) * US
        with self.lock:
            self._next_shop_id += 1
            shop = Shop(self, domain, self._next_shop_id, spec, plan, name, anchor)
            self.shops[domain] = shop
        return shop

    def shop(self, domain: str) -> Shop:
        return self.shops[domain]

    def install(self, shop: Shop | str, client_id: str, scopes: Iterable[str] | None = None) -> Installation:
        shop = self._shop(shop)
        with self.lock:
            app = self.apps[client_id]
            inst = Installation(client_id, tuple(scopes) if scopes is not None else app.scopes, time.time())
            shop.installations[client_id] = inst
        return inst

    def _shop(self, shop: Shop | str) -> Shop:
        return shop if isinstance(shop, Shop) else self.shops[shop]

    def shop_url(self, shop: Shop | str) -> str:
        """What replaces ``https://{shop}`` in the client: ``{base}/shops/{shop}``."""
        if self.base_url is None:
            raise RuntimeError("the sandbox is not being served yet")
        return f"{self.base_url}/shops/{self._shop(shop).domain}"

    def graphql_url(self, shop: Shop | str, version: str = LATEST_VERSION) -> str:
        return f"{self.shop_url(shop)}/admin/api/{version}/graphql.json"

    @property
    def tmp_dir(self) -> Path:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="shopify-sandbox-"))
        return self._tmp

    def close(self) -> None:
        self.webhooks.stop()
        self.bulk.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # --- tokens ----------------------------------------------------------------------------------------

    def new_access_token(self, shop: str, client_id: str, scopes: tuple[str, ...], *, expiring: bool,
                         online: bool = False, ttl: float | None = None) -> AccessToken:
        app = self.apps[client_id]
        lifetime = ttl if ttl is not None else (86_399.0 if online else app.access_token_ttl)
        token = AccessToken("shpat_" + secrets.token_hex(16) if not online else "shpua_" + secrets.token_hex(16),
                            shop, client_id, scopes, time.time() + lifetime if (expiring or online) else None, online)
        self.tokens[token.token] = token
        return token

    def new_refresh_token(self, shop: str, client_id: str, scopes: tuple[str, ...],
                          previous: str | None = None) -> RefreshToken:
        app = self.apps[client_id]
        rt = RefreshToken("shprt_" + secrets.token_hex(16), shop, client_id, scopes,
                          time.time() + app.refresh_token_ttl, previous=previous)
        self.refresh_tokens[rt.token] = rt
        return rt

    def issue_token(self, shop: Shop | str, client_id: str, *, expiring: bool = True,
                    scopes: Iterable[str] | None = None, install: bool = True) -> dict[str, Any]:
        """Skip OAuth: install the app and answer exactly what the token endpoint would."""
        shop = self._shop(shop)
        with self.lock:
            app = self.apps[client_id]
            granted = tuple(scopes) if scopes is not None else app.scopes
            if install:
                self.install(shop, client_id, granted)
            return self.token_response(shop.domain, client_id, granted, expiring=expiring)

    def token_response(self, shop: str, client_id: str, scopes: tuple[str, ...], *, expiring: bool,
                       online: bool = False, previous_refresh: str | None = None) -> dict[str, Any]:
        app = self.apps[client_id]
        access = self.new_access_token(shop, client_id, scopes, expiring=expiring, online=online)
        body: dict[str, Any] = {"access_token": access.token, "scope": ",".join(scopes)}
        if online:
            body.update({"expires_in": int(access.expires_at - time.time()) if access.expires_at else 0,
                         "associated_user_scope": ",".join(scopes),
                         "associated_user": {"id": 902541635, "first_name": "Sandbox", "last_name": "Owner",
                                             "email": f"owner@{shop}", "email_verified": True, "account_owner": True,
                                             "locale": "en", "collaborator": False}})
        elif expiring:
            rt = self.new_refresh_token(shop, client_id, scopes, previous_refresh)
            body.update({"expires_in": int(app.access_token_ttl), "refresh_token": rt.token,
                         "refresh_token_expires_in": int(app.refresh_token_ttl)})
        return body

    def revoke_tokens(self, shop: Shop | str, client_id: str) -> None:
        domain = self._shop(shop).domain
        with self.lock:
            for tok in self.tokens.values():
                if tok.shop == domain and tok.client_id == client_id:
                    tok.revoked = True
            for rt in self.refresh_tokens.values():
                if rt.shop == domain and rt.client_id == client_id:
                    rt.state = "revoked"

    def expire_access_tokens(self, shop: Shop | str | None = None) -> None:
        """Test helper: every (matching) access token expires now."""
        domain = self._shop(shop).domain if shop is not None else None
        with self.lock:
            for tok in self.tokens.values():
                if domain is None or tok.shop == domain:
                    tok.expires_at = time.time() - 1

    def uninstall(self, shop: Shop | str, client_id: str, *, send_webhook: bool = True) -> None:
        """The merchant uninstalls: tokens die, app/uninstalled goes out, API subscriptions are removed."""
        shop = self._shop(shop)
        with self.lock:
            payload = shop.rest()
            deliveries = self._deliveries(shop, "app/uninstalled", payload, only_app=client_id) if send_webhook else []
            self.revoke_tokens(shop, client_id)
            inst = shop.installations.get(client_id)
            if inst:
                inst.active = False
            mine = [s.id for s in self.subscriptions.values() if s.shop == shop.domain and s.client_id == client_id]
            for sid in mine:
                del self.subscriptions[sid]
        self.webhooks.enqueue(deliveries)

    # --- buckets ---------------------------------------------------------------------------------------

    def bucket(self, shop: Shop | str, client_id: str) -> LeakyBucket:
        shop = self._shop(shop)
        with self.lock:
            key = (shop.domain, client_id)
            b = self.buckets.get(key)
            if b is None:
                rate = self.restore_rate or PLAN_RESTORE_RATES.get(shop.plan, 100.0)
                b = LeakyBucket(self.bucket_size or rate * 10, rate)
                self.buckets[key] = b
            return b

    # --- webhooks --------------------------------------------------------------------------------------

    def add_subscription(self, shop: Shop | str, client_id: str, topic_enum: str, uri: str,
                         api_version: str = LATEST_VERSION, source: str = "api") -> WebhookSubscription:
        shop = self._shop(shop)
        with self.lock:
            self._next_subscription_id += 1
            stamp = now_us()
            sub = WebhookSubscription(self._next_subscription_id, shop.domain, client_id, topic_enum,
                                      topic_name(topic_enum), uri, api_version, stamp, stamp, source)
            self.subscriptions[sub.id] = sub
            return sub

    def _deliveries(self, shop: Shop, topic: str, payload: dict[str, Any], *,
                    only_app: str | None = None) -> list[Delivery]:
        import json

        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        event_id = str(uuid.uuid4())
        triggered = now_us()
        out: list[Delivery] = []
        for client_id, inst in shop.installations.items():
            if only_app is not None and client_id != only_app:
                continue
            if not inst.active and topic != "app/uninstalled":
                continue
            app = self.apps[client_id]
            targets: list[tuple[str, int | None, str]] = [
                (s.uri, s.id, s.api_version) for s in self.subscriptions.values()
                if s.shop == shop.domain and s.client_id == client_id and s.topic == topic]
            if topic in app.app_webhooks:
                targets.append((app.app_webhooks[topic], None, app.api_version))
            if topic in ("customers/data_request", "customers/redact", "shop/redact") and app.compliance_uri:
                targets.append((app.compliance_uri, None, app.api_version))
            for uri, sub_id, version in targets:
                out.append(Delivery(webhook_id=str(uuid.uuid4()), event_id=event_id, topic=topic, uri=uri,
                                    shop=shop.domain, client_id=client_id, body=body, secret=app.webhook_secret,
                                    api_version=version, triggered_us=triggered, subscription_id=sub_id))
        return out

    def emit(self, shop: Shop | str, topic: str, payload: dict[str, Any]) -> list[Delivery]:
        """Send ``topic`` with ``payload`` to every matching subscription of every installed app."""
        shop = self._shop(shop)
        with self.lock:
            deliveries = self._deliveries(shop, topic, payload)
            self.count("webhooks_emitted", len(deliveries))
        self.webhooks.enqueue(deliveries)
        return deliveries

    def send_customers_data_request(self, shop: Shop | str, customer: int | str) -> None:
        shop = self._shop(shop)
        cust = shop.customer(customer)
        orders = [o for o in shop.order_ids() if shop.order(o)["customer"] and
                  shop.order(o)["customer"]["id"] == cust["id"]]
        self.emit(shop, "customers/data_request", {
            "shop_id": shop.shop_id, "shop_domain": shop.domain, "orders_requested": orders,
            "customer": {"id": cust["id"], "email": cust["email"], "phone": cust["phone"]},
            "data_request": {"id": 9_999_000 + int(cust["id"]) % 1000}})

    def send_customers_redact(self, shop: Shop | str, customer: int | str) -> None:
        shop = self._shop(shop)
        cust = shop.customer(customer)
        orders = [o for o in shop.order_ids() if shop.order(o)["customer"] and
                  shop.order(o)["customer"]["id"] == cust["id"]]
        self.emit(shop, "customers/redact", {
            "shop_id": shop.shop_id, "shop_domain": shop.domain,
            "customer": {"id": cust["id"], "email": cust["email"], "phone": cust["phone"]},
            "orders_to_redact": orders})

    def send_shop_redact(self, shop: Shop | str) -> None:
        shop = self._shop(shop)
        self.emit(shop, "shop/redact", {"shop_id": shop.shop_id, "shop_domain": shop.domain})

    # --- misc --------------------------------------------------------------------------------------------

    def resolve_version(self, version: str) -> str | None:
        """The version that serves a request for ``version`` (fall-forward), or None for 404."""
        if version in self.supported_versions or version == "unstable":
            return version
        parts = version.split("-")
        if len(parts) == 2 and parts[0].isdigit() and len(parts[0]) == 4 and parts[1] in ("01", "04", "07", "10") \
                and version < self.supported_versions[0]:
            return self.supported_versions[0]
        return None

    def order_visible(self, shop: Shop, scopes: tuple[str, ...]) -> Any:
        if "read_all_orders" in scopes or "write_all_orders" in scopes:
            return None
        cutoff = now_us() - ORDER_WINDOW_US
        created = shop.catalog.orders.created
        return lambda o: created[o] >= cutoff

    def variant_gid(self, product_index: int, k: int) -> str:
        return gid("ProductVariant", VARIANT_BASE + product_index * MAX_CHILDREN + k)
