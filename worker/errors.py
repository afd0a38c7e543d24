"""shopsync's one exception hierarchy.

Handlers raise these; the worker maps them to queue transitions:
``RetryableError`` → retry with backoff, ``PermanentError`` → dead at once,
``NeedsReauthError`` → dead and the store marked ``needs_reauth``.
Messages must never contain a secret.
"""

from __future__ import annotations

__all__ = [
    "ShopsyncError",
    "ConfigError",
    "DatabaseError",
    "JobError",
    "RetryableError",
    "PermanentError",
    "NeedsReauthError",
    "MappingError",
    "SealingError",
]


class ShopsyncError(Exception):
    """Base class of every error shopsync raises on purpose."""


class ConfigError(ShopsyncError):
    """Configuration is missing or invalid."""


class SealingError(ShopsyncError):
    """A sealed credential cannot be opened (unknown key id, tampered data) or sealing failed."""


class DatabaseError(ShopsyncError):
    """A SQL function call failed; carries the SQLSTATE so callers can tell errors apart."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate

    @property
    def outage(self) -> bool:
        """The database did not answer (no connection, a lost connection, shutting down, out of connections)
        rather than refusing the call: worth retrying shortly, never the caller's fault. A cancelled
        statement (57014, e.g. a statement timeout) is that statement's problem, not an outage."""
        state = self.sqlstate
        return state is None or (state[:2] in ("08", "57", "53") and state != "57014")


class JobError(ShopsyncError):
    """Base for errors a job handler raises to choose its job's fate."""


class RetryableError(JobError):
    """Transient failure: retry with exponential backoff (optionally not before ``retry_in`` seconds)."""

    def __init__(self, message: str, retry_in: float | None = None) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class PermanentError(JobError):
    """Retrying cannot help (bad input, missing store): the job goes straight to ``dead``."""


class NeedsReauthError(PermanentError):
    """The platform rejected the store's credentials: the store needs re-authorization."""


class MappingError(PermanentError):
    """A platform object lacks what its canonical row needs (retrying cannot fix the data)."""
