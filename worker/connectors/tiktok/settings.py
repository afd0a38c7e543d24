"""TikTok Shop app settings (``SHOPSYNC_TIKTOK_*``), validated with clear messages.

The connector is *configured* once the app key, app secret and service id (Partner Center → App & Service)
are set. Its URLs in Partner Center: the redirect URL ``{public_url}/tiktok/callback`` and the webhook URL
``{public_url}/tiktok/webhooks``. TikTok's rate limits are dynamic and unpublished: ``requests_per_second`` is
what shopsync allows itself per app and shop (shared by every worker); a 429 or code 36009002 backs everyone off.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker.config import Settings
from worker.connectors.base import load_platform_settings
from worker.errors import ConfigError

__all__ = ["EVENT_TYPES", "TikTokSettings", "tiktok_settings"]

# the event types shopsync applies (worker.connectors.tiktok.webhooks.TOPICS; a test keeps them equal)
EVENT_TYPES = frozenset({"ORDER_STATUS_CHANGE", "PRODUCT_STATUS_CHANGE", "PRODUCT_INFORMATION_CHANGE",
                         "PRODUCT_CREATION", "INVENTORY_STATUS_CHANGE", "SELLER_DEAUTHORIZATION",
                         "UPCOMING_AUTHORIZATION_EXPIRATION"})


class TikTokSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSYNC_TIKTOK_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore", populate_by_name=True)

    app_key: str | None = Field(default=None, description="The app key (Partner Center → App & Service).")
    app_secret: SecretStr | None = Field(default=None, description="The app secret (signs requests and webhooks).")
    service_id: str | None = Field(default=None, description="The service id the authorization URL names "
                                                             "(not the app key).")
    authorize_url: str = Field(default="https://services.tiktokshop.com/open/authorize",
                               description="The consent page; US sellers: https://services.us.tiktokshop.com/"
                                           "open/authorize.")
    api_base_url: str = Field(default="https://open-api.tiktokglobalshop.com")
    auth_base_url: str = Field(default="https://auth.tiktok-shops.com",
                               description="Token endpoints: {auth_base_url}/api/v2/token/get|refresh.")
    requests_per_second: float = Field(default=10.0, gt=0, le=1000,
                                       description="Per app and shop, shared by every worker.")
    burst: int = Field(default=1, ge=1, le=100)
    page_size: int = Field(default=100, ge=1, le=100)
    search_cap: int = Field(default=10_000, ge=2, le=100_000,
                            description="Search results TikTok returns per filter (12052180 past it): full syncs "
                                        "split time windows that match more.")
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    max_attempts: int = Field(default=5, ge=1, le=20, description="Attempts per request (429, 5xx, timeouts).")
    rate_limit_wait_seconds: float = Field(default=1.0, gt=0, le=60,
                                           description="First back-off after a 429; doubles, capped at 60 s.")
    refresh_margin_seconds: float = Field(default=3600.0, ge=0, le=86400,
                                          description="Refresh an access token this long before it expires.")
    install_state_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    overlap_seconds: float = Field(default=300.0, ge=0, le=86400,
                                   description="Incremental syncs re-read this much before the watermark.")
    subscribe_events: Annotated[list[str], NoDecode] = Field(
        default=["ORDER_STATUS_CHANGE", "PRODUCT_STATUS_CHANGE", "SELLER_DEAUTHORIZATION",
                 "UPCOMING_AUTHORIZATION_EXPIRATION"],
        description="Event types registered per shop with PUT /event/202309/webhooks (product creation, "
                    "information and inventory-status events are configured in Partner Center).")

    @field_validator("authorize_url", "api_base_url", "auth_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("subscribe_events", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):         # comma-separated (NoDecode: not read as JSON first)
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @field_validator("subscribe_events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        found = [e.upper() for e in value]
        unknown = sorted(set(found) - EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event type(s) {', '.join(u[:40] for u in unknown[:5])}; "
                             f"choose from {', '.join(sorted(EVENT_TYPES))}")
        return list(dict.fromkeys(found))

    @property
    def configured(self) -> bool:
        return bool(self.app_key) and self.app_secret is not None and bool(self.service_id)

    def require_configured(self) -> None:
        if not self.configured:
            raise ConfigError("TikTok Shop is not configured: set SHOPSYNC_TIKTOK_APP_KEY, SHOPSYNC_TIKTOK_APP_SECRET "
                              "and SHOPSYNC_TIKTOK_SERVICE_ID")

    def secret(self) -> str:
        self.require_configured()
        assert self.app_secret is not None
        return self.app_secret.get_secret_value()

    @staticmethod
    def redirect_uri(core: Settings) -> str:
        return f"{core.public_url}/tiktok/callback"

    @staticmethod
    def webhook_uri(core: Settings) -> str:
        return f"{core.public_url}/tiktok/webhooks"


def load_tiktok_settings(**overrides: Any) -> TikTokSettings:
    return load_platform_settings(TikTokSettings, "TikTok", **overrides)


@lru_cache(maxsize=1)
def tiktok_settings() -> TikTokSettings:
    return load_tiktok_settings()
