"""TikTok Shop's token endpoints: the authorization code grant and refresh.

``GET {auth_base_url}/api/v2/token/get?app_key&app_secret&auth_code&grant_type=authorized_code`` and
``GET …/api/v2/token/refresh?app_key&app_secret&refresh_token&grant_type=refresh_token``: unsigned, the app
secret travels in the query string — so these URLs are never logged or put into an error by shopsync (the log
filter scrubs ``app_secret=`` and ``refresh_token=`` from anything else that prints them). The answer's
``access_token_expire_in`` and ``refresh_token_expire_in`` are **absolute** unix timestamps. A refused code or
refresh token (36004004, 36004005, 36004001) is ``GrantRefused``: only the seller can fix it by authorizing
again; refused app credentials are a configuration error; 429/5xx/timeouts are retryable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from worker.connectors.tiktok.errors import REAUTH_CODES
from worker.connectors.tiktok.settings import TikTokSettings
from worker.errors import PermanentError, RetryableError

__all__ = ["CREDENTIALS_KIND", "GrantRefused", "TikTokOAuth", "TokenSet"]

CREDENTIALS_KIND = "tiktok_oauth"


class GrantRefused(PermanentError):
    """TikTok refused the authorization code or the refresh token: the seller must authorize the app again."""


def _at(value: Any) -> datetime | None:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else None


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    access_expires_at: datetime | None
    refresh_expires_at: datetime | None
    open_id: str | None = None
    seller_name: str | None = None
    seller_region: str | None = None

    def secret_fields(self) -> dict[str, Any]:
        """What gets sealed (the only place tokens are kept)."""
        return {"access_token": self.access_token, "refresh_token": self.refresh_token, "open_id": self.open_id}

    @classmethod
    def from_sealed(cls, fields: dict[str, Any], access_expires_at: datetime | None,
                    refresh_expires_at: datetime | None) -> TokenSet:
        return cls(str(fields["access_token"]), str(fields.get("refresh_token") or ""), access_expires_at,
                   refresh_expires_at, fields.get("open_id"))

    @classmethod
    def from_answer(cls, data: Any) -> TokenSet:
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str) \
                or not isinstance(data.get("refresh_token"), str):
            raise RetryableError("TikTok's token endpoint answered without a token pair")
        return cls(data["access_token"], data["refresh_token"], _at(data.get("access_token_expire_in")),
                   _at(data.get("refresh_token_expire_in")), str(data.get("open_id") or "") or None,
                   data.get("seller_name"), data.get("seller_base_region"))

    def __repr__(self) -> str:      # never the tokens themselves
        return f"TokenSet(open_id={self.open_id!r}, access_expires_at={self.access_expires_at})"


class TikTokOAuth:
    def __init__(self, settings: TikTokSettings, http: httpx.AsyncClient | None = None) -> None:
        settings.require_configured()
        self.settings = settings
        self._own = http is None
        # never follow redirects: a 3xx must not carry the app secret to another host
        self._http = http or httpx.AsyncClient(timeout=settings.request_timeout_seconds, follow_redirects=False)

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    async def exchange_code(self, code: str) -> TokenSet:
        return await self._request("get", {"auth_code": code, "grant_type": "authorized_code"},
                                   "the authorization code")

    async def refresh(self, refresh_token: str) -> TokenSet:
        return await self._request("refresh", {"refresh_token": refresh_token, "grant_type": "refresh_token"},
                                   "the refresh token")

    async def _request(self, endpoint: str, grant: dict[str, str], what: str) -> TokenSet:
        s = self.settings
        params = {"app_key": s.app_key or "", "app_secret": s.secret(), **grant}
        try:
            response = await self._http.get(f"{s.auth_base_url}/api/v2/token/{endpoint}", params=params)
        except httpx.TimeoutException:
            raise RetryableError("TikTok's token endpoint timed out") from None
        except httpx.TransportError as exc:
            raise RetryableError(f"TikTok's token endpoint is unreachable ({type(exc).__name__})") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"TikTok's token endpoint answered HTTP {response.status_code}")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise RetryableError(f"TikTok's token endpoint answered HTTP {response.status_code} without JSON") \
                from None
        code = body.get("code") if isinstance(body, dict) else None
        message = str(body.get("message") or "")[:200] if isinstance(body, dict) else ""
        if code == 0:
            return TokenSet.from_answer(body.get("data"))
        if code in REAUTH_CODES:
            raise GrantRefused(f"TikTok refused {what} ({code}: {message})")
        if code == 36009004:
            raise PermanentError(f"TikTok refused the app's credentials ({message}): check SHOPSYNC_TIKTOK_APP_KEY "
                                 "and SHOPSYNC_TIKTOK_APP_SECRET")
        if code in (36009002, 36009003, 36009007):
            raise RetryableError(f"TikTok's token endpoint answered {code}: {message}")
        raise GrantRefused(f"TikTok refused {what} ({code}: {message})")
