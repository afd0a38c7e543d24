"""``shopsync sync STORE``: enqueue a store's sync through ``request_sync`` and, with ``--wait``, follow its
jobs until each one ends, showing per resource the records written so far, the rate and the errors.

Progress comes from ``sync_progress`` (one call per poll): the jobs, and the counts the sync engine saves
on its runs after each checkpoint; ``worker.cli_progress`` shows it (a table redrawn in place on a terminal,
plain lines otherwise). With ``--json`` stdout carries only the JSON document and progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from worker.cli_json import print_json
from worker.cli_progress import ENDED, Display, JobProgress, LineDisplay, make_display
from worker.db.port import Database
from worker.errors import DatabaseError, ShopsyncError
from worker.rpc import stores, syncs

__all__ = ["add_sync_parser", "follow", "resolve_store", "run_sync"]

_PLATFORM = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


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
    states = {s: sum(j.state == s for j in jobs) for s in ENDED if s != "succeeded"}
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
