"""The one small port every database path implements.

The worker, scheduler and CLI talk to PostgreSQL only through ``Database``. Two implementations:
``DirectDatabase`` (psycopg 3 pool, LISTEN/NOTIFY) and ``SupabaseDatabase`` (PostgREST RPC with the
service role, Realtime broadcast wake-ups). All queue and admin logic lives in SQL functions in the
``shopsync`` schema, so both paths execute exactly the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["Database", "JOBS_CHANNEL", "WakeupSignal"]

# NOTIFY channel (direct path) and Realtime broadcast topic (supabase path) for job wake-ups.
JOBS_CHANNEL = "shopsync_jobs"


class Database(Protocol):
    """Calls SQL functions and waits for job wake-ups."""

    async def rpc(self, function: str, args: Mapping[str, Any] | None = None) -> Any:
        """Call ``shopsync.<function>`` with named arguments, the way PostgREST does.

        Returns what PostgREST would: a list of row dicts for set-returning functions, otherwise the
        scalar (JSON-decoded for json/jsonb). Raises ``worker.errors.DatabaseError`` carrying the
        SQLSTATE and message of a failed call.
        """
        ...

    async def write_synced(self, table: str, rows: Sequence[Mapping[str, Any]], *, job_id: int | None = None,
                           worker_id: str | None = None, keep: Sequence[str] = (),
                           fresh: bool = False) -> Mapping[str, int]:
        """Upsert rows into ``shopsync.<table>`` (a canonical synced table) with the staleness guard.

        Every row has the same keys: the table's columns except ``synced_at``. Columns in ``keep`` are
        ones the source did not send: an update leaves their stored values alone. ``fresh`` hints that
        the rows are probably all new (a first full sync), so a path may try a plain insert first. With ``job_id`` the
        write is refused (DatabaseError 55000) unless ``worker_id`` still holds that job. Returns the
        counts ``inserted``, ``updated`` and ``skipped`` (older than what is stored or redacted).
        """
        ...

    async def wait_for_wakeup(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a job wake-up. True if one arrived.

        Wake-ups are hints only: callers always poll on timeout.
        """
        ...

    async def close(self) -> None: ...


class WakeupSignal:
    """A latch both database paths use: set by NOTIFY/broadcast, consumed by ``wait``."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True if a wake-up arrived (now or within ``timeout`` seconds); consumes it."""
        if not self._event.is_set():
            try:
                async with asyncio.timeout(timeout):   # not wait_for: on 3.11 it can swallow a cancel
                    await self._event.wait()
            except TimeoutError:
                return False
        self._event.clear()
        return True
