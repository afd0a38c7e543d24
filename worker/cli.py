"""The ``shopsync`` command: migrate, worker, web, dev, status, sync, jobs, check-config, keys, mcp."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any

from worker.config import Settings, load_settings
from worker.errors import ShopsyncError

__all__ = ["main"]


def _print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    def fmt(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, str) and len(value) > 19 and value[4] == "-" and "T" in value:
            return value[:19].replace("T", " ")
        text = str(value)
        return text if len(text) <= 60 else text[:57] + "..."

    cells = [[fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    if not rows:
        print("(none)")


def _direct_dsn(settings: Settings) -> str:
    if settings.database_url is None:
        raise ShopsyncError("this command needs DATABASE_URL (a direct PostgreSQL connection)")
    return settings.database_url.get_secret_value()


def _require_database(settings: Settings) -> None:
    """One quick look first: a database that is down, refuses us or is not migrated is one clear line, not a
    pool timing out with a traceback."""
    from worker.db.probe import probe

    found = probe(settings)
    if not found.ok and "pending" not in found.line:
        raise ShopsyncError(f"database: {found.line}")


async def _with_db(settings: Settings, fn: Callable[[Any], Coroutine[Any, Any, int]]) -> int:
    from worker.db import open_database

    _require_database(settings)
    db = await open_database(settings, listen=False)
    try:
        return await fn(db)
    finally:
        await db.close()


# --- commands ---------------------------------------------------------------------------------------

def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    import psycopg

    from worker.db.probe import describe_error
    from worker.migrate import migrate

    try:
        applied = migrate(_direct_dsn(settings))
    except psycopg.OperationalError as exc:      # could not connect (a failing migration raises its SQL error)
        raise ShopsyncError(f"database: {describe_error(exc)}") from None
    print(f"database is up to date ({len(applied)} migration(s) applied now)")
    return 0


def cmd_supabase_migrations(_settings: Settings | None, args: argparse.Namespace) -> int:
    from pathlib import Path

    from worker.supabase_migrations import summary, write_supabase_migrations

    target = Path(args.dir)
    print(summary(target, write_supabase_migrations(target)))
    return 0


def _freeze_startup_objects() -> None:
    """Leave what imports and set-up created out of every later garbage collection: ~110,000 objects that a
    full collection would otherwise walk each time (tens of ms in which the process answers nothing)."""
    gc.collect()
    gc.freeze()


def cmd_worker(settings: Settings, _args: argparse.Namespace) -> int:
    from worker.logs import configure_logging
    from worker.runtime import run_worker

    configure_logging(settings)
    # background work yields the CPU to the web process where they share a machine (os.nice adds)
    os.nice(max(settings.worker_nice - os.getpriority(os.PRIO_PROCESS, 0), 0))
    _freeze_startup_objects()
    asyncio.run(run_worker(settings))
    return 0


def cmd_web(settings: Settings, _args: argparse.Namespace) -> int:
    from worker.logs import configure_logging
    from worker.web.app import serve

    configure_logging(settings)
    _freeze_startup_objects()
    serve(settings)
    return 0


def cmd_mcp(settings: Settings, _args: argparse.Namespace) -> int:
    """The look-ups as MCP tools over stdio, for an agent host that starts this process (docs/agents.md)."""
    import os

    from worker.logs import configure_logging
    from worker.lookups.mcp_server import run_stdio
    from worker.lookups.settings import lookup_settings

    configure_logging(settings)      # stderr: stdout carries the protocol
    key = os.environ.get("SHOPSYNC_LOOKUP_KEY", "")
    if not key:
        raise ShopsyncError("set SHOPSYNC_LOOKUP_KEY to an organization API key (create_api_key)")
    return asyncio.run(run_stdio(settings, lookup_settings(), key))


def cmd_dev(_settings: Settings | None, args: argparse.Namespace) -> int:
    try:
        from worker.dev.stack import run_dev
    except ModuleNotFoundError as exc:
        if exc.name != "sandbox":
            raise
        print("shopsync dev needs the platform sandboxes, which production installs leave out: run it from a "
              "checkout with `make dev` (it installs them)", file=sys.stderr)
        return 1

    return run_dev(exit_when_ready=args.exit_when_ready)


def cmd_check_config(_settings: Settings | None, args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ShopsyncError as exc:
        print(exc)
        return 1
    problems = settings.problems()
    print(f"database path: {settings.db_mode.value if settings.db_mode else 'none'}")
    if settings.db_mode is not None and not args.offline:
        from worker.db.probe import probe

        found = probe(settings)
        print(f"  database: {found.line}")
        if not found.ok:
            problems.append(f"database: {found.line}")
    for name in ("database_url", "supabase_url", "supabase_service_role_key", "supabase_jwt_secret", "sealing_keys"):
        print(f"  {name}: {'set' if getattr(settings, name) is not None else 'missing'}")
    if settings.sealing_keys is not None:
        from worker.sealing import Sealer

        try:
            sealer = Sealer.from_settings(settings)
            print(f"  sealing: active key id {sealer.active_key_id}")
        except ShopsyncError as exc:
            problems.append(str(exc))
    from worker.connectors.registry import CONNECTORS, connectors

    for path, connector in zip(CONNECTORS, connectors(), strict=True):
        # an unconfigured platform is not a problem: it is simply off
        try:
            state = "configured" if connector.contract.public_config(settings) else "not configured (off)"
        except ShopsyncError as exc:
            state = "invalid"
            problems.append(str(exc))
        print(f"{path.rsplit('.', 1)[-1]}: {state}")
    from worker.connectors.base import load_platform_settings
    from worker.lookups.settings import LookupSettings

    try:
        lookups = load_platform_settings(LookupSettings, "Look-up")
        print(f"look-ups: budget {lookups.timeout_seconds:g} s, phone region "
              f"{lookups.default_phone_region or 'none (numbers need +country)'}")
    except ShopsyncError as exc:
        print("look-ups: invalid")
        problems.append(str(exc))
    from worker.notify.settings import load_notify_settings

    try:
        load_notify_settings()          # nothing is required; a value set wrong is a problem
        print("notifications: settings OK")
    except ShopsyncError as exc:
        print("notifications: invalid")
        problems.append(str(exc))
    for p in problems:
        print(f"problem: {p}")
    print("configuration OK" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


def cmd_generate_key(_settings: Settings | None, args: argparse.Namespace) -> int:
    from worker.sealing import generate_key_spec

    print(generate_key_spec(args.key_id))
    return 0


def cmd_rotate_key(settings: Settings, _args: argparse.Namespace) -> int:
    from worker.keys import rotate_credentials

    async def go(db: Any) -> int:
        count = await rotate_credentials(db, settings, progress=lambda n: print(f"  resealed {n}", flush=True))
        print(f"re-sealed {count} credential(s) with the active key")
        return 0

    return asyncio.run(_with_db(settings, go))


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from worker.rpc import admin, maintenance

    async def go(db: Any) -> int:
        stats = await admin.sync_statistics(db)
        metrics = await maintenance.queue_metrics(db, window_seconds=900)
        features = await maintenance.runtime_features(db)
        if args.json:
            from worker.cli_json import print_json

            print_json({"stores": stats, "queue": metrics, "features": features,
                        "schedules_run_by": "pg_cron" if features.get("pg_cron_schedules") else "worker"})
            return 0
        print("STORES")
        _print_table(stats, ["store_id", "platform", "shop_key", "status", "sync_status", "last_successful_sync_at",
                             "products", "customers", "orders", "jobs_queued", "jobs_dead"])
        print("\nQUEUE")
        by_state: dict[str, int] = {}
        for row in metrics["jobs"]:
            by_state[row["state"]] = by_state.get(row["state"], 0) + int(row["count"])
        _print_table([{"state": s, "jobs": n} for s, n in sorted(by_state.items())], ["state", "jobs"])
        print(f"\noldest due job waiting: {float(metrics['oldest_queued_seconds']):.1f}s")
        print(f"sync schedule lag (most overdue store): {float(metrics.get('schedule_lag_seconds') or 0):.1f}s")
        print("schedules run by: " + ("pg_cron" if features.get("pg_cron_schedules") else "the worker"))
        return 0

    return asyncio.run(_with_db(settings, go))


def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    from worker.rpc import admin, queue

    async def go(db: Any) -> int:
        if args.action == "list":
            rows = await admin.list_jobs(db, state=args.state, kind=args.kind, store_id=args.store, limit=args.limit)
            if args.json:
                from worker.cli_json import print_json

                print_json({"jobs": rows})
                return 0
            _print_table(rows, ["id", "kind", "state", "store_id", "resource", "attempts", "run_at", "last_error"])
        elif args.action == "show":
            from worker.cli_json import print_json

            print_json(await admin.get_job(db, job_id=args.id))
        elif args.action == "retry":
            await queue.retry_job(db, job_id=args.id)
            print(f"job {args.id} queued again")
        elif args.action == "cancel":
            await queue.cancel_job(db, job_id=args.id)
            print(f"job {args.id} cancelled")
        elif args.action == "requeue-store":
            n = await queue.requeue_store_dead_jobs(db, store_id=args.store)
            print(f"{n} dead job(s) of store {args.store} queued again")
        return 0

    return asyncio.run(_with_db(settings, go))


def cmd_sync(settings: Settings, args: argparse.Namespace) -> int:
    from worker.cli_sync import run_sync

    try:
        return asyncio.run(_with_db(settings, lambda db: run_sync(db, args)))
    except KeyboardInterrupt:
        if args.wait:
            print("stopped following; the sync jobs go on (shopsync jobs list --store <id>)", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    from worker.cli_sync import add_sync_parser

    p = argparse.ArgumentParser(prog="shopsync", description="Supabase-native sync engine for commerce.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply SQL migrations and functions (Procfile: release)")
    sm = sub.add_parser("supabase-migrations", help="write shopsync's schema as Supabase CLI migration files")
    sm.add_argument("dir", nargs="?", default="supabase/migrations", help="default: supabase/migrations")
    sub.add_parser("worker", help="run the jobs worker (Procfile: worker)")
    sub.add_parser("web", help="run the web process (Procfile: web)")
    sub.add_parser("mcp", help="serve the look-ups as MCP tools over stdio (SHOPSYNC_LOOKUP_KEY: an API key)")
    dev = sub.add_parser("dev", help="run everything locally: PostgreSQL, migrations, web, worker")
    dev.add_argument("--exit-when-ready", action="store_true", help="start, check, print status and stop")
    sub.add_parser("status", help="stores, last syncs and queue depth").add_argument(
        "--json", action="store_true", help="print one JSON document")
    add_sync_parser(sub)
    cc = sub.add_parser("check-config", help="report missing or invalid configuration and whether the database "
                                             "answers (no secrets printed)")
    cc.add_argument("--offline", action="store_true", help="do not connect to the database")
    gk = sub.add_parser("generate-key", help="print a new sealing key pair for SHOPSYNC_SEALING_KEYS")
    gk.add_argument("--key-id", default=None)
    sub.add_parser("rotate-key", help="re-seal all credentials with the first (active) sealing key")
    jobs = sub.add_parser("jobs", help="list, inspect, retry or cancel jobs")
    jsub = jobs.add_subparsers(dest="action", required=True)
    jl = jsub.add_parser("list")
    jl.add_argument("--state", choices=["queued", "running", "succeeded", "dead", "cancelled"])
    jl.add_argument("--kind")
    jl.add_argument("--store")
    jl.add_argument("--limit", type=int, default=50)
    jl.add_argument("--json", action="store_true", help="print one JSON document")
    for name in ("show", "retry", "cancel"):
        jsub.add_parser(name).add_argument("id", type=int)
    jsub.add_parser("requeue-store").add_argument("store")
    return p


_NEEDS_SETTINGS = {"migrate", "worker", "web", "status", "sync", "rotate-key", "jobs", "mcp"}
_COMMANDS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "migrate": cmd_migrate, "worker": cmd_worker, "web": cmd_web, "dev": cmd_dev, "status": cmd_status,
    "check-config": cmd_check_config, "generate-key": cmd_generate_key, "rotate-key": cmd_rotate_key,
    "jobs": cmd_jobs, "sync": cmd_sync, "mcp": cmd_mcp, "supabase-migrations": cmd_supabase_migrations,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings() if args.command in _NEEDS_SETTINGS else None
        if settings is not None and args.command != "migrate" and settings.db_mode is None:
            raise ShopsyncError("no database configured: set DATABASE_URL or SUPABASE_URL + "
                                "SUPABASE_SERVICE_ROLE_KEY (see `shopsync check-config`)")
        return _COMMANDS[args.command](settings, args)
    except ShopsyncError as exc:
        print(f"shopsync {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
