"""What the write side adds to a shop's state: fulfillment orders, idempotency records, adjustment groups, jobs.

Orders themselves stay rows of ``dataset.Catalog`` (an order written through ``orderCreate`` is a new index
whose every field is an override), so every existing read path — queries, search, bulk exports, webhook
payloads — sees it. This module holds only what the catalog has no place for. Callers hold the sandbox lock.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FULFILLMENT_ORDER_BASE", "AdjustmentGroup", "FulfillmentOrder", "FulfillmentOrderLine",
           "IdempotencyRecord", "WriteStore"]

FULFILLMENT_ORDER_BASE = 3_000_000_000_000
FO_LINE_BASE = 3_500_000_000_000
FULFILLMENT_LINE_BASE = 4_000_000_000_000
CREATED_FULFILLMENT_BASE = 5_000_500_000_000  # generated fulfillments use 5_000_000_000_000 + order index
ADJUSTMENT_GROUP_BASE = 120_000_000_000


@dataclass
class FulfillmentOrderLine:
    id: int
    line_item_id: int
    total: int
    remaining: int


@dataclass
class FulfillmentOrder:
    """The work of shipping some of an order's lines from one location (``status``: OPEN, IN_PROGRESS,
    CLOSED, CANCELLED, ON_HOLD)."""

    id: int
    order_index: int
    location_index: int
    status: str
    lines: list[FulfillmentOrderLine]
    created_us: int
    updated_us: int

    def line(self, line_id: int) -> FulfillmentOrderLine | None:
        return next((ln for ln in self.lines if ln.id == line_id), None)

    def settle(self) -> None:
        """OPEN until something is fulfilled, IN_PROGRESS while lines remain, CLOSED when none do."""
        if self.status in ("CANCELLED", "ON_HOLD"):
            return
        remaining = sum(ln.remaining for ln in self.lines)
        total = sum(ln.total for ln in self.lines)
        self.status = "CLOSED" if remaining == 0 else "OPEN" if remaining == total else "IN_PROGRESS"


@dataclass
class AdjustmentGroup:
    id: int
    created_us: int
    reason: str
    reference_document_uri: str | None
    changes: list[dict[str, Any]]  # {name, delta, after, item_id, location_id}
    client_id: str


@dataclass
class IdempotencyRecord:
    """One ``@idempotent`` key: the operation it was first used for, and its answer once there is one."""

    fingerprint: str
    owner: str | None  # the request running it; None once answered
    result: Any = None


@dataclass
class WriteStore:
    fulfillment_orders: dict[int, list[FulfillmentOrder]] = field(default_factory=dict)  # by order index
    fo_by_id: dict[int, FulfillmentOrder] = field(default_factory=dict)
    fulfillment_orders_of: dict[int, int] = field(default_factory=dict)  # fulfillment id -> order index
    created_orders: list[int] = field(default_factory=list)  # order indexes orderCreate made, in order
    jobs: dict[str, bool] = field(default_factory=dict)  # job uuid -> done
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)  # (client id, key)
    adjustments: dict[int, AdjustmentGroup] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self, base: int) -> int:
        return base + next(self._ids)
