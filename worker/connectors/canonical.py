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

from worker.errors import PermanentError

__all__ = ["MappingError", "Owner", "WebhookEffect", "enum_text", "integer", "money", "parse_time", "require",
           "text"]


class MappingError(PermanentError):
    """A platform object lacks what its canonical row needs (retrying cannot fix the data)."""


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
        if not amount.is_finite():
            raise MappingError(f"not a money amount: {value!r}")
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
    if not amount.is_finite():
        raise MappingError(f"not a money amount: {value!r}")
    return amount


def integer(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)          # numbers often arrive as strings
    except (TypeError, ValueError):
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
