"""ShopRenter webhooks: hints that an order changed, authenticated by a per-store token in the URL.

ShopRenter signs nothing it delivers, so each store's webhooks point at
``POST /shoprenter/webhooks/{store_id}/{token}`` with a random token generated for that store (sealed with
its credentials, compared in constant time). A delivery (``{"orders": {"order": [{innerResourceId, …}]}}``)
is only a hint: the ``shoprenter.webhook`` job re-fetches each named order from the API (through the
shop's rate limiter) and writes what ShopRenter says now — a forged or stale body can change nothing.
Events: ``order_confirm`` and ``order_status_change``; ``shoprenter.check_webhooks`` keeps them registered.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import Field, TypeAdapter
from starlette.requests import Request
from starlette.responses import Response

from worker.connectors.canonical import Owner
from worker.connectors.contract import ApplyEvent, CheckWebhooks, Delivery, WebhookVerifier
from worker.connectors.shoprenter.client import ShopRenterClient
from worker.connectors.shoprenter.mapping import order_rows
from worker.connectors.store_secrets import WebhookSecretCache
from worker.db.port import Database
from worker.jobs.registry import Job, JobContext
from worker.payloads import JsonRejected, Shape, load_json, shape_problem
from worker.rpc import synced_writes
from worker.web.responses import error_response

if TYPE_CHECKING:
    from worker.connectors.shoprenter.connector import ShopRenterConnector

__all__ = ["EVENTS", "TOPICS", "ensure_webhooks", "event_applier", "order_ids", "webhook_verifier", "webhooks_check"]

log = logging.getLogger("shopsync.shoprenter.webhooks")

PLATFORM = "shoprenter"
EVENTS = ("order_confirm", "order_status_change")
# a delivery is recorded as one hint topic: the orders it names are re-fetched
ORDER_HINT = "order_hint"
TOPICS = {ORDER_HINT: "orders"}
MAX_ORDERS = 200


class _OrderRef(Shape):
    innerResourceId: str = Field(max_length=200)     # noqa: N815 - ShopRenter's name


class _Orders(Shape):
    order: list[_OrderRef] | _OrderRef


class _Hint(Shape):
    orders: _Orders | list[_OrderRef]


HINT = TypeAdapter(_Hint)       # {"orders": {"order": [{"innerResourceId": "orders/…"}, …]}}


def order_ids(payload: Any) -> list[str]:
    """Outer ids of the orders a delivery names (``innerResourceId`` is ``orders/<outer id>``)."""
    orders = payload.get("orders") if isinstance(payload, Mapping) else None
    items = orders.get("order") if isinstance(orders, Mapping) else orders
    if isinstance(items, Mapping):
        items = [items]
    found: list[str] = []
    for item in items or []:
        ref = item.get("innerResourceId") if isinstance(item, Mapping) else None
        if isinstance(ref, str) and ref.startswith("orders/") and 8 < len(ref) < 120:
            outer = ref.partition("/")[2]
            if outer.replace("=", "").isalnum() and outer not in found:
                found.append(outer)
    return found[:MAX_ORDERS]


def webhook_verifier(connector: ShopRenterConnector) -> WebhookVerifier:
    """Each store's hints arrive at ``POST /shoprenter/webhooks/{store_id}/{token}``."""
    tokens = WebhookSecretCache(PLATFORM, "webhook_token", connector.sealer)

    async def verify(request: Request, raw: bytes) -> Delivery | Response:
        try:
            store_id = UUID(request.path_params["store_id"])
        except ValueError:
            return error_response(404, "unknown store")
        given = str(request.path_params["token"]).encode()
        db: Database = request.app.state.db
        core = request.app.state.settings
        found = await tokens.get(db, core, store_id)

        def valid(entry: tuple[str | None, str] | None) -> bool:
            # compare digests: equal length whatever was sent, and constant time
            return bool(entry and entry[0]) and hmac.compare_digest(
                hashlib.sha256(str(entry[0] if entry else "").encode()).digest(), hashlib.sha256(given).digest())

        if not valid(found):
            found = await tokens.get(db, core, store_id, fresh=True)
            if not valid(found):
                return error_response(401, "unknown store or invalid webhook token")
        try:
            payload = load_json(raw)
        except JsonRejected as exc:
            return error_response(400, f"{exc} (subscribe with type json)")
        problem = shape_problem(HINT, payload, "the order hint")
        if problem is not None:
            return error_response(400, problem)
        ids = order_ids(payload)
        if not ids:
            return error_response(400, "the body names no order (expected orders.order[].innerResourceId)")
        # a hint has no delivery id: the orders it names, in one inbox row per distinct body
        delivery = hashlib.sha256(raw).hexdigest()
        return Delivery(topic=ORDER_HINT, delivery_id=f"{store_id}:{delivery}", payload={"order_ids": ids},
                        store_id=store_id)

    return verify


def event_applier(connector: ShopRenterConnector) -> ApplyEvent:
    """Re-fetch the orders a hint names (only an active store that syncs orders gets here)."""

    async def apply(job: Job, jctx: JobContext, event: Mapping[str, Any]) -> str | None:
        ids = [str(i) for i in (event["payload"] or {}).get("order_ids") or []][:MAX_ORDERS]
        owner = Owner.of(event["store_id"], event["organization_id"])
        writes: dict[str, list[dict[str, Any]]] = {}
        fetched_at = datetime.now(UTC)          # the orders are read now: that is the state written
        async with connector.open_client(jctx, UUID(str(event["store_id"])), event["shop_key"]) as client:
            for outer in ids:
                order = await client.get(f"orderExtend/{outer}", {"full": 1}, missing_ok=True)
                if not isinstance(order, dict):
                    continue                # gone (or never existed): reconciliation handles deletes
                for table, rows in order_rows(owner, order, connector.zone).items():
                    writes.setdefault(table, []).extend(rows)
        await synced_writes.apply_synced_changes(jctx.db, store_id=event["store_id"], writes=writes, job_id=job.id,
                                                 worker=jctx.worker_id, inbox_id=event["id"], observed_at=fetched_at)
        return None

    return apply


def webhooks_check(connector: ShopRenterConnector, *, remove: bool = False) -> CheckWebhooks:
    """Keep the store's webhooks right, or (``remove``, after a disconnect) delete every one of ours."""
    async def check(job: Job, jctx: JobContext, store: Mapping[str, Any]) -> Mapping[str, Any]:
        async with connector.open_client(jctx, store["id"], store["shop_key"]) as client:
            token = await connector.webhook_token(jctx, store["id"])
            uri = connector.settings.webhook_uri(jctx.settings, store["id"], token)
            synced = (store.get("access_policies") or {}).get(TOPICS[ORDER_HINT], "sync") == "sync"
            return await ensure_webhooks(client, uri, set(EVENTS) if synced and not remove else set(),
                                         prefix=connector.settings.webhook_uri(jctx.settings, store["id"], ""))

    return check


async def ensure_webhooks(client: ShopRenterClient, uri: str, wanted: set[str], *, prefix: str) -> dict[str, Any]:
    """Our ``webHooks`` (a parameter URL under ``prefix``): missing events created, inactive ones switched on,
    ones with an old token or an unwanted event deleted."""
    ours: dict[str, list[Mapping[str, Any]]] = {}
    stale: list[Mapping[str, Any]] = []
    async for page in client.pages("webHooks", {}):
        for hook in page.items:
            urls = [str(p.get("url")) for p in hook.get("webHookParameters") or [] if isinstance(p, Mapping)]
            if any(u == uri for u in urls):
                ours.setdefault(str(hook.get("event")), []).append(hook)
            elif any(u.startswith(prefix) for u in urls):
                stale.append(hook)
    created, enabled, deleted = [], [], []
    for event in sorted(wanted - set(ours)):
        await client.request("POST", "webHooks", json={
            "label": f"shopsync {event}", "event": event, "status": "1",
            "webHookParameters": [{"type": "json", "url": uri}]})
        created.append(event)
    for event, hooks in sorted(ours.items()):
        keep, extra = (hooks[0], hooks[1:]) if event in wanted else (None, hooks)
        if keep is not None and str(keep.get("status")) != "1":
            await client.request("PUT", f"webHooks/{keep['id']}", json={"status": "1"})
            enabled.append(event)
        stale.extend(extra)
    for old in stale:
        await client.request("DELETE", f"webHooks/{old['id']}", expect=(404,))
        deleted.append(str(old.get("event")))
    if created or enabled or deleted:
        log.info("shoprenter %s webhooks: created %s, enabled %s, deleted %s", client.shop, created, enabled, deleted)
    return {"created": created, "enabled": enabled, "deleted": deleted, "kept": sorted(wanted & set(ours))}
