"""HMAC-SHA256 checks the platforms' signatures share, in constant time: every candidate (secret, or
signed-string variant) is compared, with no early exit, so the time taken tells nothing about which matched."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence

__all__ = ["any_matches", "base64_hmac_matches", "hex_hmac_matches"]


def any_matches(expected: Iterable[bytes], given: bytes) -> bool:
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(candidate, given)
    return matched


def base64_hmac_matches(body: bytes, signature: str | None, secrets: Sequence[str]) -> bool:
    """True if ``signature`` is the base64 HMAC-SHA256 of ``body`` under one of ``secrets`` (Shopify's
    ``X-Shopify-Hmac-Sha256``, WooCommerce's ``X-WC-Webhook-Signature``)."""
    if not signature or not secrets:
        return False
    expected = (base64.b64encode(hmac.new(s.encode("utf-8"), body, hashlib.sha256).digest()) for s in secrets)
    return any_matches(expected, signature.strip().encode("ascii", "replace"))


def hex_hmac_matches(messages: Sequence[str], signature: str, secrets: Sequence[str]) -> bool:
    """True if ``signature`` is the hex HMAC-SHA256 of one of ``messages`` under one of ``secrets``."""
    expected = (hmac.new(s.encode("utf-8"), m.encode("utf-8"), hashlib.sha256).hexdigest().encode()
                for s in secrets for m in messages)
    return any_matches(expected, signature.strip().lower().encode("ascii", "replace"))
