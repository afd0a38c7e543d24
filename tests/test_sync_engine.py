"""The shared sync driver with a small in-test source standing in for a connector's fetcher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import job_context, new_user, personal_org, set_policy
from worker.db.direct import DirectDatabase
from worker.errors import PermanentError, RetryableError
from worker.jobs.registry import Job
from worker.sync.engine import Batch, SyncContext, sync_handler

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def product(ctx: SyncContext, i: int) -> dict[str, Any]:
    return {"store_id": str(ctx.store_id), "id": str(i), "organization_id": str(ctx.organization_id),
            "title": f"P{i}", "handle": f"p{i}", "status": "ACTIVE", "vendor": None, "product_type": None,
            "tags": [], "source_created_at": T0, "source_updated_at": T0 + timedelta(minutes=i), "deleted_at": None,
            "raw": {"id": i}}


class PagedSource:
    """Three pages of products; can fail once after a given page; records what it was asked."""

    def __init__(self, fail_after_page: int | None = None) -> None:
        self.fail_after_page = fail_after_page
        self.seen: list[SyncContext] = []

    async def __call__(self, ctx: SyncContext) -> AsyncIterator[Batch]:
        self.seen.append(ctx)
        start = int((ctx.checkpoint or {}).get("next_page", 0))
        for page in range(start, 3):
            rows = [product(ctx, page * 10 + i) for i in range(10)]
            yield Batch(writes={"products": rows}, checkpoint={"next_page": page + 1},
                        high_watermark=max(r["source_updated_at"] for r in rows),
                        deletes={"products": ["gone"]} if page == 2 else {})
            if self.fail_after_page == page:
                self.fail_after_page = None
                raise RetryableError("platform answered 502")


@pytest.fixture
def store_id(conn: psycopg.Connection[Any]) -> str:
    org = personal_org(conn, new_user(conn))
    return str(conn.execute("select shopsync.upsert_store(%s, 'testplat', 'e.example') as id", (org,)).fetchone()["id"])


async def claim_sync(db: DirectDatabase, store_id: str, mode: str = "incremental") -> Job:
    await db.rpc("request_sync", {"p_store_id": store_id, "p_resources": ["products"], "p_mode": mode})
    rows = await db.rpc("claim_jobs", {"p_worker": "t", "p_limit": 1, "p_kinds": ["testplat.sync"]})
    return Job.from_row(rows[0])


async def test_full_then_incremental(db: DirectDatabase, dsn: str, conn: psycopg.Connection[Any], store_id: str) -> None:
    source = PagedSource()
    handler = sync_handler(source)
    conn.execute("insert into shopsync.products (store_id, id, organization_id, source_updated_at) "
                 "select id, 'gone', organization_id, %s from shopsync.stores", (T0,))
    first = await claim_sync(db, store_id)
    result = await handler(first, job_context(db, dsn))
    assert result["mode"] == "full"                  # no watermark yet: incremental becomes full
    assert result["inserted"] == 30 and result["deleted"] == 1
    run = conn.execute("select * from shopsync.sync_runs").fetchone()
    assert run["status"] == "succeeded" and run["created_count"] == 30 and run["deleted_count"] == 1
    store = conn.execute("select sync_status, sync_completed_at from shopsync.stores").fetchone()
    assert store["sync_status"] == "completed" and store["sync_completed_at"] is not None
    state = conn.execute("select * from shopsync.sync_state").fetchone()
    assert state["high_watermark"] == T0 + timedelta(minutes=29) and state["checkpoint"] is None
    assert state["last_full_sync_at"] is not None
    assert await db.rpc("complete_jobs", {"p_worker": "t", "p_ids": [first.id], "p_results": [result]}) == 1

    second = await handler(await claim_sync(db, store_id), job_context(db, dsn))
    assert second["mode"] == "incremental" and source.seen[-1].high_watermark == T0 + timedelta(minutes=29)
    # the same versions again, unchanged: nothing is rewritten (a tie that differs is applied: test_synced_writes)
    assert (second["updated"], second["skipped"]) == (0, 30)


async def test_a_failed_run_resumes_from_its_checkpoint(db: DirectDatabase, dsn: str, conn: psycopg.Connection[Any],
                                                        store_id: str) -> None:
    source = PagedSource(fail_after_page=1)
    handler = sync_handler(source)
    job = await claim_sync(db, store_id, "full")
    with pytest.raises(RetryableError):
        await handler(job, job_context(db, dsn))
    run = conn.execute("select status, error from shopsync.sync_runs").fetchone()
    assert run["status"] == "failed" and "502" in run["error"]
    assert conn.execute("select sync_status from shopsync.stores").fetchone()["sync_status"] == "error"
    state = conn.execute("select high_watermark, checkpoint from shopsync.sync_state").fetchone()
    assert state["checkpoint"] == {"next_page": 2, "mode": "full"} and state["high_watermark"] is None
    again = await handler(job, job_context(db, dsn))      # the retried attempt
    assert source.seen[-1].checkpoint == {"next_page": 2, "mode": "full"}
    assert again["inserted"] == 10                     # only the last page was left
    assert conn.execute("select count(*) as n from shopsync.products").fetchone()["n"] == 30


class DyingSource(PagedSource):
    """A page written, then an error the job does not survive."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def __call__(self, ctx: SyncContext) -> AsyncIterator[Batch]:
        async for batch in super().__call__(ctx):
            yield batch
            raise self.error


@pytest.mark.parametrize("error", [PermanentError("the platform refused page 2"),
                                   RetryableError("502, and this was the job's last attempt")])
async def test_a_run_that_ends_the_job_leaves_no_checkpoint(db: DirectDatabase, dsn: str,
                                                            conn: psycopg.Connection[Any], store_id: str,
                                                            error: Exception) -> None:
    """A checkpoint left by a dead job would send every later full sync to the same failure."""
    job = await claim_sync(db, store_id, "full")
    if isinstance(error, RetryableError):
        job = Job.from_row({**conn.execute("select * from shopsync.jobs where id = %s", (job.id,)).fetchone(),
                            "attempts": 10, "max_attempts": 10})
    with pytest.raises(type(error)):
        await sync_handler(DyingSource(error))(job, job_context(db, dsn))
    state = conn.execute("select checkpoint from shopsync.sync_state").fetchone()
    assert state["checkpoint"] is None
    assert conn.execute("select count(*) as n from shopsync.products").fetchone()["n"] == 10   # the page stays


async def test_policy_and_status_are_rechecked_at_run_time(db: DirectDatabase, dsn: str,
                                                           conn: psycopg.Connection[Any], store_id: str) -> None:
    handler = sync_handler(PagedSource())
    job = await claim_sync(db, store_id)
    set_policy(conn, store_id, "products", "api_only")
    assert "api_only" in (await handler(job, job_context(db, dsn)))["skipped"]
    assert conn.execute("select count(*) as n from shopsync.products").fetchone()["n"] == 0
    conn.execute("update shopsync.stores set status = 'needs_reauth'")
    with pytest.raises(PermanentError, match="needs_reauth"):
        await handler(job, job_context(db, dsn))


async def test_a_checkpoint_of_another_mode_is_ignored(db: DirectDatabase, dsn: str, conn: psycopg.Connection[Any],
                                                       store_id: str) -> None:
    await db.rpc("save_sync_state", {"p_store_id": store_id, "p_resource": "products",
                                     "p_high_watermark": T0, "p_checkpoint": {"next_page": 2, "mode": "full"}})
    source = PagedSource()
    result = await sync_handler(source)(await claim_sync(db, store_id), job_context(db, dsn))
    assert result["mode"] == "incremental" and source.seen[-1].checkpoint is None
    assert result["inserted"] == 30


async def test_a_run_left_running_by_a_dead_worker_is_superseded(db: DirectDatabase, dsn: str,
                                                                 conn: psycopg.Connection[Any], store_id: str) -> None:
    orphan = await db.rpc("start_sync_run", {"p_store_id": store_id, "p_resource": "products", "p_mode": "full"})
    await sync_handler(PagedSource())(await claim_sync(db, store_id), job_context(db, dsn))
    runs = {r["id"]: r for r in conn.execute("select id, status, error from shopsync.sync_runs")}
    assert runs[orphan]["status"] == "failed" and "superseded" in runs[orphan]["error"]
    assert conn.execute("select sync_status from shopsync.stores").fetchone()["sync_status"] == "completed"
