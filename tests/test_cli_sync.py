"""`shopsync sync` in a real subprocess against a Shopify sandbox store synced by a real worker (on the test's
event loop): plain progress lines while a run is held mid-way, the summary and exit codes, revoked
credentials, unknown and ambiguous stores; and the `--json` documents of `sync`, `status` and `jobs list`."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import psycopg
import pytest

from tests.conftest import env_without_secrets
from tests.platform_world import owner_org
from tests.shopify_world import CLIENT_ID, SHOP, World
from tests.standins.server import make_jwt, serve_supabase
from tests.test_cli import REPO, output, run_cli
from worker.cli_progress import JobProgress, LineDisplay, TerminalDisplay, make_display
from worker.cli_sync import follow
from worker.connectors.shopify import CONNECTOR
from worker.connectors.shopify.oauth import TokenSet
from worker.connectors.shopify.tokens import save_tokens
from worker.db.port import Database
from worker.errors import DatabaseError
from worker.jobs.registry import JobRegistry
from worker.sealing import Sealer
from worker.sync.engine import Batch, SyncContext, sync_handler

Conn = psycopg.Connection[dict[str, Any]]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


async def active_store(w: World) -> UUID:
    """A connected Shopify store with sandbox-issued tokens (no webhooks: the sync does not need them)."""
    _, org = owner_org(w.conn)
    store = UUID(str(w.scalar("select shopsync.upsert_store(%s, 'shopify', %s)", (org, SHOP))))
    await save_tokens(w.db, Sealer.from_settings(w.core), store,
                      TokenSet.from_response(w.sandbox.issue_token(SHOP, CLIENT_ID), datetime.now(UTC)))
    return store


def held_world(w: World, gate: asyncio.Event) -> World:
    """The world with a worker whose products sync stops after its first written, checkpointed batch until
    ``gate`` is set: the run is mid-way for as long as the test needs."""
    real = CONNECTOR.contract.sync
    assert real is not None

    async def held(ctx: SyncContext) -> AsyncIterator[Batch]:
        waited = False
        async for batch in real(ctx):
            yield batch
            if ctx.resource == "products" and not waited and batch.writes and batch.checkpoint is not None:
                waited = True
                await gate.wait()

    registry = JobRegistry()
    for kind in w.registry.kinds():
        registry.register(kind, sync_handler(held) if kind == "shopify.sync" else w.registry.handler(kind))
    return dataclasses.replace(w, registry=registry)


async def start_cli(cwd: Path, *args: str, **env: str) -> asyncio.subprocess.Process:
    full_env = env_without_secrets()
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), full_env.get("PYTHONPATH", "")) if p)
    full_env.update(env)
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "worker", *args, cwd=cwd, env=full_env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def read_line_until(proc: asyncio.subprocess.Process, pattern: str, seen: list[str],
                          timeout: float = 90) -> re.Match[str]:
    assert proc.stdout is not None
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), timeout)
        assert raw, f"the command ended before printing {pattern!r}: {seen}"
        seen.append(raw.decode().rstrip("\n"))
        match = re.search(pattern, seen[-1])
        if match:
            return match


def run_counts(conn: Conn, store: UUID) -> dict[str, dict[str, int]]:
    rows = conn.execute("select resource, sum(created_count)::int as created, sum(updated_count)::int as updated, "
                        "sum(deleted_count)::int as deleted, sum(failed_count)::int as failed from shopsync.sync_runs "
                        "where store_id = %s group by resource", (store,)).fetchall()
    return {r["resource"]: {k: r[k] for k in ("created", "updated", "deleted", "failed")} for r in rows}


# --- following a sync -------------------------------------------------------------------------------------

async def test_sync_wait_prints_progress_lines_and_succeeds(world: World, dsn: str, tmp_path: Path) -> None:
    store = await active_store(world)
    gate = asyncio.Event()
    w = held_world(world, gate)
    async with w.worker():
        proc = await start_cli(tmp_path, "sync", f"shopify:{SHOP.upper()}", "--full", "--wait", "--interval", "0.3",
                               DATABASE_URL=dsn)
        lines: list[str] = []
        try:
            first = await read_line_until(proc, r"following full sync of store (\S+): (.*)", lines)
            assert first.group(1) == str(store)
            assert re.findall(r"(\w+) \(job (\d+)\)", first.group(2))[0][0] == "products"
            # the products run is held after its first batch: the line shows what it has written so far
            mid = await read_line_until(proc, r"^products: running — ([1-9][\d,]*) written, 0 failed", lines)
            assert int(mid.group(1).replace(",", "")) > 0
            assert world.scalar("select status from shopsync.sync_runs where resource = 'products'") == "running"
        finally:
            gate.set()
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    lines += out.decode().splitlines()
    assert proc.returncode == 0, (lines, err.decode())
    counts = run_counts(world.conn, store)
    for resource in ("products", "customers", "orders"):
        c = counts[resource]
        written = c["created"] + c["updated"] + c["deleted"]
        ended = [ln for ln in lines if ln.startswith(f"{resource}: succeeded")]
        assert len(ended) == 1, lines
        assert ended[0].startswith(f"{resource}: succeeded — {written:,} written ({c['created']:,} new, "
                                   f"{c['updated']:,} updated, {c['deleted']:,} deleted), 0 failed"), ended
        assert re.search(r"[\d.,]+ records/s in [\d.]+ s$", ended[0]), ended
    assert counts["orders"]["created"] >= world.shop.catalog.spec.orders
    total = sum(c["created"] + c["updated"] + c["deleted"] for c in counts.values())
    assert re.search(rf"shopify:{re.escape(SHOP)}: 3 sync job\(s\) succeeded — {total:,} records written, 0 failed",
                     lines[-1]), lines
    # one line per change: no resource repeats a line
    assert len(lines) == len(set(lines)), lines
    assert "\x1b[" not in "\n".join(lines)          # not a terminal: no cursor movement


async def test_sync_wait_json_with_revoked_credentials_exits_1(world: World, dsn: str, tmp_path: Path) -> None:
    store = await active_store(world)
    world.sandbox.revoke_tokens(SHOP, CLIENT_ID)
    async with world.worker():
        proc = await start_cli(tmp_path, "sync", str(store), "--wait", "--json", "--interval", "0.3",
                               DATABASE_URL=dsn)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 1, (out.decode(), err.decode())
    doc = json.loads(out)                          # stdout holds the JSON document and nothing else
    assert doc["ok"] is False and doc["timed_out"] is False and doc["mode"] == "incremental"
    assert doc["store"] == {"id": str(store), "platform": "shopify", "shop_key": SHOP, "status": "needs_reauth"}
    states = {j["resource"]: j["state"] for j in doc["jobs"]}
    assert sorted(states) == ["customers", "orders", "products"]
    dead = [j for j in doc["jobs"] if j["state"] == "dead"]
    assert len(dead) == 1 and "401" in dead[0]["error"], doc["jobs"]
    assert sorted(states.values()) == ["cancelled", "cancelled", "dead"]
    for job in doc["jobs"]:
        if job["state"] == "cancelled":
            assert job["error"].startswith("store is needs_reauth"), job
        assert ISO.match(job["finished_at"]), job
        assert set(job) >= {"job_id", "written", "created", "updated", "deleted", "failed", "records_per_second"}
    assert doc["totals"]["written"] == 0
    assert CLIENT_ID not in out.decode() and "shpat_" not in out.decode()
    stderr = err.decode()
    assert f"shopify:{SHOP}: sync failed (1 dead, 2 cancelled of 3 job(s))" in stderr, stderr
    assert "401" in stderr and "Traceback" not in stderr


def test_sync_wait_over_the_supabase_path(tmp_path: Path, dsn: str, conn: Conn) -> None:
    """The CLI on PostgREST (values come back as JSON): a job run through the SQL a worker calls, counts
    saved mid-run, then finished; the CLI follows it to the end."""
    secret = "cli-test-jwt-secret-0123456789abcdef0123"   # noqa: S105 - test-only
    _, org = owner_org(conn)
    store = str(conn.execute("select shopsync.upsert_store(%s, 'shopify', 'rest.myshopify.com') as id",
                             (org,)).fetchone()["id"])
    with serve_supabase(dsn, secret) as url:
        env = {**env_without_secrets(), "PYTHONPATH": str(REPO), "SUPABASE_URL": url,
               "SUPABASE_SERVICE_ROLE_KEY": make_jwt(secret, "service_role")}
        proc = subprocess.Popen([sys.executable, "-m", "worker", "sync", "shopify:rest.myshopify.com", "--resources",
                                 "orders", "--wait", "--json", "--interval", "0.2"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not conn.execute("select 1 from shopsync.jobs where store_id = %s", (store,)).fetchall():
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.05)
            [job] = conn.execute("select id from shopsync.claim_jobs('w', 1, array['shopify.sync'])").fetchall()
            run = conn.execute("select shopsync.start_sync_run(%s, 'orders', 'incremental', %s) as id",
                               (store, job["id"])).fetchone()["id"]
            conn.execute("select shopsync.save_sync_progress(%s, 4, 1, 0, 0, p_job_id => %s, p_worker => 'w')",
                         (run, job["id"]))
            conn.execute("select shopsync.finish_sync_run(%s, 'succeeded', 7, 1, 0, 1, p_record_errors => "
                         "'[{\"id\": \"9\", \"error\": \"no total\"}]')", (run,))
            conn.execute("select shopsync.complete_jobs('w', array[%s::bigint], array['{\"skipped\": 2}'::jsonb])",
                         (job["id"],))
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, (out, err)
    doc = json.loads(out)
    assert doc["ok"] is True and doc["totals"] == {"written": 8, "created": 7, "updated": 1, "deleted": 0, "failed": 1}
    [entry] = doc["jobs"]
    assert entry["state"] == "succeeded" and entry["unchanged"] == 2 and ISO.match(entry["finished_at"])
    assert entry["record_errors"] == [{"id": "9", "error": "no total"}]
    assert "orders: succeeded — 8 written (7 new, 1 updated, 0 deleted), 2 unchanged, 1 failed" in err, err


# --- refusals (no worker needed) ------------------------------------------------------------------------------

def test_unknown_ambiguous_and_invalid_stores_exit_2(tmp_path: Path, dsn: str, conn: Conn) -> None:
    def sync(*args: str) -> tuple[int, str]:
        proc = run_cli(tmp_path, "sync", *args, DATABASE_URL=dsn)
        assert proc.stdout == "" and "Traceback" not in proc.stderr, output(proc)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr     # one line
        return proc.returncode, proc.stderr

    missing = str(uuid.uuid4())
    assert sync(missing) == (2, f"shopsync sync: unknown store {missing}\n")
    assert sync("shopify:nowhere.myshopify.com") == (2, "shopsync sync: unknown store shopify:nowhere.myshopify.com\n")
    code, err = sync("just-a-name")
    assert code == 2 and "STORE must be a store id or platform:shop_key" in err

    stores = []
    for _ in range(2):
        _, org = owner_org(conn)
        stores.append(str(conn.execute("select shopsync.upsert_store(%s, 'shopify', 'twice.myshopify.com') as id",
                                       (org,)).fetchone()["id"]))
    code, err = sync("shopify:twice.myshopify.com")
    assert code == 2 and "ambiguous" in err and all(s in err for s in stores), err
    # one of them uninstalled: the active one is meant
    conn.execute("select shopsync.set_store_status(%s, 'uninstalled')", (stores[0],))
    ok = run_cli(tmp_path, "sync", "shopify:twice.myshopify.com", "--resources", "orders", DATABASE_URL=dsn)
    assert ok.returncode == 0, output(ok)
    assert f"(store {stores[1]})" in ok.stdout

    code, err = sync(stores[0])
    assert code == 2 and "must be active" in err
    code, err = sync(stores[1], "--resources", "products,nonsense")
    assert code == 2 and "nonsense" in err
    code, err = sync(stores[1], "--resources", " , ")
    assert code == 2 and "--resources" in err


def test_sync_without_wait_enqueues_and_reports_existing_jobs(tmp_path: Path, dsn: str, conn: Conn) -> None:
    _, org = owner_org(conn)
    store = str(conn.execute("select shopsync.upsert_store(%s, 'shopify', 'q.myshopify.com') as id",
                             (org,)).fetchone()["id"])
    first = run_cli(tmp_path, "sync", store, "--resources", "orders,customers", DATABASE_URL=dsn)
    assert first.returncode == 0, output(first)
    jobs = conn.execute("select id, resource, payload, priority from shopsync.jobs where store_id = %s order by id",
                        (store,)).fetchall()
    assert [(j["resource"], j["payload"]["mode"], j["payload"]["reason"], j["priority"]) for j in jobs] == \
        [("orders", "incremental", "cli", 50), ("customers", "incremental", "cli", 50)]
    assert first.stdout.strip() == (f"shopify:q.myshopify.com: incremental sync enqueued (store {store}): "
                                    f"orders (job {jobs[0]['id']}), customers (job {jobs[1]['id']})")

    again = run_cli(tmp_path, "sync", "shopify:q.myshopify.com", "--full", "--json", "--resources", "orders",
                    DATABASE_URL=dsn)
    assert again.returncode == 0, output(again)
    doc = json.loads(again.stdout)
    assert doc["mode"] == "full" and "ok" not in doc
    assert doc["jobs"][0]["job_id"] == jobs[0]["id"] and doc["jobs"][0]["mode"] == "incremental"
    assert doc["jobs"][0]["state"] == "queued"
    text = run_cli(tmp_path, "sync", store, "--full", "--resources", "orders", DATABASE_URL=dsn)
    assert f"orders (job {jobs[0]['id']}, incremental sync already queued)" in text.stdout, output(text)


# --- the displays -------------------------------------------------------------------------------------------------

def progress(**fields: Any) -> JobProgress:
    row = {"job_id": 7, "resource": "products", "state": "running", "job_mode": "full", "attempts": 1,
           "max_attempts": 10, "created_count": 1200, "updated_count": 34, "deleted_count": 0, "failed_count": 2,
           "started_at": "2026-03-01T10:00:00+00:00", "observed_at": "2026-03-01T10:00:10+00:00",
           "record_errors": [{"id": "gid://x/9", "error": "price\nnot a number"}], **fields}
    return JobProgress.from_row(row)


def test_line_display_prints_changes_only() -> None:
    stream = io.StringIO()
    display = LineDisplay(stream, every=3600)
    running = progress()
    display.update([running], 0)
    display.update([running], 1)                                     # nothing changed
    display.update([progress(created_count=1300)], 2)                # changed, but within the interval
    display.update([progress(state="succeeded", run_finished_at="2026-03-01T10:00:20+00:00",
                             result={"skipped": 5}, record_errors=[])], 3)   # ended: printed at once
    lines = stream.getvalue().splitlines()
    assert lines == [
        "products: running — 1,234 written, 2 failed, 123.4 records/s; first failed record gid://x/9: price not a "
        "number",
        "products: succeeded — 1,234 written (1,200 new, 34 updated, 0 deleted), 5 unchanged, 2 failed, "
        "61.7 records/s in 20.0 s"]


def test_terminal_display_redraws_in_place() -> None:
    stream = io.StringIO()
    display = TerminalDisplay(stream, "shopify:x.myshopify.com  full sync")
    display.update([progress(), progress(job_id=8, resource="orders", state="queued", attempts=0)], 1)
    first = stream.getvalue()
    assert first.count("\x1b[2K") == 4 and "\x1b[" not in first.replace("\x1b[2K", "")
    display.update([progress(), progress(job_id=8, resource="orders", state="queued", attempts=1,
                                         last_error="RetryableError: 502")], 2)
    second = stream.getvalue()[len(first):]
    assert second.startswith("\x1b[4F")                             # back to the table's first line
    assert "orders    retrying" in second and "attempt 1 of 10 failed: RetryableError: 502" in second


def test_a_tty_gets_the_terminal_display_and_a_pipe_plain_lines() -> None:
    leader, follower = os.openpty()
    try:
        with open(follower, "w", closefd=False) as tty:
            assert isinstance(make_display(tty, "t", None)[0], TerminalDisplay)
    finally:
        os.close(leader)
        os.close(follower)
    display, every = make_display(io.StringIO(), "t", None)
    assert isinstance(display, LineDisplay) and display.every == 5.0 and every == 1.0


# --- --json of status and jobs list ---------------------------------------------------------------------------

def test_status_and_jobs_list_json(tmp_path: Path, dsn: str, conn: Conn) -> None:
    _, org = owner_org(conn)
    store = str(conn.execute("select shopsync.upsert_store(%s, 'shopify', 'json.myshopify.com') as id",
                             (org,)).fetchone()["id"])
    job = int(conn.execute("select shopsync.enqueue_job('test.noop', p_store_id => %s) as id",
                           (store,)).fetchone()["id"])

    status = run_cli(tmp_path, "status", "--json", DATABASE_URL=dsn)
    assert status.returncode == 0, output(status)
    doc = json.loads(status.stdout)
    [row] = [s for s in doc["stores"] if s["store_id"] == store]
    assert row["shop_key"] == "json.myshopify.com" and row["platform"] == "shopify" and row["jobs_queued"] == 1
    assert ISO.match(row["next_sync_at"]) and isinstance(row["record_counts"], dict)
    assert any(j["state"] == "queued" and j["kind"] == "test.noop" and j["count"] == 1 for j in doc["queue"]["jobs"])
    assert doc["schedules_run_by"] == "worker" and isinstance(doc["features"]["pg_cron"], bool)
    assert "oldest_queued_seconds" in doc["queue"]

    listed = run_cli(tmp_path, "jobs", "list", "--store", store, "--json", DATABASE_URL=dsn)
    assert listed.returncode == 0, output(listed)
    [entry] = json.loads(listed.stdout)["jobs"]
    assert entry["id"] == job and entry["kind"] == "test.noop" and entry["state"] == "queued"
    assert entry["store_id"] == store and ISO.match(entry["run_at"]) and ISO.match(entry["created_at"])

    shown = run_cli(tmp_path, "jobs", "show", str(job), DATABASE_URL=dsn)
    assert ISO.match(json.loads(shown.stdout)["created_at"]), shown.stdout


class FlakyDatabase:
    """Answers ``sync_progress`` from a script: rows, or a DatabaseError (an outage, or a refusal)."""

    def __init__(self, *answers: list[dict[str, Any]] | DatabaseError) -> None:
        self.answers = list(answers)

    async def rpc(self, function: str, args: dict[str, Any] | None = None) -> Any:
        assert function == "sync_progress", function
        answer = self.answers.pop(0)
        if isinstance(answer, DatabaseError):
            raise answer
        return answer


def row(state: str, created: int) -> dict[str, Any]:
    return {"job_id": 7, "resource": "products", "state": state, "job_mode": "full", "attempts": 1,
            "max_attempts": 10, "created_count": created, "started_at": "2026-03-01T10:00:00+00:00",
            "observed_at": "2026-03-01T10:00:10+00:00", "run_finished_at": "2026-03-01T10:00:10+00:00"}


async def test_following_waits_out_a_database_outage_and_says_so() -> None:
    stream = io.StringIO()
    outage = DatabaseError("the database is unavailable; retry shortly", "08006")
    db = FlakyDatabase([row("running", 10)], outage, outage, [row("succeeded", 50)])
    first = [progress(created_count=0, updated_count=0, failed_count=0, record_errors=[])]
    jobs, timed_out = await follow(cast(Database, db), first, LineDisplay(stream, every=0), 0.0, None)
    assert not timed_out and [(j.state, j.written) for j in jobs] == [("succeeded", 50)]
    assert stream.getvalue().splitlines() == [
        "products: running — 10 written, 0 failed, 1.0 records/s",
        "database unavailable; waiting for it (the sync jobs go on; Ctrl-C stops following)",   # once
        "database available again",
        "products: succeeded — 50 written (50 new, 0 updated, 0 deleted), 0 failed, 5.0 records/s in 10.0 s"]

    # a refusal is not waited for; nor is an outage beyond --timeout
    refused = DatabaseError("permission denied for function sync_progress", "42501")
    with pytest.raises(DatabaseError, match="permission denied"):
        await follow(cast(Database, FlakyDatabase(refused)), first, LineDisplay(io.StringIO(), 0), 0.0, None)
    jobs, timed_out = await follow(cast(Database, FlakyDatabase(outage)), first, LineDisplay(io.StringIO(), 0),
                                   0.0, 0.0)
    assert timed_out and jobs == first


def test_terminal_display_shows_an_outage_in_its_title() -> None:
    stream = io.StringIO()
    display = TerminalDisplay(stream, "shopify:x.myshopify.com  full sync")
    display.update([progress()], 1)
    display.notice("database unavailable; waiting for it")
    redrawn = stream.getvalue().split("\x1b[3F")
    assert len(redrawn) == 2 and "full sync  1s  — database unavailable; waiting for it" in redrawn[1]
    display.notice("")
    assert "waiting" not in stream.getvalue().split("\x1b[3F")[-1]
