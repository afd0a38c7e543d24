"""The ``<platform>.webhook`` job every connector shares: load one inbox delivery, skip what was already
handled or must not be stored, let the connector apply it, and record how it ended.

An event whose topic changes a catalog resource is ignored while its store is not active or that
resource's access policy is not ``sync`` (api_only / not_allowed data is never stored); topics that
change no synced data (uninstalls, compliance requests) always reach the connector. The connector's
``apply`` returns the inbox status to record (``processed`` / ``ignored``), or None when it recorded the
status itself in the same transaction as the rows (``apply_synced_changes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.connectors.contract import ApplyEvent
from worker.errors import PermanentError
from worker.jobs.registry import Handler, Job, JobContext
from worker.logs import redact_text
from worker.rpc import webhook_inbox

__all__ = ["inbox_handler"]


def inbox_handler(kind: str, apply: ApplyEvent, topics: Mapping[str, str | None]) -> Handler:
    async def process(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        inbox_id = job.payload.get("inbox_id")
        if not isinstance(inbox_id, int):
            raise PermanentError(f"{kind} job {job.id} has no inbox id")
        db = jctx.db
        event = await webhook_inbox.get_webhook(db, inbox_id=inbox_id)
        if event is None:
            return {"skipped": "the delivery is gone (pruned or its store was deleted)"}
        if event["status"] != "pending":
            return {"skipped": f"already {event['status']}"}
        if event["event_already_applied"]:
            await webhook_inbox.finish_webhook(db, inbox_id=inbox_id, status="ignored",
                                               error="event already applied under another delivery")
            return {"status": "ignored", "reason": "duplicate event"}
        topic = str(event["topic"])
        if topic not in topics:
            await webhook_inbox.finish_webhook(db, inbox_id=inbox_id, status="failed", error="unknown topic")
            raise PermanentError(f"{kind}: no connector topic {topic[:60]!r}")
        resource = topics[topic]
        if resource is not None and (event["store_status"] != "active"
                                     or (event["access_policies"] or {}).get(resource) != "sync"):
            await webhook_inbox.finish_webhook(db, inbox_id=inbox_id, status="ignored")
            return {"status": "ignored", "topic": topic}
        # when the platform's state in this delivery was observed — its event time when the platform gives one
        # (Delivery.triggered_at), else when it reached us — for apply_synced_changes(observed_at=): within one
        # updated_at second, the later observation wins
        event = {**event, "observed_at": event["triggered_at"] or event["received_at"]}
        try:
            status = await apply(job, jctx, event)
        except Exception as exc:
            # a delivery whose job will not run again ends failed, with the reason, not pending forever
            if isinstance(exc, PermanentError) or job.attempts >= job.max_attempts:
                await webhook_inbox.finish_webhook(db, inbox_id=inbox_id, status="failed",
                                                   error=redact_text(f"{type(exc).__name__}: {exc}"))
            raise
        if status is not None:
            await webhook_inbox.finish_webhook(db, inbox_id=inbox_id, status=status)
        return {"status": status or "processed", "topic": topic}

    return process
