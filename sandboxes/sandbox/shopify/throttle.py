"""The GraphQL Admin API's leaky bucket, one per app + shop.

Shopify documents restore rates per plan (Standard 100, Advanced 200, Plus 1000, Enterprise 2000
points/s; shopify.dev "GraphQL Admin API rate limits"). Bucket sizes are not in that page; the sandbox
defaults to 10 s of restore (1000 for Standard) and lets callers choose.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["PLAN_RESTORE_RATES", "LeakyBucket"]

PLAN_RESTORE_RATES = {"basic": 100.0, "standard": 100.0, "advanced": 200.0, "plus": 1000.0, "enterprise": 2000.0}


class LeakyBucket:
    """Points available = capacity minus what leaked in; requests take their *requested* cost up front and
    get ``requested - actual`` refunded after execution, as Shopify does."""

    def __init__(self, capacity: float, restore_rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(capacity)
        self.restore_rate = float(restore_rate)
        self._clock = clock
        self._level = float(capacity)
        self._at = clock()

    def available(self) -> float:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._at) * self.restore_rate)
        self._at = now
        return self._level

    def take(self, cost: float) -> bool:
        if self.available() < cost:
            return False
        self._level -= cost
        return True

    def refund(self, amount: float) -> None:
        self.available()
        self._level = min(self.capacity, self._level + max(amount, 0.0))

    def drain(self, to: float = 0.0) -> None:
        """Test helper: empty the bucket (down to ``to`` points)."""
        self.available()
        self._level = min(self._level, to)

    def status(self) -> dict[str, float | int]:
        return {"maximumAvailable": self.capacity, "currentlyAvailable": int(self.available()),
                "restoreRate": self.restore_rate}
