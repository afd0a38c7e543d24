"""What the Shopify benchmarks share: a sandbox in its own process, the store wiring, and driving a sync.

The sandbox runs in a child process (``python -m bench.shopify_common serve ...``), so neither its memory
nor its CPU/GIL counts against what is measured. It is ``sandbox.shopify``'s own server, like
``python -m sandbox.shopify --json`` (same options, same JSON line with the connection details), plus a
small control channel on stdin/stdout: one JSON command per line in, one JSON answer per line out
(counters, a request-log summary, merchant edits, REST webhook payloads), so a benchmark can read the
sandbox's counters and change the shop without sharing its process.

The store is wired as ``tests/shopify_world.py`` does it: a user and personal organization, the store from
``shopsync.upsert_store``, sandbox-issued tokens sealed with ``save_tokens``, settings from the same
environment variables a deployment uses (``shopify_env``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any
from uuid import UUID

import psycopg
from pydantic import SecretStr

from bench.common import ROOT, stop_process
from worker.config import Settings, load_settings
from worker.connectors.shopify.graphql import ShopifyGraphQL
from worker.connectors.shopify.oauth import TokenSet
from worker.connectors.shopify.settings import ShopifySettings
from worker.connectors.shopify.tokens import save_tokens
from worker.db.direct import DirectDatabase
from worker.jobs.registry import Job, JobContext
from worker.sealing import Sealer, generate_key_spec
from worker.sync.engine import SyncContext, sync_handler

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "SHOP",
    "SYNCED_TABLES",
    "SandboxProcess",
    "StoreWiring",
    "free_port",
    "run_sync",
    "shopify_env",
    "table_counts",
    "wire_store",
]

SHOP = "bench.myshopify.com"
CLIENT_ID = "shopsync-bench-app"
CLIENT_SECRET = "shpss_bench_secret"  # noqa: S105 - a local sandbox credential
SYNCED_TABLES = ("inventory_locations", "products", "product_variants", "inventory_levels", "orders",
                 "order_line_items", "order_fulfillments", "customers")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the sandbox in its own process ------------------------------------------------------------------

class SandboxProcess:
    """``python -m bench.shopify_common serve …`` with a control channel; ``info`` is its JSON line."""

    def __init__(self, *, products: int, orders: int, customers: int = 20, variants: int = 3, locations: int = 2,
                 throttle: bool = False, plan: str = "standard", bulk_run_seconds: float = 0.0,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.args = ["--port", str(self.port), "--products", str(products), "--orders", str(orders),
                     "--customers", str(customers), "--variants", str(variants), "--locations", str(locations),
                     "--plan", plan, "--bulk-run-seconds", str(bulk_run_seconds)]
        if not throttle:
            self.args.append("--no-throttle")
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> SandboxProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.shopify_common", "serve", *self.args], cwd=ROOT,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise RuntimeError(f"the sandbox process exited ({self.proc.returncode}) before it was ready")
        self.info = json.loads(line)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc is not None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()     # the control loop ends: the server stops cleanly
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                stop_process(self.proc)  # type: ignore[arg-type]

    @property
    def shop_url(self) -> str:
        return str(self.info["shop_url"])

    @property
    def base_url(self) -> str:
        return str(self.info["base_url"])

    def call(self, cmd: str, **args: Any) -> Any:
        """One control command; returns its answer (raises what the sandbox process reported)."""
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process is gone")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"sandbox command {cmd} failed: {answer['error']}")
        return answer["ok"]


def _serve(argv: list[str]) -> int:
    from sandbox.shopify import DatasetSpec, ShopifySandbox, serve_shopify_sandbox

    p = argparse.ArgumentParser(prog="python -m bench.shopify_common serve")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--products", type=int, default=50)
    p.add_argument("--orders", type=int, default=40)
    p.add_argument("--customers", type=int, default=20)
    p.add_argument("--variants", type=int, default=3)
    p.add_argument("--locations", type=int, default=2)
    p.add_argument("--plan", default="standard")
    p.add_argument("--no-throttle", action="store_true")
    p.add_argument("--bulk-run-seconds", type=float, default=0.0)
    args = p.parse_args(argv)
    spec = DatasetSpec(products=args.products, orders=args.orders, customers=args.customers,
                       variants_per_product=args.variants, locations=args.locations)
    sandbox = ShopifySandbox(throttle=not args.no_throttle, bulk_run_seconds=args.bulk_run_seconds,
                             bulk_created_delay=0.0)
    sandbox.add_app(CLIENT_ID, CLIENT_SECRET)
    shop = sandbox.add_shop(SHOP, spec, plan=args.plan)
    out: IO[str] = sys.stdout
    with serve_shopify_sandbox(sandbox, port=args.port) as base_url:
        token = sandbox.issue_token(shop, CLIENT_ID)
        out.write(json.dumps({"base_url": base_url, "shop": shop.domain, "shop_url": sandbox.shop_url(shop),
                              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token_response": token}) + "\n")
        out.flush()
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                command = json.loads(line)
                answer: dict[str, Any] = {"ok": _control(sandbox, shop, command)}
            except Exception as exc:  # noqa: BLE001 - report it to the benchmark, keep serving
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            out.write(json.dumps(answer, default=str) + "\n")
            out.flush()
    return 0


def _control(sandbox: Any, shop: Any, command: Mapping[str, Any]) -> Any:
    cmd = command.get("cmd")
    if cmd == "counters":
        return dict(sandbox.counters)
    if cmd == "requests":
        # GraphQL requests since ``since`` (time.time()): when, status, and the cost detail
        since = float(command.get("since") or 0.0)
        return [{"at": r.at, "status": r.status, "endpoint": r.endpoint, "duration": r.duration, "detail": r.detail}
                for r in list(sandbox.request_log) if r.at >= since and r.endpoint in ("graphql", "bulk")]
    if cmd == "clear_log":
        sandbox.request_log.clear()
        sandbox.counters.clear()
        return True
    if cmd == "touch_products":
        # the first n products (spread over the catalog) get a new updatedAt, without sending webhooks
        ids = shop.product_ids()
        n = int(command["n"])
        step = max(1, len(ids) // n)
        chosen = ids[::step][:n]
        for pid in chosen:
            shop.update_product(pid, emit=False, title=f"changed {uuid.uuid4().hex[:8]}")
        return chosen
    if cmd == "product_payloads":
        # REST products/update bodies for the first n products, as Shopify would send them
        n = int(command["n"])
        return [shop.nodes.product_rest(i) for i in range(n)]
    if cmd == "edit_variants":
        # merchant edits: [{"id", "price"?, "available"?}] (each sends its webhooks, like an edit in the admin)
        location = shop.location_ids()[0]
        for edit in command["edits"]:
            if edit.get("price") is not None:
                shop.update_variant(int(edit["id"]), price=str(edit["price"]))
            if edit.get("available") is not None:
                shop.set_inventory(int(edit["id"]), location, int(edit["available"]))
        return len(command["edits"])
    if cmd == "webhooks":
        # hold deliveries / release them (shuffled, some sent twice) / wait until every one went out
        hooks = sandbox.webhooks
        if command.get("duplicate_rate") is not None:
            hooks.faults.duplicate_rate = float(command["duplicate_rate"])
        action = command.get("action")
        if action == "hold":
            hooks.hold()
        elif action == "release":
            hooks.release(shuffle=bool(command.get("shuffle")))
        elif action == "wait_idle":
            return hooks.wait_idle(float(command.get("timeout") or 60))
        return {"delivered": len(hooks.records(outcome="delivered"))}
    if cmd == "bulk_ops":
        return [{"id": op.id, "objects": op.object_count, "lines": op.lines_written, "size": op.file_size,
                 "created_us": op.created_us, "completed_us": op.completed_us}
                for op in list(sandbox.bulk.ops.values())]
    raise ValueError(f"unknown command {cmd!r}")


# --- store wiring --------------------------------------------------------------------------------------

def shopify_env(dsn: str, sandbox: SandboxProcess, *, public_url: str, sealing_keys: str) -> dict[str, str]:
    """The environment a deployed web/worker process gets (``SHOPSYNC_*`` + DATABASE_URL), nothing else of ours."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHOPSYNC_", "SUPABASE_", "DATABASE_URL", "TEST_EFFECTS_DSN"))}
    env.update({"DATABASE_URL": dsn, "PYTHONPATH": str(ROOT), "SHOPSYNC_SEALING_KEYS": sealing_keys,
                "SHOPSYNC_PUBLIC_URL": public_url, "SHOPSYNC_LOCAL_DEV": "true", "SHOPSYNC_LOG_LEVEL": "WARNING",
                "SHOPSYNC_SHOPIFY_CLIENT_ID": CLIENT_ID, "SHOPSYNC_SHOPIFY_CLIENT_SECRET": CLIENT_SECRET,
                "SHOPSYNC_SHOPIFY_SHOP_BASE_URL": f"{sandbox.base_url}/shops/{{shop}}"})
    return env


@dataclass
class StoreWiring:
    dsn: str
    store_id: UUID
    core: Settings
    shopify: ShopifySettings
    sealing_keys: str
    env: dict[str, str] = field(default_factory=dict)


def wire_store(dsn: str, sandbox: SandboxProcess, *, public_url: str = "http://127.0.0.1:9") -> StoreWiring:
    """An active store for the sandbox's shop with its tokens saved; the in-process connector configured."""
    from worker.connectors.shopify import CONNECTOR

    keys = generate_key_spec("bench")
    env = shopify_env(dsn, sandbox, public_url=public_url, sealing_keys=keys)
    core = load_settings(_env_file=None, database_url=dsn, sealing_keys=keys, public_url=public_url,
                         local_dev=True, log_level="WARNING")
    shopify = ShopifySettings(_env_file=None, client_id=CLIENT_ID, client_secret=SecretStr(CLIENT_SECRET),  # type: ignore[call-arg]
                              shop_base_url=f"{sandbox.base_url}/shops/{{shop}}")
    CONNECTOR._settings = shopify
    with psycopg.connect(dsn, autocommit=True) as conn:
        user = uuid.uuid4()
        conn.execute("insert into auth.users (id, email) values (%s, %s)", (user, f"{user.hex[:8]}@bench.test"))
        row = conn.execute("select m.organization_id from shopsync.organization_members m "
                           "join shopsync.organizations o on o.id = m.organization_id "
                           "where m.user_id = %s and o.personal", (user,)).fetchone()
        assert row is not None
        found = conn.execute("select shopsync.upsert_store(%s, 'shopify', %s)", (row[0], SHOP)).fetchone()
        assert found is not None
        store_id = UUID(str(found[0]))

    async def save() -> None:
        db = await DirectDatabase.connect(dsn, listen=False)
        try:
            await save_tokens(db, Sealer.from_settings(core), store_id,
                              TokenSet.from_response(sandbox.info["token_response"], datetime.now(UTC)))
        finally:
            await db.close()

    asyncio.run(save())
    return StoreWiring(dsn, store_id, core, shopify, keys, env)


def table_counts(dsn: str, tables: tuple[str, ...] = SYNCED_TABLES) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        out = {}
        for t in tables:
            row = conn.execute(f"select count(*) from shopsync.{t}").fetchone()  # noqa: S608 - fixed names
            out[t] = int(row[0]) if row else 0
    return out


# --- driving the real sync handler ---------------------------------------------------------------------

@dataclass
class SyncRun:
    result: dict[str, Any]
    seconds: float
    clients: list[ShopifyGraphQL]

    @property
    def requests(self) -> int:
        return sum(c.stats.requests for c in self.clients)

    @property
    def throttled(self) -> int:
        return sum(c.stats.throttled for c in self.clients)


async def run_sync(wiring: StoreWiring, resource: str, mode: str, *, db: DirectDatabase | None = None,
                   on_client: Callable[[ShopifyGraphQL], None] | None = None, **options: Any) -> SyncRun:
    """One ``shopify.sync`` job as the worker runs it: request_sync → claim → ``sync_handler(shopify_sync_source(
    CONNECTOR.open_sync_client …))`` → complete. The opener is the connector's own, wrapped only to keep the
    client (its stats: requests, throttled)."""
    from worker.connectors.shopify import CONNECTOR
    from worker.connectors.shopify.sync import shopify_sync_source

    clients: list[ShopifyGraphQL] = []

    @asynccontextmanager
    async def opener(ctx: SyncContext) -> AsyncIterator[ShopifyGraphQL]:
        async with CONNECTOR.open_sync_client(ctx) as client:
            clients.append(client)
            if on_client is not None:
                on_client(client)
            yield client

    handler = sync_handler(shopify_sync_source(opener, **options))
    own = db is None
    database = db or await DirectDatabase.connect(wiring.dsn, listen=False)
    try:
        await database.rpc("request_sync", {"p_store_id": wiring.store_id, "p_resources": [resource], "p_mode": mode})
        rows = await database.rpc("claim_jobs", {"p_worker": "bench", "p_limit": 1, "p_kinds": ["shopify.sync"],
                                                  "p_lease_seconds": 3600})   # no heartbeat here
        if not rows:
            raise RuntimeError(f"no shopify.sync job to claim for {resource}")
        job = Job.from_row(rows[0])
        started = time.perf_counter()
        result = dict(await handler(job, JobContext(db=database, settings=wiring.core, worker_id="bench")))
        seconds = time.perf_counter() - started
        await database.rpc("complete_jobs", {"p_worker": "bench", "p_ids": [job.id], "p_results": [result]})
    finally:
        if own:
            await database.close()
    return SyncRun(result, seconds, clients)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        sys.exit(_serve(sys.argv[2:]))
    sys.exit("usage: python -m bench.shopify_common serve [--port P --products N --orders N --no-throttle ...]")
