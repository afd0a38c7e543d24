"""``SqlFunction``: one SQL function of schema ``shopsync``, declared with its signature and called
through the ``Database`` port."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.db.port import Database

__all__ = ["SQL_FUNCTIONS", "SqlFunction"]

# every declaration, for the test that checks them against the database
SQL_FUNCTIONS: dict[str, SqlFunction] = {}


@dataclass(frozen=True)
class SqlFunction:
    """``shopsync.<name>(<args>) returns <returns>``: argument names and types as PostgreSQL's
    ``format_type`` spells them, and the result (``setof`` for functions returning rows)."""

    name: str
    args: tuple[tuple[str, str], ...]
    returns: str
    module: str = ""      # the façade module that declares it (worker.rpc.<domain>)

    def __post_init__(self) -> None:
        if self.name in SQL_FUNCTIONS:
            raise ValueError(f"shopsync.{self.name} is declared twice")
        SQL_FUNCTIONS[self.name] = self

    @property
    def returns_set(self) -> bool:
        return self.returns == "setof"

    async def __call__(self, db: Database, **args: Any) -> Any:
        names = {name for name, _ in self.args}
        unknown = set(args) - names
        if unknown:     # a programming error: caught by mypy-typed wrappers and the tests
            raise TypeError(f"shopsync.{self.name} has no argument(s) {', '.join(sorted(unknown))}")
        return await db.rpc(self.name, args)

    async def rows(self, db: Database, **args: Any) -> list[dict[str, Any]]:
        """Call a set-returning function: its rows as dicts."""
        assert self.returns_set, self.name
        return [dict(r) for r in await self(db, **args) or []]


def sql(name: str, returns: str, **args: str) -> SqlFunction:
    """Declare ``shopsync.<name>``: ``args`` in declaration order, named as in SQL (``p_…``)."""
    return SqlFunction(name, tuple(args.items()), returns, module=sys._getframe(1).f_globals["__name__"])


def first(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return rows[0] if rows else None


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
