"""Scripted HTTP faults shared by the sandboxes: a queue of rules that the requests they match consume.

A rule's ``kind`` is ``status`` (answer at once with ``status``), ``hang`` (hold the request ``seconds``, then
answer) or ``latency`` (delay by ``seconds``, then serve normally; stacks with other rules). ``remaining=None``
keeps a rule until ``clear()``; ``probability`` < 1 makes it intermittent (seeded). Each platform decides which
requests a rule matches (its ``applies``) and what the answer looks like.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["FaultQueue", "FaultRule", "ScriptedFault", "ShopFaultInjector"]


class ScriptedFault(Protocol):
    """What ``FaultQueue`` and ``sandbox.fault_middleware`` need of a rule."""

    kind: str
    status: int
    retry_after: float | None
    seconds: float
    body: str | None
    probability: float
    remaining: int | None
    fired: int


@dataclass
class FaultRule:
    """A rule scoped to one shop (``shop=None``: every shop); platforms subclass it with their ``applies``."""

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

    def live_for(self, shop: str | None) -> bool:
        """Not used up, and scoped to ``shop`` or to every shop."""
        return (self.remaining is None or self.remaining > 0) and (self.shop is None or self.shop == shop)


Rule = TypeVar("Rule", bound=ScriptedFault)
ShopRule = TypeVar("ShopRule", bound=FaultRule)


@dataclass
class FaultQueue(Generic[Rule]):
    """Thread-safe rule list; ``take_matching`` consumes the rules a request matches."""

    rules: list[Rule] = field(default_factory=list)
    seed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def take_matching(self, applies: Callable[[Rule], bool]) -> tuple[float, Rule | None]:
        """Consume the rules ``applies`` accepts -> (total latency, the terminal rule if any).

        Latency rules all fire; of the others only the first fires. A rule with ``probability`` < 1 that could
        fire draws from the seeded generator first and is skipped (not consumed) when the draw misses.
        """
        latency = 0.0
        terminal: Rule | None = None
        with self._lock:
            for rule in self.rules:
                if not applies(rule):
                    continue
                if rule.kind != "latency" and terminal is not None:
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                if rule.kind == "latency":
                    latency += rule.seconds
                else:
                    terminal = rule
                rule.fired += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
            self.rules = [r for r in self.rules if r.remaining is None or r.remaining > 0]
        return latency, terminal


@dataclass
class ShopFaultInjector(FaultQueue[ShopRule]):
    """The shop-scoped helpers; a platform adds ``new_rule``, ``take`` and its own shortcuts."""

    def new_rule(self, **fields: Any) -> ShopRule:
        """The platform's ``FaultRule`` subclass built from ``fields``."""
        raise NotImplementedError

    def fail_next(self, n: int = 1, status: int = 503, *, endpoint: str = "*", shop: str | None = None,
                  retry_after: float | None = None, body: str | None = None) -> ShopRule:
        return self.add(self.new_rule(kind="status", status=status, remaining=n, endpoint=endpoint, shop=shop,
                                      retry_after=retry_after, body=body))

    def hang_next(self, n: int = 1, *, seconds: float = 30.0, endpoint: str = "*",
                  shop: str | None = None) -> ShopRule:
        return self.add(self.new_rule(kind="hang", status=504, remaining=n, endpoint=endpoint, shop=shop,
                                      seconds=seconds))

    def slow(self, seconds: float, n: int | None = None, *, endpoint: str = "*", shop: str | None = None) -> ShopRule:
        return self.add(self.new_rule(kind="latency", status=200, remaining=n, endpoint=endpoint, shop=shop,
                                      seconds=seconds))
