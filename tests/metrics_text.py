"""Reading samples out of a Prometheus text page in tests (label order and value format free)."""

from __future__ import annotations

import re

_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _series(text: str) -> tuple[str, frozenset[tuple[str, str]]]:
    name, _, labels = text.partition("{")
    return name, frozenset(_LABEL.findall(labels))


def sample(text: str, series: str) -> float:
    """The value of the one sample of ``series`` (``name{label="v",...}``, labels in any order)."""
    wanted = _series(series)
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line and not line.startswith("#") and _series(line.rsplit(" ", 1)[0]) == wanted]
    assert len(values) == 1, (series, text)
    return values[0]
