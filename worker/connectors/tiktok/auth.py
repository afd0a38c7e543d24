"""TikTok Shop's signatures, written from the documented algorithm ("Sign your API request"; the webhook
overview), independently of the sandbox's copy: tests check both against published and computed vectors.

* A request's ``sign``: HMAC-SHA256 keyed with the app secret over ``secret + path + k1v1k2v2… + body +
  secret`` — every query parameter but ``sign`` and ``access_token``, sorted by key, values as sent (decoded),
  the exact body bytes sent (none for GET), lowercase hex. The access token travels in ``x-tts-access-token``
  and is not signed. Timestamps are unix seconds; TikTok refuses them 5 minutes late or 30 seconds early.
* A webhook's ``Authorization`` header: lowercase hex HMAC-SHA256 (key: the app secret) of ``app_key + raw
  body``; compared in constant time. Nothing in it is time-bound: deliveries are deduped on
  ``tts_notification_id``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from worker.connectors.signatures import any_matches

__all__ = ["sign", "signed_query", "string_to_sign", "verify_webhook"]

_UNSIGNED = ("sign", "access_token")


def string_to_sign(secret: str, path: str, query: Mapping[str, str], body: bytes = b"") -> bytes:
    parts = [secret, path]
    parts += [f"{key}{query[key]}" for key in sorted(query) if key not in _UNSIGNED]
    return "".join(parts).encode("utf-8") + body + secret.encode("utf-8")


def sign(secret: str, path: str, query: Mapping[str, str], body: bytes = b"") -> str:
    return hmac.new(secret.encode("utf-8"), string_to_sign(secret, path, query, body), hashlib.sha256).hexdigest()


def signed_query(app_key: str, secret: str, path: str, params: Mapping[str, str], body: bytes = b"",
                 *, now: float | None = None) -> dict[str, str]:
    """``params`` plus ``app_key``, ``timestamp`` and the ``sign`` over all of them and ``body``."""
    query = {**params, "app_key": app_key, "timestamp": str(int(time.time() if now is None else now))}
    query["sign"] = sign(secret, path, query, body)
    return query


def verify_webhook(app_key: str, secret: str, raw: bytes, signature: str | None) -> bool:
    """True if ``signature`` (the ``Authorization`` header) is the hex HMAC of ``app_key + raw``."""
    if not signature or not app_key or not secret:
        return False
    expected = hmac.new(secret.encode("utf-8"), app_key.encode("utf-8") + raw, hashlib.sha256).hexdigest()
    return any_matches([expected.encode()], signature.strip().lower().encode("ascii", "replace"))
