"""Prometheus text exposition (format 0.0.4), written by hand to avoid a client-library dependency.

Queue facts come from one ``shopsync.queue_metrics`` call per scrape, so every web replica reports
the same database-wide numbers; the request counters are this process's own and reset on restart
(Prometheus' ``rate()`` copes with that).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from worker import payloads

__all__ = ["CONTENT_TYPE", "JOB_STATES", "WEBHOOK_OUTCOMES", "WebMetrics", "escape_label_value"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Every state of shopsync.jobs: each kind seen reports all of them, so a state dropping to zero
# shows as 0 rather than vanishing (alerts on absent series are easy to get wrong).
JOB_STATES = ("queued", "running", "succeeded", "dead", "cancelled")

# The outcomes connectors report for webhook requests; others are accepted but these are the vocabulary.
WEBHOOK_OUTCOMES = ("accepted", "duplicate", "rejected_signature", "rejected_unknown_shop", "bad_request")

_QUANTILES = (("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99"))


def escape_label_value(value: str) -> str:
    """Backslash, double quote and newline are the only characters the format escapes in label values."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: Any) -> str:
    if value is None:
        return "NaN"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    number = float(value) if isinstance(value, Decimal | str) else value
    if not isinstance(number, float):
        raise TypeError(f"not a metric value: {type(value).__name__}")
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number)


def _labels(pairs: Sequence[tuple[str, Any]]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{name}="{escape_label_value(str(value))}"' for name, value in pairs) + "}"


class _Family:
    """One metric family: HELP, TYPE, then its samples."""

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.lines = [f"# HELP {name} {_escape_help(help_text)}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, labels: Sequence[tuple[str, Any]], value: Any) -> None:
        self.lines.append(f"{name}{_labels(labels)} {_number(value)}")


def _rows(queue_metrics: Mapping[str, Any], key: str) -> Iterable[Mapping[str, Any]]:
    rows = queue_metrics.get(key) or []
    return [r for r in rows if isinstance(r, Mapping)]


class WebMetrics:
    """Counters this web process keeps, plus rendering of the whole /metrics page.

    Increments take a lock so sync endpoints running in Starlette's thread pool are safe too; on the
    event loop itself the lock is never contended.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._webhooks: Counter[tuple[str, str]] = Counter()
        self._http: Counter[tuple[str, str]] = Counter()

    def webhook(self, platform: str, outcome: str) -> None:
        """Count one webhook request; ``outcome`` is normally one of ``WEBHOOK_OUTCOMES``."""
        with self._lock:
            self._webhooks[(platform, outcome)] += 1

    def http(self, route: str, status: int | str) -> None:
        """Count one HTTP response; ``route`` is a route template (bounded), never a raw path."""
        with self._lock:
            self._http[(route, str(status))] += 1

    def webhook_count(self, platform: str, outcome: str) -> int:
        with self._lock:
            return self._webhooks[(platform, outcome)]

    def http_count(self, route: str, status: int | str) -> int:
        with self._lock:
            return self._http[(route, str(status))]

    def render(self, queue_metrics: Mapping[str, Any] | None) -> str:
        """The full exposition text. ``queue_metrics`` is ``shopsync.queue_metrics()``'s result, or
        None when the database could not be read: then only this process's counters are reported and
        ``shopsync_queue_metrics_up`` is 0."""
        families: list[_Family] = []
        up = _Family("shopsync_queue_metrics_up", "gauge",
                     "1 if this scrape read queue metrics from the database, 0 if that failed.")
        up.sample("shopsync_queue_metrics_up", (), 0 if queue_metrics is None else 1)
        families.append(up)
        if queue_metrics is not None:
            families.extend(self._queue_families(queue_metrics))
        with self._lock:
            webhooks = sorted(self._webhooks.items())
            http = sorted(self._http.items())
        wh = _Family("shopsync_webhook_requests_total", "counter",
                     "Webhook requests received by this web process since it started, by platform and outcome.")
        for (platform, outcome), n in webhooks:
            wh.sample("shopsync_webhook_requests_total", (("platform", platform), ("outcome", outcome)), n)
        families.append(wh)
        req = _Family("shopsync_http_requests_total", "counter",
                      "HTTP responses sent by this web process since it started, by route template and status.")
        for (route, status), n in http:
            req.sample("shopsync_http_requests_total", (("route", route), ("status", status)), n)
        families.append(req)
        nul = _Family("shopsync_nul_characters_stripped_total", "counter",
                      "NUL characters removed from JSON this process received (PostgreSQL cannot store them).")
        nul.sample("shopsync_nul_characters_stripped_total", (), payloads.stripped_total())
        families.append(nul)
        return "\n".join(line for f in families for line in f.lines) + "\n"

    @staticmethod
    def _queue_families(qm: Mapping[str, Any]) -> list[_Family]:
        window = qm.get("window_seconds")
        jobs = _Family("shopsync_jobs", "gauge", "Jobs in shopsync.jobs by state and kind.")
        counts: dict[tuple[str, str], Any] = {}
        for row in _rows(qm, "jobs"):
            counts[(str(row.get("kind")), str(row.get("state")))] = row.get("count", 0)
        for kind in sorted({k for k, _ in counts}):
            states = list(JOB_STATES) + sorted({s for k, s in counts if k == kind} - set(JOB_STATES))
            for state in states:
                jobs.sample("shopsync_jobs", (("state", state), ("kind", kind)), counts.get((kind, state), 0))

        name = "shopsync_job_duration_seconds"
        durations = _Family(name, "summary",
                            f"Run time (started to finished) of jobs that succeeded or died in the last "
                            f"{window} seconds, by kind; quantiles, _sum and _count cover that window only, "
                            f"they are not cumulative.")
        for row in sorted(_rows(qm, "durations"), key=lambda r: str(r.get("kind"))):
            kind = str(row.get("kind"))
            for quantile, key in _QUANTILES:
                durations.sample(name, (("kind", kind), ("quantile", quantile)), row.get(key))
            durations.sample(f"{name}_sum", (("kind", kind),), row.get("sum") or 0)
            durations.sample(f"{name}_count", (("kind", kind),), row.get("count") or 0)

        inbox = _Family("shopsync_webhook_inbox", "gauge", "Rows in shopsync.webhook_inbox by platform and status.")
        for row in sorted(_rows(qm, "webhooks"), key=lambda r: (str(r.get("platform")), str(r.get("status")))):
            inbox.sample("shopsync_webhook_inbox", (("platform", row.get("platform")), ("status", row.get("status"))),
                         row.get("count", 0))

        oldest = _Family("shopsync_queue_oldest_job_age_seconds", "gauge",
                         "Seconds the oldest due queued job has waited (0 when none is waiting).")
        oldest.sample("shopsync_queue_oldest_job_age_seconds", (), qm.get("oldest_queued_seconds") or 0)
        lag = _Family("shopsync_schedule_lag_seconds", "gauge",
                      "Seconds the most overdue store's scheduled sync is past its time (0 when none is): "
                      "if it keeps growing, enqueue_due_syncs is not keeping up.")
        lag.sample("shopsync_schedule_lag_seconds", (), qm.get("schedule_lag_seconds") or 0)
        return [jobs, durations, inbox, oldest, lag]
