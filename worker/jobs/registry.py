"""Job kinds → handlers. The engine dispatches through this table, never through an if-chain.

Core handlers and every connector add themselves here (connectors through
``worker.connectors.registry``). A worker only claims kinds that have a handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from worker.config import Settings
    from worker.db.port import Database

__all__ = ["Job", "JobContext", "Handler", "JobRegistry"]


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job, as ``shopsync.claim_jobs`` returns it."""

    id: int
    kind: str
    payload: Mapping[str, Any]
    attempts: int
    max_attempts: int
    store_id: UUID | None = None
    organization_id: UUID | None = None
    resource: str | None = None
    priority: int = 100
    created_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        def as_uuid(value: Any) -> UUID | None:
            return value if value is None or isinstance(value, UUID) else UUID(str(value))

        return cls(id=int(row["id"]), kind=row["kind"], payload=row.get("payload") or {},
                   attempts=int(row["attempts"]), max_attempts=int(row["max_attempts"]),
                   store_id=as_uuid(row.get("store_id")), organization_id=as_uuid(row.get("organization_id")),
                   resource=row.get("resource"), priority=int(row.get("priority") or 100))


@dataclass
class JobContext:
    """What a handler may use: the database port, settings, and the worker's identity."""

    db: Database
    settings: Settings
    worker_id: str
    extras: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Job, JobContext], Awaitable[Mapping[str, Any] | None]]


class JobRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str, handler: Handler) -> None:
        if kind in self._handlers and self._handlers[kind] is not handler:
            raise ValueError(f"job kind {kind!r} already has a handler")
        self._handlers[kind] = handler

    def handler(self, kind: str) -> Handler:
        return self._handlers[kind]

    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    def __contains__(self, kind: object) -> bool:
        return kind in self._handlers
