"""Look-up settings (``SHOPSYNC_LOOKUP_*``): the time budget of a request, users' request rate, the default
region for phone numbers written without a country code, and where the MCP endpoint may be reached."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker.connectors.base import load_platform_settings

__all__ = ["LookupSettings", "lookup_settings"]

_HOST = re.compile(r"([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:(\d{1,5}|\*))?")


class LookupSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSYNC_LOOKUP_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore", populate_by_name=True)

    timeout_seconds: float = Field(default=2.0, gt=0, le=60,
                                   description="A look-up that takes longer answers 504 (the agent keeps talking).")
    user_requests_per_second: float = Field(default=10.0, gt=0, le=1000,
                                            description="Look-ups per second a signed-in user may make (keys have "
                                                        "their own rate).")
    user_burst: int = Field(default=20, ge=1, le=10000)
    default_phone_region: str | None = Field(
        default=None, pattern=r"^[A-Z]{2}$",
        description="ISO 3166 country of phone numbers given without +country code (e.g. HU); none: they are "
                    "refused unless the request names a region.")
    mcp_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated Host headers the MCP endpoint accepts besides "
                                          "SHOPSYNC_PUBLIC_URL's host and loopback (host, host:port, or host:* for "
                                          "any port).")
    max_body_bytes: int = Field(default=16_384, ge=1024, le=1_048_576,
                                description="A look-up request body larger than this answers 413.")

    @field_validator("default_phone_region", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() or None if isinstance(value, str) else value

    @field_validator("mcp_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("mcp_allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not _HOST.fullmatch(host):
                raise ValueError(f"{host[:80]!r} is not a Host header value (host, host:port or host:*; no scheme, "
                                 "no path)")
        return value


@lru_cache(maxsize=1)
def lookup_settings() -> LookupSettings:
    return load_platform_settings(LookupSettings, "Look-up")
