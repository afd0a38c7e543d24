"""Writes shopsync's schema as Supabase CLI migration files, the other way to deploy it than `shopsync migrate`.

Each shopsync migration not yet in the directory becomes ``<version>_shopsync_<name>.sql``; a file that
re-applies every ``sql/functions`` file follows as ``<version>_shopsync_functions_<hash>.sql`` whenever
the functions changed or a migration was written (``shopsync migrate`` re-applies them after its
migrations too). Versions are UTC timestamps after every file already there, so ``supabase db push``
applies the new files after the project's own. Each migration file records itself in
``shopsync_private.schema_migrations`` with the checksum ``shopsync migrate`` records, so ``/readyz``,
``shopsync migrate`` and these files agree on what is applied. Files already written are recognised by
name: running again with nothing new writes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from worker.migrate import _BOOTSTRAP, _CHECK_CATALOG, _LOCK_KEY, MigrationError, checksum, migration_files
from worker.paths import SQL_DIR

__all__ = ["Written", "functions_digest", "summary", "write_supabase_migrations"]

_VERSION_FORMAT = "%Y%m%d%H%M%S"     # what `supabase migration new` names files with
_FILE = re.compile(r"^(?P<version>[0-9]+)_(?P<name>.*)\.sql$")          # the Supabase CLI's file pattern
_OURS = re.compile(r"^shopsync_(?P<migration>[0-9]+_.*)$")
_FUNCTIONS = re.compile(r"^shopsync_functions_(?P<digest>[0-9a-f]+)$")
_HEADER = re.compile(r"^-- shopsync migration (?P<name>\S+) sha256:(?P<checksum>[0-9a-f]{64})$", re.MULTILINE)
_DIGEST_LENGTH = 12


@dataclass(frozen=True)
class Written:
    """One file written now: ``migration`` is the shopsync migration's file name, or None for functions."""

    path: Path
    migration: str | None


def _functions_text(sql_dir: Path) -> str:
    return "".join(f"-- sql/functions/{path.name}\n{path.read_text(encoding='utf-8')}\n;\n"
                   for path in migration_files("functions", sql_dir))


def functions_digest(sql_dir: Path = SQL_DIR) -> str:
    """Short hash of the sql/functions files' names and contents (names the functions file)."""
    return hashlib.sha256(_functions_text(sql_dir).encode()).hexdigest()[:_DIGEST_LENGTH]


def _migration_file(path: Path, version: str) -> str:
    name, digest = path.name, checksum(path)
    quoted = name.replace("'", "''")
    # separated by a lone ';' so a source ending in a comment or without a final ';' cannot run into ours
    return f"""-- shopsync migration {name} sha256:{digest}
-- Written by `shopsync supabase-migrations` from shopsync's sql/migrations/{name}; do not edit: shopsync
-- compares the checksum it records with its own copy of the migration.
select pg_advisory_xact_lock({_LOCK_KEY});   -- waits for a `shopsync migrate` running at the same time
{_BOOTSTRAP.replace("set local client_min_messages = warning;", "").strip()}
do $shopsync$
begin
  if exists (select 1 from shopsync_private.schema_migrations where name = '{quoted}') then
    raise exception 'shopsync migration {quoted} is already applied in this database (by shopsync migrate)'
      using hint = 'mark this file as applied: supabase migration repair --status applied {version}';
  end if;
end
$shopsync$;

{path.read_text(encoding="utf-8")}
;
{_CHECK_CATALOG.strip()}
insert into shopsync_private.schema_migrations (name, checksum) values ('{quoted}', '{digest}');
"""


def _functions_file(sql_dir: Path) -> str:
    text = _functions_text(sql_dir)
    return f"""-- shopsync functions sha256:{hashlib.sha256(text.encode()).hexdigest()}
-- Written by `shopsync supabase-migrations`: every sql/functions file of shopsync, in order, re-applied after
-- the migrations as `shopsync migrate` does (create or replace; idempotent).
select pg_advisory_xact_lock({_LOCK_KEY});   -- waits for a `shopsync migrate` running at the same time

{text}"""


def _next_version(existing: list[str], now: datetime) -> datetime:
    """The first version to write: now, or one second after the latest timestamp already there."""
    start = now.astimezone(UTC).replace(microsecond=0, tzinfo=None)
    for version in existing:
        try:
            latest = datetime.strptime(version, _VERSION_FORMAT)
        except ValueError:
            continue   # not a timestamp: only checked against the names written below
        start = max(start, latest + timedelta(seconds=1))
    return start


def write_supabase_migrations(target: Path, sql_dir: Path = SQL_DIR, now: datetime | None = None) -> list[Written]:
    """Write into ``target`` the shopsync migrations it lacks and, when needed, a functions file."""
    target.mkdir(parents=True, exist_ok=True)
    present = sorted((m for p in target.iterdir() if p.is_file() and (m := _FILE.match(p.name))),
                     key=lambda m: m.string)
    written_migrations: dict[str, Path] = {}
    last_digest: str | None = None
    for found in present:
        if (functions := _FUNCTIONS.match(found["name"])) is not None:
            last_digest = functions["digest"]
        elif (ours := _OURS.match(found["name"])) is not None:
            written_migrations[ours["migration"] + ".sql"] = target / found.string

    sources = migration_files("migrations", sql_dir)
    for source in sources:
        path = written_migrations.get(source.name)
        if path is None:
            continue
        header = _HEADER.search(path.read_text(encoding="utf-8"))
        if header is None or header["checksum"] != checksum(source):
            raise MigrationError(f"{path} does not hold shopsync's {source.name} as shipped (edited, or written from "
                                 "a different copy): migrations are immutable once written; restore the file")
    pending = [s for s in sources if s.name not in written_migrations]
    digest = functions_digest(sql_dir)
    contents: list[tuple[str, str, str | None]] = []   # (file name part, text, migration)
    version = _next_version([m["version"] for m in present], now or datetime.now(UTC))
    for i, source in enumerate(pending):
        stamp = (version + timedelta(seconds=i)).strftime(_VERSION_FORMAT)
        contents.append((f"{stamp}_shopsync_{source.stem}.sql", _migration_file(source, stamp), source.name))
    if pending or digest != last_digest:
        stamp = (version + timedelta(seconds=len(pending))).strftime(_VERSION_FORMAT)
        contents.append((f"{stamp}_shopsync_functions_{digest}.sql", _functions_file(sql_dir), None))

    if contents and present and contents[0][0] <= present[-1].string:
        raise MigrationError(f"cannot name new files to sort after {present[-1].string}: its version is not a "
                             f"{_VERSION_FORMAT} timestamp the Supabase CLI would order them by")
    written: list[Written] = []
    for file_name, text, migration in contents:
        path = target / file_name
        path.write_text(text, encoding="utf-8")
        written.append(Written(path, migration))
    return written


def summary(target: Path, written: list[Written]) -> str:
    """What a run did, for people: the files written and what to run next, or that there was nothing to do."""
    if not written:
        return (f"{target}: nothing to write (every shopsync migration and the current functions are already "
                "there)")
    lines = [f"wrote {w.path}" + (f"  ({w.migration})" if w.migration else "  (sql/functions)") for w in written]
    lines.append("apply them with `supabase db push` (or `supabase migration up` on the local stack)")
    return "\n".join(lines)
