"""The typed façade over the SQL functions (``worker/rpc``): every declaration matches the migrated
database, nothing else in the product names a SQL function, and every public SQL function is either in
the façade or documented for the frontend or for SQL admins (docs/database.md)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import psycopg

import worker.rpc
from worker.paths import SQL_DIR
from worker.rpc import SQL_FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "database.md"


def facade_modules() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(worker.rpc.__path__) if not m.name.startswith("_")]
    for name in names:
        importlib.import_module(f"worker.rpc.{name}")
    return names


def signatures(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(
            "select p.proname as name, p.proretset as returns_set, format_type(p.prorettype, null) as returns,"
            " coalesce(array_agg(a.name order by a.ord) filter (where a.mode in ('i', 'b', 'v')), '{}') as names,"
            " coalesce(array_agg(format_type(a.type, null) order by a.ord)"
            "          filter (where a.mode in ('i', 'b', 'v')), '{}') as types"
            " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " left join lateral unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]), p.proargnames,"
            "   coalesce(p.proargmodes, array_fill('i'::\"char\", array[p.pronargs]))) with ordinality"
            "   as a(type, name, mode, ord) on true"
            " where n.nspname = 'shopsync' and p.prokind = 'f' group by p.oid, p.proname, p.proretset, p.prorettype"):
        found.setdefault(row["name"], []).append(row)
    return found


def test_every_declared_function_exists_with_that_signature(conn: psycopg.Connection[dict[str, Any]]) -> None:
    facade_modules()
    in_db = signatures(conn)
    problems = []
    for name, fn in sorted(SQL_FUNCTIONS.items()):
        rows = in_db.get(name, [])
        if len(rows) != 1:
            problems.append(f"{name}: {len(rows)} functions of that name in schema shopsync (expected 1)")
            continue
        row = rows[0]
        declared = list(fn.args)
        actual = list(zip(row["names"], row["types"], strict=True))
        if declared != actual:
            problems.append(f"{name}: declared {declared}, the database has {actual}")
        if fn.returns_set != row["returns_set"] or (not fn.returns_set and fn.returns != row["returns"]):
            problems.append(f"{name}: declared to return {fn.returns}, the database returns "
                            f"{'setof ' if row['returns_set'] else ''}{row['returns']}")
    assert not problems, "\n".join(problems)
    assert len(SQL_FUNCTIONS) > 50     # the façade is complete enough to be worth checking


def documented_functions() -> set[str]:
    """Functions docs/database.md lists in its frontend and admin API tables (between the markers)."""
    text = DOCS.read_text()
    names: set[str] = set()
    for section in ("frontend-api", "admin-api"):
        match = re.search(rf"<!-- {section} -->(.*?)<!-- /{section} -->", text, re.S)
        assert match, f"docs/database.md lacks the {section} markers"
        names |= set(re.findall(r"^\| `([a-z_]+)\(", match.group(1), re.M))
    return names


def test_every_public_sql_function_is_in_the_facade_or_documented(conn: psycopg.Connection[dict[str, Any]]) -> None:
    facade_modules()
    public = set(signatures(conn))
    documented = documented_functions()
    unaccounted = public - set(SQL_FUNCTIONS) - documented
    assert not unaccounted, f"public SQL functions neither in worker/rpc nor in docs/database.md: {sorted(unaccounted)}"
    stale = documented - public
    assert not stale, f"docs/database.md documents functions that do not exist: {sorted(stale)}"


def test_only_the_facade_names_sql_functions() -> None:
    offenders = []
    for path in sorted((ROOT / "worker").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("worker/rpc/", "worker/db/")):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.rpc\(", line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "SQL functions called outside worker/rpc:\n" + "\n".join(offenders)


def test_facade_modules_follow_the_sql_domains() -> None:
    """worker/rpc/<domain>.py wraps functions of sql/functions/NN_<domain>*.sql, and only of that file."""
    facade_modules()
    defined: dict[str, str] = {}
    for path in sorted((SQL_DIR / "functions").glob("*.sql")):
        for name in re.findall(r"create or replace function shopsync\.([a-z_]+)\(", path.read_text()):
            defined[name] = path.stem.split("_", 1)[1]
    misplaced = []
    for name, fn in SQL_FUNCTIONS.items():
        owner = fn.module.rsplit(".", 1)[-1]
        domain = defined.get(name)
        if domain is None or not domain.startswith(owner):
            misplaced.append(f"{name}: declared in worker/rpc/{owner}.py, defined in {domain or 'no'} .sql file")
    assert not misplaced, "\n".join(misplaced)


def test_the_documented_frontend_api_is_exactly_what_clients_may_call(
        conn: psycopg.Connection[dict[str, Any]]) -> None:
    text = DOCS.read_text()
    match = re.search(r"<!-- frontend-api -->(.*?)<!-- /frontend-api -->", text, re.S)
    assert match
    documented = set(re.findall(r"^\| `([a-z_]+)\(", match.group(1), re.M))
    granted = {r["proname"] for r in conn.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
        "where n.nspname = 'shopsync' and has_function_privilege('authenticated', p.oid, 'execute')")}
    assert documented == granted
