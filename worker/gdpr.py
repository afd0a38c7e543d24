"""Privacy requests (GDPR and the like): the platform-independent ``gdpr.process`` job.

A connector's compliance webhook records the request with ``shopsync.record_gdpr_request``, which
enqueues this job with ``{"request_id": id}`` only. The handler marks the request ``processing`` and
runs its operation (``gdpr_data_request``, ``gdpr_customer_redact`` or ``gdpr_shop_redact``): one SQL
call, one transaction, which re-checks the job's lease, does the work and records the outcome. The
export and the subject's identifiers stay in the database; the job's result holds counts only (jobs
are readable by every member of the organization, requests by owners and admins only).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from worker.errors import DatabaseError, JobError, PermanentError, RetryableError
from worker.jobs.registry import Job, JobContext, JobRegistry
from worker.logs import redact_text
from worker.rpc import gdpr, stores
from worker.rpc.gdpr import OPERATIONS

__all__ = ["JOB_KIND", "PURGE_KIND", "REQUEST_TYPES", "gdpr_handler", "register_jobs"]

log = logging.getLogger("shopsync.gdpr")

JOB_KIND = "gdpr.process"
PURGE_KIND = "store.purge_uninstalled"
REQUEST_TYPES = tuple(OPERATIONS)

# Bad input or an unknown request: retrying the same call cannot succeed.
_PERMANENT_SQLSTATES = frozenset({"P0002", "22023", "22P02", "23502", "23514", "42501", "42883"})


def _request_id(job: Job) -> int:
    value = job.payload.get("request_id")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PermanentError("a gdpr.process job needs an integer payload.request_id")
    try:
        return int(value)
    except ValueError:
        raise PermanentError("a gdpr.process job needs an integer payload.request_id") from None


def _job_error(exc: BaseException) -> JobError:
    """The JobError that decides the job's fate, with a message safe to store."""
    if isinstance(exc, JobError):
        return exc
    message = redact_text(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, DatabaseError) and exc.sqlstate in _PERMANENT_SQLSTATES:
        return PermanentError(message)
    # 55000 (lease lost) included: whoever holds the job now runs it; the database said no for now
    return RetryableError(message)


async def gdpr_handler(job: Job, ctx: JobContext) -> Mapping[str, Any]:
    """Run one privacy request. Returns ``{request_id, request_type, status, counts, already_completed}``."""
    request_id = _request_id(job)
    db = ctx.db
    started = False
    try:
        info = await gdpr.start_gdpr_request(db, request_id=request_id, job_id=job.id, worker=ctx.worker_id)
        started = True
        request_type = str(info["request_type"])
        if request_type not in REQUEST_TYPES:
            raise PermanentError(f"gdpr request {request_id} has unknown type {request_type!r}")
        summary = await gdpr.run_gdpr_operation(db, request_type=request_type, request_id=request_id, job_id=job.id,
                                                worker=ctx.worker_id)
    except asyncio.CancelledError:
        raise                         # lost lease or shutdown: the next holder runs it again
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the request, then re-raised
        error = _job_error(exc)
        if started:
            await _record_failure(ctx, job, request_id, str(error))
        raise error from None
    log.info("gdpr request %s (%s) %s", request_id, request_type, summary.get("status"),
             extra={"job_id": job.id, "request_id": request_id, "request_type": request_type})
    return summary


async def _record_failure(ctx: JobContext, job: Job, request_id: int, message: str) -> None:
    try:
        await asyncio.shield(gdpr.finish_gdpr_request(ctx.db, request_id=request_id, status="failed", error=message,
                                                      job_id=job.id, worker=ctx.worker_id))
    except Exception as exc:  # noqa: BLE001 - the original error matters more
        # typically the lease was lost too: the next attempt records its own outcome
        log.warning("could not record the failure of gdpr request %s (%s)", request_id, type(exc).__name__)


async def purge_uninstalled_handler(job: Job, ctx: JobContext) -> Mapping[str, Any]:
    """``store.purge_uninstalled`` (enqueued by ``uninstall_shop`` with a delay): a store still uninstalled
    when the grace period ends has all its data deleted, as a recorded shop_redact request."""
    if job.store_id is None:
        return {"skipped": "the store is gone already"}
    store = await stores.get_store(ctx.db, store_id=job.store_id)
    if store is None:
        return {"skipped": "the store is gone already"}
    if store["status"] != "uninstalled":
        return {"skipped": f"the store is {store['status']} again"}
    recorded = await gdpr.record_gdpr_request(
        ctx.db, platform=store["platform"], store_id=job.store_id, request_type="shop_redact",
        platform_request_id=f"uninstall:{job.store_id}:{job.payload.get('uninstalled_at')}")
    return {"shop_redact_request": recorded["request_id"]}


def register_jobs(registry: JobRegistry) -> None:
    """Register the ``gdpr.process`` handler (platform-independent; connectors only record requests) and
    the delayed deletion of uninstalled stores' data."""
    registry.register(JOB_KIND, gdpr_handler)
    registry.register(PURGE_KIND, purge_uninstalled_handler)
