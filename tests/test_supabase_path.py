"""The supabase path end to end: SupabaseDatabase → supabase-py → local PostgREST/Realtime stand-ins →
the real SQL functions in this test's database. Nothing under test is mocked."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import new_user
from tests.standins.postgrest import serve_postgrest
from tests.standins.server import make_jwt, serve_supabase
from worker.config import Settings
from worker.db.supabase import SupabaseDatabase
from worker.errors import DatabaseError

JWT_SECRET = "shopsync-test-jwt-secret-0123456789abcdef"  # noqa: S105 - test-only; ≥ 32 bytes for HS256

Conn = psycopg.Connection[dict[str, Any]]


def _settings(url: str, key: str) -> Settings:
    return Settings(_env_file=None, SUPABASE_URL=url, SUPABASE_SERVICE_ROLE_KEY=key)  # type: ignore[call-arg]


@pytest.fixture
def service_key() -> str:
    return make_jwt(JWT_SECRET, "service_role")


@pytest.fixture
def supabase_url(dsn: str) -> Iterator[str]:
    with serve_supabase(dsn, JWT_SECRET) as url:
        yield url


@pytest.fixture
async def db(supabase_url: str, service_key: str) -> AsyncIterator[SupabaseDatabase]:
    database = await SupabaseDatabase.connect(_settings(supabase_url, service_key))
    try:
        yield database
    finally:
        await database.close()


async def _post(url: str, function: str, body: dict[str, Any], token: str | None, *,
                apikey: str | None = None, profile: str = "shopsync") -> httpx.Response:
    headers = {"Content-Profile": profile}
    if apikey is not None:
        headers["apikey"] = apikey
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient() as client:
        return await client.post(f"{url}/rest/v1/rpc/{function}", json=body, headers=headers)


# --- RPC ------------------------------------------------------------------------------------------

async def test_enqueue_claim_complete(db: SupabaseDatabase, conn: Conn) -> None:
    run_at = datetime.now(UTC) - timedelta(seconds=5)
    job_id = await db.rpc("enqueue_job", {
        "p_kind": "sync.products",
        "p_payload": {"page": 1, "price": Decimal("9.90"), "ref": uuid.UUID(int=7), "ids": (1, 2)},
        "p_priority": 5,
        "p_run_at": run_at,
        "p_dedupe_key": "products-1",
    })
    assert isinstance(job_id, int)
    # deduplicated: the same job comes back
    assert await db.rpc("enqueue_job", {"p_kind": "sync.products", "p_dedupe_key": "products-1"}) == job_id

    jobs = await db.rpc("claim_jobs", {"p_worker": "w-1", "p_limit": 10, "p_kinds": ("sync.products",),
                                       "p_lease_seconds": 30})
    assert isinstance(jobs, list) and len(jobs) == 1
    job = jobs[0]
    assert job["id"] == job_id
    assert job["kind"] == "sync.products"
    assert job["state"] == "running"
    assert job["attempts"] == 1
    assert job["priority"] == 5
    assert job["lease_owner"] == "w-1"
    assert job["payload"] == {"page": 1, "price": "9.90", "ref": str(uuid.UUID(int=7)), "ids": [1, 2]}
    # PostgREST renders timestamps as ISO strings
    assert datetime.fromisoformat(job["run_at"]) == run_at
    assert datetime.fromisoformat(job["lease_expires_at"]) > datetime.now(UTC)

    # set-returning function of scalars: a list of values
    assert await db.rpc("heartbeat_jobs", {"p_worker": "w-1", "p_ids": [job_id, 424242]}) == [job_id]
    assert await db.rpc("claim_jobs", {"p_worker": "w-2", "p_limit": 10}) == []

    done = await db.rpc("complete_jobs", {"p_worker": "w-1", "p_ids": [job_id], "p_results": [{"rows": 3}]})
    assert done == 1
    row = conn.execute("select state, result, lease_owner from shopsync.jobs where id = %s",
                       (job_id,)).fetchone()
    assert row == {"state": "succeeded", "result": {"rows": 3}, "lease_owner": None}


async def test_sql_errors_carry_sqlstate(db: SupabaseDatabase, conn: Conn) -> None:
    with pytest.raises(DatabaseError) as err:
        await db.rpc("cancel_job", {"p_job_id": 987654321})
    assert err.value.sqlstate == "P0002"
    assert "unknown job 987654321" in str(err.value)

    job_id = conn.execute("select shopsync.enqueue_job('noop') as id").fetchone()["id"]  # type: ignore[index]
    assert await db.rpc("cancel_job", {"p_job_id": job_id}) == "cancelled"
    with pytest.raises(DatabaseError) as err:
        await db.rpc("cancel_job", {"p_job_id": job_id})
    assert err.value.sqlstate == "55000"

    with pytest.raises(DatabaseError) as err:
        await db.rpc("enqueue_job", {"p_kind": "x", "p_store_id": uuid.uuid4()})
    assert err.value.sqlstate == "P0002"

    with pytest.raises(DatabaseError) as err:
        await db.rpc("enqueue_job", {"p_kind": "Not A Kind!"})
    assert err.value.sqlstate == "23514"        # check constraint, passed through

    with pytest.raises(DatabaseError) as err:
        await db.rpc("no_such_function", {})
    assert err.value.sqlstate == "PGRST202"

    with pytest.raises(DatabaseError) as err:     # wrong argument name: no candidate, like PostgREST
        await db.rpc("cancel_job", {"p_id": 1})
    assert err.value.sqlstate == "PGRST202"

    with pytest.raises(DatabaseError) as err:
        await db.rpc("bad name; drop table x", {})
    assert err.value.sqlstate == "42602"


async def test_void_function_gives_empty_list(db: SupabaseDatabase, conn: Conn) -> None:
    # PostgREST answers 204 No Content for void functions; supabase-py turns that into [].
    conn.execute("create function shopsync.standin_noop(p_x integer) returns void language sql as 'select'")
    assert await db.rpc("standin_noop", {"p_x": 1}) == []


async def test_transport_error_is_database_error(service_key: str) -> None:
    settings = _settings("http://127.0.0.1:9", service_key)   # discard port: nothing listens
    database = await SupabaseDatabase.connect(settings, listen=False)
    try:
        with pytest.raises(DatabaseError) as err:
            await database.rpc("claim_jobs", {"p_worker": "w", "p_limit": 1})
        assert err.value.sqlstate is None
        assert service_key not in str(err.value)
    finally:
        await database.close()


# --- auth through the PostgREST stand-in ----------------------------------------------------------

async def test_service_role_only_function_refused_for_users(supabase_url: str, conn: Conn) -> None:
    anon_key = make_jwt(JWT_SECRET, "anon")
    user_id = new_user(conn)
    user_token = make_jwt(JWT_SECRET, "authenticated", sub=str(user_id))

    claim = {"p_worker": "w", "p_limit": 1}
    resp = await _post(supabase_url, "claim_jobs", claim, user_token, apikey=anon_key)
    assert resp.status_code == 403
    assert resp.json()["code"] == "42501"

    resp = await _post(supabase_url, "claim_jobs", claim, anon_key, apikey=anon_key)
    assert resp.status_code == 401
    assert resp.json()["code"] == "42501"

    # the same user may call the frontend RPCs, and auth.uid() sees the JWT's sub
    resp = await _post(supabase_url, "my_organizations", {}, user_token, apikey=anon_key)
    assert resp.status_code == 200, resp.text
    orgs = resp.json()
    assert len(orgs) == 1 and orgs[0]["personal"] is True and orgs[0]["role"] == "owner"


async def test_bad_or_missing_jwt_is_401(supabase_url: str) -> None:
    anon_key = make_jwt(JWT_SECRET, "anon")
    forged = make_jwt("some-other-secret-0123456789abcdef0123", "service_role")
    resp = await _post(supabase_url, "claim_jobs", {"p_worker": "w", "p_limit": 1}, forged, apikey=anon_key)
    assert resp.status_code == 401
    assert resp.json()["code"] == "PGRST301"

    expired = make_jwt(JWT_SECRET, "service_role", expires_in=-60)
    resp = await _post(supabase_url, "claim_jobs", {"p_worker": "w", "p_limit": 1}, expired, apikey=anon_key)
    assert resp.status_code == 401

    resp = await _post(supabase_url, "claim_jobs", {"p_worker": "w", "p_limit": 1}, None)
    assert resp.status_code == 401

    resp = await _post(supabase_url, "claim_jobs", {}, None, apikey=anon_key, profile="auth")
    assert resp.status_code == 406
    assert resp.json()["code"] == "PGRST106"


async def test_bad_service_key_never_leaks(supabase_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bad_key = make_jwt("wrong-secret-wrong-secret-wrong-secret!!", "service_role")
    database = await SupabaseDatabase.connect(_settings(supabase_url, bad_key), realtime_timeout=2)
    try:
        with pytest.raises(DatabaseError) as err:
            await database.rpc("claim_jobs", {"p_worker": "w", "p_limit": 1})
        assert "Invalid API key" in str(err.value)
        assert bad_key not in str(err.value)
        assert await database.wait_for_wakeup(0.1) is False
    finally:
        await database.close()
    assert any("Realtime" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert bad_key not in caplog.text


# --- wake-ups -------------------------------------------------------------------------------------

async def test_wakeup_after_enqueue_by_another_connection(db: SupabaseDatabase, conn: Conn) -> None:
    assert await db.wait_for_wakeup(0.3) is False
    conn.execute("select shopsync.enqueue_job('sync.orders')")
    assert await db.wait_for_wakeup(2) is True
    assert await db.wait_for_wakeup(0.2) is False      # consumed


async def test_wakeup_times_out_when_nothing_is_enqueued(db: SupabaseDatabase) -> None:
    started = asyncio.get_running_loop().time()
    assert await db.wait_for_wakeup(0.5) is False
    assert asyncio.get_running_loop().time() - started >= 0.45


async def test_rpc_enqueue_wakes_another_worker(supabase_url: str, service_key: str) -> None:
    settings = _settings(supabase_url, service_key)
    producer = await SupabaseDatabase.connect(settings, listen=False)
    consumer = await SupabaseDatabase.connect(settings)
    try:
        await producer.rpc("enqueue_job", {"p_kind": "sync.customers"})
        assert await consumer.wait_for_wakeup(2) is True
        assert await producer.wait_for_wakeup(0) is False   # never subscribed
    finally:
        await producer.close()
        await consumer.close()
        await consumer.close()   # idempotent


async def test_works_without_realtime(dsn: str, service_key: str, conn: Conn,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with serve_postgrest(dsn, JWT_SECRET) as url:         # PostgREST only: no Realtime endpoint
        database = await SupabaseDatabase.connect(_settings(url, service_key), realtime_timeout=2)
        try:
            job_id = await database.rpc("enqueue_job", {"p_kind": "sync.products"})
            assert isinstance(job_id, int)
            assert await database.wait_for_wakeup(0.2) is False
        finally:
            await database.close()
    assert any("polling" in r.getMessage() for r in caplog.records)
    assert service_key not in caplog.text


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_wakeups_resume_after_realtime_restart(dsn: str, service_key: str, conn: Conn) -> None:
    # The realtime client reconnects and rejoins by itself; the rejoin is itself a wake-up (anything
    # sent while we were away is lost).
    with serve_supabase(dsn, JWT_SECRET) as url:
        database = await SupabaseDatabase.connect(_settings(url, service_key))
    try:
        await asyncio.sleep(0.2)
        with serve_supabase(dsn, JWT_SECRET, port=_port(url)):
            assert await database.wait_for_wakeup(10) is True       # re-subscribed
            conn.execute("select shopsync.enqueue_job('sync.orders')")
            assert await database.wait_for_wakeup(2) is True
            assert await database.rpc("claim_jobs", {"p_worker": "w", "p_limit": 5}) != []
            await database.close()
    finally:
        await database.close()


async def test_subscribes_later_when_realtime_was_down_at_start(dsn: str, service_key: str,
                                                                conn: Conn) -> None:
    with serve_postgrest(dsn, JWT_SECRET) as url:            # Realtime missing at start-up
        database = await SupabaseDatabase.connect(_settings(url, service_key), realtime_timeout=1,
                                                  realtime_recheck=0.3)
    try:
        assert await database.wait_for_wakeup(0.1) is False
        with serve_supabase(dsn, JWT_SECRET, port=_port(url)):
            deadline = asyncio.get_running_loop().time() + 10
            woke = False
            while not woke and asyncio.get_running_loop().time() < deadline:
                conn.execute("select shopsync.enqueue_job('sync.products')")
                woke = await database.wait_for_wakeup(0.5)
            assert woke
            await database.close()
    finally:
        await database.close()
