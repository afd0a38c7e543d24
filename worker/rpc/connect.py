"""Connecting stores (``sql/functions/32_connect.sql``): OAuth states, parked installs, connections
made with keys a user pasted, and uninstalls."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import first, sql

__all__ = ["clear_pending_install_credentials", "connect_store_for_user", "consume_oauth_state",
           "create_oauth_state", "get_pending_install", "park_pending_install", "prepare_store_connection",
           "put_pending_install_credentials", "reissue_pending_install_claim", "uninstall_shop"]

_CREATE_STATE = sql("create_oauth_state", "text", p_platform="text", p_organization_id="uuid", p_user_id="uuid",
                    p_shop_key="text", p_return_to="text", p_ttl_seconds="integer")
_CONSUME_STATE = sql("consume_oauth_state", "setof", p_platform="text", p_nonce="text", p_shop_key="text")
_PARK = sql("park_pending_install", "setof", p_platform="text", p_shop_key="text", p_details="jsonb",
            p_ttl_seconds="integer")
_PUT_PENDING = sql("put_pending_install_credentials", "uuid", p_install_id="uuid", p_credentials="jsonb")
_GET_PENDING = sql("get_pending_install", "setof", p_install_id="uuid")
_CLEAR_PENDING = sql("clear_pending_install_credentials", "void", p_install_id="uuid")
_REISSUE_CLAIM = sql("reissue_pending_install_claim", "setof", p_platform="text", p_shop_key="text")
_PREPARE = sql("prepare_store_connection", "uuid", p_user_id="uuid", p_organization_id="uuid", p_platform="text",
               p_shop_key="text")
_CONNECT_FOR_USER = sql("connect_store_for_user", "uuid", p_user_id="uuid", p_organization_id="uuid",
                        p_platform="text", p_shop_key="text", p_store_id="uuid", p_credentials="jsonb",
                        p_display_name="text", p_platform_info="jsonb")
_UNINSTALL = sql("uninstall_shop", "integer", p_platform="text", p_shop_key="text", p_reason="text",
                 p_delete_after="interval", p_as_of="timestamp with time zone")


def _uuid_or_none(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


async def create_oauth_state(db: Database, *, platform: str, shop_key: str, organization_id: UUID | None = None,
                             user_id: UUID | None = None, return_to: str | None = None,
                             ttl_seconds: int = 600) -> str:
    """A single-use state nonce for the platform's authorize URL (only its hash is stored)."""
    return str(await _CREATE_STATE(db, p_platform=platform, p_organization_id=organization_id, p_user_id=user_id,
                                   p_shop_key=shop_key, p_return_to=return_to, p_ttl_seconds=ttl_seconds))


async def consume_oauth_state(db: Database, *, platform: str, nonce: str, shop_key: str) -> dict[str, Any] | None:
    """What the state was bound to (``organization_id``, ``user_id``, ``return_to``), or None when it is
    unknown, expired, used, or for another shop."""
    return first(await _CONSUME_STATE.rows(db, p_platform=platform, p_nonce=nonce, p_shop_key=shop_key))


async def park_pending_install(db: Database, *, platform: str, shop_key: str, details: Mapping[str, Any],
                               ttl_seconds: int) -> dict[str, Any]:
    """``install_id`` and the ``claim_token`` for the browser."""
    rows = await _PARK.rows(db, p_platform=platform, p_shop_key=shop_key, p_details=dict(details),
                            p_ttl_seconds=ttl_seconds)
    return rows[0]


async def put_pending_install_credentials(db: Database, *, install_id: UUID | str,
                                          credentials: Mapping[str, Any]) -> UUID | None:
    """The store id when the install was claimed meanwhile."""
    return _uuid_or_none(await _PUT_PENDING(db, p_install_id=install_id, p_credentials=dict(credentials)))


async def get_pending_install(db: Database, *, install_id: UUID | str) -> dict[str, Any] | None:
    return first(await _GET_PENDING.rows(db, p_install_id=install_id))


async def clear_pending_install_credentials(db: Database, *, install_id: UUID | str) -> None:
    await _CLEAR_PENDING(db, p_install_id=install_id)


async def reissue_pending_install_claim(db: Database, *, platform: str, shop_key: str) -> dict[str, Any] | None:
    """A fresh ``claim_token`` for the shop's newest unclaimed install, or None."""
    return first(await _REISSUE_CLAIM.rows(db, p_platform=platform, p_shop_key=shop_key))


async def prepare_store_connection(db: Database, *, user_id: UUID, organization_id: UUID, platform: str,
                                   shop_key: str) -> UUID | None:
    """The id the store would keep (an existing one), or None; DatabaseError 42501 for a user who may not."""
    return _uuid_or_none(await _PREPARE(db, p_user_id=user_id, p_organization_id=organization_id,
                                        p_platform=platform, p_shop_key=shop_key))


async def connect_store_for_user(db: Database, *, user_id: UUID, organization_id: UUID, platform: str,
                                 shop_key: str, store_id: UUID, credentials: Mapping[str, Any],
                                 display_name: str | None, platform_info: Mapping[str, Any]) -> UUID:
    return UUID(str(await _CONNECT_FOR_USER(
        db, p_user_id=user_id, p_organization_id=organization_id, p_platform=platform, p_shop_key=shop_key,
        p_store_id=store_id, p_credentials=dict(credentials), p_display_name=display_name,
        p_platform_info=dict(platform_info))))


async def uninstall_shop(db: Database, *, platform: str, shop_key: str, reason: str,
                         delete_after: timedelta | None, as_of: datetime | None = None) -> int:
    """How many stores of the shop were marked uninstalled (not those connected again after ``as_of``,
    the platform's time of the uninstall)."""
    return int(await _UNINSTALL(db, p_platform=platform, p_shop_key=shop_key, p_reason=reason,
                                p_delete_after=delete_after, p_as_of=as_of))
