"""Helpers every write resolver shares: scope checks, userErrors, GID and money input, order look-ups."""

from __future__ import annotations

import zlib
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sandbox.shopify.gql import Field
from sandbox.shopify.nodes import parse_gid
from sandbox.shopify.project import FieldError

if TYPE_CHECKING:
    from sandbox.shopify.resolver import RequestContext

__all__ = ["SCOPE_DOCS", "app_numeric_id", "cents", "order_index", "require_any", "user_error"]

SCOPE_DOCS = "https://shopify.dev/api/usage/access-scopes"


def require_any(ctx: RequestContext, fld: Field, *scopes: str) -> None:
    """ACCESS_DENIED unless the token holds one of ``scopes`` (Shopify lists the alternatives with "or")."""
    if any(s in ctx.scopes for s in scopes):
        return
    needed = " or ".join(f"`{s}` access scope" for s in scopes)
    raise FieldError(f"Access denied for {fld.name} field. Required access: {needed}.", "ACCESS_DENIED",
                     documentation=SCOPE_DOCS, requiredAccess=f"{needed}.")


def user_error(typename: str, field: list[str] | None, message: str, code: str | None = None) -> dict[str, Any]:
    """One entry of a payload's ``userErrors``; ``code`` only on the types that have one."""
    err: dict[str, Any] = {"__typename": typename, "field": field, "message": message}
    if code is not None:
        err["code"] = code
    return err


def order_index(ctx: RequestContext, value: Any) -> int | None:
    """The live, visible order a GID names, or None."""
    parsed = parse_gid(value)
    if parsed is None or parsed[0] != "Order":
        return None
    o = ctx.shop.catalog.orders.live_index(parsed[1])
    visible = ctx.sandbox.order_visible(ctx.shop, ctx.scopes)
    return o if o is not None and (visible is None or visible(o)) else None


def cents(amount: Any) -> int | None:
    """A ``Decimal``/``Money`` input (string or number) in cents; None when it is not a number."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite():
        return None
    return int((value * 100).to_integral_value())


def app_numeric_id(client_id: str) -> int:
    """The number Shopify shows for an app (``App.id``, an order's default ``source_name``)."""
    return zlib.crc32(client_id.encode())
