"""The HTTP plumbing every REST connector shares: pacing, retries and error classes.

A platform client (``woocommerce.client``, ``shoprenter.client``) builds requests and decides what its
401s mean; this module sends them: each attempt first waits for the store's pacer (the database rate
limiter shared by all workers) and a per-client concurrency gate, then 429 → the pacer is told to hold
everyone off for Retry-After (or ``rate_limit_wait``) and the request retried; 5xx, timeouts and
connection errors → retried with exponential backoff and jitter; after ``max_attempts`` a
``RetryableError`` sends the job back to the queue. Other 4xx answers raise ``PlatformHttpError``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from worker.errors import PermanentError, RetryableError
from worker.metrics import platform_request
from worker.payloads import JsonRejected, load_json
from worker.ratelimit import UNPACED, Pacer

__all__ = ["PlatformHttpError", "RestTransport", "StoreUnreachable", "json_body", "retry_after"]

_MAX_BACKOFF = 30.0


class StoreUnreachable(RetryableError):
    """No connection could be made to the store's address (it does not resolve, or nothing listens)."""


class PlatformHttpError(PermanentError):
    """A 4xx answer retrying cannot fix. ``code`` is the platform's error code when it sent one."""

    def __init__(self, message: str, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(max(float(value), 0.0), 3600.0) if value is not None else None
    except ValueError:
        return None


def json_body(response: httpx.Response, what: str) -> Any:
    """The answer's JSON, made safe to store (``worker.payloads``)."""
    try:
        return load_json(response.content)
    except JsonRejected as exc:
        raise RetryableError(f"{what}: {exc} (HTTP {response.status_code})") from None


class RestTransport:
    """Sends one platform's requests for one store: paced, gated, retried."""

    def __init__(self, http: httpx.AsyncClient, *, name: str, platform: str, pacer: Pacer = UNPACED,
                 concurrency: int = 1, max_attempts: int = 5, backoff_base: float = 0.5, rate_limit_wait: float = 1.0,
                 on_auth_error: Callable[[httpx.Response], Exception] | None = None) -> None:
        self.http = http
        self.name = name                      # for messages: "WooCommerce https://shop.example"
        self.platform = platform              # for metrics: "woocommerce"
        self.pacer = pacer
        self.gate = asyncio.Semaphore(max(1, concurrency))
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.rate_limit_wait = rate_limit_wait
        self.on_auth_error = on_auth_error

    async def send(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None, json: Any = None,
                   sign: Callable[[str, str, dict[str, str]], dict[str, str]] | None = None,
                   expect: tuple[int, ...] = ()) -> httpx.Response:
        """The response of the first attempt that is not retried. ``sign`` adds per-attempt auth params
        (OAuth 1.0a needs a fresh nonce and timestamp each time). Statuses in ``expect`` are returned."""
        failures = 0
        while True:
            query = {k: str(v) for k, v in (params or {}).items() if v is not None}
            if sign is not None:
                query = sign(method, url, query)
            try:
                async with self.gate:
                    await self.pacer.wait()
                    response = await self.http.request(method, url, params=query, headers=headers, json=json)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                platform_request(self.platform, None)
                failures += 1
                if failures >= self.max_attempts:
                    error = StoreUnreachable if isinstance(exc, httpx.ConnectError) else RetryableError
                    raise error(f"{self.name}: {type(exc).__name__} (gave up after {failures} attempts)") from None
                await self._backoff(failures)
                continue
            status = response.status_code
            platform_request(self.platform, status)
            if status < 300 or status in expect:
                return response
            if status == 429:
                wait = retry_after(response) or self.rate_limit_wait
                await self.pacer.defer(wait)
                failures += 1
                if failures >= self.max_attempts:
                    raise RetryableError(f"{self.name}: rate limited {failures} times", retry_in=wait)
                await asyncio.sleep(wait if self.pacer is UNPACED else 0)   # a shared pacer already waits
                continue
            if status >= 500:
                failures += 1
                if failures >= self.max_attempts:
                    raise RetryableError(f"{self.name}: HTTP {status} (gave up after {failures} attempts)",
                                         retry_in=retry_after(response))
                await self._backoff(failures, retry_after(response))
                continue
            if status in (401, 403) and self.on_auth_error is not None:
                raise self.on_auth_error(response)
            code, message = _error_of(response)
            raise PlatformHttpError(f"{self.name}: HTTP {status} {code or ''} {message}".strip(), status, code)

    async def _backoff(self, failures: int, at_least: float | None = None) -> None:
        delay = min(_MAX_BACKOFF, self.backoff_base * 2 ** (failures - 1)) * (0.5 + random.random() / 2)
        await asyncio.sleep(max(delay, at_least or 0.0))


def _error_of(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) from a platform error body, whatever its shape; bounded, never the whole body."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    code = body.get("code") or body.get("error")
    message = body.get("message") or body.get("error_description") or ""
    return (str(code)[:80] if code else None), str(message)[:200]
