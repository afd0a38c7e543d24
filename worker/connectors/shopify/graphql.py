"""Shopify GraphQL Admin API client with cost-based pacing.

- Only ``*.myshopify.com`` domains are accepted (checked before anything is contacted); ``base_url`` replaces
  ``https://{shop}`` (the sandbox serves each shop under its own prefix).
- Pacing: Shopify charges each query's *requested* cost up front from a leaky bucket per app + shop and
  reports ``extensions.cost.throttleStatus`` on every response. The client models that bucket and, before
  a query, sleeps exactly until the bucket holds the query's estimated cost (the last ``requestedQueryCost``
  seen for the same document). One ``asyncio.Lock`` serializes the decision so concurrent callers do not
  spend the same points, and points of requests still in flight are treated as spent.
- Errors map onto ``worker.errors``: THROTTLED / 429 → wait and retry; 5xx and transport errors → backoff
  with jitter, then ``RetryableError``; 401/403 → ``NeedsReauthError``; other GraphQL errors →
  ``PermanentError``. The access token is only ever put in the request header: never logged or raised.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from worker.connectors.shopify.auth import normalize_shop_domain
from worker.errors import NeedsReauthError, PermanentError, RetryableError
from worker.metrics import platform_request
from worker.payloads import JsonRejected, load_json

__all__ = ["BucketModel", "GraphQLStats", "ShopifyGraphQL", "TokenProvider", "DEFAULT_QUERY_COST"]

log = logging.getLogger("shopsync.shopify.graphql")

TokenProvider = Callable[[], Awaitable[str]]
DEFAULT_QUERY_COST = 100.0      # estimate for a document never sent before
MAX_THROTTLE_RETRIES = 10       # THROTTLED/429 rounds per query before handing the job back to the queue
_MAX_BACKOFF = 30.0


@dataclass
class BucketModel:
    """The client's picture of Shopify's leaky bucket: ``available`` points at monotonic time ``at``."""

    maximum: float
    restore_rate: float
    available: float
    at: float
    observed: bool = False      # True once a response reported the real throttleStatus

    def level(self, now: float) -> float:
        return min(self.maximum, self.available + max(0.0, now - self.at) * self.restore_rate)


@dataclass
class GraphQLStats:
    """Counters for benchmarks and logs."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    slept_seconds: float = 0.0


class _Throttled(Exception):
    """Internal: the request was throttled; ``retry_after`` is Shopify's hint if it gave one."""

    def __init__(self, retry_after: float | None) -> None:
        super().__init__("throttled")
        self.retry_after = retry_after


class _Transient(Exception):
    """Internal: a failure worth retrying with backoff (5xx, timeout, connection error)."""


def _error_messages(errors: Any) -> str:
    # Shopify sends a list of {message, extensions}, or a bare string/dict on HTTP errors
    if isinstance(errors, list):
        parts = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
    else:
        parts = [str(errors)]
    text = "; ".join(p.strip() for p in parts)
    return text[:500] + ("…" if len(text) > 500 else "")


def _error_codes(errors: Any) -> set[str]:
    codes: set[str] = set()
    if isinstance(errors, list):
        for e in errors:
            ext = e.get("extensions") if isinstance(e, dict) else None
            if isinstance(ext, dict) and isinstance(ext.get("code"), str):
                codes.add(ext["code"])
    return codes


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None     # an HTTP-date: fall back to the bucket model
    return max(0.0, seconds) if seconds is not None else None


class ShopifyGraphQL:
    """One shop's GraphQL Admin API. Use as ``async with`` or call ``aclose()``."""

    def __init__(self, shop: str, token_provider: TokenProvider, *, api_version: str,
                 base_url: str | None = None, timeout: float = 30.0, max_retries: int = 5,
                 bucket_size: float = 1000.0, restore_rate: float = 50.0, backoff_base: float = 0.5,
                 max_wait: float = 60.0, client: httpx.AsyncClient | None = None) -> None:
        self.shop = normalize_shop_domain(shop)    # before any URL is built or contacted
        self.api_version = api_version
        base = (base_url or f"https://{self.shop}").rstrip("/")
        self.endpoint = f"{base}/admin/api/{api_version}/graphql.json"
        self._token_provider = token_provider
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_wait = max_wait      # longer waits go back to the queue as RetryableError(retry_in)
        self._own_client = client is None
        # redirects are never followed: a 3xx must not send the token to another host
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False)
        self.bucket = BucketModel(bucket_size, restore_rate, bucket_size, time.monotonic())
        self.stats = GraphQLStats()
        self._costs: dict[str, float] = {}
        self._in_flight = 0.0
        self._not_before = 0.0
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> ShopifyGraphQL:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    def estimated_cost(self, document: str) -> float:
        return self._costs.get(document, DEFAULT_QUERY_COST)

    # --- pacing ----------------------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.slept_seconds += seconds
            await asyncio.sleep(seconds)

    async def _reserve(self, cost: float) -> float:
        """Wait until the modelled bucket holds ``cost`` points, count them as spent and return them."""
        async with self._lock:
            b = self.bucket
            cost = min(cost, b.maximum)     # a bigger estimate could never be satisfied
            now = time.monotonic()
            wait = max(0.0, self._not_before - now)
            level = b.level(now + wait)
            if level < cost:
                wait += (cost - level) / b.restore_rate
            if wait > self.max_wait:
                raise RetryableError(f"Shopify {self.shop}: throttled for {wait:.0f}s", retry_in=wait)
            await self._sleep(wait)
            now = time.monotonic()
            b.available, b.at = b.level(now) - cost, now
            self._in_flight += cost
            return cost

    def _observe(self, extensions: Any, document: str, reserved: float) -> None:
        """Replace the model with Shopify's reading; points of other in-flight requests stay spent."""
        cost = extensions.get("cost") if isinstance(extensions, dict) else None
        if not isinstance(cost, dict):
            return
        requested = cost.get("requestedQueryCost")
        if isinstance(requested, int | float):
            self._costs[document] = float(requested)
        status = cost.get("throttleStatus")
        if not isinstance(status, dict):
            return
        try:
            maximum = float(status["maximumAvailable"])
            current = float(status["currentlyAvailable"])
            rate = float(status["restoreRate"])
        except (KeyError, TypeError, ValueError):
            return
        if maximum <= 0 or rate <= 0:
            return
        b = self.bucket
        b.maximum, b.restore_rate, b.observed = maximum, rate, True
        b.available, b.at = current - max(0.0, self._in_flight - reserved), time.monotonic()

    # --- requests --------------------------------------------------------------------------------------

    async def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one query or mutation and return its ``data``."""
        failures = 0
        throttles = 0
        while True:
            try:
                return await self._attempt(document, variables)
            except _Throttled as exc:
                throttles += 1
                self.stats.throttled += 1
                if throttles > MAX_THROTTLE_RETRIES:
                    raise RetryableError(f"Shopify {self.shop}: still throttled after {throttles} attempts",
                                         retry_in=exc.retry_after) from None
                now = time.monotonic()
                if exc.retry_after is not None:
                    self._not_before = max(self._not_before, now + exc.retry_after)
                else:
                    # no hint: trust the bucket reading if the response had one, else assume it is empty
                    if not self.bucket.observed or self.bucket.level(now) >= self.estimated_cost(document):
                        self.bucket.available, self.bucket.at = 0.0, now
                log.info("shopify %s throttled; retrying after the bucket refills", self.shop)
            except _Transient as exc:
                failures += 1
                if failures > self.max_retries:
                    raise RetryableError(f"Shopify {self.shop}: {exc} (gave up after {failures} attempts)") from None
                delay = min(_MAX_BACKOFF, self.backoff_base * 2 ** (failures - 1)) * (0.5 + random.random() / 2)
                log.warning("shopify %s: %s; retry %d in %.2fs", self.shop, exc, failures, delay)
                await self._sleep(delay)
            self.stats.retries += 1

    async def _attempt(self, document: str, variables: dict[str, Any] | None) -> dict[str, Any]:
        reserved = await self._reserve(self.estimated_cost(document))
        try:
            token = await self._token_provider()
            payload: dict[str, Any] = {"query": document}
            if variables:
                payload["variables"] = variables
            self.stats.requests += 1
            try:
                response = await self._client.post(
                    self.endpoint, json=payload,
                    headers={"X-Shopify-Access-Token": token, "Accept": "application/json"})
            except httpx.TimeoutException:
                platform_request("shopify", None)
                raise _Transient("request timed out") from None
            except httpx.TransportError as exc:
                platform_request("shopify", None)
                raise _Transient(f"transport error ({type(exc).__name__})") from None
            platform_request("shopify", response.status_code)
            return self._handle(response, document, reserved)
        finally:
            self._in_flight = max(0.0, self._in_flight - reserved)

    def _handle(self, response: httpx.Response, document: str, reserved: float) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise NeedsReauthError(f"Shopify {self.shop} rejected the access token (HTTP {status})")
        if status == 429:
            raise _Throttled(_retry_after(response))
        if status >= 500:
            raise _Transient(f"HTTP {status}")
        try:
            body = load_json(response.content)
        except JsonRejected as exc:
            if status != 200:
                raise PermanentError(f"Shopify {self.shop}: HTTP {status}") from None
            raise RetryableError(f"Shopify {self.shop}: {exc}") from None
        if status != 200:
            detail = _error_messages(body.get("errors")) if isinstance(body, dict) else ""
            raise PermanentError(f"Shopify {self.shop}: HTTP {status} {detail}".rstrip())
        if not isinstance(body, dict):
            raise RetryableError(f"Shopify {self.shop}: response is not a JSON object")
        self._observe(body.get("extensions"), document, reserved)
        errors = body.get("errors")
        if errors:
            if "THROTTLED" in _error_codes(errors):
                raise _Throttled(_retry_after(response))
            raise PermanentError(f"Shopify {self.shop}: GraphQL error: {_error_messages(errors)}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise RetryableError(f"Shopify {self.shop}: response has no data")
        return data

    async def paginate(self, document: str, connection_path: str, variables: dict[str, Any] | None = None,
                       page_size: int = 100) -> AsyncIterator[dict[str, Any]]:
        """Yield every node of a connection. ``document`` takes ``$first`` and ``$after`` and selects
        ``nodes`` (or ``edges { node }``) and ``pageInfo { hasNextPage endCursor }`` at ``connection_path``
        (dotted, e.g. ``products`` or ``product.variants``)."""
        if not 1 <= page_size <= 250:
            raise PermanentError("page_size must be between 1 and 250 (Shopify's connection limit)")
        cursor: str | None = None
        while True:
            data = await self.query(document, {**(variables or {}), "first": page_size, "after": cursor})
            connection: Any = data
            for key in connection_path.split("."):
                connection = connection.get(key) if isinstance(connection, dict) else None
            if not isinstance(connection, dict):
                raise PermanentError(f"Shopify {self.shop}: no connection at {connection_path!r}")
            if isinstance(connection.get("nodes"), list):
                nodes = connection["nodes"]
            else:
                nodes = [e.get("node") for e in connection.get("edges") or [] if isinstance(e, dict)]
            for node in nodes:
                yield node
            page = connection.get("pageInfo") or {}
            if not page.get("hasNextPage"):
                return
            next_cursor = page.get("endCursor")
            if not isinstance(next_cursor, str) or next_cursor == cursor:
                raise PermanentError(f"Shopify {self.shop}: {connection_path} has a next page but no new cursor")
            cursor = next_cursor
