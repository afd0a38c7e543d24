"""Periodic maintenance and the facts the web process and CLI report
(``sql/functions/80_maintenance.sql``)."""

from __future__ import annotations

from typing import Any

from worker.db.port import Database
from worker.rpc._function import as_mapping, sql

__all__ = ["applied_migrations", "queue_metrics", "run_maintenance", "runtime_features"]

_RUN = sql("run_maintenance", "jsonb", p_task="text", p_every_seconds="double precision")
_APPLIED = sql("applied_migrations", "setof")
_FEATURES = sql("runtime_features", "jsonb")
_QUEUE_METRICS = sql("queue_metrics", "jsonb", p_window_seconds="integer")


async def run_maintenance(db: Database, *, task: str, every_seconds: float) -> dict[str, Any]:
    """``{"task", "result"}``, or ``{"task", "skipped"}`` when it ran recently or runs elsewhere."""
    return dict(as_mapping(await _RUN(db, p_task=task, p_every_seconds=every_seconds)))


async def applied_migrations(db: Database) -> dict[str, str]:
    """Migration file name → checksum, as recorded when it was applied."""
    return {str(r["name"]): str(r["checksum"]) for r in await _APPLIED.rows(db)}


async def runtime_features(db: Database) -> dict[str, Any]:
    """Which optional pieces the database has (pg_cron and its schedules, pg_net, Realtime broadcast)."""
    return dict(as_mapping(await _FEATURES(db)))


async def queue_metrics(db: Database, *, window_seconds: int) -> dict[str, Any]:
    return dict(as_mapping(await _QUEUE_METRICS(db, p_window_seconds=window_seconds)))
