"""Notification settings (``SHOPSYNC_NOTIFY_*``). Nothing is required: channels bring their own provider keys."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.config import Settings
from worker.connectors.base import load_platform_settings

__all__ = ["NotifySettings", "load_notify_settings"]

MAILGUN_HOSTS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSYNC_NOTIFY_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore", populate_by_name=True)

    app_url: str | None = Field(default=None, description="Links in messages start here; default: "
                                                           "SHOPSYNC_FRONTEND_URL.")
    templates_dir: Path | None = Field(default=None, description="Templates here replace the built-in ones "
                                                                 "of the same name.")
    resend_api_url: str = Field(default="https://api.resend.com")
    mailgun_api_url: str | None = Field(default=None, description="Replaces both Mailgun regions' hosts "
                                                                  "(a proxy, a stand-in).")
    send_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    retry_base_seconds: float = Field(default=2.0, gt=0, le=3600)
    retry_max_seconds: float = Field(default=300.0, gt=0, le=86400,
                                     description="Longest wait between two attempts while a provider is down.")
    allow_private: bool | None = Field(default=None, description="Webhook URLs and SMTP hosts on private or "
                                                                 "loopback addresses, http:// webhooks, SMTP "
                                                                 "without TLS; default: SHOPSYNC_LOCAL_DEV.")
    ca_file: str | None = Field(default=None, description="Extra CA bundle (PEM) trusted for SMTP servers and "
                                                          "webhook receivers with a private CA.")
    max_listed: int = Field(default=1000, ge=1, le=100_000,
                            description="Events listed one by one in a message; the rest are counted.")

    @field_validator("app_url", "resend_api_url", "mailgun_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    def private_allowed(self, core: Settings) -> bool:
        return core.local_dev if self.allow_private is None else self.allow_private

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        return context

    def links_base(self, core: Settings) -> str:
        return self.app_url or core.frontend_url

    def mailgun_base(self, region: str) -> str:
        return self.mailgun_api_url or MAILGUN_HOSTS[region]

    def retry_delay(self, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1``: doubling from the base, capped."""
        return float(min(self.retry_base_seconds * 2 ** max(attempt - 1, 0), self.retry_max_seconds))


def load_notify_settings(**overrides: Any) -> NotifySettings:
    return load_platform_settings(NotifySettings, "notifications", **overrides)
