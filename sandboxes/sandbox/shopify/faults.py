"""HTTP fault injection: make the next N requests to an endpoint fail the ways Shopify's edge fails.

Endpoints are ``authorize``, ``token`` (``oauth`` matches both), ``graphql``, ``bulk`` (result downloads)
or ``*``. Kinds:

* ``status`` — answer at once with ``status`` (429 carries ``Retry-After``; 401 has Shopify's
  "[API] Invalid API key or access token" body; 502/503/504 an HTML page, as a CDN would);
* ``hang`` — hold the request for ``seconds`` (longer than the client's timeout), then 504;
* ``latency`` — delay by ``seconds`` and then serve normally (stacks with other rules).

``remaining=None`` keeps a rule until ``clear()``; ``probability`` < 1 makes it intermittent (seeded). The rule
queue itself is ``sandbox.faults``; this module says what Shopify's endpoints and fault answers are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sandbox import faults

__all__ = ["FaultInjector", "FaultRule", "classify_path", "fault_body"]

ENDPOINTS = ("authorize", "token", "graphql", "bulk", "other")


@dataclass
class FaultRule(faults.FaultRule):
    def applies(self, endpoint: str, shop: str | None) -> bool:
        if not self.live_for(shop):
            return False
        if self.endpoint == "*":
            return endpoint != "other"
        if self.endpoint == "oauth":
            return endpoint in ("authorize", "token")
        return self.endpoint == endpoint


def classify_path(path: str) -> tuple[str, str | None]:
    """-> (endpoint, shop domain from a ``/shops/{shop}`` prefix or None)."""
    shop = None
    if path.startswith("/shops/"):
        rest = path[len("/shops/"):]
        shop, _, tail = rest.partition("/")
        path = "/" + tail
    if path.startswith("/admin/oauth/authorize"):
        return "authorize", shop
    if path.startswith("/admin/oauth/access_token"):
        return "token", shop
    if path.startswith("/admin/api/") and path.endswith("/graphql.json"):
        return "graphql", shop
    if path.startswith("/_sandbox/bulk/"):
        return "bulk", shop
    return "other", shop


def fault_body(status: int) -> tuple[bytes, str]:
    """(body, content type) for an injected status."""
    if status == 429:
        msg = "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
        return json.dumps({"errors": msg}).encode(), "application/json"
    if status == 401:
        msg = "[API] Invalid API key or access token (unrecognized login or wrong password)"
        return json.dumps({"errors": msg}).encode(), "application/json"
    if status in (502, 503, 504):
        title = {502: "502 Bad Gateway", 503: "503 Service Unavailable", 504: "504 Gateway Timeout"}[status]
        return f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>".encode(), \
            "text/html; charset=utf-8"
    return json.dumps({"errors": "Internal Server Error"}).encode(), "application/json"


@dataclass
class FaultInjector(faults.ShopFaultInjector[FaultRule]):
    def new_rule(self, **fields: Any) -> FaultRule:
        return FaultRule(**fields)

    def rate_limit_next(self, n: int = 1, *, retry_after: float = 2.0, endpoint: str = "graphql",
                        shop: str | None = None) -> FaultRule:
        return self.add(FaultRule("status", 429, n, endpoint, shop, retry_after))

    def unauthorized_next(self, n: int = 1, *, endpoint: str = "graphql", shop: str | None = None) -> FaultRule:
        return self.add(FaultRule("status", 401, n, endpoint, shop))

    def take(self, endpoint: str, shop: str | None) -> tuple[float, FaultRule | None]:
        """Consume the rules matching a request -> (total latency, the terminal rule if any)."""
        return self.take_matching(lambda rule: rule.applies(endpoint, shop))
