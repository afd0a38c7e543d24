"""Logging: JSON lines and text output, and redaction of secrets in extras, messages and tracebacks."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from worker.config import load_settings
from worker.logs import REDACTED, configure_logging, redact_text

SHOPIFY_AT = "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"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwicm9sZSI6InNlcnZpY2Vfcm9sZSJ9"
       ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
DB_PW = "hunter2-Sup3rS3cret"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Where configure_logging writes; the root logger is restored afterwards (pytest's handlers kept)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield io.StringIO()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def setup(stream: io.StringIO, fmt: str, level: str = "DEBUG") -> logging.Handler:
    return configure_logging(load_settings(log_format=fmt, log_level=level), stream=stream)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_parse_with_fields(stream: io.StringIO) -> None:
    setup(stream, "json")
    log = logging.getLogger("shopsync.test")
    log.info("synced %d products", 42, extra={"store_id": "s-1", "job": {"kind": "sync", "attempt": 2}})
    log.warning("second line\nwith a newline")
    first, second = json_lines(stream)
    assert first["msg"] == "synced 42 products"
    assert first["level"] == "INFO"
    assert first["logger"] == "shopsync.test"
    assert first["store_id"] == "s-1"
    assert first["job"] == {"kind": "sync", "attempt": 2}
    assert first["ts"].endswith("Z") and "T" in first["ts"]
    assert second["msg"] == "second line\nwith a newline"
    assert len(stream.getvalue().splitlines()) == 2


def test_json_exception_is_a_string(stream: io.StringIO) -> None:
    setup(stream, "json")
    try:
        raise RuntimeError(f"connect failed: postgresql://app:{DB_PW}@db.example:5432/shop")
    except RuntimeError:
        logging.getLogger("shopsync.test").exception("job failed")
    (line,) = json_lines(stream)
    assert isinstance(line["exc"], str)
    assert "RuntimeError" in line["exc"] and "Traceback" in line["exc"]
    assert DB_PW not in stream.getvalue()
    assert f"postgresql://app:{REDACTED}@db.example" in line["exc"]


def test_level_filters(stream: io.StringIO) -> None:
    setup(stream, "json", level="WARNING")
    log = logging.getLogger("shopsync.test")
    log.info("quiet")
    log.warning("loud")
    assert [line["msg"] for line in json_lines(stream)] == ["loud"]


def test_secret_extras_are_redacted(stream: io.StringIO) -> None:
    setup(stream, "json")
    extras = {
        "access_token": SHOPIFY_AT, "Consumer_Secret": "cs_plainsecretvalue1", "db_password": "pw-1",
        "Authorization": "Basic Y2tfMTIzOmNzXzQ1Ng==", "apiKey": "key-abc-123", "set_cookie": "sid=s3ss10n",
        "sealed_credentials": "v1.AAAABBBBCCCC", "headers": {"X-Shopify-Access-Token": "tok-in-dict"},
        "note": f"retry with {SHOPIFY_AT}", "store_id": "s-1",
    }
    logging.getLogger("shopsync.test").info("calling api", extra=extras)
    (line,) = json_lines(stream)
    output = stream.getvalue()
    for key in ("access_token", "Consumer_Secret", "db_password", "Authorization", "apiKey", "set_cookie",
                "sealed_credentials"):
        assert line[key] == REDACTED
        assert str(extras[key]) not in output
    assert line["headers"] == {"X-Shopify-Access-Token": REDACTED}
    assert "tok-in-dict" not in output
    assert SHOPIFY_AT not in output  # scrubbed from a non-secret string extra too
    assert line["store_id"] == "s-1"


@pytest.mark.parametrize(
    ("message", "secret", "kept"),
    [
        ("request with Authorization: Bearer abc.def-ghi_0123456789", "abc.def-ghi_0123456789",
         "Authorization"),
        ("sent header Bearer sk_live_9f8e7d6c5b4a", "sk_live_9f8e7d6c5b4a", "Bearer"),
        (f"token is {SHOPIFY_AT} for store", SHOPIFY_AT, "for store"),
        ("refresh shprt_aabbccddeeff00112233 and", "aabbccddeeff0011", "refresh"),
        ("user shpua_99887766554433221100 too", "99887766554433221100", "too"),
        ("headers X-Shopify-Access-Token: not-prefixed-value-1", "not-prefixed-value-1",
         "X-Shopify-Access-Token"),
        ("GET /wp-json/wc/v3/products?consumer_key=ck_1&consumer_secret=woo-secret-value", "woo-secret-value",
         "/wp-json/wc/v3/products"),
        ("callback ?code=abc&access_token=tok-query-123&shop=x", "tok-query-123", "shop=x"),
        ('body {"access_token": "json-tok-456", "scope": "read"}', "json-tok-456", '"scope": "read"'),
        (f"user jwt {JWT} rejected", JWT.split(".")[2], "rejected"),
        (f"dsn postgresql://app:{DB_PW}@db.example:5432/shop", DB_PW, "postgresql://app:"),
        (f"dsn postgres://app:{DB_PW}@localhost/shop", DB_PW, "@localhost/shop"),
        ("woo key cs_0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123", "woo key"),
    ],
)
def test_message_secrets_are_scrubbed(stream: io.StringIO, message: str,
                                      secret: str, kept: str) -> None:
    setup(stream, "json")
    logging.getLogger("shopsync.test").warning(message)
    output = stream.getvalue()
    assert secret not in output
    assert REDACTED in output
    assert kept in json_lines(stream)[0]["msg"]


def test_secrets_in_format_args_are_scrubbed(stream: io.StringIO) -> None:
    # httpx logs URLs through %-args; the filter must scrub the formatted message, not just the template.
    setup(stream, "text")
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s"', "GET",
                                    "https://x.test/cb?access_token=argtok-789", "HTTP/1.1 200 OK")
    assert "argtok-789" not in stream.getvalue()
    assert "HTTP Request: GET https://x.test/cb?access_token=[redacted]" in stream.getvalue()


def test_looked_up_values_in_urls_are_scrubbed() -> None:
    # what a live look-up searches for travels in query strings that httpx logs
    text = redact_text("GET https://shop.example/wp-json/wc/v3/orders?search=36301234567&per_page=50 and "
                       "GET https://demo.api2.myshoprenter.hu/api/customers?email=ann%40example.com&full=1")
    assert "36301234567" not in text and "ann%40example.com" not in text
    assert "per_page=50" in text and "full=1" in text and text.count("[redacted]") == 2


def test_harmless_text_is_untouched() -> None:
    for text in ("synced 10 products for store 7f1c", "token_count=5 password authentication failed",
                 "GET https://shop.example:443/admin/api/2024-07/products.json?limit=250",
                 "key_id=k20240101 needs reseal"):
        assert redact_text(text) == text


def test_text_format_is_one_readable_line(stream: io.StringIO) -> None:
    setup(stream, "text")
    logging.getLogger("shopsync.jobs").info("job done", extra={"job_id": 17, "kind": "sync products",
                                                                "api_key": "k-secret-1"})
    (line,) = stream.getvalue().splitlines()
    parts = line.split(" ")
    assert parts[0].endswith("Z") and "T" in parts[0]
    assert parts[1:5] == ["INFO", "shopsync.jobs", "job", "done"]
    assert "job_id=17" in line
    assert 'kind="sync products"' in line
    assert f"api_key={REDACTED}" in line
    assert "k-secret-1" not in line


def test_reconfigure_replaces_own_handler_only(stream: io.StringIO) -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    first = setup(io.StringIO(), "text")
    second = setup(stream, "json")
    assert first not in root.handlers and second in root.handlers
    assert len(root.handlers) == before + 1
    logging.getLogger("x").error("only once")
    assert len(json_lines(stream)) == 1


def test_text_format_structured_extras_and_exception(stream: io.StringIO) -> None:
    setup(stream, "text")
    try:
        raise ValueError("bad consumer_secret=cs-leak-1")
    except ValueError:
        detail = {"password": "pw-leak", "n": 1}
        logging.getLogger("shopsync.jobs").exception("failed", extra={"detail": detail})
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith(f'failed detail={{"password":"{REDACTED}","n":1}}')
    assert rest[0].startswith("Traceback") and "ValueError" in rest[-1]
    assert "pw-leak" not in stream.getvalue() and "cs-leak-1" not in stream.getvalue()


def test_json_lines_hold_no_terminal_colours_and_warnings_join_them(stream: io.StringIO) -> None:
    logging.captureWarnings(False)      # undo an earlier test's capture, which pytest's warning capture outlived
    logging.getLogger("uvicorn").propagate = False    # as uvicorn's own default config leaves it,
    logging.getLogger("uvicorn.error").disabled = True  # and a later dictConfig without disable_existing_loggers
    # an earlier test's uvicorn (a sandbox's, log_level="warning") leaves uvicorn.error at WARNING
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    setup(stream, "json")
    # what uvicorn logs: a plain message plus an ANSI-coloured copy for terminals
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42,
                                             extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"})
    logging.getLogger("t").info("\x1b[32mgreen\x1b[0m done")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("old API", DeprecationWarning, stacklevel=1)
    finally:
        logging.captureWarnings(False)
    text = stream.getvalue()
    assert "\x1b" not in text and "\\u001b" not in text
    lines = json_lines(stream)                    # every line is JSON: the warning too
    assert lines[0]["msg"] == "Started server process [42]" and "color_message" not in lines[0]
    assert lines[1]["msg"] == "green done"
    assert lines[2]["logger"] == "py.warnings" and "DeprecationWarning: old API" in lines[2]["msg"]
