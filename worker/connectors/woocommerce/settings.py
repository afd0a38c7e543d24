"""WooCommerce settings (``SHOPSYNC_WOOCOMMERCE_*``). WooCommerce needs no app registration: merchants
paste REST API keys, so the connector is always configured. Self-hosted shops are fragile, hence the
polite defaults: one request at a time per store, a few per second across all workers.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.config import Settings
from worker.connectors.base import load_platform_settings

__all__ = ["WEBHOOK_TOPICS", "WooSettings", "woo_settings"]

# topic → synced resource. Variation changes reach us as product.updated of the parent.
WEBHOOK_TOPICS = {
    "product.created": "products", "product.updated": "products", "product.deleted": "products",
    "product.restored": "products",
    "customer.created": "customers", "customer.updated": "customers", "customer.deleted": "customers",
    "order.created": "orders", "order.updated": "orders", "order.deleted": "orders", "order.restored": "orders",
}


class WooSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSYNC_WOOCOMMERCE_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore", populate_by_name=True)

    requests_per_second: float = Field(default=4.0, ge=0, le=1000,
                                       description="Per store, across all workers; 0 turns pacing off.")
    concurrency: int = Field(default=1, ge=1, le=16, description="Requests in flight per store and job.")
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    page_size: int = Field(default=100, ge=1, le=100)
    overlap_seconds: float = Field(default=300.0, ge=0, le=86400,
                                   description="Incremental syncs re-read this much before the watermark.")
    ca_file: str | None = Field(default=None, description="Extra CA bundle (PEM) for stores with a private CA.")
    allow_private_urls: bool | None = Field(
        default=None, description="Allow http:// and private/loopback store URLs; default: SHOPSYNC_LOCAL_DEV.")
    oauth1_signature_method: str = Field(default="HMAC-SHA256", pattern=r"^HMAC-SHA(1|256)$")

    def private_allowed(self, core: Settings) -> bool:
        return core.local_dev if self.allow_private_urls is None else self.allow_private_urls

    @staticmethod
    def webhook_uri(core: Settings, store_id: Any) -> str:
        return f"{core.public_url}/woocommerce/webhooks/{store_id}"


def load_woo_settings(**overrides: Any) -> WooSettings:
    return load_platform_settings(WooSettings, "WooCommerce", **overrides)


@lru_cache(maxsize=1)
def woo_settings() -> WooSettings:
    return load_woo_settings()
