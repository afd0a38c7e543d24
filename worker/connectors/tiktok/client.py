"""A TikTok Shop Open API client for one store (one shop of one seller authorization).

Every request is signed (``auth.sign`` over the exact bytes sent), carries the access token in
``x-tts-access-token`` and the shop's ``shop_cipher`` on shop-scoped paths, and first waits for the shop's slot
in the database rate limiter every worker shares (``tiktok:<app_key>:<shop id>``). The envelope decides
(``errors.classify``): rate limited → every worker is held off (``pacer.defer``) with exponential backoff and
jitter (``min(wait · 2^n + U(0, 0.5), 60)``, TikTok's advice), then retried; transient → retried with backoff;
an expired token → refreshed once and retried; a lost authorization → ``NeedsReauthError``; anything else →
``TikTokApiError`` with TikTok's code. Every call shopsync makes is an idempotent read or an absolute set, so
retrying a write cannot double-apply it.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Mapping
from typing import Any, Protocol

import httpx
import orjson

from worker.connectors.tiktok.auth import signed_query
from worker.connectors.tiktok.errors import ErrorKind, TikTokApiError, classify
from worker.errors import NeedsReauthError, RetryableError
from worker.metrics import PLATFORM_REQUESTS, platform_request
from worker.ratelimit import UNPACED, Pacer

__all__ = ["SendSpacing", "TikTokClient", "TokenSource"]

_MAX_BACKOFF = 60.0
# shopsync_platform_requests_total{platform="tiktok", outcome}: by what the envelope says, not the HTTP status
# (TikTok answers most errors, rate limits included, with HTTP 200 and a code)
_OUTCOME = {None: "ok", ErrorKind.RATE_LIMITED: "throttled", ErrorKind.TRANSIENT: "server_error",
            ErrorKind.TOKEN_EXPIRED: "refused", ErrorKind.REAUTH: "refused", ErrorKind.PERMANENT: "client_error"}


class SendSpacing:
    """Sends of one shop from this process at least ``1 / rate`` apart. The database limiter hands out slots
    that far apart, but a slot whose sleep overshot (a busy event loop) would otherwise go out right behind the
    next one, and TikTok counts arrivals in a sliding second: bunched sends get 429s.

    Each send reserves the next free time before it awaits anything (no lock: nothing to bind to an event loop),
    sleeps until then, and then — its own sleep may have overshot as well, waking with others — waits until
    ``1 / rate`` after the send that actually went out last. A 429 holds every send of the shop (``defer``). The
    state is per process and keyed by app and shop."""

    _next: dict[str, float] = {}
    _sent: dict[str, float] = {}

    def __init__(self, key: str, rate: float) -> None:
        self.key = key
        self.interval = 1.0 / rate if rate > 0 else 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self._next.get(self.key, 0.0))
        self._next[self.key] = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)
        # the deadline moves whenever another send goes out first: sleeping until the clock says so is the point
        while (gap := self._sent.get(self.key, -math.inf) + self.interval - (now := time.monotonic())) > 0:  # noqa: ASYNC110
            await asyncio.sleep(gap)
        self._sent[self.key] = now

    def defer(self, seconds: float) -> None:
        """The platform answered 429: no send of this shop from this process for ``seconds``."""
        if self.interval:
            until = time.monotonic() + seconds
            self._sent[self.key] = max(self._sent.get(self.key, -math.inf), until - self.interval)


class TokenSource(Protocol):
    async def __call__(self) -> str: ...

    async def after_expired(self, stale: str) -> str: ...


class TikTokClient:
    def __init__(self, http: httpx.AsyncClient, *, api_base_url: str, app_key: str, app_secret: str,
                 tokens: TokenSource, shop_cipher: str | None, name: str, pacer: Pacer = UNPACED,
                 max_attempts: int = 5, backoff_base: float = 0.5, rate_limit_wait: float = 1.0,
                 spacing: SendSpacing | None = None) -> None:
        self.http = http
        self.base = api_base_url.rstrip("/")
        self.app_key = app_key
        self._secret = app_secret
        self.tokens = tokens
        self.shop_cipher = shop_cipher
        self.name = name                      # for messages: "TikTok shop 7495…"
        self.pacer = pacer
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.rate_limit_wait = rate_limit_wait
        self.spacing = spacing
        self.requests = 0
        self.rate_limited = 0

    async def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
                   shop: bool = True) -> dict[str, Any]:
        """The ``data`` of a successful answer (``{}`` when it has none)."""
        raw = orjson.dumps(body) if body is not None else b""      # exactly the bytes signed and sent
        plain = {k: str(v) for k, v in (params or {}).items() if v is not None}
        if shop:
            if not self.shop_cipher:
                raise NeedsReauthError(f"{self.name}: the store has no shop cipher; authorize the app again")
            plain["shop_cipher"] = self.shop_cipher
        failures = 0
        refreshed = False
        while True:
            token = await self.tokens()
            await self.pacer.wait()
            if self.spacing is not None:
                await self.spacing.wait()
            query = signed_query(self.app_key, self._secret, path, plain, raw)    # a fresh timestamp per attempt
            try:
                self.requests += 1
                response = await self.http.request(method, f"{self.base}{path}", params=query, content=raw or None,
                                                   headers={"content-type": "application/json",
                                                            "x-tts-access-token": token})
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                platform_request("tiktok", None)
                failures += 1
                if failures >= self.max_attempts:
                    raise RetryableError(f"{self.name}: {type(exc).__name__} (gave up after {failures} attempts)") \
                        from None
                await self._sleep(failures)
                continue
            code, message, data = _envelope(response)
            kind = classify(response.status_code, code, message)
            PLATFORM_REQUESTS.labels("tiktok", _OUTCOME[kind]).inc()
            if kind is None:
                return data
            if kind is ErrorKind.RATE_LIMITED:
                self.rate_limited += 1
                failures += 1
                wait = min(_MAX_BACKOFF, self.rate_limit_wait * 2 ** (failures - 1) + random.uniform(0, 0.5))
                await self.pacer.defer(wait)
                if self.spacing is not None:
                    self.spacing.defer(wait)
                if failures >= self.max_attempts:
                    raise RetryableError(f"{self.name}: rate limited {failures} times ({code})", retry_in=wait)
                if self.pacer is UNPACED:
                    await asyncio.sleep(wait)      # a shared pacer makes the next wait() sleep instead
                continue
            if kind is ErrorKind.TOKEN_EXPIRED and not refreshed:
                refreshed = True
                await self.tokens.after_expired(token)
                continue
            if kind is ErrorKind.TRANSIENT:
                failures += 1
                if failures >= self.max_attempts:
                    raise RetryableError(f"{self.name}: HTTP {response.status_code}, code {code} (gave up after "
                                         f"{failures} attempts)")
                await self._sleep(failures)
                continue
            if kind in (ErrorKind.REAUTH, ErrorKind.TOKEN_EXPIRED):
                raise NeedsReauthError(f"{self.name}: TikTok refused the authorization ({code}: {message}); the "
                                       "seller must authorize the app again")
            raise TikTokApiError(f"{self.name}: {method} {path} failed ({code}: {message})", code or -1, message)

    async def _sleep(self, failures: int) -> None:
        await asyncio.sleep(min(_MAX_BACKOFF, self.backoff_base * 2 ** (failures - 1)) * (0.5 + random.random() / 2))


def _envelope(response: httpx.Response) -> tuple[int | None, str, dict[str, Any]]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, f"HTTP {response.status_code} without JSON", {}
    if not isinstance(body, dict):
        return None, "the answer is not an object", {}
    code = body.get("code")
    data = body.get("data")
    return (code if isinstance(code, int) else None), str(body.get("message") or "")[:300], \
        data if isinstance(data, dict) else {}
