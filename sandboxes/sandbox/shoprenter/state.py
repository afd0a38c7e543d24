"""``ShopRenterSandbox``: apps, shops, installs, tokens, the rate limiter, faults, logs — what tests poke at.

One lock (``sandbox.lock``) guards all state; HTTP handlers, the webhook dispatcher and test code take it.
Mutation helpers on ``SrShop`` change data as a merchant would (``dateUpdated`` moves to the shop clock's now,
at second precision, so two changes in one second share a timestamp) and fire the documented webhooks.

Install (docs ``development/app-development/01_getting_started.md``): ShopRenter GETs the app's RedirectUri with
``shopname, code, timestamp, hmac, app_url``; ``hmac`` is hex HMAC-SHA256 keyed with the client secret over
``code=…&shopname=…&timestamp=…`` — ``app_url`` is *not* signed (the docs' example string has the three pairs
only; ShopRenter's demo apps sign ``shopname=…&code=…&timestamp=…``, the sandbox can send either order). The
UninstallUri gets a GET with ``shopname, code, timestamp, hmac``.

Tokens (docs ``development/api/12_acquiring_an_access_token.md``): ``POST https://oauth.app.shoprenter.net/
{shopName}/app/token`` with ``{grant_type: client_credentials, client_id, client_secret}`` -> ``{token_type:
"Bearer", expires_in: 3600, access_token: <JWT>}``; no refresh token. An app that is not installed on the shop
gets 401 ``invalid_client`` (the sandbox's choice: the endpoint is per shop, so for that shop the client does
not exist; the docs list no other 401).
"""

# long module: SrShop and ShopRenterSandbox are the one-lock state tests drive; their helpers are a single API.

from __future__ import annotations

import base64
import hashlib
import hmac as hmac_mod
import json
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import orjson

from sandbox.shoprenter.dataset import ORDER_STATUSES, Catalog, Customer, Order, Product, SrDatasetSpec
from sandbox.shoprenter.faults import FaultInjector
from sandbox.shoprenter.ids import SrClock, decode_outer_id, outer_id
from sandbox.shoprenter.render import Fmt, customer_item, order_item, order_payload, product_item, to_xml
from sandbox.shoprenter.webhooks import EVENTS, Delivery, SrWebhook, WebhookDispatcher

__all__ = [
    "DEFAULT_APP_URL_TEMPLATE",
    "ShopRenterSandbox",
    "SrApp",
    "SrRequestRecord",
    "SrShop",
    "SrToken",
    "sign_install_query",
]

R = TypeVar("R")
DEFAULT_APP_URL_TEMPLATE = "https://{shop}.shoprenter.hu/admin/app/{app_id}"
SIGNED_ORDER = {"docs": ("code", "shopname", "timestamp"), "demo": ("shopname", "code", "timestamp")}


def sign_install_query(client_secret: str, params: Mapping[str, Any], order: str = "docs") -> str:
    """Hex HMAC-SHA256 (key: client secret) over ``code=…&shopname=…&timestamp=…`` ("docs") or
    ``shopname=…&code=…&timestamp=…`` ("demo"); other params (``hmac``, ``app_url``) are not signed."""
    if order not in SIGNED_ORDER:
        raise ValueError(f"order must be 'docs' or 'demo', not {order!r}")
    message = urlencode([(k, str(params[k])) for k in SIGNED_ORDER[order]])
    return hmac_mod.new(client_secret.encode(), message.encode(), hashlib.sha256).hexdigest()


@dataclass
class SrApp:
    """A registered ShopRenter app (what Partner Support configures)."""

    client_id: str
    client_secret: str
    app_id: int
    redirect_uri: str | None = None
    uninstall_uri: str | None = None
    app_url_template: str = DEFAULT_APP_URL_TEMPLATE
    access_token_ttl: float = 3600.0

    def app_url(self, shop: str) -> str:
        return self.app_url_template.format(shop=shop, app_id=self.app_id, client_id=self.client_id)

    def __repr__(self) -> str:  # keep the secret out of logs and assertion messages
        return f"SrApp(client_id={self.client_id!r}, app_id={self.app_id})"


@dataclass
class SrToken:
    token: str
    client_id: str
    shop: str
    expires_at: float
    revoked: bool = False
    created_at: float = field(default_factory=time.time)

    def valid(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at

    def __repr__(self) -> str:
        return f"SrToken(client_id={self.client_id!r}, shop={self.shop!r}, expires_at={self.expires_at:.0f})"


@dataclass
class SrRequestRecord:
    time: float
    method: str
    path: str
    shop: str | None
    status: int
    endpoint: str = "other"
    resource: str | None = None
    client_id: str | None = None
    duration: float = 0.0
    fault: str | None = None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SrShop:
    """One shop: its data, clock, installed apps and webhooks. ``name`` is the shop name (``demo`` in
    ``demo.myshoprenter.hu``)."""

    def __init__(self, sandbox: ShopRenterSandbox, name: str, spec: SrDatasetSpec, timezone: str) -> None:
        self.sandbox = sandbox
        self.name = name
        self.spec = spec
        self.timezone = timezone
        self.clock = SrClock()
        anchor = int(spec.anchor.timestamp()) if spec.anchor is not None else self.clock.now_s()
        self.catalog = Catalog(spec, anchor)
        self.installed: dict[str, bool] = {}
        self.webhooks: dict[int, SrWebhook] = {}
        self.next_webhook = 1
        # (resource, innerId) -> (record version, api base, rendered JSON)
        self.cache: dict[tuple[str, int], tuple[int, str, bytes]] = {}

    def __repr__(self) -> str:
        c = self.catalog
        return (f"SrShop({self.name!r}, products={len(c.products)}, customers={len(c.customers)}, "
                f"orders={len(c.orders)})")

    @property
    def fmt(self) -> Fmt:
        return Fmt(self.timezone, self.sandbox.date_separator)

    @property
    def api_url(self) -> str:
        return self.sandbox.api_url(self)

    # --- ids -------------------------------------------------------------------------------------------

    def product_ids(self) -> list[int]:
        with self.sandbox.lock:
            return list(self.catalog.products)

    def customer_ids(self) -> list[int]:
        with self.sandbox.lock:
            return list(self.catalog.customers)

    def order_ids(self) -> list[int]:
        with self.sandbox.lock:
            return list(self.catalog.orders)

    def webhook_ids(self) -> list[int]:
        with self.sandbox.lock:
            return list(self.webhooks)

    @staticmethod
    def outer_id(kind: str, inner_id: int) -> str:
        """``shop.outer_id("product", 12)`` -> the API id (base64 of ``product-product_id=12``)."""
        return outer_id(kind, inner_id)

    @staticmethod
    def _inner(kind: str, ident: int | str) -> int:
        if isinstance(ident, int):
            return ident
        inner = decode_outer_id(ident, kind)
        if inner is None:
            raise ValueError(f"{ident!r} is not a {kind} id")
        return inner

    def product(self, ident: int | str) -> Product:
        return self._get(self.catalog.products, "product", ident)

    def customer(self, ident: int | str) -> Customer:
        return self._get(self.catalog.customers, "customer", ident)

    def order(self, ident: int | str) -> Order:
        return self._get(self.catalog.orders, "order", ident)

    def _get(self, table: Mapping[int, R], kind: str, ident: int | str) -> R:
        inner = self._inner(kind, ident)
        record = table.get(inner)
        if record is None:
            raise KeyError(f"no {kind} with innerId {inner} in shop {self.name!r}")
        return record

    def _stamp(self, record: Product | Customer | Order) -> int:
        # second precision, never backwards; equal stamps within one second are real ShopRenter behaviour
        record.updated = max(self.clock.now_s(), record.updated)
        record.version += 1
        return record.updated

    # --- products --------------------------------------------------------------------------------------

    _PRODUCT_FIELDS = frozenset({"sku", "price", "cost", "stock1", "stock2", "stock3", "stock4", "status", "name",
                                 "names", "model_number", "gtin", "parent_id", "short_description"})

    def update_product(self, ident: int | str, **fields: Any) -> int:
        """Change a product (``sku``, ``price``, ``stock1``..``stock4``, ``status``, ``name`` (every language),
        ``names={"hu": ...}``, ``model_number``, ``gtin``, ``parent_id``, ...) -> the new dateUpdated (epoch s)."""
        unknown = set(fields) - self._PRODUCT_FIELDS
        if unknown:
            raise ValueError(f"unknown product fields: {sorted(unknown)}")
        with self.sandbox.lock:
            p = self.product(ident)
            for key, value in fields.items():
                if key in ("price", "cost"):
                    setattr(p, key, Decimal(str(value)))
                elif key.startswith("stock"):
                    p.stock[int(key[-1]) - 1] = int(value)
                elif key == "status":
                    if int(value) not in (0, 1, 2):
                        raise ValueError("status must be 0 (disabled), 1 (enabled) or 2 (deprecated)")
                    p.status = int(value)
                elif key == "name":
                    p.names = {code: str(value) for code in p.names or {"hu": "", "en": ""}}
                elif key == "names":
                    p.names = {**p.names, **dict(value)}
                elif key == "short_description":
                    p.short_descriptions = {code: str(value) for code in p.names}
                elif key == "parent_id":
                    if value is not None and int(value) not in self.catalog.products:
                        raise ValueError(f"unknown parent product {value}")
                    p.parent_id = None if value is None else int(value)
                else:
                    setattr(p, key, str(value))
            return self._stamp(p)

    def create_product(self, *, sku: str | None = None, price: Decimal | int | str = 1000, name: str = "New product",
                       stock1: int = 0, status: int = 1, parent_id: int | None = None) -> int:
        """-> the new product's innerId."""
        with self.sandbox.lock:
            c = self.catalog
            inner = c.next_product
            c.next_product += 1
            now = self.clock.now_s()
            c.products[inner] = Product(inner_id=inner, sku=sku or f"SR-NEW-{inner:06d}", price=Decimal(str(price)),
                                        names={"hu": name, "en": name}, stock=[int(stock1), 0, 0, 0],
                                        status=int(status), parent_id=parent_id, created=now, updated=now)
            return inner

    def delete_product(self, ident: int | str) -> None:
        with self.sandbox.lock:
            inner = self.product(ident).inner_id
            del self.catalog.products[inner]
            self.cache.pop(("productExtend", inner), None)

    # --- customers -------------------------------------------------------------------------------------

    _CUSTOMER_FIELDS = frozenset({"firstname", "lastname", "email", "telephone", "newsletter", "status", "approved"})

    def update_customer(self, ident: int | str, **fields: Any) -> int:
        unknown = set(fields) - self._CUSTOMER_FIELDS
        if unknown:
            raise ValueError(f"unknown customer fields: {sorted(unknown)}")
        with self.sandbox.lock:
            cust = self.customer(ident)
            for key, value in fields.items():
                setattr(cust, key, int(value) if key in ("newsletter", "status", "approved") else str(value))
            return self._stamp(cust)

    def create_customer(self, *, firstname: str = "Új", lastname: str = "Vásárló", email: str | None = None,
                        telephone: str = "+36301234567") -> int:
        with self.sandbox.lock:
            c = self.catalog
            inner = c.next_customer
            c.next_customer += 1
            now = self.clock.now_s()
            c.customers[inner] = Customer(inner, firstname, lastname, email or f"new{inner}@example.hu", telephone,
                                          address_id=1000 + inner, created=now, updated=now)
            return inner

    def delete_customer(self, ident: int | str) -> None:
        with self.sandbox.lock:
            inner = self.customer(ident).inner_id
            del self.catalog.customers[inner]
            self.cache.pop(("customers", inner), None)

    # --- orders ----------------------------------------------------------------------------------------

    _ORDER_FIELDS = frozenset({"email", "phone", "firstname", "lastname", "comment"})

    @staticmethod
    def status_id(status: int | str) -> int:
        """An order status by id (1..5) or name (Hungarian or English, any case)."""
        if isinstance(status, int):
            if status not in ORDER_STATUSES:
                raise ValueError(f"unknown order status {status}; known: {sorted(ORDER_STATUSES)}")
            return status
        for sid, (hu, en, _) in ORDER_STATUSES.items():
            if status.lower() in (hu.lower(), en.lower()):
                return sid
        raise ValueError(f"unknown order status {status!r}")

    def update_order(self, ident: int | str, *, status: int | str | None = None, history_comment: str = "",
                     **fields: Any) -> int:
        """Change an order (``status`` by id or name, ``email``, ``phone``, ``comment``, ...); a new status fires
        ``order_status_change`` (``history_comment`` becomes ``orderHistory.comment``). -> the new dateUpdated."""
        unknown = set(fields) - self._ORDER_FIELDS
        if unknown:
            raise ValueError(f"unknown order fields: {sorted(unknown)}")
        with self.sandbox.lock:
            o = self.order(ident)
            for key, value in fields.items():
                setattr(o, key, str(value))
            changed = False
            if status is not None:
                sid = self.status_id(status)
                changed = sid != o.status_id
                o.status_id = sid
            stamp = self._stamp(o)
            if changed:
                self.sandbox.emit(self, "order_status_change", o, history_comment)
            return stamp

    def create_order(self, lines: list[tuple[int, int]] | None = None, *, customer_id: int | None = None,
                     status: int | str = 1, **fields: str) -> int:
        """Place an order (``lines``: ``[(product innerId, quantity)]``, default one random product) -> its
        innerId; fires ``order_confirm``."""
        unknown = set(fields) - self._ORDER_FIELDS
        if unknown:
            raise ValueError(f"unknown order fields: {sorted(unknown)}")
        with self.sandbox.lock:
            c = self.catalog
            if customer_id is not None and customer_id not in c.customers:
                raise ValueError(f"unknown customer {customer_id}")
            if lines is None:
                if not c.products:
                    raise ValueError("the shop has no products to order")
                lines = [(next(iter(c.products)), 1)]
            now = self.clock.now_s()
            o = c._add_order(customer_id, lines, self.status_id(status), now, now, **fields)
            self.sandbox.emit(self, "order_confirm", o, "")
            return o.inner_id

    def delete_order(self, ident: int | str) -> None:
        with self.sandbox.lock:
            inner = self.order(ident).inner_id
            del self.catalog.orders[inner]
            self.cache.pop(("orderExtend", inner), None)

    # --- webhooks (the admin UI's "Automatizmusok") ------------------------------------------------------

    def add_webhook(self, event: str, url: str, *, type: str = "json", fields: list[str] | None = None,
                    status: int = 1, label: str | None = None, created_by: str | None = None) -> SrWebhook:
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; known: {EVENTS}")
        if type not in ("json", "xml"):
            raise ValueError("type must be 'json' or 'xml'")
        param: dict[str, Any] = {"type": type, "url": url}
        if fields is not None:
            param["fields"] = list(fields)
        with self.sandbox.lock:
            hook = SrWebhook(self.next_webhook, self.name, label or f"{event} webhook", event, int(status), [param],
                             created_by=created_by)
            self.webhooks[hook.inner_id] = hook
            self.next_webhook += 1
            return hook

    def remove_webhook(self, inner_id: int) -> None:
        with self.sandbox.lock:
            self.webhooks.pop(inner_id, None)

    # --- rendering (callers hold the lock) ---------------------------------------------------------------

    def rendered(self, resource: str, record: Product | Customer | Order, api: str) -> bytes:
        """The record's JSON, rendered once per version and API base."""
        key = (resource, record.inner_id)
        hit = self.cache.get(key)
        if hit is not None and hit[0] == record.version and hit[1] == api:
            return hit[2]
        fmt = self.fmt
        if isinstance(record, Product):
            obj = product_item(record, api, fmt)
        elif isinstance(record, Customer):
            obj = customer_item(record, api, fmt)
        else:
            obj = order_item(record, api, fmt, self.catalog)
        data = orjson.dumps(obj)
        self.cache[key] = (record.version, api, data)
        return data


class ShopRenterSandbox:
    """Apps, shops and everything else one local ShopRenter holds. ``rate_limit``: requests per second per
    (app, shop) — ShopRenter's documented "3/application/shop/second" — or None for no limit."""

    def __init__(self, rate_limit: float | None = 3.0, *, timezone: str = "Europe/Budapest",
                 date_separator: str = "T", filter_inclusive: bool = False, default_limit: int = 25,
                 max_limit: int = 200, seed: int = 0, webhook_max_retries: int = 0,
                 webhook_timeout: float = 5.0) -> None:
        self.rate_limit = rate_limit
        self.timezone = timezone
        self.date_separator = date_separator  # "T" as the docs' fixtures; " " for the SQL style
        self.filter_inclusive = filter_inclusive  # False: updatedAfter/updatedAtMin are strictly "after"
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.seed = seed
        self.lock = threading.RLock()
        self.apps: dict[str, SrApp] = {}
        self.shops: dict[str, SrShop] = {}
        self.tokens: dict[str, SrToken] = {}
        self.counters: Counter[str] = Counter()
        self.request_log: list[SrRequestRecord] = []
        self.faults = FaultInjector(seed=seed)
        self.webhooks = WebhookDispatcher(self.count, seed=seed, max_retries=webhook_max_retries,
                                          timeout=webhook_timeout)
        self.base_url: str | None = None
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._window_lock = threading.Lock()
        self._next_app_id = 1

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] += n

    # --- setup -----------------------------------------------------------------------------------------

    def add_app(self, client_id: str, client_secret: str, redirect_uri: str | None = None,
                uninstall_uri: str | None = None, app_url_template: str = DEFAULT_APP_URL_TEMPLATE, *,
                app_id: int | None = None, access_token_ttl: float = 3600.0) -> SrApp:
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret are required")
        with self.lock:
            if app_id is None:
                app_id = self._next_app_id
            self._next_app_id = max(self._next_app_id, app_id) + 1
            app = SrApp(client_id, client_secret, app_id, redirect_uri, uninstall_uri, app_url_template,
                        access_token_ttl)
            self.apps[client_id] = app
            return app

    def add_shop(self, name: str, spec: SrDatasetSpec | None = None, *, timezone: str | None = None) -> SrShop:
        if not name or not all(ch.isalnum() or ch == "-" for ch in name):
            raise ValueError(f"shop names are letters, digits and '-': {name!r}")
        shop = SrShop(self, name, spec or SrDatasetSpec(), timezone or self.timezone)
        with self.lock:
            self.shops[name] = shop
        return shop

    def shop(self, shop: SrShop | str) -> SrShop:
        if isinstance(shop, SrShop):
            return shop
        found = self.shops.get(shop)
        if found is None:
            raise KeyError(f"no shop {shop!r}")
        return found

    def app(self, client_id: str) -> SrApp:
        found = self.apps.get(client_id)
        if found is None:
            raise KeyError(f"no app with client_id {client_id!r}")
        return found

    # --- URLs ------------------------------------------------------------------------------------------

    def _base(self) -> str:
        if self.base_url is None:
            raise RuntimeError("the sandbox is not being served (use serve_shoprenter_sandbox)")
        return self.base_url

    @property
    def oauth_base_url(self) -> str:
        """Replaces ``https://oauth.app.shoprenter.net``: POST ``{oauth_base_url}/{shop}/app/token``."""
        return f"{self._base()}/oauth"

    def api_url(self, shop: SrShop | str) -> str:
        """Replaces ``https://{shop}.api2.myshoprenter.hu/api``."""
        name = shop.name if isinstance(shop, SrShop) else shop
        return f"{self._base()}/shops/{name}/api"

    @property
    def api_url_template(self) -> str:
        return f"{self._base()}/shops/{{shop}}/api"

    # --- installs --------------------------------------------------------------------------------------

    def mark_installed(self, shop: SrShop | str, client_id: str, installed: bool = True) -> None:
        """Install (or remove) an app without the HTTP call to its RedirectUri."""
        s = self.shop(shop)
        self.app(client_id)
        with self.lock:
            s.installed[client_id] = installed
            if not installed:
                self.revoke_tokens(s, client_id)

    def is_installed(self, shop: SrShop | str, client_id: str) -> bool:
        with self.lock:
            return self.shop(shop).installed.get(client_id, False)

    def install_query(self, shop: SrShop | str, client_id: str, timestamp: int | None = None,
                      order: str = "docs", *, app_url: bool = True) -> dict[str, str]:
        """The signed query ShopRenter sends to the RedirectUri, in URL order (signed pairs, hmac, app_url)."""
        s, app = self.shop(shop), self.app(client_id)
        if order not in SIGNED_ORDER:
            raise ValueError(f"order must be 'docs' or 'demo', not {order!r}")
        values = {"shopname": s.name, "code": secrets.token_hex(16),
                  "timestamp": str(int(time.time()) if timestamp is None else int(timestamp))}
        query = {k: values[k] for k in SIGNED_ORDER[order]}
        query["hmac"] = sign_install_query(app.client_secret, query, order)
        if app_url:
            query["app_url"] = app.app_url(s.name)
        return query

    def install(self, shop: SrShop | str, client_id: str, order: str = "docs", *,
                timeout: float = 10.0) -> httpx.Response:
        """Install the app on the shop, then GET its RedirectUri with the signed query (redirects not followed:
        the app should answer with a redirect to ``app_url``)."""
        app = self.app(client_id)
        if not app.redirect_uri:
            raise ValueError(f"app {client_id!r} has no redirect_uri (use mark_installed to skip the HTTP call)")
        query = self.install_query(shop, client_id, order=order)
        self.mark_installed(shop, client_id)
        self.count("installs")
        return httpx.get(app.redirect_uri, params=query, timeout=timeout, follow_redirects=False)

    def uninstall(self, shop: SrShop | str, client_id: str, order: str = "docs", *,
                  timeout: float = 10.0) -> httpx.Response | None:
        """Remove the app: revoke its tokens for the shop and GET its UninstallUri (if any) with
        ``shopname, code, timestamp, hmac``."""
        app = self.app(client_id)
        self.mark_installed(shop, client_id, installed=False)
        self.count("uninstalls")
        if not app.uninstall_uri:
            return None
        query = self.install_query(shop, client_id, order=order, app_url=False)
        return httpx.get(app.uninstall_uri, params=query, timeout=timeout, follow_redirects=False)

    # --- tokens ----------------------------------------------------------------------------------------

    def _new_token(self, app: SrApp, shop: str) -> SrToken:
        now = time.time()
        claims = {"aud": app.client_id, "jti": secrets.token_hex(40), "iat": now, "nbf": now,
                  "exp": now + app.access_token_ttl, "sub": shop, "scopes": []}
        header = _b64url(json.dumps({"typ": "JWT", "alg": "RS256"}, separators=(",", ":")).encode())
        token = f"{header}.{_b64url(json.dumps(claims).encode())}.{_b64url(secrets.token_bytes(64))}"
        record = SrToken(token, app.client_id, shop, now + app.access_token_ttl)
        self.tokens[token] = record
        self.count("tokens_issued")
        return record

    def issue_token(self, shop: SrShop | str, client_id: str) -> dict[str, Any]:
        """What the token endpoint answers, without HTTP (the app must be installed)."""
        s, app = self.shop(shop), self.app(client_id)
        with self.lock:
            if not s.installed.get(client_id):
                raise PermissionError(f"app {client_id!r} is not installed on {s.name!r}")
            t = self._new_token(app, s.name)
        return {"token_type": "Bearer", "expires_in": int(app.access_token_ttl), "access_token": t.token}

    def token_request(self, shop_name: str, params: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """The token endpoint's logic -> (status, body); error bodies follow the docs (league/oauth2-server)."""
        grant = params.get("grant_type")
        if grant != "client_credentials":
            msg = "The authorization grant type is not supported by the authorization server."
            return 400, {"error": "unsupported_grant_type", "error_description": msg,
                         "hint": "Check that all required parameters have been provided", "message": msg}
        client_id = params.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            msg = ("The request is missing a required parameter, includes an invalid parameter value, includes a "
                   "parameter more than once, or is otherwise malformed.")
            return 400, {"error": "invalid_request", "error_description": msg,
                         "hint": "Check the `client_id` parameter", "message": msg}
        secret = params.get("client_secret")
        with self.lock:
            app = self.apps.get(client_id)
            shop = self.shops.get(shop_name)
            ok = (app is not None and shop is not None and isinstance(secret, str)
                  and secrets.compare_digest(secret.encode(), app.client_secret.encode())
                  and shop.installed.get(client_id, False))
            if not ok or app is None:
                self.count("token_errors")
                msg = "Client authentication failed"
                return 401, {"error": "invalid_client", "error_description": msg, "message": msg}
            t = self._new_token(app, shop_name)
        return 200, {"token_type": "Bearer", "expires_in": int(app.access_token_ttl), "access_token": t.token}

    def authenticate(self, shop_name: str, authorization: str | None) -> tuple[SrToken | None, str]:
        """-> (token, "") or (None, the OAuth ``hint`` for the 401)."""
        if not authorization:
            return None, 'Missing "Authorization" header'
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None, 'Missing "Authorization" header'
        with self.lock:
            token = self.tokens.get(value.strip())
            if token is None:
                return None, "Access token could not be verified"
            if token.revoked:
                return None, "Access token has been revoked"
            if not token.valid(time.time()):
                return None, "Access token could not be verified"
            shop = self.shops.get(shop_name)
            if token.shop != shop_name or shop is None or not shop.installed.get(token.client_id, False):
                return None, "Access token could not be verified"
            return token, ""

    def expire_tokens(self, shop: SrShop | str | None = None, client_id: str | None = None) -> int:
        """Make matching access tokens expired now -> how many."""
        name = None if shop is None else self.shop(shop).name
        n = 0
        with self.lock:
            for t in self.tokens.values():
                if (name is None or t.shop == name) and (client_id is None or t.client_id == client_id):
                    t.expires_at = min(t.expires_at, time.time() - 1)
                    n += 1
        return n

    def revoke_tokens(self, shop: SrShop | str | None = None, client_id: str | None = None) -> int:
        name = None if shop is None else self.shop(shop).name
        n = 0
        with self.lock:
            for t in self.tokens.values():
                if (name is None or t.shop == name) and (client_id is None or t.client_id == client_id):
                    t.revoked = True
                    n += 1
        return n

    # --- rate limit ------------------------------------------------------------------------------------

    def admit(self, client_id: str, shop: str) -> bool:
        """Sliding one-second window per (app, shop): at most ``rate_limit`` admitted requests started within
        any second; refused requests do not count."""
        if self.rate_limit is None:
            return True
        now = time.monotonic()
        with self._window_lock:
            window = self._windows.setdefault((client_id, shop), deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.rate_limit:
                return False
            window.append(now)
            return True

    def reset_rate_limits(self) -> None:
        with self._window_lock:
            self._windows.clear()

    # --- webhooks --------------------------------------------------------------------------------------

    def emit(self, shop: SrShop, event: str, order: Order, comment: str = "") -> int:
        """Queue deliveries of ``event`` for every enabled webhook of the shop -> how many."""
        deliveries: list[Delivery] = []
        with self.lock:
            for hook in shop.webhooks.values():
                if hook.event != event or hook.status != 1:
                    continue
                for param in hook.parameters:
                    payload = {"orders": {"order": [order_payload(order, shop.name, shop.catalog, shop.fmt,
                                                                  param.get("fields"), comment)]}}
                    if param.get("type") == "xml":
                        body, ctype = to_xml(payload["orders"], root="orders"), "application/xml"
                    else:
                        body, ctype = json.dumps(payload).encode(), "application/json"
                    deliveries.append(Delivery(secrets.token_hex(8), shop.name, event, str(param["url"]), body, ctype,
                                               hook.inner_id, order.inner_id))
        self.count(f"event_{event}")
        self.webhooks.enqueue(deliveries)
        return len(deliveries)

    # --- lifecycle -------------------------------------------------------------------------------------

    def close(self) -> None:
        self.webhooks.stop()
