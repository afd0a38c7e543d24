"""This process's Prometheus metrics (prometheus_client: cumulative, as ``rate()`` expects), shared by the
worker and the web process: jobs finished and their run times (the worker), requests to platform APIs
and their throttles (whoever calls a platform), NUL characters stripped from JSON that arrived.

The web process serves them, with its own request counters and the database-wide queue gauges, on
``GET /metrics``; a worker serves them on ``SHOPSYNC_METRICS_PORT`` when that is set (``serve_metrics``).
"""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY, Counter, Histogram, disable_created_metrics, start_http_server

__all__ = ["JOBS", "JOB_DURATION", "NUL_STRIPPED", "PLATFORM_REQUESTS", "platform_request", "serve_metrics"]

log = logging.getLogger("shopsync.metrics")

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: not needed, they double the page

JOBS = Counter("shopsync_jobs_finished", "Jobs this worker finished, by kind and outcome "
               "(succeeded, retried, dead, released, lost).", ["kind", "outcome"])
JOB_DURATION = Histogram("shopsync_job_duration_seconds", "Run time of jobs this worker finished, by kind "
                         "(claim to outcome).", ["kind"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600))
PLATFORM_REQUESTS = Counter("shopsync_platform_requests", "Requests to platform APIs by platform and outcome: ok, "
                            "throttled (429 / THROTTLED: the caller waits and retries), server_error, "
                            "network_error, refused (401/403), client_error.", ["platform", "outcome"])
NUL_STRIPPED = Counter("shopsync_nul_characters_stripped", "NUL characters removed from JSON this process received "
                       "(PostgreSQL cannot store them).")


def platform_request(platform: str, status: int | None) -> None:
    """Count one answer from (or failure to reach, ``status`` None) a platform's API."""
    if status is None:
        outcome = "network_error"
    elif status == 429:
        outcome = "throttled"
    elif status >= 500:
        outcome = "server_error"
    elif status in (401, 403):
        outcome = "refused"
    elif status >= 400:
        outcome = "client_error"
    else:
        outcome = "ok"
    PLATFORM_REQUESTS.labels(platform, outcome).inc()


def serve_metrics(port: int, host: str) -> None:
    """Serve this process's metrics on ``host:port`` (a worker; the web process has ``/metrics``)."""
    start_http_server(port, addr=host, registry=REGISTRY)
    log.info("metrics on http://%s:%d/metrics", host, port)
