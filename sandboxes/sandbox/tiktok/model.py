"""The records a TikTok Shop sandbox keeps: apps, sellers, shops with their warehouses, products, SKUs and
orders, tokens. Plain dataclasses; ``render.py`` turns them into the Open API's JSON. Callers hold the sandbox
lock. Ids are TikTok-shaped: numeric strings of 18-19 digits (never JSON numbers: they exceed 2^53).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["IdMaker", "SandboxClock", "TtApp", "TtAuthCode", "TtLine", "TtOrder", "TtProduct", "TtRefresh",
           "TtSeller", "TtShopInfo", "TtSku", "TtToken", "TtWarehouse", "PRODUCT_STATUSES", "ORDER_STATUSES"]

# Product statuses of Get Product / Search Products (202309/202502)
PRODUCT_STATUSES = ("DRAFT", "PENDING", "FAILED", "ACTIVATE", "SELLER_DEACTIVATED", "PLATFORM_DEACTIVATED",
                    "FREEZE", "DELETED")
ORDER_STATUSES = ("UNPAID", "ON_HOLD", "AWAITING_SHIPMENT", "PARTIALLY_SHIPPING", "AWAITING_COLLECTION",
                  "IN_TRANSIT", "DELIVERED", "COMPLETED", "CANCELLED")


class IdMaker:
    """TikTok-looking ids per kind, unique within one sandbox."""

    BASES = {"product": 1729592969712207008, "sku": 1729592969712307008, "warehouse": 7068517275539719942,
             "order": 576486316948490001, "line": 576486316948590001, "shop": 7495540735365777507,
             "seller": 7010736057180325637, "notification": 7380066284010030890}

    def __init__(self) -> None:
        self._counters = {kind: itertools.count(base) for kind, base in self.BASES.items()}

    def next(self, kind: str) -> str:
        return str(next(self._counters[kind]))


class SandboxClock:
    """Unix seconds (``int``), real time plus an offset tests can move."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def seconds(self) -> int:
        return int(self.now())

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class TtApp:
    """An app registered in Partner Center. ``webhook_url`` is the address configured there (deliveries go to
    it unless a shop registered another one with ``PUT /event/202309/webhooks``)."""

    app_key: str
    app_secret: str
    service_id: str
    redirect_uri: str | None = None
    webhook_url: str | None = None
    access_token_ttl: float = 7 * 86400.0
    refresh_token_ttl: float = 365 * 86400.0
    code_ttl: float = 1800.0
    refresh_grace: float = 0.0          # seconds a rotated refresh token keeps working ([unverified] 0)

    def __repr__(self) -> str:          # keep the secret out of logs and assertion messages
        return f"TtApp(app_key={self.app_key!r}, service_id={self.service_id!r})"


@dataclass
class TtWarehouse:
    id: str
    name: str
    is_default: bool = False
    type: str = "SALES_WAREHOUSE"
    effect_status: str = "ENABLED"


@dataclass
class TtSku:
    id: str
    seller_sku: str
    price: Decimal
    inventory: dict[str, int]                 # warehouse id -> quantity (ship-now units)
    status: str = "NORMAL"
    deleted: bool = False
    promotion_locked: bool = False


@dataclass
class TtProduct:
    id: str
    title: str
    status: str
    create_time: int
    update_time: int
    skus: list[TtSku]
    currency: str = "USD"
    audit_status: str = "APPROVED"

    def live_skus(self) -> list[TtSku]:
        return [s for s in self.skus if not s.deleted]

    def sku(self, sku_id: str) -> TtSku | None:
        return next((s for s in self.skus if s.id == sku_id and not s.deleted), None)


@dataclass
class TtLine:
    id: str
    sku_id: str
    seller_sku: str
    product_id: str
    product_name: str
    sale_price: Decimal
    original_price: Decimal


@dataclass
class TtOrder:
    id: str
    status: str
    create_time: int
    update_time: int
    buyer_email: str
    recipient_name: str
    currency: str
    shipping_fee: Decimal
    lines: list[TtLine] = field(default_factory=list)   # one line item per unit, as TikTok lists them
    paid_time: int | None = None
    cancel_time: int | None = None
    user_id: str = "7021436810468230000"                # the buyer's TikTok user id (``buyer_user_id`` filter)


@dataclass
class TtShopInfo:
    id: str
    cipher: str
    code: str
    name: str
    region: str = "US"
    seller_type: str = "LOCAL"
    currency: str = "USD"


@dataclass
class TtSeller:
    open_id: str
    name: str
    region: str = "US"
    shop_ids: list[str] = field(default_factory=list)


@dataclass
class TtAuthCode:
    code: str
    app_key: str
    open_id: str
    expires_at: float
    shop_ids: list[str]
    used: bool = False


@dataclass
class TtToken:
    value: str
    app_key: str
    open_id: str
    expires_at: int
    revoked: bool = False

    def __repr__(self) -> str:
        return f"TtToken(app_key={self.app_key!r}, open_id={self.open_id!r}, expires_at={self.expires_at})"


@dataclass
class TtRefresh:
    value: str
    app_key: str
    open_id: str
    expires_at: int
    rotated_at: float | None = None       # when a refresh replaced it
    revoked: bool = False

    def __repr__(self) -> str:
        return f"TtRefresh(app_key={self.app_key!r}, open_id={self.open_id!r}, expires_at={self.expires_at})"
