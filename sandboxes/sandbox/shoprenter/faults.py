"""HTTP fault injection: make the next N requests fail the ways ShopRenter's edge can fail.

Endpoints: ``token`` (``POST /oauth/{shop}/app/token``), ``api`` (every ``/shops/{shop}/api/...`` call), a resource
name (``productExtend``, ``customers``, ``orderExtend``, ``webHooks``, ...: only that resource), ``*`` (token + api)
or ``other``. Kinds:

* ``status`` — answer at once with ``status``: 429 is ``{"message": "Too Many Requests"}`` (no ``Retry-After``
  unless the rule sets one — ShopRenter documents none), 401 the OAuth ``access_denied`` body, 502/503/504 an
  HTML page as a proxy would send;
* ``hang`` — hold the request for ``seconds`` (longer than the client's timeout), then 504;
* ``latency`` — delay by ``seconds`` and then serve normally (stacks with other rules).

``remaining=None`` keeps a rule until ``clear()``; ``probability`` < 1 makes it intermittent (seeded). The rule
queue itself is ``sandbox.faults``; this module says what ShopRenter's endpoints and fault answers are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sandbox import faults

__all__ = ["ACCESS_DENIED", "FaultInjector", "FaultRule", "classify_path", "fault_body"]

# league/oauth2-server's resource-server error, whose token-endpoint errors ShopRenter's docs show verbatim
ACCESS_DENIED = "The resource owner or authorization server denied the request."


@dataclass
class FaultRule(faults.FaultRule):
    def applies(self, endpoint: str, resource: str | None, shop: str | None) -> bool:
        if not self.live_for(shop):
            return False
        if self.endpoint == "*":
            return endpoint in ("token", "api")
        if self.endpoint in ("token", "api", "other"):
            return self.endpoint == endpoint
        return endpoint == "api" and resource == self.endpoint


def classify_path(path: str) -> tuple[str, str | None, str | None]:
    """-> (endpoint, API resource or None, shop name or None)."""
    parts = path.strip("/").split("/")
    if len(parts) >= 4 and parts[0] == "oauth" and parts[2:4] == ["app", "token"]:
        return "token", None, parts[1]
    if len(parts) >= 3 and parts[0] == "shops" and parts[2] == "api":
        return "api", (parts[3] if len(parts) > 3 else None), parts[1]
    if len(parts) >= 2 and parts[0] == "shops":
        return "other", None, parts[1]
    return "other", None, None


def fault_body(status: int) -> tuple[bytes, str]:
    """(body, content type) for an injected status."""
    if status == 429:
        return json.dumps({"message": "Too Many Requests"}).encode(), "application/json"
    if status == 401:
        return json.dumps({"error": "access_denied", "error_description": ACCESS_DENIED,
                           "hint": "Access token could not be verified", "message": ACCESS_DENIED}).encode(), \
            "application/json"
    if status in (502, 503, 504):
        title = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable", 504: "504 Gateway Time-out"}
        text = title[status]
        return f"<html><head><title>{text}</title></head><body><center><h1>{text}</h1></center></body></html>" \
            .encode(), "text/html"
    return json.dumps({"message": "Internal Server Error"}).encode(), "application/json"


@dataclass
class FaultInjector(faults.ShopFaultInjector[FaultRule]):
    def new_rule(self, **fields: Any) -> FaultRule:
        return FaultRule(**fields)

    def rate_limit_next(self, n: int = 1, *, endpoint: str = "api", shop: str | None = None,
                        retry_after: float | None = None) -> FaultRule:
        return self.add(FaultRule("status", 429, n, endpoint, shop, retry_after))

    def unauthorized_next(self, n: int = 1, *, endpoint: str = "api", shop: str | None = None) -> FaultRule:
        return self.add(FaultRule("status", 401, n, endpoint, shop))

    def intermittent(self, probability: float, status: int = 503, *, endpoint: str = "*",
                     shop: str | None = None) -> FaultRule:
        return self.add(FaultRule("status", status, None, endpoint, shop, probability=probability))

    def take(self, endpoint: str, resource: str | None, shop: str | None) -> tuple[float, FaultRule | None]:
        """Consume the rules matching a request -> (total latency, the terminal rule if any)."""
        return self.take_matching(lambda rule: rule.applies(endpoint, resource, shop))
