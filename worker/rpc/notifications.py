"""Notifications (``sql/functions/52_notifications.sql``): collecting events into messages, one attempt at a
time, channels written by the web process, key rotation of channel secrets, webhook checks."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import as_mapping, sql

__all__ = ["begin_notification_send", "collect_notifications", "finish_notification_send",
           "notification_channel_access", "notification_preview_data", "notification_secrets_to_reseal",
           "put_notification_channel", "record_webhook_check", "reseal_notification_secret"]

_COLLECT = sql("collect_notifications", "jsonb", p_limit="integer")
_BEGIN = sql("begin_notification_send", "jsonb", p_notification_id="bigint")
_FINISH = sql("finish_notification_send", "text", p_notification_id="bigint", p_outcome="text",
              p_provider_message_id="text", p_error="text", p_retry_in_seconds="double precision")
_ACCESS = sql("notification_channel_access", "jsonb", p_user_id="uuid", p_organization_id="uuid",
              p_channel_id="uuid", p_roles="text[]")
_PUT = sql("put_notification_channel", "jsonb", p_user_id="uuid", p_organization_id="uuid", p_channel_id="uuid",
           p_name="text", p_kind="text", p_config="jsonb", p_key_id="text", p_sealed="text")
_PREVIEW = sql("notification_preview_data", "jsonb", p_user_id="uuid", p_channel_id="uuid", p_event_type="text")
_TO_RESEAL = sql("notification_secrets_to_reseal", "setof", p_active_key_id="text", p_limit="integer")
_RESEAL = sql("reseal_notification_secret", "boolean", p_channel_id="uuid", p_expected_version="integer",
              p_key_id="text", p_sealed="text")
_WEBHOOK_CHECK = sql("record_webhook_check", "bigint", p_store_id="uuid", p_subscribed="text[]",
                     p_restored="text[]")

ADMINS = ["owner", "admin"]
MEMBERS = ["owner", "admin", "member"]


async def collect_notifications(db: Database, *, limit: int) -> dict[str, Any]:
    """Match up to ``limit`` new events against the rules: ``{"events", "attached", "notifications"}``."""
    return dict(as_mapping(await _COLLECT(db, p_limit=limit)))


async def begin_notification_send(db: Database, *, notification_id: int) -> dict[str, Any]:
    """The message, its channel (with the sealed secret), organization and events — or ``{"skip": why}``."""
    return dict(as_mapping(await _BEGIN(db, p_notification_id=notification_id)))


async def finish_notification_send(db: Database, *, notification_id: int, outcome: str,
                                   provider_message_id: str | None = None, error: str | None = None,
                                   retry_in: float | None = None) -> str | None:
    """``outcome``: ``sent``, ``retry`` or ``channel_failed``. Returns the message's new status."""
    status = await _FINISH(db, p_notification_id=notification_id, p_outcome=outcome,
                           p_provider_message_id=provider_message_id, p_error=error, p_retry_in_seconds=retry_in)
    return None if status is None else str(status)


async def notification_channel_access(db: Database, *, user_id: UUID | str, organization_id: UUID | str | None,
                                      channel_id: UUID | str | None, roles: list[str]) -> dict[str, Any]:
    """``{"organization_id", "role", "channel"}``; P0002 unknown channel, 42501 not a member / role too weak."""
    return dict(as_mapping(await _ACCESS(db, p_user_id=user_id, p_organization_id=organization_id,
                                         p_channel_id=channel_id, p_roles=roles)))


async def put_notification_channel(db: Database, *, user_id: UUID | str, organization_id: UUID | str,
                                   channel_id: UUID | str, name: str, kind: str, config: dict[str, Any],
                                   key_id: str | None = None, sealed: str | None = None) -> dict[str, Any]:
    """Create or change a channel (its secret already sealed); the channel as members see it."""
    return dict(as_mapping(await _PUT(db, p_user_id=user_id, p_organization_id=organization_id,
                                      p_channel_id=channel_id, p_name=name, p_kind=kind, p_config=config,
                                      p_key_id=key_id, p_sealed=sealed)))


async def notification_preview_data(db: Database, *, user_id: UUID | str, channel_id: UUID | str,
                                    event_type: str | None) -> dict[str, Any]:
    return dict(as_mapping(await _PREVIEW(db, p_user_id=user_id, p_channel_id=channel_id, p_event_type=event_type)))


async def notification_secrets_to_reseal(db: Database, *, active_key_id: str, limit: int) -> list[dict[str, Any]]:
    return await _TO_RESEAL.rows(db, p_active_key_id=active_key_id, p_limit=limit)


async def reseal_notification_secret(db: Database, *, channel_id: UUID | str, expected_version: int, key_id: str,
                                     sealed: str) -> bool:
    return bool(await _RESEAL(db, p_channel_id=channel_id, p_expected_version=expected_version, p_key_id=key_id,
                              p_sealed=sealed))


async def record_webhook_check(db: Database, *, store_id: UUID | str, subscribed: list[str],
                               restored: list[str]) -> int | None:
    """The ``webhooks.recreated`` event's id when the platform had dropped some of the store's subscriptions."""
    event = await _WEBHOOK_CHECK(db, p_store_id=store_id, p_subscribed=subscribed, p_restored=restored)
    return None if event is None else int(event)
