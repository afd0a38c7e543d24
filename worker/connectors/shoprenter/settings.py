"""ShopRenter app settings (``SHOPSYNC_SHOPRENTER_*``).

The connector is *configured* once the app's client id and secret are set. Its URLs in the ShopRenter
partner settings: RedirectUri ``{public_url}/shoprenter/install``, UninstallUri
``{public_url}/shoprenter/uninstall``, EntryPoint ``{public_url}/shoprenter/entry``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.config import Settings
from worker.connectors.base import load_platform_settings
from worker.errors import ConfigError

__all__ = ["SHOP_PATTERN", "ShopRenterSettings", "shoprenter_settings"]

SHOP_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class ShopRenterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSYNC_SHOPRENTER_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore", populate_by_name=True)

    client_id: str | None = Field(default=None, description="The app's client id (ShopRenter partner area).")
    client_secret: SecretStr | None = Field(default=None, description="The app's client secret.")
    oauth_base_url: str = Field(default="https://oauth.app.shoprenter.net",
                                description="Token endpoint base: POST {oauth_base_url}/{shop}/app/token.")
    api_base_url: str = Field(default="https://{shop}.api2.myshoprenter.hu/api",
                              description="API base of a shop; {shop} is replaced by the shop name.")
    requests_per_second: float = Field(
        default=2.85, gt=0, le=3.0,
        description="Per shop, shared by every worker. ShopRenter allows 3; a little under leaves room for "
                    "network jitter between workers.")
    page_size: int = Field(default=200, ge=1, le=200)
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    token_margin_seconds: float = Field(default=300.0, ge=0, le=3000,
                                        description="Request a new token this long before the old one expires.")
    install_max_age_seconds: int = Field(default=300, ge=30, le=3600,
                                         description="Signed install/uninstall calls older than this are refused.")
    app_url_pattern: str = Field(
        default=r"^https://[a-z0-9-]+\.shoprenter\.(hu|com|net)/",
        description="Where the install redirect may send the browser (ShopRenter's admin): anything else "
                    "would make the install endpoint an open redirect.")
    timezone: str = Field(default="Europe/Budapest",
                          description="ShopRenter times carry no offset: they are the shop's local time.")
    overlap_seconds: float = Field(default=300.0, ge=0, le=86400)
    delete_data_after_uninstall_hours: float | None = Field(
        default=48.0, ge=0, le=24 * 365,
        description="After an uninstall, delete the shop's synced data this many hours later unless it is "
                    "reinstalled (empty: keep it).")

    @field_validator("api_base_url")
    @classmethod
    def _api(cls, value: str) -> str:
        if "{shop}" not in value or not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL containing {shop}")
        return value.rstrip("/")

    @field_validator("oauth_base_url")
    @classmethod
    def _oauth(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("delete_data_after_uninstall_hours", mode="before")
    @classmethod
    def _empty_is_never(cls, value: Any) -> Any:
        return None if value == "" else value

    @property
    def configured(self) -> bool:
        return bool(self.client_id) and self.client_secret is not None

    def require_configured(self) -> None:
        if not self.configured:
            raise ConfigError("ShopRenter is not configured: set SHOPSYNC_SHOPRENTER_CLIENT_ID and "
                              "SHOPSYNC_SHOPRENTER_CLIENT_SECRET")

    def secret(self) -> str:
        self.require_configured()
        assert self.client_secret is not None
        return self.client_secret.get_secret_value()

    def api_url(self, shop: str) -> str:
        return self.api_base_url.replace("{shop}", shop)

    def token_url(self, shop: str) -> str:
        return f"{self.oauth_base_url}/{shop}/app/token"

    @staticmethod
    def webhook_uri(core: Settings, store_id: Any, token: str) -> str:
        return f"{core.public_url}/shoprenter/webhooks/{store_id}/{token}"


def load_shoprenter_settings(**overrides: Any) -> ShopRenterSettings:
    return load_platform_settings(ShopRenterSettings, "ShopRenter", **overrides)


@lru_cache(maxsize=1)
def shoprenter_settings() -> ShopRenterSettings:
    return load_shoprenter_settings()
