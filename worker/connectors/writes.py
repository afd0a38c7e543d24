"""The write contract: what a connector that declares write capabilities (``ConnectorContract.writes``) hands
the flows between stores (product links today; order and fulfillment flows next).

``ConnectorContract.open_writer(jctx, store)`` is an async context manager that opens a session for one
target store (``store``: its row from ``shopsync.stores``, ``id`` included). The session implements one
protocol per declared capability (``CAPABILITY_METHODS`` names the method; ``missing_methods`` checks a
writer against its connector's declaration), and never more than a platform call per method call:

============================  =========================================  ===================================
capability                    method (protocol)                          used by
============================  =========================================  ===================================
``set_price``                 ``set_prices(group, [PriceChange])``       ``links.push``
                              (``PriceWriter``)
``set_inventory``             ``set_inventory(group, [StockChange])``    ``links.push``
                              (``InventoryWriter``)
(any of the above)            ``read_group(group)`` (``GroupReader``)    ``links.push`` (warehouses),
                                                                         ``links.reconcile`` (read-back)
============================  =========================================  ===================================

A capability the core adds (``create_order``, ``cancel_order``, ``create_fulfillment``…) gets its own
protocol and value types here, its row in the table and in ``CAPABILITY_METHODS``; a writer implements
exactly the protocols of the capabilities its connector declares. ``StoreWriter`` is what product links
need from a target: prices, inventory and the read-back.

Items (SKUs, variants) are addressed by the platform's id and grouped: a *group* is what one platform call
may change together (a TikTok product; a Shopify product). Values arrive final — rules applied, checked
non-negative — and in the item's currency. Each item gets one ``ItemResult``:

- ``ok``: the platform confirmed the value;
- ``action_required``: refused for a reason the merchant must resolve (promotion lock, product under review,
  deleted SKU) — not retried until the link or the source changes; ``reason`` is shopsync's stable word for it;
- ``rejected``: the value itself was refused (a price below the platform's minimum);
- ``retry``: this item only failed for a transient reason; try it again later.

A call that fails as a whole for a transient reason (429, 5xx, timeouts past the client's retries) raises
``worker.errors.RetryableError``; a refused authorization raises ``NeedsReauthError``. Error messages and
results never carry credentials or personal data (they are logged and shown to members).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from worker.connectors.contract import WriteCapability

__all__ = ["CAPABILITY_METHODS", "GroupReader", "GroupState", "InventoryWriter", "ItemOutcome", "ItemResult",
           "ItemState", "PriceChange", "PriceWriter", "StockChange", "StoreWriter", "missing_methods"]


class ItemOutcome(StrEnum):
    OK = "ok"
    ACTION_REQUIRED = "action_required"
    REJECTED = "rejected"
    RETRY = "retry"


@dataclass(frozen=True)
class PriceChange:
    """Set ``item_id``'s price to ``amount`` (final: rules applied) in ``currency`` (the item's; None: the
    store's default)."""

    item_id: str
    amount: Decimal
    currency: str | None = None


@dataclass(frozen=True)
class StockChange:
    """Set ``item_id``'s available quantity per location: every location the item has (one left out keeps its
    quantity on platforms that set per location)."""

    item_id: str
    levels: Mapping[str, int]          # location (warehouse) id -> quantity


@dataclass(frozen=True)
class ItemResult:
    item_id: str
    outcome: ItemOutcome
    reason: str | None = None          # shopsync's stable reason: promotion_locked, product_not_live, …
    code: str | None = None            # the platform's own error code
    message: str | None = None         # the platform's message, shortened; no secrets or personal data

    @classmethod
    def ok(cls, item_id: str) -> ItemResult:
        return cls(item_id, ItemOutcome.OK)


@dataclass(frozen=True)
class ItemState:
    """An item as the platform shows it now."""

    price: Decimal | None
    currency: str | None
    levels: Mapping[str, int] = field(default_factory=dict)      # location id -> available


@dataclass(frozen=True)
class GroupState:
    status: str                        # the platform's status of the group (ACTIVATE, DELETED, …)
    live: bool                         # whether it accepts price changes now
    items: Mapping[str, ItemState] = field(default_factory=dict)


class PriceWriter(Protocol):
    async def set_prices(self, group: str, changes: Sequence[PriceChange]) -> list[ItemResult]:
        """One result per change, in any order."""
        ...


class InventoryWriter(Protocol):
    async def set_inventory(self, group: str, changes: Sequence[StockChange]) -> list[ItemResult]:
        """One result per change, in any order."""
        ...


class GroupReader(Protocol):
    async def read_group(self, group: str) -> GroupState:
        """The group's status and its items' values now; a group that is gone: ``live`` false, no items."""
        ...


class StoreWriter(PriceWriter, InventoryWriter, GroupReader, Protocol):
    """A product-link target: prices, inventory and the read-back."""


CAPABILITY_METHODS: Mapping[WriteCapability, str] = {WriteCapability.SET_PRICE: "set_prices",
                                                     WriteCapability.SET_INVENTORY: "set_inventory"}


def missing_methods(writer: object, capabilities: Iterable[WriteCapability]) -> list[str]:
    """Methods a writer lacks for the capabilities its connector declares (a capability the core does not
    define a method for yet is reported as ``<capability>: no method defined``)."""
    declared = sorted(set(capabilities))
    missing = []
    for capability in declared:
        method = CAPABILITY_METHODS.get(capability)
        if method is None:
            missing.append(f"{capability.value}: no method defined")
        elif not callable(getattr(writer, method, None)):
            missing.append(method)
    if declared and not callable(getattr(writer, "read_group", None)):
        missing.append("read_group")
    return missing
