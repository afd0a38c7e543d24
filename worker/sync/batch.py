"""What a sync source hands the engine (``Batch``), and ``BatchRows``, which every platform's source uses to
build one: rows per synced table, the newest root ``updated_at``, when the platform's state was read, and the
records that could not be mapped — each skipped and recorded with its platform id, never failing the run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.errors import MappingError
from worker.logs import redact_text

__all__ = ["RECORD_ERRORS", "Batch", "BatchRows", "RecordError", "record_error"]

# what mapping one odd record can raise: its own problem, never the run's (network and database errors
# are not among them and still fail the run)
RECORD_ERRORS = (MappingError, LookupError, TypeError, ValueError, AttributeError, ArithmeticError)


@dataclass(frozen=True)
class RecordError:
    """A record of a page that could not be stored: the platform's id, and why (never its data)."""

    id: str
    error: str


def record_error(item: Any, exc: BaseException) -> RecordError:
    found = item.get("id") if isinstance(item, Mapping) else None
    reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, MappingError) else type(exc).__name__
    return RecordError(id=str(found)[:200] if found is not None else "(no id)", error=redact_text(reason)[:300])


@dataclass
class Batch:
    """One page of work. ``writes`` maps synced table → canonical rows (all columns but synced_at and
    the catalog's observed column, which the engine stamps: ``observed_at``, else when the run started)."""

    writes: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    deletes: Mapping[str, Sequence[str]] = field(default_factory=dict)   # table → ids gone at the source
    checkpoint: Mapping[str, Any] | None = None                          # where to resume after this batch
    high_watermark: datetime | None = None                               # newest source updated_at seen
    errors: Sequence[RecordError] = ()                                   # records skipped: counted, kept on the run
    # when the platform's state in these rows was read (a request's start): orders two versions that share
    # an updated_at second; the earliest read of the batch, so a later webhook never loses to it
    observed_at: datetime | None = None


class BatchRows:
    """A batch being built from a platform's pages."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.count = 0
        self.newest: datetime | None = None
        self.errors: list[RecordError] = []
        self.observed_at: datetime | None = None

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.tables.setdefault(table, []).append(row)
        self.count += 1

    def extend(self, mapped: Mapping[str, Sequence[dict[str, Any]]]) -> None:
        for table, rows in mapped.items():
            self.tables.setdefault(table, []).extend(rows)
            self.count += len(rows)

    def saw(self, updated: datetime | None) -> None:
        """A root record's ``updated_at``: the batch's high-water mark is the newest."""
        if updated is not None and (self.newest is None or updated > self.newest):
            self.newest = updated

    def read_at(self, when: datetime | None) -> None:
        """A page of this batch was requested at ``when``."""
        if when is not None and (self.observed_at is None or when < self.observed_at):
            self.observed_at = when

    @contextlib.contextmanager
    def record(self, item: Any) -> Iterator[None]:
        """Map one platform record inside: if that fails (``RECORD_ERRORS``), its rows added so far are taken
        back and it is recorded as an error instead."""
        mark = {table: len(rows) for table, rows in self.tables.items()}
        count = self.count
        try:
            yield
        except RECORD_ERRORS as exc:
            for table, rows in self.tables.items():
                del rows[mark.get(table, 0):]
            self.count = count
            self.errors.append(record_error(item, exc))

    def batch(self, checkpoint: Mapping[str, Any] | None, cap: datetime | None = None) -> Batch:
        """The rows so far as a Batch (empty tables left out); starts over. ``cap`` bounds the watermark."""
        newest = self.newest if cap is None or self.newest is None else min(self.newest, cap)
        out = Batch(writes={t: r for t, r in self.tables.items() if r}, checkpoint=checkpoint, high_watermark=newest,
                    errors=tuple(self.errors), observed_at=self.observed_at)
        self.tables, self.count, self.newest, self.errors, self.observed_at = {}, 0, None, [], None
        return out
