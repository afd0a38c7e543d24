"""ShopRenter identifiers and timestamps.

Resource ids ("outer ids" in ShopRenter's words) are standard, padded base64 of ``{kind}-{column}={innerId}``:
``cHJvZHVjdC1wcm9kdWN0X2lkPTE3MDc=`` is ``product-product_id=1707``, ``b3JkZXItb3JkZXJfaWQ9MTI=`` is
``order-order_id=12``, ``d2ViSG9vay1ub3RpZmljYXRpb25faWQ9Njg=`` is ``webHook-notification_id=68``
(decoded from the examples in github.com/Shoprenter/sr-api-docs).

Timestamps come back without an offset, to the second, as ``2017-10-20T09:25:30`` (``dateCreated``/``dateUpdated``
of productExtend, customers, orderExtend in the docs' fixtures). The sandbox renders them in the shop's time zone
(``Europe/Budapest`` unless told otherwise; the offset-less format suggests local time — not verified).
Filters take the same format (error 40009: "Valid datetime format is 1990-01-01T00:00:00").
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "KINDS",
    "SrClock",
    "decode_outer_id",
    "format_local",
    "outer_id",
    "parse_local",
]

# kind -> the column inside the encoded id
KINDS: dict[str, str] = {
    "product": "product_id",
    "customer": "customer_id",
    "order": "order_id",
    "orderProduct": "order_product_id",
    "orderStatus": "order_status_id",
    "orderStatusDescription": "order_status_id",
    "productDescription": "product_id",
    "orderTotal": "order_total_id",
    "webHook": "notification_id",
    "language": "language_id",
    "currency": "currency_id",
    "customerGroup": "customer_group_id",
    "address": "address_id",
    "country": "country_id",
    "taxClass": "tax_class_id",
    "manufacturer": "manufacturer_id",
    "productClass": "product_class_id",
    "stockStatus": "stock_status_id",
    "lengthClass": "length_class_id",
    "weightClass": "weight_class_id",
}

_ID = re.compile(r"^([A-Za-z]+)-([a-z_]+)=(\d+)(?:&.*)?$")


@functools.lru_cache(maxsize=262_144)
def outer_id(kind: str, inner_id: int, extra: str = "") -> str:
    """``outer_id("product", 12)`` -> base64("product-product_id=12"); ``extra`` appends ``&...`` pairs."""
    raw = f"{kind}-{KINDS.get(kind, kind + '_id')}={inner_id}{extra}"
    return base64.b64encode(raw.encode()).decode()


def decode_outer_id(value: str, kind: str | None = None) -> int | None:
    """-> the inner id, or None when ``value`` is not an id of ``kind`` (any kind when None)."""
    try:
        raw = base64.b64decode(value.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    m = _ID.match(raw)
    if m is None or (kind is not None and (m.group(1) != kind or m.group(2) != KINDS.get(kind, kind + "_id"))):
        return None
    return int(m.group(3))


@functools.lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@functools.lru_cache(maxsize=131_072)
def format_local(seconds: int, tz: str, sep: str = "T") -> str:
    """UTC epoch seconds -> naive local ``YYYY-MM-DDTHH:MM:SS`` (``sep=" "`` for the SQL style)."""
    if tz == "UTC":
        return time.strftime(f"%Y-%m-%d{sep}%H:%M:%S", time.gmtime(seconds))
    return datetime.fromtimestamp(seconds, _zone(tz)).strftime(f"%Y-%m-%d{sep}%H:%M:%S")


_LOCAL = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})$")


def parse_local(text: str, tz: str) -> int | None:
    """Naive local ``YYYY-MM-DDTHH:MM:SS`` (or with a space) -> UTC epoch seconds; None if malformed.

    Offsets, fractions and bare dates are rejected, as the documented format has none of them. An
    ambiguous local time (the autumn DST hour) resolves to its first occurrence."""
    m = _LOCAL.match(text.strip())
    if m is None:
        return None
    try:
        y, mo, d, h, mi, sec = (int(g) for g in m.groups())
        naive = datetime(y, mo, d, h, mi, sec)  # noqa: DTZ001 (it is local time on purpose)
    except ValueError:
        return None
    return int(naive.replace(tzinfo=_zone(tz)).timestamp())


class SrClock:
    """A shop's clock: real time plus an offset that tests move with ``advance``; ``freeze`` stops it (so two
    changes land in the same second on purpose)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.frozen: float | None = None

    def now(self) -> float:
        if self.frozen is not None:
            return self.frozen
        return time.time() + self.offset

    def now_s(self) -> int:
        return int(self.now())

    def advance(self, seconds: float) -> None:
        if self.frozen is not None:
            self.frozen += seconds
        self.offset += seconds

    def freeze(self) -> None:
        self.frozen = self.now()

    def unfreeze(self) -> None:
        if self.frozen is not None:
            self.offset = self.frozen - time.time()
        self.frozen = None

    def at(self, when: datetime) -> None:
        """Jump so that ``now()`` is ``when`` (aware datetime)."""
        self.offset = when.timestamp() - time.time()
        if self.frozen is not None:
            self.frozen = when.timestamp()

    def __repr__(self) -> str:
        return f"SrClock(offset={timedelta(seconds=self.offset)}, frozen={self.frozen is not None})"
