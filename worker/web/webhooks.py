"""The webhook endpoint every connector gets: the platform's verifier checks a delivery, the core records it
once in the inbox and answers at once (a ``<platform>.webhook`` job applies it).

The route is ``WebhookSpec.path`` under ``/<platform>``. The body limit applies before the verifier sees
anything; a verifier answers refusals itself (401 for a bad signature, 400 for a malformed delivery).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.connectors.contract import ConnectorContract, Delivery
from worker.db.port import Database
from worker.rpc import webhook_inbox
from worker.web.metrics import WebMetrics
from worker.web.responses import error_response

__all__ = ["webhook_route"]

log = logging.getLogger("shopsync.web.webhooks")


def webhook_route(contract: ConnectorContract) -> Route:
    spec = contract.webhooks
    platform = contract.platform

    async def receive(request: Request) -> Response:
        metrics: WebMetrics = request.app.state.metrics
        raw = await request.body()
        verified = await spec.verify(request, raw)
        if not isinstance(verified, Delivery):
            metrics.webhook(platform, "rejected" if verified.status_code >= 400 else "answered")
            return verified
        if verified.topic not in spec.topics:
            metrics.webhook(platform, "rejected")
            return error_response(400, f"unknown topic {verified.topic[:60]!r}")
        db: Database = request.app.state.db
        if verified.store_id is not None:
            recorded = await webhook_inbox.record_webhook(
                db, platform=platform, delivery_id=verified.delivery_id, store_id=verified.store_id,
                topic=verified.topic, payload=verified.payload, event_id=verified.event_id,
                triggered_at=verified.triggered_at)
        else:
            assert verified.shop_key is not None
            found = await webhook_inbox.receive_webhook(    # one round trip: find the store, record once
                db, platform=platform, shop_key=verified.shop_key, delivery_id=verified.delivery_id,
                topic=verified.topic, payload=verified.payload, event_id=verified.event_id,
                triggered_at=verified.triggered_at)
            if found is None:
                if verified.unknown_shop_ok:
                    metrics.webhook(platform, "ignored")
                    return JSONResponse({"status": "ignored", "detail": "no data is stored for this shop"})
                metrics.webhook(platform, "unknown_shop")
                log.warning("%s webhook for unknown shop %s (topic %s) refused", platform, verified.shop_key[:100],
                            verified.topic[:60])
                return error_response(404, "unknown shop")
            recorded = found
        outcome = "duplicate" if recorded["duplicate"] else "accepted"
        metrics.webhook(platform, outcome)
        return JSONResponse({"status": outcome})

    return Route(spec.path, receive, methods=["POST"])
