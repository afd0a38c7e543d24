"""`shopsync supabase-migrations`: shopsync's schema as Supabase CLI migration files.

The files are applied the way the CLI applies them (tests/supabase_cli.py: its statement splitting, one
transaction per file) to a fresh database, and the result is compared with what `shopsync migrate` builds:
`pg_dump --schema-only` of every schema shopsync touches, and every row of its tables. Also: a second run
writes nothing; after an upgrade only the new migrations and a new functions file are written and they
upgrade a database built from the old files; `shopsync migrate` afterwards has nothing to do.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from tests.supabase_cli import apply_migration_files, history
from worker.cli import main
from worker.dev.localpg import LocalPostgres
from worker.migrate import MigrationError, checksum, migrate, migration_files, status
from worker.paths import SQL_DIR
from worker.supabase_migrations import functions_digest, write_supabase_migrations

FIXTURE_SQL = Path(__file__).resolve().parent / "fixtures" / "release_0_1_0" / "sql"
SCHEMAS = ("auth", "shopsync", "shopsync_private")
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
NAME = re.compile(r"^(\d{14})_shopsync_(.+)\.sql$")


def _quiet(_msg: str) -> None:
    return None


@contextmanager
def fresh_database(local_pg: LocalPostgres) -> Iterator[str]:
    name = f"sbmig_{uuid.uuid4().hex[:10]}"
    local_pg.create_database(name)
    try:
        yield local_pg.dsn(name)
    finally:
        with psycopg.connect(local_pg.dsn("postgres"), autocommit=True) as c:
            c.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def schema_dump(local_pg: LocalPostgres, dsn: str) -> str:
    """pg_dump --schema-only of shopsync's schemas, without the lines that differ between two dumps."""
    argv = [str(local_pg.bindir / "pg_dump"), "--schema-only", "--no-owner", *(f"--schema={s}" for s in SCHEMAS), dsn]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    volatile = ("-- Dumped from", "-- Dumped by", "\\restrict", "\\unrestrict")
    return "\n".join(line for line in out.splitlines() if not line.startswith(volatile))


def rows(dsn: str) -> dict[str, list[str]]:
    """Every row of every table in shopsync's schemas, but for the columns that default to the time of insert."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as c:
        tables = c.execute("select n.nspname as s, c.relname as t, array(select a.attname::text from pg_attribute a "
                           "  join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum "
                           "  where a.attrelid = c.oid and pg_get_expr(d.adbin, d.adrelid) = 'now()') as now_columns "
                           "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                           "where n.nspname = any(%s) and c.relkind in ('r', 'p')", (list(SCHEMAS),)).fetchall()
        found = {}
        for t in tables:
            query = sql.SQL("select to_jsonb(x) - %s::text[] as r from {}.{} x").format(
                sql.Identifier(t["s"]), sql.Identifier(t["t"]))
            found[f"{t['s']}.{t['t']}"] = sorted(json.dumps(r["r"], sort_keys=True) for r in c.execute(query, (t["now_columns"],)))
    return found


def assert_same_schema(local_pg: LocalPostgres, built: str, migrated: str) -> None:
    assert schema_dump(local_pg, built) == schema_dump(local_pg, migrated)
    assert rows(built) == rows(migrated)


def shopsync_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if NAME.match(p.name))


def test_files_applied_like_the_cli_build_what_migrate_builds(local_pg: LocalPostgres, tmp_path: Path) -> None:
    target = tmp_path / "supabase" / "migrations"
    target.mkdir(parents=True)
    (target / "20200101000000_app.sql").write_text("create table public.app_notes (id int primary key, body text);\n")

    written = write_supabase_migrations(target, now=NOW)

    migrations = migration_files()
    assert [w.migration for w in written] == [m.name for m in migrations] + [None]
    names = [w.path.name for w in written]
    assert names == sorted(names) and names == shopsync_files(target)
    versions = [NAME.match(n)[1] for n in names]   # type: ignore[index]
    assert len(set(versions)) == len(versions) and versions[0] == "20300102030405"   # UTC now, one second apart
    assert names[:-1] == [f"{v}_shopsync_{m.stem}.sql" for v, m in zip(versions, migrations, strict=False)]
    assert names[-1] == f"{versions[-1]}_shopsync_functions_{functions_digest()}.sql"
    for w, m in zip(written, migrations, strict=False):
        assert w.path.read_text().startswith(f"-- shopsync migration {m.name} sha256:{checksum(m)}\n")

    with fresh_database(local_pg) as built, fresh_database(local_pg) as migrated:
        apply_migration_files(built, sorted(target.iterdir()))
        assert [h["version"] for h in history(built)] == ["20200101000000", *versions]
        migrate(migrated, log=_quiet)
        assert_same_schema(local_pg, built, migrated)

        # the same bookkeeping as `shopsync migrate`: /readyz sees it current, migrate has nothing to do
        with psycopg.connect(built) as c:
            recorded = dict(c.execute("select name, checksum from shopsync_private.schema_migrations").fetchall())
        assert recorded == {m.name: checksum(m) for m in migrations}
        assert status(built).current
        assert migrate(built, log=_quiet) == []
        assert migrate(migrated, log=_quiet) == []   # functions re-applied on both (it reorders grants' ACLs)
        assert_same_schema(local_pg, built, migrated)


def test_a_second_run_writes_nothing_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "migrations"
    assert main(["supabase-migrations", str(target)]) == 0
    first = capsys.readouterr().out
    files = shopsync_files(target)
    assert len(files) == len(migration_files()) + 1
    assert all(f"wrote {target / f}" in first for f in files) and "supabase db push" in first
    before = {f: (target / f).read_text() for f in files}

    assert main(["supabase-migrations", str(target)]) == 0
    assert "nothing to write" in capsys.readouterr().out
    assert write_supabase_migrations(target) == []
    assert {f: (target / f).read_text() for f in shopsync_files(target)} == before


def test_default_directory_is_supabase_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["supabase-migrations"]) == 0
    assert len(shopsync_files(tmp_path / "supabase" / "migrations")) == len(migration_files()) + 1
    assert "wrote supabase/migrations/" in capsys.readouterr().out


def test_upgrade_writes_only_the_new_migrations_and_functions(local_pg: LocalPostgres, tmp_path: Path) -> None:
    target = tmp_path / "migrations"
    old = write_supabase_migrations(target, sql_dir=FIXTURE_SQL, now=NOW)
    old_names = {m.name for m in migration_files("migrations", FIXTURE_SQL)}
    assert [w.migration for w in old] == sorted(old_names) + [None]

    with fresh_database(local_pg) as built, fresh_database(local_pg) as migrated:
        apply_migration_files(built, [w.path for w in old])
        migrate(migrated, sql_dir=FIXTURE_SQL, log=_quiet)
        assert_same_schema(local_pg, built, migrated)

        # the next release, a minute later by the clock, though the versions already written run later still
        new = write_supabase_migrations(target, now=NOW.replace(minute=5))
        assert [w.migration for w in new] == [m.name for m in migration_files() if m.name not in old_names] + [None]
        assert new[-1].path.name.endswith(f"_shopsync_functions_{functions_digest()}.sql")
        assert min(w.path.name for w in new) > max(w.path.name for w in old)

        apply_migration_files(built, [w.path for w in new])
        assert migrate(migrated, log=_quiet)   # the same upgrade through `shopsync migrate`
        assert_same_schema(local_pg, built, migrated)
        assert migrate(built, log=_quiet) == []
        assert status(built).current
    assert write_supabase_migrations(target) == []


def test_changed_functions_alone_write_a_new_functions_file(tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    target = tmp_path / "migrations"
    first = write_supabase_migrations(target, sql_dir=sql_dir, now=NOW)

    extra = sql_dir / "functions" / "97_extra.sql"
    extra.write_text("create or replace function shopsync.extra() returns int language sql set search_path = '' "
                     "as $$ select 1 $$;\n")
    second = write_supabase_migrations(target, sql_dir=sql_dir, now=NOW)
    assert [w.migration for w in second] == [None]
    assert second[0].path.name > first[-1].path.name
    assert second[0].path.name.endswith(f"_shopsync_functions_{functions_digest(sql_dir)}.sql")
    assert "-- sql/functions/97_extra.sql\n" in second[0].path.read_text()
    assert write_supabase_migrations(target, sql_dir=sql_dir) == []

    # back to the first functions: they are not the last written any more, so they are written again
    extra.unlink()
    third = write_supabase_migrations(target, sql_dir=sql_dir, now=NOW)
    assert [w.migration for w in third] == [None] and third[0].path.read_text() == first[-1].path.read_text()


def test_an_edited_shipped_migration_is_refused(tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    target = tmp_path / "migrations"
    write_supabase_migrations(target, sql_dir=sql_dir, now=NOW)
    shipped = sql_dir / "migrations" / "0003_jobs_and_activity.sql"
    shipped.write_text(shipped.read_text() + "\n-- edited\n")
    before = sorted(target.iterdir())
    with pytest.raises(MigrationError, match="0003_jobs_and_activity.sql"):
        write_supabase_migrations(target, sql_dir=sql_dir)
    assert sorted(target.iterdir()) == before


def test_versions_follow_a_later_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "migrations"
    target.mkdir()
    (target / "20301231235959_later.sql").write_text("select 1;\n")
    written = write_supabase_migrations(target, now=NOW)
    assert written[0].path.name.startswith("20310101000000_shopsync_")
    (odd := tmp_path / "odd").mkdir()
    (odd / "99999999999999999_not_a_time.sql").write_text("select 1;\n")
    with pytest.raises(MigrationError, match="99999999999999999_not_a_time.sql"):
        write_supabase_migrations(odd, now=NOW)
    assert sorted(p.name for p in odd.iterdir()) == ["99999999999999999_not_a_time.sql"]


def test_a_database_migrated_by_shopsync_migrate_is_told_how_to_switch(local_pg: LocalPostgres,
                                                                       tmp_path: Path) -> None:
    written = write_supabase_migrations(tmp_path / "migrations", now=NOW)
    with fresh_database(local_pg) as dsn:
        migrate(dsn, log=_quiet)
        with pytest.raises(psycopg.DatabaseError) as err:
            apply_migration_files(dsn, [written[0].path])
        message = str(err.value)
        version = written[0].path.name.split("_", 1)[0]
        assert "0001_supabase_compat.sql is already applied" in message
        assert f"supabase migration repair --status applied {version}" in message   # the hint
        with psycopg.connect(dsn) as c:   # nothing of the file stayed
            assert c.execute("select count(*) from supabase_migrations.schema_migrations").fetchone() == (0,)
