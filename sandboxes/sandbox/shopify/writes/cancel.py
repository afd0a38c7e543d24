"""``orderCancel`` (the 2025+ signature: ``reason``, ``restock``, ``refundMethod``, ``notifyCustomer``,
``staffNote``; the older ``refund: Boolean`` is still accepted).

Shopify cancels asynchronously and answers a ``Job``; the sandbox applies the cancel at once and answers the job
with ``done: false`` (``job(id:)`` then says ``done: true``). Effects: ``cancelledAt``/``closedAt`` now,
``cancelReason``, open fulfillment orders CANCELLED, a pending or authorized payment VOIDED, a paid one REFUNDED
when a refund method is given; ``restock: true`` gives the unfulfilled quantity of lines that claimed stock back
to ``available`` at their location. Webhooks ``orders/cancelled`` and ``orders/updated`` (and
``inventory_levels/update`` per restocked level).

Refused (``orderCancelUserErrors`` with a code): an unknown order (NOT_FOUND), an order already cancelled or
paid with a fulfillment (INVALID), a staff note over 255 characters (INVALID), store credit for an order
without a customer or expiring in the past.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sandbox.shopify.clock import now_us, parse_timestamp
from sandbox.shopify.gql import Field
from sandbox.shopify.project import Projector
from sandbox.shopify.writes.common import order_index, require_any, user_error
from sandbox.shopify.writes.fulfillment_orders import ensure
from sandbox.shopify.writes.inputs import check_arguments

if TYPE_CHECKING:
    from sandbox.shopify.resolver import RequestContext

__all__ = ["job_node", "order_cancel"]

ARGS = {"orderId": "ID!", "reason": "OrderCancelReason!", "restock": "Boolean!",
        "refundMethod": "OrderCancelRefundMethodInput", "notifyCustomer": "Boolean", "staffNote": "String",
        "refund": "Boolean"}


def job_node(job_id: str, done: bool) -> dict[str, Any]:
    return {"__typename": "Job", "id": f"gid://shopify/Job/{job_id}", "done": done,
            "query": {"__typename": "QueryRoot"}}


def _payload(job: dict[str, Any] | None, errors: list[dict[str, Any]]) -> dict[str, Any]:
    legacy = [{k: v for k, v in e.items() if k != "code"} | {"__typename": "UserError"} for e in errors]
    return {"__typename": "OrderCancelPayload", "job": job, "orderCancelUserErrors": errors, "userErrors": legacy}


def _check(ctx: RequestContext, args: dict[str, Any], o: int) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []

    def add(field: list[str], message: str, code: str = "INVALID") -> None:
        errors.append(user_error("OrderCancelUserError", field, message, code))

    rec = ctx.shop.catalog.order(o)
    if rec["cancelled_us"]:
        add(["orderId"], "Order has already been cancelled")
    elif rec["financial_status"] in ("PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED") and \
            any(f["status"] == "SUCCESS" for f in rec["fulfillments"]):
        add(["orderId"], "An order that is paid and has fulfillments can't be cancelled")
    note = args.get("staffNote")
    if note is not None and len(note) > 255:
        add(["staffNote"], "Staff note is too long (maximum is 255 characters)")
    credit = (args.get("refundMethod") or {}).get("storeCreditRefund")
    if credit is not None:
        if rec["customer_id"] is None:
            add(["refundMethod", "storeCreditRefund"], "A store credit refund needs an order with a customer",
                "STORE_CREDIT_REFUND_MISSING_CUSTOMER")
        expires = parse_timestamp(credit["expiresAt"]) if credit.get("expiresAt") else None
        if expires is not None and expires[0] < now_us():
            add(["refundMethod", "storeCreditRefund", "expiresAt"], "The store credit expiry date is in the past",
                "STORE_CREDIT_REFUND_EXPIRATION_IN_PAST")
    return errors


def order_cancel(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> dict[str, Any]:
    require_any(ctx, fld, "write_orders")
    check_arguments(fld, args, ARGS)
    shop, catalog = ctx.shop, ctx.shop.catalog
    o = order_index(ctx, args["orderId"])
    if o is None:
        return _payload(None, [user_error("OrderCancelUserError", ["orderId"], "Order does not exist", "NOT_FOUND")])
    errors = _check(ctx, args, o)
    if errors:
        return _payload(None, errors)
    rec = catalog.order(o)
    method = args.get("refundMethod") or {}
    refund = bool(method.get("originalPaymentMethodsRefund") or method.get("storeCreditRefund") or args.get("refund"))
    stamp = now_us()
    catalog.before_order_change(o)
    ov = catalog.orders.overrides.setdefault(o, {})
    ov.update({"cancelled_us": stamp, "closed_us": stamp, "cancel_reason": str(args["reason"]).lower(),
               "cancel_notify_customer": bool(args.get("notifyCustomer")), "staff_note": args.get("staffNote")})
    if rec["financial_status"] in ("PENDING", "AUTHORIZED", "EXPIRED"):
        ov["financial_status"] = "VOIDED"
    elif refund and rec["financial_status"] in ("PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED"):
        ov["financial_status"] = "REFUNDED"
    catalog.orders.touch(o)
    catalog.after_order_change(o)
    for fo in ensure(shop, o):
        if fo.status != "CLOSED":
            fo.status, fo.updated_us = "CANCELLED", stamp
    restocked: list[tuple[int, int, int]] = []
    if args.get("restock"):
        for li in rec["line_items"]:
            back = int(li["quantity"]) - int(li.get("fulfilled_quantity", 0))
            found = catalog.variant_by_id(int(li["variant_id"])) if li.get("variant_id") else None
            if not li.get("claimed") or back <= 0 or found is None:
                continue
            j = int(li["location_index"])
            lvl = catalog.inventory_level(found[0], found[1], j)
            catalog.inventory[(found[0], found[1], j)] = (int(lvl["available"]) + back, int(lvl["on_hand"]),
                                                          max(stamp, int(lvl["updated_us"]) + 1))
            li["claimed"] = False
            restocked.append((found[0], found[1], j))
    job_id = str(uuid.uuid4())
    shop.writes.jobs[job_id] = True
    payload = shop.nodes.order_rest(o)
    ctx.sandbox.emit(shop, "orders/cancelled", payload)
    ctx.sandbox.emit(shop, "orders/updated", payload)
    for i, k, j in restocked:
        ctx.sandbox.emit(shop, "inventory_levels/update", shop.nodes.inventory_level_rest(i, k, j))
    return _payload(job_node(job_id, False), [])
