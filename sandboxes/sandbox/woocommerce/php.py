"""The few PHP/WordPress behaviours a WooCommerce client can observe on the wire.

* ``php_json`` — ``wp_json_encode`` output: compact, ``/`` escaped as ``\\/`` and every non-ASCII character as
  ``\\uXXXX`` (PHP's defaults). Webhook signatures are computed over exactly these bytes, so a receiver that
  re-serialises the JSON before checking the signature fails — as it would against a real store.
* ``php_query`` — how PHP fills ``$_GET``: ``+`` and ``%XX`` decoded, the last duplicate wins, ``a[]=1&a[]=2``
  becomes a list and ``a[k]=v`` a dict, ``.`` and space in names become ``_``.
* ``rawurlencode`` — PHP's ``rawurlencode`` (RFC 3986 unreserved characters only).
* ``wp_error`` / ``rest_invalid_param`` — the WP REST error bodies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson

__all__ = [
    "PhpValue",
    "php_empty",
    "php_json",
    "php_query",
    "php_query_pairs",
    "rawurlencode",
    "rest_invalid_param",
    "wp_error",
    "wp_sprintf_l",
]

# A $_GET value: a string, or (for ``name[]`` / ``name[key]``) a list or dict of strings.
PhpValue = str | list[str] | dict[str, str]

_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _u_escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    if code > 0xFFFF:  # PHP writes astral characters as a surrogate pair, like JSON requires
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def php_json(value: Any) -> bytes:
    """``wp_json_encode($value)`` with PHP's default flags."""
    raw = orjson.dumps(value)
    if not raw.isascii():
        # Non-ASCII only ever occurs inside JSON strings, so escaping it textually is safe.
        raw = _NON_ASCII.sub(_u_escape, raw.decode()).encode()
    return raw.replace(b"/", b"\\/")


def rawurlencode(value: str) -> str:
    """PHP ``rawurlencode``: everything but ``A-Za-z0-9-_.~`` percent-encoded (UTF-8)."""
    return quote(value, safe="-_.~")


def php_empty(value: PhpValue | None) -> bool:
    """PHP ``empty()`` for request values: ``""``, ``"0"`` and empty arrays are empty."""
    if value is None:
        return True
    if isinstance(value, str):
        return value in ("", "0")
    return len(value) == 0


_BRACKET = re.compile(r"^([^\[]*)\[([^\]]*)\](.*)$")


def php_query_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, PhpValue]:
    """Fold decoded (key, value) pairs the way PHP builds ``$_GET`` (one level of brackets)."""
    out: dict[str, PhpValue] = {}
    for key, value in pairs:
        m = _BRACKET.match(key)
        base = (m.group(1) if m else key).replace(".", "_").replace(" ", "_")
        if not base:
            continue
        if m is None:
            out[base] = value
            continue
        sub = m.group(2)
        current = out.get(base)
        if sub == "":
            if not isinstance(current, list):
                current = []
                out[base] = current
            current.append(value)
        else:
            if not isinstance(current, dict):
                current = {}
                out[base] = current
            current[sub] = value
    return out


def php_query(query: str) -> dict[str, PhpValue]:
    """``$_GET`` for a raw query string."""
    return php_query_pairs(parse_qsl(query, keep_blank_values=True))


def wp_error(code: str, message: str, status: int, **data: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"status": status, **data}}


def wp_sprintf_l(items: Sequence[str]) -> str:
    """WordPress's ``%l`` list format: ``a``, ``a and b``, ``a, b, and c``."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + ", and " + items[-1]


def rest_invalid_param(errors: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """``rest_invalid_param`` (WP ≥ 5.5 shape): ``errors`` maps param -> (detail code, message)."""
    names = ", ".join(errors)
    return wp_error("rest_invalid_param", f"Invalid parameter(s): {names}", 400,
                    params={k: msg for k, (_, msg) in errors.items()},
                    details={k: {"code": code, "message": msg, "data": None} for k, (code, msg) in errors.items()})
