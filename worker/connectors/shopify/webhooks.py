"""Shopify webhooks: the receiving endpoint, applying inbox events, and keeping subscriptions alive.

``POST /shopify/webhooks`` takes every topic (Shopify puts it in ``X-Shopify-Topic``). It verifies the HMAC
over the raw bytes before anything else, checks shop and topic, records the delivery in the inbox
(unique on ``X-Shopify-Webhook-Id``: a retried delivery is a no-op) and answers at once; a job applies it.

Applying (``shopify.webhook``) skips events already applied under another delivery id (Shopify may send one
event more than once, with new webhook ids and the same ``X-Shopify-Event-Id``), and writes through the
same guarded upsert as syncs, so an older payload never overwrites newer data and a tie is applied.
Compliance topics become GDPR requests; ``app/uninstalled`` marks the store uninstalled.

Subscriptions are registered on install and re-checked by ``shopify.check_webhooks`` (enqueued
periodically by ``enqueue_periodic_checks``): Shopify deletes a subscription after repeated failed
deliveries, and the topics wanted follow the store's access policies.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import Response

from worker.config import Settings
from worker.connectors.contract import CheckWebhooks, Delivery, WebhookVerifier
from worker.connectors.shopify.auth import InvalidShopDomain, normalize_shop_domain, verify_webhook
from worker.connectors.shopify.graphql import ShopifyGraphQL
from worker.connectors.shopify.mapping import NOT_IN_WEBHOOKS, WEBHOOK_TOPICS, webhook_effect
from worker.errors import RetryableError
from worker.jobs.registry import Job, JobContext
from worker.payloads import JsonRejected, PlatformId, Record, Shape, load_json_object, shape_problem
from worker.rpc import gdpr, stores, synced_writes
from worker.web.responses import error_response, header_value

if TYPE_CHECKING:
    from worker.connectors.shopify.connector import ShopifyConnector

__all__ = ["COMPLIANCE_TOPICS", "TOPICS", "apply_event", "ensure_subscriptions", "subscriptions_check",
           "wanted_topics", "webhook_verifier"]

log = logging.getLogger("shopsync.shopify.webhooks")

PLATFORM = "shopify"
# compliance topics → gdpr request types (configured in the app's settings, not through the API)
COMPLIANCE_TOPICS = {"customers/data_request": "data_request", "customers/redact": "customer_redact",
                     "shop/redact": "shop_redact"}
UNINSTALLED = "app/uninstalled"
# every topic we receive → the catalog resource it changes (None: it changes no synced data)
TOPICS: Mapping[str, str | None] = {**WEBHOOK_TOPICS, **dict.fromkeys(COMPLIANCE_TOPICS), UNINSTALLED: None}

SUBSCRIPTIONS = """
query Subscriptions($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) {
    nodes { id topic uri }
    pageInfo { hasNextPage endCursor }
  }
}"""
CREATE_SUBSCRIPTION = """
mutation Subscribe($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id }
    userErrors { field message }
  }
}"""
DELETE_SUBSCRIPTION = """
mutation Unsubscribe($id: ID!) {
  webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId userErrors { field message } }
}"""


NANOS = re.compile(r"(\.\d{6})\d+")


def _parse_time(value: str | None) -> datetime | None:
    """``X-Shopify-Triggered-At`` (e.g. ``2026-12-07T10:00:00.123456789Z``: nanoseconds, which Python's parser
    refuses, are cut to microseconds); None when absent or not a time with a zone."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(NANOS.sub(r"\1", value.replace("Z", "+00:00"), count=1))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


class _InventoryLevel(Shape):
    inventory_item_id: PlatformId
    location_id: PlatformId


class _Subject(Shape):
    id: PlatformId | None = None
    email: str | None = None
    phone: str | None = None


class _DataRequest(Shape):
    id: PlatformId


class _Compliance(Shape):
    shop_id: PlatformId | None = None
    customer: _Subject | None = None
    orders_to_redact: list[PlatformId] | None = None
    orders_requested: list[PlatformId] | None = None
    data_request: _DataRequest | None = None


# what each topic's body must hold for its apply to make sense (checked at the edge: a clear 400)
SHAPES: Mapping[str, TypeAdapter[Any]] = {
    **{topic: TypeAdapter(Record) for topic in WEBHOOK_TOPICS},
    "inventory_levels/update": TypeAdapter(_InventoryLevel),
    **{topic: TypeAdapter(_Compliance) for topic in COMPLIANCE_TOPICS},
}


def webhook_verifier(connector: ShopifyConnector) -> WebhookVerifier:
    """Every topic arrives at ``POST /shopify/webhooks`` (the topic is a header)."""

    async def verify(request: Request, raw: bytes) -> Delivery | Response:
        if not connector.settings.configured:
            return error_response(503, "Shopify is not configured on this server")
        # authenticity first: nothing about an unsigned request is looked at, stored or echoed
        if not verify_webhook(raw, request.headers.get("x-shopify-hmac-sha256"), connector.settings.secrets()):
            return error_response(401, "invalid webhook signature")
        topic = header_value(request, "x-shopify-topic")
        delivery_id = header_value(request, "x-shopify-webhook-id")
        if topic is None or delivery_id is None:
            return error_response(400, "missing X-Shopify-Topic or X-Shopify-Webhook-Id")
        if topic not in TOPICS:
            return error_response(400, f"unknown topic {topic[:60]!r}")
        try:
            shop = normalize_shop_domain(request.headers.get("x-shopify-shop-domain"))
        except InvalidShopDomain:
            return error_response(400, "missing or invalid X-Shopify-Shop-Domain")
        try:
            payload = load_json_object(raw)
        except JsonRejected as exc:
            return error_response(400, str(exc))
        problem = shape_problem(SHAPES[topic], payload, topic) if topic in SHAPES else None
        if problem is not None:
            return error_response(400, problem)
        return Delivery(topic=topic, delivery_id=delivery_id, payload=payload, shop_key=shop,
                        event_id=header_value(request, "x-shopify-event-id"),
                        triggered_at=_parse_time(header_value(request, "x-shopify-triggered-at")),
                        # nothing stored for this shop (never claimed, or already redacted): nothing to do
                        unknown_shop_ok=topic in COMPLIANCE_TOPICS or topic == UNINSTALLED)

    return verify


# --- applying inbox events --------------------------------------------------------------------------------

def _subject(topic: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Who a compliance request is about (GDPR requests keep this until they complete)."""
    found = payload.get("customer")
    customer: Mapping[str, Any] = found if isinstance(found, dict) else {}
    subject: dict[str, Any] = {}
    if customer.get("id") is not None:
        subject["customer_id"] = str(customer["id"])
    if customer.get("email"):
        subject["emails"] = [str(customer["email"])]
    if customer.get("phone"):
        subject["phones"] = [str(customer["phone"])]
    orders = payload.get("orders_to_redact") or payload.get("orders_requested") or []
    if isinstance(orders, list) and orders:
        subject["order_ids"] = [str(o) for o in orders]
    return subject


async def apply_event(job: Job, jctx: JobContext, event: Mapping[str, Any]) -> str | None:
    """Apply one inbox event (data topics reach here only for an active store that syncs the resource).
    Returns the inbox status to record, or None when the apply recorded it itself (data topics: the rows
    and the inbox status change in one transaction)."""
    db = jctx.db
    topic = str(event["topic"])
    store_id = event["store_id"]
    payload: Mapping[str, Any] = event["payload"]
    if topic in COMPLIANCE_TOPICS:
        found = payload.get("data_request")
        request_id = found.get("id") if isinstance(found, dict) else None
        # the same event under another delivery id must not become a second request: key by event id
        key = request_id or event["event_id"] or event["id"]
        # every store of the shop, in any organization: data left behind by an earlier connection counts too
        for store in await stores.stores_of_shop(db, platform=PLATFORM, shop_key=event["shop_key"]):
            await gdpr.record_gdpr_request(db, platform=PLATFORM, store_id=store["store_id"],
                                           request_type=COMPLIANCE_TOPICS[topic],
                                           platform_request_id=f"{topic}:{key}:{store['store_id']}",
                                           subject=_subject(topic, payload))
        return "processed"
    if topic == UNINSTALLED:
        # as of the event's time: a delayed or retried delivery leaves a newer installation alone
        await stores.mark_store_uninstalled(db, store_id=store_id, as_of=event["triggered_at"] or event["received_at"],
                                            reason="the app was uninstalled from the Shopify admin")
        return "processed"
    effect = webhook_effect(topic, payload, store_id=UUID(str(store_id)),
                            organization_id=UUID(str(event["organization_id"])),
                            triggered_at=event["triggered_at"])
    await synced_writes.apply_synced_changes(db, store_id=store_id, writes=effect.writes, deletes=effect.deletes,
                                             deleted_at=effect.deleted_at, keep=NOT_IN_WEBHOOKS, job_id=job.id,
                                             worker=jctx.worker_id, inbox_id=event["id"],
                                             observed_at=event["observed_at"])
    return None


def subscriptions_check(connector: ShopifyConnector, *, remove: bool = False) -> CheckWebhooks:
    """Keep the store's subscriptions right, or (``remove``, after a disconnect) delete every one of ours."""
    async def check(job: Job, jctx: JobContext, store: Mapping[str, Any]) -> Mapping[str, Any]:
        async with connector.open_client(jctx, store["id"], store["shop_key"]) as client:
            wanted = set() if remove else wanted_topics(store)
            return await ensure_subscriptions(connector, client, jctx.settings, wanted)

    return check


# --- subscriptions ----------------------------------------------------------------------------------------

def _enum(topic: str) -> str:
    return topic.upper().replace("/", "_")


def wanted_topics(store: Mapping[str, Any]) -> set[str]:
    """GraphQL topic enums this store should be subscribed to: its synced resources, plus uninstall."""
    wanted = {_enum(UNINSTALLED)}
    for topic, resource in WEBHOOK_TOPICS.items():
        if (store.get("access_policies") or {}).get(resource, "sync") == "sync":
            wanted.add(_enum(topic))
    return wanted


async def ensure_subscriptions(connector: ShopifyConnector, client: ShopifyGraphQL, core: Settings,
                               wanted: set[str]) -> dict[str, Any]:
    """Create missing subscriptions to our endpoint, delete ours that are not ``wanted`` (topic enums)."""
    uri = connector.settings.webhook_uri(core)
    ours: dict[str, list[str]] = {}
    async for node in client.paginate(SUBSCRIPTIONS, "webhookSubscriptions", page_size=100):
        if node.get("uri") == uri:
            ours.setdefault(str(node.get("topic")), []).append(str(node.get("id")))
    created, deleted = [], []
    for topic in sorted(wanted - set(ours)):
        data = await client.query(CREATE_SUBSCRIPTION, {"topic": topic, "uri": uri})
        errors = (data.get("webhookSubscriptionCreate") or {}).get("userErrors") or []
        if errors:
            raise RetryableError(f"Shopify refused the {topic} subscription: "
                                 + "; ".join(str(e.get("message"))[:200] for e in errors))
        created.append(topic)
    for topic, ids in sorted(ours.items()):
        # not wanted any more (a policy changed), or a duplicate of one we keep
        for sub_id in ids if topic not in wanted else ids[1:]:
            await client.query(DELETE_SUBSCRIPTION, {"id": sub_id})
            deleted.append(topic)
    if created or deleted:
        log.info("shopify %s webhooks: created %s, deleted %s", client.shop, created, deleted)
    return {"created": created, "deleted": deleted, "kept": sorted(wanted & set(ours))}
