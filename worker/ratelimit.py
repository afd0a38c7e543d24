"""Per-store request pacing shared by every worker, kept in the database (``reserve_request_slot``).

Each request reserves the next free slot of its key in one row update and sleeps until that slot, so
any number of workers serving one store stay under its limit together — the limit a platform enforces
per shop (ShopRenter: 3 requests/s) or the politeness a self-hosted store needs (WooCommerce).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from worker.db.port import Database
from worker.rpc import rate_limits

__all__ = ["DbRateLimiter", "Pacer", "UNPACED"]


class Pacer(Protocol):
    async def wait(self) -> None:
        """Return when the next request may be sent."""
        ...

    async def defer(self, seconds: float) -> None:
        """The platform answered 429: nobody sends for this store for ``seconds``."""
        ...


class _Unpaced:
    async def wait(self) -> None:
        return None

    async def defer(self, seconds: float) -> None:
        return None


UNPACED: Pacer = _Unpaced()


class DbRateLimiter:
    """At most ``per_second`` requests per second for ``key`` across all workers (bursts of ``burst``)."""

    def __init__(self, db: Database, key: str, per_second: float, burst: int = 1) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.db = db
        self.key = key
        self.per_second = per_second
        self.burst = burst

    async def wait(self) -> None:
        delay = await rate_limits.reserve_request_slot(self.db, key=self.key, per_second=self.per_second,
                                                       burst=self.burst)
        if delay > 0:
            await asyncio.sleep(delay)

    async def defer(self, seconds: float) -> None:
        await rate_limits.defer_requests(self.db, key=self.key, seconds=seconds)
