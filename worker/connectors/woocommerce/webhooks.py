"""WooCommerce webhooks: the receiving endpoint, applying inbox events, and keeping webhooks alive.

Each store's webhooks point at ``POST /woocommerce/webhooks/{store_id}`` and are signed with a secret
generated for that store at connect time (sealed with its keys). The endpoint answers WooCommerce's
unsigned creation ping (``webhook_id=N``) with 200, verifies ``X-WC-Webhook-Signature`` (base64
HMAC-SHA256 of the raw body, constant-time) before looking at anything else, and records the delivery
once per ``X-WC-Webhook-Delivery-ID`` and body; the ``woocommerce.webhook`` job applies it through the same guarded
upsert as syncs. WooCommerce *disables* a webhook after more than 5 failed deliveries in a row:
``woocommerce.check_webhooks`` (periodic) re-enables or re-creates ours; ``woocommerce.disconnect``
deletes them when a user disconnects the store.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from worker.connectors.contract import CheckWebhooks, Delivery, WebhookVerifier
from worker.connectors.signatures import base64_hmac_matches
from worker.connectors.store_secrets import WebhookSecretCache
from worker.connectors.woocommerce.client import WooClient
from worker.connectors.woocommerce.mapping import webhook_effect
from worker.connectors.woocommerce.settings import WEBHOOK_TOPICS
from worker.jobs.registry import Job, JobContext
from worker.payloads import JsonRejected, Record, load_json_object, shape_problem
from worker.rpc import synced_writes
from worker.web.responses import error_response, header_value

if TYPE_CHECKING:
    from worker.connectors.woocommerce.connector import WooConnector

__all__ = ["apply_event", "ensure_webhooks", "verify_signature", "wanted_topics", "webhook_verifier",
           "webhooks_check"]

log = logging.getLogger("shopsync.woocommerce.webhooks")

PLATFORM = "woocommerce"
MAX_HEADER = 200
RECORD = TypeAdapter(Record)        # every topic's body is the record (a delete's only names it)


def verify_signature(secret: str, body: bytes, signature: str | None) -> bool:
    if signature is not None and len(signature) > MAX_HEADER:
        return False
    return base64_hmac_matches(body, signature, [secret])


def _is_ping(request: Request, body: bytes) -> bool:
    """WooCommerce's unsigned creation ping: a form body ``webhook_id=<n>`` and no signature."""
    return ("x-wc-webhook-signature" not in request.headers and body.startswith(b"webhook_id=")
            and body[len(b"webhook_id="):].strip().isdigit())


def webhook_verifier(connector: WooConnector) -> WebhookVerifier:
    """Each store's webhooks arrive at ``POST /woocommerce/webhooks/{store_id}``."""
    secrets = WebhookSecretCache(PLATFORM, "webhook_secret", connector.sealer)

    async def verify(request: Request, raw: bytes) -> Delivery | Response:
        if _is_ping(request, raw):
            return JSONResponse({"status": "pong"})
        try:
            store_id = UUID(request.path_params["store_id"])
        except ValueError:
            return error_response(404, "unknown store")
        found = await secrets.get(request.app.state.db, request.app.state.settings, store_id)
        if found is None:
            return error_response(404, "unknown store")
        signature = request.headers.get("x-wc-webhook-signature")
        if found[0] is None or not verify_signature(found[0], raw, signature):
            found = await secrets.get(request.app.state.db, request.app.state.settings, store_id,
                                        fresh=True)      # the secret may have just changed
            if found is None or found[0] is None or not verify_signature(found[0], raw, signature):
                return error_response(401, "invalid webhook signature")
        topic = header_value(request, "x-wc-webhook-topic")
        delivery_id = header_value(request, "x-wc-webhook-delivery-id")
        if topic is None or delivery_id is None:
            return error_response(400, "missing X-WC-Webhook-Topic or X-WC-Webhook-Delivery-ID")
        if topic not in WEBHOOK_TOPICS:
            return error_response(400, f"unknown topic {topic[:60]!r}")
        try:
            payload = load_json_object(raw)
        except JsonRejected as exc:
            return error_response(400, str(exc))
        problem = shape_problem(RECORD, payload, topic)
        if problem is not None:
            return error_response(400, problem)
        # X-WC-Webhook-Delivery-ID is wp_hash(webhook id + the current second): a retry of one delivery
        # repeats it, but so do two events of one webhook in the same second. Scoped by store and body,
        # a retry is still one row while two different events are two.
        body_hash = hashlib.sha256(raw).hexdigest()[:16]
        return Delivery(topic=topic, delivery_id=f"{store_id}:{delivery_id}:{body_hash}", payload=payload,
                        store_id=store_id)

    return verify


# --- applying inbox events --------------------------------------------------------------------------------

async def apply_event(job: Job, jctx: JobContext, event: Mapping[str, Any]) -> str | None:
    """Apply one delivery (only an active store's, for a resource it syncs, reaches here)."""
    effect = webhook_effect(str(event["topic"]), event["payload"], store_id=UUID(str(event["store_id"])),
                            organization_id=UUID(str(event["organization_id"])), triggered_at=event["triggered_at"])
    # WooCommerce builds a delivery's body when it sends it: its state is as of (just before) receipt
    await synced_writes.apply_synced_changes(jctx.db, store_id=event["store_id"], writes=effect.writes,
                                             deletes=effect.deletes, deleted_at=effect.deleted_at, job_id=job.id,
                                             worker=jctx.worker_id, inbox_id=event["id"],
                                             observed_at=event["observed_at"])
    return None


def webhooks_check(connector: WooConnector, *, remove: bool = False) -> CheckWebhooks:
    """Keep the store's webhooks right, or (``remove``, after a disconnect) delete every one of ours."""
    async def check(job: Job, jctx: JobContext, store: Mapping[str, Any]) -> Mapping[str, Any]:
        async with connector.open_client(jctx, store["id"], store["shop_key"]) as (client, fields):
            return await ensure_webhooks(client, connector.settings.webhook_uri(jctx.settings, store["id"]),
                                         str(fields["webhook_secret"]), set() if remove else wanted_topics(store))

    return check


# --- the store's webhooks ---------------------------------------------------------------------------------

def wanted_topics(store: Mapping[str, Any]) -> set[str]:
    policies = store.get("access_policies") or {}
    return {t for t, resource in WEBHOOK_TOPICS.items() if policies.get(resource, "sync") == "sync"}


async def ensure_webhooks(client: WooClient, uri: str, secret: str, wanted: set[str], *,
                          reset_secret: bool = False) -> dict[str, Any]:
    """Our webhooks at the store (those delivering to ``uri``): missing topics created, disabled or paused
    ones re-activated (``reset_secret`` also gives them ``secret``), unwanted ones deleted."""
    ours: dict[str, list[Mapping[str, Any]]] = {}
    async for page in client.pages("/webhooks", {"orderby": "id", "order": "asc"}, per_page=100):
        for hook in page.items:
            if hook.get("delivery_url") == uri:
                ours.setdefault(str(hook.get("topic")), []).append(hook)
    created, reactivated, deleted = [], [], []
    for topic in sorted(wanted - set(ours)):
        await client.request("POST", "/webhooks", json={
            "name": f"shopsync {topic}", "topic": topic, "delivery_url": uri, "secret": secret, "status": "active"})
        created.append(topic)
    for topic, hooks in sorted(ours.items()):
        keep, extra = (hooks[0], hooks[1:]) if topic in wanted else (None, hooks)
        if keep is not None and (keep.get("status") != "active" or reset_secret):
            changes: dict[str, Any] = {"status": "active"}
            if reset_secret:
                changes["secret"] = secret
            await client.request("PUT", f"/webhooks/{int(keep['id'])}", json=changes)
            reactivated.append(topic)
        for duplicate in extra:
            await client.request("DELETE", f"/webhooks/{int(duplicate['id'])}", params={"force": "true"})
            deleted.append(topic)
    if created or deleted or reactivated:
        log.info("woocommerce %s webhooks: created %s, re-activated %s, deleted %s", client.store_url, created,
                 reactivated, deleted)
    return {"created": created, "reactivated": reactivated, "deleted": deleted,
            "kept": sorted(wanted & set(ours))}
