"""What the WooCommerce and ShopRenter benchmarks share: a sandbox in its own process (its ``--json`` line
read back), a store wired with sealed credentials, and one ``<platform>.sync`` job run as the worker runs it
(request_sync → claim → the connector's registered handler → complete)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from bench.common import ROOT, cpu_seconds, stop_process
from worker.config import Settings
from worker.connectors.store_secrets import save_secrets
from worker.db.direct import DirectDatabase
from worker.jobs.registry import Job, JobContext, JobRegistry
from worker.sealing import Sealer

__all__ = ["JsonSandbox", "run_platform_sync", "wire_rest_store"]


class JsonSandbox:
    """``python -m sandbox.<platform> --json …`` in a child process; ``info`` is its JSON line."""

    def __init__(self, module: str, *args: str) -> None:
        self.command = [sys.executable, "-m", module, "--json", *args]
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> JsonSandbox:
        # this checkout's sandboxes first (an installed shopsync-sandboxes may be another checkout's)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT), str(ROOT / "sandboxes")))}
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{' '.join(self.command)} did not start: "
                               f"{(self.proc.stderr.read() if self.proc.stderr else b'').decode()[-2000:]}")
        self.info = json.loads(line)
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU the sandbox process has used so far."""
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)

    def __exit__(self, *_exc: object) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def wire_rest_store(dsn: str, core: Settings, platform: str, shop_key: str, kind: str, secrets: Mapping[str, Any],
                    *, access_expires_at: datetime | None = None) -> UUID:
    """An active store of a new user's personal organization, its secrets sealed as the connector seals them."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        user = uuid.uuid4()
        conn.execute("insert into auth.users (id, email) values (%s, %s)", (user, f"{user.hex[:8]}@bench.test"))
        row = conn.execute("select m.organization_id from shopsync.organization_members m "
                           "where m.user_id = %s", (user,)).fetchone()
        assert row is not None
        found = conn.execute("select shopsync.upsert_store(%s, %s, %s)", (row[0], platform, shop_key)).fetchone()
        assert found is not None
        store_id = UUID(str(found[0]))

    async def save() -> None:
        db = await DirectDatabase.connect(dsn, listen=False)
        try:
            await save_secrets(db, Sealer.from_settings(core), store_id, kind, secrets,
                               access_expires_at=access_expires_at)
        finally:
            await db.close()

    import asyncio
    asyncio.run(save())
    return store_id


async def run_platform_sync(db: DirectDatabase, core: Settings, registry: JobRegistry, platform: str,
                            store_id: UUID, resource: str, mode: str = "full",
                            worker_id: str = "bench") -> tuple[dict[str, Any], float]:
    """One sync job through the registered handler; (its result, seconds)."""
    kind = f"{platform}.sync"
    await db.rpc("request_sync", {"p_store_id": store_id, "p_resources": [resource], "p_mode": mode})
    rows = await db.rpc("claim_jobs", {"p_worker": worker_id, "p_limit": 1, "p_kinds": [kind],
                                       "p_lease_seconds": 3600})
    if not rows:
        raise RuntimeError(f"no {kind} job to claim for {resource}")
    job = Job.from_row(rows[0])
    started = time.perf_counter()
    result = dict(await registry.handler(kind)(job, JobContext(db=db, settings=core, worker_id=worker_id)) or {})
    seconds = time.perf_counter() - started
    await db.rpc("complete_jobs", {"p_worker": worker_id, "p_ids": [job.id], "p_results": [result]})
    return result, seconds
