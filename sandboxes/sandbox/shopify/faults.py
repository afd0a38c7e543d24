"""HTTP fault injection: make the next N requests to an endpoint fail the ways Shopify's edge fails.

Endpoints are ``authorize``, ``token`` (``oauth`` matches both), ``graphql``, ``bulk`` (result downloads)
or ``*``. Kinds:

* ``status`` — answer at once with ``status`` (429 carries ``Retry-After``; 401 has Shopify's
  "[API] Invalid API key or access token" body; 502/503/504 an HTML page, as a CDN would);
* ``hang`` — hold the request for ``seconds`` (longer than the client's timeout), then 504;
* ``latency`` — delay by ``seconds`` and then serve normally (stacks with other rules).

``remaining=None`` keeps a rule until ``clear()``; ``probability`` < 1 makes it intermittent (seeded). The rule
queue itself is ``sandbox.faults``; this module says what Shopify's endpoints and fault answers are.

Write faults hit GraphQL *mutations* by root field name (``mutation="orderCreate"``, a tuple, or None for any):

* ``lost_answer`` — the mutation runs and commits (state changed, webhooks sent, idempotency key stored), then
  the answer is lost: ``how="drop"`` closes the connection after the status line without a body (the client
  sees a broken response), ``how="hang"`` holds it ``seconds`` and then answers 504 (the client times out).
  Taken only by a mutation that really ran (not one refused as THROTTLED or unparsable);
* ``slow_write`` — the mutation waits ``seconds`` before it runs, its ``@idempotent`` key already in flight: a
  second request with the same key meanwhile gets ``IDEMPOTENCY_CONCURRENT_REQUEST``.

``lose_answers(0.1, mutation=FLOW_MUTATIONS)`` makes 10% of those writes lose their answer (seeded draws).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sandbox import faults

__all__ = ["FLOW_MUTATIONS", "WRITE_KINDS", "FaultInjector", "FaultRule", "classify_path", "fault_body"]

ENDPOINTS = ("authorize", "token", "graphql", "bulk", "other")
WRITE_KINDS = ("lost_answer", "slow_write")
# the writes cross-store flows make (the mutations ``writes/`` answers)
FLOW_MUTATIONS = ("orderCreate", "orderCancel", "fulfillmentCreate", "fulfillmentTrackingInfoUpdate",
                  "inventorySetQuantities", "inventoryActivate")


@dataclass
class FaultRule(faults.FaultRule):
    mutation: str | tuple[str, ...] | None = None  # write faults: the mutation root fields hit (None: any)
    how: str = "drop"  # lost_answer: "drop" (connection closed without a body) | "hang" (``seconds``, then 504)

    def applies(self, endpoint: str, shop: str | None) -> bool:
        if not self.live_for(shop) or self.kind in WRITE_KINDS:
            return False
        if self.endpoint == "*":
            return endpoint != "other"
        if self.endpoint == "oauth":
            return endpoint in ("authorize", "token")
        return self.endpoint == endpoint


    def applies_to_write(self, kind: str, fields: list[str], shop: str | None) -> bool:
        if self.kind != kind or not self.live_for(shop):
            return False
        if self.mutation is None:
            return True
        wanted = (self.mutation,) if isinstance(self.mutation, str) else self.mutation
        return any(name in wanted for name in fields)


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

    # --- write faults ------------------------------------------------------------------------------------

    def lose_answer_next(self, n: int | None = 1, *, mutation: str | tuple[str, ...] | None = None,
                         how: str = "drop", seconds: float = 30.0, probability: float = 1.0,
                         shop: str | None = None) -> FaultRule:
        """The next ``n`` matching mutations commit and then lose their answer (``n=None``: until ``clear()``)."""
        if how not in ("drop", "hang"):
            raise ValueError("how must be 'drop' or 'hang'")
        return self.add(FaultRule("lost_answer", 200 if how == "drop" else 504, n, "graphql", shop, seconds=seconds,
                                  probability=probability, mutation=mutation, how=how))

    def lose_answers(self, probability: float, *, mutation: str | tuple[str, ...] | None = FLOW_MUTATIONS,
                     how: str = "drop", seconds: float = 30.0, shop: str | None = None) -> FaultRule:
        """From now on, each matching mutation loses its answer with ``probability`` (seeded)."""
        return self.lose_answer_next(None, mutation=mutation, how=how, seconds=seconds, probability=probability,
                                     shop=shop)

    def slow_write_next(self, n: int | None = 1, *, seconds: float = 1.0,
                        mutation: str | tuple[str, ...] | None = None, shop: str | None = None) -> FaultRule:
        return self.add(FaultRule("slow_write", 200, n, "graphql", shop, seconds=seconds, mutation=mutation))

    def has_write_rules(self, kind: str) -> bool:
        with self._lock:
            return any(rule.kind == kind for rule in self.rules)

    def take_write(self, kind: str, fields: list[str], shop: str | None) -> FaultRule | None:
        """Consume the first ``kind`` write rule matching a mutation with these root fields."""
        if not fields or not self.has_write_rules(kind):
            return None
        return self.take_matching(lambda rule: rule.applies_to_write(kind, fields, shop))[1]
