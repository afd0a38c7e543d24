"""``shopsync sync STORE``: enqueue a store's sync through ``request_sync`` and, with ``--wait``, follow its
jobs until each one ends, showing per resource the records written so far, the rate and the errors.

Progress comes from ``sync_progress`` (one call per poll): the jobs, and the counts the sync engine saves
on its runs after each checkpoint. On a terminal the table is redrawn in place (plain ANSI); otherwise
one line is printed per change, at most every ``--interval`` seconds per resource (a job that ends is
always printed at once). With ``--json`` stdout carries only the JSON document and progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO
from uuid import UUID

from worker.cli_json import print_json
from worker.db.port import Database
from worker.db.values import as_datetime
from worker.errors import DatabaseError, ShopsyncError
from worker.rpc import stores, syncs

__all__ = ["JobProgress", "add_sync_parser", "resolve_store", "run_sync"]

_PLATFORM = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
_ENDED = ("succeeded", "dead", "cancelled", "gone")
_POLL_SECONDS = 1.0


def add_sync_parser(sub: Any) -> None:
    p = sub.add_parser("sync", help="sync a store now; --wait follows it to the end with progress")
    p.add_argument("store", metavar="STORE", help="a store id, or platform:shop_key (e.g. shopify:x.myshopify.com)")
    p.add_argument("--full", action="store_true", help="a full sync (default: incremental)")
    p.add_argument("--resources", help="comma-separated catalog resources (default: every one whose policy is sync)")
    p.add_argument("--wait", action="store_true", help="follow the sync jobs until they end (exit 1 if one fails)")
    p.add_argument("--json", action="store_true", help="print a JSON document on stdout (progress goes to stderr)")
    p.add_argument("--interval", type=float, default=None,
                   help="seconds between progress redraws (terminal; default 1) or lines (otherwise; default 5)")
    p.add_argument("--timeout", type=float, default=None, help="stop following after this many seconds (exit 1)")


# --- the store ----------------------------------------------------------------------------------------------

async def resolve_store(db: Database, spec: str) -> dict[str, Any]:
    """The store named by an id or ``platform:shop_key``. Several stores of one shop (in different
    organizations) are ambiguous unless exactly one of them is active."""
    try:
        store_id: UUID | None = UUID(spec)
    except ValueError:
        store_id = None
    if store_id is None:
        platform, colon, shop_key = spec.partition(":")
        if not colon or not shop_key or not _PLATFORM.match(platform):
            raise ShopsyncError(f"STORE must be a store id or platform:shop_key, not {spec!r}")
        found = await stores.stores_of_shop(db, platform=platform, shop_key=shop_key)
        if len(found) > 1:
            active = [s for s in found if s["status"] == "active"]
            if len(active) != 1:
                listed = ", ".join(f"{s['store_id']} ({s['status']})" for s in found)
                raise ShopsyncError(f"{spec} is ambiguous: {len(found)} stores ({listed}); pass a store id")
            found = active
        if not found:
            raise ShopsyncError(f"unknown store {spec}")
        store_id = UUID(str(found[0]["store_id"]))
    store = await stores.get_store(db, store_id=store_id)
    if store is None:
        raise ShopsyncError(f"unknown store {spec}")
    return store


def store_label(store: Mapping[str, Any]) -> str:
    return f"{store['platform']}:{store['shop_key']}"


# --- one job's progress -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobProgress:
    """One poll's view of a sync job (a row of ``sync_progress``)."""

    job_id: int
    resource: str
    state: str                 # the job's: queued, running, succeeded, dead, cancelled; "gone" if deleted
    mode: str | None           # the job's requested mode (an existing job may differ from ours)
    attempts: int
    max_attempts: int
    run_at: datetime | None
    last_error: str | None
    result: Mapping[str, Any]
    started_at: datetime | None
    ended_at: datetime | None
    observed_at: datetime | None
    created: int
    updated: int
    deleted: int
    failed: int
    run_error: str | None
    record_errors: Sequence[Mapping[str, Any]]
    store_status: str | None
    store_status_reason: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobProgress:
        result = row.get("result")
        return cls(job_id=int(row["job_id"]), resource=str(row.get("resource") or "-"), state=str(row["state"]),
                   mode=row.get("job_mode"), attempts=int(row["attempts"]), max_attempts=int(row["max_attempts"]),
                   run_at=as_datetime(row.get("run_at")), last_error=row.get("last_error"),
                   result=result if isinstance(result, Mapping) else {},
                   started_at=as_datetime(row.get("started_at")),
                   ended_at=as_datetime(row.get("run_finished_at")) or as_datetime(row.get("finished_at")),
                   observed_at=as_datetime(row.get("observed_at")),
                   created=int(row.get("created_count") or 0), updated=int(row.get("updated_count") or 0),
                   deleted=int(row.get("deleted_count") or 0), failed=int(row.get("failed_count") or 0),
                   run_error=row.get("run_error"), record_errors=list(row.get("record_errors") or []),
                   store_status=row.get("store_status"), store_status_reason=row.get("store_status_reason"))

    @classmethod
    def gone(cls, job_id: int) -> JobProgress:
        return cls(job_id, "-", "gone", None, 0, 0, None, "the job no longer exists", {}, None, None, None,
                   0, 0, 0, 0, None, [], None, None)

    @property
    def ended(self) -> bool:
        return self.state in _ENDED

    @property
    def phase(self) -> str:
        return "retrying" if self.state == "queued" and self.attempts > 0 else self.state

    @property
    def written(self) -> int:
        return self.created + self.updated + self.deleted

    @property
    def unchanged(self) -> int | None:
        skipped = self.result.get("skipped")
        return skipped if isinstance(skipped, int) else None

    @property
    def seconds(self) -> float | None:
        """How long its runs have taken so far (to the end of the last one once the job ended)."""
        end = self.ended_at if self.ended and self.ended_at is not None else self.observed_at
        if self.started_at is None or end is None:
            return None
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def rate(self) -> float | None:
        seconds = self.seconds
        return self.written / seconds if seconds else None

    @property
    def error(self) -> str | None:
        """Why it did not succeed (or why it is being retried), in one line."""
        if self.state == "succeeded":
            return None
        if self.state == "cancelled" and self.store_status not in (None, "active"):
            reason = f": {self.store_status_reason}" if self.store_status_reason else ""
            return f"store is {self.store_status}{reason}"
        text = self.last_error or self.run_error
        if self.state == "cancelled":
            return text or "cancelled"
        return " ".join(text.split()) if text else None

    def note(self) -> str:
        """What the table's NOTE column and the end of a plain line say."""
        parts = []
        if self.phase == "retrying":
            when = f"; next try {self.run_at:%H:%M:%S}" if self.run_at is not None else ""
            parts.append(f"attempt {self.attempts} of {self.max_attempts} failed: {self.error}{when}")
        elif self.error:
            parts.append(f"error: {self.error}")
        if isinstance(self.result.get("skipped"), str):
            parts.append(f"skipped: {self.result['skipped']}")
        if self.record_errors:
            first = self.record_errors[0]
            parts.append(f"first failed record {first.get('id')}: {first.get('error')}")
        return " ".join("; ".join(parts).split())     # one line, whatever the errors held

    def line(self) -> str:
        """A plain line: ``products: running — 120 written, 0 failed, 40.1 records/s``."""
        if self.phase == "queued":
            return f"{self.resource}: queued (job {self.job_id})"
        text = f"{self.resource}: {self.phase} — {self.written:,} written"
        if self.ended and self.written:
            text += f" ({self.created:,} new, {self.updated:,} updated, {self.deleted:,} deleted)"
        if self.unchanged:
            text += f", {self.unchanged:,} unchanged"
        text += f", {self.failed:,} failed"
        if self.rate is not None:
            text += f", {self.rate:,.1f} records/s"
        if self.ended and self.seconds is not None:
            text += f" in {self.seconds:.1f} s"
        note = self.note()
        return f"{text}; {note}" if note else text

    def change_key(self) -> tuple[Any, ...]:
        """What makes a new plain line worth printing (the rate alone does not)."""
        return self.phase, self.written, self.failed, self.attempts, self.note()

    def as_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "resource": self.resource, "state": self.state, "mode": self.mode,
                "attempts": self.attempts, "max_attempts": self.max_attempts, "written": self.written,
                "created": self.created, "updated": self.updated, "deleted": self.deleted, "failed": self.failed,
                "unchanged": self.unchanged, "records_per_second": round(self.rate, 2) if self.rate else None,
                "started_at": self.started_at, "finished_at": self.ended_at if self.ended else None,
                "seconds": round(self.seconds, 3) if self.seconds is not None else None, "error": self.error,
                "record_errors": list(self.record_errors)}


# --- displays -------------------------------------------------------------------------------------------------

class LineDisplay:
    """Not a terminal: a line per change of a job, at most every ``every`` seconds per job."""

    def __init__(self, stream: TextIO, every: float) -> None:
        self.stream, self.every = stream, every
        self.shown: dict[int, tuple[tuple[Any, ...], str, float]] = {}

    def update(self, jobs: Sequence[JobProgress], _elapsed: float) -> None:
        now = time.monotonic()
        for job in jobs:
            key = job.change_key()
            last = self.shown.get(job.job_id)
            if last is not None and (last[0] == key or (now - last[2] < self.every and last[1] == job.phase)):
                continue
            self.stream.write(job.line() + "\n")
            self.shown[job.job_id] = (key, job.phase, now)
        self.stream.flush()

    def notice(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class TerminalDisplay:
    """A terminal: a table redrawn in place (cursor up, clear line), each line cut to the terminal's width."""

    def __init__(self, stream: TextIO, title: str) -> None:
        self.stream, self.title, self.drawn = stream, title, 0
        self.status = ""
        self.last: tuple[Sequence[JobProgress], float] = ([], 0.0)

    def notice(self, text: str) -> None:
        """Shown after the title until the next notice (an empty one clears it), redrawn at once."""
        self.status = text
        self.update(*self.last)

    def update(self, jobs: Sequence[JobProgress], elapsed: float) -> None:
        self.last = (jobs, elapsed)
        width = max(40, shutil.get_terminal_size((100, 24)).columns - 1)
        rows = [["RESOURCE", "STATE", "WRITTEN", "FAILED", "RATE", "NOTE"]]
        for job in jobs:
            rate = f"{job.rate:,.1f}/s" if job.rate is not None else "-"
            rows.append([job.resource, job.phase, f"{job.written:,}", f"{job.failed:,}", rate, job.note()])
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [f"{self.title}  {elapsed:.0f}s" + (f"  — {self.status}" if self.status else "")]
        for r in rows:
            cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])] + [r[i].rjust(widths[i]) for i in (2, 3, 4)]
            lines.append("  ".join([*cells, r[5]]).rstrip())
        out = f"\x1b[{self.drawn}F" if self.drawn else ""
        out += "".join(f"\x1b[2K{line[:width]}\n" for line in lines)
        self.stream.write(out)
        self.stream.flush()
        self.drawn = len(lines)

    def close(self) -> None:
        pass


Display = LineDisplay | TerminalDisplay


def make_display(stream: TextIO, title: str, interval: float | None) -> tuple[Display, float]:
    """The display for ``stream`` and how often to read progress."""
    if stream.isatty() and os.environ.get("TERM") != "dumb":
        every = interval or 1.0
        return TerminalDisplay(stream, title), every
    every = interval or 5.0
    return LineDisplay(stream, every), min(every, _POLL_SECONDS)


# --- following --------------------------------------------------------------------------------------------

async def poll(db: Database, job_ids: Sequence[int]) -> list[JobProgress]:
    rows = {int(r["job_id"]): JobProgress.from_row(r) for r in await syncs.sync_progress(db, job_ids=job_ids)}
    return [rows.get(i) or JobProgress.gone(i) for i in job_ids]


async def follow(db: Database, jobs: list[JobProgress], display: Display, every: float,
                 timeout: float | None) -> tuple[list[JobProgress], bool]:
    """Poll ``jobs`` until each one ended (or ``timeout``): the last view, and whether it timed out. A database
    that stops answering while we follow is waited for (the jobs go on in the workers, which wait for it too):
    the display says so and keeps its last state; ``--timeout`` bounds the wait."""
    started = time.monotonic()
    job_ids = [j.job_id for j in jobs]
    down_since: float | None = None
    while True:
        try:
            jobs = await poll(db, job_ids)
        except DatabaseError as exc:
            if not exc.outage:
                raise
            if down_since is None:
                down_since = time.monotonic()
                display.notice("database unavailable; waiting for it (the sync jobs go on; Ctrl-C stops following)")
        else:
            if down_since is not None:
                down_since = None
                display.notice("database available again" if isinstance(display, LineDisplay) else "")
            display.update(jobs, time.monotonic() - started)
            if all(j.ended for j in jobs):
                return jobs, False
        if timeout is not None and time.monotonic() - started >= timeout:
            return jobs, True
        await asyncio.sleep(every)


def summary_text(label: str, jobs: Sequence[JobProgress], timed_out: bool, seconds: float) -> str:
    written = sum(j.written for j in jobs)
    failed = sum(j.failed for j in jobs)
    records = f"{written:,} records written, {failed:,} failed"
    if all(j.state == "succeeded" for j in jobs):
        return f"{label}: {len(jobs)} sync job(s) succeeded — {records} in {seconds:.1f} s"
    if timed_out:
        waiting = sum(not j.ended for j in jobs)
        return f"{label}: stopped following after {seconds:.0f} s with {waiting} job(s) unfinished — {records}"
    states = {s: sum(j.state == s for j in jobs) for s in _ENDED if s != "succeeded"}
    what = ", ".join(f"{n} {s}" for s, n in states.items() if n)
    first = next((j for j in jobs if j.error and j.state != "succeeded"), None)
    why = f"; {first.resource}: {first.error}" if first is not None else ""
    return f"{label}: sync failed ({what} of {len(jobs)} job(s)) — {records}{why}"


def summary_json(store: Mapping[str, Any], mode: str, jobs: Sequence[JobProgress], timed_out: bool | None,
                 seconds: float | None) -> dict[str, Any]:
    status = next((j.store_status for j in jobs if j.store_status), None) or store.get("status")
    doc: dict[str, Any] = {
        "store": {"id": store["id"], "platform": store["platform"], "shop_key": store["shop_key"], "status": status},
        "mode": mode, "jobs": [j.as_json() for j in jobs]}
    if timed_out is not None:
        doc.update(ok=all(j.state == "succeeded" for j in jobs), timed_out=timed_out,
                   seconds=round(seconds or 0.0, 3),
                   totals={k: sum(int(getattr(j, k)) for j in jobs)
                           for k in ("written", "created", "updated", "deleted", "failed")})
    return doc


# --- the command ------------------------------------------------------------------------------------------

def parse_resources(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [r.strip() for r in text.split(",") if r.strip()]
    if not names:
        raise ShopsyncError("--resources names no resource (e.g. --resources products,orders)")
    return names


async def run_sync(db: Database, args: argparse.Namespace) -> int:
    resources = parse_resources(args.resources)
    if args.interval is not None and args.interval <= 0:
        raise ShopsyncError("--interval must be a positive number of seconds")
    store = await resolve_store(db, args.store)
    label = store_label(store)
    mode = "full" if args.full else "incremental"
    job_ids = await syncs.request_sync(db, store_id=store["id"], resources=resources, mode=mode, reason="cli",
                                       priority=50)
    out = sys.stdout
    progress_stream = sys.stderr if args.json else sys.stdout
    if not job_ids:
        if args.json:
            print_json(summary_json(store, mode, [], False if args.wait else None, 0.0))
        else:
            print(f"{label}: nothing to sync (no requested resource's access policy is 'sync')", file=out)
        return 0
    jobs = await poll(db, job_ids)
    if not args.wait:
        if args.json:
            print_json(summary_json(store, mode, jobs, None, None))
        else:
            print(f"{label}: {mode} sync enqueued (store {store['id']}): "
                  + ", ".join(_enqueued(j, mode) for j in jobs))
        return 0
    print(f"{label}: following {mode} sync of store {store['id']}: " + ", ".join(_enqueued(j, mode) for j in jobs),
          file=progress_stream, flush=True)
    display, every = make_display(progress_stream, f"{label}  {mode} sync", args.interval)
    # the display reports a database outage itself; the pool's warnings (printed by logging's last-resort
    # handler, the CLI configures none) would only break its redraw
    logging.getLogger("worker.db").setLevel(logging.ERROR)
    started = time.monotonic()
    jobs, timed_out = await follow(db, jobs, display, every, args.timeout)
    seconds = time.monotonic() - started
    display.close()
    print(summary_text(label, jobs, timed_out, seconds), file=progress_stream, flush=True)
    if args.json:
        print_json(summary_json(store, mode, jobs, timed_out, seconds))
    return 0 if not timed_out and all(j.state == "succeeded" for j in jobs) else 1


def _enqueued(job: JobProgress, mode: str) -> str:
    other = f", {job.mode} sync already {job.state}" if job.mode and job.mode != mode else ""
    return f"{job.resource} (job {job.job_id}{other})"
