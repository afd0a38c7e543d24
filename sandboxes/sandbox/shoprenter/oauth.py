"""The token endpoint (``POST /oauth/{shop}/app/token``, client credentials; the rules are ``state``'s) and the
retired Basic-Auth exchange (``/shops/{shop}/admin/oauth/access_credential``, 403)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from sandbox.shoprenter.responses import json_response
from sandbox.shoprenter.state import ShopRenterSandbox

__all__ = ["TokenEndpoints"]


class TokenEndpoints:
    """Token requests for every shop of one sandbox."""

    def __init__(self, sandbox: ShopRenterSandbox) -> None:
        self.sandbox = sandbox

    async def token(self, request: Request) -> Response:
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        params: dict[str, Any] = {}
        try:
            if "json" in ctype or raw[:1] == b"{":
                body = json.loads(raw or b"{}")
                if isinstance(body, dict):
                    params = body
            elif raw:
                params = dict(parse_qsl(raw.decode(), keep_blank_values=True))
        except (ValueError, UnicodeDecodeError):
            params = {}
        status, payload = self.sandbox.token_request(request.path_params["shop"], params)
        if status == 200:
            request.scope["state"]["sr_client"] = params.get("client_id")
        return json_response(status, payload, {"cache-control": "no-store", "pragma": "no-cache"})

    async def access_credential(self, request: Request) -> Response:
        # Basic Auth credentials are retired: "Attempting to request ... will result in a 403 error response"
        return json_response(403, {"message": "Forbidden"})
