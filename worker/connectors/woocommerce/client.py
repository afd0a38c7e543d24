"""A WooCommerce REST API v3 client for one store.

Auth follows ``class-wc-rest-authentication.php``: over HTTPS the keys go in an HTTP Basic header; over
plain HTTP WooCommerce only accepts one-legged OAuth 1.0a, signed per request (fresh nonce and timestamp,
HMAC-SHA256 by default). Collections page with ``page``/``per_page`` and ``X-WP-TotalPages``. Requests go
through ``RestTransport`` (the store's shared pacer, one request at a time by default, retries), and every
connection through the SSRF guard: a store URL is whatever a user typed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from worker.connectors.rest import PlatformHttpError, RestTransport, json_body
from worker.errors import NeedsReauthError, PermanentError
from worker.ratelimit import UNPACED, Pacer

__all__ = ["Page", "WooAuthError", "WooClient", "oauth1_signature"]

API_PATH = "/wp-json/wc/v3"


class WooAuthError(NeedsReauthError):
    """WooCommerce refused the keys (``code`` tells why: invalid key, read-only key, ...)."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


def _rawurlencode(value: str) -> str:
    return quote(value, safe="~")


def oauth1_signature(method: str, url: str, params: Mapping[str, str], consumer_secret: str,
                     algorithm: str = "HMAC-SHA256") -> str:
    """WooCommerce's OAuth 1.0a signature (``join_with_equals_sign``): keys sorted raw (strcmp), key and value
    each rawurlencoded, ``k=v`` rawurlencoded again, pairs joined with %26; key ``consumer_secret&``; base64 of
    the HMAC. (Older WooCommerce encoded values only once; every release since 3.x encodes twice.)"""
    pairs = [_rawurlencode(f"{_rawurlencode(k)}={_rawurlencode(params[k])}")
             for k in sorted(params, key=str.encode) if k != "oauth_signature"]
    to_sign = f"{method.upper()}&{_rawurlencode(url)}&{'%26'.join(pairs)}"
    digest = hashlib.sha256 if algorithm == "HMAC-SHA256" else hashlib.sha1
    mac = hmac.new(f"{consumer_secret}&".encode(), to_sign.encode(), digest).digest()
    return base64.b64encode(mac).decode()


@dataclass(frozen=True)
class Page:
    number: int
    items: list[dict[str, Any]]
    total: int | None
    total_pages: int | None
    requested_at: datetime | None = None       # when it was asked for: the store's state is from after it


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


class WooClient:
    def __init__(self, store_url: str, consumer_key: str, consumer_secret: str, *, http: httpx.AsyncClient,
                 pacer: Pacer = UNPACED, concurrency: int = 1, signature_method: str = "HMAC-SHA256",
                 max_attempts: int = 5, backoff_base: float = 0.5) -> None:
        self.store_url = store_url.rstrip("/")
        self.api = self.store_url + API_PATH
        self._key = consumer_key
        self._secret = consumer_secret
        self._oauth1 = self.store_url.startswith("http://")
        self._signature_method = signature_method
        self._basic = None if self._oauth1 else \
            "Basic " + base64.b64encode(f"{consumer_key}:{consumer_secret}".encode()).decode()
        self.concurrency = max(1, concurrency)
        self.transport = RestTransport(http, name=f"WooCommerce {self.store_url}", platform="woocommerce", pacer=pacer,
                                       concurrency=concurrency, max_attempts=max_attempts, backoff_base=backoff_base,
                                       on_auth_error=self._auth_error)

    @property
    def auth_mode(self) -> str:
        return "oauth1" if self._oauth1 else "basic"

    def __repr__(self) -> str:
        return f"WooClient({self.store_url!r}, auth={self.auth_mode})"

    def _auth_error(self, response: httpx.Response) -> Exception:
        code, message = None, ""
        try:
            body = response.json()
            if isinstance(body, dict):
                code, message = body.get("code"), str(body.get("message") or "")[:200]
        except ValueError:
            pass
        return WooAuthError(f"WooCommerce {self.store_url} refused the API keys (HTTP {response.status_code} "
                            f"{code or ''}): {message}".replace("  ", " "), code if isinstance(code, str) else None)

    def _sign(self, method: str, url: str, query: dict[str, str]) -> dict[str, str]:
        signed = {**query, "oauth_consumer_key": self._key, "oauth_timestamp": str(int(time.time())),
                  "oauth_nonce": secrets.token_hex(16), "oauth_signature_method": self._signature_method}
        signed["oauth_signature"] = oauth1_signature(method, url, signed, self._secret, self._signature_method)
        return signed

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, expect: tuple[int, ...] = ()) -> httpx.Response:
        url = self.api + path
        headers = {"Accept": "application/json"}
        if self._basic:
            headers["Authorization"] = self._basic
        return await self.transport.send(method, url, params=params, json=json, headers=headers,
                                         sign=self._sign if self._oauth1 else None, expect=expect)

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return json_body(await self.request("GET", path, params=params), self.transport.name)

    async def page(self, path: str, params: Mapping[str, Any], number: int, per_page: int) -> Page:
        requested_at = datetime.now(UTC)
        response = await self.request("GET", path, params={**params, "page": number, "per_page": per_page})
        items = json_body(response, self.transport.name)
        if not isinstance(items, list):
            raise PermanentError(f"{self.transport.name}: {path} did not answer a list")
        return Page(number, [i for i in items if isinstance(i, dict)], _int_header(response.headers, "x-wp-total"),
                    _int_header(response.headers, "x-wp-totalpages"), requested_at)

    async def pages(self, path: str, params: Mapping[str, Any], *, per_page: int = 100,
                    start: int = 1) -> AsyncIterator[Page]:
        """Every page from ``start`` on. With ``concurrency`` > 1 the next pages are fetched while the caller
        works on this one. If the total shrinks while paging (rows deleted at the source, so later rows moved
        to earlier pages) it steps back far enough that nothing is skipped."""
        number = start
        total: int | None = None
        ahead: dict[int, asyncio.Task[Page]] = {}

        def fetch(n: int) -> asyncio.Task[Page]:
            if n not in ahead:
                ahead[n] = asyncio.create_task(self.page(path, params, n, per_page))
            return ahead[n]

        try:
            while True:
                page = await fetch(number)
                del ahead[number]
                if total is not None and page.total is not None and page.total < total:
                    back = -(-(total - page.total) // per_page)
                    total = page.total
                    number = max(1, number - back)
                    for task in ahead.values():
                        task.cancel()
                    ahead.clear()
                    continue
                total = page.total if page.total is not None else total
                last = not page.items or (page.total_pages is not None and number >= page.total_pages)
                if not last and page.total_pages is not None:
                    for n in range(number + 1, min(number + self.concurrency, page.total_pages + 1)):
                        fetch(n)
                yield page
                if last:
                    return
                number += 1
        finally:
            for task in ahead.values():
                task.cancel()
            if ahead:
                await asyncio.gather(*ahead.values(), return_exceptions=True)

    # --- connecting ----------------------------------------------------------------------------------------

    async def discover(self) -> dict[str, Any]:
        """The WordPress REST index (no auth): tells a WooCommerce store from a WordPress site, a legacy-only
        store, or something else entirely."""
        response = await self.transport.send("GET", self.store_url + "/wp-json/",
                                             headers={"Accept": "application/json"}, expect=(404, 401, 403))
        if response.status_code != 200:
            raise PlatformHttpError(f"{self.store_url} has no WordPress REST API (HTTP {response.status_code})",
                                    response.status_code, "no_wp_json")
        try:
            body = response.json()
        except ValueError:
            raise PlatformHttpError(f"{self.store_url} is not a WordPress site (/wp-json/ is not JSON)", 200,
                                    "not_wordpress") from None
        if not isinstance(body, dict) or not isinstance(body.get("namespaces"), list):
            raise PlatformHttpError(f"{self.store_url} is not a WordPress site", 200, "not_wordpress")
        return body
