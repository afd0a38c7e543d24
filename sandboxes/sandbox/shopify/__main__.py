"""``python -m sandbox.shopify``: serve a demo shop until interrupted.

Prints the base URL, the shop's base URL (use it in place of ``https://demo.myshopify.com``), the app
credentials and a ready-to-use expiring token pair; ``--json`` prints the same as one JSON line.
``--writes`` grants the write scopes cross-store flows need; ``--lose-answers 0.1`` makes 10% of those writes
commit and then lose their answer (a benchmark's "the write happened but the client never heard").
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from sandbox.shopify import (
    DEFAULT_SCOPES,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_SHOP,
    FLOW_MUTATIONS,
    WRITE_SCOPES,
    demo_sandbox,
)
from sandbox.shopify.app import serve_shopify_sandbox
from sandbox.shopify.dataset import DatasetSpec

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox.shopify", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--shop", default=DEMO_SHOP)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--products", type=int, default=50)
    p.add_argument("--variants", type=int, default=3, help="variants per product")
    p.add_argument("--customers", type=int, default=20)
    p.add_argument("--orders", type=int, default=40)
    p.add_argument("--line-items", type=int, default=3, help="max line items per order")
    p.add_argument("--locations", type=int, default=2)
    p.add_argument("--plan", default="standard", choices=["standard", "advanced", "plus", "enterprise"])
    p.add_argument("--client-id", default=DEMO_CLIENT_ID)
    p.add_argument("--client-secret", default=DEMO_CLIENT_SECRET)
    p.add_argument("--scopes", default=",".join(DEFAULT_SCOPES))
    p.add_argument("--writes", action="store_true", help=f"also grant {','.join(WRITE_SCOPES)}")
    p.add_argument("--lose-answers", type=float, default=0.0, metavar="P",
                   help="share of flow writes that commit and then lose their answer (0..1)")
    p.add_argument("--lose-answers-how", default="drop", choices=["drop", "hang"],
                   help="drop: connection closed without a body; hang: no answer for 30 s, then 504")
    p.add_argument("--no-throttle", action="store_true", help="never answer THROTTLED (costs still reported)")
    p.add_argument("--bucket-size", type=float, default=None)
    p.add_argument("--restore-rate", type=float, default=None)
    p.add_argument("--access-token-ttl", type=float, default=3600.0)
    p.add_argument("--compliance-uri", default=None,
                   help="where the app's compliance webhooks go (set in shopify.app.toml on real Shopify)")
    p.add_argument("--json", action="store_true", help="print the connection details as one JSON line")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec = DatasetSpec(seed=args.seed, products=args.products, variants_per_product=args.variants,
                       customers=args.customers, orders=args.orders, line_items_per_order=args.line_items,
                       locations=args.locations)
    scopes = tuple(s for s in args.scopes.split(",") if s)
    if args.writes:
        scopes += tuple(s for s in WRITE_SCOPES if s not in scopes)
    sandbox, app, shop = demo_sandbox(shop=args.shop, spec=spec, client_id=args.client_id,
                                      client_secret=args.client_secret, scopes=scopes, plan=args.plan,
                                      throttle=not args.no_throttle, bucket_size=args.bucket_size,
                                      restore_rate=args.restore_rate)
    app.access_token_ttl = args.access_token_ttl
    app.compliance_uri = args.compliance_uri
    if args.lose_answers > 0:
        sandbox.faults.lose_answers(args.lose_answers, mutation=FLOW_MUTATIONS, how=args.lose_answers_how)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve_shopify_sandbox(sandbox, port=args.port, host=args.host) as base_url:
        tokens = sandbox.issue_token(shop, app.client_id)
        info: dict[str, Any] = {
            "base_url": base_url,
            "shop": shop.domain,
            "shop_url": sandbox.shop_url(shop),
            "graphql_url": sandbox.graphql_url(shop),
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "scopes": list(scopes),
            "access_token": tokens["access_token"],
            "refresh_token": tokens.get("refresh_token"),
        }
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            print(f"Shopify sandbox on {base_url}", flush=True)
            print(f"  shop          {shop.domain}  ({spec.products} products, {spec.customers} customers, "
                  f"{spec.orders} orders)")
            print(f"  shop base URL {info['shop_url']}   (replaces https://{shop.domain})")
            print(f"  GraphQL       {info['graphql_url']}")
            print(f"  client_id     {app.client_id}")
            print(f"  client_secret {app.client_secret}")
            print(f"  scopes        {','.join(scopes)}")
            print(f"  access_token  {info['access_token']}  (expires in {int(app.access_token_ttl)} s)")
            print(f"  refresh_token {info['refresh_token']}", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
