"""Deterministic shop data: products (some of them variant children), customers and orders with line items.

Records are small slotted dataclasses keyed by ShopRenter's integer ``innerId``; ``render.py`` turns them into the
API's JSON (pre-rendered once per record version) and into webhook payloads. Equal specs give equal data
(timestamps aside: they are spread over ``history_days`` before the anchor, the sandbox's start by default).
Callers hold the sandbox lock.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

__all__ = [
    "LANGUAGES",
    "ORDER_STATUSES",
    "Catalog",
    "Customer",
    "Order",
    "OrderLine",
    "Product",
    "SrDatasetSpec",
    "money",
]

# (language_id, code, name) — Hungarian first, as in ShopRenter's examples
LANGUAGES: tuple[tuple[int, str, str], ...] = ((1, "hu", "Hungarian"), (2, "en", "English"))
# order_status_id -> (hu name, en name, color)
ORDER_STATUSES: dict[int, tuple[str, str, str]] = {
    1: ("Függőben lévő", "Pending", "#ff9900"),
    2: ("Feldolgozás alatt", "Processing", "#3366ff"),
    3: ("Kiszállítva", "Shipped", "#00aacc"),
    4: ("Teljesítve", "Completed", "#33aa33"),
    5: ("Törölve", "Cancelled", "#cc0000"),
}
CURRENCIES: dict[str, tuple[int, int]] = {"HUF": (4, 0), "EUR": (1, 2), "USD": (2, 2)}  # code -> (id, decimals)
TAX_RATE = Decimal("27")

_ADJ = [("Klasszikus", "Classic"), ("Modern", "Modern"), ("Rusztikus", "Rustic"), ("Prémium", "Premium"),
        ("Könnyű", "Lightweight"), ("Városi", "Urban"), ("Kézműves", "Handmade"), ("Alpesi", "Alpine"),
        ("Éjféli", "Midnight"), ("Tavaszi", "Spring")]
_NOUN = [("póló", "T-Shirt"), ("pulóver", "Hoodie"), ("bögre", "Mug"), ("hátizsák", "Backpack"),
         ("pénztárca", "Wallet"), ("lámpa", "Lamp"), ("takaró", "Blanket"), ("gyertya", "Candle"),
         ("jegyzetfüzet", "Notebook"), ("kulacs", "Water Bottle"), ("sapka", "Beanie"), ("sál", "Scarf")]
_FIRST = ["Anna", "Bence", "Csilla", "Dániel", "Eszter", "Ferenc", "Gábor", "Hanna", "István", "Judit", "Kata",
          "László", "Márton", "Nóra", "Olivér", "Péter", "Réka", "Zsófia"]
_LAST = ["Nagy", "Kovács", "Tóth", "Szabó", "Horváth", "Varga", "Kiss", "Molnár", "Németh", "Farkas", "Balogh",
         "Papp", "Takács", "Juhász"]
_CITIES = [("Budapest", "1051"), ("Debrecen", "4025"), ("Szeged", "6720"), ("Pécs", "7621"), ("Győr", "9021"),
           ("Miskolc", "3525")]
_STREETS = ["Fő utca", "Kossuth Lajos utca", "Petőfi Sándor utca", "Rákóczi út", "Andrássy út", "Széchenyi tér"]
_SHIPPING = [("Házhozszállítás futárszolgálattal", "GLS", Decimal("990")),
             ("Személyes átvétel", "", Decimal("0")), ("Csomagautomata", "FOXPOST", Decimal("790"))]
_PAYMENT = [("Utánvét", "cod"), ("Banki átutalás", "bank_transfer"), ("Bankkártya", "barion")]


def money(value: Decimal, places: int = 4) -> str:
    """ShopRenter's decimal strings: ``"2200.0000"``."""
    return f"{value:.{places}f}"


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


@dataclass(frozen=True)
class SrDatasetSpec:
    """What one shop contains. ``child_every``: every Nth product is a variant child of the product before it
    (0 = no children)."""

    seed: int = 1
    products: int = 50
    customers: int = 20
    orders: int = 40
    line_items_per_order: int = 3  # each order gets 1..N line items
    history_days: int = 365
    currency: str = "HUF"
    child_every: int = 5
    guest_order_every: int = 7  # every Nth order has no customer account
    anchor: datetime | None = None  # None: the shop clock's start


@dataclass(slots=True)
class Product:
    inner_id: int
    sku: str
    price: Decimal  # net
    names: dict[str, str]  # language code -> name
    stock: list[int]  # stock1..stock4
    status: int = 1  # 1 enabled, 0 disabled, 2 deprecated
    model_number: str = ""
    gtin: str = ""
    cost: Decimal = Decimal("0")
    parent_id: int | None = None
    short_descriptions: dict[str, str] = field(default_factory=dict)
    weight: Decimal = Decimal("0")
    created: int = 0
    updated: int = 0
    version: int = 0


@dataclass(slots=True)
class Customer:
    inner_id: int
    firstname: str
    lastname: str
    email: str
    telephone: str
    newsletter: int = 0
    status: int = 1
    approved: int = 1
    customer_group_id: int = 8
    address_id: int = 0
    password_hash: str = ""
    created: int = 0
    updated: int = 0
    version: int = 0


@dataclass(slots=True)
class OrderLine:
    inner_id: int  # order_product_id, unique in the shop
    product_id: int
    name: str
    sku: str
    price: Decimal  # net unit price
    quantity: int
    tax_rate: Decimal = TAX_RATE
    model_number: str = ""

    @property
    def stocks(self) -> list[int]:
        # The REST resource has no quantity field: it is stock1..stock4 (taken from each warehouse)
        return [self.quantity, 0, 0, 0]

    @property
    def gross_price(self) -> Decimal:
        return (self.price * (1 + self.tax_rate / 100)).quantize(Decimal("1"))


@dataclass(slots=True)
class Order:
    inner_id: int
    invoice_id: int
    customer_id: int | None
    firstname: str
    lastname: str
    email: str
    phone: str
    city: str
    postcode: str
    address1: str
    status_id: int
    lines: list[OrderLine]
    shipping_method: str
    shipping_extension: str
    shipping_net: Decimal
    payment_method: str
    payment_code: str
    currency: str = "HUF"
    language: str = "hu"
    comment: str = ""
    ip: str = "127.0.0.1"
    cart_token: str = ""
    created: int = 0
    updated: int = 0
    version: int = 0

    @property
    def subtotal_net(self) -> Decimal:
        return sum((ln.price * ln.quantity for ln in self.lines), Decimal("0"))

    @property
    def tax(self) -> Decimal:
        items = sum((ln.price * ln.quantity * ln.tax_rate / 100 for ln in self.lines), Decimal("0"))
        return (items + self.shipping_net * TAX_RATE / 100).quantize(Decimal("1"))

    @property
    def shipping_gross(self) -> Decimal:
        return (self.shipping_net * (1 + TAX_RATE / 100)).quantize(Decimal("1"))

    @property
    def total_net(self) -> Decimal:
        return self.subtotal_net + self.shipping_net

    @property
    def total_gross(self) -> Decimal:
        return (self.total_net + self.tax).quantize(Decimal("1"))


class Catalog:
    """All records of one shop, in ``innerId`` order (dicts keep insertion order; ids only grow)."""

    def __init__(self, spec: SrDatasetSpec, anchor_s: int) -> None:
        self.spec = spec
        self.products: dict[int, Product] = {}
        self.customers: dict[int, Customer] = {}
        self.orders: dict[int, Order] = {}
        self.next_product = 1
        self.next_customer = 1
        self.next_order = 1
        self.next_line = 1
        self._rng = random.Random(spec.seed)
        self._generate(anchor_s)

    # --- generation -------------------------------------------------------------------------------------

    def _span(self, anchor_s: int) -> tuple[int, int]:
        created = anchor_s - self._rng.randrange(max(self.spec.history_days, 1) * 86_400)
        updated = min(anchor_s, created + self._rng.randrange(30 * 86_400))
        return created, updated

    def _generate(self, anchor_s: int) -> None:
        rng = self._rng
        spec = self.spec
        for i in range(1, spec.products + 1):
            adj, noun = rng.choice(_ADJ), rng.choice(_NOUN)
            price = Decimal(rng.randrange(10, 400) * 100 - 10)
            parent = i - 1 if spec.child_every and i > 1 and i % spec.child_every == 0 else None
            created, updated = self._span(anchor_s)
            p = Product(inner_id=i, sku=f"SR-{spec.seed:02d}-{i:06d}", price=price,
                        names={"hu": f"{adj[0]} {noun[0]}", "en": f"{adj[1]} {noun[1]}"},
                        stock=[rng.randrange(0, 60), rng.randrange(0, 5), 0, 0],
                        status=1 if rng.random() < 0.9 else 0, model_number=f"M{i:05d}",
                        gtin=f"599{spec.seed % 10}{i:09d}", cost=(price * Decimal("0.6")).quantize(Decimal("1")),
                        parent_id=parent, weight=Decimal(rng.randrange(1, 300)) / 100,
                        short_descriptions={"hu": f"{adj[0]} {noun[0]} rövid leírás",
                                            "en": f"Short description of {adj[1]} {noun[1]}"},
                        created=created, updated=updated)
            self.products[i] = p
        self.next_product = spec.products + 1
        for i in range(1, spec.customers + 1):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            created, updated = self._span(anchor_s)
            self.customers[i] = Customer(
                inner_id=i, firstname=first, lastname=last, email=f"{_ascii(first)}.{_ascii(last)}{i}@example.hu",
                telephone=f"+3630{rng.randrange(1_000_000, 9_999_999)}", newsletter=rng.randrange(2),
                address_id=1000 + i, password_hash=_fake_bcrypt(rng), created=created, updated=updated)
        self.next_customer = spec.customers + 1
        product_ids = list(self.products)
        for i in range(1, spec.orders + 1):
            created, updated = self._span(anchor_s)
            cust_id: int | None = None
            if self.customers and not (spec.guest_order_every and i % spec.guest_order_every == 0):
                cust_id = rng.choice(list(self.customers))
            count = rng.randint(1, max(1, spec.line_items_per_order))
            chosen = rng.sample(product_ids, min(count, len(product_ids))) if product_ids else []
            lines = [(pid, rng.randint(1, 3)) for pid in chosen]
            self._add_order(cust_id, lines, rng.choice(list(ORDER_STATUSES)), created, updated)

    def _add_order(self, customer_id: int | None, lines: list[tuple[int, int]], status_id: int, created: int,
                   updated: int, **fields: str) -> Order:
        rng = self._rng
        cust = self.customers.get(customer_id) if customer_id is not None else None
        first = cust.firstname if cust else rng.choice(_FIRST)
        last = cust.lastname if cust else rng.choice(_LAST)
        email = cust.email if cust else f"{_ascii(first)}.{_ascii(last)}.guest{self.next_order}@example.hu"
        phone = cust.telephone if cust else f"+3620{rng.randrange(1_000_000, 9_999_999)}"
        city, postcode = rng.choice(_CITIES)
        ship = rng.choice(_SHIPPING)
        pay = rng.choice(_PAYMENT)
        order_lines: list[OrderLine] = []
        for pid, qty in lines:
            prod = self.products.get(pid)
            if prod is None:
                raise ValueError(f"unknown product innerId {pid}")
            order_lines.append(OrderLine(self.next_line, pid, prod.names.get("hu", prod.sku), prod.sku, prod.price,
                                         qty, model_number=prod.model_number))
            self.next_line += 1
        order = Order(inner_id=self.next_order, invoice_id=self.next_order, customer_id=cust.inner_id if cust else None,
                      firstname=first, lastname=last, email=email, phone=phone, city=city, postcode=postcode,
                      address1=f"{rng.choice(_STREETS)} {rng.randint(1, 120)}.", status_id=status_id,
                      lines=order_lines, shipping_method=ship[0], shipping_extension=ship[1], shipping_net=ship[2],
                      payment_method=pay[0], payment_code=pay[1], currency=self.spec.currency,
                      cart_token=f"{rng.getrandbits(64):016x}", created=created, updated=updated)
        for key, value in fields.items():
            setattr(order, key, value)
        self.orders[order.inner_id] = order
        self.next_order += 1
        return order


def _fake_bcrypt(rng: random.Random) -> str:
    # The customer resource really exposes a bcrypt hash; this one only looks like one.
    alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "$2y$10$" + "".join(rng.choice(alphabet) for _ in range(53))
