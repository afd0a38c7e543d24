"""Shopify's token endpoint: the code grant (expiring offline tokens), refresh, and legacy migration.

``POST https://{shop}/admin/oauth/access_token``. Every answer becomes a ``TokenSet``; failures map onto
``worker.errors``: a refused grant (``invalid_grant``, a used or expired code, an unknown subject token)
is ``GrantRefused`` (permanent: only the merchant can fix it), a refused client (wrong secret) is a
``PermanentError`` naming the configuration, 429/5xx/timeouts are ``RetryableError``. Tokens are never
part of a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from worker.connectors.shopify.auth import normalize_shop_domain
from worker.connectors.shopify.settings import ShopifySettings
from worker.errors import PermanentError, RetryableError

__all__ = ["GrantRefused", "ShopifyOAuth", "TokenSet", "TOKEN_EXCHANGE", "OFFLINE_TOKEN_TYPE"]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a grant type URN)
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105


class GrantRefused(PermanentError):
    """Shopify refused the code, refresh token or subject token: the merchant must authorize again."""


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    scope: str
    refresh_token: str | None = None
    access_expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None

    @property
    def expiring(self) -> bool:
        return self.refresh_token is not None

    @property
    def kind(self) -> str:
        # legacy tokens never expire and are migrated by token exchange on first use
        return "shopify_offline" if self.expiring else "shopify_offline_legacy"

    def secret_fields(self) -> dict[str, Any]:
        """What gets sealed (the only place tokens are kept)."""
        return {"access_token": self.access_token, "refresh_token": self.refresh_token, "scope": self.scope}

    @classmethod
    def from_sealed(cls, fields: dict[str, Any], access_expires_at: datetime | None,
                    refresh_expires_at: datetime | None) -> TokenSet:
        return cls(access_token=str(fields["access_token"]), scope=str(fields.get("scope") or ""),
                   refresh_token=fields.get("refresh_token"), access_expires_at=access_expires_at,
                   refresh_expires_at=refresh_expires_at)

    @classmethod
    def from_response(cls, body: Any, now: datetime) -> TokenSet:
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise RetryableError("Shopify's token endpoint answered without an access token")

        def at(seconds: Any) -> datetime | None:
            # a lifetime beyond ten years (or not a number) is no expiry we can use
            valid = isinstance(seconds, int | float) and not isinstance(seconds, bool) and 0 < seconds < 315_360_000
            return now + timedelta(seconds=int(seconds)) if valid else None

        return cls(access_token=body["access_token"], scope=str(body.get("scope") or ""),
                   refresh_token=body.get("refresh_token") if isinstance(body.get("refresh_token"), str) else None,
                   access_expires_at=at(body.get("expires_in")),
                   refresh_expires_at=at(body.get("refresh_token_expires_in")))


class ShopifyOAuth:
    """Calls the token endpoint of any shop with the app's credentials."""

    def __init__(self, settings: ShopifySettings, client: httpx.AsyncClient | None = None) -> None:
        settings.require_configured()
        self.settings = settings
        self._own_client = client is None
        # never follow redirects: a 3xx must not carry the client secret to another host
        self._client = client or httpx.AsyncClient(timeout=settings.request_timeout_seconds, follow_redirects=False)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def exchange_code(self, shop: str, code: str) -> TokenSet:
        """The authorization code → an expiring offline token pair."""
        return await self._request(shop, {"code": code, "expiring": "1"}, "the authorization code")

    async def refresh(self, shop: str, refresh_token: str) -> TokenSet:
        return await self._request(shop, {"grant_type": "refresh_token", "refresh_token": refresh_token},
                                   "the refresh token")

    async def migrate_legacy(self, shop: str, legacy_token: str) -> TokenSet:
        """A non-expiring offline token → an expiring pair (the legacy token stops working)."""
        return await self._request(shop, {"grant_type": TOKEN_EXCHANGE, "subject_token": legacy_token,
                                          "subject_token_type": OFFLINE_TOKEN_TYPE,
                                          "requested_token_type": OFFLINE_TOKEN_TYPE, "expiring": "1"},
                                   "the legacy access token")

    async def _request(self, shop: str, grant: dict[str, str], what: str) -> TokenSet:
        shop = normalize_shop_domain(shop)          # a hostile domain is never contacted
        secret = self.settings.client_secret
        assert secret is not None
        body = {"client_id": self.settings.client_id or "", "client_secret": secret.get_secret_value(), **grant}
        url = f"{self.settings.shop_url(shop)}/admin/oauth/access_token"
        now = datetime.now(UTC)
        try:
            response = await self._client.post(url, json=body, headers={"Accept": "application/json"})
        except httpx.TimeoutException:
            raise RetryableError(f"Shopify {shop}: the token endpoint timed out") from None
        except httpx.TransportError as exc:
            raise RetryableError(f"Shopify {shop}: token endpoint unreachable ({type(exc).__name__})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetryableError(f"Shopify {shop}: token endpoint answered HTTP {status}")
        try:
            payload = response.json()
        except ValueError:
            payload = None
        error = payload.get("error") if isinstance(payload, dict) else None
        if status == 401 or error == "invalid_client":
            raise PermanentError(f"Shopify {shop} refused the app's credentials (invalid_client): check "
                                 "SHOPSYNC_SHOPIFY_CLIENT_ID and SHOPSYNC_SHOPIFY_CLIENT_SECRET")
        if status != 200:
            code = error if isinstance(error, str) else f"HTTP {status}"
            raise GrantRefused(f"Shopify {shop} refused {what} ({code[:80]})")
        return TokenSet.from_response(payload, now)
