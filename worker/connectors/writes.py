"""What a connector that declares write capabilities (``ConnectorContract.writes``) hands the flows that use
them: ``ConnectorContract.open_writer(jctx, store)`` opens a session for one target store, whose methods
implement the declared capabilities — ``set_prices`` for ``set_price``, ``set_inventory`` for
``set_inventory`` — and ``read_group`` reads back what the platform has now (reconciliation).

Items (SKUs, variants) are addressed by the platform's id and grouped: a *group* is what one platform call
may change together (a TikTok product; a Shopify product). Each item gets an ``ItemResult``: ``ok``;
``action_required`` (the platform refuses for a reason the merchant must resolve — a promotion lock, a
product under review, a deleted SKU: not retried until something changes); ``rejected`` (the value itself was
refused); ``retry`` (try again later). A call that fails as a whole for a transient reason raises
``RetryableError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

__all__ = ["GroupState", "InventoryWriter", "ItemOutcome", "ItemResult", "ItemState", "PriceChange", "PriceWriter",
           "StockChange", "StoreWriter"]


class ItemOutcome(StrEnum):
    OK = "ok"
    ACTION_REQUIRED = "action_required"
    REJECTED = "rejected"
    RETRY = "retry"


@dataclass(frozen=True)
class PriceChange:
    item_id: str
    amount: Decimal
    currency: str | None = None


@dataclass(frozen=True)
class StockChange:
    item_id: str
    levels: Mapping[str, int]          # location (warehouse) id -> quantity; every location the item has


@dataclass(frozen=True)
class ItemResult:
    item_id: str
    outcome: ItemOutcome
    reason: str | None = None          # shopsync's stable reason: promotion_locked, product_not_live, …
    code: str | None = None            # the platform's own error code
    message: str | None = None

    @classmethod
    def ok(cls, item_id: str) -> ItemResult:
        return cls(item_id, ItemOutcome.OK)


@dataclass(frozen=True)
class ItemState:
    price: Decimal | None
    currency: str | None
    levels: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupState:
    status: str                        # the platform's status of the group (ACTIVATE, DELETED, …)
    live: bool                         # whether it accepts price changes now
    items: Mapping[str, ItemState] = field(default_factory=dict)


class PriceWriter(Protocol):
    async def set_prices(self, group: str, changes: Sequence[PriceChange]) -> list[ItemResult]: ...


class InventoryWriter(Protocol):
    async def set_inventory(self, group: str, changes: Sequence[StockChange]) -> list[ItemResult]: ...


class StoreWriter(PriceWriter, InventoryWriter, Protocol):
    async def read_group(self, group: str) -> GroupState: ...
