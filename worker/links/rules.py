"""A link's rules: the source's price and stock → what the target gets.

* Price: ``source × multiplier + offset``, then, with a rounding such as ``.99``, the smallest price ending in
  those cents that is not below it (12.30 → 12.99, 12.995 → 13.99), to the cent (half up). A source without a
  price, or a result that is not a positive number, is refused for that SKU (``price_invalid``) — never sent.
* Stock: ``floor(source × percentage / 100)``; below ``zero_below`` → 0 (an out-of-stock threshold); at most
  ``cap``; a negative source (oversold) counts as 0. A source without a stock figure is refused
  (``quantity_invalid``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

__all__ = ["InventoryRule", "PriceRule", "Refused"]

_CENT = Decimal("0.01")


class Refused(Exception):
    """The rule cannot produce a value for this SKU; ``reason`` is the stable code shown to users."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        found = Decimal(str(value))
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


@dataclass(frozen=True)
class PriceRule:
    multiplier: Decimal = Decimal(1)
    offset: Decimal = Decimal(0)
    rounding: str | None = None          # ".99": the cents every pushed price ends with

    @classmethod
    def of(cls, link: Mapping[str, Any]) -> PriceRule:
        return cls(_decimal(link.get("price_multiplier")) or Decimal(1),
                   _decimal(link.get("price_offset")) or Decimal(0), link.get("price_rounding") or None)

    def apply(self, source: Any) -> Decimal:
        price = _decimal(source)
        if price is None:
            raise Refused("price_invalid", f"the source has no numeric price ({str(source)[:20]!r})")
        value = price * self.multiplier + self.offset
        if self.rounding:
            cents = Decimal(self.rounding)
            candidate = value.to_integral_value(ROUND_FLOOR) + cents
            value = candidate if candidate >= value else candidate + 1
        value = value.quantize(_CENT, ROUND_HALF_UP)
        if value <= 0:
            raise Refused("price_invalid", f"the price after the rule is {value}: it must be a positive number "
                                           f"(source {price}, × {self.multiplier} + {self.offset})")
        return value


@dataclass(frozen=True)
class InventoryRule:
    percentage: Decimal = Decimal(100)
    zero_below: int = 0
    cap: int | None = None

    @classmethod
    def of(cls, link: Mapping[str, Any]) -> InventoryRule:
        percentage = _decimal(link.get("inventory_percentage"))
        cap = link.get("inventory_cap")
        return cls(Decimal(100) if percentage is None else percentage, int(link.get("inventory_zero_below") or 0),
                   None if cap is None else int(cap))

    def apply(self, source: Any) -> int:
        quantity = _decimal(source)
        if quantity is None:
            raise Refused("quantity_invalid", f"the source has no stock figure ({str(source)[:20]!r})")
        target = int((max(quantity, Decimal(0)) * self.percentage / 100).to_integral_value(ROUND_FLOOR))
        if target < self.zero_below:
            target = 0
        if self.cap is not None:
            target = min(target, self.cap)
        return target
