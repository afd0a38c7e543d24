"""Notifications: events (``shopsync.events``) reach an organization's channels — email by SMTP, Resend or
Mailgun, and signed webhooks — grouped, once per channel, retried until delivered (docs/notifications.md).

One purpose per module: ``settings`` (``SHOPSYNC_NOTIFY_*``), ``channels`` (what each kind needs, sealed
secrets), ``signing`` (Standard Webhooks), ``templates`` (Jinja2 messages), ``providers`` (one attempt through
SMTP, Resend, Mailgun or a webhook, and what the answer means), ``delivery`` (the ``notify.dispatch`` and
``notify.send`` jobs), ``web`` (the channel endpoints). Rules, grouping and daily summaries are SQL
(``sql/functions/52_notifications.sql``).
"""

from __future__ import annotations

from worker.jobs.registry import JobRegistry
from worker.notify.delivery import DISPATCH_KIND, NOTIFIER, SEND_KIND, dispatch_handler, send_handler

__all__ = ["NOTIFIER", "register_jobs"]


def register_jobs(registry: JobRegistry) -> None:
    registry.register(DISPATCH_KIND, dispatch_handler)
    registry.register(SEND_KIND, send_handler)
