"""Test fixtures: one real PostgreSQL per session, a migrated template, a fresh clone per test.

The server is shopsync's own LocalPostgres (run as the ``postgres`` user when tests run as root, with
pg_cron preloaded for the ``shopsync_cron`` database when installed): PostgreSQL 15, or the server
``SHOPSYNC_PG_BINDIR`` points at (`make test-pg17`; tests that need pg_cron are marked ``pg_cron`` and
deselected there with ``-m "not pg_cron"``). pytest-postgresql builds the template once (``load`` runs
the real migrator) and clones it for every test.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from pytest_postgresql import factories
from pytest_postgresql.executors import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from worker.config import load_settings
from worker.db.direct import DirectDatabase
from worker.dev.localpg import LocalPostgres, find_bindir, pg_cron_available, server_version
from worker.jobs.registry import JobContext
from worker.migrate import migrate

CRON_DB = "shopsync_cron"
# the whole-platform-world fixtures (sandbox + web + worker) for the end-to-end tests; the look-ups' web
# process; the notification world
pytest_plugins = ["tests.shopify_world", "tests.tiktok_world", "tests.lookup_world", "tests.notify_world"]


def pytest_report_header() -> str:
    bindir = find_bindir()
    return (f"PostgreSQL {server_version(bindir)} from {bindir} "
            f"(pg_cron: {'installed' if pg_cron_available(bindir) else 'not installed'})")


@pytest.fixture(scope="session")
def local_pg() -> Iterator[LocalPostgres]:
    root = Path(tempfile.mkdtemp(prefix="shopsync-test-pg-"))
    server = LocalPostgres(root / "data", fast=True, cron_database=CRON_DB)
    server.start()
    try:
        yield server
    finally:
        server.destroy()
        root.rmdir() if root.exists() and not any(root.iterdir()) else None


def _load_schema(host: str, port: int, user: str, dbname: str, password: str | None = None, **_: Any) -> None:
    migrate(f"postgresql://{user}@{host}:{port}/{dbname}", log=lambda _msg: None)


@pytest.fixture(scope="session")
def shopsync_template(local_pg: LocalPostgres) -> Iterator[NoopExecutor]:
    """The migrated template database every test database is cloned from."""
    executor = NoopExecutor(host="127.0.0.1", port=local_pg.port, user="postgres", password=None,
                            dbname="shopsync_test", options="")
    janitor = DatabaseJanitor(user="postgres", host="127.0.0.1", port=local_pg.port,
                              dbname=executor.template_dbname, as_template=True)
    with janitor:
        janitor.load(_load_schema)
        yield executor


postgresql = factories.postgresql("shopsync_template")


@pytest.fixture
def dsn(postgresql: psycopg.Connection) -> str:
    """DSN of this test's fresh, migrated database."""
    info = postgresql.info
    return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """Autocommit superuser connection to this test's database, rows as dicts."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


# --- helpers shared by tests ---------------------------------------------------------------------

def new_user(conn: psycopg.Connection[Any], email: str | None = None) -> uuid.UUID:
    """Sign a user up the way Supabase Auth does (insert into auth.users); returns the user id."""
    uid = uuid.uuid4()
    conn.execute("insert into auth.users (id, email) values (%s, %s)", (uid, email or f"{uid.hex[:8]}@example.test"))
    return uid


def personal_org(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> uuid.UUID:
    row = conn.execute("select organization_id from shopsync.organization_members m "
                       "join shopsync.organizations o on o.id = m.organization_id "
                       "where m.user_id = %s and o.personal and o.created_by = %s and m.role = 'owner'",
                       (user_id, user_id)).fetchone()
    assert row is not None
    return row["organization_id"] if isinstance(row, dict) else row[0]


@contextmanager
def as_role(conn: psycopg.Connection[Any], role: str, user_id: uuid.UUID | None = None) -> Iterator[None]:
    """Run statements as PostgREST would for a request: SET LOCAL ROLE + request.jwt.claims."""
    claims: dict[str, Any] = {"role": role}
    if user_id is not None:
        claims["sub"] = str(user_id)
    with conn.transaction():
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        conn.execute(f"set local role {role}")
        yield


def set_policy(conn: psycopg.Connection[Any], store_id: Any, resource: str, policy: str) -> None:
    """Set a store's access policy for a resource directly (as the superuser; the RPC checks roles)."""
    conn.execute("insert into shopsync.store_access_policies (store_id, resource, organization_id, policy) "
                 "select s.id, %s, s.organization_id, %s from shopsync.stores s where s.id = %s "
                 "on conflict (store_id, resource) do update set policy = excluded.policy",
                 (resource, policy, store_id))


def policy_of(conn: psycopg.Connection[Any], store_id: Any, resource: str) -> str:
    row = conn.execute("select shopsync_private.store_policy(%s, %s) as p", (store_id, resource)).fetchone()
    assert row is not None
    return str(row["p"] if isinstance(row, dict) else row[0])


# not configuration but the machine: which PostgreSQL server child processes (`shopsync dev`) run
_MACHINE_SETTINGS = {"SHOPSYNC_PG_BINDIR"}


def env_without_secrets() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k in _MACHINE_SETTINGS or not k.startswith(("SHOPSYNC_", "SUPABASE_", "DATABASE_URL"))}


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[DirectDatabase]:
    """The direct database path on this test's database (modules testing both paths override it)."""
    database = await DirectDatabase.connect(dsn, listen=False)
    yield database
    await database.close()


def job_context(db: DirectDatabase, dsn: str, worker_id: str = "t") -> JobContext:
    """What the worker hands a handler, for tests that call handlers directly."""
    return JobContext(db=db, settings=load_settings(database_url=dsn), worker_id=worker_id)
