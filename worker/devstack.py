"""`shopsync dev`: the embedded default. A project-local PostgreSQL 15 (with pg_cron when installed),
migrations, the web process and a worker, with a sealing key generated once for this checkout, plus the
Shopify sandbox with a demo shop that a demo user installs through the real OAuth flow — so a fresh
checkout shows a shop connected and synced. Everything lives under ``.shopsync/`` in the current directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import psycopg
from psycopg.rows import dict_row

from sandbox.shopify import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_SHOP
from worker.localpg import LocalPostgres
from worker.migrate import migrate
from worker.sealing import generate_key_spec

__all__ = ["run_dev"]

STATE_DIR = Path(".shopsync")
DB_NAME = "shopsync"
WEB_PORT = int(os.environ.get("SHOPSYNC_DEV_PORT", "8080"))
SANDBOX_PORT = int(os.environ.get("SHOPSYNC_DEV_SANDBOX_PORT", "8081"))
DEMO_USER = "dev@shopsync.local"
SYNC_TIMEOUT = 120.0


def _say(msg: str) -> None:
    print(f"[shopsync dev] {msg}", flush=True)


def _dev_env(pg: LocalPostgres) -> dict[str, str]:
    STATE_DIR.mkdir(exist_ok=True)
    key_file = STATE_DIR / "sealing.key"
    if not key_file.exists():
        key_file.write_text(generate_key_spec() + "\n")
        key_file.chmod(0o600)
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": pg.dsn(DB_NAME),
        "SHOPSYNC_SEALING_KEYS": key_file.read_text().strip(),
        "SHOPSYNC_LOCAL_DEV": "true",
        "SHOPSYNC_PORT": str(WEB_PORT),
        "PORT": str(WEB_PORT),
        "SHOPSYNC_HOST": "127.0.0.1",
        "SHOPSYNC_PUBLIC_URL": f"http://127.0.0.1:{WEB_PORT}",
        "SHOPSYNC_POLL_INTERVAL": "1",
        # the Shopify sandbox stands in for Shopify: its demo app's credentials, its per-shop base URL
        "SHOPSYNC_SHOPIFY_CLIENT_ID": DEMO_CLIENT_ID,
        "SHOPSYNC_SHOPIFY_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "SHOPSYNC_SHOPIFY_SHOP_BASE_URL": f"http://127.0.0.1:{SANDBOX_PORT}/shops/{{shop}}",
    })
    return env


def _demo_install(dsn: str) -> None:
    """A demo user connects the sandbox shop the way a merchant would: begin_install (the frontend RPC),
    approve on (sandbox) Shopify, land on our callback; the worker does the rest. Then wait for the sync."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        user = conn.execute("select id from auth.users where email = %s", (DEMO_USER,)).fetchone()
        if user is None:   # the sign-up trigger gives the user a personal organization
            user = conn.execute("insert into auth.users (id, email) values (gen_random_uuid(), %s) returning id",
                                (DEMO_USER,)).fetchone()
        assert user is not None
        # installed again on every start: the sandbox keeps its state in memory, so a new sandbox knows
        # nothing of the last run's tokens (a reinstall reuses the store and its data)
        started = conn.execute("select now() as t").fetchone()["t"]  # type: ignore[index]
        claims = json.dumps({"sub": str(user["id"]), "role": "authenticated"})

        @contextmanager
        def as_demo_user() -> Iterator[None]:
            """A transaction as the frontend's signed-in user (the role and JWT claims PostgREST sets)."""
            with conn.transaction():
                conn.execute("select set_config('role', 'authenticated', true), "
                             "set_config('request.jwt.claims', %s, true)", (claims,))
                yield

        with as_demo_user():
            org = conn.execute("select organization_id from shopsync.my_organizations() limit 1").fetchone()
            assert org is not None
            row = conn.execute("select shopsync.begin_install(%s, 'shopify', %s) as r",
                               (org["organization_id"], DEMO_SHOP)).fetchone()
        assert row is not None
        approved = httpx.get(row["r"]["authorize_url"], timeout=10)          # the merchant clicks Install
        landed = httpx.get(approved.headers["location"], timeout=10)         # Shopify sends them back to us
        if landed.status_code != 302:
            raise RuntimeError(f"the OAuth callback answered {landed.status_code}: {landed.text[:300]}")
        parked = dict(parse_qsl(urlsplit(landed.headers["location"]).fragment))
        with as_demo_user():                                                  # the frontend claims it
            conn.execute("select shopsync.claim_pending_install(%s, %s, %s)",
                         (parked["install_id"], parked["claim_token"], org["organization_id"]))
        _say(f"installed the app on {DEMO_SHOP} as {DEMO_USER}; the worker is syncing")
        deadline = time.monotonic() + SYNC_TIMEOUT
        while True:
            state = conn.execute(
                "select s.status, s.sync_status, (select count(*) from shopsync.sync_state t where t.store_id = s.id "
                "and t.last_full_sync_at > %s) as synced from shopsync.stores s where s.shop_key = %s",
                (started, DEMO_SHOP)).fetchone()
            if state is not None and state["status"] == "active" and state["synced"] == 3:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the demo shop did not finish its first sync in {SYNC_TIMEOUT:.0f}s: {state}")
            time.sleep(0.5)
        counts = conn.execute(
            "select (select count(*) from shopsync.products) as products, "
            "(select count(*) from shopsync.product_variants) as variants, "
            "(select count(*) from shopsync.inventory_levels) as inventory_levels, "
            "(select count(*) from shopsync.customers) as customers, "
            "(select count(*) from shopsync.orders) as orders, "
            "(select count(*) from shopsync.order_line_items) as line_items").fetchone()
        assert counts is not None
        _say(f"{DEMO_SHOP} synced: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


def _wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s: {last}")


def run_dev(exit_when_ready: bool = False) -> int:
    pg = LocalPostgres(STATE_DIR / "pg", cron_database=DB_NAME)
    _say(f"PostgreSQL 15 in {pg.data_dir} (port {pg.port}; pg_cron: {'yes' if pg.with_cron else 'not installed'})")
    pg.start()
    pg.create_database(DB_NAME)
    _say("migrating")
    migrate(pg.dsn(DB_NAME), log=lambda m: _say("  " + m.strip()))
    env = _dev_env(pg)
    logs = STATE_DIR / "logs"
    logs.mkdir(exist_ok=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        commands = {
            "shopify-sandbox": [sys.executable, "-m", "sandbox.shopify", "--port", str(SANDBOX_PORT),
                                "--shop", DEMO_SHOP,
                                "--compliance-uri", f"http://127.0.0.1:{WEB_PORT}/shopify/webhooks"],
            "web": [sys.executable, "-m", "worker", "web"],
            "worker": [sys.executable, "-m", "worker", "worker"],
        }
        for name, command in commands.items():
            out = (logs / f"{name}.log").open("ab")
            procs[name] = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
            _say(f"started {name} (pid {procs[name].pid}), log: {logs / (name + '.log')}")
        _wait_ready(f"http://127.0.0.1:{SANDBOX_PORT}/_sandbox/health")
        _say(f"Shopify sandbox: http://127.0.0.1:{SANDBOX_PORT} (shop {DEMO_SHOP})")
        _wait_ready(f"http://127.0.0.1:{WEB_PORT}/readyz")
        _say(f"web ready: http://127.0.0.1:{WEB_PORT}/healthz  /readyz  /metrics")
        _demo_install(pg.dsn(DB_NAME))
        _say(f"database:  psql {pg.dsn(DB_NAME)}")
        _say(f"status:    DATABASE_URL={pg.dsn(DB_NAME)} shopsync status")
        subprocess.run([sys.executable, "-m", "worker", "status"], env=env, check=False)
        if exit_when_ready:
            return 0
        _say("running; Ctrl-C to stop")
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        dead = [n for n, p in procs.items() if p.poll() is not None]
        _say(f"{', '.join(dead)} exited; see {logs}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        _say("stopping PostgreSQL")
        pg.stop()
