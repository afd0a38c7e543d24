"""Shopify app settings (``SHOPSYNC_SHOPIFY_*``), validated with clear messages.

The connector is *configured* once a client id and secret are set; until then its routes answer 503
and its jobs fail with a message naming the missing variables. URLs shopsync tells Shopify about (the
OAuth redirect and the webhook address) derive from ``SHOPSYNC_PUBLIC_URL``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker.config import Settings
from worker.connectors.base import load_platform_settings
from worker.errors import ConfigError

__all__ = ["DEFAULT_SCOPES", "SHOP_PATTERN", "ShopifySettings", "shopify_settings"]

# products + variants + inventory (items, levels, locations), customers, orders (all of them, not only the
# last 60 days). Only read scopes: shopsync never writes to a shop.
DEFAULT_SCOPES = ("read_products", "read_inventory", "read_locations", "read_customers", "read_orders",
                  "read_all_orders")
# The same pattern auth.normalize_shop_domain applies; the database checks it too (begin_install).
SHOP_PATTERN = r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$"


class ShopifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSYNC_SHOPIFY_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore", populate_by_name=True)

    client_id: str | None = Field(default=None, description="The app's client id (Dev Dashboard / Partners).")
    client_secret: SecretStr | None = Field(default=None, description="The app's client secret.")
    old_client_secrets: SecretStr | None = Field(
        default=None, description="Comma-separated secrets still accepted on callbacks and webhooks while a "
                                  "secret rotation is in progress (Shopify signs with the old one for up to an hour).")
    # comma-separated in the environment, as Shopify writes them (NoDecode: not parsed as JSON first)
    scopes: Annotated[list[str], NoDecode] = Field(default=list(DEFAULT_SCOPES))
    api_version: str = Field(default="2026-10", pattern=r"^\d{4}-(01|04|07|10)$")
    shop_base_url: str = Field(
        default="https://{shop}",
        description="Base URL of a shop; {shop} is replaced by the domain. The sandbox serves "
                    "http://127.0.0.1:<port>/shops/{shop}.")
    refresh_margin_seconds: float = Field(default=300.0, ge=0, le=3000,
                                          description="Refresh an access token this long before it expires.")
    install_state_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    lookup_requests_per_second: float = Field(
        default=10.0, gt=0, le=1000,
        description="Live look-ups (agents, api_only stores) per second per store, across web processes; the "
                    "GraphQL client also follows the shop's cost bucket.")

    @field_validator("scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @field_validator("shop_base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        if "{shop}" not in value or not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL containing {shop}, e.g. https://{shop}")
        return value.rstrip("/")

    @property
    def configured(self) -> bool:
        return bool(self.client_id) and self.client_secret is not None

    def require_configured(self) -> None:
        if not self.configured:
            raise ConfigError("Shopify is not configured: set SHOPSYNC_SHOPIFY_CLIENT_ID and "
                              "SHOPSYNC_SHOPIFY_CLIENT_SECRET")

    def secrets(self) -> list[str]:
        """Every secret a signature may be made with: the current one first."""
        found = [self.client_secret.get_secret_value()] if self.client_secret is not None else []
        if self.old_client_secrets is not None:
            found += [s.strip() for s in self.old_client_secrets.get_secret_value().split(",") if s.strip()]
        return found

    def shop_url(self, shop: str) -> str:
        return self.shop_base_url.replace("{shop}", shop)

    @staticmethod
    def redirect_uri(core: Settings) -> str:
        return f"{core.public_url}/shopify/callback"

    @staticmethod
    def webhook_uri(core: Settings) -> str:
        return f"{core.public_url}/shopify/webhooks"


def load_shopify_settings(**overrides: Any) -> ShopifySettings:
    return load_platform_settings(ShopifySettings, "Shopify", **overrides)


@lru_cache(maxsize=1)
def shopify_settings() -> ShopifySettings:
    return load_shopify_settings()
