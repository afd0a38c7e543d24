"""What every benchmark shares: the cluster, fresh databases, timing, percentiles, report rows.

One ``LocalPostgres(fast=True)`` serves the whole run. The schema is migrated once into a template
database; each benchmark gets its own ``create database ... template`` clone, so every benchmark
starts from the same freshly migrated state without paying for the migrator each time.
"""

from __future__ import annotations

import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests import worker_app
from worker.dev.localpg import LocalPostgres
from worker.migrate import migrate

__all__ = [
    "ROOT",
    "Bench",
    "Cluster",
    "Report",
    "Row",
    "machine_info",
    "percentile",
    "start_worker_process",
    "stop_process",
    "wait_until",
    "worker_env",
]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "bench_template"


# --- the cluster ---------------------------------------------------------------------------------

class Cluster:
    """One throwaway PostgreSQL cluster (fsync off) and a migrated template to clone databases from."""

    def __init__(self, extra_sql: Path | None = None) -> None:
        self.extra_sql = extra_sql
        self._root = Path(tempfile.mkdtemp(prefix="shopsync-bench-pg-"))
        # no pg_cron: the workers run the maintenance schedules themselves, as on a plain PostgreSQL
        self.pg = LocalPostgres(self._root / "data", fast=True, cron_database=None)
        self._started = False

    def start(self) -> Cluster:
        """Start the server and build the template; ``extra_sql`` (a file) runs after the migrations,
        e.g. to measure a proposed change to a queue function before it becomes a migration."""
        self.pg.start()
        self._started = True
        self.pg.create_database(TEMPLATE)
        migrate(self.pg.dsn(TEMPLATE), log=lambda _msg: None)
        if self.extra_sql is not None:
            with psycopg.connect(self.pg.dsn(TEMPLATE), autocommit=True) as conn:
                conn.execute(self.extra_sql.read_text().encode())
        return self

    def stop(self) -> None:
        if self._started:
            self.pg.destroy()
        if self._root.exists() and not any(self._root.iterdir()):
            self._root.rmdir()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def fresh_database(self, name: str) -> str:
        """A new database cloned from the migrated template, with the test tables; returns its DSN."""
        with psycopg.connect(self.pg.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name),
                                                                           sql.Identifier(TEMPLATE)))
        dsn = self.pg.dsn(name)
        worker_app.prepare(dsn)
        return dsn

    def server_version(self) -> str:
        with psycopg.connect(self.pg.dsn("postgres"), autocommit=True) as conn:
            row = conn.execute("show server_version").fetchone()
        return str(row[0]) if row else "?"


# --- what a benchmark is -------------------------------------------------------------------------

@dataclass
class Bench:
    """What a benchmark module gets: the cluster, the run's size, and a place to say what it does."""

    cluster: Cluster
    quick: bool
    name: str
    notes: list[str] = field(default_factory=list)

    def db(self, suffix: str = "") -> str:
        return self.cluster.fresh_database(f"bench_{self.name}{'_' + suffix if suffix else ''}")

    def say(self, message: str) -> None:
        """Progress on the console (not in the report)."""
        print(f"  [{self.name}] {message}", flush=True)

    def note(self, message: str) -> None:
        """A line under the report's table."""
        self.notes.append(f"{self.name}: {message}")


# --- timing and statistics -----------------------------------------------------------------------

def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``check`` until it holds or ``timeout`` seconds pass; returns whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


# --- worker subprocesses -------------------------------------------------------------------------

def cpu_seconds(pid: int, *, exited_children: bool = False) -> float:
    """User + system CPU a process has used so far (Linux /proc); with ``exited_children``, plus that of
    its children that have exited (a PostgreSQL postmaster's: backends that came and went)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if exited_children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def cluster_cpu_seconds(cluster: Cluster) -> float:
    """CPU the whole PostgreSQL cluster has used so far: the postmaster, its live processes and those that
    have exited."""
    postmaster = int((cluster.pg.data_dir / "postmaster.pid").read_text().split()[0])
    total = cpu_seconds(postmaster, exited_children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == postmaster:
                    total += cpu_seconds(int(entry.name))
            except (OSError, ValueError):
                continue            # a backend that exited meanwhile is in the postmaster's share
    return total


def worker_env(dsn: str, **settings: Any) -> dict[str, str]:
    """Environment for ``python -m tests.worker_app``: ours minus any shopsync/Supabase settings, plus
    DATABASE_URL and the given settings as ``SHOPSYNC_<NAME>``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHOPSYNC_", "SUPABASE_", "DATABASE_URL", "TEST_EFFECTS_DSN"))}
    env["DATABASE_URL"] = dsn
    env["PYTHONPATH"] = str(ROOT)
    for key, value in settings.items():
        env[f"SHOPSYNC_{key.upper()}"] = str(value)
    return env


def start_worker_process(dsn: str, **settings: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.worker_app"], cwd=ROOT, env=worker_env(dsn, **settings),
                            stdin=subprocess.DEVNULL)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM (graceful shutdown), then SIGKILL if it does not exit in time. Only this process."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the report ----------------------------------------------------------------------------------

@dataclass
class Row:
    """One figure. ``baseline``/``ratio`` compare it with a baseline measured in the same run;
    ``target`` is a human-readable goal and ``ok`` whether it was met (None: no target)."""

    bench: str
    metric: str
    value: float | None
    unit: str
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None

    def cells(self) -> list[str]:
        return [self.bench, self.metric, _fmt(self.value) + (f" {self.unit}" if self.unit else ""),
                self.baseline, "" if self.ratio is None else f"{self.ratio:.2f}×", self.target,
                {None: "", True: "PASS", False: "FAIL"}[self.ok]]


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


_HEADERS = ["benchmark", "metric", "value", "baseline", "ratio", "target", "result"]


@dataclass
class Report:
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    machine: Mapping[str, str] = field(default_factory=dict)
    quick: bool = False
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def text(self) -> str:
        table = [_HEADERS, *[r.cells() for r in self.rows]]
        widths = [max(len(line[i]) for line in table) for i in range(len(_HEADERS))]
        lines = [f"shopsync benchmarks — {self.started:%Y-%m-%d %H:%M} UTC{' (quick)' if self.quick else ''}",
                 *(f"  {k}: {v}" for k, v in self.machine.items()), ""]
        for i, line in enumerate(table):
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines += ["", *(f"note: {n}" for n in self.notes), *(f"ERROR: {f}" for f in self.failures)]
        return "\n".join(lines).rstrip() + "\n"

    def markdown(self) -> str:
        def esc(cell: str) -> str:
            return cell.replace("|", "\\|")

        lines = [f"# shopsync benchmarks — {self.started:%Y-%m-%d %H:%M} UTC{' (quick run)' if self.quick else ''}",
                 "", *(f"- {k}: {v}" for k, v in self.machine.items()), "",
                 "| " + " | ".join(_HEADERS) + " |", "|" + "---|" * len(_HEADERS)]
        lines += ["| " + " | ".join(esc(c) for c in r.cells()) + " |" for r in self.rows]
        if self.notes or self.failures:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
            lines += [f"- **error**: {f}" for f in self.failures]
        return "\n".join(lines) + "\n"


def machine_info(cluster: Cluster) -> dict[str, str]:
    cpu = "?"
    with _suppress_os_errors():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": f"{os.cpu_count()} × {cpu}",
        "python": platform.python_version(),
        "postgresql": f"{cluster.server_version()} (fast mode: fsync, synchronous_commit and full_page_writes off)",
    }


@contextmanager
def _suppress_os_errors() -> Iterator[None]:
    try:
        yield
    except OSError:
        pass
