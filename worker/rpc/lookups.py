"""Look-ups for agents (``sql/functions/66_lookups.sql``): who may look up what (``begin_lookup``), the stores a
caller may look up, answers from the synced tables, and the audit. The API-key RPCs are the frontend's
(``create_api_key``, ``list_api_keys``, ``revoke_api_key``): Python never calls them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import as_mapping, first, sql

__all__ = ["begin_lookup", "lookup_key_status", "lookup_stores", "lookup_synced", "record_lookup"]

_BEGIN = sql("begin_lookup", "setof", p_store_id="uuid", p_resource="text", p_key_hash="text", p_user_id="uuid",
             p_user_requests_per_second="double precision", p_user_burst="integer", p_lookup="text",
             p_values="text[]", p_limit="integer")
_KEY_STATUS = sql("lookup_key_status", "text", p_key_hash="text")
_STORES = sql("lookup_stores", "setof", p_key_hash="text", p_user_id="uuid")
_SYNCED = sql("lookup_synced", "json", p_store_id="uuid", p_lookup="text", p_values="text[]", p_limit="integer")
_RECORD = sql("record_lookup", "void", p_organization_id="uuid", p_interface="text", p_lookup="text",
              p_outcome="text", p_status="integer", p_latency_ms="double precision", p_store_id="uuid",
              p_key_id="uuid", p_user_id="uuid", p_resource="text", p_policy="text", p_result_count="integer")


async def begin_lookup(db: Database, *, store_id: UUID | str | None, resource: str | None,
                       key_hash: str | None = None, user_id: UUID | str | None = None,
                       user_requests_per_second: float = 10.0, user_burst: int = 20, lookup: str | None = None,
                       values: Sequence[str] | None = None, limit: int = 10) -> dict[str, Any]:
    """``refusal`` (None when the look-up may go ahead), ``organization_id``, ``platform``, ``shop_key``,
    ``store_status``, ``policy``, ``key_id``, ``retry_after``, and with ``lookup`` given: for the policy ``sync``
    ``answer``, what ``lookup_synced`` answers (the whole look-up in one round trip); for ``api_only``
    ``credentials``, the store's sealed credentials row for its connector."""
    row = first(await _BEGIN.rows(db, p_store_id=store_id, p_resource=resource, p_key_hash=key_hash,
                                  p_user_id=user_id, p_user_requests_per_second=user_requests_per_second,
                                  p_user_burst=user_burst, p_lookup=lookup,
                                  p_values=list(values) if values is not None else None, p_limit=limit))
    if row is None:         # cannot happen: the function always answers one row
        raise RuntimeError("begin_lookup answered no row")
    return row


async def lookup_key_status(db: Database, *, key_hash: str) -> str | None:
    """``active``, ``revoked``, ``expired``, or None for an unknown key (no rate is used)."""
    status = await _KEY_STATUS(db, p_key_hash=key_hash)
    return None if status is None else str(status)


async def lookup_stores(db: Database, *, key_hash: str | None = None,
                        user_id: UUID | str | None = None) -> list[dict[str, Any]]:
    """``store_id``, ``organization_id``, ``platform``, ``shop_key``, ``display_name``, ``status``, ``policies``."""
    return await _STORES.rows(db, p_key_hash=key_hash, p_user_id=user_id)


async def lookup_synced(db: Database, *, store_id: UUID | str, lookup: str, values: Sequence[str],
                        limit: int) -> Mapping[str, Any]:
    """Canonical rows by table (``{"customers": [...]}``, ``{"orders", "order_line_items", ...}``, ...)."""
    return as_mapping(await _SYNCED(db, p_store_id=store_id, p_lookup=lookup, p_values=list(values), p_limit=limit))


async def record_lookup(db: Database, *, organization_id: UUID | str, interface: str, lookup: str, outcome: str,
                        status: int, latency_ms: float, store_id: UUID | str | None = None,
                        key_id: UUID | str | None = None, user_id: UUID | str | None = None,
                        resource: str | None = None, policy: str | None = None, result_count: int = 0) -> None:
    await _RECORD(db, p_organization_id=organization_id, p_interface=interface, p_lookup=lookup, p_outcome=outcome,
                  p_status=status, p_latency_ms=latency_ms, p_store_id=store_id, p_key_id=key_id, p_user_id=user_id,
                  p_resource=resource, p_policy=policy, p_result_count=result_count)
