"""``WooSandbox`` and ``WooStore``: everything tests poke at.

One re-entrant lock (``sandbox.lock``) guards all state; HTTP handlers, the webhook dispatcher and test code take
it. Store helpers change data like a merchant would: ``date_modified`` moves to the store clock (MySQL seconds,
never backwards — two changes within one second share a timestamp, as on a real site) and the matching webhook
topics are queued.
"""

# long module: WooStore and WooSandbox are the one-lock state tests drive; their helpers are a single API.

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from ssl import SSLContext, create_default_context
from typing import Any

from sandbox.woocommerce.auth import ApiKey
from sandbox.woocommerce.clock import StoreClock
from sandbox.woocommerce.dataset import MAX_LINE_ITEMS, MAX_VARIATIONS, Catalog, WooDatasetSpec, slugify
from sandbox.woocommerce.faults import WooFaults
from sandbox.woocommerce.php import php_json, wp_error
from sandbox.woocommerce.resources import Resources
from sandbox.woocommerce.webhooks import Delivery, WooWebhook, WooWebhookDispatcher, valid_topic

__all__ = ["ORDER_STATUSES", "PRODUCT_STATUSES", "RequestRecord", "WooSandbox", "WooStore"]

PRODUCT_STATUSES = ("publish", "draft", "pending", "private", "future")
ORDER_STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed",
                  "checkout-draft")
_PRODUCT_FIELDS = {"name", "slug", "status", "featured", "description", "short_description", "sku", "regular_price",
                   "sale_price", "manage_stock", "stock_quantity", "stock_status", "weight", "tags", "category",
                   "total_sales"}
_VARIATION_FIELDS = {"sku", "regular_price", "sale_price", "manage_stock", "stock_quantity", "stock_status",
                     "status", "description", "weight"}
_CUSTOMER_FIELDS = {"email", "first_name", "last_name", "username", "role", "billing", "shipping",
                    "is_paying_customer"}
_ORDER_FIELDS = {"status", "customer_note", "billing", "shipping", "currency", "number"}


@dataclass
class RequestRecord:
    at: float
    method: str
    path: str
    store: str | None
    status: int
    duration: float
    auth: str | None = None  # "basic" | "query" | "oauth1"
    endpoint: str = "other"
    fault: str | None = None
    query: str = ""


def _cents(value: Any, what: str) -> int:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{what} must be a decimal amount like '12.50', not {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{what} must be a non-negative amount, not {value!r}")
    return int((amount * 100).to_integral_value())


def _unknown(fields: dict[str, Any], allowed: set[str], what: str) -> None:
    extra = sorted(set(fields) - allowed)
    if extra:
        raise ValueError(f"unknown {what} field(s) {', '.join(extra)}; supported: {', '.join(sorted(allowed))}")


class WooStore:
    """One WordPress site: its WooCommerce data, API keys, webhooks, clock and request counters."""

    def __init__(self, sandbox: WooSandbox, name: str, spec: WooDatasetSpec, *, wc_version: str, wp_version: str,
                 rest_api: bool, is_woocommerce: bool, utc_offset_hours: float, title: str | None,
                 legacy_api: bool | None, variation_bumps_parent: bool) -> None:
        self.sandbox = sandbox
        self.name = name
        self.spec = spec
        self.wc_version = wc_version
        self.wp_version = wp_version
        self.rest_api = rest_api
        self.is_woocommerce = is_woocommerce
        self.utc_offset_s = int(round(utc_offset_hours * 3600))
        self.currency = spec.currency
        self.title = title or name.replace("-", " ").title()
        # The legacy /wc-api/v3 left core in WooCommerce 9.0; older stores (and legacy-only ones) still answer it.
        self.legacy_api = legacy_api if legacy_api is not None else (
            is_woocommerce and (not rest_api or _version_tuple(wc_version) < (9, 0)))
        self.variation_bumps_parent = variation_bumps_parent
        self.clock = StoreClock()
        self.catalog = Catalog(spec, self.clock.now_s())
        self.res = Resources(self)
        self.keys: dict[str, ApiKey] = {}
        self.webhooks: dict[int, WooWebhook] = {}
        self._next_key_id = 1
        self._next_webhook_id = 1
        self._salt = secrets.token_hex(16)
        self.concurrent_requests = 0
        self.max_concurrent_requests = 0
        self.versions: Counter[str] = Counter()
        self._cache: dict[tuple[Any, ...], bytes] = {}
        self._sorted: dict[tuple[Any, ...], tuple[int, list[int]]] = {}

    # --- identity ------------------------------------------------------------------------------------------

    @property
    def home_url(self) -> str:
        base = self.sandbox.base_url or "http://127.0.0.1"
        return f"{base}/stores/{self.name}"

    @property
    def rest_url(self) -> str:
        return f"{self.home_url}/wp-json"

    @property
    def user_agent(self) -> str:
        return f"WooCommerce/{self.wc_version} Hookshot (WordPress/{self.wp_version})"

    @property
    def lock(self) -> threading.RLock:
        return self.sandbox.lock

    def reset_concurrency(self) -> None:
        self.max_concurrent_requests = self.concurrent_requests

    # --- API keys and webhooks -----------------------------------------------------------------------------

    def add_key(self, permissions: str = "read_write", description: str = "shopsync") -> tuple[str, str]:
        """A REST API key (WooCommerce > Settings > Advanced > REST API) -> (consumer_key, consumer_secret)."""
        with self.lock:
            key = ApiKey.generate(self._next_key_id, permissions, description)
            self._next_key_id += 1
            self.keys[key.consumer_key] = key
            return key.consumer_key, key.consumer_secret

    def revoke_key(self, consumer_key: str) -> None:
        with self.lock:
            if self.keys.pop(consumer_key, None) is None:
                raise KeyError(f"no API key {consumer_key[-7:]!r} in store {self.name}")

    def add_webhook(self, topic: str, delivery_url: str, *, secret: str | None = None, name: str | None = None,
                    status: str = "active") -> WooWebhook:
        """Create a webhook directly (no ping; ``POST /webhooks`` pings)."""
        if not valid_topic(topic):
            raise ValueError(f"invalid webhook topic {topic!r}")
        if status not in ("active", "paused", "disabled"):
            raise ValueError(f"invalid webhook status {status!r}")
        with self.lock:
            now = self.clock.now_s()
            label = name or f"Webhook created on {time.strftime('%b %d, %Y @ %I:%M %p', time.gmtime(now))}"
            wh = WooWebhook(self._next_webhook_id, self.name, label, topic, delivery_url,
                            secret or secrets.token_urlsafe(37)[:50], now, now, status)
            self._next_webhook_id += 1
            self.webhooks[wh.id] = wh
            return wh

    def webhook(self, webhook_id: int) -> WooWebhook:
        with self.lock:
            wh = self.webhooks.get(webhook_id)
            if wh is None:
                raise KeyError(f"no webhook {webhook_id} in store {self.name}")
            return wh

    def delivery_id(self, webhook_id: int) -> str:
        """``wp_hash($webhook_id . strtotime('now'))``: equal within one second."""
        data = f"{webhook_id}{self.clock.now_s()}"
        if self.sandbox.unique_delivery_ids:
            self.sandbox._delivery_seq += 1
            data += f"#{self.sandbox._delivery_seq}"
        return hmac.new(self._salt.encode(), data.encode(), hashlib.md5).hexdigest()

    def _emit(self, topic: str, arg: int) -> int:
        hooks = [wh for wh in self.webhooks.values() if wh.topic == topic and wh.status == "active"]
        return self.sandbox.webhooks.enqueue([Delivery(self.name, wh.id, topic, arg) for wh in hooks])

    def webhook_body(self, webhook: WooWebhook, arg: int) -> bytes:
        """The delivery body, built now (WooCommerce builds it when the queued action runs)."""
        if webhook.event == "deleted":
            return php_json({"id": arg})
        if webhook.resource == "action":
            return php_json({"action": webhook.hooks[0] if webhook.hooks else "", "arg": arg})
        body = self.rest_json(webhook.resource, arg)
        return body if body is not None else php_json({})

    # --- rendering and caches ------------------------------------------------------------------------------

    def clear_caches(self) -> None:
        with self.lock:
            self._cache.clear()

    def cached(self, key: tuple[Any, ...], build: Callable[[], dict[str, Any]]) -> bytes:
        """The object's JSON bytes, rendered once and reused until it changes."""
        raw = self._cache.get(key)
        if raw is None:
            raw = php_json(build())
            self._cache[key] = raw
        return raw

    def product_json(self, i: int) -> bytes:
        return self.cached(("p", i), lambda: self.res.product(i))

    def variation_json(self, i: int, k: int) -> bytes:
        return self.cached(("v", i, k), lambda: self.res.variation(i, k))

    def variation_as_product_json(self, i: int, k: int) -> bytes:
        return self.cached(("pv", i, k), lambda: self.res.variation_as_product(i, k))

    def customer_json(self, j: int) -> bytes:
        return self.cached(("c", j), lambda: self.res.customer(j))

    def order_json(self, o: int) -> bytes:
        return self.cached(("o", o), lambda: self.res.order(o))

    def rest_json(self, resource: str, object_id: int) -> bytes | None:
        """``GET /wc/v3/{resource}s/{id}`` body, or the 404 error body; None for unknown resources."""
        cat = self.catalog
        if resource == "product":
            i = cat.p_index.get(object_id)
            if i is not None and i not in cat.p_gone:
                return self.product_json(i)
            vk = cat.v_index.get(object_id)
            if vk is not None and vk[0] not in cat.p_gone:
                return self.variation_as_product_json(*vk)
            return php_json(wp_error("woocommerce_rest_product_invalid_id", "Invalid ID.", 404))
        if resource == "order":
            o = cat.o_index.get(object_id)
            if o is not None and o not in cat.o_gone:
                return self.order_json(o)
            return php_json(wp_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404))
        if resource == "customer":
            j = cat.c_index.get(object_id)
            if j is not None and j not in cat.c_gone:
                return self.customer_json(j)
            return php_json(wp_error(*self.customer_not_found()))
        return None

    def customer_not_found(self) -> tuple[str, str, int]:
        # WooCommerce 8.x resolves customers through Users::get_user_in_current_site (wc_user_invalid_id).
        if _version_tuple(self.wc_version) >= (8, 0):
            return "wc_user_invalid_id", "Invalid user ID.", 404
        return "woocommerce_rest_invalid_id", "Invalid resource ID.", 404

    def _changed(self, kind: str, *keys: tuple[Any, ...]) -> None:
        for key in keys:
            self._cache.pop(key, None)
        self.versions[kind] += 1

    def sorted_indexes(self, kind: str, key: str, build: Callable[[], list[int]]) -> list[int]:
        """Index order for a list sort, cached until the kind's data changes."""
        version = self.versions[kind]
        cached = self._sorted.get((kind, key))
        if cached is not None and cached[0] == version:
            return cached[1]
        order = build()
        self._sorted[(kind, key)] = (version, order)
        return order

    # --- lookups -------------------------------------------------------------------------------------------

    def _product_index(self, product_id: int) -> int:
        i = self.catalog.p_index.get(int(product_id))
        if i is None or i in self.catalog.p_gone:
            if int(product_id) in self.catalog.v_index:
                raise KeyError(f"{product_id} is a variation in store {self.name}; use update_variation")
            raise KeyError(f"no product {product_id} in store {self.name}")
        return i

    def _variation_index(self, product_id: int, variation_id: int) -> tuple[int, int]:
        i = self._product_index(product_id)
        vk = self.catalog.v_index.get(int(variation_id))
        if vk is None or vk[0] != i:
            raise KeyError(f"no variation {variation_id} of product {product_id} in store {self.name}")
        return vk

    def _order_index(self, order_id: int) -> int:
        o = self.catalog.o_index.get(int(order_id))
        if o is None or o in self.catalog.o_gone:
            raise KeyError(f"no order {order_id} in store {self.name}")
        return o

    def _customer_index(self, customer_id: int) -> int:
        j = self.catalog.c_index.get(int(customer_id))
        if j is None or j in self.catalog.c_gone:
            raise KeyError(f"no customer {customer_id} in store {self.name}")
        return j

    def product_ids(self, *, include_trashed: bool = False) -> list[int]:
        with self.lock:
            cat = self.catalog
            return [int(cat.p_ids[i]) for i in range(len(cat.p_ids)) if i not in cat.p_gone
                    and (include_trashed or cat.product(i)["status"] != "trash")]

    def variation_ids(self, product_id: int) -> list[int]:
        with self.lock:
            i = self._product_index(product_id)
            return [int(self.catalog.p_ids[i]) + 1 + k for k in range(int(self.catalog.p_nvar[i]))]

    def variable_product_ids(self) -> list[int]:
        with self.lock:
            cat = self.catalog
            return [int(cat.p_ids[i]) for i in range(len(cat.p_ids)) if cat.p_nvar[i] and i not in cat.p_gone]

    def customer_ids(self) -> list[int]:
        with self.lock:
            cat = self.catalog
            return [int(cat.c_ids[j]) for j in range(len(cat.c_ids)) if j not in cat.c_gone]

    def order_ids(self, *, include_trashed: bool = False) -> list[int]:
        with self.lock:
            cat = self.catalog
            return [int(cat.o_ids[o]) for o in range(len(cat.o_ids)) if o not in cat.o_gone
                    and (include_trashed or cat.order(o)["status"] != "trash")]

    def product(self, product_id: int) -> dict[str, Any]:
        """The product as ``GET /products/{id}`` returns it (a variation ID gives the variation as a product)."""
        with self.lock:
            cat = self.catalog
            vk = cat.v_index.get(int(product_id))
            if vk is not None and vk[0] not in cat.p_gone:
                return self.res.variation_as_product(*vk)
            return self.res.product(self._product_index(product_id))

    def variation(self, product_id: int, variation_id: int) -> dict[str, Any]:
        with self.lock:
            return self.res.variation(*self._variation_index(product_id, variation_id))

    def customer(self, customer_id: int) -> dict[str, Any]:
        with self.lock:
            return self.res.customer(self._customer_index(customer_id))

    def order(self, order_id: int) -> dict[str, Any]:
        with self.lock:
            return self.res.order(self._order_index(order_id))

    # --- products ------------------------------------------------------------------------------------------

    def _product_overrides(self, fields: dict[str, Any], allowed: set[str], what: str) -> dict[str, Any]:
        _unknown(fields, allowed, what)
        out: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "regular_price":
                out["regular_cents"] = _cents(value, "regular_price")
            elif key == "sale_price":
                out["sale_cents"] = None if value in (None, "") else _cents(value, "sale_price")
            elif key == "stock_quantity":
                out[key] = None if value is None else int(value)
            elif key == "status":
                allowed_status = PRODUCT_STATUSES if what == "product" else ("publish", "private")
                if value not in allowed_status:
                    raise ValueError(f"{what} status must be one of {', '.join(allowed_status)}, not {value!r}")
                out[key] = value
            elif key in ("manage_stock", "featured"):
                out[key] = bool(value)
            elif key == "tags":
                out[key] = sorted(str(t) for t in value)
            else:
                out[key] = value
        return out

    def update_product(self, product_id: int, *, emit: bool = True, **fields: Any) -> dict[str, Any]:
        """Change product fields (name, status, sku, regular_price, sale_price, stock_quantity, manage_stock,
        description, tags, ...): ``date_modified`` moves to the store clock; ``product.updated`` is queued."""
        with self.lock:
            i = self._product_index(product_id)
            overrides = self._product_overrides(fields, _PRODUCT_FIELDS, "product")
            cat = self.catalog
            cat.p_over.setdefault(i, {}).update(overrides)
            cat.p_modified[i] = max(self.clock.now_s(), int(cat.p_modified[i]))
            self._changed("product", ("p", i))
            if emit:
                self._emit("product.updated", int(cat.p_ids[i]))
            return self.res.product(i)

    def update_variation(self, product_id: int, variation_id: int, *, emit: bool = True,
                         **fields: Any) -> dict[str, Any]:
        """Change a variation (regular_price, sale_price, stock_quantity, sku, ...). Like WooCommerce: its own
        ``date_modified`` moves, the parent's does not (unless ``variation_bumps_parent``), and ``product.updated``
        is queued with the *variation's* ID."""
        with self.lock:
            i, k = self._variation_index(product_id, variation_id)
            overrides = self._product_overrides(fields, _VARIATION_FIELDS, "variation")
            cat = self.catalog
            cat.v_over.setdefault((i, k), {}).update(overrides)
            now = self.clock.now_s()
            cat.v_modified[(i, k)] = max(now, cat.variation_modified(i, k))
            if self.variation_bumps_parent:
                cat.p_modified[i] = max(now, int(cat.p_modified[i]))
            self._changed("product", ("p", i), ("v", i, k), ("pv", i, k))
            if emit:
                self._emit("product.updated", int(variation_id))
            return self.res.variation(i, k)

    def create_product(self, name: str | None = None, *, type: str = "simple", variations: int | None = None,
                       emit: bool = True, **fields: Any) -> int:
        """A new product (``type="variable"`` gets ``variations`` variations). Queues ``product.created`` for the
        product and, like WooCommerce's ``woocommerce_new_product_variation`` hook, for each variation."""
        if type not in ("simple", "variable"):
            raise ValueError("type must be 'simple' or 'variable'")
        nvar = 0
        if type == "variable":
            nvar = self.spec.variations_per_product if variations is None else int(variations)
            if not 1 <= nvar <= MAX_VARIATIONS:
                raise ValueError(f"variations must be 1..{MAX_VARIATIONS}")
        with self.lock:
            overrides = self._product_overrides(fields, _PRODUCT_FIELDS, "product")
            if name is not None:
                overrides["name"] = name
            cat = self.catalog
            i = cat.new_product(nvar, self.clock.now_s())
            cat.p_over[i] = overrides
            pid = int(cat.p_ids[i])
            if "slug" not in overrides:
                cat.p_over[i]["slug"] = f"{slugify(cat.product(i)['name'])}-{pid}"
            self._changed("product")
            if emit:
                self._emit("product.created", pid)
                for k in range(nvar):
                    self._emit("product.created", pid + 1 + k)
            return pid

    def delete_product(self, product_id: int, *, force: bool = False, emit: bool = True) -> None:
        """Trash the product (``product.deleted`` with ``{"id": N}``). ``force=True`` deletes it for good: it
        404s afterwards and, as in WooCommerce (the topic hooks ``wp_trash_post`` only), no webhook is sent."""
        with self.lock:
            i = self._product_index(product_id)
            cat = self.catalog
            if force:
                cat.p_gone.add(i)
            else:
                if cat.product(i)["status"] == "trash":
                    raise ValueError(f"product {product_id} is already in the trash")
                over = cat.p_over.setdefault(i, {})
                over["_before_trash"] = cat.product(i)["status"]
                over["status"] = "trash"
                cat.p_modified[i] = max(self.clock.now_s(), int(cat.p_modified[i]))
            self._changed("product", ("p", i), *[("pv", i, k) for k in range(int(cat.p_nvar[i]))])
            if emit and not force:
                self._emit("product.deleted", int(product_id))

    def restore_product(self, product_id: int, *, emit: bool = True) -> dict[str, Any]:
        with self.lock:
            i = self._product_index(product_id)
            cat = self.catalog
            over = cat.p_over.setdefault(i, {})
            if over.get("status") != "trash":
                raise ValueError(f"product {product_id} is not in the trash")
            over["status"] = over.pop("_before_trash", "draft")
            cat.p_modified[i] = max(self.clock.now_s(), int(cat.p_modified[i]))
            self._changed("product", ("p", i))
            if emit:
                self._emit("product.restored", int(product_id))
            return self.res.product(i)

    # --- customers -----------------------------------------------------------------------------------------

    def _customer_overrides(self, j: int | None, fields: dict[str, Any]) -> dict[str, Any]:
        _unknown(fields, _CUSTOMER_FIELDS, "customer")
        out = dict(fields)
        if j is not None:
            current = self.catalog.customer(j)
            for part in ("billing", "shipping"):
                if part in out:
                    out[part] = {**current[part], **out[part]}
        return out

    def update_customer(self, customer_id: int, *, emit: bool = True, **fields: Any) -> dict[str, Any]:
        with self.lock:
            j = self._customer_index(customer_id)
            cat = self.catalog
            cat.c_over.setdefault(j, {}).update(self._customer_overrides(j, fields))
            cat.c_modified[j] = max(self.clock.now_s(), int(cat.c_modified[j]))
            self._changed("customer", ("c", j))
            if emit:
                self._emit("customer.updated", int(customer_id))
            return self.res.customer(j)

    def create_customer(self, *, emit: bool = True, **fields: Any) -> int:
        with self.lock:
            cat = self.catalog
            j = cat.new_customer(self.clock.now_s())
            base = cat.customer(j)
            over = self._customer_overrides(None, fields)
            for part in ("billing", "shipping"):
                if part in over:
                    over[part] = {**base[part], **over[part]}
            cat.c_over[j] = over
            self._changed("customer")
            uid = int(cat.c_ids[j])
            if emit:
                self._emit("customer.created", uid)
            return uid

    def delete_customer(self, customer_id: int, *, emit: bool = True) -> None:
        """Delete the user (``customer.deleted`` with ``{"id": N}``; only users with the customer role)."""
        with self.lock:
            j = self._customer_index(customer_id)
            role = self.catalog.customer(j)["role"]
            self.catalog.c_gone.add(j)
            self._changed("customer", ("c", j))
            self.versions["order"] += 1
            self._cache = {k: v for k, v in self._cache.items() if k[0] != "o"}  # orders embed the address
            if emit and role == "customer":
                self._emit("customer.deleted", int(customer_id))

    # --- orders --------------------------------------------------------------------------------------------

    def _order_overrides(self, o: int, fields: dict[str, Any]) -> dict[str, Any]:
        _unknown(fields, _ORDER_FIELDS, "order")
        cat = self.catalog
        out = dict(fields)
        now = self.clock.now_s()
        status = out.get("status")
        if status is not None:
            if status not in ORDER_STATUSES:
                raise ValueError(f"order status must be one of {', '.join(ORDER_STATUSES)}, not {status!r}")
            current = cat.order(o)
            if status in ("processing", "completed") and current.get("date_paid") is None:
                out["date_paid"] = now
            if status == "completed":
                out["date_completed"] = now
        for part in ("billing", "shipping"):
            if part in out:
                out[part] = {**cat.order(o).get(part, {}), **out[part]}
        return out

    def update_order(self, order_id: int, *, emit: bool = True, **fields: Any) -> dict[str, Any]:
        """Change order fields (status, customer_note, billing, shipping, ...); queues ``order.updated``."""
        with self.lock:
            o = self._order_index(order_id)
            cat = self.catalog
            cat.o_over.setdefault(o, {}).update(self._order_overrides(o, fields))
            cat.o_modified[o] = max(self.clock.now_s(), int(cat.o_modified[o]))
            self._changed("order", ("o", o))
            if emit:
                self._emit("order.updated", int(order_id))
            return self.res.order(o)

    def create_order(self, *, customer_id: int | None = None, line_items: list[tuple[int, int]] | None = None,
                     status: str = "processing", emit: bool = True, **fields: Any) -> int:
        """A new order; ``line_items`` are (product or variation ID, quantity). Queues ``order.created``."""
        if status not in ORDER_STATUSES:
            raise ValueError(f"order status must be one of {', '.join(ORDER_STATUSES)}, not {status!r}")
        _unknown(fields, _ORDER_FIELDS - {"status"}, "order")
        with self.lock:
            cat = self.catalog
            customer_index = self._customer_index(customer_id) if customer_id else None
            resolved: list[tuple[int, int | None, int]] = []
            for object_id, qty in line_items or []:
                if int(qty) < 1:
                    raise ValueError("line item quantity must be >= 1")
                vk = cat.v_index.get(int(object_id))
                if vk is not None:
                    resolved.append((vk[0], vk[1], int(qty)))
                else:
                    resolved.append((self._product_index(object_id), None, int(qty)))
            if not resolved:
                if not cat.p_ids:
                    raise ValueError("the store has no products to order")
                resolved.append((0, 0 if cat.p_nvar[0] else None, 1))
            if len(resolved) > MAX_LINE_ITEMS:
                raise ValueError(f"at most {MAX_LINE_ITEMS} line items")
            now = self.clock.now_s()
            o = cat.new_order(now)
            paid = now if status in ("processing", "completed", "refunded") else None
            cat.o_over[o] = {
                "status": status, "customer_index": customer_index,
                "line_items": [{"id": cat.new_item_id(), "product_index": i, "variation_index": k, "quantity": q}
                               for i, k, q in resolved],
                "discount_pct": 0, "shipping_cents": 599, "payment": ("stripe", "Credit Card (Stripe)"),
                "date_paid": paid, "date_completed": now if status == "completed" else None,
                "partial_refund": False, "customer_note": "", **fields,
            }
            self._changed("order")
            oid = int(cat.o_ids[o])
            if emit and status != "checkout-draft":
                self._emit("order.created", oid)
            return oid

    def refund_order(self, order_id: int, amount: Any, reason: str = "", *, emit: bool = True) -> dict[str, Any]:
        """Add a refund (``refunds[]`` gains ``{"total": "-X.XX"}``); a full refund sets status ``refunded``."""
        with self.lock:
            o = self._order_index(order_id)
            cat = self.catalog
            cents = _cents(amount, "amount")
            current = self.res.order(o)
            refunded = -sum(int(round(float(r["total"]) * 100)) for r in current["refunds"])
            total = int(round(float(current["total"]) * 100))
            if cents <= 0 or refunded + cents > total:
                raise ValueError(f"refund must be between 0.01 and {(total - refunded) / 100:.2f}")
            cat.extra_refunds.setdefault(o, []).append({"id": cat.new_post_id(), "reason": reason, "cents": cents})
            if refunded + cents == total:
                cat.o_over.setdefault(o, {})["status"] = "refunded"
            cat.o_modified[o] = max(self.clock.now_s(), int(cat.o_modified[o]))
            self._changed("order", ("o", o))
            if emit:
                self._emit("order.updated", int(order_id))
            return self.res.order(o)

    def delete_order(self, order_id: int, *, force: bool = False, emit: bool = True) -> None:
        """Trash the order (``order.deleted`` with ``{"id": N}``); ``force=True`` deletes it without a webhook."""
        with self.lock:
            o = self._order_index(order_id)
            cat = self.catalog
            if force:
                cat.o_gone.add(o)
            else:
                if cat.order(o)["status"] == "trash":
                    raise ValueError(f"order {order_id} is already in the trash")
                over = cat.o_over.setdefault(o, {})
                over["_before_trash"] = cat.order(o)["status"]
                over["status"] = "trash"
                cat.o_modified[o] = max(self.clock.now_s(), int(cat.o_modified[o]))
            self._changed("order", ("o", o))
            if emit and not force:
                self._emit("order.deleted", int(order_id))

    def restore_order(self, order_id: int, *, emit: bool = True) -> dict[str, Any]:
        with self.lock:
            o = self._order_index(order_id)
            cat = self.catalog
            over = cat.o_over.setdefault(o, {})
            if over.get("status") != "trash":
                raise ValueError(f"order {order_id} is not in the trash")
            over["status"] = over.pop("_before_trash", "pending")
            cat.o_modified[o] = max(self.clock.now_s(), int(cat.o_modified[o]))
            self._changed("order", ("o", o))
            if emit:
                self._emit("order.restored", int(order_id))
            return self.res.order(o)


def _version_tuple(version: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in version.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


@dataclass
class _Counters:
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class WooSandbox:
    """Many WooCommerce stores behind one local server (``/stores/{name}/...``)."""

    def __init__(self, *, webhook_retry: bool = False, latency: float = 0.0, webhook_lag: float = 0.0,
                 webhook_timeout: float = 5.0, max_webhook_failures: int = 5,
                 webhook_verify_tls: bool | str = True, unique_delivery_ids: bool = False) -> None:
        self.lock = threading.RLock()
        self.stores: dict[str, WooStore] = {}
        self._base_url: str | None = None
        self.scheme = "http"
        self.ca_file: str | None = None
        self.latency = latency
        # True: a fresh X-WC-Webhook-Delivery-ID per attempt (WooCommerce reuses one per webhook and second).
        self.unique_delivery_ids = unique_delivery_ids
        self._delivery_seq = 0
        self.faults = WooFaults()
        self.webhooks = WooWebhookDispatcher(self, retry=webhook_retry, lag=webhook_lag, timeout=webhook_timeout,
                                             max_failures=max_webhook_failures, verify=webhook_verify_tls)
        self.request_log: list[RequestRecord] = []
        self._counters = _Counters()

    @property
    def base_url(self) -> str | None:
        return self._base_url

    @base_url.setter
    def base_url(self, value: str | None) -> None:
        with self.lock:
            self._base_url = value
            for store in self.stores.values():
                store.clear_caches()  # rendered objects embed links to the store's URL

    @property
    def ssl(self) -> bool:
        return self.scheme == "https"

    def ssl_context(self) -> SSLContext:
        """A client context trusting ``ca_file`` (httpx: ``verify=sandbox.ssl_context()``)."""
        if self.ca_file is None:
            raise RuntimeError("the sandbox is not serving HTTPS (serve_woocommerce_sandbox(..., https=True))")
        return create_default_context(cafile=self.ca_file)

    @property
    def counters(self) -> Counter[str]:
        with self._counters.lock:
            return Counter(self._counters.counts)

    def count(self, name: str, n: int = 1) -> None:
        with self._counters.lock:
            self._counters.counts[name] += n

    def add_store(self, name: str, spec: WooDatasetSpec | None = None, *, wc_version: str = "9.4.2",
                  wp_version: str = "6.7.1", rest_api: bool = True, is_woocommerce: bool = True,
                  utc_offset_hours: float = 1.0, title: str | None = None, legacy_api: bool | None = None,
                  variation_bumps_parent: bool = False) -> WooStore:
        """A store at ``{base_url}/stores/{name}``. ``rest_api=False``: WooCommerce older than 2.6 (only
        ``/wc-api/v3``); ``is_woocommerce=False``: a plain WordPress site."""
        if not name or "/" in name or name != name.strip():
            raise ValueError(f"store name must be a non-empty path segment, not {name!r}")
        with self.lock:
            if name in self.stores:
                raise ValueError(f"store {name!r} already exists")
            store = WooStore(self, name, spec or WooDatasetSpec(), wc_version=wc_version, wp_version=wp_version,
                             rest_api=rest_api, is_woocommerce=is_woocommerce, utc_offset_hours=utc_offset_hours,
                             title=title, legacy_api=legacy_api, variation_bumps_parent=variation_bumps_parent)
            self.stores[name] = store
            return store

    def store(self, name: str) -> WooStore:
        try:
            return self.stores[name]
        except KeyError:
            raise KeyError(f"no store {name!r}; known: {', '.join(sorted(self.stores)) or 'none'}") from None

    def _store(self, store: WooStore | str) -> WooStore:
        return store if isinstance(store, WooStore) else self.store(store)

    def store_url(self, store: WooStore | str) -> str:
        """The store's home URL (WordPress lives in a sub-path): ``{base_url}/stores/{name}``."""
        if self._base_url is None:
            raise RuntimeError("the sandbox is not being served; use serve_woocommerce_sandbox(...)")
        return f"{self._base_url}/stores/{self._store(store).name}"

    def rest_url(self, store: WooStore | str) -> str:
        return self.store_url(store) + "/wp-json/wc/v3"

    def close(self) -> None:
        self.webhooks.stop()
