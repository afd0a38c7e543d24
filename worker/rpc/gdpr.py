"""Privacy requests (``sql/functions/50_gdpr.sql``): recorded by connectors, run by ``gdpr.process``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import SqlFunction, sql

__all__ = ["OPERATIONS", "finish_gdpr_request", "record_gdpr_request", "run_gdpr_operation", "start_gdpr_request"]

_RECORD = sql("record_gdpr_request", "setof", p_platform="text", p_store_id="uuid", p_request_type="text",
              p_platform_request_id="text", p_subject="jsonb")
_START = sql("start_gdpr_request", "setof", p_request_id="bigint", p_job_id="bigint", p_worker="text")
_FINISH = sql("finish_gdpr_request", "text", p_request_id="bigint", p_status="text", p_error="text",
              p_result="jsonb", p_job_id="bigint", p_worker="text")
# request type → the operation that carries it out (one SQL call, one transaction)
OPERATIONS: Mapping[str, SqlFunction] = {
    request_type: sql(f"gdpr_{request_type}", "jsonb", p_request_id="bigint", p_job_id="bigint", p_worker="text")
    for request_type in ("data_request", "customer_redact", "shop_redact")}


async def record_gdpr_request(db: Database, *, platform: str, store_id: UUID | str, request_type: str,
                              platform_request_id: str | None = None,
                              subject: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``request_id`` and ``duplicate``; the request's ``gdpr.process`` job is enqueued."""
    rows = await _RECORD.rows(db, p_platform=platform, p_store_id=store_id, p_request_type=request_type,
                              p_platform_request_id=platform_request_id, p_subject=dict(subject or {}))
    return rows[0]


async def start_gdpr_request(db: Database, *, request_id: int, job_id: int, worker: str) -> dict[str, Any]:
    """``request_type``, ``status``, ``store_id``, ``organization_id``, ``platform`` (never the subject)."""
    rows = await _START.rows(db, p_request_id=request_id, p_job_id=job_id, p_worker=worker)
    return rows[0]


async def run_gdpr_operation(db: Database, *, request_type: str, request_id: int, job_id: int,
                             worker: str) -> dict[str, Any]:
    """Carry out a request; its summary (counts and states, never personal data)."""
    return dict(await OPERATIONS[request_type](db, p_request_id=request_id, p_job_id=job_id, p_worker=worker))


async def finish_gdpr_request(db: Database, *, request_id: int, status: str, error: str | None, job_id: int,
                              worker: str) -> str:
    return str(await _FINISH(db, p_request_id=request_id, p_status=status, p_error=error, p_job_id=job_id,
                             p_worker=worker))
