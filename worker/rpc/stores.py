"""Stores and their credentials (``sql/functions/30_stores_and_credentials.sql``): the store lifecycle,
sealed credentials and the refresh lease, store lookups, and platforms' published configuration."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import first, sql

__all__ = ["credentials_to_reseal", "find_store", "forget_store_credentials", "get_store", "get_store_credentials",
           "lock_credentials_refresh", "mark_store_needs_reauth", "mark_store_uninstalled", "put_store_credentials",
           "reseal_store_credentials", "set_platform_config", "set_store_status", "store_webhook_credentials",
           "stores_of_shop", "unlock_credentials_refresh", "upsert_store"]

_UPSERT_STORE = sql("upsert_store", "uuid", p_organization_id="uuid", p_platform="text", p_shop_key="text",
                    p_display_name="text", p_status="text", p_external_id="text", p_platform_info="jsonb")
_SET_STATUS = sql("set_store_status", "void", p_store_id="uuid", p_status="text", p_reason="text")
_NEEDS_REAUTH = sql("mark_store_needs_reauth", "void", p_store_id="uuid", p_reason="text")
_UNINSTALLED = sql("mark_store_uninstalled", "boolean", p_store_id="uuid", p_reason="text",
                   p_as_of="timestamp with time zone")
_FORGET_CREDENTIALS = sql("forget_store_credentials", "boolean", p_store_id="uuid", p_note="text")
_PUT_CREDENTIALS = sql("put_store_credentials", "integer", p_store_id="uuid", p_kind="text", p_key_id="text",
                       p_sealed="text", p_access_expires_at="timestamp with time zone",
                       p_refresh_expires_at="timestamp with time zone", p_expected_version="integer")
_GET_CREDENTIALS = sql("get_store_credentials", "setof", p_store_id="uuid")
_TO_RESEAL = sql("credentials_to_reseal", "setof", p_active_key_id="text", p_limit="integer")
_RESEAL = sql("reseal_store_credentials", "boolean", p_store_id="uuid", p_expected_version="integer",
              p_key_id="text", p_sealed="text")
_LOCK_REFRESH = sql("lock_credentials_refresh", "boolean", p_store_id="uuid", p_owner="text",
                    p_seconds="double precision")
_UNLOCK_REFRESH = sql("unlock_credentials_refresh", "void", p_store_id="uuid", p_owner="text")
_GET_STORE = sql("get_store", "setof", p_store_id="uuid")
_FIND_STORE = sql("find_store", "setof", p_platform="text", p_shop_key="text")
_STORES_OF_SHOP = sql("stores_of_shop", "setof", p_platform="text", p_shop_key="text")
_WEBHOOK_CREDENTIALS = sql("store_webhook_credentials", "setof", p_store_id="uuid")
_SET_PLATFORM_CONFIG = sql("set_platform_config", "void", p_platform="text", p_config="jsonb")


async def upsert_store(db: Database, *, organization_id: UUID | str, platform: str, shop_key: str,
                       display_name: str | None = None, status: str = "active", external_id: str | None = None,
                       platform_info: Mapping[str, Any] | None = None) -> UUID:
    """Create or reactivate the store of a connection; its id (kept across reinstalls)."""
    return UUID(str(await _UPSERT_STORE(
        db, p_organization_id=organization_id, p_platform=platform, p_shop_key=shop_key, p_display_name=display_name,
        p_status=status, p_external_id=external_id,
        p_platform_info=dict(platform_info) if platform_info is not None else None)))


async def set_store_status(db: Database, *, store_id: UUID | str, status: str, reason: str | None = None) -> None:
    await _SET_STATUS(db, p_store_id=store_id, p_status=status, p_reason=reason)


async def mark_store_needs_reauth(db: Database, *, store_id: UUID | str, reason: str) -> None:
    await _NEEDS_REAUTH(db, p_store_id=store_id, p_reason=reason)


async def mark_store_uninstalled(db: Database, *, store_id: UUID | str, reason: str,
                                 as_of: datetime | None = None) -> bool:
    """Mark the store uninstalled unless it was connected again after ``as_of`` (the platform's time of the
    uninstall) or is already uninstalled or disconnected; whether it was marked."""
    return bool(await _UNINSTALLED(db, p_store_id=store_id, p_reason=reason, p_as_of=as_of))


async def forget_store_credentials(db: Database, *, store_id: UUID | str, note: str | None = None) -> bool:
    """Delete a disconnected store's credentials (``note`` becomes its status reason); False when the store
    is connected again (its new credentials stay) or gone."""
    return bool(await _FORGET_CREDENTIALS(db, p_store_id=store_id, p_note=note))


async def put_store_credentials(db: Database, *, store_id: UUID | str, kind: str, key_id: str, sealed: str,
                                access_expires_at: datetime | None = None,
                                refresh_expires_at: datetime | None = None,
                                expected_version: int | None = None) -> int:
    """Store sealed credentials; the new version. DatabaseError 40001 when ``expected_version`` is stale."""
    return int(await _PUT_CREDENTIALS(db, p_store_id=store_id, p_kind=kind, p_key_id=key_id, p_sealed=sealed,
                                      p_access_expires_at=access_expires_at,
                                      p_refresh_expires_at=refresh_expires_at, p_expected_version=expected_version))


async def get_store_credentials(db: Database, *, store_id: UUID | str) -> dict[str, Any] | None:
    """``kind``, ``key_id``, ``sealed``, ``access_expires_at``, ``refresh_expires_at``, ``version``."""
    return first(await _GET_CREDENTIALS.rows(db, p_store_id=store_id))


async def credentials_to_reseal(db: Database, *, active_key_id: str, limit: int) -> list[dict[str, Any]]:
    return await _TO_RESEAL.rows(db, p_active_key_id=active_key_id, p_limit=limit)


async def reseal_store_credentials(db: Database, *, store_id: UUID | str, expected_version: int, key_id: str,
                                   sealed: str) -> bool:
    return bool(await _RESEAL(db, p_store_id=store_id, p_expected_version=expected_version, p_key_id=key_id,
                              p_sealed=sealed))


async def lock_credentials_refresh(db: Database, *, store_id: UUID | str, owner: str, seconds: float) -> bool:
    return bool(await _LOCK_REFRESH(db, p_store_id=store_id, p_owner=owner, p_seconds=seconds))


async def unlock_credentials_refresh(db: Database, *, store_id: UUID | str, owner: str) -> None:
    await _UNLOCK_REFRESH(db, p_store_id=store_id, p_owner=owner)


async def get_store(db: Database, *, store_id: UUID | str) -> dict[str, Any] | None:
    """``id``, ``organization_id``, ``platform``, ``shop_key``, ``status``, ``access_policies``
    ({resource: policy}), ``platform_info``; None when the store does not exist."""
    return first(await _GET_STORE.rows(db, p_store_id=store_id))


async def find_store(db: Database, *, platform: str, shop_key: str) -> dict[str, Any] | None:
    """The store a platform's call about ``shop_key`` is for (the active one first)."""
    return first(await _FIND_STORE.rows(db, p_platform=platform, p_shop_key=shop_key))


async def stores_of_shop(db: Database, *, platform: str, shop_key: str) -> list[dict[str, Any]]:
    """Every store of a shop, in any organization and state."""
    return await _STORES_OF_SHOP.rows(db, p_platform=platform, p_shop_key=shop_key)


async def store_webhook_credentials(db: Database, *, store_id: UUID | str) -> dict[str, Any] | None:
    """``platform``, ``status`` and the sealed ``key_id`` / ``sealed`` of one store."""
    return first(await _WEBHOOK_CREDENTIALS.rows(db, p_store_id=store_id))


async def set_platform_config(db: Database, *, platform: str, config: Mapping[str, Any]) -> None:
    await _SET_PLATFORM_CONFIG(db, p_platform=platform, p_config=dict(config))
