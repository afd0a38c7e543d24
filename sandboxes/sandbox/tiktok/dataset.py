"""Deterministic shop data: products with 1..N SKUs stocked in the shop's sales warehouses, and orders whose
line items (one per unit, as TikTok lists them) name those SKUs. Equal specs give equal data; times spread
over ``history_days`` before the sandbox's start.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from sandbox.tiktok.model import IdMaker, TtLine, TtOrder, TtProduct, TtSku, TtWarehouse

__all__ = ["TtDatasetSpec", "generate_orders", "generate_products", "generate_warehouses"]

_ADJ = ["Classic", "Modern", "Rustic", "Premium", "Lightweight", "Urban", "Handmade", "Alpine", "Midnight", "Spring"]
_NOUN = ["Socks", "T-Shirt", "Hoodie", "Mug", "Backpack", "Wallet", "Lamp", "Blanket", "Candle", "Beanie"]
_SIZES = ["S", "M", "L", "XL"]
_NAMES = ["Avery", "Blake", "Casey", "Devon", "Emery", "Finley", "Harper", "Jordan", "Kendall", "Morgan"]
_BUYERS = 7021436810468230000         # buyer user ids: this plus the name's index
_ORDER_MIX = ("AWAITING_SHIPMENT", "AWAITING_SHIPMENT", "IN_TRANSIT", "DELIVERED", "COMPLETED", "COMPLETED",
              "UNPAID", "CANCELLED")


@dataclass(frozen=True)
class TtDatasetSpec:
    seed: int = 1
    products: int = 30
    max_skus: int = 3                 # SKUs per product: 1..max_skus
    orders: int = 20
    max_units: int = 3                # line items (units) per order: 1..max_units
    warehouses: int = 1               # sales warehouses; every SKU is stocked in each
    history_days: int = 180
    sku_prefix: str = "TT"


def generate_warehouses(ids: IdMaker, spec: TtDatasetSpec) -> list[TtWarehouse]:
    found = [TtWarehouse(ids.next("warehouse"), f"Warehouse {n + 1}", is_default=n == 0)
             for n in range(max(1, spec.warehouses))]
    found.append(TtWarehouse(ids.next("warehouse"), "Returns", type="RETURN_WAREHOUSE"))
    return found


def generate_products(ids: IdMaker, spec: TtDatasetSpec, warehouses: list[TtWarehouse], now: int,
                      currency: str) -> list[TtProduct]:
    rng = random.Random(spec.seed)
    sales = [w.id for w in warehouses if w.type == "SALES_WAREHOUSE"]
    span = spec.history_days * 86400
    products = []
    for n in range(spec.products):
        created = now - span + (span * n) // max(spec.products, 1)
        count = rng.randint(1, max(1, spec.max_skus))
        skus = []
        for k in range(count):
            price = Decimal(rng.randint(500, 9900)) / 100
            skus.append(TtSku(ids.next("sku"), f"{spec.sku_prefix}-{n + 1:06d}-{k + 1:02d}", price,
                              {w: rng.randint(0, 200) for w in sales}))
        title = f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}" + (f" ({_SIZES[0]}-{_SIZES[count - 1]})" if count > 1 else "")
        products.append(TtProduct(ids.next("product"), title, "ACTIVATE", created,
                                  min(now, created + rng.randint(0, 86400 * 3)), skus, currency))
    return products


def generate_orders(ids: IdMaker, spec: TtDatasetSpec, products: list[TtProduct], now: int,
                    currency: str) -> list[TtOrder]:
    rng = random.Random(spec.seed + 1)
    span = spec.history_days * 86400
    skus = [(p, s) for p in products for s in p.live_skus()]
    orders = []
    for n in range(spec.orders if skus else 0):
        created = now - span + (span * n) // max(spec.orders, 1) + 60
        status = rng.choice(_ORDER_MIX)
        name = rng.choice(_NAMES)
        order = TtOrder(ids.next("order"), status, created, min(now, created + rng.randint(60, 86400)),
                        f"{name.lower()}{n}@scs.tiktokw.us", f"{name} {chr(65 + n % 26)}.", currency,
                        Decimal(rng.choice((0, 399, 599))) / 100,
                        paid_time=None if status == "UNPAID" else created + 30,
                        cancel_time=created + 600 if status == "CANCELLED" else None,
                        user_id=str(_BUYERS + _NAMES.index(name)))       # one buyer per name: repeat customers
        for _ in range(rng.randint(1, max(1, spec.max_units))):
            product, sku = rng.choice(skus)
            order.lines.append(TtLine(ids.next("line"), sku.id, sku.seller_sku, product.id, product.title,
                                      sku.price, sku.price))
        orders.append(order)
    return orders
