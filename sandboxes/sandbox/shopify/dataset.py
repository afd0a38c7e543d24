"""Deterministic, compact shop data: 100,000 products and 100,000 orders in a few megabytes.

Nothing is materialised per entity. Every field of product ``i`` is a pure function of
``(seed, i)`` (a splitmix64 hash), so a record is rebuilt on demand in microseconds. The only per-entity
state is two ``array('q')`` columns (created/updated microseconds, needed to sort and filter) plus sparse
dicts for what tests change: field overrides, deleted indexes, inventory levels and created entities.

Records returned here are plain dicts in *internal* snake_case; ``nodes.py`` shapes them into GraphQL
nodes and REST webhook payloads. Callers hold the sandbox lock; nothing here is thread-safe on its own.
"""

# long module: one big deterministic dataset generator; every Catalog field derives from the seed and an index.

from __future__ import annotations

import base64
import bisect
import functools
import json
import unicodedata
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.shopify.clock import US, now_us
from sandbox.shopify.search import SearchFilter, SearchValue

__all__ = [
    "Catalog",
    "DatasetSpec",
    "Page",
    "Table",
    "decode_cursor",
    "encode_cursor",
    "money",
]

PRODUCT_BASE = 8_000_000_000_000
VARIANT_BASE = 45_000_000_000_000
INVENTORY_ITEM_BASE = 47_000_000_000_000
CUSTOMER_BASE = 7_000_000_000_000
ORDER_BASE = 6_000_000_000_000
LINE_ITEM_BASE = 15_000_000_000_000
FULFILLMENT_BASE = 5_000_000_000_000
REFUND_BASE = 900_000_000_000
LOCATION_BASE = 70_000_000_000
ADDRESS_BASE = 9_000_000_000_000
MAX_CHILDREN = 100  # variants per product / line items per order, so child IDs stay derivable

_M64 = (1 << 64) - 1
_SALT = {"product": 0x51, "variant": 0x52, "customer": 0x53, "order": 0x54, "line": 0x55, "inv": 0x56,
         "time": 0x57, "loc": 0x58}

_ADJ = ["Classic", "Everyday", "Vintage", "Modern", "Rustic", "Premium", "Essential", "Urban", "Coastal",
        "Nordic", "Organic", "Handmade", "Lightweight", "Heritage", "Studio", "Alpine", "Canyon", "Midnight"]
_MATERIAL = ["Cotton", "Linen", "Leather", "Wool", "Ceramic", "Oak", "Bamboo", "Steel", "Canvas", "Denim",
             "Glass", "Walnut", "Merino", "Silk", "Cork", "Copper"]
_NOUN = [("T-Shirt", "Apparel"), ("Hoodie", "Apparel"), ("Jacket", "Apparel"), ("Sneakers", "Footwear"),
         ("Boots", "Footwear"), ("Mug", "Kitchen"), ("Bowl", "Kitchen"), ("Cutting Board", "Kitchen"),
         ("Backpack", "Bags"), ("Tote Bag", "Bags"), ("Wallet", "Accessories"), ("Watch Strap", "Accessories"),
         ("Lamp", "Home"), ("Throw Blanket", "Home"), ("Candle", "Home"), ("Notebook", "Stationery"),
         ("Water Bottle", "Outdoor"), ("Beanie", "Apparel"), ("Scarf", "Apparel"), ("Desk Organizer", "Office")]
_VENDORS = ["Northwind Goods", "Acme Supply", "Blue Harbor", "Kettle & Co", "Field Studio", "Lumen Works",
            "Pine Street", "Atlas Outfitters"]
_TAGS = ["new", "sale", "bestseller", "eco", "limited", "gift", "summer", "winter", "clearance", "bundle"]
_SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
_COLORS = ["Black", "White", "Navy", "Olive", "Sand", "Red", "Grey", "Teal"]
_FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Lucas", "Mia", "Mateo", "Amelia",
          "Levi", "Harper", "Ezra", "Evelyn", "Luca", "Anna", "Jonas", "Zoe", "Milan", "Nora", "Kenji", "Ines"]
_LAST = ["Smith", "Johnson", "Garcia", "Kovacs", "Nagy", "Müller", "Rossi", "Dubois", "Tanaka", "Silva",
         "Nowak", "Jensen", "O'Brien", "Fischer", "Horvat", "Novak", "Larsen", "Martin", "Szabo", "Kim"]
_CITIES = [("New York", "NY", "US", "United States", "10001"), ("Austin", "TX", "US", "United States", "73301"),
           ("Toronto", "ON", "CA", "Canada", "M5H 2N2"), ("Budapest", None, "HU", "Hungary", "1051"),
           ("Berlin", None, "DE", "Germany", "10115"), ("London", None, "GB", "United Kingdom", "EC1A 1BB"),
           ("Sydney", "NSW", "AU", "Australia", "2000"), ("Paris", None, "FR", "France", "75001")]
_STREETS = ["Main St", "Oak Ave", "Market St", "Andrássy út", "King St W", "High St", "Rue de Rivoli"]
_CARRIERS = [("UPS", "https://www.ups.com/track?tracknum="), ("USPS", "https://tools.usps.com/go/TrackConfirmAction?tLabels="),
             ("DHL Express", "https://www.dhl.com/track?id="), ("FedEx", "https://www.fedex.com/fedextrack/?trknbr=")]
_LOCATION_NAMES = ["Main Warehouse", "Downtown Store", "East Fulfillment Center", "Pop-up Shop", "Outlet",
                   "West Depot"]


def _mix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


_SALTED: dict[tuple[int, str], int] = {}


def _h(seed: int, salt: str, i: int, j: int = 0) -> int:
    """``_mix(_mix(_mix((seed << 8) ^ salt) ^ i) ^ j)``; hot in bulk exports, so the innermost mix (which
    depends on seed and salt only) is computed once and the other two are inlined."""
    x = _SALTED.get((seed, salt))
    if x is None:
        x = _SALTED[(seed, salt)] = _mix((seed << 8) ^ _SALT[salt])
    x = ((x ^ i) + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    x = ((x ^ (x >> 31) ^ j) + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)




@functools.lru_cache(maxsize=8192)
def _inventory_base(seed: int, n: int, loc: int) -> tuple[int, int]:
    """(available, committed) of an untouched level (pure in seed, n, loc): a variant's total and then each
    of its levels need it, so recent ones are remembered."""
    r = _h(seed, "inv", n, loc)
    return (r % 60) - 5 if (r >> 8) % 10 else 0, (r >> 16) % 4


def _pick(seq: Sequence[Any], r: int, shift: int = 0) -> Any:
    return seq[(r >> shift) % len(seq)]


# the values ``fulfillment_status:`` accepts for each displayFulfillmentStatus
_FULFILLMENT_SEARCH = {"FULFILLED": ["fulfilled", "shipped"], "UNFULFILLED": ["unfulfilled", "unshipped"],
                       "PARTIALLY_FULFILLED": ["partial", "partially_fulfilled"]}


def _order_tags(r: int) -> list[str]:
    return sorted({_pick(["wholesale", "priority", "gift", "subscription"], r, 52 + 2 * t)
                   for t in range((r >> 56) % 3)})


def money(cents: int | None) -> str | None:
    """Shopify's Money/Decimal strings: ``"19.99"``."""
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


@functools.lru_cache(maxsize=16_384)  # every generated product title (5,760) and customer name fits
def _slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()  # handles and emails stay ASCII
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(p for p in out.split("-") if p)


@functools.lru_cache(maxsize=1024)
def _sku_prefix(vendor: str) -> str:
    return _slug(vendor)[:4].upper()


def encode_cursor(last_id: int, last_value: int | str) -> str:
    raw = json.dumps({"last_id": last_id, "last_value": last_value}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, int | str] | None:
    try:
        obj = json.loads(base64.b64decode(cursor.encode(), validate=True))
        last_id, value = obj["last_id"], obj["last_value"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(last_id, int) or not isinstance(value, int | str):
        return None
    return last_id, value


@dataclass(frozen=True)
class DatasetSpec:
    """What one shop contains. Equal specs produce byte-identical data (timestamps aside, see ``anchor``)."""

    seed: int = 1
    products: int = 50
    variants_per_product: int = 3
    customers: int = 20
    orders: int = 40
    line_items_per_order: int = 3  # each order gets 1..N line items
    locations: int = 2
    history_days: int = 365
    currency: str = "USD"
    # Timestamps are spread over ``history_days`` before the anchor; None = the sandbox's start time.
    anchor: datetime | None = None


@dataclass
class Table:
    """One entity kind: index ``i`` has legacy ID ``base + i + 1``."""

    kind: str
    base: int
    count: int
    created: array[int] = field(default_factory=lambda: array("q"))
    updated: array[int] = field(default_factory=lambda: array("q"))
    deleted: set[int] = field(default_factory=set)
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)
    version: int = 0
    _sorted: dict[str, tuple[int, list[int]]] = field(default_factory=dict)

    def legacy_id(self, i: int) -> int:
        return self.base + i + 1

    def index(self, legacy_id: int) -> int | None:
        i = legacy_id - self.base - 1
        return i if 0 <= i < self.count else None

    def alive(self, i: int) -> bool:
        return 0 <= i < self.count and i not in self.deleted

    def live_index(self, legacy_id: int) -> int | None:
        i = self.index(legacy_id)
        return i if i is not None and i not in self.deleted else None

    def touch(self, i: int, us: int | None = None) -> int:
        stamp = max(us if us is not None else now_us(), self.updated[i] + 1)
        self.updated[i] = stamp
        self.version += 1
        return stamp

    def sort_value(self, i: int, sort_key: str) -> int:
        if sort_key in ("UPDATED_AT",):
            return self.updated[i]
        if sort_key in ("CREATED_AT", "PROCESSED_AT"):
            return self.created[i]
        return self.legacy_id(i)

    def ordered(self, sort_key: str) -> Sequence[int]:
        if sort_key not in ("UPDATED_AT", "CREATED_AT", "PROCESSED_AT"):
            return range(self.count)
        cached = self._sorted.get(sort_key)
        if cached is None or cached[0] != self.version:
            col = self.updated if sort_key == "UPDATED_AT" else self.created
            order = sorted(range(self.count), key=lambda i: (col[i], i))
            self._sorted[sort_key] = (self.version, order)
            return order
        return cached[1]


@dataclass
class Page:
    indexes: list[int]
    has_next: bool
    has_previous: bool
    cursors: list[str]


class Catalog:
    """All data of one shop. Indexes are 0-based; legacy IDs are what the API shows."""

    def __init__(self, spec: DatasetSpec, anchor_us: int) -> None:
        self.spec = spec
        self.seed = spec.seed
        self.anchor_us = anchor_us
        self.products = Table("product", PRODUCT_BASE, spec.products)
        self.customers = Table("customer", CUSTOMER_BASE, spec.customers)
        self.orders = Table("order", ORDER_BASE, spec.orders)
        self.tables = {"product": self.products, "customer": self.customers, "order": self.orders}
        for table in self.tables.values():
            self._fill_times(table)
        self.variant_overrides: dict[tuple[int, int], dict[str, Any]] = {}
        self.inventory: dict[tuple[int, int, int], tuple[int, int, int]] = {}
        self.unstocked: set[tuple[int, int, int]] = set()  # (product, variant, location) levels not active
        self.locations: list[dict[str, Any]] = [self._location_base(j) for j in range(spec.locations)]
        self._customer_stats: dict[int, tuple[int, int]] | None = None

    # --- time columns ------------------------------------------------------------------------------------

    def _fill_times(self, table: Table) -> None:
        span = self.spec.history_days * 86_400 * US
        start = self.anchor_us - span
        n = max(table.count, 1)
        for i in range(table.count):
            r = _h(self.seed, "time", i, ord(table.kind[0]))
            # IDs grow with creation time, like Shopify's; sub-second parts are random on purpose.
            created = start + (span * i) // n + (r % max(span // n, 1)) // 2
            created = min(created, self.anchor_us - US)
            age = self.anchor_us - created
            updated = created if r % 5 == 0 else created + ((r >> 20) % max(age, 1))
            table.created.append(created)
            table.updated.append(updated)

    def new_index(self, table: Table, us: int | None = None) -> int:
        stamp = us if us is not None else now_us()
        table.created.append(stamp)
        table.updated.append(stamp)
        table.count += 1
        table.version += 1
        return table.count - 1

    # --- products & variants -----------------------------------------------------------------------------

    def product(self, i: int) -> dict[str, Any]:
        r = _h(self.seed, "product", i)
        noun, ptype = _pick(_NOUN, r, 16)
        title = f"{_pick(_ADJ, r)} {_pick(_MATERIAL, r, 8)} {noun}"
        status_roll = (r >> 24) % 100
        rec: dict[str, Any] = {
            "index": i,
            "id": self.products.legacy_id(i),
            "title": title,
            "handle": f"{_slug(title)}-{i + 1}",
            "vendor": _pick(_VENDORS, r, 32),
            "product_type": ptype,
            "tags": sorted({_pick(_TAGS, r, 40 + 4 * t) for t in range((r >> 36) % 4)}),
            "status": "ACTIVE" if status_roll < 85 else "DRAFT" if status_roll < 95 else "ARCHIVED",
            "description": f"<p>{title} by {_pick(_VENDORS, r, 32)}. Made to last.</p>",
            "variant_count": max(1, min(self.spec.variants_per_product, MAX_CHILDREN)),
            "created_us": self.products.created[i],
            "updated_us": self.products.updated[i],
            "base_price_cents": 500 + ((r >> 48) % 150) * 100 + 99,
        }
        ov = self.products.overrides.get(i)
        if ov:
            rec.update(ov)
        return rec

    def variant_count(self, i: int) -> int:
        """``int(product(i)["variant_count"])`` without building the product."""
        ov = self.products.overrides.get(i)
        if ov and "variant_count" in ov:
            return int(ov["variant_count"])
        return max(1, min(self.spec.variants_per_product, MAX_CHILDREN))

    def variant(self, i: int, k: int, product: dict[str, Any] | None = None) -> dict[str, Any]:
        product = product or self.product(i)
        r = _h(self.seed, "variant", i, k)
        count = int(product["variant_count"])
        if count == 1:
            options = [("Title", "Default Title")]
            title = "Default Title"
        else:
            size, color = _SIZES[k % len(_SIZES)], _COLORS[(k // len(_SIZES) + (r % 3)) % len(_COLORS)]
            options = [("Size", size), ("Color", color)]
            title = f"{size} / {color}"  # the option values joined by " / "
        price = int(product["base_price_cents"]) + k * 100
        rec: dict[str, Any] = {
            "product_index": i,
            "index": k,
            "id": VARIANT_BASE + i * MAX_CHILDREN + k,
            "product_id": product["id"],
            "inventory_item_id": INVENTORY_ITEM_BASE + i * MAX_CHILDREN + k,
            "title": title,
            "options": options,
            "sku": f"{_sku_prefix(str(product['vendor']))}-{i + 1:06d}-{k + 1:02d}",
            "barcode": f"{(r % 10 ** 12):012d}",
            "price_cents": price,
            "compare_at_cents": price + 1000 if (r >> 40) % 4 == 0 else None,
            "position": k + 1,
            "taxable": True,
            "inventory_policy": "DENY" if (r >> 44) % 5 else "CONTINUE",
            "created_us": product["created_us"],
            "updated_us": product["updated_us"],
            "weight_grams": 100 + (r >> 50) % 900,
        }
        ov = self.variant_overrides.get((i, k))
        if ov:
            rec.update(ov)
        return rec

    def variants(self, i: int, product: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        product = product or self.product(i)
        return [self.variant(i, k, product) for k in range(int(product["variant_count"]))]

    def variants_with_sku(self, sku: str) -> list[tuple[int, int]]:
        """Live variants whose SKU is ``sku`` (case-insensitive), in ID order. A generated SKU names its own
        product and variant index; SKUs set by a test are few; so no index over every variant is needed."""
        want = sku.strip().lower()
        candidates = {key for key, ov in self.variant_overrides.items() if "sku" in ov}
        parts = want.rsplit("-", 2)
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            candidates.add((int(parts[1]) - 1, int(parts[2]) - 1))
        return [(i, k) for i, k in sorted(candidates)
                if self.products.alive(i) and 0 <= k < self.variant_count(i)
                and str(self.variant(i, k)["sku"] or "").lower() == want]

    def stocked(self, i: int, k: int, j: int) -> bool:
        """Whether variant ``k`` of product ``i`` is stocked at (has an active level in) location ``j``."""
        return (i, k, j) not in self.unstocked and self.locations[j]["active"]

    def variant_by_id(self, variant_id: int) -> tuple[int, int] | None:
        return self._child(variant_id, VARIANT_BASE)

    def variant_by_inventory_item(self, item_id: int) -> tuple[int, int] | None:
        return self._child(item_id, INVENTORY_ITEM_BASE)

    def _child(self, legacy_id: int, base: int) -> tuple[int, int] | None:
        offset = legacy_id - base
        if offset < 0:
            return None
        i, k = divmod(offset, MAX_CHILDREN)
        if not self.products.alive(i) or k >= self.variant_count(i):
            return None
        return i, k

    def inventory_level(self, i: int, k: int, loc: int, variant: dict[str, Any] | None = None) -> dict[str, Any]:
        stored = self.inventory.get((i, k, loc))
        if stored is None:
            available, committed = _inventory_base(self.seed, i * MAX_CHILDREN + k, loc)
            updated = variant["updated_us"] if variant else self.products.updated[i]
            stored = (available, available + committed, int(updated))
        available, on_hand, updated_us = stored
        return {
            "inventory_item_id": INVENTORY_ITEM_BASE + i * MAX_CHILDREN + k,
            "location_index": loc,
            "location_id": LOCATION_BASE + loc + 1,
            "available": available,
            "on_hand": on_hand,
            "committed": on_hand - available,
            "updated_us": updated_us,
        }

    def inventory_total(self, i: int, k: int) -> int:
        """Sum of ``available`` over active locations (what ``inventory_level`` reports, without the dicts)."""
        total = 0
        for j, loc in enumerate(self.locations):
            if loc["active"]:
                stored = self.inventory.get((i, k, j))
                if stored is None:
                    total += _inventory_base(self.seed, i * MAX_CHILDREN + k, j)[0]
                else:
                    total += int(stored[0])
        return total

    # --- locations ---------------------------------------------------------------------------------------

    def _location_base(self, j: int) -> dict[str, Any]:
        city, province, country, country_name, zip_code = _CITIES[j % len(_CITIES)]
        return {
            "index": j,
            "id": LOCATION_BASE + j + 1,
            "name": _LOCATION_NAMES[j % len(_LOCATION_NAMES)] + ("" if j < len(_LOCATION_NAMES) else f" {j}"),
            "active": True,
            "address1": f"{100 + j} {_STREETS[j % len(_STREETS)]}",
            "city": city,
            "province_code": province,
            "country_code": country,
            "country": country_name,
            "zip": zip_code,
            "created_us": self.anchor_us - self.spec.history_days * 86_400 * US,
            "updated_us": self.anchor_us - self.spec.history_days * 86_400 * US,
        }

    def location_index(self, legacy_id: int) -> int | None:
        j = legacy_id - LOCATION_BASE - 1
        return j if 0 <= j < len(self.locations) else None

    # --- customers ---------------------------------------------------------------------------------------

    def address(self, r: int, first: str, last: str, salt: int) -> dict[str, Any]:
        city, province, country, country_name, zip_code = _pick(_CITIES, r, 12)
        return {
            "id": ADDRESS_BASE + salt,
            "first_name": first,
            "last_name": last,
            "name": f"{first} {last}",
            "company": None,
            "address1": f"{1 + (r >> 20) % 999} {_pick(_STREETS, r, 30)}",
            "address2": None if (r >> 34) % 3 else f"Apt {(r >> 36) % 90 + 1}",
            "city": city,
            "province_code": province,
            "country_code": country,
            "country": country_name,
            "zip": zip_code,
            "phone": None,
        }

    def customer(self, i: int) -> dict[str, Any]:
        r = _h(self.seed, "customer", i)
        first, last = _pick(_FIRST, r), _pick(_LAST, r, 8)
        email_local = _slug(f"{first}.{last}").replace("-", ".")
        state_roll = (r >> 44) % 100
        rec: dict[str, Any] = {
            "index": i,
            "id": self.customers.legacy_id(i),
            "first_name": first,
            "last_name": last,
            "email": f"{email_local}.{i + 1}@example.com",
            "phone": None if (r >> 16) % 3 == 0 else f"+1555{(r >> 20) % 10_000_000:07d}",
            "state": "ENABLED" if state_roll < 70 else "DISABLED" if state_roll < 90 else "INVITED",
            "tags": sorted({_pick(["vip", "wholesale", "newsletter", "returning"], r, 50 + 2 * t)
                            for t in range((r >> 48) % 3)}),
            "verified_email": (r >> 52) % 10 != 0,
            "note": None,
            "created_us": self.customers.created[i],
            "updated_us": self.customers.updated[i],
            "address": self.address(r, first, last, i + 1),
        }
        rec.update(self.customers.overrides.get(i, {}))
        return rec

    def customer_stats(self, i: int) -> tuple[int, int]:
        """(numberOfOrders, amountSpent cents), computed once and kept in step with order changes."""
        if self._customer_stats is None:
            stats: dict[int, tuple[int, int]] = {}
            for o in range(self.orders.count):
                if self.orders.alive(o):
                    self._add_stats(stats, self.order_money(o), 1)
            self._customer_stats = stats
        return self._customer_stats.get(i, (0, 0))

    @staticmethod
    def _add_stats(stats: dict[int, tuple[int, int]], money: dict[str, Any], sign: int) -> None:
        ci = money.get("customer_index")
        if ci is None:
            return
        count, spent = stats.get(ci, (0, 0))
        paid = 0 if money["cancelled"] else int(money["total"]) - int(money["refunded"])
        stats[ci] = (count + sign, spent + sign * paid)

    def before_order_change(self, o: int) -> None:
        if self._customer_stats is not None and self.orders.alive(o):
            self._add_stats(self._customer_stats, self.order_money(o), -1)

    def after_order_change(self, o: int) -> None:
        if self._customer_stats is not None and self.orders.alive(o):
            self._add_stats(self._customer_stats, self.order_money(o), 1)

    # --- orders ------------------------------------------------------------------------------------------

    def order_money(self, o: int) -> dict[str, Any]:
        """The cheap part of an order (who, lines, totals, statuses) — enough for customer aggregates."""
        r = _h(self.seed, "order", o)
        ov = self.orders.overrides.get(o, {})
        customer_index: int | None = None
        if self.customers.count and (r % 10):
            customer_index = (r >> 8) % self.spec.customers if self.spec.customers else None
        customer_index = ov.get("customer_index", customer_index)
        if customer_index is not None and not self.customers.alive(customer_index):
            customer_index = None
        lines: list[dict[str, Any]] = ov.get("line_items") or self._base_lines(o, r)
        subtotal = sum(int(li["price_cents"]) * int(li["quantity"]) - int(li["discount_cents"]) for li in lines)
        # orders written through orderCreate carry their own shipping and tax (none unless sent)
        shipping = int(ov.get("shipping_cents", [0, 499, 999][(r >> 20) % 3]))
        tax = int(ov.get("tax_cents", (subtotal * 8 + 50) // 100))
        total = subtotal + tax + shipping
        roll = (r >> 24) % 100
        financial = ("PAID" if roll < 70 else "PENDING" if roll < 80 else "PARTIALLY_REFUNDED" if roll < 87
                     else "REFUNDED" if roll < 92 else "AUTHORIZED" if roll < 95 else "PARTIALLY_PAID"
                     if roll < 98 else "VOIDED")
        financial = ov.get("financial_status", financial)
        froll = (r >> 32) % 100
        fulfillment = "UNFULFILLED"
        if financial in ("PAID", "PARTIALLY_REFUNDED", "REFUNDED"):
            fulfillment = "FULFILLED" if froll < 65 else "UNFULFILLED" if froll < 90 else "PARTIALLY_FULFILLED"
        fulfillment = ov.get("fulfillment_status", fulfillment)
        refunded = total if financial == "REFUNDED" else total // 2 if financial == "PARTIALLY_REFUNDED" else 0
        created = self.orders.created[o]
        cancelled = ov["cancelled_us"] if "cancelled_us" in ov else created + 3_600 * US if financial == "VOIDED" \
            else None
        return {"r": r, "customer_index": customer_index, "lines": lines, "subtotal": subtotal,
                "discount": sum(int(li["discount_cents"]) for li in lines), "shipping": shipping, "tax": tax,
                "total": total, "financial": financial, "fulfillment": fulfillment, "refunded": refunded,
                "cancelled": cancelled}

    def order(self, o: int) -> dict[str, Any]:
        return self.order_with_customer(o)[0]

    def order_with_customer(self, o: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The order and the customer record it was built from (None without one): callers that need
        both build the customer once."""
        m = self.order_money(o)
        r = int(m["r"])
        created = self.orders.created[o]
        ov = self.orders.overrides.get(o, {})
        customer_index = m["customer_index"]
        cust = self.customer(customer_index) if customer_index is not None else None
        lines: list[dict[str, Any]] = m["lines"]
        subtotal, discount, shipping, tax, total = m["subtotal"], m["discount"], m["shipping"], m["tax"], m["total"]
        financial, fulfillment, refunded, cancelled = m["financial"], m["fulfillment"], m["refunded"], m["cancelled"]
        closed = created + 7 * 86_400 * US if fulfillment == "FULFILLED" and (r >> 40) % 2 and \
            created + 7 * 86_400 * US < self.anchor_us else None
        carrier, track_url = _pick(_CARRIERS, r, 44)
        tracking = f"1Z{(r >> 8) % 10 ** 12:012d}"
        fulfillments = []
        if fulfillment in ("FULFILLED", "PARTIALLY_FULFILLED"):
            f_created = created + (1 + (r >> 48) % 3) * 86_400 * US
            fulfillments.append({"id": FULFILLMENT_BASE + o + 1, "status": "SUCCESS", "company": carrier,
                                 "number": tracking, "url": track_url + tracking, "created_us": f_created,
                                 "updated_us": f_created})
        refunds = []
        if refunded:
            refunds.append({"id": REFUND_BASE + o + 1, "amount_cents": refunded,
                            "created_us": created + 10 * 86_400 * US})
        email = cust["email"] if cust else f"guest.{o + 1}@example.com"
        addr = cust["address"] if cust else self.address(r, "Guest", "Buyer", 500_000_000 + o)
        rec: dict[str, Any] = {
            "index": o,
            "id": self.orders.legacy_id(o),
            "name": f"#{1001 + o}",
            "order_number": 1001 + o,
            "email": email,
            "phone": cust["phone"] if cust else None,
            "customer_index": customer_index if cust else None,
            "customer_id": cust["id"] if cust else None,
            "currency": self.spec.currency,
            "financial_status": financial,
            "fulfillment_status": fulfillment,
            "subtotal_cents": subtotal,
            "discount_cents": discount,
            "shipping_cents": shipping,
            "tax_cents": tax,
            "total_cents": total,
            "refunded_cents": refunded,
            "line_items": lines,
            "shipping_address": addr,
            "billing_address": addr,
            "tags": _order_tags(r),
            "note": None,
            "source_name": "web",
            "source_identifier": None,
            "custom_attributes": [],
            "fulfillments": fulfillments,
            "refunds": refunds,
            "created_us": created,
            "processed_us": created,
            "updated_us": self.orders.updated[o],
            "cancelled_us": cancelled,
            "closed_us": closed,
        }
        rec.update({k: v for k, v in ov.items() if k not in ("customer_index", "line_items")})
        return rec, cust

    def _base_lines(self, o: int, r: int) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        n = 1 + (r >> 4) % max(1, min(self.spec.line_items_per_order, MAX_CHILDREN))
        for k in range(n):
            lr = _h(self.seed, "line", o, k)
            qty = 1 + lr % 3
            if self.spec.products:
                pi = (lr >> 8) % self.spec.products
                base = self._product_base_only(pi)
                vk = (lr >> 32) % max(1, min(self.spec.variants_per_product, MAX_CHILDREN))
                price = int(base["base_price_cents"]) + vk * 100
                title, vendor = str(base["title"]), str(base["vendor"])
                product_id: int | None = self.products.legacy_id(pi)
                variant_id: int | None = VARIANT_BASE + pi * MAX_CHILDREN + vk
                sku: str | None = f"{_sku_prefix(vendor)}-{pi + 1:06d}-{vk + 1:02d}"
                variant_title = None if self.spec.variants_per_product <= 1 else _SIZES[vk % len(_SIZES)]
            else:
                price, title, vendor = 1999, "Custom item", None
                product_id = variant_id = None
                sku = variant_title = None
            discount = (price * qty) // 10 if (lr >> 40) % 5 == 0 else 0
            lines.append({"id": LINE_ITEM_BASE + o * MAX_CHILDREN + k, "title": title, "vendor": vendor,
                          "sku": sku, "quantity": qty, "price_cents": price, "discount_cents": discount,
                          "product_id": product_id, "variant_id": variant_id, "variant_title": variant_title})
        return lines

    def _product_base_only(self, i: int) -> dict[str, Any]:
        # Orders keep the title and price the product had when it was bought, not later overrides.
        r = _h(self.seed, "product", i)
        noun, _ = _pick(_NOUN, r, 16)
        return {"title": f"{_pick(_ADJ, r)} {_pick(_MATERIAL, r, 8)} {noun}", "vendor": _pick(_VENDORS, r, 32),
                "base_price_cents": 500 + ((r >> 48) % 150) * 100 + 99}

    # --- pagination --------------------------------------------------------------------------------------

    def field_value(self, table: Table, i: int, name: str) -> SearchValue:
        if name == "updated_at":
            return table.updated[i]
        if table is self.orders and name not in ("created_at", "updated_at"):
            return self._order_search_value(i, name)
        if name in ("created_at", "processed_at"):
            return table.created[i]
        if name == "status" and table is self.products:
            return str(self.product(i)["status"])
        if name == "text" and table is self.products:
            return str(self.product(i)["title"])
        if name in ("email", "phone") and table is self.customers:
            value = self.customer(i)[name]
            return None if value is None else str(value)
        return None

    def _order_search_value(self, o: int, name: str) -> SearchValue:
        """What an order search term compares (``search.SEARCH_FIELDS["order"]``), cheapest source first."""
        ov = self.orders.overrides.get(o, {})
        if name == "tag":
            return list(ov["tags"]) if "tags" in ov else _order_tags(_h(self.seed, "order", o))
        if name in ("source_identifier", "source_name"):
            return ov.get(name, None if name == "source_identifier" else "web")
        if name == "name":
            return str(ov.get("name") or f"#{1001 + o}").lstrip("#")
        if name == "processed_at":
            return int(ov.get("processed_us", self.orders.created[o]))
        if name == "email":
            email = ov["email"] if "email" in ov else self.order(o)["email"]
            return None if email is None else str(email)
        if name == "financial_status":
            return str(self.order_money(o)["financial"])
        if name == "customer_id":
            customer = self.order_money(o)["customer_index"]
            return None if customer is None else str(self.customers.legacy_id(customer))
        if name == "fulfillment_status":
            return _FULFILLMENT_SEARCH.get(str(self.order_money(o)["fulfillment"]), [])
        return None

    def page(self, table: Table, *, first: int | None, after: str | None, last: int | None, before: str | None,
             sort_key: str, reverse: bool, flt: SearchFilter, visible: Callable[[int], bool] | None = None) -> Page:
        """One page of a connection; cursors carry (last_id, sort value) so they survive inserts/deletes."""
        order = table.ordered(sort_key)
        n = len(order)

        def key(pos: int) -> tuple[int, int]:
            i = order[pos]
            return table.sort_value(i, sort_key), table.legacy_id(i)

        def pos_after(cursor: str) -> int:
            decoded = decode_cursor(cursor)
            if decoded is None:
                raise ValueError("Invalid cursor")
            last_id, value = decoded
            target = (int(value) if isinstance(value, int) else 0, last_id)
            return bisect.bisect_right(range(n), target, key=key)

        def ok(i: int) -> bool:
            if i in table.deleted or (visible is not None and not visible(i)):
                return False
            return flt.empty or flt.matches(functools.partial(self.field_value, table, i), table.legacy_id(i))

        lo_bound = 0
        if sort_key == "UPDATED_AT" and "updated_at" in flt.time_bounds and flt.time_bounds["updated_at"][0]:
            # Skip straight to the first candidate: the common incremental-sync shape stays O(page).
            lo_time = int(flt.time_bounds["updated_at"][0] or 0)
            lo_bound = bisect.bisect_left(range(n), (lo_time, -1), key=key)
        positions: list[int] = []
        forward = last is None
        if reverse:
            forward = not forward
        has_more = False
        limit = first if last is None else last
        limit = max(int(limit or 0), 0)
        if forward:
            cursor = after if not reverse else before
            start = max(pos_after(cursor) if cursor else 0, lo_bound)
            stop_cursor = before if not reverse else after
            stop = bisect.bisect_left(range(n), self._cursor_key(stop_cursor), key=key) if stop_cursor else n
            pos = start
            while pos < stop:
                if ok(order[pos]):
                    if len(positions) == limit:
                        has_more = True
                        break
                    positions.append(pos)
                pos += 1
        else:
            cursor = before if not reverse else after
            start = (bisect.bisect_left(range(n), self._cursor_key(cursor), key=key) if cursor else n) - 1
            stop_cursor = after if not reverse else before
            stop = max(pos_after(stop_cursor) if stop_cursor else 0, lo_bound)
            pos = start
            while pos >= stop:
                if ok(order[pos]):
                    if len(positions) == limit:
                        has_more = True
                        break
                    positions.append(pos)
                pos -= 1
        if last is None:
            ordered_positions = positions  # already in output order
        else:
            ordered_positions = list(reversed(positions))
        indexes = [order[p] for p in ordered_positions]
        cursors = [encode_cursor(table.legacy_id(i), table.sort_value(i, sort_key)) for i in indexes]
        if last is None:
            return Page(indexes, has_more, bool(after), cursors)
        return Page(indexes, bool(before), has_more, cursors)

    @staticmethod
    def _cursor_key(cursor: str) -> tuple[int, int]:
        decoded = decode_cursor(cursor)
        if decoded is None:
            raise ValueError("Invalid cursor")
        last_id, value = decoded
        return (int(value) if isinstance(value, int) else 0, last_id)

    def iterate(self, table: Table, flt: SearchFilter, visible: Callable[[int], bool] | None = None) -> Iterator[int]:
        """Every live index matching the filter, in ID order (bulk operations)."""
        for i in range(table.count):
            if i in table.deleted or (visible is not None and not visible(i)):
                continue
            if flt.empty or flt.matches(functools.partial(self.field_value, table, i), table.legacy_id(i)):
                yield i

    def count(self, table: Table, flt: SearchFilter, visible: Callable[[int], bool] | None = None) -> int:
        return sum(1 for _ in self.iterate(table, flt, visible))
