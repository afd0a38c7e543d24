"""Applies migration files the way the Supabase CLI's `db push` / `migration up` does, for tests.

The CLI splits a file into statements with a small lexer (not PostgreSQL's), sends each statement through
the extended query protocol (one command per message: a statement it failed to split is an error) in one
implicit transaction per file, and records the file in ``supabase_migrations.schema_migrations``. This
module follows the same splitting rules, including their quirks: a ``;`` ends a statement unless it is
inside quotes, a dollar-quoted body, a comment, parentheses or a ``BEGIN ATOMIC`` body; a backslash outside
quotes escapes the next character; the first ``)`` closes all open parentheses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

__all__ = ["apply_migration_files", "history", "split_statements"]

_FILE = re.compile(r"^([0-9]+)_(.*)\.sql$")
_TAG_CHAR = re.compile(r"\w")
_HISTORY = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (version text primary key, statements text[], name text);
"""


def _skip_quoted(text: str, i: int) -> int:
    """Index just past the quoted string or comment starting at ``i``, or ``i`` when none starts there."""
    ch, nxt = text[i], text[i + 1:i + 2]
    if ch in "'\"":
        j = i + 1
        while True:
            j = text.find(ch, j)
            if j < 0:
                return len(text)
            if text[j + 1:j + 2] != ch:   # a doubled delimiter stays inside
                return j + 1
            j += 2
    if ch == "-" and nxt == "-":
        j = text.find("\n", i + 2)
        return len(text) if j < 0 else j + 1
    if ch == "/" and nxt == "*":
        depth, j = 1, i + 2
        while depth and j < len(text):
            if text.startswith("/*", j):
                depth, j = depth + 1, j + 2
            elif text.startswith("*/", j):
                depth, j = depth - 1, j + 2
            else:
                j += 1
        return j
    if ch == "$":
        j = i + 1
        while j < len(text) and _TAG_CHAR.match(text[j]):
            j += 1
        if j < len(text) and text[j] == "$":
            tag = text[i:j + 1]
            end = text.find(tag, j + 1)
            return len(text) if end < 0 else end + len(tag)
        return j   # `$1` and the like: not a quote
    if ch == "\\":
        return i + 2
    return i


def split_statements(text: str) -> list[str]:
    """The statements the Supabase CLI would send for ``text``, trimmed, empty ones dropped."""
    statements: list[str] = []
    start = i = 0
    closer: str | None = None   # ")" inside parentheses, "end" inside BEGIN ATOMIC
    while i < len(text):
        skipped = _skip_quoted(text, i)
        if skipped != i:
            i = skipped
            continue
        ch = text[i]
        if closer is not None:
            if text[i:i + len(closer)].lower() == closer:
                closer = None
        elif ch == "(":
            closer = ")"
        elif ch in "cC" and text[max(0, i - 5):i + 1].lower() == "atomic" and i >= 6 and text[i - 6].isspace():
            closer = "end"
        elif ch == ";":
            statements.append(text[start:i + 1])
            start = i + 1
        i += 1
    statements.append(text[start:])
    return [s for s in (s.rstrip(";").strip() for s in statements) if s]


def apply_migration_files(dsn: str, files: list[Path]) -> None:
    """Apply ``files`` in name order, each in its own transaction, statement by statement, as the CLI does."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_HISTORY)
        for path in sorted(files, key=lambda p: p.name):
            match = _FILE.match(path.name)
            assert match is not None, f"the Supabase CLI ignores {path.name}"
            statements = split_statements(path.read_text(encoding="utf-8"))
            conn.execute("begin")
            try:
                for n, statement in enumerate(statements):
                    result = conn.pgconn.exec_params(statement.encode(), [])
                    if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK,
                                             pq.ExecStatus.EMPTY_QUERY):
                        message = (result.error_message or b"").decode(errors="replace")
                        raise psycopg.DatabaseError(f"{path.name}, statement {n}: {message}\n{statement[:500]}")
                conn.execute("insert into supabase_migrations.schema_migrations (version, name, statements) "
                             "values (%s, %s, %s)", (match[1], match[2], statements))
            except BaseException:
                conn.execute("rollback")
                raise
            conn.execute("commit")


def history(dsn: str) -> list[dict[str, Any]]:
    """The CLI's record of applied files (what `supabase migration list` shows as remote)."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute("select version, name from supabase_migrations.schema_migrations order by version").fetchall()
