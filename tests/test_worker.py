"""The worker against a real database: dispatch, retries, leases, shutdown, crashes.

Every test runs on both database paths: direct (psycopg, LISTEN/NOTIFY) and supabase (PostgREST RPC
and Realtime, here the local stand-ins that execute the same SQL functions).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from tests import worker_app
from tests.conftest import new_user, personal_org
from tests.platform_world import free_port
from tests.standins.server import make_jwt, serve_supabase
from worker.config import Settings, load_settings
from worker.jobs.registry import JobRegistry
from worker.runtime import run_worker

ROOT = Path(__file__).resolve().parent.parent


JWT_SECRET = "test-jwt-secret-with-at-least-32-characters!"


@pytest.fixture(params=["direct", "supabase"])
def path_env(request: pytest.FixtureRequest, dsn: str) -> Iterator[dict[str, str]]:
    """Environment selecting the database path. DATABASE_URL stays set either way: the test
    handlers record their effects through it."""
    if request.param == "direct":
        yield {"DATABASE_URL": dsn}
        return
    with serve_supabase(dsn, JWT_SECRET) as url:
        yield {
            "DATABASE_URL": dsn,
            "SHOPSYNC_DB_MODE": "supabase",
            "SUPABASE_URL": url,
            "SUPABASE_SERVICE_ROLE_KEY": make_jwt(JWT_SECRET, "service_role"),
        }


@pytest.fixture
def prepared(dsn: str, path_env: dict[str, str]) -> dict[str, str]:
    worker_app.prepare(dsn)
    return path_env


def settings_for(env: dict[str, str], **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": env["DATABASE_URL"],
        "lease_seconds": 5,
        "poll_interval": 0.5,
        "reap_interval": 1,
        "worker_concurrency": 16,
        "shutdown_grace": 5,
    }
    if env.get("SHOPSYNC_DB_MODE") == "supabase":
        base.update(
            db_mode="supabase",
            supabase_url=env["SUPABASE_URL"],
            supabase_service_role_key=env["SUPABASE_SERVICE_ROLE_KEY"],
        )
    base.update(overrides)
    return load_settings(**base)


async def run_until(
    settings: Settings,
    done: Callable[[], bool],
    timeout: float = 60,
    registry: JobRegistry | None = None,
    workers: int = 1,
) -> None:
    """Run in-process workers until ``done()`` holds (checked off the event loop)."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_worker(settings, registry or worker_app.registry(), stop)) for _ in range(workers)]
    try:
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(done):
            for task in tasks:
                if task.done():
                    task.result()
                    raise AssertionError("worker exited early")
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await worker_app.close_pools()


def count(conn: psycopg.Connection[Any], sql: str, *params: Any) -> int:
    return int(conn.execute(sql, params).fetchone()["n"])


def enqueue_effects(conn: psycopg.Connection[Any], n: int, sleep: float = 0) -> None:
    conn.execute(
        "select shopsync.enqueue_job('test.effect', jsonb_build_object('key', 'k' || i, 'sleep', %(sleep)s::float))"
        " from generate_series(1, %(n)s) i",
        {"n": n, "sleep": sleep},
    )


async def test_runs_every_job_once(prepared: dict[str, str], conn: psycopg.Connection[Any]) -> None:
    enqueue_effects(conn, 300)
    await run_until(
        settings_for(prepared),
        lambda: count(conn, "select count(*) as n from shopsync.jobs where state = 'succeeded'") == 300,
    )
    assert count(conn, "select count(*) as n from test_effects") == 300
    assert count(conn, "select count(*) as n from test_attempts where event = 'start'") == 300
    row = conn.execute("select result from shopsync.jobs where payload->>'key' = 'k7'").fetchone()
    assert row["result"] == {"key": "k7"}


async def test_results_that_json_cannot_hold_still_complete(prepared: dict[str, str],
                                                            conn: psycopg.Connection[Any]) -> None:
    conn.execute("""select shopsync.enqueue_job('test.noop', '{"rich_result": true}')""")
    await run_until(
        settings_for(prepared),
        lambda: count(conn, "select count(*) as n from shopsync.jobs where state = 'succeeded'") == 1,
    )
    result = conn.execute("select result from shopsync.jobs").fetchone()["result"]
    assert result["at"].startswith("2026-01-01") and result["amount"] == "1.50"


async def test_retryable_failure_is_retried_then_succeeds(
    prepared: dict[str, str], conn: psycopg.Connection[Any]
) -> None:
    conn.execute("""select shopsync.enqueue_job('test.flaky', '{"fail_times": 2, "mode": "retryable"}')""")
    await run_until(
        settings_for(prepared),
        lambda: count(conn, "select count(*) as n from shopsync.jobs where state = 'succeeded'") == 1,
    )
    job = conn.execute("select * from shopsync.jobs").fetchone()
    assert job["attempts"] == 3 and "503" in job["last_error"]


async def test_poison_job_ends_dead_with_last_error(prepared: dict[str, str], conn: psycopg.Connection[Any]) -> None:
    conn.execute("""select shopsync.enqueue_job('test.flaky', '{"fail_times": 99, "mode": "crash"}',
                                                p_max_attempts => 2)""")
    await run_until(
        settings_for(prepared), lambda: count(conn, "select count(*) as n from shopsync.jobs where state = 'dead'") == 1
    )
    job = conn.execute("select * from shopsync.jobs").fetchone()
    assert job["attempts"] == 2
    assert "RuntimeError: unexpected crash" in job["last_error"]
    assert "shpat_0123456789abcdef" not in job["last_error"]  # secrets never reach the table


async def test_permanent_error_is_not_retried(prepared: dict[str, str], conn: psycopg.Connection[Any]) -> None:
    conn.execute("""select shopsync.enqueue_job('test.flaky', '{"fail_times": 99, "mode": "permanent"}')""")
    await run_until(
        settings_for(prepared), lambda: count(conn, "select count(*) as n from shopsync.jobs where state = 'dead'") == 1
    )
    assert conn.execute("select attempts from shopsync.jobs").fetchone()["attempts"] == 1


async def test_needs_reauth_marks_the_store(prepared: dict[str, str], conn: psycopg.Connection[Any]) -> None:
    org = personal_org(conn, new_user(conn))
    store = conn.execute("select shopsync.upsert_store(%s, 'shopify', 'r.myshopify.com') as id", (org,)).fetchone()[
        "id"
    ]
    conn.execute(
        """select shopsync.enqueue_job('test.flaky', '{"fail_times": 99, "mode": "reauth"}',
                                                p_store_id => %s)""",
        (store,),
    )
    await run_until(
        settings_for(prepared), lambda: count(conn, "select count(*) as n from shopsync.jobs where state = 'dead'") == 1
    )
    row = conn.execute("select status, status_reason from shopsync.stores where id = %s", (store,)).fetchone()
    assert row["status"] == "needs_reauth" and "token revoked" in row["status_reason"]


async def test_one_job_per_concurrency_key_across_workers(
    prepared: dict[str, str], conn: psycopg.Connection[Any]
) -> None:
    conn.execute(
        "select shopsync.enqueue_job('test.effect', jsonb_build_object('key', 's' || i, 'sleep', 0.05),"
        " p_concurrency_key => 'store:one') from generate_series(1, 12) i"
    )
    done = lambda: count(conn, "select count(*) as n from shopsync.jobs where state = 'succeeded'") == 12  # noqa: E731
    settings = settings_for(prepared)
    await run_until(settings, done, workers=2)
    spans = conn.execute("""select s.job_id, s.at as started, e.at as ended from test_attempts s
                             join test_attempts e on e.job_id = s.job_id and e.event = 'end'
                            where s.event = 'start' order by s.at""").fetchall()
    assert len(spans) == 12
    for prev, nxt in zip(spans, spans[1:], strict=False):
        assert prev["ended"] <= nxt["started"], "two jobs of one store overlapped"


async def test_wakeup_beats_a_long_poll(prepared: dict[str, str], conn: psycopg.Connection[Any]) -> None:
    # poll every 60 s: the job only runs within the bound because the NOTIFY woke the worker
    settings = settings_for(prepared, poll_interval=60)

    async def enqueue_later() -> None:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(enqueue_effects, conn, 1)

    await asyncio.gather(
        run_until(settings, lambda: count(conn, "select count(*) as n from test_effects") == 1, timeout=20),
        enqueue_later(),
    )


async def test_cancelled_running_job_stops_its_handler(prepared: dict[str, str], conn: psycopg.Connection[Any]) -> None:
    conn.execute("""select shopsync.enqueue_job('test.effect', '{"key": "long", "sleep": 30}')""")

    def cancel_when_started() -> bool:
        if count(conn, "select count(*) as n from test_attempts where event = 'start'") == 1:
            conn.execute("select shopsync.cancel_job(id) from shopsync.jobs where state = 'running'")
            return True
        return False

    settings = settings_for(prepared, lease_seconds=0.6)
    await run_until(
        settings,
        lambda: (
            cancel_when_started()
            and False
            or count(conn, "select count(*) as n from test_attempts where event = 'cancelled'") == 1
        ),
    )
    assert count(conn, "select count(*) as n from test_effects") == 0
    assert conn.execute("select state from shopsync.jobs").fetchone()["state"] == "cancelled"


async def test_schedules_run_in_the_worker_without_pg_cron(
    prepared: dict[str, str], conn: psycopg.Connection[Any]
) -> None:
    # a job whose worker vanished: only the reaper brings it back
    conn.execute("select shopsync.enqueue_job('test.effect', '{\"key\": \"orphan\"}')")
    conn.execute("select * from shopsync.claim_jobs('ghost', 1, null, 0.1)")
    org = personal_org(conn, new_user(conn))
    store = conn.execute("select shopsync.upsert_store(%s, 'testplat', 'due.example') as id", (org,)).fetchone()["id"]
    await run_until(
        settings_for(prepared),
        lambda: (
            count(conn, "select count(*) as n from test_effects") == 1
            and count(conn, "select count(*) as n from shopsync.jobs where kind = 'testplat.sync'") == 3
        ),
    )
    assert conn.execute("select count(*) as n from shopsync_private.maintenance_runs").fetchone()["n"] >= 2
    nxt = conn.execute(
        "select next_sync_at > now() + interval '50 minutes' as later from shopsync.store_sync_config"
        " where store_id = %s",
        (store,),
    ).fetchone()
    assert nxt["later"]


# --- whole processes: signals and crashes ------------------------------------------------------------


def spawn_worker(path_env: dict[str, str], **env: str) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPSYNC_", "SUPABASE_"))}
    full.update(
        {
            "SHOPSYNC_LEASE_SECONDS": "2",
            "SHOPSYNC_POLL_INTERVAL": "0.5",
            "SHOPSYNC_REAP_INTERVAL": "1",
            "SHOPSYNC_LOG_LEVEL": "WARNING",
            **path_env,
            **env,
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tests.worker_app"], cwd=ROOT, env=full, stdout=subprocess.DEVNULL, stderr=None
    )


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM and wait; a worker that does not stop gets its stacks dumped, then killed."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR2)
        time.sleep(1)
        proc.kill()
        raise


def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_sigterm_lets_running_jobs_finish(prepared: dict[str, str], conn: psycopg.Connection[Any]) -> None:
    enqueue_effects(conn, 3, sleep=1.5)
    proc = spawn_worker(prepared, SHOPSYNC_SHUTDOWN_GRACE="20")
    wait_for(lambda: count(conn, "select count(*) as n from test_attempts where event = 'start'") == 3)
    assert stop_worker(proc) == 0
    assert count(conn, "select count(*) as n from shopsync.jobs where state = 'succeeded'") == 3
    assert count(conn, "select count(*) as n from test_effects") == 3


def test_sigterm_past_grace_releases_unfinished_jobs(prepared: dict[str, str], conn: psycopg.Connection[Any]) -> None:
    enqueue_effects(conn, 2, sleep=60)
    proc = spawn_worker(prepared, SHOPSYNC_SHUTDOWN_GRACE="0.5")
    wait_for(lambda: count(conn, "select count(*) as n from test_attempts where event = 'start'") == 2)
    assert stop_worker(proc) == 0
    rows = conn.execute("select state, attempts, lease_owner from shopsync.jobs").fetchall()
    assert all(r["state"] == "queued" and r["attempts"] == 0 and r["lease_owner"] is None for r in rows)
    assert count(conn, "select count(*) as n from test_attempts where event = 'cancelled'") == 2


def test_sigkill_mid_run_loses_nothing_and_applies_nothing_twice(
    prepared: dict[str, str], conn: psycopg.Connection[Any]
) -> None:
    enqueue_effects(conn, 1000, sleep=0.02)
    victim = spawn_worker(prepared, SHOPSYNC_WORKER_CONCURRENCY="64")
    wait_for(lambda: count(conn, "select count(*) as n from test_effects") >= 200)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    in_flight = count(conn, "select count(*) as n from shopsync.jobs where state = 'running'")
    survivor = spawn_worker(prepared, SHOPSYNC_WORKER_CONCURRENCY="64")
    try:
        wait_for(
            lambda: count(conn, "select count(*) as n from shopsync.jobs where state = 'succeeded'") == 1000,
            timeout=120,
        )
    finally:
        stop_worker(survivor)
    assert in_flight > 0, "the kill should have hit running jobs"
    assert count(conn, "select count(*) as n from test_effects") == 1000
    assert count(conn, "select count(*) as n from shopsync.jobs where state <> 'succeeded'") == 0
    # some handlers did run twice (at-least-once), yet each effect exists once
    assert (
        count(
            conn,
            "select count(*) as n from (select key from test_attempts where event = 'start' "
            "group by key having count(*) > 1) t",
        )
        > 0
    )


async def test_job_counts_and_run_times_are_served_on_the_metrics_port(prepared: dict[str, str],
                                                                      conn: psycopg.Connection[Any]) -> None:
    def finished() -> float:
        return REGISTRY.get_sample_value("shopsync_jobs_finished_total",
                                         {"kind": "test.effect", "outcome": "succeeded"}) or 0.0

    before = finished()
    timed_before = REGISTRY.get_sample_value("shopsync_job_duration_seconds_count", {"kind": "test.effect"}) or 0.0
    port = free_port()
    enqueue_effects(conn, 20)
    settings = settings_for(prepared, metrics_port=port, host="127.0.0.1")
    await run_until(settings, lambda: count(conn, "select count(*) as n from shopsync.jobs where state = 'succeeded'")
                    == 20)
    assert finished() == before + 20                     # cumulative: never a window, never reset by a scrape
    assert REGISTRY.get_sample_value("shopsync_job_duration_seconds_count", {"kind": "test.effect"}) == \
        timed_before + 20
    page = (await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/metrics")).text
    assert 'shopsync_jobs_finished_total{kind="test.effect",outcome="succeeded"}' in page
    assert "# TYPE shopsync_job_duration_seconds histogram" in page
