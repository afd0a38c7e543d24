"""Database outages and crashed workers, against a real PostgreSQL that is stopped and started again.

The outage tests run their own cluster (``LocalPostgres`` in a temporary directory, one database per test
cloned from a migrated template): the session server the other tests share must never go down. The crash
tests kill real worker processes on the shared server.

Bounds are generous (a loaded 2-core machine) but each one separates working from broken: a completion
that waited for its lease would take ≥ 15 s and run the handler twice; a web process without the outage
gate would answer 500 or hang for the pool's timeout; a killed worker's job would wait a minute for pg_cron.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from sandbox.serving import serve_app
from tests import worker_app
from tests.platform_world import free_port
from tests.shopify_world import CLIENT_ID, SECRET, SHOP
from tests.test_shopify_webhooks import signed_headers
from tests.test_worker import count, spawn_worker, stop_worker, wait_for
from worker.config import Settings
from worker.connectors.shopify import CONNECTOR
from worker.connectors.shopify.settings import ShopifySettings
from worker.db.direct import DirectDatabase
from worker.dev.localpg import LocalPostgres
from worker.errors import DatabaseError, RetryableError
from worker.jobs.registry import Job, JobContext, JobRegistry
from worker.jobs.scheduler import MaintenanceScheduler
from worker.migrate import migrate
from worker.runtime import run_worker
from worker.sealing import generate_key_spec
from worker.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "outage_template"
# the defaults (not whatever the environment says): the bounds below are about them
LEASE: float = Settings.model_fields["lease_seconds"].default
REAP: float = Settings.model_fields["reap_interval"].default

figures: dict[str, list[float]] = {}      # printed at the end of the module (-s) for the record


def note(name: str, value: float) -> None:
    figures.setdefault(name, []).append(round(value, 3))


def test_the_defaults_are_the_ones_the_bounds_assume() -> None:
    # a killed worker's jobs run again within lease + reap interval (20 s); a call waits 5 s at most
    assert (LEASE, REAP, Settings.model_fields["db_timeout"].default) == (15.0, 5.0, 5.0)


# --- a PostgreSQL of our own -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def own_pg() -> Iterator[LocalPostgres]:
    root = Path(tempfile.mkdtemp(prefix="shopsync-outage-pg-"))
    server = LocalPostgres(root / "data", fast=True, cron_database=None)
    server.start()
    try:
        server.create_database(TEMPLATE)
        migrate(server.dsn(TEMPLATE), log=lambda _msg: None)
        yield server
    finally:
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)
        if figures:
            print("\noutage figures:", json.dumps(figures))


@pytest.fixture
def outage_dsn(own_pg: LocalPostgres) -> Iterator[str]:
    """A fresh migrated database on our own server (started, whatever the previous test left)."""
    own_pg.start()
    name = f"outage_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(own_pg.dsn(), autocommit=True) as c:
        c.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE)))
    yield own_pg.dsn(name)
    own_pg.start()
    with psycopg.connect(own_pg.dsn(), autocommit=True) as c:
        c.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def rows(dsn: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    """A short-lived connection: any long-lived one dies with the server."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as c:
        return c.execute(query, params).fetchall()


async def accepting(dsn: str) -> bool:
    try:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=1)
        async with conn:
            await conn.execute("select 1")
        return True
    except psycopg.Error:
        return False


async def until(check: Any, timeout: float, what: str, every: float = 0.05) -> float:
    """Poll an async ``check`` every ``every`` s; returns the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(every)
    return time.monotonic()


# --- the worker through an outage ----------------------------------------------------------------

async def test_outcomes_reached_during_an_outage_are_recorded_once_the_database_is_back(
        own_pg: LocalPostgres, outage_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    dsn = outage_dsn
    calls = {"outage.succeed": 0, "outage.retry": 0}
    started = {kind: asyncio.Event() for kind in calls}
    down = asyncio.Event()       # the handlers finish only once the server is really down

    async def succeed(job: Job, ctx: JobContext) -> dict[str, Any]:
        calls[job.kind] += 1
        started[job.kind].set()
        await asyncio.sleep(1.0)
        await down.wait()
        return {"finished": "during the outage"}

    async def retry(job: Job, ctx: JobContext) -> dict[str, Any]:
        calls[job.kind] += 1
        started[job.kind].set()
        await asyncio.sleep(1.0)
        await down.wait()
        raise RetryableError("platform answered 503", retry_in=3600)   # queued, not run again in this test

    registry = JobRegistry()
    registry.register("outage.succeed", succeed)
    registry.register("outage.retry", retry)
    ids = {kind: rows(dsn, "select shopsync.enqueue_job(%s, '{}') as id", (kind,))[0]["id"] for kind in calls}
    # the defaults (lease 15 s, reaped every 5 s) with the worker's own reaper running beside it
    settings = Settings(_env_file=None, database_url=dsn, poll_interval=0.2,  # type: ignore[call-arg]
                        lease_seconds=LEASE, reap_interval=REAP)
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING)
    worker = asyncio.create_task(run_worker(settings, registry, stop))
    try:
        async with asyncio.timeout(30):
            await asyncio.gather(*(e.wait() for e in started.values()))
        claimed = time.monotonic()
        await asyncio.to_thread(own_pg.stop)
        down.set()
        await asyncio.sleep(3.0)
        await asyncio.to_thread(own_pg.start)
        back = time.monotonic()

        def state() -> dict[str, dict[str, Any]]:
            found = rows(dsn, "select kind, state, attempts, result, last_error, lease_owner from shopsync.jobs "
                              "where id = any(%s)", (list(ids.values()),))
            return {r["kind"]: r for r in found}

        async def recorded() -> bool:
            jobs = await asyncio.to_thread(state)
            return jobs["outage.succeed"]["state"] == "succeeded" and jobs["outage.retry"]["state"] == "queued"

        # well within one lease of the server's return: nobody waited for a lease to run out
        done = await until(recorded, LEASE, "both outcomes to be recorded", every=0.1)
        note("worker_outcomes_recorded_after_db_back_s", done - back)
        note("worker_claim_to_recorded_s", done - claimed)
        assert done - claimed < 2 * LEASE
    finally:
        stop.set()
        await worker
        await worker_app.close_pools()
    jobs = state()
    ok, failed = jobs["outage.succeed"], jobs["outage.retry"]
    assert (ok["state"], ok["attempts"], ok["result"]) == ("succeeded", 1, {"finished": "during the outage"})
    assert (failed["state"], failed["attempts"], failed["lease_owner"]) == ("queued", 1, None)
    # its own failure was written (not the reaper's "lease expired")
    assert failed["last_error"] == "RetryableError: platform answered 503"
    assert calls == {"outage.succeed": 1, "outage.retry": 1}, "each handler ran exactly once"
    # and the outage was real: the first attempts to record both outcomes failed
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("completing 1 jobs failed") for m in messages), messages
    assert any(m.startswith("fail_job: the database did not answer") for m in messages), messages


# --- the web process through an outage ------------------------------------------------------------

@contextmanager
def web_process(dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``shopsync web`` on a free port, in a thread with its own event loop (its lifespan opens the database)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    core = Settings(_env_file=None, database_url=dsn, sealing_keys=generate_key_spec("t"),  # type: ignore[call-arg]
                    public_url=url, frontend_url="http://frontend.test", local_dev=True)
    monkeypatch.setattr(CONNECTOR, "_settings", ShopifySettings(  # type: ignore[call-arg]
        _env_file=None, client_id=CLIENT_ID, client_secret=SECRET))
    with serve_app(create_app(core), port=port, name="shopsync-web"):
        yield url


async def post_webhook(web: httpx.AsyncClient, delivery: str) -> tuple[httpx.Response, float]:
    body = json.dumps({"id": 7, "title": "during an outage"}).encode()
    began = time.monotonic()
    response = await web.post("/shopify/webhooks", content=body,
                              headers=signed_headers(body, "products/update", webhook_id=delivery))
    return response, time.monotonic() - began


def assert_outage_answer(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json()["detail"] == "the database is unavailable; retry shortly"


@pytest.fixture
def shop_store(outage_dsn: str) -> str:
    user = uuid.uuid4()
    rows(outage_dsn, "insert into auth.users (id, email) values (%s, %s) returning id", (user, f"{user.hex[:8]}@x.test"))
    org = rows(outage_dsn, "select organization_id as id from shopsync.organization_members where user_id = %s",
               (user,))[0]["id"]
    return str(rows(outage_dsn, "select shopsync.upsert_store(%s, 'shopify', %s, null, 'connecting') as id",
                    (org, SHOP))[0]["id"])


async def test_web_answers_503_during_an_outage_and_serves_again_within_a_second(
        own_pg: LocalPostgres, outage_dsn: str, shop_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = outage_dsn
    accepted: list[str] = []
    with web_process(dsn, monkeypatch) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as web:
            response, _ = await post_webhook(web, "before")
            assert (response.status_code, response.json()["status"]) == (200, "accepted")
            accepted.append("before")

            await asyncio.to_thread(own_pg.stop)
            latencies = []
            for i in range(8):
                response, took = await post_webhook(web, f"down-{i}")
                assert_outage_answer(response)
                latencies.append(took)
                assert (await web.get("/healthz")).status_code == 200
                await asyncio.sleep(0.1)
            note("web_503_max_s", max(latencies))
            assert max(latencies) < 2.0, latencies

            starting = asyncio.create_task(asyncio.to_thread(own_pg.start))
            db_up: float | None = None
            statuses: list[int] = []

            async def watch_db() -> bool:
                nonlocal db_up
                if db_up is None and await accepting(dsn):
                    db_up = time.monotonic()
                return db_up is not None

            async def served() -> bool:
                response, took = await post_webhook(web, delivery := f"after-{len(statuses)}")
                statuses.append(response.status_code)
                if response.status_code == 200:
                    accepted.append(delivery)
                    return True
                assert_outage_answer(response)         # never a 500, never a hang
                assert took < 2.0
                return False

            db_seen, route_ok = await asyncio.gather(until(watch_db, 60, "the database to accept connections"),
                                                     until(served, 60, "the webhook route to serve again"))
            await starting
    recovery = route_ok - db_seen
    note("web_recovery_after_db_accepts_s", recovery)
    assert recovery < 1.0, f"served {recovery:.2f} s after the database accepted connections ({statuses})"
    # what was answered 200 was stored, and nothing else
    stored = rows(dsn, "select delivery_id from shopsync.webhook_inbox order by id")
    assert [r["delivery_id"] for r in stored] == accepted


async def test_web_starts_while_the_database_is_down_and_becomes_ready_when_it_is_back(
        own_pg: LocalPostgres, outage_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = outage_dsn
    await asyncio.to_thread(own_pg.stop)
    began = time.monotonic()
    with web_process(dsn, monkeypatch) as url:
        note("web_start_with_db_down_s", time.monotonic() - began)
        async with httpx.AsyncClient(base_url=url, timeout=30) as web:
            assert (await web.get("/healthz")).status_code == 200
            ready = await web.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["problems"] == ["database unreachable (no answer)"]
            response, _ = await post_webhook(web, "while-starting")
            assert_outage_answer(response)

            await asyncio.to_thread(own_pg.start)
            back = time.monotonic()

            async def is_ready() -> bool:
                return (await web.get("/readyz")).status_code == 200

            await until(is_ready, 15, "/readyz to turn 200")
            note("web_ready_after_db_back_s", time.monotonic() - back)

            def published() -> bool:
                # the contracts were checked and the configs published in the background, once reachable
                return bool(rows(dsn, "select 1 from shopsync_private.settings where key = 'platform:shopify'"))

            async def published_async() -> bool:
                return await asyncio.to_thread(published)

            await until(published_async, 15, "the background start-up checks")
            assert (await web.get("/readyz")).json() == {"status": "ready"}


# --- crashed and slow workers (real processes, the shared server) ----------------------------------

@pytest.fixture
def effects_env(dsn: str) -> dict[str, str]:
    worker_app.prepare(dsn)
    return {"DATABASE_URL": dsn}


def spawn_default_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A worker process with the default lease, reap and poll settings."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPSYNC_", "SUPABASE_"))}
    full.update({"SHOPSYNC_LOG_LEVEL": "WARNING", **env})
    return subprocess.Popen([sys.executable, "-m", "tests.worker_app"], cwd=ROOT, env=full,
                            stdout=subprocess.DEVNULL, stderr=None)


def test_a_killed_workers_job_runs_again_within_30_seconds_with_default_settings(
        effects_env: dict[str, str], conn: psycopg.Connection[Any]) -> None:
    conn.execute("""select shopsync.enqueue_job('test.effect', '{"key": "long", "sleep_first": 600}')""")
    victim = spawn_default_worker(effects_env)
    survivor: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: count(conn, "select count(*) as n from test_attempts where event = 'start'") == 1)
        # kill just after a heartbeat renewed the lease: the longest wait a kill can cause
        wait_for(lambda: conn.execute("select lease_expires_at > started_at + interval '17 s' as renewed "
                                      "from shopsync.jobs").fetchone()["renewed"], timeout=30)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed = time.monotonic()
        assert conn.execute("select state from shopsync.jobs").fetchone()["state"] == "running"
        survivor = spawn_default_worker(effects_env)
        wait_for(lambda: count(conn, "select count(*) as n from shopsync.jobs where state = 'succeeded'") == 1,
                 timeout=45)
        pickup = time.monotonic() - killed
    finally:
        if victim.poll() is None:
            victim.kill()
        if survivor is not None:
            stop_worker(survivor)
    note("sigkill_to_succeeded_s", pickup)
    # the rest of a just-renewed lease (15 s) + reaped within 5 s + a moment to run
    assert pickup < 30, f"the killed worker's job completed {pickup:.1f} s after the kill"
    job = conn.execute("select attempts from shopsync.jobs").fetchone()
    starts = conn.execute("select worker from test_attempts where event = 'start' order by id").fetchall()
    assert job["attempts"] == 2 and len(starts) == 2 and starts[0]["worker"] != starts[1]["worker"]
    assert count(conn, "select count(*) as n from test_effects") == 1


async def test_expired_leases_are_reaped_beside_pg_cron(dsn: str, conn: psycopg.Connection[Any]) -> None:
    """pg_cron fires once a minute at best: the worker reaps every ``reap_interval`` even where pg_cron runs
    the schedules (and runs nothing else then)."""
    conn.execute("""select shopsync.enqueue_job('test.effect', '{"key": "orphan"}')""")
    conn.execute("select * from shopsync.claim_jobs('ghost', 1, null, 0.5)")
    db = await DirectDatabase.connect(dsn, 2, listen=False)
    scheduler = MaintenanceScheduler(db, Settings(_env_file=None, database_url=dsn, reap_interval=1))  # type: ignore[call-arg]

    async def pg_cron_runs(_stop: asyncio.Event) -> bool:
        return True

    scheduler.pg_cron_runs_schedules = pg_cron_runs  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        def reaped() -> bool:
            return bool(conn.execute("select state = 'queued' as q from shopsync.jobs").fetchone()["q"])

        async def reaped_async() -> bool:
            return await asyncio.to_thread(reaped)

        await until(reaped_async, 10, "the expired lease to be reaped")
    finally:
        stop.set()
        await task
        await db.close()
    assert "ghost stopped heartbeating" in conn.execute("select last_error from shopsync.jobs").fetchone()["last_error"]
    ran = {r["task"] for r in conn.execute("select task from shopsync_private.maintenance_runs").fetchall()}
    assert ran == {"reap_expired_leases"}, "pg_cron runs the other schedules"


def test_a_slow_live_job_is_never_run_twice(effects_env: dict[str, str], conn: psycopg.Connection[Any]) -> None:
    # 7 s of work under 2 s leases (heartbeats every 2/3 s), two workers that both reap every second
    conn.execute("""select shopsync.enqueue_job('test.effect', '{"key": "slow", "sleep": 7}')""")
    first = spawn_worker(effects_env)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: count(conn, "select count(*) as n from test_attempts where event = 'start'") == 1)
        second = spawn_worker(effects_env)
        # the reapers look more than two leases after the job started (it still runs then); under load
        # neither may have run yet at the first look: no row is "not yet"
        wait_for(lambda: count(
            conn, "select count(*) as n from shopsync.jobs j, shopsync_private.maintenance_runs m "
                  "where m.task = 'reap_expired_leases' and m.last_run_at > j.started_at + interval '4.5 s'"
        ) == 1, timeout=30)
        wait_for(lambda: count(conn, "select count(*) as n from shopsync.jobs where state = 'succeeded'") == 1,
                 timeout=60)
    finally:
        codes = [stop_worker(p) for p in (first, second) if p is not None]
    assert codes == [0, 0]
    assert conn.execute("select attempts from shopsync.jobs").fetchone()["attempts"] == 1
    assert count(conn, "select count(*) as n from test_attempts where event = 'start'") == 1
    assert count(conn, "select count(*) as n from test_effects") == 1



@pytest.mark.parametrize(("sqlstate", "outage"), [
    (None, True), ("08006", True), ("57P01", True), ("57P03", True), ("53300", True),
    ("57014", False),            # a statement timeout or cancel: that call's problem, not the database's
    ("23505", False), ("42501", False), ("P0002", False)])
def test_what_counts_as_an_outage(sqlstate: str | None, outage: bool) -> None:
    assert DatabaseError("x", sqlstate).outage is outage
