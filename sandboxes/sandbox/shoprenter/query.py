"""Collection queries: the filter parameters each API2 resource accepts and the records they select.

Bad values answer 400 with ShopRenter's inner codes (40005 a bad number, 40009 a bad datetime, 40017 a bad date,
40007 a bad resource id).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from sandbox.shoprenter.dataset import LANGUAGES, ORDER_STATUSES
from sandbox.shoprenter.ids import decode_outer_id, format_local, parse_local
from sandbox.shoprenter.responses import ApiError
from sandbox.shoprenter.state import SrShop

__all__ = ["COMMON_PARAMS", "FILTERS", "int_param", "records"]

COMMON_PARAMS = frozenset({"page", "limit", "full"})
# resource -> (filter params it accepts)
FILTERS: dict[str, frozenset[str]] = {
    "productExtend": frozenset({"updatedAfter", "updatedBefore", "createdAfter", "createdBefore", "updatedAt",
                                "createdAt", "sku", "innerId", "published", "parentProductId"}),
    "customers": frozenset({"updatedAtMin", "updatedAtMax", "createdAtMin", "createdAtMax", "email", "innerId"}),
    "orderExtend": frozenset({"updatedAtMin", "updatedAtMax", "createdAtMin", "createdAtMax", "updatedAt",
                              "createdAt", "innerId", "innerIdMin", "email", "orderStatusId",
                              "excludeAbandonedCart", "excludeStorno"}),
    "webHooks": frozenset(),
    "languages": frozenset(),
    "orderStatuses": frozenset(),
    "orderStatusDescriptions": frozenset({"orderStatusId", "languageId"}),
}


def _date_param(name: str, value: str, tz: str) -> int:
    parsed = parse_local(value, tz)
    if parsed is None:
        raise ApiError(400, f"The given datetime parameter: {name} is invalid! Valid datetime format is "
                            "1990-01-01T00:00:00", 40009)
    return parsed


def _day_param(name: str, value: str) -> str:
    if len(value) != 10 or value[4] != "-" or value[7] != "-" or not value.replace("-", "").isdigit():
        raise ApiError(400, f"The given date parameter: {name} is invalid! Valid date format is 1990-01-01", 40017)
    return value


def int_param(name: str, value: str, low: int = 0, high: int = 1_000_000_000) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"The {name} parameter has wrong data. The data is not int.", 40005) from None
    if not low <= number <= high:
        raise ApiError(400, f"The {name} must be integer {low} between {high}.", 40005)
    return number


Pred = Callable[[Any], bool]


def _compare(attr: str, op: Callable[[Any, Any], bool], value: Any) -> Pred:
    def pred(record: Any) -> bool:
        return bool(op(getattr(record, attr), value))
    return pred


def _equals(attr: str, value: Any) -> Pred:
    return _compare(attr, operator.eq, value)


def _local_day(attr: str, tz: str, day: str) -> Pred:
    def pred(record: Any) -> bool:
        return format_local(getattr(record, attr), tz)[:10] == day
    return pred


def _parent_is(parent: int) -> Pred:
    def pred(p: Any) -> bool:
        return bool((p.parent_id if p.parent_id is not None else p.inner_id) == parent)
    return pred


def _position_is(index: int, value: int | None) -> Pred:
    def pred(row: Any) -> bool:
        return bool(row[index] == value)
    return pred


def _time_filters(params: dict[str, str], tz: str, inclusive: bool,
                  names: dict[str, tuple[str, str]]) -> list[Pred]:
    """``names``: param -> (record attribute, "min" | "max" | "day")."""
    preds: list[Pred] = []
    for param, (attr, kind) in names.items():
        raw = params.get(param)
        if raw is None:
            continue
        if kind == "day":
            day = _day_param(param, raw)
            preds.append(_local_day(attr, tz, day))
            continue
        bound = _date_param(param, raw, tz)
        if kind == "min":
            preds.append(_compare(attr, operator.ge if inclusive else operator.gt, bound))
        else:
            preds.append(_compare(attr, operator.le if inclusive else operator.lt, bound))
    return preds


def records(shop: SrShop, resource: str, params: dict[str, str], *, inclusive: bool) -> list[Any]:
    """Matching records in innerId order (callers hold the lock); ``inclusive``: ``sandbox.filter_inclusive``."""
    c = shop.catalog
    tz = shop.timezone
    preds: list[Pred] = []
    rows: list[Any]
    if resource == "productExtend":
        rows = list(c.products.values())
        preds += _time_filters(params, tz, inclusive, {
            "updatedAfter": ("updated", "min"), "updatedBefore": ("updated", "max"),
            "createdAfter": ("created", "min"), "createdBefore": ("created", "max"),
            "updatedAt": ("updated", "day"), "createdAt": ("created", "day")})
        if "sku" in params:
            preds.append(_equals("sku", params["sku"]))
        if "innerId" in params:
            preds.append(_equals("inner_id", int_param("innerId", params["innerId"])))
        if "published" in params:
            preds.append(_equals("status", int_param("published", params["published"], 0, 2)))
        if "parentProductId" in params:
            pid = int_param("parentProductId", params["parentProductId"])
            preds.append(_parent_is(pid))
    elif resource == "customers":
        rows = list(c.customers.values())
        preds += _time_filters(params, tz, inclusive, {
            "updatedAtMin": ("updated", "min"), "updatedAtMax": ("updated", "max"),
            "createdAtMin": ("created", "min"), "createdAtMax": ("created", "max")})
        if "email" in params:
            preds.append(_equals("email", params["email"]))
        if "innerId" in params:
            preds.append(_equals("inner_id", int_param("innerId", params["innerId"])))
    elif resource == "orderExtend":
        rows = list(c.orders.values())
        preds += _time_filters(params, tz, inclusive, {
            "updatedAtMin": ("updated", "min"), "updatedAtMax": ("updated", "max"),
            "createdAtMin": ("created", "min"), "createdAtMax": ("created", "max"),
            "updatedAt": ("updated", "day"), "createdAt": ("created", "day")})
        if "email" in params:
            preds.append(_equals("email", params["email"]))
        if "innerId" in params:
            preds.append(_equals("inner_id", int_param("innerId", params["innerId"])))
        if "innerIdMin" in params:
            floor = int_param("innerIdMin", params["innerIdMin"])
            preds.append(_compare("inner_id", operator.ge, floor))
        if "orderStatusId" in params:
            sid = decode_outer_id(params["orderStatusId"], "orderStatus")
            if sid is None:
                raise ApiError(400, f"The given resource id is wrong: {params['orderStatusId']}!", 40007)
            preds.append(_equals("status_id", sid))
    elif resource == "webHooks":
        rows = list(shop.webhooks.values())
    elif resource == "languages":
        rows = [lid for lid, _, _ in LANGUAGES]
    elif resource == "orderStatuses":
        rows = list(ORDER_STATUSES)
    else:  # orderStatusDescriptions
        rows = [(sid, lid) for sid in ORDER_STATUSES for lid, _, _ in LANGUAGES]
        if "orderStatusId" in params:
            sid = decode_outer_id(params["orderStatusId"], "orderStatus")
            preds.append(_position_is(0, sid))
        if "languageId" in params:
            lang = decode_outer_id(params["languageId"], "language")
            preds.append(_position_is(1, lang))
    if preds:
        rows = [r for r in rows if all(p(r) for p in preds)]
    return rows
