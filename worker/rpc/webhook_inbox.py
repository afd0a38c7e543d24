"""The webhook inbox (``sql/functions/45_webhook_inbox.sql``): deliveries recorded once, read back by
``<platform>.webhook`` jobs, and how each ended."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import first, sql

__all__ = ["finish_webhook", "get_webhook", "receive_webhook", "record_webhook"]

_RECORD = sql("record_webhook", "setof", p_platform="text", p_delivery_id="text", p_store_id="uuid", p_topic="text",
              p_payload="jsonb", p_event_id="text", p_triggered_at="timestamp with time zone")
_RECEIVE = sql("receive_webhook", "setof", p_platform="text", p_shop_key="text", p_delivery_id="text",
               p_topic="text", p_payload="jsonb", p_event_id="text", p_triggered_at="timestamp with time zone")
_GET = sql("get_webhook", "setof", p_inbox_id="bigint")
_FINISH = sql("finish_webhook", "void", p_inbox_id="bigint", p_status="text", p_error="text")


async def record_webhook(db: Database, *, platform: str, delivery_id: str, store_id: UUID, topic: str,
                         payload: Mapping[str, Any], event_id: str | None = None,
                         triggered_at: datetime | None = None) -> dict[str, Any]:
    """``inbox_id`` and ``duplicate`` (the same platform + delivery id was recorded before)."""
    rows = await _RECORD.rows(db, p_platform=platform, p_delivery_id=delivery_id, p_store_id=store_id,
                              p_topic=topic, p_payload=dict(payload), p_event_id=event_id,
                              p_triggered_at=triggered_at)
    return rows[0]


async def receive_webhook(db: Database, *, platform: str, shop_key: str, delivery_id: str, topic: str,
                          payload: Mapping[str, Any], event_id: str | None = None,
                          triggered_at: datetime | None = None) -> dict[str, Any] | None:
    """Find the shop's store and record the delivery once: ``store_id``, ``inbox_id``, ``duplicate``;
    None when no store has that shop."""
    return first(await _RECEIVE.rows(db, p_platform=platform, p_shop_key=shop_key, p_delivery_id=delivery_id,
                                     p_topic=topic, p_payload=dict(payload), p_event_id=event_id,
                                     p_triggered_at=triggered_at))


async def get_webhook(db: Database, *, inbox_id: int) -> dict[str, Any] | None:
    """The delivery with its store's ``store_status``, ``shop_key``, ``access_policies`` and whether
    the same event was ``event_already_applied`` under another delivery id."""
    return first(await _GET.rows(db, p_inbox_id=inbox_id))


async def finish_webhook(db: Database, *, inbox_id: int, status: str, error: str | None = None) -> None:
    await _FINISH(db, p_inbox_id=inbox_id, p_status=status, p_error=error)
