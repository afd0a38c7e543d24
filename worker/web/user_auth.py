"""Who is calling: the frontend sends the signed-in user's Supabase access token as
``Authorization: Bearer <jwt>``; routes that act for a user call ``authenticate(request)``.

Supabase signs access tokens either with the legacy shared secret (HS256, ``SUPABASE_JWT_SECRET``)
or with asymmetric signing keys (ES256, RS256) published at
``{SUPABASE_URL}/auth/v1/.well-known/jwks.json``. A project migrating between the two has valid
tokens of both kinds, so both are accepted when both are configured.

The verifying algorithm always comes from the key: HS256 only ever verifies with the configured
secret, and a JWKS key verifies only with its own algorithm (a token whose header names another is
refused). So "alg: none" and the HS256-signed-with-the-public-key confusion cannot verify.

The ``anon`` and ``service_role`` API keys are JWTs signed with the legacy secret too: the
``role == "authenticated"`` check is what keeps them out. Anonymous sign-ins are signed-in users
(``role`` is ``authenticated``; ``claims["is_anonymous"]`` is true) and are accepted here.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from uuid import UUID

import httpx
import jwt
import orjson
from jwt import PyJWK
from starlette.requests import Request
from starlette.responses import Response

from worker.config import Settings
from worker.errors import ConfigError
from worker.web.responses import error_response

__all__ = ["AuthUnavailable", "SupabaseJwtVerifier", "Unauthenticated", "UserIdentity", "auth_unavailable_response",
           "authenticate", "unauthenticated_response", "verifier_for", "JWKS_PATH"]

log = logging.getLogger(__name__)

JWKS_PATH = "/auth/v1/.well-known/jwks.json"
AUDIENCE = "authenticated"
ROLE = "authenticated"
LEEWAY_SECONDS = 30.0
JWKS_TTL_SECONDS = 600.0             # Supabase's edge caches the JWKS for 10 minutes anyway
JWKS_MIN_REFETCH_SECONDS = 30.0      # at most one fetch per interval for unknown kids / after failures
JWKS_TIMEOUT_SECONDS = 5.0
MAX_JWKS_BYTES = 256 * 1024
MAX_TOKEN_LENGTH = 16 * 1024         # Supabase tokens are ~1 KB; app_metadata can grow them a little
ASYMMETRIC_ALGORITHMS = frozenset({"ES256", "RS256", "EdDSA"})
STATE_ATTRIBUTE = "user_auth_verifier"   # request.app.state.<this>

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class UserIdentity:
    user_id: UUID
    email: str | None
    role: str
    claims: Mapping[str, Any]      # every verified claim, read-only


class Unauthenticated(Exception):  # noqa: N818 - the name callers use
    """No valid user token. The message is safe to return to the caller; it never contains the token.
    ``invalid_token`` is False when no token was sent at all (RFC 6750 then wants no error code)."""

    def __init__(self, message: str, *, invalid_token: bool = True) -> None:
        super().__init__(message)
        self.invalid_token = invalid_token


class AuthUnavailable(Exception):  # noqa: N818
    """Tokens cannot be checked right now (the JWKS is unreachable and no keys are cached). Not the
    caller's fault: answer 503, not 401, so the frontend does not sign its user out."""


class SupabaseJwtVerifier:
    """Verifies Supabase access tokens; one per process (``verifier_for``), it caches the JWKS.

    The JWKS is fetched on first need and again after ``jwks_ttl``; a token with an unknown ``kid``
    (a key rotated in since) triggers one refetch, at most every ``min_refetch_interval``, so a flood
    of made-up kids costs one request per interval. If a refetch fails, the stale keys keep working.
    """

    def __init__(self, *, jwt_secret: str | None = None, jwks_url: str | None = None,
                 jwks_ttl: float = JWKS_TTL_SECONDS, min_refetch_interval: float = JWKS_MIN_REFETCH_SECONDS,
                 timeout: float = JWKS_TIMEOUT_SECONDS, client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not jwt_secret and not jwks_url:
            raise ConfigError("verifying user tokens needs SUPABASE_JWT_SECRET or SUPABASE_URL")
        self._secret = jwt_secret or None
        self.jwks_url = jwks_url
        self._ttl = jwks_ttl
        self._min_interval = min_refetch_interval
        self._timeout = timeout
        self._client = client
        self._clock = clock
        self._keys: dict[str, PyJWK] | None = None     # None: never fetched successfully
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._attempts = 0                              # completed fetch attempts (for waiters)
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> SupabaseJwtVerifier:
        secret = settings.supabase_jwt_secret.get_secret_value() if settings.supabase_jwt_secret else None
        jwks_url = f"{settings.supabase_url}{JWKS_PATH}" if settings.supabase_url else None
        return cls(jwt_secret=secret, jwks_url=jwks_url, **kw)

    # --- verification -----------------------------------------------------------------------------
    async def verify(self, token: str) -> UserIdentity:
        """The token's user, or ``Unauthenticated`` (``AuthUnavailable`` if keys cannot be fetched)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("access token is invalid")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, TypeError, ValueError):
            raise Unauthenticated("access token is malformed") from None
        alg = header.get("alg") if isinstance(header, dict) else None
        if not isinstance(alg, str):       # a list or an object here must be refused, not hashed
            raise Unauthenticated("access token header is malformed")
        key: str | PyJWK
        if alg == "HS256":
            if self._secret is None:
                raise Unauthenticated("access tokens signed with a shared secret are not accepted here")
            key, algorithm = self._secret, "HS256"
        elif alg in ASYMMETRIC_ALGORITHMS:
            if self.jwks_url is None:
                raise Unauthenticated("access tokens signed with asymmetric keys are not accepted here")
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise Unauthenticated("access token has no key id")
            key = await self._key(kid)
            algorithm = key.algorithm_name
            if algorithm != alg:
                raise Unauthenticated("access token algorithm does not match its key")
        else:
            raise Unauthenticated("access token algorithm is not accepted")
        claims = self._decode(token, key, algorithm)
        return self._identity(claims)

    @staticmethod
    def _decode(token: str, key: str | PyJWK, algorithm: str) -> dict[str, Any]:
        try:
            return jwt.decode(token, key, algorithms=[algorithm], audience=AUDIENCE, leeway=LEEWAY_SECONDS,
                              options={"require": ["exp", "sub", "aud"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("access token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"access token audience is not {AUDIENCE!r}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"access token has no {exc.claim!r} claim") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("access token is not valid yet") from None
        except (jwt.PyJWTError, TypeError, ValueError, OverflowError):
            # bad signature, malformed claims, wrong algorithm; a claim of an odd type (e.g. exp 1e400)
            raise Unauthenticated("access token is invalid") from None

    @staticmethod
    def _identity(claims: dict[str, Any]) -> UserIdentity:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not _UUID.fullmatch(sub):
            raise Unauthenticated("access token subject is not a user id")
        role = claims.get("role")
        if role != ROLE:       # anon / service_role API keys, or custom roles
            raise Unauthenticated("access token is not a signed-in user's token")
        email = claims.get("email")
        return UserIdentity(user_id=UUID(sub), email=email if isinstance(email, str) and email else None,
                            role=role, claims=MappingProxyType(claims))

    # --- keys -------------------------------------------------------------------------------------
    async def _key(self, kid: str) -> PyJWK:
        if self._keys is None or self._clock() - self._fetched_at >= self._ttl:
            await self._refresh()
        keys = self._keys
        if keys is None:
            raise AuthUnavailable("user authentication is temporarily unavailable (signing keys unreachable)")
        key = keys.get(kid)
        if key is None:
            # a key rotated in since the last fetch, or a made-up kid: one (rate-limited) look
            await self._refresh()
            key = (self._keys or {}).get(kid)
        if key is None:
            raise Unauthenticated("access token is signed by an unknown key")
        return key

    async def _refresh(self) -> None:
        """Fetch the JWKS unless a fetch was attempted within ``min_refetch_interval``. Concurrent
        callers share one fetch. A failed fetch keeps the old keys."""
        seen = self._attempts
        async with self._lock:
            if self._attempts != seen:      # another caller fetched while we waited
                return
            now = self._clock()
            if self._attempted_at is not None and now - self._attempted_at < self._min_interval:
                return
            self._attempted_at = now
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("could not fetch Supabase signing keys from %s: %s", self.jwks_url, exc)
            else:
                self._keys = keys
                self._fetched_at = self._clock()
            finally:
                self._attempts += 1

    async def _fetch(self) -> dict[str, PyJWK]:
        assert self.jwks_url is not None
        if self._client is not None:
            return await self._fetch_with(self._client)
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            return await self._fetch_with(client)

    async def _fetch_with(self, client: httpx.AsyncClient) -> dict[str, PyJWK]:
        assert self.jwks_url is not None
        body = bytearray()
        async with client.stream("GET", self.jwks_url, headers={"Accept": "application/json"},
                                 timeout=self._timeout) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
        return parse_jwks(orjson.loads(body))


def parse_jwks(data: Any) -> dict[str, PyJWK]:
    """kid → key for the usable signing keys of a JWKS document. Symmetric (``oct``) keys, keys for
    other uses, algorithms we do not accept and keys without a kid are skipped."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWKS document")
    found: dict[str, PyJWK] = {}
    for entry in data["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") == "oct":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
            continue
        ops = entry.get("key_ops")
        if isinstance(ops, list) and "verify" not in ops:
            continue
        try:
            key = PyJWK(entry)
        except jwt.PyJWTError:
            continue
        if key.algorithm_name in ASYMMETRIC_ALGORITHMS:
            found[kid] = key
    return found


# --- requests -------------------------------------------------------------------------------------
def verifier_for(request: Request) -> SupabaseJwtVerifier:
    """The app's verifier, created on first use from ``request.app.state.settings``."""
    state = request.app.state
    verifier: SupabaseJwtVerifier | None = getattr(state, STATE_ATTRIBUTE, None)
    if verifier is None:
        settings: Settings = state.settings
        verifier = SupabaseJwtVerifier.from_settings(settings)
        setattr(state, STATE_ATTRIBUTE, verifier)
    return verifier


async def authenticate(request: Request) -> UserIdentity:
    """The user behind ``Authorization: Bearer <jwt>``, or ``Unauthenticated``
    (``AuthUnavailable`` when the signing keys cannot be fetched; ``ConfigError`` when neither
    SUPABASE_JWT_SECRET nor SUPABASE_URL is set)."""
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthenticated("missing Authorization: Bearer header", invalid_token=False)
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("Authorization header must be 'Bearer <access token>'")
    return await verifier_for(request).verify(token)


def unauthenticated_response(exc: Unauthenticated) -> Response:
    """401 in the app's error shape, with the RFC 6750 challenge."""
    challenge = 'Bearer error="invalid_token"' if exc.invalid_token else "Bearer"
    return error_response(401, str(exc), headers={"WWW-Authenticate": challenge})


def auth_unavailable_response(exc: AuthUnavailable) -> Response:
    return error_response(503, str(exc), headers={"Retry-After": str(int(JWKS_MIN_REFETCH_SECONDS))})
