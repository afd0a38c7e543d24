"""``python -m sandbox.woocommerce``: serve a demo store until interrupted.

Prints the base URL, the store's home URL (WordPress in a sub-path), the REST root, a read_write API key pair and,
with ``--https``, the CA file clients must trust. ``--json`` prints the same as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from sandbox.woocommerce import DEMO_STORE, demo_woo_sandbox
from sandbox.woocommerce.app import serve_woocommerce_sandbox
from sandbox.woocommerce.dataset import WooDatasetSpec

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox.woocommerce", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8082)
    p.add_argument("--store", default=DEMO_STORE)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--products", type=int, default=50)
    p.add_argument("--variable-share", type=float, default=0.3, help="share of variable products")
    p.add_argument("--variations", type=int, default=3, help="variations per variable product")
    p.add_argument("--customers", type=int, default=20)
    p.add_argument("--orders", type=int, default=40)
    p.add_argument("--line-items", type=int, default=3, help="max line items per order")
    p.add_argument("--wc-version", default="9.4.2")
    p.add_argument("--wp-version", default="6.7.1")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    p.add_argument("--https", action="store_true", help="serve TLS with a generated CA (see ca_file)")
    p.add_argument("--json", action="store_true", help="print the connection details as one JSON line")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec = WooDatasetSpec(seed=args.seed, products=args.products, variable_share=args.variable_share,
                          variations_per_product=args.variations, customers=args.customers, orders=args.orders,
                          line_items_per_order=args.line_items)
    sandbox, store, (ck, cs) = demo_woo_sandbox(store=args.store, spec=spec, wc_version=args.wc_version,
                                                wp_version=args.wp_version, latency=args.latency)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve_woocommerce_sandbox(sandbox, port=args.port, host=args.host, https=args.https) as base_url:
        info: dict[str, Any] = {
            "base_url": base_url,
            "store": store.name,
            "store_url": sandbox.store_url(store),
            "rest_url": sandbox.rest_url(store),
            "consumer_key": ck,
            "consumer_secret": cs,
            "permissions": "read_write",
            "ca_file": sandbox.ca_file,
        }
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            auth = "HTTP Basic or consumer_key/consumer_secret" if args.https else "OAuth 1.0a (HMAC-SHA256/SHA1)"
            print(f"WooCommerce sandbox on {base_url}", flush=True)
            print(f"  store           {store.name}  ({spec.products} products, {spec.customers} customers, "
                  f"{spec.orders} orders; WooCommerce {store.wc_version})")
            print(f"  store URL       {info['store_url']}")
            print(f"  REST root       {info['rest_url']}   (auth: {auth})")
            print(f"  consumer_key    {ck}")
            print(f"  consumer_secret {cs}")
            if sandbox.ca_file:
                print(f"  ca_file         {sandbox.ca_file}   (trust it: httpx verify=...)")
            sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
