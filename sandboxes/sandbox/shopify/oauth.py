"""OAuth: the authorization-code grant with expiring offline tokens, refresh rotation, token exchange.

* ``GET /admin/oauth/authorize`` approves at once (no merchant UI) and 302-redirects to ``redirect_uri``
  with ``code, hmac, host, shop, state, timestamp``. The HMAC is what shopify-app-js verifies
  (``lib/utils/hmac-validator.ts``): drop ``hmac``/``signature``, sort keys, URL-encode values
  (``URLSearchParams`` rules, space as ``%20``), join ``k=v`` with ``&``, HMAC-SHA256 with the client
  secret, lowercase hex. ``host`` is base64 of ``admin.shopify.com/store/{handle}``.
* ``POST /admin/oauth/access_token`` (JSON, form or query parameters):
  - code grant: codes are single-use and live ``code_ttl`` (60 s); ``expiring: "1"`` gives
    ``{access_token, scope, expires_in, refresh_token, refresh_token_expires_in}``, without it a legacy
    non-expiring token ``{access_token, scope}``; ``grant_options[]=per-user`` gives an online token;
  - ``grant_type=refresh_token``: new access token *and* new refresh token; the used refresh token is dead
    at once (``AppConfig.refresh_grace=False``) or, Shopify's Aug 2026 behaviour, usable until the app uses
    the replacement (``refresh_grace=True``, ≤ 30 days); reuse otherwise → 400 ``invalid_grant``;
  - ``grant_type=urn:ietf:params:oauth:grant-type:token-exchange`` with a legacy offline token as
    ``subject_token``: migrates it to an expiring pair; the legacy token stops working; retrying with the
    same legacy token within 7 days returns the same pair until it is refreshed.
* Client authentication failure → 401 ``{"error": "invalid_client"}`` (sandbox wording).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from sandbox.shopify.state import AuthCode

if TYPE_CHECKING:
    from sandbox.shopify.state import Shop, ShopifySandbox

__all__ = ["authorize", "callback_query_string", "host_param", "sign_callback", "token_endpoint"]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a grant type URN)
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105
MIGRATION_RETRY_SECONDS = 7 * 86_400.0
REFRESH_GRACE_SECONDS = 30 * 86_400.0


def _form_encode(value: str) -> str:
    # WHATWG URLSearchParams: only *-._ and alphanumerics stay; shopify-app-js then turns "+" into "%20".
    return quote(value, safe="*-._").replace("~", "%7E")


def callback_query_string(params: dict[str, str]) -> str:
    """The string shopify-app-js signs: sorted keys, encoded values, without hmac/signature."""
    items = sorted((k, v) for k, v in params.items() if k not in ("hmac", "signature"))
    return "&".join(f"{_form_encode(k)}={_form_encode(v)}" for k, v in items)


def sign_callback(params: dict[str, str], secret: str) -> str:
    return hmac.new(secret.encode(), callback_query_string(params).encode(), hashlib.sha256).hexdigest()


def host_param(shop: Shop) -> str:
    return base64.b64encode(f"admin.shopify.com/store/{shop.store_handle}".encode()).decode()


def _error_page(status: int, message: str) -> tuple[int, dict[str, str], str]:
    return status, {"content-type": "text/html; charset=utf-8"}, \
        f"<html><body><h1>Oauth error {message}</h1></body></html>"


def authorize(sandbox: ShopifySandbox, shop: Shop, query: dict[str, list[str]]) -> tuple[int, dict[str, str], str]:
    """-> (status, headers, body). Approves immediately, as if the merchant clicked Install."""
    def one(name: str) -> str:
        values = query.get(name) or [""]
        return values[0]

    client_id, redirect_uri, state = one("client_id"), one("redirect_uri"), one("state")
    with sandbox.lock:
        app = sandbox.apps.get(client_id)
        if app is None:
            return _error_page(400, "invalid_request: The requested application could not be found")
        if not redirect_uri or (app.redirect_urls and redirect_uri not in app.redirect_urls):
            return _error_page(400, "invalid_request: The redirect_uri is not whitelisted")
        scopes = tuple(s.strip() for s in one("scope").replace(" ", ",").split(",") if s.strip()) or app.scopes
        online = "per-user" in (query.get("grant_options[]") or [])
        code = secrets.token_hex(16)
        sandbox.codes[code] = AuthCode(code, shop.domain, client_id, scopes, time.time(), online)
        params = {"code": code, "host": host_param(shop), "shop": shop.domain, "state": state,
                  "timestamp": str(int(time.time()))}
        params["hmac"] = sign_callback(params, app.client_secret)
        sandbox.count("oauth_authorize")
    parts = urlsplit(redirect_uri)
    query_string = "&".join(p for p in (parts.query, urlencode(params)) if p)
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, query_string, parts.fragment))
    return 302, {"location": location}, ""


def _err(status: int, error: str, description: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": error, "error_description": description}


def token_endpoint(sandbox: ShopifySandbox, shop: Shop, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """-> (status, JSON body) for ``POST /admin/oauth/access_token``."""
    client_id = str(params.get("client_id") or "")
    with sandbox.lock:
        app = sandbox.apps.get(client_id)
        if app is None or not app.secret_ok(params.get("client_secret")):
            sandbox.count("oauth_invalid_client")
            return _err(401, "invalid_client", "Client authentication failed")
        grant = str(params.get("grant_type") or "authorization_code")
        now = time.time()
        expiring = str(params.get("expiring", "0")) == "1"
        if grant == "refresh_token":
            return _refresh(sandbox, shop, client_id, str(params.get("refresh_token") or ""), now)
        if grant == TOKEN_EXCHANGE:
            return _exchange(sandbox, shop, client_id, params, now)
        if grant != "authorization_code":
            return _err(400, "unsupported_grant_type", f"Unsupported grant type {grant}")
        code = sandbox.codes.get(str(params.get("code") or ""))
        if code is None or code.used or code.shop != shop.domain or code.client_id != client_id:
            return _err(400, "invalid_request", "The authorization code was not found or was already used")
        code.used = True
        if now - code.created_at > app.code_ttl:
            return _err(400, "invalid_request", "The authorization code has expired")
        sandbox.install(shop, client_id, code.scopes)
        sandbox.count("oauth_code_exchanged")
        return 200, sandbox.token_response(shop.domain, client_id, code.scopes, expiring=expiring, online=code.online)


def _refresh(sandbox: ShopifySandbox, shop: Shop, client_id: str, token: str, now: float) -> tuple[int, dict[str, Any]]:
    app = sandbox.apps[client_id]
    rt = sandbox.refresh_tokens.get(token)
    if rt is None or rt.shop != shop.domain or rt.client_id != client_id or rt.state == "revoked" \
            or now >= rt.expires_at:
        sandbox.count("oauth_invalid_grant")
        return _err(400, "invalid_grant", "Token has been expired or revoked.")
    inst = shop.installations.get(client_id)
    if inst is None or not inst.active:
        return _err(400, "invalid_grant", "Token has been expired or revoked.")
    if rt.state == "rotated":
        replacement = sandbox.refresh_tokens.get(rt.replaced_by or "")
        within = rt.first_used_at is not None and now - rt.first_used_at < REFRESH_GRACE_SECONDS
        if not (app.refresh_grace and within and replacement is not None and replacement.state == "active"):
            sandbox.count("oauth_invalid_grant")
            sandbox.count("oauth_refresh_reuse")
            return _err(400, "invalid_grant", "Token has been expired or revoked.")
        replacement.state = "revoked"  # recovering: the unseen replacement is replaced again
    else:
        rt.state = "rotated"
        rt.first_used_at = now
        if rt.previous and rt.previous in sandbox.refresh_tokens:
            sandbox.refresh_tokens[rt.previous].state = "revoked"  # using a replacement retires its predecessor
    body = sandbox.token_response(shop.domain, client_id, rt.scopes, expiring=True, previous_refresh=rt.token)
    rt.replaced_by = body["refresh_token"]
    sandbox.count("oauth_refreshed")
    return 200, body


def _exchange(sandbox: ShopifySandbox, shop: Shop, client_id: str, params: dict[str, Any],
              now: float) -> tuple[int, dict[str, Any]]:
    subject = str(params.get("subject_token") or "")
    if params.get("subject_token_type") != OFFLINE_TOKEN_TYPE:
        return _err(400, "invalid_subject_token", "The sandbox only exchanges offline access tokens")
    if params.get("requested_token_type") not in (None, OFFLINE_TOKEN_TYPE):
        return _err(400, "invalid_request", "Unsupported requested_token_type")
    previous = sandbox.migrations.get(subject)
    if previous is not None:
        access, refresh, at = previous
        rt = sandbox.refresh_tokens.get(refresh)
        if now - at < MIGRATION_RETRY_SECONDS and rt is not None and rt.state == "active":
            tok = sandbox.tokens[access]
            tok.expires_at = max(tok.expires_at or now, now + sandbox.apps[client_id].access_token_ttl)
            return 200, {"access_token": access, "scope": ",".join(tok.scopes),
                         "expires_in": int(tok.expires_at - now), "refresh_token": refresh,
                         "refresh_token_expires_in": int(rt.expires_at - now)}
        return _err(400, "invalid_subject_token", "The subject token was already exchanged")
    legacy = sandbox.tokens.get(subject)
    if legacy is None or legacy.shop != shop.domain or legacy.client_id != client_id or not legacy.valid(now) \
            or legacy.expires_at is not None or legacy.online:
        return _err(400, "invalid_subject_token", "The subject token is invalid")
    legacy.revoked = True  # the non-expiring token stops working once migrated
    body = sandbox.token_response(shop.domain, client_id, legacy.scopes, expiring=True)
    sandbox.migrations[subject] = (body["access_token"], body["refresh_token"], now)
    sandbox.count("oauth_migrated")
    return 200, body
