"""TikTok Shop webhooks: the receiving endpoint, applying inbox events, and the shop's registered addresses.

``POST /tiktok/webhooks`` takes every event. The ``Authorization`` header must be the hex HMAC-SHA256 of
``app_key + raw body`` under the app secret — checked first, in constant time; a forged or unsigned delivery gets
401 and nothing is stored or echoed. The body ``{type, tts_notification_id, shop_id, timestamp, data}`` is
recorded once per ``tts_notification_id`` (older payloads without one are keyed by a hash of the body), and the
shop's store is looked up by ``shop_id`` (unknown → 404, logged). Event types shopsync does not use are
acknowledged (200) and dropped.

Applying (``tiktok.webhook``): order and product events are only hints — the order (Get Order Detail) or product
(Get Product) is read back from TikTok and written through the guarded upsert, so a stale or replayed delivery
cannot write old data; a product TikTok no longer returns (12019150) is soft-deleted. Since no webhook fires for
a price or stock change, linked SKUs are also read back on a schedule (``links.reconcile``).
``SELLER_DEAUTHORIZATION`` marks the shop's stores uninstalled; ``UPCOMING_AUTHORIZATION_EXPIRATION`` records a
``store.authorization_expiring`` event (TikTok sends it daily from 30 days before the expiry).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import StrictInt, TypeAdapter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from worker.connectors.canonical import Owner
from worker.connectors.contract import ApplyEvent, CheckWebhooks, Delivery, WebhookVerifier
from worker.connectors.tiktok.auth import verify_webhook
from worker.connectors.tiktok.client import TikTokClient
from worker.connectors.tiktok.errors import TikTokApiError
from worker.connectors.tiktok.mapping import order_rows, product_rows, tiktok_id
from worker.jobs.registry import Job, JobContext
from worker.payloads import JsonRejected, PlatformId, Shape, load_json_object, shape_problem
from worker.rpc import connect, events, synced_writes
from worker.web.responses import error_response

if TYPE_CHECKING:
    from worker.connectors.tiktok.connector import TikTokConnector

__all__ = ["EVENT_TOPICS", "TOPICS", "apply_event", "ensure_webhooks", "event_applier", "remove_webhooks",
           "webhook_verifier", "webhooks_check"]

log = logging.getLogger("shopsync.tiktok.webhooks")

PLATFORM = "tiktok"
# TikTok's numeric event types → the topic recorded in the inbox (confirmed by the per-topic doc pages)
EVENT_TOPICS = {1: "ORDER_STATUS_CHANGE", 5: "PRODUCT_STATUS_CHANGE", 6: "SELLER_DEAUTHORIZATION",
                7: "UPCOMING_AUTHORIZATION_EXPIRATION", 15: "PRODUCT_INFORMATION_CHANGE", 16: "PRODUCT_CREATION",
                27: "INVENTORY_STATUS_CHANGE"}
TOPICS: Mapping[str, str | None] = {"ORDER_STATUS_CHANGE": "orders", "PRODUCT_STATUS_CHANGE": "products",
                                    "PRODUCT_INFORMATION_CHANGE": "products", "PRODUCT_CREATION": "products",
                                    "INVENTORY_STATUS_CHANGE": "products", "SELLER_DEAUTHORIZATION": None,
                                    "UPCOMING_AUTHORIZATION_EXPIRATION": None}


class _Envelope(Shape):
    type: StrictInt
    shop_id: PlatformId
    tts_notification_id: PlatformId | None = None
    timestamp: StrictInt | None = None
    data: dict[str, Any] = {}


class _OrderData(Shape):
    order_id: PlatformId


class _ProductData(Shape):
    product_id: PlatformId


ENVELOPE = TypeAdapter(_Envelope)
# what each topic's data must name for its apply to make sense (checked at the edge: a clear 400)
DATA_SHAPES: Mapping[str, TypeAdapter[Any]] = {
    "ORDER_STATUS_CHANGE": TypeAdapter(_OrderData),
    **{t: TypeAdapter(_ProductData) for t, r in TOPICS.items() if r == "products"},
}


def webhook_verifier(connector: TikTokConnector) -> WebhookVerifier:
    async def verify(request: Request, raw: bytes) -> Delivery | Response:
        s = connector.settings
        if not s.configured:
            return error_response(503, "TikTok Shop is not configured on this server")
        # authenticity first: nothing about an unsigned request is looked at, stored or echoed
        if not verify_webhook(s.app_key or "", s.secret(), raw, request.headers.get("authorization")):
            return error_response(401, "invalid webhook signature")
        try:
            body = load_json_object(raw)
        except JsonRejected as exc:
            return error_response(400, str(exc))
        problem = shape_problem(ENVELOPE, body, "the delivery")
        if problem is not None:
            return error_response(400, problem)
        topic = EVENT_TOPICS.get(body["type"])
        if topic is None:
            return JSONResponse({"status": "ignored", "detail": "event type not used by shopsync"})
        shop = body["shop_id"]
        if not str(shop).isdigit() or len(str(shop)) > 30:
            return error_response(400, "shop_id is not a TikTok shop id")
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        problem = shape_problem(DATA_SHAPES[topic], data, f"{topic} data") if topic in DATA_SHAPES else None
        if problem is not None:
            return error_response(400, problem)
        notification = body.get("tts_notification_id")
        delivery = str(notification) if isinstance(notification, str | int) and str(notification) else \
            "sha256:" + hashlib.sha256(raw).hexdigest()
        stamp = body.get("timestamp")
        when = datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, int) and 0 < stamp < 10**10 else None
        return Delivery(topic=topic, delivery_id=delivery[:200], payload={"type": body["type"], "data": data},
                        shop_key=str(shop), triggered_at=when,
                        unknown_shop_ok=topic == "SELLER_DEAUTHORIZATION")

    return verify


async def _apply_product(client: TikTokClient, job: Job, jctx: JobContext, event: Mapping[str, Any],
                         product_id: str) -> None:
    owner = Owner.of(event["store_id"], event["organization_id"])
    fetched_at = datetime.now(UTC)              # read now: that is the state written
    try:
        product = await client.call("GET", f"/product/202309/products/{product_id}")
    except TikTokApiError as exc:
        if exc.code != 12019150:
            raise
        await synced_writes.apply_synced_changes(jctx.db, store_id=event["store_id"],
                                                 deletes={"products": [product_id]},
                                                 deleted_at=event["triggered_at"] or datetime.now(UTC),
                                                 job_id=job.id, worker=jctx.worker_id, inbox_id=event["id"],
                                                 observed_at=fetched_at)
        return
    await synced_writes.apply_synced_changes(jctx.db, store_id=event["store_id"], writes=product_rows(owner, product),
                                             job_id=job.id, worker=jctx.worker_id, inbox_id=event["id"],
                                             observed_at=fetched_at)


async def _apply_order(client: TikTokClient, job: Job, jctx: JobContext, event: Mapping[str, Any],
                       order_id: str) -> str | None:
    fetched_at = datetime.now(UTC)
    try:
        data = await client.call("GET", "/order/202309/orders", params={"ids": order_id})
    except TikTokApiError as exc:
        if exc.code == 21008111:
            return "ignored"                  # not this seller's order (any more)
        raise
    owner = Owner.of(event["store_id"], event["organization_id"])
    writes: dict[str, list[dict[str, Any]]] = {}
    for order in data.get("orders") or []:
        for table, rows in order_rows(owner, order).items():
            writes.setdefault(table, []).extend(rows)
    await synced_writes.apply_synced_changes(jctx.db, store_id=event["store_id"], writes=writes, job_id=job.id,
                                             worker=jctx.worker_id, inbox_id=event["id"], observed_at=fetched_at)
    return None


async def apply_event(connector: TikTokConnector, job: Job, jctx: JobContext, event: Mapping[str, Any]) -> str | None:
    topic = str(event["topic"])
    data: Mapping[str, Any] = (event["payload"] or {}).get("data") or {}
    if topic == "SELLER_DEAUTHORIZATION":
        # as of the event's time: a delayed or retried delivery leaves a newer authorization alone
        await connect.uninstall_shop(jctx.db, platform=PLATFORM, shop_key=event["shop_key"], delete_after=None,
                                     reason="the seller removed the app's authorization for this shop in TikTok Shop",
                                     as_of=event["triggered_at"] or event["received_at"])
        return "processed"
    if topic == "UPCOMING_AUTHORIZATION_EXPIRATION":
        await events.record_event(jctx.db, store_id=event["store_id"], type="store.authorization_expiring",
                                  subject=PLATFORM, details={"expires_at": str(data.get("expiration_time") or "")[:20],
                                                             "platform": PLATFORM})
        return "processed"
    async with connector.open_client(jctx, UUID(str(event["store_id"]))) as client:
        if topic == "ORDER_STATUS_CHANGE":
            return await _apply_order(client, job, jctx, event, tiktok_id(data.get("order_id"), "order id"))
        await _apply_product(client, job, jctx, event, tiktok_id(data.get("product_id"), "product id"))
    return None


def event_applier(connector: TikTokConnector) -> ApplyEvent:
    async def apply(job: Job, jctx: JobContext, event: Mapping[str, Any]) -> str | None:
        return await apply_event(connector, job, jctx, event)

    return apply


async def ensure_webhooks(connector: TikTokConnector, client: TikTokClient, uri: str) -> dict[str, Any]:
    """Register our address for every wanted event type the shop does not already send to it."""
    data = await client.call("GET", "/event/202309/webhooks")
    current = {str(w.get("event_type")): w.get("address") for w in data.get("webhooks") or [] if isinstance(w, dict)}
    created = []
    for event_type in connector.settings.subscribe_events:
        if current.get(event_type) != uri:
            await client.call("PUT", "/event/202309/webhooks", body={"address": uri, "event_type": event_type})
            created.append(event_type)
    if created:
        log.info("tiktok %s: webhook addresses set for %s", client.name, created)
    return {"created": created, "kept": sorted(set(connector.settings.subscribe_events) - set(created))}


async def remove_webhooks(client: TikTokClient, uri: str) -> dict[str, Any]:
    """After a disconnect: stop every event type TikTok sends to our address (others' addresses stay)."""
    data = await client.call("GET", "/event/202309/webhooks")
    removed = sorted(str(w.get("event_type")) for w in data.get("webhooks") or []
                     if isinstance(w, dict) and w.get("address") == uri)
    for event_type in removed:
        await client.call("DELETE", "/event/202309/webhooks", body={"event_type": event_type})
    return {"deleted": removed}


def webhooks_check(connector: TikTokConnector, *, remove: bool = False) -> CheckWebhooks:
    """Keep the shop's webhook addresses right, or (``remove``, after a disconnect) delete ours."""
    async def check(job: Job, jctx: JobContext, store: Mapping[str, Any]) -> Mapping[str, Any]:
        async with connector.open_client(jctx, UUID(str(store["id"])), store) as client:
            uri = connector.settings.webhook_uri(jctx.settings)
            return await (remove_webhooks(client, uri) if remove else ensure_webhooks(connector, client, uri))

    return check
