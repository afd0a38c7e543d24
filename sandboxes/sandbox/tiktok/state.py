"""``TikTokSandbox``: apps, sellers, shops, authorizations, tokens, the rate limiter, faults, logs — what tests
and the server handlers share. One lock (``sandbox.lock``) guards all state.

Authorization (TikTok Shop Partner Center): a seller authorizes an app (a "service") on TikTok's consent page;
TikTok redirects to the app's fixed redirect URL with ``code`` and ``state``. The code (30 minutes, single use —
[unverified] in the docs) is exchanged at ``GET /api/v2/token/get`` for an access token and a refresh token,
both with **absolute** expiry timestamps. Every shop of the seller that the authorization covers is listed by
``GET /authorization/202309/shops`` with the ``cipher`` shop-scoped calls send. A refresh returns a new pair; the
old refresh token stops working after ``app.refresh_grace`` seconds (0 here: strict rotation, the safe guess).
"""

# long module: the sandbox's one-lock state and the shop helpers tests drive form a single API.

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from sandbox.tiktok.dataset import TtDatasetSpec, generate_orders, generate_products, generate_warehouses
from sandbox.tiktok.faults import FaultInjector
from sandbox.tiktok.model import (
    IdMaker,
    SandboxClock,
    TtApp,
    TtAuthCode,
    TtLine,
    TtOrder,
    TtProduct,
    TtRefresh,
    TtSeller,
    TtShopInfo,
    TtSku,
    TtToken,
    TtWarehouse,
)
from sandbox.tiktok.signing import webhook_signature
from sandbox.tiktok.webhooks import EVENT_TYPES, Delivery, WebhookDispatcher

__all__ = ["TikTokSandbox", "TtRequestRecord", "TtShop"]

_EVENT_NUMBERS = {name: number for number, name in EVENT_TYPES.items()}


@dataclass
class TtRequestRecord:
    time: float
    method: str
    path: str
    endpoint: str
    group: str | None
    status: int
    code: int | None
    shop_id: str | None
    duration: float
    fault: str | None = None


class TtShop:
    """One shop: its data and the helpers that change it the way the seller (or TikTok) would."""

    def __init__(self, sandbox: TikTokSandbox, info: TtShopInfo, open_id: str, spec: TtDatasetSpec) -> None:
        self.sandbox = sandbox
        self.info = info
        self.open_id = open_id
        now = sandbox.clock.seconds()
        self.warehouses: list[TtWarehouse] = generate_warehouses(sandbox.ids, spec)
        self.products: dict[str, TtProduct] = {p.id: p for p in generate_products(
            sandbox.ids, spec, self.warehouses, now, info.currency)}
        self.orders: dict[str, TtOrder] = {o.id: o for o in generate_orders(
            sandbox.ids, spec, list(self.products.values()), now, info.currency)}
        self.webhook_addresses: dict[tuple[str, str], str] = {}      # (app_key, event type) -> address
        self.rate_limit: float | None = None                         # overrides the sandbox's
        self.sku_index: dict[str, str] = {s.id: p.id for p in self.products.values() for s in p.skus}
        self._by_created: tuple[int, list[TtProduct], list[int]] = (-1, [], [])
        self._orders_by_created: tuple[int, list[TtOrder], list[int]] = (-1, [], [])

    def products_by_created(self) -> tuple[list[TtProduct], list[int]]:
        """Products in (create_time, id) order and their create times (for bisecting a window). Cached until a
        product is added: creation times never change. Caller holds the lock."""
        if self._by_created[0] != len(self.products):
            ordered = sorted(self.products.values(), key=lambda p: (p.create_time, int(p.id)))
            self._by_created = (len(self.products), ordered, [p.create_time for p in ordered])
        return self._by_created[1], self._by_created[2]

    def orders_by_created(self) -> tuple[list[TtOrder], list[int]]:
        if self._orders_by_created[0] != len(self.orders):
            ordered = sorted(self.orders.values(), key=lambda o: (o.create_time, int(o.id)))
            self._orders_by_created = (len(self.orders), ordered, [o.create_time for o in ordered])
        return self._orders_by_created[1], self._orders_by_created[2]

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def cipher(self) -> str:
        return self.info.cipher

    def sales_warehouses(self) -> list[str]:
        return [w.id for w in self.warehouses if w.type == "SALES_WAREHOUSE"]

    # --- look-ups ---------------------------------------------------------------------------------------
    def product(self, product_id: str) -> TtProduct:
        return self.products[product_id]

    def product_of(self, sku_id: str) -> TtProduct:
        return self.products[self.sku_index[sku_id]]

    def sku(self, sku_id: str) -> TtSku:
        found = self.product_of(sku_id).sku(sku_id)
        if found is None:
            raise KeyError(f"SKU {sku_id} was deleted")
        return found

    def sku_by_seller_sku(self, seller_sku: str) -> TtSku:
        for product in self.products.values():
            for s in product.live_skus():
                if s.seller_sku == seller_sku:
                    return s
        raise KeyError(seller_sku)

    def all_skus(self) -> list[TtSku]:
        return [s for p in self.products.values() for s in p.live_skus()]

    # --- the seller's changes ---------------------------------------------------------------------------
    def _touch(self, product: TtProduct) -> None:
        product.update_time = max(self.sandbox.clock.seconds(), product.update_time)

    def add_product(self, title: str, skus: Iterable[tuple[str, Decimal | str | float, int | Mapping[str, int]]], *,
                    status: str = "ACTIVATE", create_time: int | None = None) -> TtProduct:
        """A new product; each SKU is ``(seller_sku, price, quantity in every sales warehouse | {wh: qty})``."""
        with self.sandbox.lock:
            now = self.sandbox.clock.seconds()
            made = [TtSku(self.sandbox.ids.next("sku"), seller_sku, Decimal(str(price)),
                          dict(qty) if isinstance(qty, Mapping) else dict.fromkeys(self.sales_warehouses(), qty))
                    for seller_sku, price, qty in skus]
            product = TtProduct(self.sandbox.ids.next("product"), title, status, create_time or now,
                                max(create_time or now, now), made, self.info.currency)
            self.products[product.id] = product
            self.sku_index.update({s.id: product.id for s in made})
        self.sandbox.emit(self, "PRODUCT_CREATION", {"product_id": product.id, "product_types": ["GPR_PRODUCT"],
                                                     "update_time": product.update_time})
        return product

    def set_price(self, sku_id: str, price: Decimal | str | float) -> None:
        """A price edit in Seller Center (no webhook fires for price changes)."""
        with self.sandbox.lock:
            self.sku(sku_id).price = Decimal(str(price))
            self._touch(self.product_of(sku_id))

    def set_inventory(self, sku_id: str, quantity: int, warehouse_id: str | None = None) -> None:
        """Stock in one warehouse (default: every warehouse of the SKU); INVENTORY_STATUS_CHANGE when it runs out."""
        with self.sandbox.lock:
            sku = self.sku(sku_id)
            for wh in [warehouse_id] if warehouse_id else list(sku.inventory):
                sku.inventory[wh] = int(quantity)
            product = self.product_of(sku_id)
            self._touch(product)
            total = sum(sku.inventory.values())
        if total == 0:
            self.sandbox.emit(self, "INVENTORY_STATUS_CHANGE", {
                "product_id": product.id, "sku_id": sku_id, "current_inventory_status": "OUT_OF_STOCK",
                "trigger_reason": {"alert_type": "REALTIME", "low_stock_threshold": 0},
                "inventory_distribution": {"total_quantity": 0, "available_quantity": 0},
                "update_time": product.update_time})

    def set_product_status(self, product_id: str, status: str) -> None:
        """E.g. PENDING (under review), SELLER_DEACTIVATED (not live), DELETED; PRODUCT_STATUS_CHANGE fires."""
        with self.sandbox.lock:
            product = self.products[product_id]
            product.status = status
            self._touch(product)
        self.sandbox.emit(self, "PRODUCT_STATUS_CHANGE", {"product_id": int(product_id),
                                                          "status": "PRODUCT_STATUS_CHANGED", "suspended_reason": "",
                                                          "update_time": product.update_time})

    def lock_promotion(self, sku_id: str, locked: bool = True) -> None:
        """The SKU joins (or leaves) a promotion: its price is locked, its stock cannot go below what it is."""
        with self.sandbox.lock:
            self.sku(sku_id).promotion_locked = locked

    def delete_sku(self, sku_id: str) -> None:
        with self.sandbox.lock:
            self.sku(sku_id).deleted = True
            self._touch(self.product_of(sku_id))

    def create_order(self, lines: Iterable[tuple[str, int]], *, status: str = "AWAITING_SHIPMENT") -> TtOrder:
        """An order of ``(sku_id, quantity)`` lines (one line item per unit); stock goes down; ORDER_STATUS_CHANGE."""
        with self.sandbox.lock:
            now = self.sandbox.clock.seconds()
            order = TtOrder(self.sandbox.ids.next("order"), status, now, now, "buyer@scs.tiktokw.us", "Sam B.",
                            self.info.currency, Decimal("0"), paid_time=now)
            for sku_id, qty in lines:
                sku, product = self.sku(sku_id), self.product_of(sku_id)
                wh = next(iter(sku.inventory))
                sku.inventory[wh] = max(0, sku.inventory[wh] - qty)
                for _ in range(qty):
                    order.lines.append(TtLine(self.sandbox.ids.next("line"), sku.id, sku.seller_sku, product.id,
                                              product.title, sku.price, sku.price))
            self.orders[order.id] = order
        self.sandbox.emit(self, "ORDER_STATUS_CHANGE", {"order_id": order.id, "order_status": status,
                                                        "is_on_hold_order": False, "update_time": now})
        return order

    def set_order_status(self, order_id: str, status: str) -> None:
        with self.sandbox.lock:
            order = self.orders[order_id]
            order.status = status
            order.update_time = max(self.sandbox.clock.seconds(), order.update_time)
            if status == "CANCELLED":
                order.cancel_time = order.update_time
        self.sandbox.emit(self, "ORDER_STATUS_CHANGE", {"order_id": order_id, "order_status": status,
                                                        "is_on_hold_order": False, "update_time": order.update_time})


class TikTokSandbox:
    def __init__(self, *, rate_limit: float | None = None, search_cap: int = 10_000, order_search_cap: int = 10_000,
                 accept_zero_quantity: bool = True, max_price: Decimal = Decimal("7600"), seed: int = 0,
                 webhook_retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0)) -> None:
        self.lock = threading.RLock()
        self.clock = SandboxClock()
        self.ids = IdMaker()
        self.rate_limit = rate_limit                # requests/s per app and shop (None: unlimited)
        self.search_cap = search_cap                # product search: no result past this many (12052180)
        self.order_search_cap = order_search_cap    # [unverified] for orders; the same rule here
        self.accept_zero_quantity = accept_zero_quantity   # [unverified] the doc range is 1-99,999
        self.max_price = max_price                  # US list-price range upper bound, applied to price.amount
        self.timestamp_window = (300, 30)           # seconds before / after now a request's timestamp may be
        self.apps: dict[str, TtApp] = {}
        self.sellers: dict[str, TtSeller] = {}
        self.shops: dict[str, TtShop] = {}
        self.by_cipher: dict[str, TtShop] = {}
        self.authorizations: dict[tuple[str, str], set[str]] = {}     # (app_key, open_id) -> shop ids
        self.codes: dict[str, TtAuthCode] = {}
        self.tokens: dict[str, TtToken] = {}
        self.refreshes: dict[str, TtRefresh] = {}
        self.authorizing_seller: str | None = None   # who approves on /open/authorize (default: the first seller)
        self.faults = FaultInjector(seed=seed)
        self.webhooks = WebhookDispatcher(self.count, seed=seed, retry_delays=webhook_retry_delays)
        self.request_log: list[TtRequestRecord] = []
        self.counters: Counter[str] = Counter()
        self.writes: list[dict[str, Any]] = []       # every price/inventory update call, as applied
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self.base_url: str | None = None

    # --- bookkeeping ------------------------------------------------------------------------------------
    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] += n

    def admit(self, app_key: str, scope: str, limit: float | None) -> bool:
        """A sliding one-second window per app and shop (or seller); refused requests do not fill it."""
        if limit is None:
            return True
        now = time.monotonic()
        with self.lock:
            window = self._windows.setdefault((app_key, scope), deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= max(1, int(limit)):
                return False
            window.append(now)
            return True

    def close(self) -> None:
        self.webhooks.stop()

    # --- setup ------------------------------------------------------------------------------------------
    def add_app(self, app_key: str, app_secret: str, *, service_id: str | None = None, redirect_uri: str | None = None,
                webhook_url: str | None = None) -> TtApp:
        with self.lock:
            app = TtApp(app_key, app_secret, service_id or f"7{abs(hash(app_key)) % 10**18:018d}", redirect_uri,
                        webhook_url)
            self.apps[app_key] = app
            return app

    def add_seller(self, name: str, region: str = "US") -> TtSeller:
        with self.lock:
            seller = TtSeller(self.ids.next("seller"), name, region)
            self.sellers[seller.open_id] = seller
            self.authorizing_seller = self.authorizing_seller or seller.open_id
            return seller

    def add_shop(self, seller: TtSeller | str, name: str, spec: TtDatasetSpec | None = None, *, region: str = "US",
                 currency: str = "USD", seller_type: str = "LOCAL") -> TtShop:
        with self.lock:
            owner = self.sellers[seller if isinstance(seller, str) else seller.open_id]
            shop_id = self.ids.next("shop")
            info = TtShopInfo(shop_id, f"ROW_{secrets.token_urlsafe(18)}", f"US{shop_id[-6:]}", name, region,
                              seller_type, currency)
            shop = TtShop(self, info, owner.open_id, spec or TtDatasetSpec())
            self.shops[shop_id] = shop
            self.by_cipher[info.cipher] = shop
            owner.shop_ids.append(shop_id)
            return shop

    # --- authorization and tokens -----------------------------------------------------------------------
    def authorize(self, app_key: str, open_id: str | None = None, shop_ids: Iterable[str] | None = None) -> str:
        """The seller approves the app on TikTok's consent page: a one-time code for the redirect."""
        with self.lock:
            seller = self.sellers[open_id or self.authorizing_seller or ""]
            code = f"ROW_{secrets.token_urlsafe(24)}"
            self.codes[code] = TtAuthCode(code, app_key, seller.open_id, self.clock.now() + self.apps[app_key].code_ttl,
                                          list(shop_ids if shop_ids is not None else seller.shop_ids))
            return code

    def grant(self, app_key: str, open_id: str) -> dict[str, Any]:
        """A fresh token pair for an authorization (what ``token/get`` and ``token/refresh`` return)."""
        with self.lock:
            app, seller, now = self.apps[app_key], self.sellers[open_id], self.clock.seconds()
            access = TtToken(f"TTP_{secrets.token_urlsafe(30)}", app_key, open_id, int(now + app.access_token_ttl))
            refresh = TtRefresh(f"TTP_{secrets.token_urlsafe(30)}", app_key, open_id, int(now + app.refresh_token_ttl))
            self.tokens[access.value] = access
            self.refreshes[refresh.value] = refresh
            self.count("tokens_issued")
            return {"access_token": access.value, "access_token_expire_in": access.expires_at,
                    "refresh_token": refresh.value, "refresh_token_expire_in": refresh.expires_at,
                    "open_id": open_id, "seller_name": seller.name, "seller_base_region": seller.region,
                    "user_type": 0, "granted_scopes": ["seller.product.basic", "seller.product.write",
                                                       "seller.order.info", "seller.logistics"]}

    def issue_tokens(self, app_key: str, open_id: str | None = None,
                     shop_ids: Iterable[str] | None = None) -> dict[str, Any]:
        """Authorize and grant at once (tests that skip the browser)."""
        with self.lock:
            seller = self.sellers[open_id or self.authorizing_seller or ""]
            self.authorizations.setdefault((app_key, seller.open_id), set()).update(
                shop_ids if shop_ids is not None else seller.shop_ids)
            return self.grant(app_key, seller.open_id)

    def expire_access_tokens(self, open_id: str | None = None) -> None:
        with self.lock:
            for token in self.tokens.values():
                if open_id is None or token.open_id == open_id:
                    token.expires_at = min(token.expires_at, self.clock.seconds() - 1)

    def revoke_refresh_tokens(self, open_id: str | None = None) -> None:
        with self.lock:
            for refresh in self.refreshes.values():
                if open_id is None or refresh.open_id == open_id:
                    refresh.revoked = True

    def authorized_shops(self, app_key: str, open_id: str) -> list[TtShop]:
        with self.lock:
            return [self.shops[s] for s in sorted(self.authorizations.get((app_key, open_id), set()))]

    def deauthorize(self, app_key: str, shop: TtShop) -> None:
        """The seller removes the app from one shop: its tokens stop working for it; SELLER_DEAUTHORIZATION."""
        with self.lock:
            self.authorizations.get((app_key, shop.open_id), set()).discard(shop.id)
        self.emit(shop, "SELLER_DEAUTHORIZATION", {"message": f"Shop_id {shop.id} is deauthorized from your APP "
                                                              "by merchant."}, apps=[app_key])

    def warn_expiring(self, app_key: str, shop: TtShop, days: int = 7) -> None:
        expires = self.clock.seconds() + days * 86400
        self.emit(shop, "UPCOMING_AUTHORIZATION_EXPIRATION", {
            "message": f"Authorization of shop_id {shop.id} is expiring in {days} days. Please direct the merchant "
                       "to re-authorize.", "expiration_time": str(expires)}, apps=[app_key])

    # --- webhooks ---------------------------------------------------------------------------------------
    def emit(self, shop: TtShop, event_type: str, data: Mapping[str, Any], *,
             apps: Iterable[str] | None = None) -> list[str]:
        """Deliver one event to every app authorized for the shop (or ``apps``); the notification ids sent."""
        number = _EVENT_NUMBERS[event_type]
        sent: list[Delivery] = []
        with self.lock:
            keys = list(apps) if apps is not None else [k for (k, o), shops in self.authorizations.items()
                                                        if o == shop.open_id and shop.id in shops]
            for app_key in keys:
                app = self.apps[app_key]
                url = shop.webhook_addresses.get((app_key, event_type)) or app.webhook_url
                if not url:
                    continue
                notification = self.ids.next("notification")
                body = orjson.dumps({"type": number, "tts_notification_id": notification, "shop_id": shop.id,
                                     "timestamp": self.clock.seconds(), "data": dict(data)})
                secret = app.app_secret
                if self.webhooks.faults.forge_signature_next > 0:
                    self.webhooks.faults.forge_signature_next -= 1
                    secret = "not-the-app-secret"  # noqa: S105 (a deliberately wrong key)
                sent.append(Delivery(notification, number, shop.id, url, body,
                                     webhook_signature(app.app_key, secret, body)))
            self.count(f"event_{event_type.lower()}")
        self.webhooks.enqueue(sent)
        return [d.notification_id for d in sent]
