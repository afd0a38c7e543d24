"""Supabase user authentication: HS256 with the legacy secret, ES256/RS256 from a JWKS served by a
real local server (key rotation, unknown kids, rate-limited refetches), and the request helpers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.serving import serve_app
from worker.config import Settings
from worker.errors import ConfigError
from worker.web.app import create_app
from worker.web.user_auth import (
    JWKS_PATH,
    AuthUnavailable,
    SupabaseJwtVerifier,
    Unauthenticated,
    UserIdentity,
    auth_unavailable_response,
    authenticate,
    parse_jwks,
    unauthenticated_response,
)

SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
USER = uuid.UUID("5a4bd1d5-3b4b-4f5e-9a43-0f3c2d1e6a7b")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"sub": str(USER), "aud": "authenticated", "role": "authenticated", "exp": now + 3600,
                            "iat": now, "iss": "https://project.supabase.co/auth/v1", "email": "ana@example.com",
                            "session_id": str(uuid.uuid4()), "is_anonymous": False}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs256(payload: dict[str, Any] | None = None, secret: str = SECRET, **headers: Any) -> str:
    return jwt.encode(payload if payload is not None else claims(), secret, algorithm="HS256",
                      headers=headers or None)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed_hs256(payload: dict[str, Any], key: bytes, header: dict[str, Any]) -> str:
    """HS256 by hand: PyJWT itself refuses to use a PEM public key as an HMAC secret."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"supabase_url": None, "supabase_jwt_secret": None, "database_url": None}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# --- a real JWKS endpoint -------------------------------------------------------------------------

@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any
    public_jwk: dict[str, Any] = field(default_factory=dict)

    def sign(self, payload: dict[str, Any] | None = None, **headers: Any) -> str:
        return jwt.encode(payload if payload is not None else claims(), self.private, algorithm=self.alg,
                          headers={"kid": self.kid, **headers})

    def public_pem(self) -> bytes:
        return bytes(self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo))


def es256_key(kid: str) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, "ES256", private, {**jwk, "kid": kid, "alg": "ES256", "use": "sig"})


def rs256_key(kid: str) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, "RS256", private, {**jwk, "kid": kid, "alg": "RS256", "use": "sig"})


class JwksServer:
    """Supabase's JWKS endpoint, served for real; tests change ``keys``/``status`` and read ``hits``."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.hits = 0

    def app(self) -> Starlette:
        async def jwks(request: Request) -> Response:
            self.hits += 1
            if self.status != 200:
                return JSONResponse({"error": "unavailable"}, status_code=self.status)
            return JSONResponse({"keys": self.keys})

        return Starlette(routes=[Route(JWKS_PATH, jwks)])


@pytest.fixture(scope="module")
def jwks_served() -> Iterator[tuple[JwksServer, str]]:
    server = JwksServer()
    with serve_app(server.app(), name="supabase-jwks") as url:
        yield server, url


@pytest.fixture
def jwks(jwks_served: tuple[JwksServer, str]) -> tuple[JwksServer, str]:
    server, url = jwks_served
    server.keys, server.status, server.hits = [], 200, 0
    return server, url


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- HS256 (legacy JWT secret) --------------------------------------------------------------------

@pytest.fixture
def hs_verifier() -> SupabaseJwtVerifier:
    return SupabaseJwtVerifier.from_settings(settings(supabase_jwt_secret=SECRET))


async def test_valid_hs256_token(hs_verifier: SupabaseJwtVerifier) -> None:
    identity = await hs_verifier.verify(hs256())
    assert identity == UserIdentity(user_id=USER, email="ana@example.com", role="authenticated",
                                    claims=identity.claims)
    assert identity.claims["session_id"] and identity.claims["aud"] == "authenticated"
    with pytest.raises(TypeError):
        identity.claims["role"] = "service_role"  # type: ignore[index]
    # phone users carry an empty email
    assert (await hs_verifier.verify(hs256(claims(email="")))).email is None
    # the legacy secret system also puts a kid on tokens; the secret still verifies them
    assert (await hs_verifier.verify(hs256(kid="legacy-kid"))).user_id == USER
    # an audience list that includes "authenticated" is fine
    assert (await hs_verifier.verify(hs256(claims(aud=["authenticated", "other"])))).user_id == USER


@pytest.mark.parametrize(("token_claims", "message"), [
    (lambda: claims(exp=int(time.time()) - 120), "expired"),
    (lambda: claims(aud="anon"), "audience"),
    (lambda: claims(aud=None), "'aud'"),
    (lambda: claims(sub=None), "'sub'"),
    (lambda: claims(exp=None), "'exp'"),
    (lambda: claims(sub="not-a-uuid"), "not a user id"),
    (lambda: claims(sub="5a4bd1d53b4b4f5e9a430f3c2d1e6a7b"), "not a user id"),          # UUID() would take it
    (lambda: claims(sub="urn:uuid:5a4bd1d5-3b4b-4f5e-9a43-0f3c2d1e6a7b"), "not a user id"),
    (lambda: claims(sub=12345), "invalid"),
    (lambda: claims(role="anon"), "not a signed-in user"),
    (lambda: claims(role="service_role"), "not a signed-in user"),
    (lambda: claims(role=None), "not a signed-in user"),
    # claims are built when the test runs (at collection, a long suite outlived nbf)
    (lambda: claims(nbf=int(time.time()) + 1800), "not valid yet"),
    # the API key
    (lambda: {"role": "service_role", "iss": "supabase", "iat": 1, "exp": int(time.time()) + 3600}, "'sub'"),
])
async def test_hs256_claims_refused(hs_verifier: SupabaseJwtVerifier, token_claims: Callable[[], dict[str, Any]],
                                    message: str) -> None:
    token = hs256(token_claims())
    with pytest.raises(Unauthenticated, match=message) as info:
        await hs_verifier.verify(token)
    assert token not in str(info.value)


async def test_expiry_leeway_is_30_seconds(hs_verifier: SupabaseJwtVerifier) -> None:
    assert (await hs_verifier.verify(hs256(claims(exp=int(time.time()) - 10)))).user_id == USER
    with pytest.raises(Unauthenticated, match="expired"):
        await hs_verifier.verify(hs256(claims(exp=int(time.time()) - 40)))


async def test_wrong_secret_none_and_garbage_refused(hs_verifier: SupabaseJwtVerifier) -> None:
    with pytest.raises(Unauthenticated, match="invalid"):
        await hs_verifier.verify(hs256(secret="another-secret-that-is-also-32-characters-long"))
    unsigned = jwt.encode(claims(), None, algorithm="none")
    with pytest.raises(Unauthenticated, match="algorithm is not accepted"):
        await hs_verifier.verify(unsigned)
    forged = hand_signed_hs256(claims(), b"", {"alg": "None", "typ": "JWT"})
    with pytest.raises(Unauthenticated, match="algorithm is not accepted"):
        await hs_verifier.verify(forged)
    tampered = hs256().rsplit(".", 2)
    tampered[1] = b64(json.dumps(claims(sub=str(uuid.uuid4()))).encode())
    with pytest.raises(Unauthenticated, match="invalid"):
        await hs_verifier.verify(".".join(tampered))
    for junk in ("", "abc", "a.b.c", "x" * 20_000):
        with pytest.raises(Unauthenticated):
            await hs_verifier.verify(junk)


async def test_asymmetric_tokens_refused_without_a_jwks(hs_verifier: SupabaseJwtVerifier) -> None:
    with pytest.raises(Unauthenticated, match="asymmetric keys are not accepted"):
        await hs_verifier.verify(es256_key("k1").sign())


def test_verifier_needs_a_secret_or_a_project_url() -> None:
    with pytest.raises(ConfigError, match="SUPABASE_JWT_SECRET or SUPABASE_URL"):
        SupabaseJwtVerifier.from_settings(settings())
    verifier = SupabaseJwtVerifier.from_settings(settings(supabase_url="https://project.supabase.co/"))
    assert verifier.jwks_url == "https://project.supabase.co/auth/v1/.well-known/jwks.json"


# --- JWKS (asymmetric signing keys) ---------------------------------------------------------------

def jwks_verifier(url: str, clock: Clock | None = None, **kw: Any) -> SupabaseJwtVerifier:
    return SupabaseJwtVerifier.from_settings(settings(supabase_url=url, **kw), clock=clock or Clock())


async def test_es256_and_rs256_from_a_served_jwks(jwks: tuple[JwksServer, str]) -> None:
    server, url = jwks
    es, rs = es256_key("es-1"), rs256_key("rs-1")
    server.keys = [es.public_jwk, rs.public_jwk]
    verifier = jwks_verifier(url)
    assert (await verifier.verify(es.sign())).user_id == USER
    assert (await verifier.verify(rs.sign())).email == "ana@example.com"
    assert server.hits == 1                     # cached
    # legacy HS256 tokens are refused when only the JWKS is configured
    with pytest.raises(Unauthenticated, match="shared secret are not accepted"):
        await verifier.verify(hs256())
    # the usual claim checks apply to asymmetric tokens too
    with pytest.raises(Unauthenticated, match="not a signed-in user"):
        await verifier.verify(es.sign(claims(role="anon")))
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(rs.sign(claims(exp=int(time.time()) - 60)))
    # a token signed by a different private key under a known kid
    impostor = es256_key("es-1")
    with pytest.raises(Unauthenticated, match="invalid"):
        await verifier.verify(impostor.sign())


async def test_algorithm_comes_from_the_key(jwks: tuple[JwksServer, str]) -> None:
    server, url = jwks
    es, rs = es256_key("es-1"), rs256_key("rs-1")
    server.keys = [es.public_jwk, rs.public_jwk]
    verifier = jwks_verifier(url, supabase_jwt_secret=SECRET)

    # HS256 "signed" with the public key's bytes, naming the public key: the confusion attack
    for key in (es, rs):
        for header in ({"alg": "HS256", "typ": "JWT", "kid": key.kid}, {"alg": "HS256", "typ": "JWT"}):
            forged = hand_signed_hs256(claims(), key.public_pem(), header)
            with pytest.raises(Unauthenticated, match="invalid"):
                await verifier.verify(forged)
    only_jwks = jwks_verifier(url)
    with pytest.raises(Unauthenticated, match="shared secret are not accepted"):
        await only_jwks.verify(hand_signed_hs256(claims(), es.public_pem(), {"alg": "HS256", "kid": es.kid}))

    # a header naming another asymmetric algorithm than its key's
    mislabelled = jwt.encode(claims(), rs.private, algorithm="RS256", headers={"kid": es.kid})
    with pytest.raises(Unauthenticated, match="does not match its key"):
        await verifier.verify(mislabelled)
    with pytest.raises(Unauthenticated, match="no key id"):
        await verifier.verify(jwt.encode(claims(), es.private, algorithm="ES256"))
    with pytest.raises(Unauthenticated, match="algorithm is not accepted"):
        p384 = ec.generate_private_key(ec.SECP384R1())
        await verifier.verify(jwt.encode(claims(), p384, algorithm="ES384", headers={"kid": es.kid}))
    # the legacy secret still verifies real HS256 tokens next to the JWKS (a project mid-migration)
    assert (await verifier.verify(hs256())).user_id == USER


async def test_symmetric_keys_in_the_jwks_are_never_used(jwks: tuple[JwksServer, str]) -> None:
    server, url = jwks
    oct_secret = b"symmetric-key-that-should-never-be-published"
    server.keys = [{"kty": "oct", "kid": "oct-1", "alg": "HS256", "k": b64(oct_secret)}, es256_key("es-1").public_jwk]
    assert set(parse_jwks({"keys": server.keys})) == {"es-1"}
    verifier = jwks_verifier(url)
    token = hand_signed_hs256(claims(), oct_secret, {"alg": "HS256", "kid": "oct-1"})
    with pytest.raises(Unauthenticated, match="shared secret are not accepted"):
        await verifier.verify(token)


def test_parse_jwks_skips_unusable_keys() -> None:
    es = es256_key("good")
    keys = parse_jwks({"keys": [
        es.public_jwk,
        {**es256_key("enc").public_jwk, "use": "enc"},
        {**es256_key("sign-only").public_jwk, "key_ops": ["sign"]},
        {k: v for k, v in es256_key("x").public_jwk.items() if k != "kid"},
        {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "XYZ", "kid": "unknown-type"},
        "not a key",
    ]})
    assert list(keys) == ["good"] and keys["good"].algorithm_name == "ES256"
    assert parse_jwks({"keys": []}) == {}
    with pytest.raises(ValueError, match="not a JWKS"):
        parse_jwks({"nope": 1})


async def test_unknown_kid_triggers_one_rate_limited_refetch(jwks: tuple[JwksServer, str]) -> None:
    server, url = jwks
    old, new = es256_key("k-old"), es256_key("k-new")
    server.keys = [old.public_jwk]
    clock = Clock()
    verifier = jwks_verifier(url, clock)
    assert (await verifier.verify(old.sign())).user_id == USER
    assert server.hits == 1

    # a key rotated in after our fetch: one refetch finds it (the refetch interval has passed)
    server.keys = [old.public_jwk, new.public_jwk]
    clock.now += 31
    assert (await verifier.verify(new.sign())).user_id == USER
    assert server.hits == 2

    # made-up kids right after: no fetch at all within the interval
    for i in range(20):
        with pytest.raises(Unauthenticated, match="unknown key"):
            await verifier.verify(es256_key(f"bogus-{i}").sign())
    assert server.hits == 2

    # after the interval: a burst of concurrent bad kids costs exactly one fetch
    clock.now += 31
    results = await asyncio.gather(*(verifier.verify(es256_key(f"flood-{i}").sign()) for i in range(25)),
                                   return_exceptions=True)
    assert all(isinstance(r, Unauthenticated) for r in results)
    assert server.hits == 3
    assert (await verifier.verify(old.sign())).user_id == USER       # known keys need no fetch
    assert server.hits == 3


async def test_key_rotation_and_revocation(jwks: tuple[JwksServer, str]) -> None:
    server, url = jwks
    first, second = rs256_key("rot-1"), es256_key("rot-2")
    server.keys = [first.public_jwk]
    clock = Clock()
    verifier = jwks_verifier(url, clock)
    assert (await verifier.verify(first.sign())).user_id == USER

    # rotate: both keys trusted, new tokens come from the second key
    server.keys = [second.public_jwk, first.public_jwk]
    clock.now += 60
    assert (await verifier.verify(second.sign())).user_id == USER
    assert (await verifier.verify(first.sign())).user_id == USER

    # revoke the first key: once the cache expires its tokens are refused
    server.keys = [second.public_jwk]
    clock.now += 601
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(first.sign())
    assert (await verifier.verify(second.sign())).user_id == USER
    assert server.hits == 3


async def test_jwks_outage(jwks: tuple[JwksServer, str]) -> None:
    server, url = jwks
    key = es256_key("k1")
    server.keys = [key.public_jwk]
    server.status = 503
    clock = Clock()
    verifier = jwks_verifier(url, clock)
    with pytest.raises(AuthUnavailable):
        await verifier.verify(key.sign())
    with pytest.raises(AuthUnavailable):         # no hammering: the failed attempt is remembered
        await verifier.verify(key.sign())
    assert server.hits == 1
    response = auth_unavailable_response(AuthUnavailable("user authentication is temporarily unavailable"))
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"

    server.status = 200
    clock.now += 31
    assert (await verifier.verify(key.sign())).user_id == USER
    # the cache expires while the endpoint is down: the stale keys keep working
    server.status = 500
    clock.now += 601
    assert (await verifier.verify(key.sign())).user_id == USER
    assert (await verifier.verify(key.sign())).user_id == USER
    assert server.hits == 3


# --- requests ---------------------------------------------------------------------------------------

def auth_app(app_settings: Settings) -> Starlette:
    async def me(request: Request) -> Response:
        try:
            identity = await authenticate(request)
        except Unauthenticated as exc:
            return unauthenticated_response(exc)
        return JSONResponse({"user_id": str(identity.user_id), "email": identity.email})

    app = Starlette(routes=[Route("/me", me)])
    app.state.settings = app_settings
    return app


async def test_authenticate_over_http() -> None:
    app = auth_app(settings(supabase_jwt_secret=SECRET))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {hs256()}"})
        assert response.json() == {"user_id": str(USER), "email": "ana@example.com"}
        verifier = app.state.user_auth_verifier
        await client.get("/me", headers={"Authorization": f"bearer  {hs256()} "})
        assert app.state.user_auth_verifier is verifier              # created once, then reused

        response = await client.get("/me")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json() == {"error": "unauthorized", "detail": "missing Authorization: Bearer header"}

        expired = hs256(claims(exp=int(time.time()) - 3600))
        response = await client.get("/me", headers={"Authorization": f"Bearer {expired}"})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert response.json()["detail"] == "access token has expired"
        assert expired not in response.text

        for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", f"Token {hs256()}"):
            response = await client.get("/me", headers={"Authorization": value})
            assert response.status_code == 401
            assert "Bearer <access token>" in response.json()["detail"]


async def test_authenticate_with_the_real_web_app() -> None:
    """The verifier is built from the settings create_app stores on app.state."""
    app = create_app(settings(supabase_jwt_secret=SECRET))

    def request(token: str | None) -> Request:
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "app": app})

    identity = await authenticate(request(hs256()))
    assert identity.user_id == USER and identity.role == "authenticated"
    with pytest.raises(Unauthenticated, match="invalid"):
        await authenticate(request(hs256(secret="wrong-secret-wrong-secret-wrong-secret!")))
    with pytest.raises(Unauthenticated) as info:
        await authenticate(request(None))
    assert info.value.invalid_token is False
