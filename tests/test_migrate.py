"""The migrator against real databases: ordering, checksums, rollback, locking, status, Supabase
compatibility and pg_cron schedules."""

from __future__ import annotations

import hashlib
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

import worker.paths
from tests.conftest import CRON_DB, new_user, personal_org
from worker.dev.localpg import LocalPostgres, pg_cron_available
from worker.migrate import MigrationError, migrate, status

SQL_DIR = worker.paths.SQL_DIR
MIGRATIONS = sorted(p.name for p in (SQL_DIR / "migrations").glob("*.sql"))

EXPECTED_SCHEDULES = {
    "shopsync-enqueue-due-syncs": ("* * * * *", "select shopsync.run_maintenance('enqueue_due_syncs', 30)"),
    "shopsync-reap-expired-leases": ("* * * * *", "select shopsync.run_maintenance('reap_expired_leases', 30)"),
    "shopsync-prune-history": ("17 3 * * *", "select shopsync.run_maintenance('prune_history', 3600)"),
    "shopsync-notify": ("* * * * *", "select shopsync.run_maintenance('notify', 30)"),
}


def _quiet(_msg: str) -> None:
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextmanager
def fresh_database(local_pg: LocalPostgres) -> Iterator[str]:
    """An empty database (nothing migrated), dropped afterwards."""
    name = f"shopsync_mig_{uuid.uuid4().hex[:10]}"
    local_pg.create_database(name)
    try:
        yield local_pg.dsn(name)
    finally:
        with psycopg.connect(local_pg.dsn("postgres"), autocommit=True) as c:
            c.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture
def empty_dsn(local_pg: LocalPostgres) -> Iterator[str]:
    with fresh_database(local_pg) as dsn:
        yield dsn


@pytest.fixture
def sql_copy(tmp_path: Path) -> Path:
    """A private copy of sql/ that a test may edit."""
    target = tmp_path / "sql"
    shutil.copytree(SQL_DIR, target)
    return target


def recorded(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn, autocommit=True) as c:
        return dict(c.execute("select name, checksum from shopsync_private.schema_migrations").fetchall())


def regclass(dsn: str, name: str) -> str | None:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute("select to_regclass(%s)::text", (name,)).fetchone()
        return row[0] if row else None


# --- applying ---------------------------------------------------------------------------------------

def test_fresh_database_applies_everything_in_order_then_nothing(empty_dsn: str) -> None:
    assert MIGRATIONS, "no migration files found"
    log: list[str] = []
    applied = migrate(empty_dsn, log=log.append)
    assert applied == MIGRATIONS
    # the progress lines come in file order
    progress = [line for line in log if "] migration " in line]
    assert [line.rsplit(" ", 1)[1] for line in progress] == MIGRATIONS
    assert any("applying" in line and "function files" in line for line in log)

    rows = recorded(empty_dsn)
    assert rows == {name: _sha256(SQL_DIR / "migrations" / name) for name in MIGRATIONS}
    with psycopg.connect(empty_dsn, autocommit=True) as c:
        via_api = c.execute("select name, checksum from shopsync.applied_migrations()").fetchall()
        times = c.execute("select applied_at from shopsync_private.schema_migrations").fetchall()
    assert [r[0] for r in via_api] == MIGRATIONS
    assert all(t[0] is not None for t in times)

    # second run: nothing new, functions are re-applied without error
    log2: list[str] = []
    assert migrate(empty_dsn, log=log2.append) == []
    assert not any("] migration " in line for line in log2)
    assert any("function files" in line for line in log2)
    assert recorded(empty_dsn) == rows
    # and the functions still work after being re-created
    with psycopg.connect(empty_dsn, autocommit=True) as c:
        features = c.execute("select shopsync.runtime_features()").fetchone()
    assert features is not None and isinstance(features[0], dict)


def test_edited_migration_stops_everything(dsn: str, sql_copy: Path) -> None:
    before = recorded(dsn)
    edited = sql_copy / "migrations" / MIGRATIONS[2]
    edited.write_text(edited.read_text() + "\n-- edited after shipping\n")
    new = sql_copy / "migrations" / "9000_probe.sql"
    new.write_text("create table shopsync.migrate_probe (id int);\n")
    # a function file with a visible effect: the migrator must stop before functions too
    probe_fn = sql_copy / "functions" / "99_zz_probe.sql"
    probe_fn.write_text("create table if not exists shopsync.function_probe (id int);\n")

    with pytest.raises(MigrationError) as info:
        migrate(dsn, sql_dir=sql_copy, log=_quiet)
    assert MIGRATIONS[2] in str(info.value)
    assert "9000_probe.sql" not in str(info.value)
    assert recorded(dsn) == before
    assert regclass(dsn, "shopsync.migrate_probe") is None
    assert regclass(dsn, "shopsync.function_probe") is None

    st = status(dsn, sql_dir=sql_copy)
    assert st.changed == [MIGRATIONS[2]]
    assert st.pending == ["9000_probe.sql"]
    assert not st.current

    # restore the shipped file: the new migration goes in on the next run
    shutil.copy2(SQL_DIR / "migrations" / MIGRATIONS[2], edited)
    assert migrate(dsn, sql_dir=sql_copy, log=_quiet) == ["9000_probe.sql"]
    assert recorded(dsn) == {**before, "9000_probe.sql": _sha256(new)}
    assert regclass(dsn, "shopsync.migrate_probe") == "shopsync.migrate_probe"
    assert regclass(dsn, "shopsync.function_probe") == "shopsync.function_probe"
    assert status(dsn, sql_dir=sql_copy).current
    assert migrate(dsn, sql_dir=sql_copy, log=_quiet) == []


def test_failing_migration_rolls_back_entirely(dsn: str, sql_copy: Path) -> None:
    before = recorded(dsn)
    good = sql_copy / "migrations" / "9000_good.sql"
    good.write_text("create table shopsync.good_probe (id int);\n")
    # objects created before the error must vanish with it
    broken = sql_copy / "migrations" / "9001_broken.sql"
    broken.write_text("create table shopsync.broken_probe (id int);\n"
                      "insert into shopsync.broken_probe values (1);\n"
                      "select 1 / 0;\n")
    later = sql_copy / "migrations" / "9002_later.sql"
    later.write_text("create table shopsync.later_probe (id int);\n")

    with pytest.raises(psycopg.Error) as info:
        migrate(dsn, sql_dir=sql_copy, log=_quiet)
    assert isinstance(info.value, psycopg.errors.DivisionByZero)
    # each migration is its own transaction: the one before the failure stays applied
    assert recorded(dsn) == {**before, "9000_good.sql": _sha256(good)}
    assert regclass(dsn, "shopsync.good_probe") == "shopsync.good_probe"
    assert regclass(dsn, "shopsync.broken_probe") is None
    assert regclass(dsn, "shopsync.later_probe") is None
    assert status(dsn, sql_dir=sql_copy).pending == ["9001_broken.sql", "9002_later.sql"]

    # a syntax error: nothing of the file runs, nothing is recorded
    broken.write_text("create table shopsync.broken_probe (id int);\ncreate tabel oops (;\n")
    with pytest.raises(psycopg.errors.SyntaxError):
        migrate(dsn, sql_dir=sql_copy, log=_quiet)
    assert "9001_broken.sql" not in recorded(dsn)
    assert regclass(dsn, "shopsync.broken_probe") is None

    # the advisory lock was released despite the failures: a fixed file applies at once
    broken.write_text("create table shopsync.broken_probe (id int);\n")
    assert migrate(dsn, sql_dir=sql_copy, log=_quiet) == ["9001_broken.sql", "9002_later.sql"]
    assert regclass(dsn, "shopsync.later_probe") == "shopsync.later_probe"


def test_concurrent_migrations_wait_for_each_other(empty_dsn: str) -> None:
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def run(name: str) -> None:
        try:
            start.wait(timeout=30)
            results[name] = migrate(empty_dsn, log=_quiet)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "a migrate() call never finished"
    assert errors == []
    # exactly one caller applied everything; the others found nothing left to do
    assert sorted(results.values(), key=len) == [[], [], MIGRATIONS]
    with psycopg.connect(empty_dsn, autocommit=True) as c:
        counts = c.execute("select name, count(*) from shopsync_private.schema_migrations group by name").fetchall()
    assert sorted(counts) == [(name, 1) for name in MIGRATIONS]


def test_status_reports_pending_changed_current(empty_dsn: str, sql_copy: Path) -> None:
    st = status(empty_dsn)
    assert (st.applied, st.pending, st.changed, st.current) == ([], MIGRATIONS, [], False)

    migrate(empty_dsn, log=_quiet)
    st = status(empty_dsn)
    assert (st.applied, st.pending, st.changed, st.current) == (MIGRATIONS, [], [], True)

    (sql_copy / "migrations" / "9000_new.sql").write_text("select 1;\n")
    st = status(empty_dsn, sql_dir=sql_copy)
    assert (st.applied, st.pending, st.changed, st.current) == (MIGRATIONS, ["9000_new.sql"], [], False)

    first = sql_copy / "migrations" / MIGRATIONS[0]
    first.write_text(first.read_text() + "\n-- changed\n")
    st = status(empty_dsn, sql_dir=sql_copy)
    assert st.changed == [MIGRATIONS[0]]
    assert st.pending == ["9000_new.sql"]
    assert MIGRATIONS[0] in st.applied
    assert not st.current


# --- Supabase compatibility ---------------------------------------------------------------------------

FIXED_UID = "00000000-0000-4000-8000-00000000abcd"


def test_existing_supabase_auth_objects_are_kept(empty_dsn: str) -> None:
    # What a Supabase project already has before shopsync's first migration (roles are cluster-wide
    # and exist already, created by the template database's migration).
    with psycopg.connect(empty_dsn, autocommit=True) as c:
        roles = {r[0] for r in c.execute("select rolname from pg_roles").fetchall()}
        assert {"anon", "authenticated", "service_role"} <= roles
        c.execute("create schema auth")
        c.execute("grant usage on schema auth to anon, authenticated, service_role")
        c.execute("""
            create table auth.users (
              instance_id uuid,
              id uuid primary key,
              aud varchar(255),
              role varchar(255),
              email varchar(255),
              encrypted_password varchar(255),
              email_confirmed_at timestamptz,
              phone text,
              raw_app_meta_data jsonb,
              raw_user_meta_data jsonb,
              is_super_admin boolean,
              created_at timestamptz default now(),
              updated_at timestamptz
            )""")
        c.execute(f"create function auth.uid() returns uuid language sql stable as $$ select '{FIXED_UID}'::uuid $$")
        columns_before = c.execute("select column_name from information_schema.columns "
                                   "where table_schema = 'auth' and table_name = 'users' order by 1").fetchall()
        # users who signed up before shopsync was installed
        early, early_plain = uuid.uuid4(), uuid.uuid4()
        c.execute("insert into auth.users (id, email, raw_user_meta_data) values "
                  "(%s, 'early@example.test', '{\"full_name\": \"Early User\"}'), (%s, null, null)",
                  (early, early_plain))

    applied = migrate(empty_dsn, log=_quiet)
    assert applied == MIGRATIONS

    with psycopg.connect(empty_dsn, autocommit=True, row_factory=dict_row) as c:
        body = c.execute("select prosrc from pg_proc where oid = 'auth.uid()'::regprocedure").fetchone()["prosrc"]
        assert FIXED_UID in body and "request.jwt" not in body
        assert str(c.execute("select auth.uid() as u").fetchone()["u"]) == FIXED_UID
        columns_after = c.execute("select column_name from information_schema.columns "
                                  "where table_schema = 'auth' and table_name = 'users' order by 1").fetchall()
        assert [r["column_name"] for r in columns_after] == [r[0] for r in columns_before]
        # the functions the migration supplies only where missing were added
        assert c.execute("select to_regprocedure('auth.jwt()') is not null as ok").fetchone()["ok"]
        assert c.execute("select to_regprocedure('auth.role()') is not null as ok").fetchone()["ok"]

        # the first migrate gave each user who existed before it a personal organization, as owner
        for user, name in ((early, "Early User"), (early_plain, "Personal")):
            org = personal_org(c, user)
            row = c.execute("select o.name, o.personal, o.created_by, m.role from shopsync.organizations o "
                            "join shopsync.organization_members m on m.organization_id = o.id "
                            "where o.id = %s and m.user_id = %s", (org, user)).fetchone()
            assert row == {"name": name, "personal": True, "created_by": user, "role": "owner"}

        # signup still creates a personal organization, with Supabase's wider row
        uid = uuid.uuid4()
        c.execute("insert into auth.users (id, aud, role, email, raw_user_meta_data) "
                  "values (%s, 'authenticated', 'authenticated', 'sb@example.test', '{\"full_name\": \"Sb User\"}')",
                  (uid,))
        org = personal_org(c, uid)
        name = c.execute("select name from shopsync.organizations where id = %s", (org,)).fetchone()["name"]
        assert name == "Sb User"
        # a user without metadata (Supabase's column is nullable)
        other = uuid.uuid4()
        c.execute("insert into auth.users (id, email) values (%s, 'plain@example.test')", (other,))
        personal_org(c, other)

    assert migrate(empty_dsn, log=_quiet) == []


# --- pg_cron ----------------------------------------------------------------------------------------

def _require_pg_cron(local_pg: LocalPostgres) -> None:
    if not pg_cron_available(local_pg.bindir):
        pytest.fail(f"pg_cron is not installed for the PostgreSQL in {local_pg.bindir} "
                    f"({local_pg.bindir.parent / 'lib' / 'pg_cron.so'} missing): on 15, apt-get install "
                    "postgresql-15-cron (CI installs it); elsewhere deselect these tests: -m 'not pg_cron'")


def _shopsync_jobs(c: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return c.execute("select jobid, jobname, schedule, command, database, username, active from cron.job "
                     "where jobname like 'shopsync-%' order by jobname").fetchall()


@pytest.mark.pg_cron
def test_pg_cron_schedules_installed_idempotently(local_pg: LocalPostgres) -> None:
    _require_pg_cron(local_pg)
    local_pg.create_database(CRON_DB)   # shared across the session: may exist and be migrated already
    cron_dsn = local_pg.dsn(CRON_DB)

    migrate(cron_dsn, log=_quiet)
    with psycopg.connect(cron_dsn, autocommit=True, row_factory=dict_row) as c:
        assert c.execute("select count(*) as n from pg_extension where extname = 'pg_cron'").fetchone()["n"] == 1
        jobs = _shopsync_jobs(c)
    assert {j["jobname"]: (j["schedule"], j["command"]) for j in jobs} == EXPECTED_SCHEDULES
    assert all(j["database"] == CRON_DB and j["active"] for j in jobs)
    ids = sorted(j["jobid"] for j in jobs)

    log: list[str] = []
    assert migrate(cron_dsn, log=log.append) == []
    assert not any("skipped" in line for line in log), log
    with psycopg.connect(cron_dsn, autocommit=True, row_factory=dict_row) as c:
        again = _shopsync_jobs(c)
        assert len(again) == len(EXPECTED_SCHEDULES)
        assert sorted(j["jobid"] for j in again) == ids   # updated in place, not re-created
        assert {j["jobname"]: (j["schedule"], j["command"]) for j in again} == EXPECTED_SCHEDULES

        features = c.execute("select shopsync.runtime_features() as f").fetchone()["f"]
        assert features["pg_cron"] is True and features["pg_cron_schedules"] is True

        # what pg_cron will run, run here as it stands in cron.job
        for job in again:
            with c.transaction():
                c.execute(f"set local role {job['username']}")   # pg_cron runs as the scheduling user
                out = c.execute(job["command"]).fetchone()
            assert out is not None
            result = next(iter(out.values()))
            assert result["task"] in job["command"]
            assert "result" in result or "skipped" in result


@pytest.mark.pg_cron
def test_pg_cron_without_shopsync_jobs_leaves_schedules_to_the_worker(local_pg: LocalPostgres) -> None:
    _require_pg_cron(local_pg)
    local_pg.create_database(CRON_DB)
    cron_dsn = local_pg.dsn(CRON_DB)
    migrate(cron_dsn, log=_quiet)
    try:
        with psycopg.connect(cron_dsn, autocommit=True, row_factory=dict_row) as c:
            # pg_cron enabled after shopsync migrated (Supabase dashboard), or its jobs removed by hand
            c.execute("select cron.unschedule(jobname) from cron.job where jobname like 'shopsync-%'")
            assert _shopsync_jobs(c) == []
            features = c.execute("select shopsync.runtime_features() as f").fetchone()["f"]
            assert features["pg_cron"] is True
            assert features["pg_cron_schedules"] is False, "nobody would run the schedules"
    finally:
        migrate(cron_dsn, log=_quiet)   # puts the schedules back for the rest of the session
        with psycopg.connect(cron_dsn, autocommit=True, row_factory=dict_row) as c:
            assert len(_shopsync_jobs(c)) == len(EXPECTED_SCHEDULES)


@pytest.mark.pg_cron
def test_ordinary_database_skips_pg_cron(local_pg: LocalPostgres, conn: psycopg.Connection[Any]) -> None:
    _require_pg_cron(local_pg)
    features = conn.execute("select shopsync.runtime_features() as f").fetchone()["f"]
    assert features["pg_cron"] is False and features["pg_cron_schedules"] is False
    assert conn.execute("select to_regclass('cron.job') as t").fetchone()["t"] is None

    with fresh_database(local_pg) as dsn:
        log: list[str] = []
        migrate(dsn, log=log.append)
        notices = [line for line in log if "notice:" in line]
        assert any("pg_cron" in line and "skipped" in line for line in notices), log
        assert any("schedules skipped" in line for line in notices), log
        with psycopg.connect(dsn, autocommit=True) as c:
            row = c.execute("select shopsync.runtime_features()").fetchone()
            assert row is not None and row[0]["pg_cron_schedules"] is False
            assert c.execute("select count(*) from pg_extension where extname = 'pg_cron'").fetchone() == (0,)


def test_signup_works_after_fresh_migration(empty_dsn: str) -> None:
    migrate(empty_dsn, log=_quiet)
    with psycopg.connect(empty_dsn, autocommit=True, row_factory=dict_row) as c:
        uid = new_user(c)
        personal_org(c, uid)
