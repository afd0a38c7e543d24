"""``inventorySetQuantities`` and ``inventoryActivate`` (Admin API 2026-10 rules).

``inventorySetQuantities(input: {name, reason, referenceDocumentUri, quantities: [{inventoryItemId, locationId,
quantity, changeFromQuantity}]})`` sets ``available`` (``on_hand`` moves by the same delta, ``committed`` stays) or
``on_hand`` (``available`` follows). All-or-nothing: any userError and nothing changes. From 2026-04 every quantity
must carry ``changeFromQuantity`` (the expected current value, or an explicit ``null`` to skip the check: leaving
it out is an error), and ``compareQuantity``/``ignoreCompareQuantity`` are gone; before 2026-04 the compare-quantity
pair decides (COMPARE_QUANTITY_REQUIRED / COMPARE_QUANTITY_STALE). At most 250 quantities
(``MAX_INPUT_SIZE_EXCEEDED``). userError codes: CHANGE_FROM_QUANTITY_STALE, ITEM_NOT_STOCKED_AT_LOCATION,
NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR, INVALID_INVENTORY_ITEM, INVALID_LOCATION, INVALID_NAME,
INVALID_REASON, INVALID_REFERENCE_DOCUMENT, INVALID_QUANTITY_TOO_HIGH / _TOO_LOW (beyond ±1,000,000,000),
INVALID_QUANTITY_NEGATIVE (a negative ``on_hand``); messages from Shopify's enum descriptions. The answer is an
``InventoryAdjustmentGroup`` whose ``changes`` list the set quantity and the one that followed it;
``inventory_levels/update`` goes out for each level whose ``available`` moved.

``inventoryActivate(inventoryItemId, locationId, available, onHand)`` stocks an item at a location (then
``inventorySetQuantities`` may set it); on a level already active it changes nothing, and refuses quantities.

Both need ``write_inventory`` and, from 2026-04, the ``@idempotent`` directive (``idempotency``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sandbox.shopify.clock import format_gql, now_us, version_at_least
from sandbox.shopify.gql import Field, LazyValue
from sandbox.shopify.nodes import gid, parse_gid
from sandbox.shopify.project import FieldError, Projector
from sandbox.shopify.writes.common import app_numeric_id, require_any, user_error
from sandbox.shopify.writes.idempotency import REQUIRED_FROM, idempotent
from sandbox.shopify.writes.inputs import check_arguments
from sandbox.shopify.writes.model import ADJUSTMENT_GROUP_BASE, AdjustmentGroup

if TYPE_CHECKING:
    from sandbox.shopify.resolver import RequestContext

__all__ = ["inventory_activate", "inventory_set_quantities"]

SET_ARGS = {"input": "InventorySetQuantitiesInput!"}
ACTIVATE_ARGS = {"inventoryItemId": "ID!", "locationId": "ID!", "available": "Int", "onHand": "Int",
                 "stockAtLegacyLocation": "Boolean"}
MAX_QUANTITIES = 250
LIMIT = 1_000_000_000
# Shopify's inventory reasons (shopify.dev "Inventory state change reasons")
REASONS = frozenset({"correction", "cycle_count_available", "damaged", "movement_created", "movement_updated",
                     "movement_received", "movement_canceled", "other", "promotion", "quality_control", "received",
                     "reservation_created", "reservation_deleted", "reservation_updated", "restock", "safety_stock",
                     "shrinkage"})
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
Resolved = tuple[int, int, int, int]  # product index, variant index, location index, quantity


def _set_payload(group: dict[str, Any] | None, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"__typename": "InventorySetQuantitiesPayload", "inventoryAdjustmentGroup": group, "userErrors": errors}


def _activate_payload(level: dict[str, Any] | None, errors: list[dict[str, Any]],
                      item: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"__typename": "InventoryActivatePayload", "inventoryLevel": level, "inventoryItem": item,
            "userErrors": errors}


def _item_and_location(ctx: RequestContext, item_id: Any, location_id: Any) -> tuple[tuple[int, int] | None,
                                                                                      int | None]:
    catalog = ctx.shop.catalog
    item = parse_gid(item_id)
    found = catalog.variant_by_inventory_item(item[1]) if item and item[0] == "InventoryItem" else None
    loc = parse_gid(location_id)
    j = catalog.location_index(loc[1]) if loc and loc[0] == "Location" else None
    return found, j


def _expected(q: dict[str, Any], modern: bool, ignore: bool) -> tuple[str, int | None]:
    """(input field, expected current value or None for no check)."""
    if modern or "changeFromQuantity" in q:
        return "changeFromQuantity", q.get("changeFromQuantity")
    return "compareQuantity", None if ignore else q.get("compareQuantity")


def _validate(ctx: RequestContext, data: dict[str, Any], modern: bool,
              errors: list[dict[str, Any]]) -> list[Resolved]:
    def add(field: list[str], message: str, code: str) -> None:
        errors.append(user_error("InventorySetQuantitiesUserError", field, message, code))

    catalog = ctx.shop.catalog
    name = data["name"]
    if name not in ("available", "on_hand"):
        add(["input", "name"], "The quantity name must be either 'available' or 'on_hand'.", "INVALID_NAME")
    if data["reason"] not in REASONS:
        add(["input", "reason"], "The specified reason is invalid.", "INVALID_REASON")
    uri = data.get("referenceDocumentUri")
    if uri is not None and not _URI.match(uri):
        add(["input", "referenceDocumentUri"], "The specified reference document URI is invalid.",
            "INVALID_REFERENCE_DOCUMENT")
    ignore = bool(data.get("ignoreCompareQuantity"))
    seen: set[tuple[int, int, int]] = set()
    out: list[Resolved] = []
    for n, q in enumerate(data["quantities"]):
        path = ["input", "quantities", str(n)]
        found, j = _item_and_location(ctx, q["inventoryItemId"], q["locationId"])
        if found is None:
            add([*path, "inventoryItemId"], "The specified inventory item could not be found.",
                "INVALID_INVENTORY_ITEM")
            continue
        if j is None:
            add([*path, "locationId"], "The specified location could not be found.", "INVALID_LOCATION")
            continue
        i, k = found
        if (i, k, j) in seen:
            add(path, "The combination of inventoryItemId and locationId must be unique.",
                "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR")
            continue
        seen.add((i, k, j))
        if not catalog.stocked(i, k, j):
            add([*path, "locationId"], "The specified inventory item is not stocked at the location.",
                "ITEM_NOT_STOCKED_AT_LOCATION")
            continue
        qty = int(q["quantity"])
        if qty > LIMIT:
            add([*path, "quantity"], "The total quantity can't be higher than 1,000,000,000.",
                "INVALID_QUANTITY_TOO_HIGH")
        elif qty < -LIMIT:
            add([*path, "quantity"], "The total quantity can't be lower than -1,000,000,000.",
                "INVALID_QUANTITY_TOO_LOW")
        elif qty < 0 and name == "on_hand":
            add([*path, "quantity"], "The quantity can't be negative.", "INVALID_QUANTITY_NEGATIVE")
        key, expected = _expected(q, modern, ignore)
        if not modern and key == "compareQuantity" and not ignore and "compareQuantity" not in q:
            add([*path, key], "The compareQuantity argument must be given to each quantity or ignored using "
                "ignoreCompareQuantity.", "COMPARE_QUANTITY_REQUIRED")
        elif expected is not None and name in ("available", "on_hand") and \
                int(catalog.inventory_level(i, k, j)[name]) != expected:
            add([*path, key], f"The {key} value does not match persisted value.",
                "CHANGE_FROM_QUANTITY_STALE" if key == "changeFromQuantity" else "COMPARE_QUANTITY_STALE")
        out.append((i, k, j, qty))
    return out


def _group_node(ctx: RequestContext, group: AdjustmentGroup) -> dict[str, Any]:
    locations = ctx.shop.catalog.locations
    app = ctx.sandbox.apps.get(group.client_id)

    def changes(args: dict[str, Any]) -> list[dict[str, Any]]:
        names, items, locs = args.get("quantityNames"), args.get("inventoryItemIds"), args.get("locationIds")
        return [{"__typename": "InventoryChange", "name": c["name"], "delta": c["delta"],
                 "quantityAfterChange": c["after"], "ledgerDocumentUri": None,
                 "item": {"__typename": "InventoryItem", "id": gid("InventoryItem", c["item_id"])},
                 "location": {"__typename": "Location", "id": gid("Location", locations[c["j"]]["id"]),
                              "name": locations[c["j"]]["name"]}}
                for c in group.changes
                if (not names or c["name"] in names) and (not items or gid("InventoryItem", c["item_id"]) in items)
                and (not locs or gid("Location", locations[c["j"]]["id"]) in locs)]

    return {"__typename": "InventoryAdjustmentGroup", "id": gid("InventoryAdjustmentGroup", group.id),
            "createdAt": format_gql(group.created_us), "reason": group.reason,
            "referenceDocumentUri": group.reference_document_uri, "staffMember": None,
            "app": {"__typename": "App", "id": gid("App", app_numeric_id(group.client_id)),
                    "title": app.name if app else None}, "changes": LazyValue(changes)}


def _set_empty(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return _set_payload(None, errors)


@idempotent("InventorySetQuantitiesUserError", True, _set_empty)
def inventory_set_quantities(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    require_any(ctx, fld, "write_inventory")
    modern = version_at_least(ctx.version, REQUIRED_FROM)
    check_arguments(fld, args, SET_ARGS, modern=modern)
    data: dict[str, Any] = args["input"]
    quantities = data["quantities"]
    if len(quantities) > MAX_QUANTITIES:
        raise FieldError(f"The input array size of {len(quantities)} is greater than the maximum allowed of "
                         f"{MAX_QUANTITIES}.", "MAX_INPUT_SIZE_EXCEEDED", path=["input", "quantities"])
    missing = [str(n) for n, q in enumerate(quantities) if "changeFromQuantity" not in q]
    if modern and missing:
        raise FieldError(f"changeFromQuantity is required on every quantity from API version {REQUIRED_FROM}; pass "
                         f"null to skip the check (missing at quantities {', '.join(missing)}).", "BAD_REQUEST")
    errors: list[dict[str, Any]] = []
    resolved = _validate(ctx, data, modern, errors)
    if errors:
        return _set_payload(None, errors)
    catalog, name, stamp = ctx.shop.catalog, data["name"], now_us()
    other = "on_hand" if name == "available" else "available"
    changes: list[dict[str, Any]] = []
    moved: list[tuple[int, int, int]] = []
    for i, k, j, qty in resolved:
        lvl = catalog.inventory_level(i, k, j)
        delta = qty - int(lvl[name])
        after = {name: qty, other: int(lvl[other]) + delta}
        catalog.inventory[(i, k, j)] = (after["available"], after["on_hand"], max(stamp, int(lvl["updated_us"]) + 1))
        item_id = int(lvl["inventory_item_id"])
        changes.append({"name": name, "delta": delta, "after": qty, "item_id": item_id, "j": j})
        if delta:
            changes.append({"name": other, "delta": delta, "after": after[other], "item_id": item_id, "j": j})
            moved.append((i, k, j))
    group = AdjustmentGroup(ctx.shop.writes.next_id(ADJUSTMENT_GROUP_BASE), stamp, data["reason"],
                            data.get("referenceDocumentUri"), changes, ctx.client_id)
    ctx.shop.writes.adjustments[group.id] = group
    for i, k, j in moved:
        ctx.sandbox.emit(ctx.shop, "inventory_levels/update", ctx.shop.nodes.inventory_level_rest(i, k, j))
    return _set_payload(_group_node(ctx, group), [])


def _activate_empty(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return _activate_payload(None, errors)


@idempotent("UserError", False, _activate_empty)
def inventory_activate(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    require_any(ctx, fld, "write_inventory")
    check_arguments(fld, args, ACTIVATE_ARGS)
    catalog, nodes = ctx.shop.catalog, ctx.shop.nodes
    found, j = _item_and_location(ctx, args["inventoryItemId"], args["locationId"])
    if found is None:
        return _activate_payload(None, [user_error("UserError", ["inventoryItemId"], "Inventory item does not exist")])
    if j is None:
        return _activate_payload(None, [user_error("UserError", ["locationId"], "Location does not exist")])
    i, k = found
    item = nodes.variant(i, k)["inventoryItem"]
    available, on_hand = args.get("available"), args.get("onHand")
    if catalog.stocked(i, k, j):
        if available is not None or on_hand is not None:
            return _activate_payload(None, [user_error("UserError", ["available"], "Not allowed to set available "
                                                       "quantity when the item is already active at the location.")])
        return _activate_payload(nodes.inventory_level(i, k, j), [], item)
    catalog.unstocked.discard((i, k, j))
    start = int(available or 0)
    catalog.inventory[(i, k, j)] = (start, int(on_hand if on_hand is not None else start), now_us())
    if start:
        ctx.sandbox.emit(ctx.shop, "inventory_levels/update", nodes.inventory_level_rest(i, k, j))
    return _activate_payload(nodes.inventory_level(i, k, j), [], item)
