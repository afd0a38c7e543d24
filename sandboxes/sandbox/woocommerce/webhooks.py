"""Webhooks: subscriptions, the creation ping, and *real* signed deliveries (httpx POSTs from a background loop).

What WooCommerce does (class-wc-webhook.php, wc-webhook-functions.php) and the sandbox copies:

* **Topics** ``resource.event`` (``product.updated``, ``order.created``, ...); ``hooks`` lists the WordPress
  actions behind each. A variation change fires ``product.updated`` with the *variation's* ID, and the payload is
  ``GET /products/{variation_id}`` — the variation as a product (``type: "variation"``, ``parent_id``), not the
  parent. Creating a variable product fires ``product.created`` for the parent and for each variation.
* **Queue**: deliveries go through Action Scheduler. While a delivery for the same webhook and resource ID is still
  pending, a new event for it is *not* queued again (coalesced). The payload is built when the delivery runs, so
  it shows the resource's state at that time (after a delete, an ``updated`` delivery carries the REST error
  body). Delete events carry ``{"id": N}``.
* **Request**: POST, body ``wp_json_encode($payload)`` (``\\/``-escaped, ``\\uXXXX``), headers
  ``X-WC-Webhook-Source`` (home URL + ``/``), ``-Topic``, ``-Resource``, ``-Event``, ``-Signature``
  (base64 HMAC-SHA256 of the raw body with the webhook secret), ``-ID``, ``-Delivery-ID``, ``User-Agent:
  WooCommerce/{wc} Hookshot (WordPress/{wp})``. ``-Delivery-ID`` is ``wp_hash(webhook_id . time())`` — the
  *same* for deliveries of one webhook within one second, so never deduplicate on it.
* **Outcome**: 200–302 is success (resets ``failure_count``); anything else, or no response, is a failure. On a
  failure, if ``failure_count > 5`` (``woocommerce_max_webhook_delivery_failures``) the webhook becomes
  ``disabled``, else ``failure_count`` grows. So the 7th consecutive failure disables it. There are **no
  retries**; ``WooSandbox(webhook_retry=True)`` adds some (not WooCommerce behaviour). Deliveries already queued
  still go out after the webhook is disabled or paused; new events for it are not queued.
* **Ping**: creating a webhook (REST) POSTs ``webhook_id={id}`` form-encoded, unsigned, once. Only a 200 counts as
  success, and a failing ping does **not** fail the creation (the REST v1–v3 controllers ignore its result).

Delivery faults (``dispatcher.faults``): ``drop_next`` (the action never runs), ``duplicate_next``, ``delay``,
``reorder_window``; ``hold()``/``release(shuffle=True)``. ``lag`` delays every first attempt (Action Scheduler
runs every minute or so on a real site), which widens the coalescing window. The queue, worker loop and faults
are ``sandbox.webhook_delivery``'s; this module adds WooCommerce's coalescing, payloads, signing and outcomes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import httpx

from sandbox.webhook_delivery import DeliveryLoop, ReorderableFaults

if TYPE_CHECKING:
    from sandbox.woocommerce.state import WooSandbox, WooStore

__all__ = [
    "EVENTS",
    "RESOURCES",
    "TOPIC_HOOKS",
    "Delivery",
    "DeliveryRecord",
    "WooWebhook",
    "WooWebhookDispatcher",
    "WooWebhookFaults",
    "sign_woo_webhook",
    "valid_topic",
]

TOPIC_HOOKS: dict[str, tuple[str, ...]] = {
    "coupon.created": ("woocommerce_process_shop_coupon_meta", "woocommerce_new_coupon"),
    "coupon.updated": ("woocommerce_process_shop_coupon_meta", "woocommerce_update_coupon"),
    "coupon.deleted": ("wp_trash_post",),
    "coupon.restored": ("untrashed_post",),
    "customer.created": ("user_register", "woocommerce_created_customer", "woocommerce_new_customer"),
    "customer.updated": ("profile_update", "woocommerce_update_customer"),
    "customer.deleted": ("delete_user",),
    "order.created": ("woocommerce_new_order",),
    "order.updated": ("woocommerce_update_order", "woocommerce_order_refunded", "woocommerce_delete_order_refund"),
    "order.deleted": ("wp_trash_post", "woocommerce_trash_order"),
    "order.restored": ("untrashed_post", "woocommerce_untrash_order"),
    "product.created": ("woocommerce_process_product_meta", "woocommerce_new_product",
                        "woocommerce_new_product_variation"),
    "product.updated": ("woocommerce_process_product_meta", "woocommerce_update_product",
                        "woocommerce_update_product_variation"),
    "product.deleted": ("wp_trash_post",),
    "product.restored": ("untrashed_post",),
}
RESOURCES = ("coupon", "customer", "order", "product")
EVENTS = ("created", "updated", "deleted", "restored")
STATUSES = ("active", "paused", "disabled")


def valid_topic(topic: str) -> bool:
    """``wc_is_webhook_valid_topic``: ``action.woocommerce_*``/``action.wc_*`` or a known resource.event."""
    if topic.startswith(("action.woocommerce_", "action.wc_")):
        return True
    resource, _, event = topic.partition(".")
    return resource in RESOURCES and event in EVENTS


def sign_woo_webhook(secret: str, body: bytes) -> str:
    """``X-WC-Webhook-Signature``: base64(HMAC-SHA256(secret, raw body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class WooWebhook:
    id: int
    store: str
    name: str
    topic: str
    delivery_url: str
    secret: str
    created_s: int
    modified_s: int
    status: str = "active"
    user_id: int = 1
    api_version: str = "wp_api_v3"
    failure_count: int = 0
    pending_delivery: bool = True  # until the ping succeeds
    ping_status: int | None = None
    ping_error: str | None = None

    @property
    def resource(self) -> str:
        return self.topic.split(".")[0]

    @property
    def event(self) -> str:
        parts = self.topic.split(".", 1)
        return parts[1] if len(parts) > 1 else ""

    @property
    def hooks(self) -> tuple[str, ...]:
        if self.resource == "action":
            return (self.event,)
        return TOPIC_HOOKS.get(self.topic, ())


@dataclass
class Delivery:
    store: str
    webhook_id: int
    topic: str
    arg: int  # the first hook argument: the resource ID
    enqueued_at: float = field(default_factory=time.monotonic)
    attempt: int = 0
    duplicate: bool = False

    @property
    def key(self) -> tuple[str, int, int]:
        return self.store, self.webhook_id, self.arg


@dataclass
class DeliveryRecord:
    store: str
    webhook_id: int
    topic: str
    resource_id: int | None
    url: str
    attempt: int
    outcome: str  # delivered | failed | dropped | abandoned | disabled | ping_ok | ping_failed
    status: int | None = None
    error: str | None = None
    duplicate: bool = False
    delivery_id: str | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


@dataclass
class WooWebhookFaults(ReorderableFaults):
    """A dropped delivery's action never runs; ``delay`` sleeps concurrently, so order may change."""


class WooWebhookDispatcher(DeliveryLoop[Delivery, WooWebhookFaults]):
    """Runs its own event-loop thread, so tests (any thread) and the server loop can enqueue."""

    thread_name = "woo-sandbox-webhooks"

    def __init__(self, sandbox: WooSandbox, *, retry: bool = False,
                 retry_delays: Sequence[float] = (0.05, 0.1, 0.2), max_retries: int = 3, lag: float = 0.0,
                 timeout: float = 5.0, connect_timeout: float = 1.0, max_failures: int = 5,
                 verify: bool | str = True) -> None:
        super().__init__(WooWebhookFaults(), seed=1, timeout=timeout, connect_timeout=connect_timeout)
        self.sandbox = sandbox
        self.retry = retry
        self.retry_delays = tuple(retry_delays)
        self.max_retries = max_retries
        self.lag = lag
        self.max_failures = max_failures
        self.verify = verify
        self.log: list[DeliveryRecord] = []
        self._queued_keys: dict[tuple[str, int, int], int] = {}  # first attempts not started yet

    def _client(self) -> httpx.AsyncClient:
        verify: bool | ssl.SSLContext = self.verify if isinstance(self.verify, bool) else \
            ssl.create_default_context(cafile=self.verify)
        return httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout), verify=verify)

    def _admit(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Coalesce with identical deliveries whose first attempt has not started."""
        fresh: list[Delivery] = []
        for d in deliveries:
            if d.key in self._queued_keys:
                self.sandbox.count("webhook_coalesced")
                continue
            self._queued_keys[d.key] = self._queued_keys.get(d.key, 0) + 1
            fresh.append(d)
        return fresh

    def _forget_in_flight(self) -> None:
        super()._forget_in_flight()
        self._queued_keys.clear()

    def records(self, topic: str | None = None, outcome: str | None = None, *,
                webhook_id: int | None = None) -> list[DeliveryRecord]:
        with self._lock:
            return [r for r in self.log if (topic is None or r.topic == topic)
                    and (outcome is None or r.outcome == outcome)
                    and (webhook_id is None or r.webhook_id == webhook_id)]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    async def ping(self, store: WooStore, webhook: WooWebhook) -> bool:
        """``WC_Webhook::deliver_ping``: runs in the server's loop while the REST request waits."""
        url = webhook.delivery_url
        headers = {"User-Agent": store.user_agent, "Content-Type": "application/x-www-form-urlencoded"}
        body = f"webhook_id={webhook.id}".encode()
        status: int | None = None
        error: str | None = None
        try:
            async with self._client() as client:
                resp = await client.post(url, content=body, headers=headers)
                status = resp.status_code
        except httpx.HTTPError as exc:
            error = f"Error: Delivery URL cannot be reached: {type(exc).__name__}"
        ok = status == 200
        if status is not None and not ok:
            error = f"Error: Delivery URL returned response code: {status}"
        with self.sandbox.lock:
            webhook.ping_status, webhook.ping_error = status, error
            if ok:
                webhook.pending_delivery = False
        self._record(DeliveryRecord(store.name, webhook.id, "ping", None, url, 0, "ping_ok" if ok else "ping_failed",
                                    status, error, body=body, headers=headers))
        return ok

    # --- delivery loop -------------------------------------------------------------------------------------

    def _record(self, record: DeliveryRecord) -> None:
        with self._lock:
            self.log.append(record)
        self.sandbox.count(f"webhook_{record.outcome}")

    def _started(self, d: Delivery) -> None:
        with self._lock:
            left = self._queued_keys.get(d.key, 0) - 1
            if left > 0:
                self._queued_keys[d.key] = left
            else:
                self._queued_keys.pop(d.key, None)

    async def _first_attempt(self, client: httpx.AsyncClient, d: Delivery) -> None:
        wait = d.enqueued_at + self.lag - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._started(d)
        await super()._first_attempt(client, d)

    def _record_dropped(self, d: Delivery) -> None:
        self._record(DeliveryRecord(d.store, d.webhook_id, d.topic, d.arg, "", 0, "dropped"))

    def _duplicate_of(self, d: Delivery) -> Delivery:
        return replace(d, duplicate=True)

    async def _attempt(self, client: httpx.AsyncClient, d: Delivery) -> None:
        with self.sandbox.lock:
            store = self.sandbox.stores.get(d.store)
            webhook = store.webhooks.get(d.webhook_id) if store is not None else None
            if store is None or webhook is None:
                prepared = None
            else:
                body = store.webhook_body(webhook, d.arg)
                delivery_id = store.delivery_id(webhook.id)
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": store.user_agent,
                    "X-WC-Webhook-Source": store.home_url + "/",
                    "X-WC-Webhook-Topic": webhook.topic,
                    "X-WC-Webhook-Resource": webhook.resource,
                    "X-WC-Webhook-Event": webhook.event,
                    "X-WC-Webhook-Signature": sign_woo_webhook(webhook.secret, body),
                    "X-WC-Webhook-ID": str(webhook.id),
                    "X-WC-Webhook-Delivery-ID": delivery_id,
                }
                prepared = (webhook.delivery_url, body, headers, delivery_id)
        if prepared is None:
            self._record(DeliveryRecord(d.store, d.webhook_id, d.topic, d.arg, "", d.attempt, "abandoned",
                                        error="webhook no longer exists"))
            self._done()
            return
        assert webhook is not None
        url, body, headers, delivery_id = prepared
        status: int | None = None
        error: str | None = None
        try:
            resp = await client.post(url, content=body, headers=headers)
            status = resp.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 303
        disabled = False
        with self.sandbox.lock:
            if ok:
                webhook.failure_count = 0
            elif webhook.failure_count > self.max_failures:
                webhook.status = "disabled"
                disabled = True
            else:
                webhook.failure_count += 1
        self._record(DeliveryRecord(d.store, d.webhook_id, d.topic, d.arg, url, d.attempt,
                                    "delivered" if ok else "failed", status, error, d.duplicate, delivery_id, body,
                                    headers))
        if disabled:
            self._record(DeliveryRecord(d.store, d.webhook_id, d.topic, d.arg, url, d.attempt, "disabled", status,
                                        "failure_count exceeded woocommerce_max_webhook_delivery_failures"))
        if ok or not self.retry or d.attempt >= self.max_retries:
            self._done()
            return
        delay = self.retry_delays[min(d.attempt, len(self.retry_delays) - 1)] if self.retry_delays else 0.0
        self._spawn(self._delayed(client, replace(d, attempt=d.attempt + 1), delay))
