"""``python -m sandbox.shoprenter``: serve a demo shop with the demo app installed until interrupted.

Prints the base URL, the OAuth base URL (in place of ``https://oauth.app.shoprenter.net``), the API URL template
(in place of ``https://{shop}.api2.myshoprenter.hu/api``) and the app credentials; ``--json`` prints the same as
one JSON line.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from sandbox.shoprenter import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_SHOP, demo_shoprenter_sandbox
from sandbox.shoprenter.app import serve_shoprenter_sandbox
from sandbox.shoprenter.dataset import SrDatasetSpec

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox.shoprenter", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8083)
    p.add_argument("--shop", default=DEMO_SHOP)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--products", type=int, default=50)
    p.add_argument("--customers", type=int, default=20)
    p.add_argument("--orders", type=int, default=40)
    p.add_argument("--line-items", type=int, default=3, help="max line items per order")
    p.add_argument("--client-id", default=DEMO_CLIENT_ID)
    p.add_argument("--client-secret", default=DEMO_CLIENT_SECRET)
    p.add_argument("--redirect-uri", default=None, help="the app's RedirectUri (for install GETs)")
    p.add_argument("--uninstall-uri", default=None)
    p.add_argument("--rate-limit", type=float, default=3.0, help="requests per second per app and shop")
    p.add_argument("--no-rate-limit", action="store_true")
    p.add_argument("--timezone", default="Europe/Budapest", help="the shop's time zone for dates")
    p.add_argument("--access-token-ttl", type=float, default=3600.0)
    p.add_argument("--json", action="store_true", help="print the connection details as one JSON line")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec = SrDatasetSpec(seed=args.seed, products=args.products, customers=args.customers, orders=args.orders,
                         line_items_per_order=args.line_items)
    sandbox, app, shop = demo_shoprenter_sandbox(
        shop=args.shop, spec=spec, client_id=args.client_id, client_secret=args.client_secret,
        redirect_uri=args.redirect_uri, uninstall_uri=args.uninstall_uri,
        rate_limit=None if args.no_rate_limit else args.rate_limit, timezone=args.timezone, seed=args.seed)
    app.access_token_ttl = args.access_token_ttl
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve_shoprenter_sandbox(sandbox, port=args.port, host=args.host) as base_url:
        info: dict[str, Any] = {
            "base_url": base_url,
            "shop": shop.name,
            "oauth_base_url": sandbox.oauth_base_url,
            "token_url": f"{sandbox.oauth_base_url}/{shop.name}/app/token",
            "api_url_template": sandbox.api_url_template,
            "api_url": sandbox.api_url(shop),
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "app_id": app.app_id,
            "rate_limit": sandbox.rate_limit,
        }
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            print(f"ShopRenter sandbox on {base_url}", flush=True)
            print(f"  shop             {shop.name}  ({spec.products} products, {spec.customers} customers, "
                  f"{spec.orders} orders; app installed)")
            print(f"  oauth base URL   {info['oauth_base_url']}   (replaces https://oauth.app.shoprenter.net)")
            print(f"  token URL        {info['token_url']}")
            print(f"  api URL template {info['api_url_template']}   (replaces https://{{shop}}.api2.myshoprenter.hu/api)")
            print(f"  client_id        {app.client_id}")
            print(f"  client_secret    {app.client_secret}")
            limit = "off" if sandbox.rate_limit is None else f"{sandbox.rate_limit:g}/s per app and shop"
            print(f"  rate limit       {limit}", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
