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
``hold()``/``release(shuffle=True)`` for deterministic reordering in tests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import threading
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import httpx

from sandbox.shopify.clock import format_precise

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
class WebhookFaults:
    drop_next: int = 0  # lose the next N deliveries outright (never retried: Shopify may lose events)
    duplicate_next: int = 0  # send the next N deliveries twice
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    delay: float = 0.0  # seconds before each first attempt (concurrently, so order may change)
    reorder_window: float = 0.0  # gather deliveries this long, then send them shuffled
    duplicate_new_webhook_id: bool = True


class WebhookDispatcher:
    """Runs its own event loop thread, so tests (any thread) and the server loop can enqueue."""

    def __init__(self, sandbox: ShopifySandbox, *, retry_delays: Sequence[float] = (0.05, 0.1, 0.2, 0.4, 0.8),
                 max_retries: int = 8, delete_after_failures: int = 8, connect_timeout: float = 1.0,
                 timeout: float = 5.0) -> None:
        self.sandbox = sandbox
        self.retry_delays = tuple(retry_delays)
        self.max_retries = max_retries
        self.delete_after_failures = delete_after_failures
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.faults = WebhookFaults()
        self.log: list[DeliveryRecord] = []
        self._rng = random.Random(sandbox.seed)
        self._lock = threading.Lock()
        self._pending = 0
        self._held: list[Delivery] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Delivery] | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._ready.clear()
            self._thread = threading.Thread(target=self._thread_main, name="shopify-sandbox-webhooks", daemon=True)
            self._thread.start()
        self._ready.wait(5)

    def stop(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
        with self._lock:
            self._pending = 0  # whatever was in flight is gone with the loop
            self._held = None

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._queue = asyncio.Queue()
        client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout))
        main = loop.create_task(self._run(client))
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            main.cancel()
            for task in list(self._tasks):
                task.cancel()
            loop.run_until_complete(asyncio.gather(main, *self._tasks, return_exceptions=True))
            loop.run_until_complete(client.aclose())
            loop.close()
            self._loop = None

    # --- public API ------------------------------------------------------------------------------------

    def enqueue(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        self.start()
        with self._lock:
            self._pending += len(deliveries)
            if self._held is not None:
                self._held.extend(deliveries)
                return
        loop, queue = self._loop, self._queue
        assert loop is not None and queue is not None
        for d in deliveries:
            loop.call_soon_threadsafe(queue.put_nowait, d)

    def hold(self) -> None:
        """Buffer new deliveries until ``release`` (lets a test build a batch to reorder)."""
        with self._lock:
            if self._held is None:
                self._held = []

    def release(self, *, shuffle: bool = False) -> None:
        with self._lock:
            held, self._held = self._held or [], None
        if shuffle:
            self._rng.shuffle(held)
        if held and self._loop is not None and self._queue is not None:
            for d in held:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, d)

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every enqueued delivery finished (delivered, dropped or given up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending == 0:
                    return True
            time.sleep(0.01)
        return False

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

    def _done(self, n: int = 1) -> None:
        with self._lock:
            self._pending -= n

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, client: httpx.AsyncClient) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            window = self.faults.reorder_window
            if window > 0:
                deadline = loop.time() + window
                while (remaining := deadline - loop.time()) > 0:
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
                self._rng.shuffle(batch)
            for d in batch:
                await self._first_attempt(client, d)

    def _roll(self, counter: str, rate: float) -> bool:
        with self._lock:
            if getattr(self.faults, counter) > 0:
                setattr(self.faults, counter, getattr(self.faults, counter) - 1)
                return True
        return rate > 0 and self._rng.random() < rate

    async def _first_attempt(self, client: httpx.AsyncClient, d: Delivery) -> None:
        if self._roll("drop_next", self.faults.drop_rate):
            self._record(d, "dropped")
            self._done()
            return
        copies = [d]
        if self._roll("duplicate_next", self.faults.duplicate_rate):
            dup = replace(d, duplicate=True,
                          webhook_id=str(uuid.uuid4()) if self.faults.duplicate_new_webhook_id else d.webhook_id)
            with self._lock:
                self._pending += 1
            copies.append(dup)
        for c in copies:
            if self.faults.delay > 0:
                self._spawn(self._delayed(client, c, self.faults.delay))
            else:
                await self._attempt(client, c)

    async def _delayed(self, client: httpx.AsyncClient, d: Delivery, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._attempt(client, d)

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
