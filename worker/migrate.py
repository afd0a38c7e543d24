"""Applies ``sql/migrations`` in order, then re-applies ``sql/functions``.

Each migration runs in its own transaction and is recorded with its checksum; an applied file that
changed stops everything (migrations are immutable once shipped). A session advisory lock makes
concurrent release processes wait for each other instead of racing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from worker.errors import ShopsyncError
from worker.paths import SQL_DIR

__all__ = ["MigrationError", "MigrationStatus", "checksum", "migrate", "migration_files", "status"]

_LOCK_KEY = 0x5_0505_1ABC  # any constant; identifies "shopsync migrate" among advisory locks

_BOOTSTRAP = """
set local client_min_messages = warning;
create schema if not exists shopsync_private;
create table if not exists shopsync_private.schema_migrations (
  name text primary key,
  checksum text not null,
  applied_at timestamptz not null default now()
);
"""


# The synced-resource catalog must match the tables after every migration (once the check exists: the
# first migrations of a fresh database run before the functions phase has created it).
_CHECK_CATALOG = """
do $$
begin
  if to_regprocedure('shopsync_private.check_catalog()') is not null then
    perform shopsync_private.check_catalog();
  end if;
end
$$;
"""


class MigrationError(ShopsyncError):
    pass


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[str]
    pending: list[str]
    changed: list[str]

    @property
    def current(self) -> bool:
        return not self.pending and not self.changed


def migration_files(kind: str = "migrations", sql_dir: Path = SQL_DIR) -> list[Path]:
    """The .sql files of ``sql/<kind>`` in the order they are applied."""
    return sorted((sql_dir / kind).glob("*.sql"))


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _applied(conn: psycopg.Connection) -> dict[str, str]:
    exists = conn.execute("select to_regclass('shopsync_private.schema_migrations')").fetchone()
    if not exists or exists[0] is None:
        return {}
    return dict(conn.execute("select name, checksum from shopsync_private.schema_migrations").fetchall())


def status(dsn: str, sql_dir: Path = SQL_DIR) -> MigrationStatus:
    with psycopg.connect(dsn, autocommit=True) as conn:
        applied = _applied(conn)
    files = migration_files("migrations", sql_dir)
    return MigrationStatus(
        applied=[f.name for f in files if f.name in applied],
        pending=[f.name for f in files if f.name not in applied],
        changed=[f.name for f in files if f.name in applied and applied[f.name] != checksum(f)],
    )


def migrate(dsn: str, sql_dir: Path = SQL_DIR, log: Callable[[str], None] = print) -> list[str]:
    """Bring the database up to date. Returns the names of the migrations applied now."""
    done: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: log(f"   notice: {d.message_primary}"))
        conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            with conn.transaction():
                conn.execute(_BOOTSTRAP)
            applied = _applied(conn)
            files = migration_files("migrations", sql_dir)
            changed = [f.name for f in files if f.name in applied and applied[f.name] != checksum(f)]
            if changed:
                raise MigrationError(
                    "applied migrations were edited since they ran: " + ", ".join(changed)
                    + " — add a new migration instead of changing a shipped one")
            pending = [f for f in files if f.name not in applied]
            for i, path in enumerate(pending, 1):
                log(f"-> [{i}/{len(pending)}] migration {path.name}")
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute(_CHECK_CATALOG)   # a wrong catalog entry rolls its migration back
                    conn.execute("insert into shopsync_private.schema_migrations (name, checksum) values (%s, %s)",
                                 (path.name, checksum(path)))
                done.append(path.name)
            functions = migration_files("functions", sql_dir)
            log(f"-> applying {len(functions)} function files")
            with conn.transaction():
                for path in functions:
                    conn.execute(path.read_text())
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return done
