"""Shopify's signatures and shop identity: what must hold before shopsync trusts or contacts a shop.

- Shop domains must match ``^[a-zA-Z0-9][a-zA-Z0-9-]*\\.myshopify\\.com$``; nothing else is ever
  contacted (a hostile "shop" must not turn the worker into an SSRF proxy).
- OAuth callbacks carry a hex HMAC-SHA256 over the other query parameters, sorted and encoded the
  way shopify-app-js does (``URLSearchParams``), and a timestamp that must be recent.
- Webhooks carry a base64 HMAC-SHA256 of the raw body. During a secret rotation both secrets sign
  for a while, so every configured secret is tried. All comparisons are constant-time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

from worker.connectors.signatures import base64_hmac_matches, hex_hmac_matches
from worker.errors import PermanentError

__all__ = ["InvalidShopDomain", "authorize_url", "callback_message", "normalize_shop_domain",
           "verify_callback", "verify_webhook", "CALLBACK_MAX_AGE_SECONDS"]

_SHOP_DOMAIN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")
CALLBACK_MAX_AGE_SECONDS = 90          # shopify-app-js rejects callbacks older than this
_FORM_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*-._")


class InvalidShopDomain(PermanentError):
    """The value is not a ``*.myshopify.com`` shop domain."""


def normalize_shop_domain(value: str | None) -> str:
    """The canonical (lower-case) shop domain, or InvalidShopDomain. Never echoes long input."""
    candidate = (value or "").strip()
    if len(candidate) > 255 or not _SHOP_DOMAIN.fullmatch(candidate):
        shown = candidate[:60] + ("…" if len(candidate) > 60 else "")
        raise InvalidShopDomain(f"not a Shopify shop domain (expected name.myshopify.com): {shown!r}")
    return candidate.lower()


def _form_encode(text: str) -> str:
    # application/x-www-form-urlencoded exactly as URLSearchParams writes it (space → '+', '~' escaped)
    out = []
    for byte in text.encode("utf-8"):
        if byte in _FORM_SAFE:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def callback_message(params: Iterable[tuple[str, str]]) -> str:
    """The string Shopify signs: every parameter but hmac/signature, sorted by key, form-encoded."""
    kept = sorted((k, v) for k, v in params if k not in ("hmac", "signature"))
    return "&".join(f"{_form_encode(k)}={_form_encode(v)}" for k, v in kept)


def verify_callback(params: Sequence[tuple[str, str]], secrets: Sequence[str], *, now: float | None = None,
                    max_age: float = CALLBACK_MAX_AGE_SECONDS) -> bool:
    """True if the OAuth callback's hmac is valid for one of ``secrets`` and its timestamp is recent."""
    given = [v for k, v in params if k == "hmac"]
    stamps = [v for k, v in params if k == "timestamp"]
    if len(given) != 1 or len(stamps) != 1 or not secrets:
        return False
    try:
        age = (time.time() if now is None else now) - int(stamps[0])
    except ValueError:
        return False
    if abs(age) > max_age:
        return False
    return hex_hmac_matches([callback_message(params)], given[0], secrets)


def verify_webhook(raw_body: bytes, signature_header: str | None, secrets: Sequence[str]) -> bool:
    """True if ``X-Shopify-Hmac-Sha256`` is the base64 HMAC of the raw body under one of ``secrets``."""
    return base64_hmac_matches(raw_body, signature_header, secrets)


def authorize_url(shop: str, *, client_id: str, scopes: Sequence[str], redirect_uri: str, state: str,
                  online: bool = False, base_url: str | None = None) -> str:
    """Where to send the merchant to approve the app. ``base_url`` replaces ``https://{shop}`` (sandbox)."""
    shop = normalize_shop_domain(shop)
    query = [("client_id", client_id), ("scope", ",".join(scopes)), ("redirect_uri", redirect_uri),
             ("state", state), ("grant_options[]", "per-user" if online else "")]
    # Shopify asks for %20 rather than '+' for spaces
    encoded = urlencode(query).replace("+", "%20")
    return f"{(base_url or f'https://{shop}').rstrip('/')}/admin/oauth/authorize?{encoded}"
