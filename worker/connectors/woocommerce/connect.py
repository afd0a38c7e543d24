"""``POST /woocommerce/connect``: a signed-in user connects a WooCommerce store with REST API keys.

The frontend sends the user's Supabase access token (``Authorization: Bearer``) and
``{"organization_id", "store_url", "consumer_key", "consumer_secret"}``. In order, each failure a clear
4xx with nothing stored: the token; the body; the user's role in the organization (before any URL is
contacted); the URL (https outside local development, no private / loopback / link-local / metadata
address, after DNS and on redirects); a WooCommerce site with the v3 REST API (not plain WordPress, not
the legacy API only); the keys (``/system_status``, which also gives the WooCommerce and WordPress
versions); write access (creating the store's webhooks, signed with a secret generated for it). Then the
store, its sealed keys and webhook secret, ``active``, and its first full sync, in one transaction.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from worker.connectors.rest import PlatformHttpError, StoreUnreachable
from worker.connectors.store_secrets import seal_secrets
from worker.connectors.woocommerce.client import WooAuthError, WooClient
from worker.connectors.woocommerce.connector import CREDENTIALS_KIND
from worker.connectors.woocommerce.settings import WEBHOOK_TOPICS
from worker.connectors.woocommerce.webhooks import ensure_webhooks
from worker.db.port import Database
from worker.errors import DatabaseError, RetryableError
from worker.netguard import UnsafeUrl, normalize_store_url
from worker.payloads import JsonRejected, load_json_object
from worker.rpc import connect as connecting
from worker.web.cors import BrowserRoute
from worker.web.responses import error_response
from worker.web.user_auth import (
    AuthUnavailable,
    Unauthenticated,
    auth_unavailable_response,
    authenticate,
    unauthenticated_response,
)

if TYPE_CHECKING:
    from worker.connectors.woocommerce.connector import WooConnector

__all__ = ["ConnectRefused", "connect_routes", "probe_store"]

log = logging.getLogger("shopsync.woocommerce.connect")

PLATFORM = "woocommerce"
CONNECT_TIMEOUT = 15.0
_KEY = re.compile(r"^ck_[A-Za-z0-9]{16,128}$")
_SECRET = re.compile(r"^cs_[A-Za-z0-9]{16,128}$")


class ConnectRefused(Exception):
    """Why a store cannot be connected, in words for the merchant (never the keys)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_LEGACY_ONLY = ("this store only offers WooCommerce's legacy API; shopsync needs the REST API "
                "(WooCommerce 3.5 or later)")


async def _has_legacy_api(client: WooClient) -> bool:
    response = await client.transport.send("GET", client.store_url + "/wc-api/v3", expect=(400, 401, 403, 404))
    return response.status_code == 200


async def probe_store(client: WooClient) -> dict[str, Any]:
    """A WooCommerce store with the v3 REST API whose keys work: its versions. ConnectRefused otherwise."""
    try:
        namespaces = {str(n) for n in (await client.discover()).get("namespaces") or []}
    except PlatformHttpError as exc:
        if await _has_legacy_api(client):
            raise ConnectRefused(422, _LEGACY_ONLY) from None
        raise ConnectRefused(422, f"not a WordPress site with a REST API ({exc})") from None
    if "wc/v3" not in namespaces:
        if any(n.startswith("wc/v") for n in namespaces):
            raise ConnectRefused(422, "this WooCommerce is too old: shopsync needs the v3 REST API (WooCommerce 3.5+)")
        if await _has_legacy_api(client):
            raise ConnectRefused(422, _LEGACY_ONLY)
        raise ConnectRefused(422, "this WordPress site does not run WooCommerce (no wc/v3 REST API)")
    try:
        status = await client.get("/system_status")
    except WooAuthError as exc:
        if exc.code == "woocommerce_rest_cannot_view" or "read permission" in str(exc):
            raise ConnectRefused(422, "these API keys cannot read: create keys with Read/Write permission") from None
        raise ConnectRefused(422, "WooCommerce refused the API keys: check the consumer key and secret") from None
    env = status.get("environment") if isinstance(status, Mapping) else None
    env = env if isinstance(env, Mapping) else {}
    settings = status.get("settings") if isinstance(status, Mapping) else None
    return {"woocommerce_version": env.get("version"), "wordpress_version": env.get("wp_version"),
            "currency": settings.get("currency") if isinstance(settings, Mapping) else None,
            "api": "wc/v3", "auth": client.auth_mode}


def _field(body: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > 2048:
        raise ConnectRefused(400, f"{name} is required")
    value = value.strip()
    if pattern is not None and not pattern.match(value):
        raise ConnectRefused(400, f"{name} does not look like a WooCommerce REST API key "
                                  f"({'ck_' if name == 'consumer_key' else 'cs_'}…)")
    return value


def connect_routes(connector: WooConnector) -> Sequence[BaseRoute]:

    async def connect(request: Request) -> Response:
        if not connector.can_verify_users(request.app.state.settings):
            return error_response(503, "WooCommerce connects are off: set SUPABASE_JWT_SECRET or SUPABASE_URL so "
                                       "shopsync can verify the user's token")
        try:
            user = await authenticate(request)
        except Unauthenticated as exc:
            return unauthenticated_response(exc)
        except AuthUnavailable as exc:
            return auth_unavailable_response(exc)
        core = request.app.state.settings
        db: Database = request.app.state.db
        try:
            try:
                body = load_json_object(await request.body())
            except JsonRejected as exc:
                raise ConnectRefused(400, str(exc)) from None
            try:
                org = uuid.UUID(str(body.get("organization_id")))
            except ValueError:
                raise ConnectRefused(400, "organization_id must be a UUID") from None
            raw_url = _field(body, "store_url")
            key, secret = _field(body, "consumer_key", _KEY), _field(body, "consumer_secret", _SECRET)
            try:
                allowed = connector.settings.private_allowed(core)
                store_url = normalize_store_url(raw_url, allow_http=allowed, allow_private=allowed)
            except UnsafeUrl as exc:
                raise ConnectRefused(400, str(exc)) from None
            try:
                existing = await connecting.prepare_store_connection(db, user_id=user.user_id, organization_id=org,
                                                                  platform=PLATFORM, shop_key=store_url)
            except DatabaseError as exc:
                if exc.sqlstate == "42501":
                    raise ConnectRefused(403, "only owners and admins of the organization can connect stores") \
                        from None
                raise
            store_id = existing or uuid.uuid4()
            webhook_secret = secrets.token_urlsafe(32)
            async with connector.http(core, CONNECT_TIMEOUT) as http:
                client = connector.client(http, store_url, key, secret)
                client.transport.max_attempts = 2            # a person is waiting
                info = await probe_store(client)
                try:
                    hooks = await ensure_webhooks(client, connector.settings.webhook_uri(core, store_id),
                                                  webhook_secret, set(WEBHOOK_TOPICS), reset_secret=True)
                except WooAuthError as exc:
                    raise ConnectRefused(422, "these API keys are read-only: shopsync registers webhooks, so "
                                              "create keys with Read/Write permission") from exc
            box = seal_secrets(connector.sealer(core), store_id, CREDENTIALS_KIND, {
                "consumer_key": key, "consumer_secret": secret, "webhook_secret": webhook_secret})
            store = await connecting.connect_store_for_user(
                db, user_id=user.user_id, organization_id=org, platform=PLATFORM, shop_key=store_url,
                store_id=store_id, credentials=box, display_name=store_url.split("://", 1)[1], platform_info=info)
        except ConnectRefused as exc:
            return error_response(exc.status, str(exc))
        except UnsafeUrl as exc:                 # a redirect or DNS answer pointed somewhere forbidden
            return error_response(400, str(exc))
        except (StoreUnreachable, httpx.ConnectError) as exc:   # the address: no such host, or nothing there
            return error_response(422, f"could not connect to the store at this address: {exc}"[:300])
        except (RetryableError, httpx.HTTPError) as exc:
            log.info("woocommerce connect to %s failed: %s", raw_url[:100], type(exc).__name__)
            return error_response(502, f"could not reach the store: {exc}"[:300])
        except PlatformHttpError as exc:
            return error_response(422, f"the store answered an error: {exc}"[:300])
        log.info("woocommerce store %s connected as %s (webhooks %s)", store_url, store, hooks)
        return JSONResponse({"store_id": str(store), "status": "active", "shop_key": store_url, **info},
                            status_code=201)

    return [BrowserRoute("/connect", connect, methods=["POST"])]     # called from the app's frontend
