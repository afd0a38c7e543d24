"""In-process helpers on ``Shop`` for tests and benchmarks of the write side (each takes the sandbox lock).

``shop.created_orders(tag=...)`` lists what ``orderCreate`` made (REST shape, oldest first);
``shop.count_orders(tag=..., source_identifier=...)`` counts every order a search would find (generated ones
too); ``shop.inventory_level(variant, location)`` reads a level (None where not stocked);
``shop.set_stock(variant, location, available)`` sets ``available`` (stocking the item there if it was not) and
sends ``inventory_levels/update``; ``shop.unstock(...)`` makes an item not stocked at a location
(``ITEM_NOT_STOCKED_AT_LOCATION`` until ``inventoryActivate``); ``shop.fulfillment_orders(order)`` and
``shop.hold_fulfillment_order(id)`` / ``release_fulfillment_order(id)`` inspect and block fulfillment;
``shop.variants_with_sku(sku)``. Variants may be given by variant or inventory item id (number or GID),
locations and orders by number or GID.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.shopify.clock import format_rest, now_us
from sandbox.shopify.nodes import gid, parse_gid
from sandbox.shopify.search import search_filter
from sandbox.shopify.writes import fulfillment_orders
from sandbox.shopify.writes.fulfillment_orders import supported_actions

if TYPE_CHECKING:
    from sandbox.shopify.dataset import Catalog
    from sandbox.shopify.nodes import NodeBuilder
    from sandbox.shopify.state import ShopifySandbox
    from sandbox.shopify.writes.state import WriteState

__all__ = ["ShopWriteHelpers"]

SEARCH_VERSION = "2026-10"


def _legacy(value: int | str, kind: str) -> int:
    if isinstance(value, int):
        return value
    parsed = parse_gid(value)
    if parsed is not None and parsed[0] == kind:
        return parsed[1]
    if value.isdigit():
        return int(value)
    raise KeyError(f"not a {kind} id: {value!r}")


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ShopWriteHelpers:
    sandbox: ShopifySandbox
    catalog: Catalog
    nodes: NodeBuilder
    writes: WriteState
    domain: str

    # --- look-ups --------------------------------------------------------------------------------------------

    def _level_key(self, variant_or_item: int | str, location: int | str) -> tuple[int, int, int]:
        parsed = parse_gid(variant_or_item) if isinstance(variant_or_item, str) else None
        legacy = parsed[1] if parsed else int(variant_or_item)
        found = self.catalog.variant_by_id(legacy) or self.catalog.variant_by_inventory_item(legacy)
        j = self.catalog.location_index(_legacy(location, "Location"))
        if found is None or j is None:
            raise KeyError(f"no variant/inventory item {variant_or_item!r} or location {location!r} in {self.domain}")
        return found[0], found[1], j

    def _order(self, order: int | str) -> int:
        o = self.catalog.orders.live_index(_legacy(order, "Order"))
        if o is None:
            raise KeyError(f"no order {order!r} in {self.domain}")
        return o

    # --- orders ----------------------------------------------------------------------------------------------

    def created_orders(self, *, tag: str | None = None) -> list[dict[str, Any]]:
        """Orders ``orderCreate`` made (REST shape, oldest first); with ``tag``, only those carrying it."""
        with self.sandbox.lock:
            out = [self.nodes.order_rest(o) for o in self.writes.created_orders if self.catalog.orders.alive(o)]
        if tag is not None:
            out = [o for o in out if tag.lower() in {t.strip().lower() for t in str(o["tags"]).split(",")}]
        return out

    def count_orders(self, *, tag: str | None = None, source_identifier: str | None = None) -> int:
        """How many live orders (generated or created) a ``tag:``/``source_identifier:`` search finds."""
        terms = ([f"tag:{_quoted(tag)}"] if tag is not None else []) + \
            ([f"source_identifier:{_quoted(source_identifier)}"] if source_identifier is not None else [])
        flt = search_filter("order", " ".join(terms), SEARCH_VERSION)
        with self.sandbox.lock:
            return self.catalog.count(self.catalog.orders, flt)

    def fulfillment_orders(self, order: int | str) -> list[dict[str, Any]]:
        """An order's fulfillment orders: ``{id, status, location_id, supported_actions, lines: [{id,
        line_item_id, total, remaining}]}`` (GIDs)."""
        with self.sandbox.lock:
            fos = fulfillment_orders.ensure(self.writes.shop, self._order(order))
            return [{"id": gid("FulfillmentOrder", fo.id), "status": fo.status,
                     "location_id": gid("Location", self.catalog.locations[fo.location_index]["id"]),
                     "supported_actions": supported_actions(fo),
                     "lines": [{"id": gid("FulfillmentOrderLineItem", ln.id),
                                "line_item_id": gid("LineItem", ln.line_item_id), "total": ln.total,
                                "remaining": ln.remaining} for ln in fo.lines]} for fo in fos]

    def hold_fulfillment_order(self, fulfillment_order: int | str, *, hold: bool = True) -> None:
        """Put a fulfillment order ON_HOLD (no CREATE_FULFILLMENT) or, ``hold=False``, release it."""
        with self.sandbox.lock:
            fo = self.writes.fo_by_id[_legacy(fulfillment_order, "FulfillmentOrder")]
            if hold:
                fo.status = "ON_HOLD"
            elif fo.status == "ON_HOLD":
                fo.status = "OPEN"
                fo.settle()
            fo.updated_us = now_us()

    def release_fulfillment_order(self, fulfillment_order: int | str) -> None:
        self.hold_fulfillment_order(fulfillment_order, hold=False)

    # --- inventory -------------------------------------------------------------------------------------------

    def inventory_level(self, variant_or_item: int | str, location: int | str) -> dict[str, Any] | None:
        """``{available, on_hand, committed, inventory_item_id, location_id, updated_at}`` or None where the item
        is not stocked."""
        with self.sandbox.lock:
            i, k, j = self._level_key(variant_or_item, location)
            if not self.catalog.stocked(i, k, j):
                return None
            lvl = self.catalog.inventory_level(i, k, j)
            return {"available": lvl["available"], "on_hand": lvl["on_hand"], "committed": lvl["committed"],
                    "inventory_item_id": lvl["inventory_item_id"], "location_id": lvl["location_id"],
                    "updated_at": format_rest(lvl["updated_us"])}

    def set_stock(self, variant_or_item: int | str, location: int | str, available: int, *,
                  emit: bool = True) -> dict[str, Any]:
        """Set ``available`` (``committed`` kept, ``on_hand`` follows), stocking the item there if needed."""
        with self.sandbox.lock:
            i, k, j = self._level_key(variant_or_item, location)
            self.catalog.unstocked.discard((i, k, j))
            lvl = self.catalog.inventory_level(i, k, j)
            self.catalog.inventory[(i, k, j)] = (available, available + int(lvl["committed"]),
                                                 max(now_us(), int(lvl["updated_us"]) + 1))
            payload = self.nodes.inventory_level_rest(i, k, j)
        if emit:
            self.sandbox.emit(self.domain, "inventory_levels/update", payload)
        return payload

    def unstock(self, variant_or_item: int | str, location: int | str) -> None:
        """The item is no longer stocked at the location (its level reads null; quantities are dropped)."""
        with self.sandbox.lock:
            i, k, j = self._level_key(variant_or_item, location)
            self.catalog.unstocked.add((i, k, j))
            self.catalog.inventory[(i, k, j)] = (0, 0, now_us())

    def variants_with_sku(self, sku: str) -> list[int]:
        """Legacy ids of the live variants whose SKU is ``sku`` (case-insensitive)."""
        with self.sandbox.lock:
            return [int(self.catalog.variant(i, k)["id"]) for i, k in self.catalog.variants_with_sku(sku)]
