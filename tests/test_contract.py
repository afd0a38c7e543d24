"""The connector contract: what a connector must declare, what the core refuses at start, and the README's
"Adding a platform" example run end to end as written (connect, sync, webhook, webhook check, disconnect)."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.serving import serve_app
from tests.conftest import as_role
from tests.metrics_text import sample
from tests.platform_world import AppWorld, free_port, owner_org
from worker.config import Settings
from worker.connectors import registry
from worker.connectors.contract import (
    ConnectFlow,
    ConnectorContract,
    ConnectSpec,
    ContractError,
    LiveLookups,
    LiveStore,
    WebhookSpec,
)
from worker.db.direct import DirectDatabase
from worker.jobs.registry import JobRegistry
from worker.rpc import catalog, queue
from worker.runtime import build_registry
from worker.sealing import generate_key_spec
from worker.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent


async def nothing(*_: Any) -> Any:
    return None


def contract(**overrides: Any) -> ConnectorContract:
    fields: dict[str, Any] = {
        "platform": "toy", "display_name": "Toy", "reads": {"products": ("products",)}, "sync": nothing,
        "webhooks": WebhookSpec(path="/webhooks", verify=nothing, topics={"products/update": "products"},
                                apply=nothing, check=nothing, remove=nothing),
        "connect": ConnectSpec(flow=ConnectFlow.API_KEYS)}
    return ConnectorContract(**(fields | overrides))


# --- what a contract must have --------------------------------------------------------------------

def test_a_flow_that_parks_installs_needs_its_claim_handler() -> None:
    with pytest.raises(ContractError, match=r"'toy' \(Toy\).*'platform_install'.*toy.install_claimed"):
        contract(connect=ConnectSpec(flow=ConnectFlow.PLATFORM_INSTALL))
    contract(connect=ConnectSpec(flow=ConnectFlow.OAUTH, install_claimed=nothing))   # complete: accepted


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"platform": "Toy Shop"}, "platform must match"),
    ({"reads": {}}, "reads names no resource"),
    ({"webhooks": WebhookSpec(path="/w", verify=nothing, topics={}, apply=nothing, check=nothing, remove=nothing)},
     "webhooks.topics is empty"),
    ({"webhooks": WebhookSpec(path="/w", verify=nothing, topics={"orders/create": "orders"}, apply=nothing,
                              check=nothing, remove=nothing)}, "resources it does not read: orders"),
    ({"jobs": {"sync": nothing}}, "standard kinds"),
])
def test_incomplete_contracts_are_refused_naming_the_part(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ContractError, match=problem):
        contract(**overrides)


def test_live_lookups_say_why_only_for_lookups_they_do_not_offer() -> None:
    async def query(store: LiveStore, value: str, limit: int) -> dict[str, Any]:
        return {}

    with pytest.raises(ContractError, match="orders_by_email"):
        LiveLookups(orders_by_email=query, why_not={"orders_by_email": "it can"})
    with pytest.raises(ContractError, match="orders_by_fax"):
        LiveLookups(why_not={"orders_by_fax": "no such look-up"})
    declared = LiveLookups(order_by_id=query, why_not={"orders_by_email": "no email filter"})
    assert "why_not" not in LiveLookups.names() and declared.available == ("order_by_id",)
    assert declared.query("why_not") is None and declared.query("orders_by_email") is None


def test_job_kinds_are_named_by_the_contract() -> None:
    toy = contract()
    assert toy.job_kind("sync") == "toy.sync" and toy.job_kind("exchange") == "toy.exchange"


# --- the start-up check against the database ------------------------------------------------------

async def test_the_real_connectors_match_the_database(dsn: str) -> None:
    db = await DirectDatabase.connect(dsn, listen=False)
    try:
        await registry.check_against_database(db, build_registry())
    finally:
        await db.close()


async def test_start_is_refused_naming_connector_and_missing_part(dsn: str) -> None:
    db = await DirectDatabase.connect(dsn, listen=False)
    try:
        kinds, synced = await queue.job_kinds(db), await catalog.synced_catalog(db)
    finally:
        await db.close()
    oauth = contract(platform="oauthy", connect=ConnectSpec(flow=ConnectFlow.OAUTH, install_claimed=nothing),
                     reads={"products": ("products", "widgets"), "orders": ("products",)},
                     webhooks=WebhookSpec(path="/w", verify=nothing, topics={"x": None}, apply=nothing,
                                          check=nothing, remove=nothing))
    jobs = JobRegistry()
    registry.register_jobs(jobs, [oauth])
    jobs._handlers.pop("oauthy.check_webhooks")       # a registry missing one kind SQL enqueues
    problems = registry.contract_problems([oauth], kinds, synced, jobs)
    assert any(p.startswith("connector 'oauthy' (Toy): no handler for oauthy.check_webhooks, which SQL enqueues")
               for p in problems)
    assert any("reads.products writes widgets, which is not a synced table" in p for p in problems)
    assert any("reads.orders writes products, which the catalog files under resource 'products'" in p
               for p in problems)
    assert any(p.startswith("core: no handler for gdpr.process") for p in problems)
    assert not any("install_claimed" in p for p in problems)          # registered from the contract


def test_sql_enqueues_only_declared_kinds() -> None:
    """Every enqueue in sql/functions names its kind through platform_job_kind / core_job_kind."""
    offenders = []
    for path in sorted((ROOT / "sql" / "functions").glob("*.sql")):
        for match in re.finditer(r"shopsync\.enqueue_job\(\s*([^,]+),", path.read_text()):
            if not match.group(1).strip().startswith(("shopsync_private.platform_job_kind(",
                                                      "shopsync_private.core_job_kind(", "p_kind")):
                offenders.append(f"{path.name}: enqueue_job({match.group(1).strip()}, ...)")
    assert not offenders, offenders


# --- the README's toy connector, end to end -------------------------------------------------------

SECRET = "acme-app-secret"


def readme_toy_connector(tmp_path: Path) -> ModuleType:
    """The code block of README.md's "Adding a platform" section, imported as it stands."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- toy-connector -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md lacks the toy connector block"
    path = tmp_path / "acme_toy_connector.py"
    path.write_text(match.group(1))
    spec = importlib.util.spec_from_file_location("acme_toy_connector", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class AcmePlatform:
    """Acme's side: the API the toy connector reads, and its webhook subscriptions."""

    def __init__(self) -> None:
        self.products: dict[str, dict[str, Any]] = {
            "1": {"id": 1, "title": "Hat", "price": "19.00", "updated_at": "2026-01-01T10:00:00Z"},
            "2": {"id": 2, "title": "Scarf", "price": "25.50", "updated_at": "2026-01-02T10:00:00Z"}}
        self.webhooks: list[str] = []

    def app(self) -> Starlette:
        async def products(request: Request) -> Response:
            since = request.query_params.get("updated_after") or ""
            return JSONResponse([p for p in self.products.values() if p["updated_at"] > since.replace("+00:00", "Z")])

        async def webhooks(request: Request) -> Response:
            if request.method == "POST":
                self.webhooks.append((await request.json())["url"])
            if request.method == "DELETE":
                self.webhooks = [u for u in self.webhooks if u != request.query_params.get("url")]
            return JSONResponse([{"url": u} for u in self.webhooks])

        return Starlette(routes=[Route("/shops/{shop}/products", products),
                                 Route("/shops/{shop}/webhooks", webhooks, methods=["GET", "POST", "DELETE"])])


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AcmePlatform, str]]:
    platform = AcmePlatform()
    with serve_app(platform.app(), port=free_port(), name="acme") as url:
        monkeypatch.setenv("ACME_API_URL", url)
        monkeypatch.setenv("ACME_APP_SECRET", SECRET)
        yield platform, url


@pytest.fixture
async def toy_world(dsn: str, conn: psycopg.Connection[dict[str, Any]], tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch, acme: tuple[AcmePlatform, str]) -> AsyncIterator[AppWorld]:
    toy = readme_toy_connector(tmp_path)
    monkeypatch.setattr(registry, "connectors", lambda: (toy.CONNECTOR,))
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    core = Settings(_env_file=None, database_url=dsn, sealing_keys=generate_key_spec("t"),  # type: ignore[call-arg]
                    public_url=web_url, frontend_url="http://frontend.test")
    db = await DirectDatabase.connect(dsn, listen=True)
    try:
        with serve_app(create_app(core), port=port, name="shopsync-web"):
            jobs = build_registry()
            await registry.check_against_database(db, jobs)      # what `shopsync worker` does at start
            yield AppWorld(web_url=web_url, core=core, db=db, conn=conn, registry=jobs)
    finally:
        await db.close()


def sign(data: bytes) -> str:
    return hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()


async def test_the_readme_toy_connector_connects_syncs_applies_webhooks_and_disconnects(
        toy_world: AppWorld, acme: tuple[AcmePlatform, str]) -> None:
    w, (platform, _) = toy_world, acme
    user, org = owner_org(w.conn)
    async with w.web as web:
        # Acme sends the merchant to shopsync; a forged install is refused
        assert (await web.get("/acme/install", params={"shop": "corner", "signature": "0" * 64})).status_code == 401
        sent = await web.get("/acme/install", params={"shop": "corner", "signature": sign(b"corner")})
        assert sent.status_code in (302, 303)
        claim = parse_qs(urlsplit(sent.headers["location"]).fragment)
        with as_role(w.conn, "authenticated", user):
            store = w.scalar("select shopsync.claim_pending_install(%s, %s, %s)",
                             (claim["install_id"][0], claim["claim_token"][0], org))
        async with w.worker():
            await w.until(lambda: w.scalar("select count(*) from shopsync.sync_state where store_id = %s "
                                           "and last_full_sync_at is not null", (store,)) == 1, what="first sync")
            await w.until(w.idle, what="the install's jobs")
            assert platform.webhooks == [f"{w.web_url}/acme/webhooks"]             # check_webhooks subscribed
            rows = w.conn.execute("select id, title from shopsync.products where store_id = %s order by id",
                                  (store,)).fetchall()
            assert [(r["id"], r["title"]) for r in rows] == [("1", "Hat"), ("2", "Scarf")]

            # a signed delivery is recorded once and applied; an unsigned one is refused, nothing stored
            body = b'{"id": 1, "title": "Red hat", "price": "21.00", "updated_at": "2026-01-03T10:00:00Z"}'
            headers = {"x-acme-shop": "corner", "x-acme-topic": "products/update", "x-acme-delivery": "d-1"}
            assert (await web.post("/acme/webhooks", content=body,
                                   headers={**headers, "x-acme-signature": "bad"})).status_code == 401
            for _ in range(2):
                answer = await web.post("/acme/webhooks", content=body,
                                        headers={**headers, "x-acme-signature": sign(body)})
                assert answer.status_code == 200
            assert answer.json() == {"status": "duplicate"}
            await w.until(lambda: w.scalar("select title from shopsync.products where store_id = %s and id = '1'",
                                           (store,)) == "Red hat", what="the webhook applied")
            assert w.scalar("select price from shopsync.product_variants where store_id = %s and id = '1-1'",
                            (store,)) == 21

            # an incremental sync asks only for what changed since the last one
            platform.products["2"] = {**platform.products["2"], "title": "Wool scarf",
                                      "updated_at": "2026-01-04T10:00:00Z"}
            w.conn.execute("select shopsync.request_sync(%s, array['products'])", (store,))
            await w.until(lambda: w.scalar("select title from shopsync.products where store_id = %s and id = '2'",
                                           (store,)) == "Wool scarf", what="the incremental sync")

            # the merchant disconnects: the store stops, its webhook goes (acme.disconnect, from the
            # contract's remove), and its periodic webhook check does nothing any more
            with as_role(w.conn, "authenticated", user):
                w.conn.execute("select shopsync.disconnect_store(%s)", (store,))
            await w.until(w.idle, what="the disconnect job")
            w.conn.execute("select shopsync.enqueue_job('acme.check_webhooks', p_store_id => %s)", (store,))
            await w.until(w.idle, what="the check after disconnecting")
    assert w.scalar("select status from shopsync.stores where id = %s", (store,)) == "disconnected"
    [gone] = w.jobs("acme.disconnect")
    assert gone["state"] == "succeeded" and gone["result"]["removed"] == {"deleted": [f"{w.web_url}/acme/webhooks"]}
    last = w.jobs("acme.check_webhooks")[-1]
    assert last["state"] == "succeeded" and last["result"] == {"skipped": "the store is not active"}
    assert platform.webhooks == []


async def test_the_toy_connectors_webhook_route_counts_and_refuses(toy_world: AppWorld) -> None:
    async with httpx.AsyncClient(base_url=toy_world.web_url) as web:
        unknown = await web.post("/acme/webhooks", content=b'{"id": 1}', headers={
            "x-acme-shop": "nobody", "x-acme-topic": "products/update", "x-acme-delivery": "d",
            "x-acme-signature": sign(b'{"id": 1}')})
        assert unknown.status_code == 404 and unknown.json()["detail"] == "unknown shop"
        shapeless = await web.post("/acme/webhooks", content=b'{"id": {"a": 1}}', headers={
            "x-acme-shop": "nobody", "x-acme-topic": "products/update", "x-acme-delivery": "d",
            "x-acme-signature": sign(b'{"id": {"a": 1}}')})
        assert shapeless.status_code == 400 and "expected shape (id" in shapeless.json()["detail"]
        other_topic = await web.post("/acme/webhooks", content=b'{"id": 1}', headers={
            "x-acme-shop": "nobody", "x-acme-topic": "orders/create", "x-acme-delivery": "d",
            "x-acme-signature": sign(b'{"id": 1}')})
        assert other_topic.status_code == 400 and "unknown topic" in other_topic.json()["detail"]
        metrics = (await web.get("/metrics")).text
    assert sample(metrics, 'shopsync_webhook_requests_total{platform="acme",outcome="unknown_shop"}') == 1
    assert toy_world.scalar("select count(*) from shopsync.webhook_inbox") == 0
