"""Outgoing webhooks signed per the Standard Webhooks spec (the scheme behind Svix).

A few lines written against the spec instead of the ``standardwebhooks`` package: signing is one HMAC, and
the package would bring its own HTTP client and dependencies into the worker. ``tests/test_notify_signing.py``
checks these lines against the test vectors the spec's reference libraries publish, and the reference
``standardwebhooks`` verifier (a test-only dependency) against messages signed here.

Headers: ``webhook-id`` (the same on every retry of a message: receivers deduplicate on it),
``webhook-timestamp`` (integer seconds), ``webhook-signature`` (``v1,`` + base64 of
HMAC-SHA256(secret, ``id.timestamp.body``)); the secret is ``whsec_`` + base64 of its bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

__all__ = ["sign", "signature_headers"]

PREFIX = "whsec_"


def _key(secret: str) -> bytes:
    body = secret.removeprefix(PREFIX)
    return base64.b64decode(body + "=" * (-len(body) % 4))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "msg_id.timestamp.body">`` over the exact bytes sent."""
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode("ascii")


def signature_headers(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secret, msg_id, stamp, body)}
