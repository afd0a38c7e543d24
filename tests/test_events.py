"""Events are written by the function that records the fact, in its transaction, and members read them."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.conftest import as_role, new_user, personal_org

Conn = psycopg.Connection[dict[str, Any]]


def scalar(conn: Conn, query: str, params: Any = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


@pytest.fixture
def store(conn: Conn) -> tuple[Any, Any, Any]:
    user = new_user(conn)
    org = personal_org(conn, user)
    return user, org, scalar(conn, "select shopsync.upsert_store(%s, 'shopify', 'e.myshopify.com')", (org,))


def events(conn: Conn) -> list[dict[str, Any]]:
    return conn.execute("select type, severity, subject, details, store_id from shopsync.events order by id").fetchall()


def test_a_job_that_dies_is_an_event_but_a_retry_is_not(conn: Conn, store: tuple[Any, Any, Any]) -> None:
    _, _, store_id = store
    job = scalar(conn, "select shopsync.enqueue_job('shopify.sync', p_store_id => %s, p_resource => 'orders', "
                       "p_max_attempts => 2)", (store_id,))
    conn.execute("select * from shopsync.claim_jobs('w', 1)")
    assert scalar(conn, "select shopsync.fail_job('w', %s, 'timeout', true)", (job,)) == "queued"
    assert events(conn) == []
    conn.execute("update shopsync.jobs set run_at = now() where id = %s", (job,))
    conn.execute("select * from shopsync.claim_jobs('w', 1)")
    assert scalar(conn, "select shopsync.fail_job('w', %s, 'timeout again', true)", (job,)) == "dead"
    (event,) = events(conn)
    assert (event["type"], event["severity"], event["subject"], event["store_id"]) == \
        ("job.dead", "error", "shopify.sync", store_id)
    assert event["details"] == {"job_id": job, "kind": "shopify.sync", "resource": "orders", "attempts": 2,
                                "error": "timeout again"}


def test_a_job_reaped_for_the_last_time_is_an_event(conn: Conn, store: tuple[Any, Any, Any]) -> None:
    _, _, store_id = store
    conn.execute("select shopsync.enqueue_job('shopify.sync', p_store_id => %s, p_max_attempts => 1)", (store_id,))
    conn.execute("select * from shopsync.claim_jobs('w', 1, p_lease_seconds => 0.01)")
    conn.execute("select pg_sleep(0.05)")
    assert scalar(conn, "select shopsync.reap_expired_leases()") == 1
    assert [e["type"] for e in events(conn)] == ["job.dead"]


def test_store_status_changes_are_events_once(conn: Conn, store: tuple[Any, Any, Any]) -> None:
    _, _, store_id = store
    conn.execute("select shopsync.mark_store_needs_reauth(%s, 'invalid_grant')", (store_id,))
    conn.execute("select shopsync.mark_store_needs_reauth(%s, 'invalid_grant')", (store_id,))  # no new fact
    conn.execute("select shopsync.set_store_status(%s, 'uninstalled', 'app removed')", (store_id,))
    assert [(e["type"], e["details"]["reason"]) for e in events(conn)] == \
        [("store.needs_reauth", "invalid_grant"), ("store.uninstalled", "app removed")]


def test_a_sync_with_record_errors_is_an_event(conn: Conn, store: tuple[Any, Any, Any]) -> None:
    _, _, store_id = store
    clean = scalar(conn, "select shopsync.start_sync_run(%s, 'orders', 'full')", (store_id,))
    conn.execute("select shopsync.finish_sync_run(%s, 'succeeded', 10)", (clean,))
    run = scalar(conn, "select shopsync.start_sync_run(%s, 'orders', 'full')", (store_id,))
    conn.execute("select shopsync.finish_sync_run(%s, 'succeeded', 10, 2, 0, 3)", (run,))
    (event,) = events(conn)
    assert event["type"] == "sync.record_errors" and event["subject"] == "orders"
    assert event["details"] == {"run_id": run, "failed": 3, "created": 10, "updated": 2}


def test_events_roll_back_with_their_fact_and_unknown_types_are_refused(conn: Conn,
                                                                       store: tuple[Any, Any, Any]) -> None:
    _, _, store_id = store
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown event type"), conn.transaction():
        conn.execute("select shopsync.set_store_status(%s, 'needs_reauth', 'x')", (store_id,))
        conn.execute("select shopsync.record_event(%s, 'no.such_type')", (store_id,))
    assert events(conn) == [] and scalar(conn, "select status from shopsync.stores where id = %s", (store_id,)) \
        == "active"


def test_members_read_their_organizations_events_only(conn: Conn, store: tuple[Any, Any, Any]) -> None:
    user, _, store_id = store
    conn.execute("select shopsync.record_event(%s, 'webhooks.recreated', 'orders/updated', '{\"topics\": 1}')",
                 (store_id,))
    stranger = new_user(conn)
    with as_role(conn, "authenticated", user):
        assert [e["type"] for e in events(conn)] == ["webhooks.recreated"]
    with as_role(conn, "authenticated", stranger):
        assert events(conn) == []
