"""The web process against a real migrated database: probes, metrics, body limits, routing, serving."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import env_without_secrets
from tests.metrics_text import sample
from worker.config import Settings
from worker.connectors import registry
from worker.connectors.contract import ConnectFlow, ConnectorContract, ConnectSpec, WebhookSpec
from worker.db.direct import DirectDatabase
from worker.web.app import create_app
from worker.web.metrics import CONTENT_TYPE, WebMetrics

LIMIT = 2048


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, max_body_bytes=LIMIT, **overrides)  # type: ignore[call-arg]


def client(app: Any, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[DirectDatabase]:
    database = await DirectDatabase.connect(dsn, 2, listen=False)
    yield database
    await database.close()


class FakeConnector:
    """A connector whose extra routes echo (the webhook route of its contract is not exercised here)."""

    def __init__(self, platform: str = "fakeshop") -> None:
        self.platform = platform

    @property
    def contract(self) -> ConnectorContract:
        async def refuse(request: Request, body: bytes) -> Response:
            return JSONResponse({"error": "unauthorized"}, status_code=401)

        async def nothing(*_: Any) -> Any:
            return None

        return ConnectorContract(
            platform=self.platform, display_name="Fake Shop", reads={"orders": ("orders",)}, sync=nothing,
            webhooks=WebhookSpec(path="/inbox", verify=refuse, topics={"orders/create": "orders"}, apply=nothing,
                                 check=nothing, remove=nothing),
            connect=ConnectSpec(flow=ConnectFlow.API_KEYS),
            routes=[Route("/webhooks/{topic}", self.webhook, methods=["POST"]), Route("/boom", self.boom)])

    async def webhook(self, request: Request) -> Response:
        body = await request.body()
        request.app.state.metrics.webhook(self.platform, "accepted")
        return JSONResponse({"topic": request.path_params["topic"], "bytes": len(body)})

    async def boom(self, request: Request) -> Response:
        raise RuntimeError("connector bug with postgresql://user:pw@host/db")


@pytest.fixture
def fake_connector(monkeypatch: pytest.MonkeyPatch) -> FakeConnector:
    connector = FakeConnector()
    monkeypatch.setattr(registry, "connectors", lambda: (connector,))
    return connector


# --- health and readiness -------------------------------------------------------------------------

async def test_healthz(db: DirectDatabase) -> None:
    async with client(create_app(settings(), db)) as c:
        r = await c.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_on_migrated_database(db: DirectDatabase) -> None:
    async with client(create_app(settings(), db)) as c:
        r = await c.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready"}


async def test_readyz_names_a_pending_migration(db: DirectDatabase, conn: psycopg.Connection[Any]) -> None:
    conn.execute("delete from shopsync_private.schema_migrations where name = '0004_synced_tables.sql'")
    async with client(create_app(settings(), db)) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not ready"
    assert body["problems"] == ["migration pending: 0004_synced_tables.sql"]
    assert body["error"] == "not_ready" and "0004_synced_tables.sql" in body["detail"]


async def test_readyz_names_a_changed_migration(db: DirectDatabase, conn: psycopg.Connection[Any]) -> None:
    conn.execute("update shopsync_private.schema_migrations set checksum = 'deadbeef' "
                 "where name = '0002_tenancy_and_stores.sql'")
    async with client(create_app(settings(), db)) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["problems"] == ["migration changed since applied: 0002_tenancy_and_stores.sql"]


async def test_readyz_ignores_migrations_newer_than_the_code(db: DirectDatabase,
                                                             conn: psycopg.Connection[Any]) -> None:
    conn.execute("insert into shopsync_private.schema_migrations (name, checksum) values ('9999_future.sql', 'x')")
    async with client(create_app(settings(), db)) as c:
        assert (await c.get("/readyz")).status_code == 200


async def test_readyz_when_the_database_is_closed(dsn: str) -> None:
    database = await DirectDatabase.connect(dsn, 1, listen=False)
    await database.close()
    async with client(create_app(settings(), database)) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["problems"] == ["database unreachable (no answer)"]   # no sqlstate: an outage, not a bug
    assert dsn not in r.text


async def test_readyz_is_time_boxed_when_the_database_is_unreachable() -> None:
    dead_dsn = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/nowhere"
    pool = AsyncConnectionPool(dead_dsn, min_size=1, max_size=1, open=False, timeout=30)
    await pool.open(wait=False)
    database = DirectDatabase(dead_dsn, pool)
    try:
        async with client(create_app(settings(), database, ready_timeout=0.5)) as c:
            r = await c.get("/readyz")
            m = await c.get("/metrics")
    finally:
        await pool.close()
    assert r.status_code == 503
    assert r.json()["problems"] == ["database unreachable: TimeoutError"]
    assert "hunter2" not in r.text and "nowhere" not in r.text
    # metrics still answer with this process's counters, flagging the database part as missing
    assert m.status_code == 200
    assert sample(m.text, "shopsync_queue_metrics_up") == 0
    assert "shopsync_jobs{" not in m.text
    assert sample(m.text, 'shopsync_http_requests_total{route="/readyz",status="503"}') == 1


# --- metrics --------------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                     r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (NaN|[+-]Inf|-?[0-9.e+-]+)$')


def assert_valid_exposition(text: str) -> None:
    assert text.endswith("\n")
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line.startswith("# HELP "):
            continue
        else:
            assert _SAMPLE.match(line), line
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            assert name in typed or re.sub(r"_(sum|count|bucket|created|total)$", "", name) in typed, line


async def test_metrics_report_queue_and_inbox(db: DirectDatabase, conn: psycopg.Connection[Any]) -> None:
    for _ in range(4):
        conn.execute("select shopsync.enqueue_job('noop')")
    conn.execute("select shopsync.enqueue_job('other.kind', p_run_at => now() - interval '90 seconds')")
    claimed = conn.execute("select id from shopsync.claim_jobs('w1', 3, array['noop'])").fetchall()
    assert len(claimed) == 3
    ids = [row["id"] for row in claimed]
    assert conn.execute("select shopsync.complete_jobs('w1', %s) as n", (ids[:2],)).fetchone() == {"n": 2}
    conn.execute("insert into shopsync.webhook_inbox (platform, delivery_id, topic, payload) values "
                 "('shopify', 'd1', 'orders/create', '{}'), ('shopify', 'd2', 'orders/create', '{}'), "
                 "(%s, 'd3', 't', '{}')", ('we"ird\\shop\nx',))
    conn.execute("update shopsync.webhook_inbox set status = 'processed' where delivery_id = 'd2'")

    async with client(create_app(settings(), db)) as c:
        r = await c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == CONTENT_TYPE
    text = r.text
    assert_valid_exposition(text)
    assert sample(text, "shopsync_queue_metrics_up") == 1
    assert sample(text, 'shopsync_jobs{state="queued",kind="noop"}') == 1
    assert sample(text, 'shopsync_jobs{state="running",kind="noop"}') == 1
    assert sample(text, 'shopsync_jobs{state="succeeded",kind="noop"}') == 2
    assert sample(text, 'shopsync_jobs{state="dead",kind="noop"}') == 0
    assert sample(text, 'shopsync_jobs{state="queued",kind="other.kind"}') == 1
    # job run times are the worker's cumulative histogram (tests/test_worker.py), not a window over the table
    assert "quantile=" not in text and "last 900 seconds" not in text
    assert sample(text, 'shopsync_webhook_inbox{platform="shopify",status="pending"}') == 1
    assert sample(text, 'shopsync_webhook_inbox{platform="shopify",status="processed"}') == 1
    assert sample(text, 'shopsync_webhook_inbox{platform="we\\"ird\\\\shop\\nx",status="pending"}') == 1
    assert 89 <= sample(text, "shopsync_queue_oldest_job_age_seconds") < 600
    assert "# TYPE shopsync_webhook_requests_total counter" in text
    assert "# TYPE shopsync_http_requests_total counter" in text
    assert "# TYPE shopsync_http_request_duration_seconds histogram" in text
    assert "# TYPE shopsync_platform_requests_total counter" in text


async def test_metrics_on_an_empty_queue(db: DirectDatabase) -> None:
    async with client(create_app(settings(), db)) as c:
        text = (await c.get("/metrics")).text
    assert_valid_exposition(text)
    assert sample(text, "shopsync_queue_oldest_job_age_seconds") == 0
    assert "shopsync_jobs{" not in text


async def test_in_process_counters(db: DirectDatabase, fake_connector: FakeConnector) -> None:
    app = create_app(settings(), db)
    async with client(app) as c:
        await c.get("/healthz")
        await c.get("/healthz")
        await c.post("/fakeshop/webhooks/orders", content=b"{}")
        await c.get("/no/such/path")
        text = (await c.get("/metrics")).text
    assert_valid_exposition(text)
    assert sample(text, 'shopsync_http_requests_total{route="/healthz",status="200"}') == 2
    assert sample(text, 'shopsync_http_requests_total{route="/fakeshop/webhooks/{topic}",status="200"}') == 1
    assert sample(text, 'shopsync_http_requests_total{route="unmatched",status="404"}') == 1
    assert sample(text, 'shopsync_webhook_requests_total{platform="fakeshop",outcome="accepted"}') == 1


def test_label_escaping() -> None:
    m = WebMetrics()
    m.webhook('pl"at\\form\n', "rejected_signature")
    m.http("/x", 413)
    text = m.render({"jobs": [], "webhooks": [], "oldest_queued_seconds": 0, "window_seconds": 900}).decode()
    assert_valid_exposition(text)
    assert sample(text, 'shopsync_webhook_requests_total{platform="pl\\"at\\\\form\\n",outcome="rejected_signature"}') == 1
    assert sample(text, 'shopsync_http_requests_total{route="/x",status="413"}') == 1
    assert m.webhook_count('pl"at\\form\n', "rejected_signature") == 1


def test_render_numbers() -> None:
    m = WebMetrics()
    m.http("/x", 200, 0.003)
    m.http("/x", 200, 0.7)
    text = m.render({
        "jobs": [{"state": "queued", "kind": "k", "count": 3}],
        "webhooks": [], "oldest_queued_seconds": 12.25, "schedule_lag_seconds": 61.5, "window_seconds": 900}).decode()
    assert_valid_exposition(text)
    assert "shopsync_schedule_lag_seconds 61.5" in text
    assert "shopsync_nul_characters_stripped_total " in text
    assert sample(text, 'shopsync_jobs{state="queued",kind="k"}') == 3 and sample(text, 'shopsync_jobs{state="dead",kind="k"}') == 0
    assert "shopsync_queue_oldest_job_age_seconds 12.25" in text
    # request durations are a cumulative histogram
    assert sample(text, 'shopsync_http_request_duration_seconds_bucket{route="/x",le="0.005"}') == 1
    assert sample(text, 'shopsync_http_request_duration_seconds_bucket{route="/x",le="1.0"}') == 2
    assert sample(text, 'shopsync_http_request_duration_seconds_count{route="/x"}') == 2


# --- body limit -----------------------------------------------------------------------------------

async def test_body_limit_by_content_length(db: DirectDatabase, fake_connector: FakeConnector) -> None:
    app = create_app(settings(), db)
    async with client(app) as c:
        ok = await c.post("/fakeshop/webhooks/orders", content=b"x" * LIMIT)
        big = await c.post("/fakeshop/webhooks/orders", content=b"x" * (LIMIT + 1))
    assert ok.status_code == 200 and ok.json()["bytes"] == LIMIT
    assert big.status_code == 413
    assert big.json() == {"error": "request_entity_too_large", "detail": f"request body is larger than {LIMIT} bytes"}
    assert app.state.metrics.http_count("/fakeshop/webhooks/{topic}", 413) == 1
    assert app.state.metrics.webhook_count("fakeshop", "accepted") == 1


async def test_body_limit_on_a_chunked_body(db: DirectDatabase, fake_connector: FakeConnector) -> None:
    sent = 0

    async def chunks(n: int) -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(n):
            sent += 1
            yield b"y" * 512

    app = create_app(settings(), db)
    async with client(app) as c:
        small = await c.post("/fakeshop/webhooks/orders", content=chunks(3))
        assert "content-length" not in small.request.headers
        sent = 0
        big = await c.post("/fakeshop/webhooks/orders", content=chunks(1000))
    assert small.status_code == 200 and small.json()["bytes"] == 3 * 512
    assert big.status_code == 413
    assert big.json()["error"] == "request_entity_too_large"
    assert sent < 10       # stopped reading soon after the limit, did not pull the whole body
    assert app.state.metrics.http_count("/fakeshop/webhooks/{topic}", 413) == 1
    assert app.state.metrics.webhook_count("fakeshop", "accepted") == 1


async def test_invalid_content_length(db: DirectDatabase) -> None:
    async with client(create_app(settings(), db)) as c:
        r = await c.post("/healthz", content=b"x", headers={"content-length": "abc"})
    assert r.status_code == 400
    assert r.json()["error"] == "bad_request"


# --- routing and errors ---------------------------------------------------------------------------

async def test_connector_routes_are_mounted(db: DirectDatabase, fake_connector: FakeConnector) -> None:
    async with client(create_app(settings(), db)) as c:
        r = await c.post("/fakeshop/webhooks/orders-create", content=b'{"id": 1}')
        wrong_method = await c.get("/fakeshop/webhooks/orders-create")
        missing = await c.get("/fakeshop/nope")
    assert r.status_code == 200
    assert r.json() == {"topic": "orders-create", "bytes": 9}
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_no_connectors(db: DirectDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "connectors", lambda: ())
    async with client(create_app(settings(), db)) as c:
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.post("/fakeshop/webhooks/x")).status_code == 404


async def test_404_and_405_are_json(db: DirectDatabase) -> None:
    app = create_app(settings(), db)
    async with client(app) as c:
        missing = await c.get("/nope")
        wrong = await c.post("/healthz", content=b"")
        head = await c.head("/healthz")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "detail": "no route for /nope"}
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"
    assert "POST" in wrong.json()["detail"] and "GET" in wrong.headers["allow"]
    assert head.status_code == 200
    assert app.state.metrics.http_count("/healthz", 405) == 1


async def test_unhandled_error_is_json_500(db: DirectDatabase, fake_connector: FakeConnector) -> None:
    app = create_app(settings(), db)
    async with client(app, raise_app_exceptions=False) as c:
        r = await c.get("/fakeshop/boom")
    assert r.status_code == 500
    assert r.json() == {"error": "internal_server_error", "detail": "internal server error"}
    assert app.state.metrics.http_count("/fakeshop/boom", 500) == 1


def test_reserved_platform_names_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = FakeConnector("metrics")
    monkeypatch.setattr(registry, "connectors", lambda: (bad,))
    with pytest.raises(ValueError, match="metrics"):
        create_app(settings())


# --- the real server ------------------------------------------------------------------------------

def test_serve_over_real_http(dsn: str, tmp_path: Path) -> None:
    port = free_port()
    env = env_without_secrets() | {"DATABASE_URL": dsn, "SHOPSYNC_HOST": "127.0.0.1", "PORT": str(port),
                                   "SHOPSYNC_LOG_FORMAT": "json"}
    code = "from worker.config import load_settings; from worker.web.app import serve; serve(load_settings())"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env,
                                stdout=log_file, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.1)
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            too_big = httpx.post(f"http://127.0.0.1:{port}/healthz", content=b"z" * (3 * 1024 * 1024), timeout=5)
            proc.send_signal(signal.SIGTERM)
            # uvicorn re-raises the signal it caught once shutdown is done, so the exit is "killed by SIGTERM"
            assert proc.wait(timeout=20) in (0, -signal.SIGTERM), log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert "server" not in health.headers
    assert ready.status_code == 200, ready.text     # the lifespan opened the database
    assert too_big.status_code == 413               # default limit is 2 MiB
    output = log_path.read_text()
    assert "Application shutdown complete" in output     # graceful: the lifespan closed the database
    assert dsn not in output
    assert "GET /healthz" not in output             # uvicorn's access log is off

