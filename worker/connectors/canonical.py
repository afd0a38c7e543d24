"""What every connector's mapping shares: the owner columns of a canonical row, scalar conversions with
clear errors, and the effect of one webhook. Platform mappings (``<platform>/mapping.py``) turn their
objects into rows of the canonical tables with these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from worker.errors import MappingError

__all__ = ["MappingError", "Owner", "WebhookEffect", "enum_text", "integer", "money", "numeric_id", "parse_time",
           "require", "text"]

MONEY_LIMIT = Decimal("1e16")          # numeric(20, 4): 16 digits before the point
INT_RANGE = range(-2**31, 2**31)       # integer columns (counts, quantities, positions)


@dataclass(frozen=True)
class Owner:
    """Whose rows these are: filled into every row."""

    store_id: str
    organization_id: str

    @classmethod
    def of(cls, store_id: UUID | str, organization_id: UUID | str) -> Owner:
        return cls(str(store_id), str(organization_id))

    def cols(self) -> dict[str, Any]:
        return {"store_id": self.store_id, "organization_id": self.organization_id}


@dataclass(frozen=True)
class WebhookEffect:
    resource: str
    writes: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    deletes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    deleted_at: datetime | None = None                  # version of the delete (for mark_synced_deleted)


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (``…Z``, ``…+00:00``, or naive = UTC) → aware datetime; None and "" stay None."""
    if value.__class__ is str and value:         # the common case first: called for every synced row
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise MappingError(f"not a timestamp: {value[:40]!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise MappingError(f"not a timestamp: {str(value)[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def money(value: Any) -> Decimal | None:
    if value.__class__ is str and value:         # the common case first: amounts arrive as strings
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise MappingError(f"not a money amount: {value[:40]!r}") from None
        if not amount.is_finite() or abs(amount) >= MONEY_LIMIT:
            raise MappingError(f"not a money amount: {value[:40]!r}")
        return amount
    if isinstance(value, Mapping):       # MoneyV2 / MoneyBag / REST price_set
        inner = value.get("shopMoney") or value.get("shop_money") or value
        value = inner.get("amount") if isinstance(inner, Mapping) else None
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise MappingError(f"not a money amount: {str(value)[:40]!r}") from None
    if not amount.is_finite() or abs(amount) >= MONEY_LIMIT:
        raise MappingError(f"not a money amount: {str(value)[:40]!r}")
    return amount


def integer(value: Any) -> int | None:
    """A count, quantity or position: an integer column's range, else MappingError."""
    if value is None or value == "":
        return None
    number = _int(value)
    if number not in INT_RANGE:
        raise MappingError(f"not an integer in range: {str(value)[:40]!r}")
    return number


def numeric_id(value: Any) -> str:
    """A platform's numeric id (any size) as the text our key columns hold."""
    if value is None or value == "":
        raise MappingError("a record has no id")
    return str(_int(value))


def _int(value: Any) -> int:
    if isinstance(value, float) and not value.is_integer():
        raise MappingError(f"not an integer: {str(value)[:40]!r}")
    try:
        return int(value)          # numbers often arrive as strings
    except (TypeError, ValueError, OverflowError):
        raise MappingError(f"not an integer: {str(value)[:40]!r}") from None


def enum_text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value).strip().lower()


def text(value: Any) -> str | None:
    return None if value is None else str(value)


def require(obj: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise MappingError(f"{what} is not an object")
    if obj.get("id") is None:
        raise MappingError(f"{what} has no id")
    return obj
