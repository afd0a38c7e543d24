"""Queue semantics, straight against the SQL functions the worker calls."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.conftest import new_user, personal_org


def enqueue(conn: psycopg.Connection[Any], kind: str = "test.noop", **kw: Any) -> int:
    cols = ", ".join(f"{k} => %({k})s" for k in kw)
    sql = f"select shopsync.enqueue_job(%(kind)s{', ' + cols if cols else ''}) as id"
    return int(conn.execute(sql, {"kind": kind, **kw}).fetchone()["id"])


def claim(conn: psycopg.Connection[Any], worker: str = "w1", limit: int = 10, kinds: list[str] | None = None,
          lease: float = 60) -> list[dict[str, Any]]:
    return conn.execute("select * from shopsync.claim_jobs(%s, %s, %s, %s)", (worker, limit, kinds, lease)).fetchall()


def state(conn: psycopg.Connection[Any], job_id: int) -> dict[str, Any]:
    return conn.execute("select * from shopsync.jobs where id = %s", (job_id,)).fetchone()


@pytest.fixture
def store(conn: psycopg.Connection[Any]) -> str:
    org = personal_org(conn, new_user(conn))
    return str(conn.execute("select shopsync.upsert_store(%s, 'shopify', 'q.myshopify.com') as id", (org,)).fetchone()["id"])


def test_claim_order_follows_priority_then_run_at(conn: psycopg.Connection[Any]) -> None:
    late = enqueue(conn, p_priority=100)
    urgent = enqueue(conn, p_priority=10)
    future = enqueue(conn, p_run_at="2999-01-01T00:00:00Z")
    rows = claim(conn, limit=10)
    assert [r["id"] for r in rows] == [urgent, late]
    assert all(r["state"] == "running" and r["attempts"] == 1 and r["lease_owner"] == "w1" for r in rows)
    assert state(conn, future)["state"] == "queued"


def test_claim_only_requested_kinds(conn: psycopg.Connection[Any]) -> None:
    a = enqueue(conn, "test.a")
    enqueue(conn, "test.b")
    assert [r["id"] for r in claim(conn, kinds=["test.a"])] == [a]


def test_concurrent_claims_never_share_a_job(dsn: str, conn: psycopg.Connection[Any]) -> None:
    conn.execute("insert into shopsync.jobs (kind) select 'test.noop' from generate_series(1, 500)")
    got: list[list[int]] = []
    lock = threading.Lock()

    def grab(worker: str) -> None:
        with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as c:
            while True:
                rows = claim(c, worker=worker, limit=7)
                if not rows:
                    return
                with lock:
                    got.append([r["id"] for r in rows])

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for batch in got for i in batch]
    assert len(ids) == 500 and len(set(ids)) == 500


def test_dedupe_key_allows_one_queued_or_running(conn: psycopg.Connection[Any]) -> None:
    first = enqueue(conn, p_dedupe_key="sync:x")
    assert enqueue(conn, p_dedupe_key="sync:x") == first
    claim(conn)
    assert enqueue(conn, p_dedupe_key="sync:x") == first          # still running: same job
    conn.execute("select shopsync.complete_jobs('w1', array[%s]::bigint[])", (first,))
    assert enqueue(conn, p_dedupe_key="sync:x") != first          # finished: new work allowed


def test_concurrency_key_runs_one_job_per_key(dsn: str, conn: psycopg.Connection[Any]) -> None:
    a1 = enqueue(conn, p_concurrency_key="store:a")
    a2 = enqueue(conn, p_concurrency_key="store:a")
    b1 = enqueue(conn, p_concurrency_key="store:b")
    free = enqueue(conn)
    first = {r["id"] for r in claim(conn, limit=10)}
    assert first == {a1, b1, free}
    assert claim(conn, worker="w2") == []                     # a2 waits for a1
    conn.execute("select shopsync.complete_jobs('w1', array[%s]::bigint[])", (a1,))
    assert [r["id"] for r in claim(conn, worker="w2")] == [a2]


def test_concurrency_key_race_between_two_claimers(dsn: str, conn: psycopg.Connection[Any]) -> None:
    # many jobs of one key, claimed by many connections at once: never two running together
    conn.execute("insert into shopsync.jobs (kind, concurrency_key) select 'test.noop', 'store:z' "
                 "from generate_series(1, 50)")
    running_max = 0
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as c:
                while not stop.is_set():
                    for r in claim(c, worker=name, limit=5):
                        c.execute("select shopsync.complete_jobs(%s, array[%s]::bigint[])", (name, r["id"]))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counts = conn.execute("select count(*) filter (where state = 'running') as running, "
                              "count(*) filter (where state = 'succeeded') as done from shopsync.jobs").fetchone()
        running_max = max(running_max, counts["running"])
        if counts["done"] == 50:
            break
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert running_max <= 1
    assert conn.execute("select count(*) as n from shopsync.jobs where state = 'succeeded'").fetchone()["n"] == 50
    assert conn.execute("select count(*) as n from shopsync_private.job_concurrency_locks").fetchone()["n"] == 0


def test_complete_only_by_lease_owner(conn: psycopg.Connection[Any]) -> None:
    j = enqueue(conn)
    claim(conn, worker="w1")
    assert conn.execute("select shopsync.complete_jobs('intruder', array[%s]::bigint[]) as n", (j,)).fetchone()["n"] == 0
    n = conn.execute("select shopsync.complete_jobs('w1', array[%s]::bigint[], array['{\"ok\":1}'::jsonb]) as n",
                     (j,)).fetchone()["n"]
    assert n == 1
    row = state(conn, j)
    assert row["state"] == "succeeded" and row["result"] == {"ok": 1} and row["finished_at"] is not None


def test_fail_retries_with_backoff_then_dies(conn: psycopg.Connection[Any]) -> None:
    j = enqueue(conn, p_max_attempts=3)
    delays = []
    for attempt in range(1, 4):
        conn.execute("update shopsync.jobs set run_at = now() where id = %s", (j,))
        assert [r["id"] for r in claim(conn)] == [j]
        new_state = conn.execute("select shopsync.fail_job('w1', %s, 'boom', true) as s", (j,)).fetchone()["s"]
        row = state(conn, j)
        if attempt < 3:
            assert new_state == "queued"
            delay = conn.execute("select extract(epoch from run_at - now()) as d from shopsync.jobs where id = %s",
                                 (j,)).fetchone()["d"]
            # 2^(n-1) seconds with ±50% jitter
            assert 0.5 * 2 ** (attempt - 1) - 0.1 <= float(delay) <= 1.5 * 2 ** (attempt - 1) + 0.1
            delays.append(delay)
        else:
            assert new_state == "dead"
            assert row["last_error"] == "boom" and row["finished_at"] is not None


def test_permanent_failure_is_dead_at_once(conn: psycopg.Connection[Any]) -> None:
    j = enqueue(conn, p_max_attempts=10)
    claim(conn)
    assert conn.execute("select shopsync.fail_job('w1', %s, 'bad input', false) as s", (j,)).fetchone()["s"] == "dead"
    assert state(conn, j)["attempts"] == 1


def test_retry_after_is_honoured(conn: psycopg.Connection[Any]) -> None:
    j = enqueue(conn)
    claim(conn)
    conn.execute("select shopsync.fail_job('w1', %s, 'throttled', true, 120)", (j,))
    d = conn.execute("select extract(epoch from run_at - now()) as d from shopsync.jobs where id = %s", (j,)).fetchone()
    assert 118 <= float(d["d"]) <= 121


def test_heartbeat_extends_only_own_leases(conn: psycopg.Connection[Any]) -> None:
    a, b = enqueue(conn), enqueue(conn)
    claim(conn, worker="w1", limit=1, lease=1)
    claim(conn, worker="w2", limit=1, lease=1)
    held = conn.execute("select * from shopsync.heartbeat_jobs('w1', array[%s, %s]::bigint[], 300) as id",
                        (a, b)).fetchall()
    assert [r["id"] for r in held] == [a]
    assert conn.execute("select lease_expires_at > now() + interval '200 seconds' as ok from shopsync.jobs "
                        "where id = %s", (a,)).fetchone()["ok"]


def test_reaper_requeues_expired_and_kills_exhausted(conn: psycopg.Connection[Any]) -> None:
    alive = enqueue(conn)
    expired = enqueue(conn)
    exhausted = enqueue(conn, p_max_attempts=1)
    claim(conn, limit=10)
    conn.execute("update shopsync.jobs set lease_expires_at = now() - interval '1 second' where id in (%s, %s)",
                 (expired, exhausted))
    assert conn.execute("select shopsync.reap_expired_leases() as n").fetchone()["n"] == 2
    assert state(conn, alive)["state"] == "running"
    assert state(conn, expired)["state"] == "queued" and "lease expired" in state(conn, expired)["last_error"]
    assert state(conn, exhausted)["state"] == "dead"
    # the old owner can no longer complete it
    assert conn.execute("select shopsync.complete_jobs('w1', array[%s]::bigint[]) as n", (expired,)).fetchone()["n"] == 0


def test_reaper_frees_concurrency_key(conn: psycopg.Connection[Any]) -> None:
    j = enqueue(conn, p_concurrency_key="store:k")
    j2 = enqueue(conn, p_concurrency_key="store:k")
    claim(conn)
    conn.execute("update shopsync.jobs set lease_expires_at = now() - interval '1 second' where id = %s", (j,))
    conn.execute("select shopsync.reap_expired_leases()")
    assert [r["id"] for r in claim(conn, worker="w2")] == [j]
    assert state(conn, j2)["state"] == "queued"


def test_release_does_not_count_the_attempt(conn: psycopg.Connection[Any]) -> None:
    j = enqueue(conn)
    claim(conn)
    assert conn.execute("select shopsync.release_jobs('w1', array[%s]::bigint[]) as n", (j,)).fetchone()["n"] == 1
    row = state(conn, j)
    assert row["state"] == "queued" and row["attempts"] == 0


def test_cancel_and_retry(conn: psycopg.Connection[Any]) -> None:
    j = enqueue(conn)
    conn.execute("select shopsync.cancel_job(%s)", (j,))
    assert state(conn, j)["state"] == "cancelled"
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("select shopsync.cancel_job(%s)", (j,))
    conn.execute("select shopsync.retry_job(%s)", (j,))
    assert state(conn, j)["state"] == "queued"
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="only dead or cancelled"):
        conn.execute("select shopsync.retry_job(%s)", (j,))
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown job"):
        conn.execute("select shopsync.retry_job(987654)")


def test_cancel_running_job_makes_heartbeat_drop_it(conn: psycopg.Connection[Any]) -> None:
    j = enqueue(conn, p_concurrency_key="store:c")
    waiting = enqueue(conn, p_concurrency_key="store:c")
    claim(conn)
    conn.execute("select shopsync.cancel_job(%s)", (j,))
    assert conn.execute("select * from shopsync.heartbeat_jobs('w1', array[%s]::bigint[], 60)", (j,)).fetchall() == []
    # its handler may still be running until it heartbeats: the store stays locked, no retry yet
    assert claim(conn, worker="w2") == []
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="lease has expired"):
        conn.execute("select shopsync.retry_job(%s)", (j,))
    conn.execute("update shopsync.jobs set lease_expires_at = now() - interval '1 second' where id = %s", (j,))
    conn.execute("select shopsync.reap_expired_leases()")
    assert conn.execute("select count(*) as n from shopsync_private.job_concurrency_locks").fetchone()["n"] == 0
    assert [r["id"] for r in claim(conn, worker="w2")] == [waiting]


def test_retry_refuses_to_duplicate_queued_work(conn: psycopg.Connection[Any]) -> None:
    j = enqueue(conn, p_dedupe_key="sync:d", p_max_attempts=1)
    claim(conn)
    conn.execute("select shopsync.fail_job('w1', %s, 'x', false)", (j,))
    enqueue(conn, p_dedupe_key="sync:d")
    with pytest.raises(psycopg.errors.UniqueViolation, match="already queued"):
        conn.execute("select shopsync.retry_job(%s)", (j,))


def test_enqueue_for_unknown_store_is_refused(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown store"):
        enqueue(conn, p_store_id="00000000-0000-0000-0000-000000000000")


def test_enqueue_rejects_malformed_kind_and_payload(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        enqueue(conn, "DROP TABLE")
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("select shopsync.enqueue_job('test.x', '[1,2]'::jsonb)")


def test_store_sync_jobs_carry_store_and_keys(conn: psycopg.Connection[Any], store: str) -> None:
    ids = conn.execute("select shopsync.request_sync(%s) as ids", (store,)).fetchone()["ids"]
    rows = conn.execute("select kind, resource, dedupe_key, concurrency_key, organization_id from shopsync.jobs "
                        "where id = any(%s) order by resource", (ids,)).fetchall()
    assert [r["resource"] for r in rows] == ["customers", "orders", "products"]
    assert {r["kind"] for r in rows} == {"shopify.sync"}
    assert {r["concurrency_key"] for r in rows} == {f"store:{store}"}
    assert rows[0]["organization_id"] is not None
    # one store, one sync at a time
    assert len(claim(conn, limit=10)) == 1


def test_finishing_a_webhook_is_a_hot_update(conn: psycopg.Connection[Any]) -> None:
    """finish_webhook rewrites no index entry: the row's new version stays on its page (fillfactor leaves room),
    and as no indexed column changes that is a HOT update — the worker's finishes stay cheap however many
    indexes the inbox has."""
    store = conn.execute("select shopsync.upsert_store(%s, 'shopify', 'hot-inbox.myshopify.com') as id",
                         (personal_org(conn, new_user(conn)),)).fetchone()["id"]

    def page(inbox_id: int) -> int:
        row = conn.execute("select (ctid::text::point)[0] as block from shopsync.webhook_inbox where id = %s",
                           (inbox_id,)).fetchone()
        return int(row["block"])

    payload = '{"id": 1, "title": "' + "x" * 1500 + '"}'
    inbox: list[int] = []
    moved = []
    for i in range(300):
        inbox.append(conn.execute("select inbox_id from shopsync.record_webhook('shopify', %s, %s, "
                                  "'products/update', %s::jsonb)", (f"hot-{i}", store, payload)).fetchone()["inbox_id"])
        if i >= 10:                                   # the worker finishes a delivery shortly after its ack
            before = page(inbox[i - 10])
            conn.execute("select shopsync.finish_webhook(%s, 'processed')", (inbox[i - 10],))
            if page(inbox[i - 10]) != before:
                moved.append(inbox[i - 10])
    assert conn.execute("select count(*) as n from shopsync.webhook_inbox where status = 'processed'"
                        ).fetchone()["n"] == 290
    # a page holds one update's room; a second before the first's old version is pruned (an older snapshot
    # still sees it) moves — rare with fillfactor 80, 60% of the updates at the default fillfactor
    assert len(moved) <= 29, moved
