"""Who is asking: an organization API key (``ssk_…``) or a signed-in member's Supabase access token, both as
``Authorization: Bearer``.

A key is never compared as text: its SHA-256 is what the database looks up (a unique index on the hash; a key
holds 244 random bits, so the hash is as good as the key and reveals nothing). Whether the key exists, is
revoked or expired, which stores and resources it covers and whether it is over its rate is answered by
``begin_lookup`` in the same round trip as the look-up's routing. Keys are created, listed and revoked by
owners and admins through RPCs (``create_api_key``, ``list_api_keys``, ``revoke_api_key``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from uuid import UUID

from starlette.requests import Request

from worker.errors import ConfigError
from worker.web.user_auth import Unauthenticated, authenticate

__all__ = ["KEY_PATTERN", "Caller", "caller_from_request", "hash_key", "key_caller"]

KEY_PREFIX = "ssk_"
KEY_PATTERN = re.compile(r"^ssk_[0-9a-f]{12}_[0-9a-f]{52}$")


@dataclass(frozen=True)
class Caller:
    """An API key (by its hash) or a signed-in user."""

    key_hash: str | None = None
    user_id: UUID | None = None

    def __post_init__(self) -> None:
        if (self.key_hash is None) == (self.user_id is None):
            raise ValueError("a caller is either an API key or a user")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_caller(key: str) -> Caller:
    """The caller of an API key; Unauthenticated when it is not shaped like one (nothing else is checked here)."""
    key = key.strip()
    if not KEY_PATTERN.match(key):
        raise Unauthenticated("malformed API key (expected ssk_ followed by 12 and 52 hex digits)")
    return Caller(key_hash=hash_key(key))


async def caller_from_request(request: Request) -> Caller:
    """The caller behind ``Authorization: Bearer``; ``Unauthenticated`` (``AuthUnavailable`` when signing keys
    cannot be fetched). A key is only parsed here: the database decides whether it is valid."""
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthenticated("missing Authorization: Bearer header (an API key or a user's access token)",
                              invalid_token=False)
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Authorization header must be 'Bearer <API key or access token>'")
    if token.startswith(KEY_PREFIX):
        return key_caller(token)
    try:
        user = await authenticate(request)
    except ConfigError:
        raise Unauthenticated("user access tokens are not accepted here (neither SUPABASE_JWT_SECRET nor "
                              "SUPABASE_URL is set): use an API key") from None
    return Caller(user_id=user.user_id)
