"""``GET /metrics`` of the web process (Prometheus text format, through prometheus_client).

Three parts: this process's own request counters and durations (``WebMetrics``, one registry per app),
the process-wide metrics of ``worker.metrics`` (platform API calls, NUL stripped; cumulative), and
database-wide queue gauges read once per scrape from ``shopsync.queue_metrics`` — the same on every web
replica. Job run times are the worker's histogram (``shopsync_job_duration_seconds`` on the worker's
``SHOPSYNC_METRICS_PORT``), cumulative as ``rate()`` expects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "JOB_STATES", "WEBHOOK_OUTCOMES", "WebMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Every state of shopsync.jobs: each kind seen reports all of them, so a state dropping to zero
# shows as 0 rather than vanishing (alerts on absent series are easy to get wrong).
JOB_STATES = ("queued", "running", "succeeded", "dead", "cancelled")

# The outcomes the core's webhook endpoint reports; connectors' own routes may add others.
WEBHOOK_OUTCOMES = ("accepted", "duplicate", "rejected", "answered", "ignored", "unknown_shop")

REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _rows(queue_metrics: Mapping[str, Any], key: str) -> Iterable[Mapping[str, Any]]:
    rows = queue_metrics.get(key) or []
    return [r for r in rows if isinstance(r, Mapping)]


class _QueueGauges(Collector):
    """The database-wide queue facts of one scrape (``queue_metrics``' result, None when unreadable)."""

    def __init__(self, qm: Mapping[str, Any] | None) -> None:
        self.qm = qm

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("shopsync_queue_metrics_up", "1 if this scrape read queue metrics from the "
                               "database, 0 if that failed.")
        up.add_metric([], 0 if self.qm is None else 1)
        yield up
        if self.qm is None:
            return
        qm = self.qm
        jobs = GaugeMetricFamily("shopsync_jobs", "Jobs in shopsync.jobs by state and kind.", labels=["state", "kind"])
        counts = {(str(r.get("kind")), str(r.get("state"))): r.get("count", 0) for r in _rows(qm, "jobs")}
        for kind in sorted({k for k, _ in counts}):
            for state in list(JOB_STATES) + sorted({s for k, s in counts if k == kind} - set(JOB_STATES)):
                jobs.add_metric([state, kind], float(counts.get((kind, state), 0)))
        yield jobs
        inbox = GaugeMetricFamily("shopsync_webhook_inbox", "Rows in shopsync.webhook_inbox by platform and status.",
                                  labels=["platform", "status"])
        for row in sorted(_rows(qm, "webhooks"), key=lambda r: (str(r.get("platform")), str(r.get("status")))):
            inbox.add_metric([str(row.get("platform")), str(row.get("status"))], float(row.get("count", 0)))
        yield inbox
        yield GaugeMetricFamily("shopsync_queue_oldest_job_age_seconds", "Seconds the oldest due queued job has "
                                "waited (0 when none is waiting).", value=float(qm.get("oldest_queued_seconds") or 0))
        yield GaugeMetricFamily("shopsync_schedule_lag_seconds", "Seconds the most overdue store's scheduled sync "
                                "is past its time (0 when none is): if it keeps growing, enqueue_due_syncs is "
                                "not keeping up.", value=float(qm.get("schedule_lag_seconds") or 0))


class WebMetrics:
    """This web process's request counters; ``render`` writes the whole /metrics page."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._webhooks = Counter("shopsync_webhook_requests", "Webhook requests received by this web process, by "
                                 "platform and outcome.", ["platform", "outcome"], registry=self.registry)
        self._http = Counter("shopsync_http_requests", "HTTP responses sent by this web process, by route template "
                             "and status.", ["route", "status"], registry=self.registry)
        self._duration = Histogram("shopsync_http_request_duration_seconds", "Time from a request's arrival to the "
                                   "end of its answer, by route template.", ["route"], buckets=REQUEST_BUCKETS,
                                   registry=self.registry)

    def webhook(self, platform: str, outcome: str) -> None:
        """Count one webhook request; ``outcome`` is normally one of ``WEBHOOK_OUTCOMES``."""
        self._webhooks.labels(platform, outcome).inc()

    def http(self, route: str, status: int | str, seconds: float | None = None) -> None:
        """Count one HTTP response; ``route`` is a route template (bounded), never a raw path."""
        self._http.labels(route, str(status)).inc()
        if seconds is not None:
            self._duration.labels(route).observe(seconds)

    def webhook_count(self, platform: str, outcome: str) -> int:
        return int(self.registry.get_sample_value("shopsync_webhook_requests_total",
                                                  {"platform": platform, "outcome": outcome}) or 0)

    def http_count(self, route: str, status: int | str) -> int:
        return int(self.registry.get_sample_value("shopsync_http_requests_total",
                                                  {"route": route, "status": str(status)}) or 0)

    def render(self, queue_metrics: Mapping[str, Any] | None) -> bytes:
        """The page: this app's counters, the process-wide metrics, then the queue gauges of this scrape."""
        scrape = CollectorRegistry()
        scrape.register(_QueueGauges(queue_metrics))
        return generate_latest(self.registry) + generate_latest(REGISTRY) + generate_latest(scrape)
