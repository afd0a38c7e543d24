"""Shopify pacing: how much of the GraphQL restore rate a real sync uses, and whether it is ever throttled.

The sandbox (own process, plan standard: 100 points/s restore, 1,000-point bucket, throttling ON) holds a
shop whose products are all changed after a full sync, so the incremental products sync that follows is a
long, steady stream of real ``products`` pages (16 products per page with variants and inventory levels).
The figures come from the sandbox's request log: each GraphQL request's requested and actual cost and its
start time. Steady state begins at the first request that, by a replay of the sandbox's bucket, found it
holding less than its requested cost + 50 points (the initial 1,000 points are spent and requests now wait
for restore); see ``steady_state``. Points used = actual cost (Shopify charges the requested
cost up front and refunds the difference, so the bucket's net drain is the actual cost).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from bench.common import Bench, Row
from bench.shopify_common import SandboxProcess, run_sync, wire_store

NAME = "shopify_pacing"
TITLE = "Shopify pacing: restore-rate use of a real incremental sync (plan standard, throttling on)"

RESTORE = 100.0
CAPACITY = 1000.0
TARGET_SHARE = 0.90


def steady_state(requests: list[dict[str, Any]]) -> tuple[int, float, float]:
    """(index where steady state begins, points used per second from there, the window in seconds).

    Replays the sandbox's bucket from the log (take the requested cost at a request's start, refund
    requested − actual after it). Steady state begins at the first request after the first that found the
    bucket holding less than its requested cost + 50 points (half a second of restore): the initial bucket
    is spent and requests wait for restore. The rate is the actual cost of the requests from there to the
    last-but-one over the time from the first of them to the start of the last request."""
    level, at = CAPACITY, requests[0]["start"]
    begin = len(requests) - 1
    for i, r in enumerate(requests):
        level = min(CAPACITY, level + (r["start"] - at) * RESTORE)
        at = r["start"]
        if i > 0 and level < r["requested"] + 0.5 * RESTORE:
            begin = i
            break
        level -= r["actual"]
    window = requests[-1]["start"] - requests[begin]["start"]
    points = sum(r["actual"] for r in requests[begin:-1])
    return begin, (points / window if window > 0 else float("nan")), window


def run(bench: Bench) -> list[Row]:
    seconds = 8.0 if bench.quick else 30.0
    dsn = bench.db()
    # enough changed products for the sync to run about ``seconds`` past the initial bucket (a page of 16
    # products costs ~600 points actual, ~880 requested)
    products = 16 * math.ceil((CAPACITY + RESTORE * seconds) / 600)
    with SandboxProcess(products=products, orders=0, customers=0, variants=3, locations=2, throttle=True,
                        plan="standard") as sandbox:
        wiring = wire_store(dsn, sandbox)
        bench.say(f"full products sync of {products:,} products (bulk), then every product changes")
        asyncio.run(run_sync(wiring, "products", "full", bulk_poll_interval=0.2))
        changed = sandbox.call("touch_products", n=products)
        sandbox.call("clear_log")
        time.sleep(CAPACITY / RESTORE)          # the bulk calls' points restored: start from a full bucket
        since = time.time()
        bench.say(f"incremental products sync over {len(changed):,} changed products (~{seconds:.0f} s)")
        sync = asyncio.run(run_sync(wiring, "products", "incremental"))
        log = sandbox.call("requests", since=since)
        counters = sandbox.call("counters")
    # "start" = when the sandbox answered: the bucket is charged while the query executes, which is most of
    # a request's time, so the answer time is closer to it than the arrival time
    requests = sorted(({"start": r["at"], "requested": float(r["detail"].get("requested", 0)),
                        "actual": float(r["detail"].get("actual", 0))}
                       for r in log if r["endpoint"] == "graphql" and r["status"] == 200), key=lambda r: r["start"])
    begin, rate, window = steady_state(requests)
    whole = requests[-1]["start"] - requests[0]["start"]
    total_actual = sum(r["actual"] for r in requests)
    throttled = int(counters.get("throttled", 0))
    share = rate / RESTORE
    bench.note(f"{len(requests)} GraphQL requests in {sync.seconds:.1f} s, {total_actual:,.0f} points used; steady "
               f"state from request {begin + 1} ({requests[begin]['start'] - requests[0]['start']:.1f} s in), "
               f"the first that found the replayed bucket below its requested cost + 50 points; "
               f"mean requested/actual cost per page {sum(r['requested'] for r in requests) / len(requests):.0f}/"
               f"{total_actual / len(requests):.0f}; rows written {sync.result.get('inserted', 0):,} inserted "
               f"+ {sync.result.get('updated', 0):,} updated")
    if sync.seconds < seconds:
        bench.note(f"the run was shorter than the intended {seconds:.0f} s")
    return [
        Row(NAME, "restore rate (baseline)", RESTORE, "points/s"),
        Row(NAME, f"points used per second, steady state ({window:.1f} s window)", rate, "points/s",
            f"restore {RESTORE:.0f} points/s", share, f"≥ {TARGET_SHARE:.0%} of restore", share >= TARGET_SHARE),
        Row(NAME, "points used per second, whole run incl. the initial bucket", total_actual / whole if whole else None,
            "points/s", f"restore {RESTORE:.0f} points/s", (total_actual / whole / RESTORE) if whole else None),
        Row(NAME, "THROTTLED responses (sandbox counter)", throttled, "", target="= 0", ok=throttled == 0),
        Row(NAME, "THROTTLED seen by the client (stats.throttled)", sync.throttled, "", target="= 0",
            ok=sync.throttled == 0),
        Row(NAME, "client time spent pacing (sleeping)", sum(c.stats.slept_seconds for c in sync.clients), "s",
            f"sync {sync.seconds:.1f} s", sum(c.stats.slept_seconds for c in sync.clients) / sync.seconds),
    ]
