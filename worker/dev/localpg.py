"""A project-local PostgreSQL cluster (15, or 17 where ``SHOPSYNC_PG_BINDIR`` points) for `shopsync dev`,
tests and benchmarks.

PostgreSQL refuses to run as root, so when we are root the server binaries run as the ``postgres``
system user (``runuser``) and the data directory is handed to that user. The server listens on
127.0.0.1 only, trusts local connections, and preloads pg_cron when it is installed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LocalPostgres", "find_bindir", "pg_cron_available", "server_version"]

_DEFAULT_BINDIRS = ("/usr/lib/postgresql/15/bin", "/usr/local/pgsql/bin")


def _has_server(bindir: Path) -> bool:
    return (bindir / "postgres").exists() and (bindir / "initdb").exists()


def find_bindir() -> Path:
    """Directory holding initdb/pg_ctl/postgres: ``SHOPSYNC_PG_BINDIR``, else PostgreSQL 15's."""
    env = os.environ.get("SHOPSYNC_PG_BINDIR")
    if env:   # asked for: never fall back to another version in silence
        if not _has_server(Path(env)):
            raise RuntimeError(f"SHOPSYNC_PG_BINDIR={env} holds no PostgreSQL server (postgres, initdb)")
        return Path(env)
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(out.stdout.strip())
    candidates += list(_DEFAULT_BINDIRS)
    for cand in candidates:
        if cand and _has_server(Path(cand)):
            return Path(cand)
    raise RuntimeError("PostgreSQL server binaries not found: run scripts/bootstrap.sh "
                       "(apt-get install postgresql-15) or set SHOPSYNC_PG_BINDIR")


def server_version(bindir: Path | None = None) -> str:
    """The version of the server in ``bindir``, as ``postgres --version`` tells it (e.g. ``17.10``)."""
    out = subprocess.run([str((bindir or find_bindir()) / "postgres"), "--version"], capture_output=True, text=True,
                         check=True).stdout
    return out.split(")", 1)[-1].split()[0]


def pg_cron_available(bindir: Path | None = None) -> bool:
    libdir = (bindir or find_bindir()).parent / "lib"
    return (libdir / "pg_cron.so").exists()


def _let_others_through(path: Path) -> None:
    """Add search (x) permission for others to every directory above ``path``."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalPostgres:
    """One cluster in ``data_dir``. ``fast`` trades durability for speed (tests, benchmarks)."""

    data_dir: Path
    port: int = 0
    fast: bool = False
    cron_database: str | None = "postgres"
    user: str = "postgres"
    bindir: Path = field(default_factory=find_bindir)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if not self.port:
            self.port = self._recorded_port() or _free_port()

    # --- running binaries as the right user -----------------------------------------------------
    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _run(self, argv: list[str]) -> None:
        proc = subprocess.run(self._as_owner(argv), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({proc.returncode}): "
                               f"{(proc.stderr or proc.stdout).strip()[-2000:]}")

    @property
    def with_cron(self) -> bool:
        return self.cron_database is not None and pg_cron_available(self.bindir)

    def _recorded_port(self) -> int | None:
        conf = Path(self.data_dir) / "shopsync.conf"
        if conf.exists():
            for line in conf.read_text().splitlines():
                if line.startswith("port ="):
                    return int(line.split("=")[1])
        return None

    # --- lifecycle ------------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        if self.initialized:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
            # postgres must reach its data directory, and its binaries (a wheel's live in the project's
            # .venv, perhaps under a root-only /root/...), through every parent
            for path in (self.data_dir, self.bindir / "postgres"):
                _let_others_through(path)
        self._run([str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", self.user,
                   "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"])

    def _write_conf(self) -> None:
        lines = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.data_dir}'",
            "max_connections = 300",
            "shared_buffers = 256MB",
            "log_min_messages = warning",
            "logging_collector = off",
        ]
        if self.fast:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        if self.with_cron:
            lines += ["shared_preload_libraries = 'pg_cron'",
                      f"cron.database_name = '{self.cron_database}'",
                      "cron.use_background_workers = on",
                      "max_worker_processes = 32"]
        conf = self.data_dir / "shopsync.conf"
        text = "\n".join(lines) + "\n"
        if os.geteuid() == 0:
            self._run(["sh", "-c", f"cat > '{conf}' <<'EOF'\n{text}EOF"])
        else:
            conf.write_text(text)
        main_conf = self.data_dir / "postgresql.conf"
        include = "include_if_exists = 'shopsync.conf'"
        if include not in main_conf.read_text():
            self._run(["sh", "-c", f"echo \"{include}\" >> '{main_conf}'"])

    def is_running(self) -> bool:
        proc = subprocess.run(self._as_owner([str(self.bindir / "pg_ctl"), "status", "-D", str(self.data_dir)]),
                              capture_output=True, check=False)
        return proc.returncode == 0

    def start(self, timeout: float = 60.0) -> LocalPostgres:
        self.init()
        if self.is_running():
            return self
        made_by, major = (self.data_dir / "PG_VERSION").read_text().strip(), server_version(self.bindir).split(".")[0]
        if made_by != major:
            raise RuntimeError(f"{self.data_dir} holds a PostgreSQL {made_by} cluster, and {self.bindir} is "
                               f"PostgreSQL {major}: remove the directory (make clean) or set SHOPSYNC_PG_BINDIR "
                               f"to a PostgreSQL {made_by} bin/")
        self._write_conf()
        log = self.data_dir / "server.log"
        self._run([str(self.bindir / "pg_ctl"), "start", "-D", str(self.data_dir), "-l", str(log),
                   "-w", "-t", str(int(timeout))])
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        if self.initialized and self.is_running():
            self._run([str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-w"])

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # --- connecting -----------------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
