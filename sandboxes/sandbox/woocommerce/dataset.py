"""Deterministic, compact store data: 20,000 products and 20,000 orders without 20,000 dicts.

Every field of product ``i`` is a pure function of ``(seed, i)`` (splitmix64), so a record is rebuilt on demand.
Per-entity state is a few ``array('q')`` columns (post ID, created, modified) — needed to sort and filter — plus
sparse dicts for what tests change. ``resources.py`` turns records into REST objects; ``state.py`` caches the
rendered JSON bytes.

IDs follow WordPress: products, their variations, orders and refunds share one post-ID sequence (a product's
variations are the IDs right after it; orders come after the catalogue), customers are users from ID 2 (1 is the
admin). IDs grow with creation time. Callers hold the sandbox lock; nothing here is thread-safe on its own.
"""

from __future__ import annotations

import functools
import unicodedata
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Catalog", "WooDatasetSpec", "money"]

FIRST_POST_ID = 10  # 1..9: "Hello world!", "Sample Page" and WooCommerce's own pages
FIRST_USER_ID = 2
MAX_VARIATIONS = 36
MAX_LINE_ITEMS = 50

_M64 = (1 << 64) - 1
_SALT = {"product": 0x61, "variation": 0x62, "customer": 0x63, "order": 0x64, "line": 0x65, "time": 0x66,
         "kind": 0x67}

_ADJ = ["Classic", "Everyday", "Vintage", "Modern", "Rustic", "Premium", "Essential", "Urban", "Coastal", "Nordic",
        "Organic", "Handmade", "Lightweight", "Heritage", "Studio", "Alpine", "Canyon", "Midnight", "Café", "Señor"]
_MATERIAL = ["Cotton", "Linen", "Leather", "Wool", "Ceramic", "Oak", "Bamboo", "Steel", "Canvas", "Denim", "Glass",
             "Walnut", "Merino", "Silk", "Cork", "Copper"]
_NOUN = [("T-Shirt", "Clothing"), ("Hoodie", "Clothing"), ("Jacket", "Clothing"), ("Sneakers", "Shoes"),
         ("Boots", "Shoes"), ("Mug", "Kitchen"), ("Bowl", "Kitchen"), ("Cutting Board", "Kitchen"),
         ("Backpack", "Bags"), ("Tote Bag", "Bags"), ("Wallet", "Accessories"), ("Watch Strap", "Accessories"),
         ("Lamp", "Home"), ("Throw Blanket", "Home"), ("Candle", "Home"), ("Notebook", "Stationery"),
         ("Water Bottle", "Outdoor"), ("Beanie", "Clothing"), ("Scarf", "Clothing"), ("Desk Organizer", "Office")]
_CATEGORIES = sorted({c for _, c in _NOUN})
_TAGS = ["new", "sale", "bestseller", "eco", "limited", "gift", "summer", "winter", "clearance", "bundle"]
_SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
_COLORS = ["Black", "White", "Navy", "Olive", "Sand", "Red"]
_FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Lucas", "Mia", "Mateo", "Amelia", "Levi",
          "Harper", "Ezra", "Evelyn", "Luca", "Anna", "Jonas", "Zoë", "Milan", "Nora", "Kenji", "Inès"]
_LAST = ["Smith", "Johnson", "Garcia", "Kovács", "Nagy", "Müller", "Rossi", "Dubois", "Tanaka", "Silva", "Nowak",
         "Jensen", "O'Brien", "Fischer", "Horvat", "Novak", "Larsen", "Martin", "Szabó", "Kim"]
_CITIES = [("New York", "NY", "US", "10001"), ("Austin", "TX", "US", "73301"), ("Toronto", "ON", "CA", "M5H 2N2"),
           ("Budapest", "BU", "HU", "1051"), ("Berlin", "BE", "DE", "10115"), ("London", "", "GB", "EC1A 1BB"),
           ("Sydney", "NSW", "AU", "2000"), ("Paris", "", "FR", "75001")]
_STREETS = ["Main St", "Oak Ave", "Market St", "Andrássy út", "King St W", "High St", "Rue de Rivoli"]
# Order statuses and how often they occur (per 100).
_ORDER_STATUSES = [("completed", 50), ("processing", 22), ("on-hold", 5), ("pending", 6), ("cancelled", 6),
                   ("refunded", 5), ("failed", 6)]
_PAYMENT = [("stripe", "Credit Card (Stripe)"), ("paypal", "PayPal"), ("bacs", "Direct bank transfer"),
            ("cod", "Cash on delivery")]


def _mix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _h(seed: int, salt: str, i: int, j: int = 0) -> int:
    return _mix(_mix(_mix((seed << 8) ^ _SALT[salt]) ^ i) ^ j)


def _pick(seq: Sequence[Any], r: int, shift: int = 0) -> Any:
    return seq[(r >> shift) % len(seq)]


def money(cents: int) -> str:
    """WooCommerce money strings: ``"12.50"``, ``"-5.00"``."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


@functools.lru_cache(maxsize=8192)
def slugify(text: str) -> str:
    """``sanitize_title``-like: ASCII, lower case, dashes."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(p for p in out.split("-") if p)


@dataclass(frozen=True)
class WooDatasetSpec:
    """What one store contains. Equal specs give identical data (timestamps follow the store clock's start)."""

    seed: int = 1
    products: int = 50
    variable_share: float = 0.3  # share of products that are "variable" (with variations)
    variations_per_product: int = 3
    customers: int = 20
    orders: int = 40
    line_items_per_order: int = 3  # each order gets 1..N line items
    history_days: int = 365
    currency: str = "USD"
    guest_share: float = 0.3  # orders placed without an account (customer_id 0)

    def __post_init__(self) -> None:
        for name in ("products", "customers", "orders"):
            if getattr(self, name) < 0:
                raise ValueError(f"WooDatasetSpec.{name} must be >= 0")
        if not 0.0 <= self.variable_share <= 1.0 or not 0.0 <= self.guest_share <= 1.0:
            raise ValueError("WooDatasetSpec shares must be between 0 and 1")
        if not 1 <= self.variations_per_product <= MAX_VARIATIONS:
            raise ValueError(f"variations_per_product must be 1..{MAX_VARIATIONS}")
        if not 1 <= self.line_items_per_order <= MAX_LINE_ITEMS:
            raise ValueError(f"line_items_per_order must be 1..{MAX_LINE_ITEMS}")


class Catalog:
    """All data of one store. ``i``/``o``/``j`` are 0-based indexes; IDs are what the API shows."""

    def __init__(self, spec: WooDatasetSpec, anchor_s: int) -> None:
        self.spec = spec
        self.seed = spec.seed
        self.anchor_s = anchor_s
        span = spec.history_days * 86_400
        self.start_s = anchor_s - span
        next_id = FIRST_POST_ID
        # products (+ variations right after each parent)
        self.p_ids = array("q")
        self.p_nvar = array("b")  # 0: simple
        self.p_created = array("q")
        self.p_modified = array("q")
        self.p_index: dict[int, int] = {}
        self.v_index: dict[int, tuple[int, int]] = {}
        for i in range(spec.products):
            r = _h(self.seed, "kind", i)
            nvar = spec.variations_per_product if (r % 10_000) < spec.variable_share * 10_000 else 0
            self._add_product(next_id, nvar, *self._times("product", i, spec.products))
            next_id += 1 + nvar
        # orders
        self.o_ids = array("q")
        self.o_created = array("q")
        self.o_modified = array("q")
        self.o_index: dict[int, int] = {}
        for o in range(spec.orders):
            created, modified = self._times("order", o, spec.orders)
            self._add_order(next_id, created, modified)
            next_id += 1
        self.next_post_id = next_id
        # customers
        self.c_ids = array("q")
        self.c_created = array("q")
        self.c_modified = array("q")
        self.c_index: dict[int, int] = {}
        for j in range(spec.customers):
            self._add_customer(FIRST_USER_ID + j, *self._times("customer", j, spec.customers))
        self.next_user_id = FIRST_USER_ID + spec.customers
        # what tests change
        self.p_over: dict[int, dict[str, Any]] = {}
        self.v_over: dict[tuple[int, int], dict[str, Any]] = {}
        self.v_modified: dict[tuple[int, int], int] = {}
        self.o_over: dict[int, dict[str, Any]] = {}
        self.c_over: dict[int, dict[str, Any]] = {}
        self.p_gone: set[int] = set()  # force-deleted (404); trashed ones keep status "trash"
        self.o_gone: set[int] = set()
        self.c_gone: set[int] = set()
        self.extra_refunds: dict[int, list[dict[str, Any]]] = {}
        self.next_item_id = 1 + spec.orders * MAX_LINE_ITEMS
        self._customer_orders: dict[int, int] | None = None

    # --- construction --------------------------------------------------------------------------------------

    def _times(self, kind: str, i: int, n: int) -> tuple[int, int]:
        span = self.anchor_s - self.start_s
        r = _h(self.seed, "time", i, _SALT[kind])
        # IDs grow with creation time; modified lies between creation and the anchor.
        created = self.start_s + (span * i) // max(n, 1) + (r % max(span // max(n, 1), 1)) // 2
        created = min(created, self.anchor_s - 60)
        modified = created if r % 4 == 0 else created + ((r >> 20) % max(self.anchor_s - created, 1))
        return created, modified

    def _add_product(self, post_id: int, nvar: int, created: int, modified: int) -> int:
        i = len(self.p_ids)
        self.p_ids.append(post_id)
        self.p_nvar.append(nvar)
        self.p_created.append(created)
        self.p_modified.append(modified)
        self.p_index[post_id] = i
        for k in range(nvar):
            self.v_index[post_id + 1 + k] = (i, k)
        return i

    def _add_order(self, post_id: int, created: int, modified: int) -> int:
        o = len(self.o_ids)
        self.o_ids.append(post_id)
        self.o_created.append(created)
        self.o_modified.append(modified)
        self.o_index[post_id] = o
        return o

    def _add_customer(self, user_id: int, created: int, modified: int) -> int:
        j = len(self.c_ids)
        self.c_ids.append(user_id)
        self.c_created.append(created)
        self.c_modified.append(modified)
        self.c_index[user_id] = j
        return j

    def new_product(self, nvar: int, now_s: int) -> int:
        i = self._add_product(self.next_post_id, nvar, now_s, now_s)
        self.next_post_id += 1 + nvar
        return i

    def new_order(self, now_s: int) -> int:
        o = self._add_order(self.next_post_id, now_s, now_s)
        self.next_post_id += 1
        self._customer_orders = None
        return o

    def new_customer(self, now_s: int) -> int:
        j = self._add_customer(self.next_user_id, now_s, now_s)
        self.next_user_id += 1
        return j

    def new_post_id(self) -> int:
        pid = self.next_post_id
        self.next_post_id += 1
        return pid

    def new_item_id(self) -> int:
        iid = self.next_item_id
        self.next_item_id += 1
        return iid

    # --- records ---------------------------------------------------------------------------------------------

    @staticmethod
    def _product_status(r: int) -> str:
        roll = (r >> 24) % 100
        return "publish" if roll < 88 else "draft" if roll < 96 else "private"

    def product_status(self, i: int) -> str:
        """Cheap: what list filters need, without building the record."""
        over = self.p_over.get(i)
        if over is not None and "status" in over:
            return str(over["status"])
        return self._product_status(_h(self.seed, "product", i))

    def product(self, i: int) -> dict[str, Any]:
        r = _h(self.seed, "product", i)
        noun, category = _pick(_NOUN, r, 16)
        name = f"{_pick(_ADJ, r)} {_pick(_MATERIAL, r, 8)} {noun}"
        nvar = int(self.p_nvar[i])
        regular = 500 + ((r >> 48) % 150) * 100 + 99
        manage = (r >> 30) % 10 < 7
        rec: dict[str, Any] = {
            "name": name,
            "slug": f"{slugify(name)}-{self.p_ids[i]}",
            "type": "variable" if nvar else "simple",
            "status": self._product_status(r),
            "featured": (r >> 33) % 20 == 0,
            "description": f"<p>{name}. Made to last.</p>",
            "short_description": f"<p>{noun} in {_pick(_MATERIAL, r, 8).lower()}.</p>",
            "sku": f"WC-{self.p_ids[i]:06d}",
            "regular_cents": regular,
            "sale_cents": regular - 500 if (r >> 36) % 5 == 0 else None,
            "manage_stock": manage and not nvar,
            "stock_quantity": int((r >> 40) % 80) - 5 if manage and not nvar else None,
            "category": category,
            "tags": sorted({_pick(_TAGS, r, 44 + 4 * t) for t in range((r >> 56) % 3)}),
            "weight": f"{0.1 + ((r >> 52) % 30) / 10:.1f}",
            "total_sales": int((r >> 12) % 400),
            "nvar": nvar,
        }
        rec.update(self.p_over.get(i, {}))
        return rec

    def variation(self, i: int, k: int) -> dict[str, Any]:
        r = _h(self.seed, "variation", i, k)
        nvar = int(self.p_nvar[i])
        size = _SIZES[k % len(_SIZES)]
        options: list[tuple[str, str]] = [("Size", size)]
        if nvar > len(_SIZES):
            options.append(("Color", _COLORS[(k // len(_SIZES)) % len(_COLORS)]))
        pr = _h(self.seed, "product", i)
        regular = 500 + ((pr >> 48) % 150) * 100 + 99 + k * 100
        rec: dict[str, Any] = {
            "sku": f"WC-{self.p_ids[i]:06d}-{k + 1:02d}",
            "regular_cents": regular,
            "sale_cents": regular - 300 if (r >> 8) % 6 == 0 else None,
            "manage_stock": True,
            "stock_quantity": int((r >> 16) % 60) - 3,
            "options": options,
            "weight": "",
            "status": "publish",
            "description": "",
        }
        rec.update(self.v_over.get((i, k), {}))
        return rec

    def variation_created(self, i: int, k: int) -> int:
        return int(self.p_created[i])

    def variation_modified(self, i: int, k: int) -> int:
        return self.v_modified.get((i, k), int(self.p_created[i]))

    def customer(self, j: int) -> dict[str, Any]:
        r = _h(self.seed, "customer", j)
        first, last = _pick(_FIRST, r), _pick(_LAST, r, 8)
        user_id = int(self.c_ids[j])
        email = f"{slugify(first)}.{slugify(last)}.{user_id}@example.com"
        city, state, country, postcode = _pick(_CITIES, r, 12)
        address = {
            "first_name": first, "last_name": last, "company": "" if (r >> 20) % 5 else "Acme Ltd",
            "address_1": f"{1 + (r >> 24) % 999} {_pick(_STREETS, r, 34)}",
            "address_2": "" if (r >> 38) % 3 else f"Apt {(r >> 40) % 90 + 1}",
            "city": city, "state": state, "postcode": postcode, "country": country,
        }
        phone = f"+1555{(r >> 44) % 10_000_000:07d}"
        rec: dict[str, Any] = {
            "email": email,
            "first_name": first,
            "last_name": last,
            "username": f"{slugify(first)}{user_id}",
            "role": "customer",
            "billing": {**address, "email": email, "phone": phone},
            "shipping": {**address, "phone": phone if (r >> 50) % 2 else ""},
            "is_paying_customer": (r >> 52) % 4 != 0,
        }
        rec.update(self.c_over.get(j, {}))
        return rec

    @staticmethod
    def _order_status(r: int) -> str:
        roll = r % 100
        for name, share in _ORDER_STATUSES:
            if roll < share:
                return name
            roll -= share
        return "completed"

    def order_status(self, o: int) -> str:
        over = self.o_over.get(o)
        if over is not None and "status" in over:
            return str(over["status"])
        return self._order_status(_h(self.seed, "order", o))

    def order(self, o: int) -> dict[str, Any]:
        r = _h(self.seed, "order", o)
        status = self._order_status(r)
        customer = None
        if self.c_ids and (r >> 8) % 10_000 >= self.spec.guest_share * 10_000:
            customer = int((r >> 20) % len(self.c_ids))
        lines: list[dict[str, Any]] = []
        nlines = 1 + (r >> 28) % self.spec.line_items_per_order if self.p_ids else 0
        for n in range(nlines):
            lr = _h(self.seed, "line", o, n)
            i = int(lr % len(self.p_ids))
            nvar = int(self.p_nvar[i])
            k = int((lr >> 20) % nvar) if nvar else None
            lines.append({"id": 1 + o * MAX_LINE_ITEMS + n, "product_index": i, "variation_index": k,
                          "quantity": 1 + int((lr >> 32) % 3)})
        created = int(self.o_created[o])
        modified = int(self.o_modified[o])
        paid = status in ("processing", "completed", "refunded")
        rec: dict[str, Any] = {
            "status": status,
            "customer_index": customer,
            "line_items": lines,
            "discount_pct": 10 if (r >> 40) % 6 == 0 else 0,
            "shipping_cents": 0 if (r >> 44) % 4 == 0 else 599,
            "payment": _pick(_PAYMENT, r, 48),
            "date_paid": min(created + 60 + int((r >> 52) % 600), modified) if paid else None,
            "date_completed": modified if status in ("completed", "refunded") else None,
            "partial_refund": status == "completed" and (r >> 56) % 10 == 0,
            "customer_note": "" if (r >> 60) % 8 else "Please leave at the door.",
        }
        rec.update(self.o_over.get(o, {}))
        return rec

    def customer_order_counts(self) -> dict[int, int]:
        """Customer index -> number of orders (for ``is_paying_customer`` and filters)."""
        if self._customer_orders is None:
            counts: dict[int, int] = {}
            for o in range(len(self.o_ids)):
                c = self.order(o)["customer_index"]
                if c is not None:
                    counts[c] = counts.get(c, 0) + 1
            self._customer_orders = counts
        return self._customer_orders

    # --- helpers ---------------------------------------------------------------------------------------------

    @staticmethod
    def categories() -> list[str]:
        return list(_CATEGORIES)

    @staticmethod
    def tags() -> list[str]:
        return list(_TAGS)
