"""Product links (``sql/functions/62_product_links.sql``): what the push and read-back jobs call. The frontend
creates, changes and auto-links links with its own RPCs (docs/database.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import as_mapping, sql

__all__ = ["begin_link_push", "enqueue_link_reconciles", "finish_link_push", "link_push_pending",
           "linked_target_products", "note_link_readback"]

_BEGIN = sql("begin_link_push", "jsonb", p_target_store_id="uuid", p_product_id="text")
_FINISH = sql("finish_link_push", "jsonb", p_target_store_id="uuid", p_product_id="text", p_seq="bigint",
              p_results="jsonb", p_job_id="bigint", p_done="boolean")
_PENDING = sql("link_push_pending", "jsonb", p_target_store_id="uuid", p_product_id="text")
_PRODUCTS = sql("linked_target_products", "text[]", p_target_store_id="uuid")
_READBACK = sql("note_link_readback", "integer", p_target_store_id="uuid", p_product_id="text", p_observed="jsonb")
_RECONCILES = sql("enqueue_link_reconciles", "integer", p_every="interval")


async def begin_link_push(db: Database, *, target_store_id: UUID | str, product_id: str) -> Mapping[str, Any]:
    """``seq`` (the request sequence this push covers) and ``links``: every link of the product that may push,
    with its rules, last confirmed values, the source's price and stock, the target's currency and warehouses."""
    return as_mapping(await _BEGIN(db, p_target_store_id=target_store_id, p_product_id=product_id))


async def finish_link_push(db: Database, *, target_store_id: UUID | str, product_id: str, seq: int,
                           results: Sequence[Mapping[str, Any]], job_id: int | None, done: bool = True) -> bool:
    """Record the results; with ``done``, the sequence pushed. True when a change arrived meanwhile (a new job
    was enqueued for it)."""
    answer = as_mapping(await _FINISH(db, p_target_store_id=target_store_id, p_product_id=product_id, p_seq=seq,
                                      p_results=[dict(r) for r in results], p_job_id=job_id, p_done=done))
    return bool(answer.get("requeued"))


async def link_push_pending(db: Database, *, target_store_id: UUID | str, product_id: str) -> tuple[int, bool]:
    """(the request sequence now, whether a source store is in a burst of webhook deliveries: ≥ 5 in a second)."""
    found = as_mapping(await _PENDING(db, p_target_store_id=target_store_id, p_product_id=product_id))
    return int(found.get("seq") or 0), bool(found.get("sources_busy"))


async def linked_target_products(db: Database, *, target_store_id: UUID | str) -> list[str]:
    return [str(p) for p in await _PRODUCTS(db, p_target_store_id=target_store_id) or []]


async def note_link_readback(db: Database, *, target_store_id: UUID | str, product_id: str,
                             observed: Mapping[str, Mapping[str, Any]]) -> int:
    """How many links drifted (a push was requested for them)."""
    return int(await _READBACK(db, p_target_store_id=target_store_id, p_product_id=product_id,
                               p_observed={k: dict(v) for k, v in observed.items()}))


async def enqueue_link_reconciles(db: Database, *, every_seconds: float = 3600.0) -> int:
    return int(await _RECONCILES(db, p_every=timedelta(seconds=every_seconds)))
