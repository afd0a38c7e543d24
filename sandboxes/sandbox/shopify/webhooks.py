"""Webhook subscriptions and *real* signed deliveries (httpx POSTs) with Shopify's failure modes.

Each delivery carries ``X-Shopify-Topic``, ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body
with the app's client secret), ``X-Shopify-Shop-Domain``, ``X-Shopify-API-Version``,
``X-Shopify-Webhook-Id``, ``X-Shopify-Event-Id`` and ``X-Shopify-Triggered-At``.

Identity rules (shopify.dev "Ignore duplicate webhooks" / "Updates to webhook retry mechanism"):

* ``X-Shopify-Event-Id`` is shared by every webhook caused by one merchant action — retries, duplicates,
  and one delivery per subscription. Deduplicate on it.
* ``X-Shopify-Webhook-Id`` stays the same across *retries* of one delivery; a *duplicate* (fault) gets a
  fresh one by default (``duplicate_new_webhook_id``), so a client that dedupes on the webhook id alone
  double-processes — on purpose.
* Retries resend the original payload and ``X-Shopify-Triggered-At`` to the address configured when the
  webhook was triggered.

Retry policy: non-2xx or timeout (1 s connect / 5 s total) is a failure; retried ``max_retries`` times with
``retry_delays`` (Shopify: 8 times over 4 hours; the sandbox defaults to fractions of a second). After
``delete_after_failures`` consecutive failed attempts an API-created subscription is deleted.

Faults (``dispatcher.faults``): drop, duplicate, delay, reorder (collect for a window then shuffle), plus
``hold()``/``release(shuffle=True)`` for deterministic reordering in tests. The queue, worker loop and faults are
``sandbox.webhook_delivery``'s; this module adds Shopify's headers, signing, retries and subscription rules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import httpx

from sandbox.shopify.clock import format_precise
from sandbox.webhook_delivery import DeliveryLoop, ReorderableFaults

if TYPE_CHECKING:
    from sandbox.shopify.state import ShopifySandbox

__all__ = [
    "TOPICS",
    "Delivery",
    "DeliveryRecord",
    "WebhookDispatcher",
    "WebhookFaults",
    "WebhookSubscription",
    "sign_webhook",
    "topic_name",
]

# GraphQL WebhookSubscriptionTopic enum -> X-Shopify-Topic.
TOPICS = {
    "APP_UNINSTALLED": "app/uninstalled",
    "BULK_OPERATIONS_FINISH": "bulk_operations/finish",
    "PRODUCTS_CREATE": "products/create",
    "PRODUCTS_UPDATE": "products/update",
    "PRODUCTS_DELETE": "products/delete",
    "CUSTOMERS_CREATE": "customers/create",
    "CUSTOMERS_UPDATE": "customers/update",
    "CUSTOMERS_DELETE": "customers/delete",
    "ORDERS_CREATE": "orders/create",
    "ORDERS_UPDATED": "orders/updated",
    "ORDERS_DELETE": "orders/delete",
    "ORDERS_PAID": "orders/paid",
    "ORDERS_CANCELLED": "orders/cancelled",
    "ORDERS_FULFILLED": "orders/fulfilled",
    "ORDERS_PARTIALLY_FULFILLED": "orders/partially_fulfilled",
    "FULFILLMENTS_CREATE": "fulfillments/create",
    "FULFILLMENTS_UPDATE": "fulfillments/update",
    "INVENTORY_LEVELS_UPDATE": "inventory_levels/update",
    "INVENTORY_ITEMS_UPDATE": "inventory_items/update",
    "LOCATIONS_CREATE": "locations/create",
    "LOCATIONS_UPDATE": "locations/update",
    "LOCATIONS_DELETE": "locations/delete",
    "SHOP_UPDATE": "shop/update",
}


def topic_name(topic_enum: str) -> str:
    return TOPICS.get(topic_enum, topic_enum.lower().replace("_", "/", 1))


def sign_webhook(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class WebhookSubscription:
    id: int
    shop: str
    client_id: str
    topic_enum: str
    topic: str
    uri: str
    api_version: str
    created_us: int
    updated_us: int
    source: str = "api"  # "api" subscriptions are deleted after repeated failures
    format: str = "JSON"
    consecutive_failures: int = 0


@dataclass
class Delivery:
    webhook_id: str
    event_id: str
    topic: str
    uri: str
    shop: str
    client_id: str
    body: bytes
    secret: str
    api_version: str
    triggered_us: int
    subscription_id: int | None
    attempt: int = 0
    duplicate: bool = False

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": self.topic,
            "X-Shopify-Hmac-Sha256": sign_webhook(self.body, self.secret),
            "X-Shopify-Shop-Domain": self.shop,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": self.webhook_id,
            "X-Shopify-Event-Id": self.event_id,
            "X-Shopify-Triggered-At": format_precise(self.triggered_us),
            "User-Agent": "Shopify-Captain-Hook",
        }


@dataclass
class DeliveryRecord:
    webhook_id: str
    event_id: str
    topic: str
    uri: str
    attempt: int
    outcome: str  # delivered | failed | dropped | abandoned | subscription_deleted
    status: int | None = None
    error: str | None = None
    duplicate: bool = False
    at: float = field(default_factory=time.time)


@dataclass
class WebhookFaults(ReorderableFaults):
    """Dropped deliveries are never retried (Shopify may lose events); a duplicate gets a fresh webhook id unless
    ``duplicate_new_webhook_id`` is off."""

    duplicate_new_webhook_id: bool = True


class WebhookDispatcher(DeliveryLoop[Delivery, WebhookFaults]):
    """Runs its own event loop thread, so tests (any thread) and the server loop can enqueue."""

    thread_name = "shopify-sandbox-webhooks"

    def __init__(self, sandbox: ShopifySandbox, *, retry_delays: Sequence[float] = (0.05, 0.1, 0.2, 0.4, 0.8),
                 max_retries: int = 8, delete_after_failures: int = 8, connect_timeout: float = 1.0,
                 timeout: float = 5.0) -> None:
        super().__init__(WebhookFaults(), seed=sandbox.seed, timeout=timeout, connect_timeout=connect_timeout)
        self.sandbox = sandbox
        self.retry_delays = tuple(retry_delays)
        self.max_retries = max_retries
        self.delete_after_failures = delete_after_failures
        self.log: list[DeliveryRecord] = []

    def records(self, topic: str | None = None, outcome: str | None = None) -> list[DeliveryRecord]:
        with self._lock:
            return [r for r in self.log if (topic is None or r.topic == topic) and
                    (outcome is None or r.outcome == outcome)]

    # --- delivery loop ---------------------------------------------------------------------------------

    def _record(self, d: Delivery, outcome: str, status: int | None = None, error: str | None = None) -> None:
        with self._lock:
            self.log.append(DeliveryRecord(d.webhook_id, d.event_id, d.topic, d.uri, d.attempt, outcome, status,
                                           error, d.duplicate))
        self.sandbox.count(f"webhook_{outcome}")

    def _record_dropped(self, d: Delivery) -> None:
        self._record(d, "dropped")

    def _duplicate_of(self, d: Delivery) -> Delivery:
        return replace(d, duplicate=True,
                       webhook_id=str(uuid.uuid4()) if self.faults.duplicate_new_webhook_id else d.webhook_id)

    async def _attempt(self, client: httpx.AsyncClient, d: Delivery) -> None:
        if d.attempt > 0 and d.subscription_id is not None and d.subscription_id not in self.sandbox.subscriptions:
            self._record(d, "abandoned", None, "subscription no longer exists")
            self._done()
            return
        status: int | None = None
        error: str | None = None
        try:
            resp = await client.post(d.uri, content=d.body, headers=d.headers())
            status = resp.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        sub = self.sandbox.subscriptions.get(d.subscription_id) if d.subscription_id is not None else None
        if ok:
            self._record(d, "delivered", status)
            if sub is not None:
                sub.consecutive_failures = 0
            self._done()
            return
        self._record(d, "failed", status, error)
        if sub is not None:
            with self.sandbox.lock:
                sub.consecutive_failures += 1
                if sub.source == "api" and sub.consecutive_failures >= self.delete_after_failures:
                    self.sandbox.subscriptions.pop(sub.id, None)
                    self._record(d, "subscription_deleted", status, error)
                    self._done()
                    return
        elif d.subscription_id is not None:
            self._record(d, "abandoned", status, "subscription no longer exists")
            self._done()
            return
        if d.attempt >= self.max_retries:
            self._record(d, "abandoned", status, error)
            self._done()
            return
        delay = self.retry_delays[min(d.attempt, len(self.retry_delays) - 1)] if self.retry_delays else 0.0
        self._spawn(self._delayed(client, replace(d, attempt=d.attempt + 1), delay))
