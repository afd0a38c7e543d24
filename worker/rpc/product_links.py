"""Product links (``sql/functions/62_product_links.sql``): what the push and read-back jobs call. The frontend
creates, changes and auto-links links with its own RPCs (docs/database.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import as_mapping, sql

__all__ = ["PendingPush", "begin_link_push", "enqueue_link_reconciles", "finish_link_push", "link_push_due",
           "linked_target_products", "note_link_readback"]

_BEGIN = sql("begin_link_push", "jsonb", p_target_store_id="uuid", p_product_id="text")
_FINISH = sql("finish_link_push", "jsonb", p_target_store_id="uuid", p_product_id="text", p_seq="bigint",
              p_results="jsonb", p_job_id="bigint", p_done="boolean")
_DUE = sql("link_push_due", "jsonb", p_target_store_id="uuid", p_limit="integer", p_storm_deliveries="integer",
           p_storm_seconds="double precision")
_PRODUCTS = sql("linked_target_products", "text[]", p_target_store_id="uuid")
_READBACK = sql("note_link_readback", "integer", p_target_store_id="uuid", p_product_id="text", p_observed="jsonb")
_RECONCILES = sql("enqueue_link_reconciles", "integer", p_every="interval")


async def begin_link_push(db: Database, *, target_store_id: UUID | str, product_id: str) -> Mapping[str, Any]:
    """``seq`` (the request sequence this push covers) and ``links``: every link of the product that may push,
    with its rules, last confirmed values, the source's price and stock, the target's currency and warehouses."""
    return as_mapping(await _BEGIN(db, p_target_store_id=target_store_id, p_product_id=product_id))


async def finish_link_push(db: Database, *, target_store_id: UUID | str, product_id: str, seq: int,
                           results: Sequence[Mapping[str, Any]], job_id: int | None, done: bool = True) -> bool:
    """Record the results; with ``done``, the sequence pushed. True when a change arrived meanwhile (the product
    stays pending)."""
    answer = as_mapping(await _FINISH(db, p_target_store_id=target_store_id, p_product_id=product_id, p_seq=seq,
                                      p_results=[dict(r) for r in results], p_job_id=job_id, p_done=done))
    return bool(answer.get("requeued"))


@dataclass(frozen=True)
class PendingPush:
    """A target product with changes not pushed yet."""

    product_id: str
    seq: int               # the request sequence now
    quiet: float           # seconds since its own last change
    storming: bool         # a source store of its links is in a storm of webhook deliveries


async def link_push_due(db: Database, *, target_store_id: UUID | str, limit: int = 1000, storm_deliveries: int = 6,
                        storm_seconds: float = 2.0) -> list[PendingPush]:
    """The store's pending products, longest quiet first; ``storming``: ≥ ``storm_deliveries`` catalog webhook
    deliveries (products, variants, inventory, stock) from a source store of the product's links in the last
    ``storm_seconds``."""
    found = await _DUE(db, p_target_store_id=target_store_id, p_limit=limit, p_storm_deliveries=storm_deliveries,
                       p_storm_seconds=storm_seconds)
    return [PendingPush(str(r["product_id"]), int(r["seq"]), float(r["quiet_s"]), bool(r["storming"]))
            for r in found or [] if isinstance(r, Mapping)]


async def linked_target_products(db: Database, *, target_store_id: UUID | str) -> list[str]:
    return [str(p) for p in await _PRODUCTS(db, p_target_store_id=target_store_id) or []]


async def note_link_readback(db: Database, *, target_store_id: UUID | str, product_id: str,
                             observed: Mapping[str, Mapping[str, Any]]) -> int:
    """How many links drifted (a push was requested for them)."""
    return int(await _READBACK(db, p_target_store_id=target_store_id, p_product_id=product_id,
                               p_observed={k: dict(v) for k, v in observed.items()}))


async def enqueue_link_reconciles(db: Database, *, every_seconds: float = 3600.0) -> int:
    return int(await _RECONCILES(db, p_every=timedelta(seconds=every_seconds)))
