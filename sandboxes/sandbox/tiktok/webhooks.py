"""Signed webhook deliveries, as the TikTok Shop webhook overview describes them.

A delivery is a POST of ``{"type": <int>, "tts_notification_id": "<id>", "shop_id": "<id>", "timestamp":
<unix seconds>, "data": {...}}`` with the header ``Authorization: <lowercase hex HMAC-SHA256(app secret,
app_key + raw body)>`` (no "Bearer", no timestamp in the signed string: receivers dedupe on
``tts_notification_id``). It goes to the address the shop registered for the event type
(``PUT /event/202309/webhooks``), else to the app's Partner Center address. A non-2xx answer or a timeout is
retried after ``retry_delays`` (TikTok: 2 min, 30 min, 3 h, 12 h per third-party notes; the sandbox uses
fractions of a second). Faults (drop, duplicate, delay, reorder) and ``hold()``/``release()`` are
``sandbox.webhook_delivery``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import httpx

from sandbox.webhook_delivery import DeliveryLoop, ReorderableFaults

__all__ = ["EVENT_TYPES", "Delivery", "DeliveryRecord", "WebhookDispatcher", "WebhookFaults"]

# numeric type -> event_type name (the per-topic pages confirm 1, 5, 6, 7, 15, 16, 27)
EVENT_TYPES = {1: "ORDER_STATUS_CHANGE", 5: "PRODUCT_STATUS_CHANGE", 6: "SELLER_DEAUTHORIZATION",
               7: "UPCOMING_AUTHORIZATION_EXPIRATION", 15: "PRODUCT_INFORMATION_CHANGE", 16: "PRODUCT_CREATION",
               27: "INVENTORY_STATUS_CHANGE"}


@dataclass
class Delivery:
    notification_id: str
    type: int
    shop_id: str
    url: str
    body: bytes
    signature: str
    attempt: int = 0
    duplicate: bool = False


@dataclass
class DeliveryRecord:
    notification_id: str
    type: int
    shop_id: str
    url: str
    attempt: int
    outcome: str                  # delivered | failed | dropped | abandoned
    status: int | None = None
    error: str | None = None
    duplicate: bool = False
    body: bytes = b""
    at: float = field(default_factory=time.time)


@dataclass
class WebhookFaults(ReorderableFaults):
    forge_signature_next: int = 0     # sign the next N deliveries with a wrong secret


class WebhookDispatcher(DeliveryLoop[Delivery, WebhookFaults]):
    thread_name = "tiktok-sandbox-webhooks"

    def __init__(self, count: Callable[[str], None], *, seed: int = 0,
                 retry_delays: Sequence[float] = (0.2, 0.5, 1.0), timeout: float = 3.0) -> None:
        super().__init__(WebhookFaults(), seed=seed, timeout=timeout, connect_timeout=1.0)
        self._count = count
        self.retry_delays = tuple(retry_delays)
        self.log: list[DeliveryRecord] = []

    def records(self, type: int | None = None, outcome: str | None = None) -> list[DeliveryRecord]:  # noqa: A002
        with self._lock:
            return [r for r in self.log if (type is None or r.type == type) and
                    (outcome is None or r.outcome == outcome)]

    def _record(self, d: Delivery, outcome: str, status: int | None = None, error: str | None = None) -> None:
        with self._lock:
            self.log.append(DeliveryRecord(d.notification_id, d.type, d.shop_id, d.url, d.attempt, outcome, status,
                                           error, d.duplicate, d.body))
        self._count(f"webhook_{outcome}")

    def _record_dropped(self, d: Delivery) -> None:
        self._record(d, "dropped")

    def _duplicate_of(self, d: Delivery) -> Delivery:
        return replace(d, duplicate=True)       # the same notification id: receivers dedupe on it

    async def _attempt(self, client: httpx.AsyncClient, d: Delivery) -> None:
        status: int | None = None
        error: str | None = None
        try:
            resp = await client.post(d.url, content=d.body, headers={"Content-Type": "application/json",
                                                                       "Authorization": d.signature})
            status = resp.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if status is not None and 200 <= status < 300:
            self._record(d, "delivered", status)
            self._done()
            return
        self._record(d, "failed", status, error)
        if d.attempt >= len(self.retry_delays):
            self._record(d, "abandoned", status, error)
            self._done()
            return
        self._spawn(self._delayed(client, replace(d, attempt=d.attempt + 1), self.retry_delays[d.attempt]))
