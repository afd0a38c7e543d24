"""Logging setup: JSON lines or readable text, with secrets redacted before anything is written.

Redaction runs as a filter on the handler, so it covers every logger (ours, httpx, psycopg, uvicorn):
``extra=`` fields whose names look secret are replaced, and secret-looking text in messages, string
extras and tracebacks is scrubbed. It is a safety net, not permission to log credentials.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from worker.config import LogFormat, Settings

__all__ = [
    "REDACTED",
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "configure_logging",
    "is_secret_field",
    "redact_text",
]

REDACTED = "[redacted]"

# Substrings (case-insensitive) of extra-field names whose values are never written.
_SECRET_FIELD_PARTS = (
    "token", "secret", "password", "passwd", "authorization", "api_key", "apikey", "api-key", "cookie",
    "credential", "private_key", "sealing_key", "key_material", "sealed",
)

_SENSITIVE_NAMES = (
    r"access[_-]?token|refresh[_-]?token|id[_-]?token|token|consumer[_-]?secret|consumer[_-]?key"
    r"|client[_-]?secret|secret|api[_-]?key|apikey|password|passwd|sealing[_-]?keys?"
)
_SCRUBBERS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:PASSWORD@host (postgresql://, redis://, https://...): keep the user, drop the password.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^\s/]*@"), rf"\1{REDACTED}@"),
    # Authorization headers, with or without a scheme word.
    (re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',;&}]+"),
     rf"\1{REDACTED}"),
    # name=value / name: value / "name": "value" for secret-looking names (X-Shopify-Access-Token too).
    (re.compile(rf"(?i)\b([\w-]*?(?:{_SENSITIVE_NAMES})[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}}]+"),
     rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # Shopify tokens/secrets (shpat_, shpua_, shprt_, shpss_, shpca_, shppa_) and WooCommerce ck_/cs_ keys.
    (re.compile(r"\bshp[a-z]{2}_[A-Za-z0-9]{8,}"), REDACTED),
    (re.compile(r"\bc[ks]_[A-Fa-f0-9]{20,}"), REDACTED),
    # JWTs: three base64url segments, the header starting eyJ ('{"').
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # A sealing key spec pasted somewhere: key_id:base64(32 bytes).
    (re.compile(r"\b([A-Za-z0-9_-]{1,32}):[A-Za-z0-9+/_-]{43}=?(?![A-Za-z0-9+/_=-])"), rf"\1:{REDACTED}"),
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_DONE = "_shopsync_redacted"


def redact_text(text: str) -> str:
    """Scrub secret-looking substrings (tokens, passwords in URLs, JWTs...) from free text."""
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


def is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_FIELD_PARTS)


def _redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if depth > 5:
        return value
    if isinstance(value, Mapping):
        return {k: REDACTED if isinstance(k, str) and is_secret_field(k) else _redact_value(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v, depth + 1) for v in value]
    return value


# uvicorn attaches an ANSI-coloured copy of its message for terminals: never part of a log line
_DROPPED_EXTRAS = frozenset({"color_message"})
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items()
            if k not in _RECORD_FIELDS and k not in _DROPPED_EXTRAS and not k.startswith("_")}


class RedactingFilter(logging.Filter):
    """Rewrites the record in place: message formatted and scrubbed, secret extras replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _DONE, False):
            return True
        try:
            message = _ANSI.sub("", record.getMessage())
        except Exception:  # a bad format string must not crash the caller
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = redact_text(message), None
        for key, value in _extras(record).items():
            setattr(record, key, REDACTED if is_secret_field(key) else _redact_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        setattr(record, _DONE, True)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = redact_text(formatter.formatException(record.exc_info))
    return record.exc_text or None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then extras, exc and stack when present."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record), "level": record.levelname, "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _extras(record).items():
            out[key if key not in out else f"extra_{key}"] = value
        exc = _exception_text(self, record)
        if exc:
            out["exc"] = exc
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger msg key=value ...`` on one line; a traceback, if any, follows."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, record.name, record.getMessage()]
        for key, value in _extras(record).items():
            if isinstance(value, str):
                # Quote only when needed so ``key=value`` stays unambiguous.
                quote = not value or any(c.isspace() or c in "\"=" for c in value)
                shown = json.dumps(value, ensure_ascii=False) if quote else value
            else:
                shown = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
            parts.append(f"{key}={shown}")
        line = " ".join(parts)
        exc = _exception_text(self, record)
        if exc:
            line += "\n" + exc
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


class _ShopsyncHandler(logging.StreamHandler[TextIO]):
    """Marker type so configure_logging can replace its own handler without touching others (pytest's)."""


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> logging.Handler:
    """Point the root logger at one redacting handler (stderr by default); safe to call again."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ShopsyncHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _ShopsyncHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if settings.log_format is LogFormat.JSON else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # Python's warnings go through the same handler, so a file holds one format (never a bare stderr line)
    logging.captureWarnings(True)
    # the pool logs every failed connection attempt; shopsync says once, in its own words, that the
    # database is unreachable and what it does about it
    logging.getLogger("psycopg.pool").setLevel(max(logging.ERROR, root.level))
    # uvicorn's default config gives its loggers their own unredacted handlers and stops propagation;
    # send them through ours whoever configured them first
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server_log = logging.getLogger(name)
        server_log.handlers.clear()
        server_log.propagate = True
    return handler
