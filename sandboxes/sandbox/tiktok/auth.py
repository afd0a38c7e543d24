"""The seller's consent page and the token endpoints (auth host ``https://auth.tiktok-shops.com``).

* ``GET /open/authorize?service_id=…&state=…`` (``services.tiktokshop.com``): the sandbox approves at once as
  ``sandbox.authorizing_seller`` (or ``?seller=<open_id>``; ``?shops=<id,id>`` narrows the shops, ``?deny=1``
  refuses with ``error=access_denied`` [unverified name]) and redirects to the app's fixed redirect URL with
  ``code`` and ``state``.
* ``GET /api/v2/token/get?app_key&app_secret&auth_code&grant_type=authorized_code`` and
  ``GET /api/v2/token/refresh?app_key&app_secret&refresh_token&grant_type=refresh_token``: unsigned; the answer
  is the envelope with ``access_token``, ``access_token_expire_in`` and ``refresh_token_expire_in`` as
  **absolute** unix seconds. A used, expired or unknown code → 36004004 "Invalid auth code."; an unknown,
  revoked or rotated refresh token → 36004005; an expired one → 36004001 "rt has expired" (codes observed in
  the wild, [unverified] in the docs). Errors come back with HTTP 200 and a non-zero ``code``.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sandbox.tiktok.gateway import envelope
from sandbox.tiktok.model import TtApp
from sandbox.tiktok.state import TikTokSandbox

__all__ = ["AuthEndpoints"]


class AuthEndpoints:
    def __init__(self, sandbox: TikTokSandbox) -> None:
        self.sandbox = sandbox

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        with self.sandbox.lock:
            app = next((a for a in self.sandbox.apps.values() if a.service_id == q.get("service_id")), None)
        if app is None or not app.redirect_uri:
            return Response("unknown service_id (or the app has no redirect URL)", status_code=400)
        state = q.get("state")
        params: list[tuple[str, str]] = []
        if q.get("deny"):
            params.append(("error", "access_denied"))
        else:
            shops = [s for s in (q.get("shops") or "").split(",") if s] or None
            params.append(("code", self.sandbox.authorize(app.app_key, q.get("seller"), shops)))
        if state is not None:
            params.append(("state", state))
        sep = "&" if "?" in app.redirect_uri else "?"
        return RedirectResponse(f"{app.redirect_uri}{sep}{urlencode(params)}", status_code=302)

    def _app(self, request: Request) -> TtApp | None:
        q = request.query_params
        with self.sandbox.lock:
            app = self.sandbox.apps.get(q.get("app_key", ""))
        if app is None or not hmac.compare_digest(app.app_secret.encode(), q.get("app_secret", "").encode()):
            return None
        return app

    async def token_get(self, request: Request) -> Response:
        app = self._app(request)
        if app is None:
            self.sandbox.count("token_errors")
            return envelope(36009004, "Invalid credentials. The `app_key` or `app_secret` is invalid.")
        q = request.query_params
        if q.get("grant_type") != "authorized_code":
            return envelope(36009004, "invalid param error: grant_type must be authorized_code")
        with self.sandbox.lock:
            code = self.sandbox.codes.get(q.get("auth_code", ""))
            if code is None or code.used or code.app_key != app.app_key or code.expires_at < self.sandbox.clock.now():
                self.sandbox.counters["token_errors"] += 1
                return envelope(36004004, "Invalid auth code.")
            code.used = True
            self.sandbox.authorizations.setdefault((app.app_key, code.open_id), set()).update(code.shop_ids)
            data = self.sandbox.grant(app.app_key, code.open_id)
        return envelope(0, "success", data)

    async def token_refresh(self, request: Request) -> Response:
        app = self._app(request)
        if app is None:
            self.sandbox.count("token_errors")
            return envelope(36009004, "Invalid credentials. The `app_key` or `app_secret` is invalid.")
        q = request.query_params
        if q.get("grant_type") != "refresh_token":
            return envelope(36009004, "invalid param error: grant_type must be refresh_token")
        with self.sandbox.lock:
            now = self.sandbox.clock.now()
            refresh = self.sandbox.refreshes.get(q.get("refresh_token", ""))
            if refresh is not None and refresh.rotated_at is not None:
                self.sandbox.counters["refresh_reuse"] += 1
            if refresh is None or refresh.revoked or refresh.app_key != app.app_key or (
                    refresh.rotated_at is not None and now - refresh.rotated_at > app.refresh_grace):
                self.sandbox.counters["token_errors"] += 1
                return envelope(36004005, "can not find related auth record")
            if refresh.expires_at < now:
                self.sandbox.counters["token_errors"] += 1
                return envelope(36004001, "rt has expired")
            refresh.rotated_at = refresh.rotated_at or now
            self.sandbox.counters["token_refreshes"] += 1
            data = self.sandbox.grant(app.app_key, refresh.open_id)
        return envelope(0, "success", data)
