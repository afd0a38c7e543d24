"""HTTP fault injection: make the next N requests fail the ways ShopRenter's edge can fail.

Endpoints: ``token`` (``POST /oauth/{shop}/app/token``), ``api`` (every ``/shops/{shop}/api/...`` call), a resource
name (``productExtend``, ``customers``, ``orderExtend``, ``webHooks``, ...: only that resource), ``*`` (token + api)
or ``other``. Kinds:

* ``status`` — answer at once with ``status``: 429 is ``{"message": "Too Many Requests"}`` (no ``Retry-After``
  unless the rule sets one — ShopRenter documents none), 401 the OAuth ``access_denied`` body, 502/503/504 an
  HTML page as a proxy would send;
* ``hang`` — hold the request for ``seconds`` (longer than the client's timeout), then 504;
* ``latency`` — delay by ``seconds`` and then serve normally (stacks with other rules).

``remaining=None`` keeps a rule until ``clear()``; ``probability`` < 1 makes it intermittent (seeded).
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field

__all__ = ["ACCESS_DENIED", "FaultInjector", "FaultRule", "classify_path", "fault_body"]

# league/oauth2-server's resource-server error, whose token-endpoint errors ShopRenter's docs show verbatim
ACCESS_DENIED = "The resource owner or authorization server denied the request."


@dataclass
class FaultRule:
    kind: str = "status"  # "status" | "hang" | "latency"
    status: int = 503
    remaining: int | None = 1
    endpoint: str = "*"
    shop: str | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    body: str | None = None
    probability: float = 1.0
    fired: int = 0

    def applies(self, endpoint: str, resource: str | None, shop: str | None) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.shop is not None and self.shop != shop:
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
class FaultInjector:
    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def fail_next(self, n: int = 1, status: int = 503, *, endpoint: str = "*", shop: str | None = None,
                  retry_after: float | None = None, body: str | None = None) -> FaultRule:
        return self.add(FaultRule("status", status, n, endpoint, shop, retry_after, body=body))

    def rate_limit_next(self, n: int = 1, *, endpoint: str = "api", shop: str | None = None,
                        retry_after: float | None = None) -> FaultRule:
        return self.add(FaultRule("status", 429, n, endpoint, shop, retry_after))

    def unauthorized_next(self, n: int = 1, *, endpoint: str = "api", shop: str | None = None) -> FaultRule:
        return self.add(FaultRule("status", 401, n, endpoint, shop))

    def hang_next(self, n: int = 1, *, seconds: float = 30.0, endpoint: str = "*",
                  shop: str | None = None) -> FaultRule:
        return self.add(FaultRule("hang", 504, n, endpoint, shop, seconds=seconds))

    def slow(self, seconds: float, n: int | None = None, *, endpoint: str = "*", shop: str | None = None) -> FaultRule:
        return self.add(FaultRule("latency", 200, n, endpoint, shop, seconds=seconds))

    def intermittent(self, probability: float, status: int = 503, *, endpoint: str = "*",
                     shop: str | None = None) -> FaultRule:
        return self.add(FaultRule("status", status, None, endpoint, shop, probability=probability))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def take(self, endpoint: str, resource: str | None, shop: str | None) -> tuple[float, FaultRule | None]:
        """Consume the rules matching a request -> (total latency, the terminal rule if any)."""
        latency = 0.0
        terminal: FaultRule | None = None
        with self._lock:
            for rule in self.rules:
                if not rule.applies(endpoint, resource, shop):
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                if rule.kind == "latency":
                    latency += rule.seconds
                elif terminal is None:
                    terminal = rule
                else:
                    continue
                rule.fired += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
            self.rules = [r for r in self.rules if r.remaining is None or r.remaining > 0]
        return latency, terminal
