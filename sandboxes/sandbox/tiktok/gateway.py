"""What TikTok's API gateway checks before an endpoint runs, in this order: the app key, the ``sign`` over the
exact request (``signing.request_sign`` on the raw body), the ``timestamp`` window (no earlier than 5 minutes
before now, no later than 30 seconds after), the ``x-tts-access-token`` header (unknown, revoked or another app's
→ 36009004; expired → 105002), ``shop_cipher`` (required on shop-scoped paths → 106013, refused on
``/authorization/*`` → 36009004, a shop the authorization does not cover → 36009004), then the per app × shop
rate limit (HTTP 429 with code 36009002). Every answer is the envelope ``{code, message, request_id, data}``.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sandbox.tiktok.model import TtApp, TtToken
from sandbox.tiktok.signing import request_sign
from sandbox.tiktok.state import TikTokSandbox, TtShop

__all__ = ["Caller", "authenticate", "envelope", "json_object", "page_offset", "page_token", "search_request"]


def envelope(code: int, message: str, data: Any = None, status: int = 200) -> Response:
    body = {"code": code, "message": message, "request_id": secrets.token_hex(16).upper(),
            "data": data if data is not None else {}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers={"x-tt-code": str(code)})


def _invalid(message: str, status: int = 401) -> Response:
    return envelope(36009004, message, status=status)


@dataclass
class Caller:
    app: TtApp
    token: TtToken
    shop: TtShop | None
    query: dict[str, str]
    body: bytes

    def require_shop(self) -> TtShop:
        assert self.shop is not None
        return self.shop


async def authenticate(sandbox: TikTokSandbox, request: Request, *, shop_scoped: bool = True) -> Caller | Response:
    query = dict(request.query_params)
    body = await request.body()
    request.scope.setdefault("state", {})["tt_shop"] = None
    with sandbox.lock:
        app = sandbox.apps.get(query.get("app_key", ""))
    if app is None:
        return _invalid("Invalid credentials. The `app_key` query parameter is invalid.")
    given = query.get("sign")
    if not given:
        return _invalid("Missing signature. The `sign` query parameter is required.")
    stamp = query.get("timestamp", "")
    if not stamp.isdigit():
        return _invalid("Invalid timestamp. The `timestamp` query parameter must be a 10-digit Unix timestamp.", 400)
    now, (before, after) = sandbox.clock.seconds(), sandbox.timestamp_window
    if int(stamp) < now - before:
        return _invalid("Invalid timestamp. The `timestamp` must not be earlier than 5 minutes before the current "
                        "time.", 400)
    if int(stamp) > now + after:
        return _invalid("Invalid timestamp. The `timestamp` must not exceed the current time by more than 30 "
                        "seconds.", 400)
    signed_body = b"" if request.headers.get("content-type", "").startswith("multipart/form-data") else body
    expected = request_sign(app.app_secret, request.url.path, query, signed_body)
    if not hmac.compare_digest(expected, given.lower()):
        sandbox.count("bad_signatures")
        return envelope(106001, "Invalid credentials. The `sign` query parameter is invalid.", status=401)
    with sandbox.lock:
        token = sandbox.tokens.get(request.headers.get("x-tts-access-token", ""))
        if token is None or token.revoked or token.app_key != app.app_key:
            return _invalid("Invalid credentials. The `x-tts-access-token` header is invalid.")
        if token.expires_at < now:
            sandbox.counters["expired_tokens"] += 1
            return envelope(105002, "Expired credentials. The `x-tts-access-token` header has expired.", status=401)
        cipher = query.get("shop_cipher")
        shop: TtShop | None = None
        if not shop_scoped:
            if cipher is not None:
                return _invalid("Unexpected identifier. The `shop_cipher` query parameter is not required for this "
                                "request.", 400)
        elif not cipher:
            return envelope(106013, "Missing identifier. The `shop_cipher` query parameter is required for this "
                                    "request.", status=400)
        else:
            shop = sandbox.by_cipher.get(cipher)
            covered = sandbox.authorizations.get((app.app_key, token.open_id), set())
            if shop is None or shop.id not in covered:
                return _invalid("Invalid credentials. The `shop_cipher` query parameter is invalid.", 400)
        request.scope["state"]["tt_shop"] = shop.id if shop else None
        limit = shop.rate_limit if shop is not None and shop.rate_limit is not None else sandbox.rate_limit
    if not sandbox.admit(app.app_key, shop.id if shop else token.open_id, limit):
        return envelope(36009002, "Too many requests. You've made too many requests in a short period of time.",
                        status=429)
    return Caller(app, token, shop, query, body)


def json_object(raw: bytes, *, required: bool = True) -> dict[str, Any] | Response:
    if not raw.strip():
        if required:
            return envelope(36009004, "invalid param error: the request body is required", status=400)
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return envelope(36009022, "Invalid request format. The body must be `application/json`.", status=400)
    if not isinstance(body, dict):
        return envelope(36009004, "invalid param error: the body must be a JSON object", status=400)
    return body


def page_token(offset: int) -> str:
    return base64.b64encode(f"offset={offset}".encode()).decode()


def page_offset(query: dict[str, str]) -> tuple[int, int] | Response:
    """(page size, offset) from ``page_size`` (required, 1-100) and ``page_token``."""
    size = query.get("page_size", "")
    if not size.isdigit() or not 1 <= int(size) <= 100:
        return envelope(36009004, "invalid param error: page_size must be between 1 and 100", status=400)
    token = query.get("page_token")
    if not token:
        return int(size), 0
    try:
        text = base64.b64decode(token.encode(), validate=True).decode()
        if not text.startswith("offset=") or not text[7:].isdigit():
            raise ValueError
    except ValueError:
        return envelope(36009004, "invalid param error: page_token is invalid", status=400)
    return int(size), int(text[7:])


async def search_request(sandbox: TikTokSandbox, request: Request
                         ) -> tuple[Caller, int, int, dict[str, Any]] | Response:
    """A search call: the authenticated caller, (page size, offset) and the body's filters (optional)."""
    caller = await authenticate(sandbox, request)
    if isinstance(caller, Response):
        return caller
    paging = page_offset(caller.query)
    body = json_object(caller.body, required=False)
    if isinstance(paging, Response):
        return paging
    if isinstance(body, Response):
        return body
    return caller, paging[0], paging[1], body
