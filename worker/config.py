"""Settings from the environment and ``.env``, validated with clear messages.

Names without a prefix (``DATABASE_URL``, ``SUPABASE_URL``, ``SUPABASE_SERVICE_ROLE_KEY``,
``SUPABASE_JWT_SECRET``, ``PORT``) are the ones Supabase and Procfile hosts already use; everything
else is ``SHOPSYNC_*``. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker.errors import ConfigError

__all__ = ["DatabaseMode", "LogFormat", "Settings", "load_settings", "validation_lines", "variable_name"]

POSTGRES_URL_EXAMPLE = "postgresql://user:password@host:5432/dbname"
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?", re.IGNORECASE)


class DatabaseMode(StrEnum):
    DIRECT = "direct"
    SUPABASE = "supabase"


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHOPSYNC_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        populate_by_name=True,
    )

    # --- database paths -------------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "SHOPSYNC_DATABASE_URL"),
        description="PostgreSQL URL for the direct path (psycopg pool, LISTEN/NOTIFY, migrations).",
    )
    supabase_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SUPABASE_URL", "SHOPSYNC_SUPABASE_URL"),
        description="Supabase project URL for the supabase path (RPC through PostgREST, Realtime).",
    )
    supabase_service_role_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SUPABASE_SERVICE_ROLE_KEY", "SHOPSYNC_SUPABASE_SERVICE_ROLE_KEY"),
    )
    supabase_jwt_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SUPABASE_JWT_SECRET", "SHOPSYNC_SUPABASE_JWT_SECRET"),
        description="Verifies user access tokens on web endpoints that need them (HS256).",
    )
    db_mode: DatabaseMode | None = Field(
        default=None, description="direct or supabase; default: direct when DATABASE_URL is set."
    )
    db_pool_size: int = Field(default=8, ge=1, le=200)
    db_timeout: float = Field(default=5.0, gt=0, le=120,
                              description="Seconds a database call waits for a connection, and a connection for the "
                                          "server, before the database counts as unavailable.")

    # --- credential sealing ---------------------------------------------------------------------
    sealing_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated key_id:base64(32 bytes) pairs; the first seals, all open.",
    )

    # --- worker ---------------------------------------------------------------------------------
    worker_concurrency: int = Field(default=32, ge=1, le=10_000)
    worker_batch_size: int = Field(default=100, ge=1, le=1_000)
    worker_kinds: Annotated[list[str] | None, NoDecode] = Field(default=None, description="Only claim these job kinds.")
    lease_seconds: float = Field(default=15.0, gt=0, le=3600,
                                 description="A claimed job's lease, renewed by heartbeats every third of it; a killed "
                                             "worker's jobs run again once it expires.")
    poll_interval: float = Field(default=2.0, gt=0, le=300)
    shutdown_grace: float = Field(default=25.0, ge=0, le=3600)
    run_schedules: bool = Field(
        default=True, description="Run schedules in the worker when pg_cron is not installed."
    )
    reap_interval: float = Field(default=5.0, gt=0, le=3600,
                                 description="How often workers look for expired leases (with or without pg_cron, "
                                             "whose schedules run at most once a minute).")

    # --- web ------------------------------------------------------------------------------------
    host: str = Field(default="0.0.0.0")
    port: int = Field(default=8080, ge=1, le=65535, validation_alias=AliasChoices("PORT", "SHOPSYNC_PORT"))
    public_url: str = Field(default="http://localhost:8080", description="Where platforms reach the web process.")
    frontend_url: str = Field(default="http://localhost:3000", description="Where OAuth callbacks send the browser.")
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    metrics_port: int | None = Field(default=None, ge=1, le=65535,
                                     description="A worker serves its Prometheus metrics (job counts and run "
                                                 "times, platform requests) on this port; off when unset.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) whose pages may call the web process's browser routes "
                    "(POST /woocommerce/connect) with a user's token; comma-separated; none by default.")

    # --- misc -----------------------------------------------------------------------------------
    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"
    local_dev: bool = Field(default=False, description="Allows http:// and loopback store URLs (sandboxes).")

    @field_validator("worker_kinds", mode="before")
    @classmethod
    def _split_kinds(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()] or None
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*":
                raise ValueError("list the frontend's origins; '*' would let any site call with a user's token")
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin[:80]!r} is not an origin (scheme://host[:port], no path)")
        return [o.lower() for o in value]

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        # checked here, not at the first connection: a typo must not pass check-config (the value is secret:
        # the message never repeats it)
        if value is None:
            return None
        text = value.get_secret_value().strip()
        scheme = text.split("://", 1)[0].lower() if "://" in text else None
        if scheme is not None and scheme not in ("postgres", "postgresql"):
            raise ValueError(f"must be a PostgreSQL URL ({POSTGRES_URL_EXAMPLE}), not {scheme}://…")
        try:
            parts = conninfo_to_dict(text)
        except ProgrammingError:
            raise ValueError(f"is not a PostgreSQL URL or connection string ({POSTGRES_URL_EXAMPLE})") from None
        if not str(parts.get("port") or "5432").isdigit():
            raise ValueError("has a port that is not a number")
        return SecretStr(text)

    @field_validator("supabase_jwt_secret")
    @classmethod
    def _jwt_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 32:
            raise ValueError("is too short to be a project's JWT secret (Supabase: Settings → API → JWT secret, "
                             "at least 32 characters)")
        return value

    @field_validator("supabase_url", "public_url", "frontend_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @model_validator(mode="after")
    def _pick_mode(self) -> Settings:
        if self.db_mode is None and (self.database_url is not None or self.supabase_url is None):
            self.db_mode = DatabaseMode.DIRECT if self.database_url is not None else None
        if self.db_mode is None and self.supabase_url is not None:
            self.db_mode = DatabaseMode.SUPABASE
        return self

    # What each command needs; check-config reports against these.
    def problems(self, *, need_database: bool = True, need_sealing: bool = True) -> list[str]:
        """Human-readable list of what is missing for the worker/web to run. Never includes values."""
        found: list[str] = []
        if need_database:
            if self.db_mode is None:
                found.append("no database configured: set DATABASE_URL (direct) or SUPABASE_URL + "
                             "SUPABASE_SERVICE_ROLE_KEY (supabase)")
            elif self.db_mode is DatabaseMode.DIRECT and self.database_url is None:
                found.append("SHOPSYNC_DB_MODE=direct needs DATABASE_URL")
            elif self.db_mode is DatabaseMode.SUPABASE:
                if self.supabase_url is None:
                    found.append("SHOPSYNC_DB_MODE=supabase needs SUPABASE_URL")
                if self.supabase_service_role_key is None:
                    found.append("SHOPSYNC_DB_MODE=supabase needs SUPABASE_SERVICE_ROLE_KEY")
        if need_sealing and self.sealing_keys is None:
            found.append("SHOPSYNC_SEALING_KEYS is not set: credentials cannot be sealed "
                         "(generate one with `shopsync generate-key`)")
        return found


def variable_name(model: type[BaseSettings], field: str) -> str:
    """The environment variable that sets ``field`` of ``model`` (its first alias, else prefix + NAME)."""
    info = model.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and alias.choices and isinstance(alias.choices[0], str):
        return alias.choices[0]
    if isinstance(alias, str):
        return alias
    if info is None:
        return field            # already a variable's name (pydantic reports the alias it read)
    return f"{model.model_config.get('env_prefix', '')}{field}".upper()


def validation_lines(model: type[BaseSettings], exc: ValidationError) -> list[str]:
    """One line per invalid setting, named by its environment variable; values are never repeated."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        where = variable_name(model, loc[0]) if loc else "settings"
        lines.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return lines


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's validation errors into one readable ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(validation_lines(Settings, exc))) from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()
