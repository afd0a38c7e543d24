"""HTTP fault injection: make the next N requests fail the ways TikTok's gateway can fail.

Endpoints: ``authorize`` (``/open/authorize``), ``token`` (``/api/v2/token/*``), ``api`` (every Open API call),
or a narrower API group: ``shops``, ``products`` (search and detail), ``prices``, ``inventory``, ``orders``,
``warehouses``, ``events``; ``*`` is token + api. Kinds (``sandbox.faults``): ``status`` answers at once —
429 with the rate-limit envelope (``code`` 36009002), 401 an expired-token envelope (105002), 5xx an
internal-error envelope (36009003) — or with ``body`` when the rule sets one (an envelope error at HTTP 200:
``envelope_error_next``); ``hang`` holds the request; ``latency`` delays it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sandbox import faults

__all__ = ["FaultInjector", "FaultRule", "classify_path", "envelope_bytes", "fault_body"]

_GROUPS = (("/authorization/", "shops"), ("/logistics/", "warehouses"), ("/event/", "events"),
           ("/order/", "orders"))


def envelope_bytes(code: int, message: str, data: Any = None) -> bytes:
    return json.dumps({"code": code, "message": message, "request_id": "20260101000000SANDBOXFAULT0000",
                       "data": data if data is not None else {}}).encode()


def classify_path(path: str) -> tuple[str, str | None]:
    """-> (endpoint, API group or None)."""
    if path.startswith("/open/authorize"):
        return "authorize", None
    if path.startswith("/api/v2/token/"):
        return "token", None
    if path.startswith("/_sandbox"):
        return "other", None
    if path.startswith("/product/"):
        if path.endswith("/prices/update"):
            return "api", "prices"
        if path.endswith("/inventory/update"):
            return "api", "inventory"
        return "api", "products"
    for prefix, group in _GROUPS:
        if path.startswith(prefix):
            return "api", group
    return "other", None


def fault_body(status: int) -> tuple[bytes, str]:
    if status == 429:
        return envelope_bytes(36009002, "Too many requests. You've made too many requests in a short period of "
                                        "time."), "application/json"
    if status == 401:
        return envelope_bytes(105002, "Expired credentials. The `x-tts-access-token` header has expired."), \
            "application/json"
    if status >= 500:
        return envelope_bytes(36009003, "Internal error. Please try again."), "application/json"
    return envelope_bytes(36009004, "Invalid request."), "application/json"


@dataclass
class FaultRule(faults.FaultRule):
    def applies(self, endpoint: str, group: str | None) -> bool:
        if not self.live_for(None):
            return False
        if self.endpoint == "*":
            return endpoint in ("token", "api")
        if self.endpoint in ("authorize", "token", "api", "other"):
            return endpoint == self.endpoint
        return endpoint == "api" and group == self.endpoint


@dataclass
class FaultInjector(faults.ShopFaultInjector[FaultRule]):
    def new_rule(self, **fields: Any) -> FaultRule:
        return FaultRule(**fields)

    def rate_limit_next(self, n: int = 1, *, endpoint: str = "api") -> FaultRule:
        return self.add(FaultRule("status", 429, n, endpoint))

    def envelope_error_next(self, code: int, message: str, n: int = 1, *, endpoint: str = "api",
                            http_status: int = 200) -> FaultRule:
        """Answer ``{"code": code, ...}`` (HTTP 200 by default: business errors come back that way)."""
        return self.add(FaultRule("status", http_status, n, endpoint, body=envelope_bytes(code, message).decode()))

    def intermittent(self, probability: float, status: int = 503, *, endpoint: str = "*") -> FaultRule:
        return self.add(FaultRule("status", status, None, endpoint, probability=probability))

    def take(self, endpoint: str, group: str | None) -> tuple[float, FaultRule | None]:
        return self.take_matching(lambda rule: rule.applies(endpoint, group))
