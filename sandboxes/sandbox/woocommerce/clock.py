"""The store clock and WordPress's date handling.

WordPress stores post dates twice, as MySQL ``DATETIME`` (second precision): ``post_modified`` in the site's
timezone and ``post_modified_gmt`` in UTC. The REST API prints both without an offset
(``wc_rest_prepare_date_response``): ``"date_modified": "2026-03-01T13:00:05"`` (site time) and
``"date_modified_gmt": "2026-03-01T12:00:05"``.

``modified_after`` / ``modified_before`` / ``after`` / ``before`` go through ``WP_Date_Query::build_mysql_datetime``
and are compared, **exclusively**, against the GMT column when ``dates_are_gmt=true`` and against the site-time column
otherwise. A value *without* an offset is taken literally; a value *with* an offset (``Z``, ``+02:00``) is first
converted to site time — and then still compared with the GMT column when ``dates_are_gmt=true``. So on a ``+01:00``
site, ``modified_after=2026-03-01T12:00:00Z&dates_are_gmt=true`` skips an hour of changes. That is real WordPress
behaviour (wp-includes/class-wp-date-query.php); send GMT values without an offset.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime

__all__ = [
    "StoreClock",
    "format_gmt",
    "format_local",
    "parse_rest_date",
    "query_literal",
]

# rest_parse_date(): seconds are required, a fraction and an offset are optional.
_REST_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


class StoreClock:
    """Wall-clock time plus a forward-only offset. ``now()`` never goes backwards."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._last = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            t = time.time() + self._offset
            if t < self._last:
                t = self._last
            self._last = t
            return t

    def now_s(self) -> int:
        """MySQL DATETIME precision: what ``date_modified`` is made of."""
        return int(self.now())

    def advance(self, seconds: float) -> float:
        """Move the store's time forward (tests: nonce windows, second boundaries)."""
        if seconds < 0:
            raise ValueError("the store clock never goes backwards")
        with self._lock:
            self._offset += seconds
        return self.now()

    @property
    def offset(self) -> float:
        return self._offset


def format_gmt(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def format_local(seconds: int | None, offset_s: int) -> str | None:
    if seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds + offset_s))


def parse_rest_date(text: str) -> tuple[int, int | None] | None:
    """-> (wall-clock seconds read as if UTC, offset seconds or None), or None if ``rest_parse_date`` rejects it."""
    m = _REST_DATE.match(text.strip())
    if not m:
        return None
    year, month, day, hh, mm, ss, tz = m.groups()
    try:
        wall = datetime(int(year), int(month), int(day), int(hh), int(mm), int(ss), tzinfo=UTC)
    except ValueError:
        return None
    offset: int | None = None
    if tz:
        if tz in ("Z", "z"):
            offset = 0
        else:
            digits = tz[1:].replace(":", "")
            minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) >= 4 else 0)
            offset = (1 if tz[0] == "+" else -1) * minutes * 60
    return int(wall.timestamp()), offset


def query_literal(text: str, site_offset_s: int) -> int | None:
    """The MySQL literal ``build_mysql_datetime`` makes of a REST date, as wall-clock seconds (read as UTC).

    No offset: the value as written. With an offset: the instant converted to site time."""
    parsed = parse_rest_date(text)
    if parsed is None:
        return None
    wall, offset = parsed
    if offset is None:
        return wall
    return wall - offset + site_offset_s
