"""A ShopRenter API client for one shop.

Bearer tokens come from the client-credentials grant (``POST {oauth}/{shop}/app/token``); there is no
refresh token, so ``ShopRenterTokens`` asks for a new one shortly before the old one expires (and once
more if the API answers 401). ``Accept: application/json`` always (ShopRenter answers XML otherwise).
ShopRenter allows 3 requests/s per app and shop: every request waits for the shop's slot in the
database rate limiter shared by all workers, so they stay under it together. Pages start at 0 and
their numbers come back as strings; past the last page ShopRenter answers 400.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from worker.connectors.rest import RestTransport, json_body
from worker.connectors.store_secrets import load_secrets, save_secrets
from worker.db.port import Database
from worker.errors import DatabaseError, NeedsReauthError, PermanentError, RetryableError
from worker.ratelimit import UNPACED, Pacer
from worker.sealing import Sealer

__all__ = ["CREDENTIALS_KIND", "ShopRenterClient", "ShopRenterTokens", "SrPage", "has_next_page", "request_token"]

CREDENTIALS_KIND = "shoprenter_token"


async def request_token(http: httpx.AsyncClient, token_url: str, client_id: str, client_secret: str,
                        shop: str) -> tuple[str, datetime]:
    """A new access token and its expiry. NeedsReauthError when ShopRenter refuses the app for this shop."""
    try:
        response = await http.post(token_url, json={"grant_type": "client_credentials", "client_id": client_id,
                                                    "client_secret": client_secret},
                                   headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise RetryableError(f"ShopRenter {shop}: token request failed ({type(exc).__name__})") from None
    if response.status_code in (400, 401, 403):
        raise NeedsReauthError(f"ShopRenter {shop} refused the app's credentials (HTTP {response.status_code}): "
                               "is the app still installed?")
    if response.status_code != 200:
        raise RetryableError(f"ShopRenter {shop}: token endpoint answered HTTP {response.status_code}")
    body = json_body(response, f"ShopRenter {shop} token")
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise RetryableError(f"ShopRenter {shop}: the token answer has no access_token")
    try:
        ttl = float(body.get("expires_in") or 3600)
    except (TypeError, ValueError):
        ttl = 3600.0
    if not 0 < ttl <= 86_400 * 366:       # NaN, negative or absurd: assume the documented hour
        ttl = 3600.0
    return token, datetime.now(UTC) + timedelta(seconds=ttl)


class ShopRenterTokens:
    """The store's current access token, renewed ahead of expiry and written back sealed (with the
    optimistic version: two workers renewing at once both get valid tokens; the later write re-reads)."""

    def __init__(self, db: Database, sealer: Sealer, http: httpx.AsyncClient, store_id: Any, shop: str, *,
                 token_url: str, client_id: str, client_secret: str, margin: float) -> None:
        self.db, self.sealer, self.http, self.store_id, self.shop = db, sealer, http, store_id, shop
        self.token_url, self.client_id, self._secret, self.margin = token_url, client_id, client_secret, margin
        self._token: str | None = None
        self._expires: datetime | None = None

    async def token(self, *, force: bool = False) -> str:
        now = datetime.now(UTC)
        if not force and self._token and self._expires and self._expires - now > timedelta(seconds=self.margin):
            return self._token
        stored = await load_secrets(self.db, self.sealer, self.store_id)
        if stored is None:
            raise NeedsReauthError(f"ShopRenter {self.shop} has no credentials: install the app again")
        expires = stored.access_expires_at
        if (not force and stored.fields.get("access_token") and expires is not None
                and expires - now > timedelta(seconds=self.margin)):
            self._token, self._expires = str(stored.fields["access_token"]), expires
            return self._token
        if force and stored.fields.get("access_token") not in (None, self._token) and expires and expires > now:
            self._token, self._expires = str(stored.fields["access_token"]), expires   # someone renewed it
            return self._token
        token, expires = await request_token(self.http, self.token_url, self.client_id, self._secret, self.shop)
        try:
            await save_secrets(self.db, self.sealer, self.store_id, CREDENTIALS_KIND,
                               {**stored.fields, "access_token": token}, access_expires_at=expires,
                               expected_version=stored.version)
        except DatabaseError as exc:
            if exc.sqlstate != "40001":
                raise
            # another worker renewed meanwhile: both tokens are valid, keep using ours
        self._token, self._expires = token, expires
        return token


@dataclass(frozen=True)
class SrPage:
    number: int
    items: list[dict[str, Any]]
    page_count: int
    requested_at: datetime | None = None       # when it was asked for: the shop's state is from after it


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _past_last_page(response: httpx.Response) -> bool:
    """ShopRenter's answer to a page past the last: HTTP 400, inner code 40008, "Page not found! ..."."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, Mapping) and (str(body.get("error")) == "40008"
                                          or str(body.get("message", "")).startswith("Page not found"))


def has_next_page(body: Mapping[str, Any], next_number: int) -> bool:
    """``pageCount`` (a string or a number) when the page has one, else its ``next`` link (the customers
    resource's documented page has no ``pageCount``)."""
    count = _int(body.get("pageCount"), -1)
    if count >= 0:
        return next_number < count
    return bool(body.get("next"))


class ShopRenterClient:
    def __init__(self, api_url: str, tokens: ShopRenterTokens, *, http: httpx.AsyncClient, pacer: Pacer = UNPACED,
                 max_attempts: int = 5, backoff_base: float = 0.5) -> None:
        self.api = api_url.rstrip("/")
        self.tokens = tokens
        self.shop = tokens.shop
        self.transport = RestTransport(http, name=f"ShopRenter {tokens.shop}", platform="shoprenter", pacer=pacer,
                                       concurrency=1,
                                       max_attempts=max_attempts, backoff_base=backoff_base)

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                      expect: tuple[int, ...] = ()) -> httpx.Response:
        url = path if path.startswith("http") else f"{self.api}/{path.lstrip('/')}"
        for attempt in (1, 2):
            token = await self.tokens.token(force=attempt == 2)
            response = await self.transport.send(method, url, params=params, json=json, expect=(401, 403, *expect),
                                                 headers={"Accept": "application/json",
                                                          "Authorization": f"Bearer {token}"})
            if response.status_code not in (401, 403) or response.status_code in expect:
                return response
        raise NeedsReauthError(f"ShopRenter {self.shop} refused a fresh token (HTTP {response.status_code})")

    async def get(self, path: str, params: Mapping[str, Any] | None = None, *,
                  missing_ok: bool = False) -> Any:
        response = await self.request("GET", path, params=params, expect=(404,) if missing_ok else ())
        if response.status_code == 404:
            return None
        return json_body(response, self.transport.name)

    async def pages(self, resource: str, params: Mapping[str, Any], *, limit: int = 200, start: int = 0,
                    full: bool = True) -> AsyncIterator[SrPage]:
        """Every page from ``start`` on; ``full=False`` pages hold only links (enough for ids)."""
        number = start
        while True:
            query = {**params, "page": number, "limit": limit, **({"full": 1} if full else {})}
            requested_at = datetime.now(UTC)
            response = await self.request("GET", resource, params=query, expect=(400,))
            if response.status_code == 400:
                if number > 0 and (number > start or _past_last_page(response)):
                    # past the last page: the shop shrank while paging, or a run resumed after the last page
                    return
                raise PermanentError(f"ShopRenter {self.shop}: {resource} page {number} refused (HTTP 400)")
            body = json_body(response, self.transport.name)
            if not isinstance(body, dict):
                raise PermanentError(f"ShopRenter {self.shop}: {resource} did not answer a page object")
            items = [i for i in body.get("items") or [] if isinstance(i, dict)]
            page_count = _int(body.get("pageCount"), -1)
            yield SrPage(number, items, page_count, requested_at)
            number += 1
            if not has_next_page(body, number) or not items:
                return
