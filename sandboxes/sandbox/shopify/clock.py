"""Time helpers: the sandbox keeps timestamps as integer microseconds since the epoch (UTC).

Shopify stores some timestamps with fractional seconds but *returns* them truncated to the second
(``2026-09-15T12:00:02Z``); the sandbox does the same, which is what makes the ``>`` search-filter
semantics of API 2026-10 observable (see ``search.py``).
"""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, date, datetime, timedelta

__all__ = [
    "US",
    "date_us",
    "day_start_us",
    "format_gql",
    "format_precise",
    "format_rest",
    "now_us",
    "parse_timestamp",
    "version_at_least",
]

US = 1_000_000

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def now_us() -> int:
    return time.time_ns() // 1000


@functools.lru_cache(maxsize=65_536)
def _iso_second(second: int) -> str:
    # Node building formats the same few timestamps over and over (product, variants, levels).
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def format_gql(us: int | None) -> str | None:
    """GraphQL ``DateTime``: ISO 8601, UTC, truncated to the second."""
    if us is None:
        return None
    return _iso_second(us // US) + "Z"


def format_rest(us: int | None) -> str | None:
    """REST/webhook style: ISO 8601 with an explicit offset (the sandbox's shops run on UTC)."""
    if us is None:
        return None
    return _iso_second(us // US) + "+00:00"


def format_precise(us: int) -> str:
    """Full precision, for X-Shopify-Triggered-At."""
    return datetime.fromtimestamp(us / US, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> tuple[int, bool, bool] | None:
    """Parse a search-syntax/ISO timestamp -> (microseconds, has_time, has_fraction); None if invalid."""
    m = _ISO.match(text.strip())
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    try:
        base = datetime(int(year), int(month), int(day), tzinfo=UTC)
    except ValueError:
        return None
    if hh is None:
        return int(base.timestamp()) * US, False, False
    micro = int((frac or "0")[:6].ljust(6, "0"))
    dt = base + timedelta(hours=int(hh), minutes=int(mm), seconds=int(ss or 0), microseconds=micro)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        dt -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    seconds = int((dt - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
    return seconds * US + dt.microsecond, True, frac is not None and int(frac) != 0


def day_start_us(us: int) -> int:
    d = datetime.fromtimestamp(us // US, UTC).date()
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * US


def date_us(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * US


def version_at_least(version: str, minimum: str) -> bool:
    """API versions are ``YYYY-MM`` (compare as strings); ``unstable`` is newer than all of them."""
    if version == "unstable":
        return True
    return version >= minimum
