"""How ``shopsync sync --wait`` shows its jobs: one job's progress as ``sync_progress`` reports it (records
written, rate, errors, in one line), and the two displays — a table redrawn in place on a terminal, plain
lines otherwise (a pipe, a CI log, ``TERM=dumb``)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from worker.db.values import as_datetime

__all__ = ["ENDED", "Display", "JobProgress", "LineDisplay", "TerminalDisplay", "make_display"]

ENDED = ("succeeded", "dead", "cancelled", "gone")
_POLL_SECONDS = 1.0


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
        return self.state in ENDED

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
