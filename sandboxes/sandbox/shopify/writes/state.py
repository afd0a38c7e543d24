"""``shop.writes``: the write side's state of one shop (``model.WriteStore``) and what the node builders ask it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sandbox.shopify.nodes import TypedNode
from sandbox.shopify.writes import fulfillment_orders
from sandbox.shopify.writes.model import WriteStore

if TYPE_CHECKING:
    from sandbox.shopify.state import Shop

__all__ = ["WriteState"]


class WriteState(WriteStore):
    def __init__(self, shop: Shop) -> None:
        super().__init__()
        self.shop = shop

    def fulfillment_orders_page(self, rec: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        return fulfillment_orders.page(self.shop, rec, args)

    def fulfillment_order_views(self, rec: dict[str, Any]) -> Iterator[TypedNode]:
        return fulfillment_orders.views(self.shop, rec)
