"""TikTok Shop's request and webhook signatures, written from the documented algorithm
("Sign your API request", partner.tiktokshop.com/docv2/page/sign-your-api-request; the webhook overview).

Request: every query parameter except ``sign`` and ``access_token``, sorted by key, concatenated as
``{key}{value}`` (decoded values), prefixed with the request path, followed by the raw body unless the body
is ``multipart/form-data``, wrapped in the app secret on both sides; HMAC-SHA256 keyed with the app secret,
lowercase hex, sent as the ``sign`` query parameter. Webhook: lowercase hex HMAC-SHA256 (key: the app secret)
of ``app_key + raw body``, sent in the ``Authorization`` header.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

__all__ = ["EXCLUDED_PARAMS", "request_sign", "string_to_sign", "webhook_signature"]

EXCLUDED_PARAMS = frozenset({"sign", "access_token"})


def string_to_sign(secret: str, path: str, query: Mapping[str, str], body: bytes = b"") -> str:
    """``secret + path + k1v1k2v2… + body + secret`` (keys sorted by code point, ``sign``/``access_token`` out)."""
    pairs = "".join(k + str(query[k]) for k in sorted(query) if k not in EXCLUDED_PARAMS)
    return secret + path + pairs + body.decode("utf-8") + secret


def request_sign(secret: str, path: str, query: Mapping[str, str], body: bytes = b"") -> str:
    message = string_to_sign(secret, path, query, body)
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def webhook_signature(app_key: str, secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), app_key.encode("utf-8") + body, hashlib.sha256).hexdigest()
