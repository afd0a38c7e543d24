"""The root fields the write side adds to ``resolver``'s tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.shopify.gql import Field
from sandbox.shopify.nodes import parse_gid
from sandbox.shopify.project import Projector
from sandbox.shopify.writes.cancel import job_node, order_cancel
from sandbox.shopify.writes.common import require_any
from sandbox.shopify.writes.fulfillment_orders import fulfillment_order_node
from sandbox.shopify.writes.fulfillments import (
    FULFILLMENT_SCOPES,
    find_fulfillment,
    fulfillment_create,
    tracking_update,
)
from sandbox.shopify.writes.inventory import inventory_activate, inventory_set_quantities
from sandbox.shopify.writes.orders import order_create

if TYPE_CHECKING:
    from sandbox.shopify.resolver import RequestContext

__all__ = ["WRITE_MUTATIONS", "WRITE_QUERIES"]

FO_READ_SCOPES = (*FULFILLMENT_SCOPES, *(s.replace("write_", "read_") for s in FULFILLMENT_SCOPES))
Root = Callable[["RequestContext", Projector, Field, dict[str, Any]], Any]


def _job(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    value = str(args.get("id") or "")
    job_id = value.removeprefix("gid://shopify/Job/")
    done = ctx.shop.writes.jobs.get(job_id)
    return job_node(job_id, done) if done is not None else None


def _fulfillment_order(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    require_any(ctx, fld, *FO_READ_SCOPES)
    parsed = parse_gid(args.get("id"))
    fo = ctx.shop.writes.fo_by_id.get(parsed[1]) if parsed and parsed[0] == "FulfillmentOrder" else None
    visible = ctx.sandbox.order_visible(ctx.shop, ctx.scopes)
    if fo is None or not ctx.shop.catalog.orders.alive(fo.order_index) or \
            (visible is not None and not visible(fo.order_index)):
        return None
    return fulfillment_order_node(ctx.shop, fo)


def _fulfillment(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    require_any(ctx, fld, "read_orders", "write_orders", *FO_READ_SCOPES)
    found = find_fulfillment(ctx, args.get("id"))
    return ctx.shop.nodes.fulfillment(*found) if found else None


WRITE_QUERIES: dict[str, Root] = {
    "job": _job,
    "fulfillmentOrder": _fulfillment_order,
    "fulfillment": _fulfillment,
}
WRITE_MUTATIONS: dict[str, Root] = {
    "orderCreate": order_create,
    "orderCancel": order_cancel,
    "fulfillmentCreate": fulfillment_create,
    "fulfillmentTrackingInfoUpdate": tracking_update,
    "inventorySetQuantities": inventory_set_quantities,
    "inventoryActivate": inventory_activate,
}
