"""The ``<platform>.webhook`` job every connector shares: load one inbox delivery, skip what was already
handled, let the connector apply it, and record how it ended.

The connector's ``apply`` returns the inbox status to record (``processed`` / ``ignored``), or None when
it recorded the status itself in the same transaction as the rows (``apply_synced_changes``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from worker.errors import PermanentError
from worker.jobs.registry import Handler, Job, JobContext
from worker.logs import redact_text

__all__ = ["ApplyEvent", "inbox_handler"]

ApplyEvent = Callable[[Job, JobContext, Mapping[str, Any]], Awaitable[str | None]]


def inbox_handler(kind: str, apply: ApplyEvent) -> Handler:
    async def process(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        inbox_id = job.payload.get("inbox_id")
        if not isinstance(inbox_id, int):
            raise PermanentError(f"{kind} job {job.id} has no inbox id")
        db = jctx.db
        rows = await db.rpc("get_webhook", {"p_inbox_id": inbox_id})
        if not rows:
            return {"skipped": "the delivery is gone (pruned or its store was deleted)"}
        event = rows[0]
        if event["status"] != "pending":
            return {"skipped": f"already {event['status']}"}
        if event["event_already_applied"]:
            await db.rpc("finish_webhook", {"p_inbox_id": inbox_id, "p_status": "ignored",
                                            "p_error": "event already applied under another delivery"})
            return {"status": "ignored", "reason": "duplicate event"}
        try:
            status = await apply(job, jctx, event)
        except Exception as exc:
            # a delivery whose job will not run again ends failed, with the reason, not pending forever
            if isinstance(exc, PermanentError) or job.attempts >= job.max_attempts:
                await db.rpc("finish_webhook", {"p_inbox_id": inbox_id, "p_status": "failed",
                                                "p_error": redact_text(f"{type(exc).__name__}: {exc}")})
            raise
        if status is not None:
            await db.rpc("finish_webhook", {"p_inbox_id": inbox_id, "p_status": status})
        return {"status": status or "processed", "topic": event["topic"]}

    return process
