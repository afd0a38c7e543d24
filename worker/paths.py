"""Where shopsync's SQL lives: the repository's ``sql/`` in a checkout, ``worker/_sql`` in a wheel."""

from __future__ import annotations

from pathlib import Path

__all__ = ["SQL_DIR", "QUERIES_DIR", "query"]

_PKG = Path(__file__).resolve().parent
SQL_DIR = _PKG / "_sql" if (_PKG / "_sql").is_dir() else _PKG.parent / "sql"
QUERIES_DIR = _PKG / "queries"

_cache: dict[str, str] = {}


def query(name: str) -> str:
    """The text of ``worker/queries/<name>.sql`` (SQL stays in .sql files, not Python strings)."""
    if name not in _cache:
        _cache[name] = (QUERIES_DIR / f"{name}.sql").read_text()
    return _cache[name]
