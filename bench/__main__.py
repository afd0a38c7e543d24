"""Run the benchmarks: ``python -m bench [--quick] [names...]`` (default: all).

One throwaway PostgreSQL cluster (fsync off) serves the run; each benchmark gets a fresh, migrated
database. Figures are printed as ratios against a baseline measured in the same run, and the report
is written as Markdown to ``bench/out/latest.md``. Targets are reported as PASS/FAIL, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from bench import (
    agent_lookups,
    crash,
    frontend_reads,
    heartbeat,
    notify_burst,
    notify_outage,
    queue_throughput,
    shopify_incremental,
    shopify_ingest,
    shopify_pacing,
    shopify_webhooks,
    shoprenter_pacing,
    tiktok_ingest,
    tiktok_links,
    wakeup_latency,
    woocommerce_ingest,
)
from bench.common import Bench, Cluster, Report, Row, machine_info

MODULES: dict[str, ModuleType] = {m.NAME: m for m in (queue_throughput, wakeup_latency, heartbeat, crash, shopify_ingest,
                                                       shopify_pacing, shopify_webhooks, shopify_incremental,
                                                       woocommerce_ingest, shoprenter_pacing, tiktok_ingest,
                                                       tiktok_links, frontend_reads, agent_lookups, notify_burst,
                                                       notify_outage)}
ALIASES = {"throughput": "queue_throughput", "queue": "queue_throughput", "wakeup": "wakeup_latency",
           "latency": "wakeup_latency", "ingest": "shopify_ingest", "pacing": "shopify_pacing",
           "webhooks": "shopify_webhooks", "incremental": "shopify_incremental", "woocommerce": "woocommerce_ingest",
           "shoprenter": "shoprenter_pacing", "links": "tiktok_links",
           "reads": "frontend_reads", "rls": "frontend_reads", "lookups": "agent_lookups", "agents": "agent_lookups",
           "burst": "notify_burst", "outage": "notify_outage"}
GROUPS = {"shopify": ["shopify_ingest", "shopify_pacing", "shopify_webhooks", "shopify_incremental"],
          "rest": ["woocommerce_ingest", "shoprenter_pacing"], "tiktok": ["tiktok_ingest", "tiktok_links"],
          "notify": ["notify_burst", "notify_outage"]}
DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "latest.md"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="name",
                        help=f"benchmarks to run (default all): {', '.join(MODULES)}")
    parser.add_argument("--quick", action="store_true", help="small smoke run (fewer jobs and samples)")
    parser.add_argument("--extra-sql", type=Path, metavar="FILE",
                        help="SQL applied after the migrations (to measure a proposed change to the schema)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"Markdown report (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    names = [m for n in args.names for m in GROUPS.get(n, [ALIASES.get(n, n)])] or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    args.names = list(dict.fromkeys(names))
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    report = Report(quick=args.quick)
    print("starting a throwaway PostgreSQL cluster…", flush=True)
    with Cluster(args.extra_sql) as cluster:
        report.machine = machine_info(cluster)
        if args.extra_sql:
            report.machine["extra SQL"] = str(args.extra_sql)
        for name in args.names:
            module = MODULES[name]
            run: Callable[[Bench], list[Row]] = module.run
            bench = Bench(cluster=cluster, quick=args.quick, name=name)
            print(f"\n== {module.TITLE}", flush=True)
            started = time.monotonic()
            try:
                report.rows += run(bench)
            except Exception as exc:  # noqa: BLE001 - report it, run the other benchmarks
                traceback.print_exc()
                report.failures.append(f"{name}: {type(exc).__name__}: {exc}")
            report.notes += bench.notes
            print(f"   ({time.monotonic() - started:.1f} s)", flush=True)
    text = report.text()
    print("\n" + text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.markdown())
    print(f"\nwritten to {args.out}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
