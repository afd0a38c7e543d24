"""The two notification jobs.

``notify.dispatch`` (enqueued by the trigger on ``shopsync.events``): matches the new events against the
rules, in SQL (``collect_notifications``), until the inbox is empty. Grouping happens there: a new message
gets its ``notify.send`` job, due when its window ends.

``notify.send`` ``{"notification_id"}``: one attempt. ``begin_notification_send`` freezes the message and
counts the attempt; the message is rendered, the channel's secret opened, the provider called, and
``finish_notification_send`` records the outcome — sent; retry (the next attempt is a new job, after a
backoff doubling up to ``SHOPSYNC_NOTIFY_RETRY_MAX_SECONDS``, so a provider down for hours loses nothing);
or the channel failing (held until fixed). If the worker dies between the provider's acceptance and
``finish``, the job runs again and re-sends under the same idempotency key / ``webhook-id`` / ``Message-ID``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from worker.config import Settings
from worker.connectors.base import ConnectorBase
from worker.errors import ConfigError, PermanentError, SealingError
from worker.jobs.registry import Job, JobContext
from worker.metrics import NOTIFICATION_DELIVERIES
from worker.notify import providers
from worker.notify.channels import open_secret
from worker.notify.settings import NotifySettings, load_notify_settings
from worker.notify.templates import message_context, render, webhook_body
from worker.rpc import notifications

__all__ = ["DISPATCH_KIND", "NOTIFIER", "SEND_KIND", "Notifier", "build_message", "dispatch_handler",
           "send_handler"]

log = logging.getLogger("shopsync.notify")

DISPATCH_KIND = "notify.dispatch"
SEND_KIND = "notify.send"
COLLECT_BATCH = 2000


class Notifier(ConnectorBase[NotifySettings]):
    """The notification settings (loaded on first use, replaceable in tests) and a sealer per core settings."""

    def __init__(self, settings: NotifySettings | None = None) -> None:
        super().__init__(settings, load_notify_settings)


NOTIFIER = Notifier()


async def dispatch_handler(job: Job, jctx: JobContext) -> Mapping[str, Any]:
    totals = {"events": 0, "attached": 0, "notifications": 0}
    while True:
        found = await notifications.collect_notifications(jctx.db, limit=COLLECT_BATCH)
        for key in totals:
            totals[key] += int(found.get(key) or 0)
        if int(found.get("events") or 0) < COLLECT_BATCH:
            return totals


def build_message(data: Mapping[str, Any], settings: NotifySettings, core: Settings) -> providers.Message:
    """The message ``begin_notification_send`` (or a preview) describes, rendered for every channel kind."""
    context = message_context(data, links=settings.links_base(core), max_listed=settings.max_listed)
    notification = data.get("notification") or {}
    return providers.Message(notification_id=int(notification.get("id") or 0),
                             organization_id=str((data.get("organization") or {}).get("id") or ""),
                             rendered=render(context, templates_dir=settings.templates_dir),
                             webhook_body=webhook_body(context))


def _notification_id(job: Job) -> int:
    value = job.payload.get("notification_id")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise PermanentError("a notify.send job needs an integer payload.notification_id")
    return int(value)


async def send_handler(job: Job, jctx: JobContext) -> Mapping[str, Any]:
    notification_id = _notification_id(job)
    data = await notifications.begin_notification_send(jctx.db, notification_id=notification_id)
    if "skip" in data:
        return {"notification_id": notification_id, "skipped": data["skip"]}
    settings, core = NOTIFIER.settings, jctx.settings
    channel = data["channel"]
    attempt = int(data["notification"].get("attempts") or 1)
    try:
        secret = open_secret(NOTIFIER.sealer(core), channel["id"], data.get("secret"))
    except (SealingError, ConfigError) as exc:
        # our keys, not the channel: try again later (an operator fixes SHOPSYNC_SEALING_KEYS)
        await notifications.finish_notification_send(jctx.db, notification_id=notification_id, outcome="retry",
                                                      error=f"cannot open the channel's secret: {exc}",
                                                      retry_in=settings.retry_max_seconds)
        return {"notification_id": notification_id, "status": "pending", "error": "sealing"}
    message = build_message(data, settings, core)
    outcome = await providers.deliver(str(channel["kind"]), channel.get("config") or {}, secret, message, settings,
                                      allow_private=settings.private_allowed(core))
    NOTIFICATION_DELIVERIES.labels(str(channel["kind"]), outcome.status).inc()
    retry_in = max(outcome.retry_in or 0.0, settings.retry_delay(attempt)) if outcome.status == "retry" else None
    status = await notifications.finish_notification_send(
        jctx.db, notification_id=notification_id, outcome=outcome.status, provider_message_id=outcome.message_id,
        error=outcome.error, retry_in=retry_in)
    if outcome.status != "sent":
        log.info("notification %s to %s channel %s: %s (%s)", notification_id, channel["kind"], channel["id"],
                 outcome.status, outcome.error)
    return {"notification_id": notification_id, "status": status, "attempt": attempt,
            **({"retry_in": retry_in} if retry_in is not None else {})}
