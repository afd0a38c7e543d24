"""``python -m sandbox.tiktok``: serve a demo seller's shop until interrupted.

Prints the base URL (in place of the API, auth and consent hosts), the app's key, secret and service id, the shop's
id and cipher, and a ready token pair for the demo seller; ``--json`` prints the same as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from sandbox.tiktok import DEMO_APP_KEY, DEMO_APP_SECRET, demo_tiktok_sandbox
from sandbox.tiktok.app import serve_tiktok_sandbox
from sandbox.tiktok.dataset import TtDatasetSpec

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox.tiktok", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8084)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--products", type=int, default=30)
    p.add_argument("--max-skus", type=int, default=3)
    p.add_argument("--orders", type=int, default=20)
    p.add_argument("--warehouses", type=int, default=1)
    p.add_argument("--app-key", default=DEMO_APP_KEY)
    p.add_argument("--app-secret", default=DEMO_APP_SECRET)
    p.add_argument("--redirect-uri", default=None, help="the app's redirect URL (consent → code)")
    p.add_argument("--webhook-url", default=None, help="the app's webhook address (Partner Center)")
    p.add_argument("--rate-limit", type=float, default=None, help="requests per second per app and shop")
    p.add_argument("--search-cap", type=int, default=10_000)
    p.add_argument("--json", action="store_true", help="print the connection details as one JSON line")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec = TtDatasetSpec(seed=args.seed, products=args.products, max_skus=args.max_skus, orders=args.orders,
                         warehouses=args.warehouses)
    sandbox, app, shop = demo_tiktok_sandbox(spec=spec, app_key=args.app_key, app_secret=args.app_secret,
                                             redirect_uri=args.redirect_uri, webhook_url=args.webhook_url,
                                             rate_limit=args.rate_limit, search_cap=args.search_cap, seed=args.seed)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve_tiktok_sandbox(sandbox, port=args.port, host=args.host) as base_url:
        tokens = sandbox.issue_tokens(app.app_key)
        info: dict[str, Any] = {"base_url": base_url, "app_key": app.app_key, "app_secret": app.app_secret,
                                "service_id": app.service_id, "shop_id": shop.id, "shop_cipher": shop.cipher,
                                "open_id": shop.open_id, "tokens": tokens, "rate_limit": sandbox.rate_limit,
                                "products": len(shop.products), "orders": len(shop.orders)}
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            print(f"TikTok Shop sandbox on {base_url}  (replaces the API, auth and consent hosts)", flush=True)
            print(f"  app_key / service_id  {app.app_key} / {app.service_id}")
            print(f"  app_secret            {app.app_secret}")
            print(f"  shop                  {shop.info.name}: id {shop.id}, cipher {shop.cipher} "
                  f"({len(shop.products)} products, {len(shop.orders)} orders)")
            print(f"  consent page          {base_url}/open/authorize?service_id={app.service_id}&state=…")
            limit = "off" if sandbox.rate_limit is None else f"{sandbox.rate_limit:g}/s per app and shop"
            print(f"  rate limit            {limit}", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
