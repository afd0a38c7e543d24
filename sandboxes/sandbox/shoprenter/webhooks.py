"""Webhooks ("automatizmusok"): the ``webHooks`` resource's subscriptions and real HTTP deliveries.

A subscription is ``{label, event, status, webHookParameters: [{type: json|xml, url, fields?}], webHookDelay}``
(docs ``api/webhook.md``, ``development/api/07_webhook.md``). Events: ``order_confirm``, ``order_status_change``
(fired by the sandbox), ``newsletter_subscribe``, ``newsletter_unsubscribe``, ``newsletter_update_subscriber``,
``abandoned_cart`` (accepted, never fired).

Deliveries are POSTs of ``{"orders": {"order": [{...}]}}`` (or its XML) with **no signature** — ShopRenter
documents none, so a receiver can only treat a delivery as a hint and re-fetch the order. Retries are not
documented either: by default a failed delivery is not retried (``max_retries``). ``webHookDelay`` is stored and
echoed but deliveries are immediate. A background thread sends them; faults drop or duplicate deliveries. The
queue and faults are ``sandbox.webhook_delivery``'s; this module adds ShopRenter's payloads and sending.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from sandbox.webhook_delivery import DeliveryFaults, DeliveryQueue

__all__ = [
    "EVENTS",
    "Delivery",
    "DeliveryRecord",
    "SrWebhook",
    "WebhookDispatcher",
    "WebhookFaults",
]

EVENTS = ("order_confirm", "order_status_change", "newsletter_subscribe", "newsletter_unsubscribe",
          "newsletter_update_subscriber", "abandoned_cart")


@dataclass
class SrWebhook:
    inner_id: int
    shop: str
    label: str
    event: str
    status: int
    parameters: list[dict[str, Any]]  # [{"type": "json", "url": ..., "fields": [...]?}]
    delay: list[dict[str, Any]] = field(default_factory=list)
    created_by: str | None = None  # client_id when created through the API, None from the admin UI


@dataclass
class Delivery:
    delivery_id: str
    shop: str
    event: str
    url: str
    body: bytes
    content_type: str
    webhook_id: int
    order_id: int | None = None
    attempt: int = 0
    duplicate: bool = False


@dataclass
class DeliveryRecord:
    delivery_id: str
    event: str
    url: str
    attempt: int
    outcome: str  # delivered | failed | dropped | abandoned
    status: int | None = None
    error: str | None = None
    duplicate: bool = False
    order_id: int | None = None
    body: bytes = b""
    at: float = field(default_factory=time.time)


@dataclass
class WebhookFaults(DeliveryFaults):
    """``delay`` sleeps before each delivery (deliveries go out one at a time, in order)."""


_STOP = object()


class WebhookDispatcher(DeliveryQueue[Delivery, WebhookFaults]):
    """One worker thread, deliveries in order; tests and server handlers enqueue from any thread."""

    thread_name = "shoprenter-sandbox-webhooks"

    def __init__(self, count: Callable[[str], None], *, seed: int = 0, max_retries: int = 0,
                 retry_delay: float = 0.05, timeout: float = 5.0) -> None:
        super().__init__(WebhookFaults(), seed=seed)
        self._count = count
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.log: list[DeliveryRecord] = []
        self._queue: queue.Queue[object] = queue.Queue()

    def records(self, event: str | None = None, outcome: str | None = None) -> list[DeliveryRecord]:
        with self._lock:
            return [r for r in self.log if (event is None or r.event == event) and
                    (outcome is None or r.outcome == outcome)]

    # --- worker ----------------------------------------------------------------------------------------

    def _record(self, d: Delivery, outcome: str, status: int | None = None, error: str | None = None) -> None:
        with self._lock:
            self.log.append(DeliveryRecord(d.delivery_id, d.event, d.url, d.attempt, outcome, status, error,
                                           d.duplicate, d.order_id, d.body))
        self._count(f"webhook_{outcome}")

    def _submit(self, deliveries: list[Delivery]) -> None:
        with self._lock:
            q = self._queue
        for d in deliveries:
            q.put(d)

    def _stop_worker(self, thread: threading.Thread) -> None:
        self._queue.put(_STOP)
        thread.join(timeout=10)

    def _forget_in_flight(self) -> None:
        super()._forget_in_flight()
        self._queue = queue.Queue()

    def _work(self) -> None:
        self._ready.set()
        with httpx.Client(timeout=httpx.Timeout(self.timeout, connect=1.0)) as client:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                assert isinstance(item, Delivery)
                copies = [item]
                if self._roll("drop_next", self.faults.drop_rate):
                    self._record(item, "dropped")
                    copies = []
                elif self._roll("duplicate_next", self.faults.duplicate_rate):
                    copies.append(replace(item, duplicate=True))
                    with self._lock:
                        self._pending += 1
                for d in copies:
                    if self.faults.delay > 0:
                        time.sleep(self.faults.delay)
                    self._deliver(client, d)
                self._done(len(copies) or 1)

    def _deliver(self, client: httpx.Client, d: Delivery) -> None:
        while True:
            status: int | None = None
            error: str | None = None
            try:
                resp = client.post(d.url, content=d.body, headers={"Content-Type": d.content_type})
                status = resp.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if status is not None and 200 <= status < 300:
                self._record(d, "delivered", status)
                return
            self._record(d, "failed", status, error)
            if d.attempt >= self.max_retries:
                if self.max_retries:
                    self._record(d, "abandoned", status, error)
                return
            time.sleep(self.retry_delay)
            d = replace(d, attempt=d.attempt + 1)
