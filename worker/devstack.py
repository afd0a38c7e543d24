"""`shopsync dev`: the embedded default. A project-local PostgreSQL 15 (with pg_cron when installed),
migrations, the web process and a worker, with a sealing key generated once for this checkout.
Everything lives under ``.shopsync/`` in the current directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from worker.localpg import LocalPostgres
from worker.migrate import migrate
from worker.sealing import generate_key_spec

__all__ = ["run_dev"]

STATE_DIR = Path(".shopsync")
DB_NAME = "shopsync"
WEB_PORT = int(os.environ.get("SHOPSYNC_DEV_PORT", "8080"))


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
    })
    return env


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
        for name in ("web", "worker"):
            out = (logs / f"{name}.log").open("ab")
            procs[name] = subprocess.Popen([sys.executable, "-m", "worker", name], env=env, stdout=out,
                                           stderr=subprocess.STDOUT)
            _say(f"started {name} (pid {procs[name].pid}), log: {logs / (name + '.log')}")
        _wait_ready(f"http://127.0.0.1:{WEB_PORT}/readyz")
        _say(f"web ready: http://127.0.0.1:{WEB_PORT}/healthz  /readyz  /metrics")
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
