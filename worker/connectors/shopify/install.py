"""Installing the app on a shop: the web side (app URL, OAuth callback) and the worker side (code
exchange, claimed installs, activation).

Two ways in:

* **From shopsync's frontend**: ``shopsync.begin_install`` (SQL RPC) → Shopify's authorize page →
  ``GET /shopify/callback`` with a state bound to the user and organization.
* **From Shopify** (App Store, admin): ``GET /shopify/install`` (the app URL) → authorize → callback with
  a state bound to nobody. The install is parked; the browser gets a claim token, and after login an
  organization claims it with ``shopsync.claim_pending_install``.

The callback only verifies (HMAC, timestamp, shop, single-use state), parks the install and enqueues
the exchange: the code, sealed, goes to ``shopify.exchange``; the browser is redirected at once with a
claim token in the URL fragment. Either way the install becomes a store only through
``claim_pending_install``, called with the user's session: an install begun with ``begin_install`` can
only be claimed by the user who began it, for that organization. Without that step, an attacker could
forward their own consent screen to a merchant and receive the merchant's shop (OAuth login CSRF).

The worker exchanges the code for an expiring offline token and seals it for the parked install;
``shopify.install_claimed`` moves it to the store, and ``shopify.activate`` reads the shop, registers
webhooks and enqueues the first full sync. Reinstalling a shop the organization already has reuses its
store (``upsert_store``), so its data stays.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from worker.connectors.shopify.auth import (
    InvalidShopDomain,
    authorize_url,
    normalize_shop_domain,
    verify_callback,
)
from worker.connectors.shopify.oauth import GrantRefused
from worker.connectors.shopify.tokens import open_token_box, save_tokens, seal_token_box
from worker.connectors.shopify.webhooks import ensure_subscriptions
from worker.db.port import Database
from worker.errors import DatabaseError, PermanentError, RetryableError
from worker.jobs.registry import Job, JobContext, JobRegistry
from worker.sealing import Sealer
from worker.web.app import error_response
from worker.web.redirects import frontend_redirect, safe_return_to

if TYPE_CHECKING:
    from worker.connectors.shopify.connector import ShopifyConnector

__all__ = ["activate_store", "install_routes", "register_jobs"]

log = logging.getLogger("shopsync.shopify.install")

PLATFORM = "shopify"
PENDING_INSTALL_TTL = 86_400
SHOP_INFO = "query ShopInfo { shop { id name currencyCode ianaTimezone plan { displayName } } }"


def _code_context(shop: str) -> str:
    return f"shopify-code:{shop}"


def _install_context(install_id: str) -> str:
    return f"shopify-install:{install_id}"


# --- web ------------------------------------------------------------------------------------------------

def install_routes(connector: ShopifyConnector) -> Sequence[BaseRoute]:

    def verified_shop(request: Request) -> tuple[str, list[tuple[str, str]]] | Response:
        if not connector.settings.configured:
            return error_response(503, "Shopify is not configured on this server")
        params = request.query_params.multi_items()
        if not verify_callback(params, connector.settings.secrets()):
            return error_response(401, "invalid signature or expired request")
        try:
            return normalize_shop_domain(request.query_params.get("shop")), params
        except InvalidShopDomain:
            return error_response(401, "invalid shop")

    async def app_url(request: Request) -> Response:
        """Where Shopify sends a merchant who installs or opens the app from Shopify's side."""
        checked = verified_shop(request)
        if isinstance(checked, Response):
            return checked
        shop, _ = checked
        core = request.app.state.settings
        db: Database = request.app.state.db
        found = await db.rpc("find_store", {"p_platform": PLATFORM, "p_shop_key": shop})
        if found and found[0]["status"] == "active":
            return frontend_redirect(core.frontend_url, {"platform": PLATFORM, "shop": shop,
                                                          "store_id": str(found[0]["store_id"])})
        s = connector.settings
        nonce = await db.rpc("create_oauth_state", {"p_platform": PLATFORM, "p_organization_id": None,
                                                   "p_user_id": None, "p_shop_key": shop,
                                                   "p_ttl_seconds": s.install_state_ttl_seconds})
        return RedirectResponse(authorize_url(shop, client_id=s.client_id or "", scopes=s.scopes,
                                              redirect_uri=s.redirect_uri(core), state=str(nonce),
                                              base_url=s.shop_url(shop)), status_code=302)

    async def callback(request: Request) -> Response:
        checked = verified_shop(request)
        if isinstance(checked, Response):
            return checked
        shop, _ = checked
        code = request.query_params.get("code")
        state = request.query_params.get("state")
        if not code or not state or len(code) > 512 or len(state) > 512:
            return error_response(400, "the callback needs code and state")
        core = request.app.state.settings
        db: Database = request.app.state.db
        rows = await db.rpc("consume_oauth_state", {"p_platform": PLATFORM, "p_nonce": state, "p_shop_key": shop})
        if not rows:
            return error_response(401, "unknown, expired or already used state")
        bound = rows[0]
        details: dict[str, Any] = {"source": "shopify"}
        if bound["organization_id"] is not None:       # begun by a signed-in user with begin_install
            details = {"source": "frontend", "organization_id": str(bound["organization_id"]),
                       "user_id": str(bound["user_id"])}
        parked = (await db.rpc("park_pending_install", {"p_platform": PLATFORM, "p_shop_key": shop,
                                                        "p_details": details,
                                                        "p_ttl_seconds": PENDING_INSTALL_TTL}))[0]
        sealed = connector.sealer(core).seal({"code": code}, context=_code_context(shop))
        await db.rpc("enqueue_job", {"p_kind": "shopify.exchange", "p_priority": 10, "p_payload": {
            "shop": shop, "install_id": str(parked["install_id"]),
            "code": {"key_id": sealed.key_id, "sealed": sealed.sealed}}})
        target = safe_return_to(bound["return_to"], core.frontend_url)
        return frontend_redirect(target, {"platform": PLATFORM, "shop": shop, "status": "pending"},
                                  {"install_id": str(parked["install_id"]), "claim_token": str(parked["claim_token"])})

    return [Route("/install", app_url, methods=["GET"]), Route("/callback", callback, methods=["GET"])]


# --- worker ---------------------------------------------------------------------------------------------

def _payload_text(job: Job, key: str) -> str:
    value = job.payload.get(key)
    if not isinstance(value, str) or not value:
        raise PermanentError(f"{job.kind} job {job.id} has no {key}")
    return value


async def _persist(call: Any, what: str, attempts: int = 5) -> Any:
    """A database write after a one-time platform call (a spent authorization code): retry it here,
    because retrying the job would spend the code again."""
    for attempt in range(attempts):
        try:
            return await call()
        except (DatabaseError, OSError) as exc:
            if attempt == attempts - 1:
                raise PermanentError(f"could not store {what} ({type(exc).__name__}); connect the shop again") \
                    from None
            await asyncio.sleep(0.5 * 2 ** attempt)
    return None


async def _enqueue_activation(db: Database, store_id: UUID | str) -> None:
    await db.rpc("enqueue_job", {"p_kind": "shopify.activate", "p_store_id": store_id, "p_priority": 10,
                                 "p_dedupe_key": f"shopify.activate:{store_id}"})


def register_jobs(connector: ShopifyConnector, registry: JobRegistry) -> None:

    async def exchange(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        """The authorization code → sealed tokens on the store (or on the parked install)."""
        shop = normalize_shop_domain(_payload_text(job, "shop"))
        sealer = connector.sealer(jctx.settings)
        code_box = job.payload.get("code")
        if not isinstance(code_box, dict):
            raise PermanentError(f"shopify.exchange job {job.id} has no sealed code")
        code = sealer.open_json(str(code_box.get("key_id")), str(code_box.get("sealed")),
                                context=_code_context(shop))["code"]
        install_id = _payload_text(job, "install_id")
        db = jctx.db
        oauth = connector.oauth()
        try:
            tokens = await oauth.exchange_code(shop, str(code))
        except GrantRefused as exc:
            # a used or expired code: only a new install helps; say so on the store if it was claimed
            rows = await db.rpc("get_pending_install", {"p_install_id": install_id})
            if rows and rows[0]["store_id"] is not None:
                await db.rpc("set_store_status", {"p_store_id": rows[0]["store_id"], "p_status": "needs_reauth",
                                                  "p_reason": f"{exc}; connect the shop again"})
            raise
        finally:
            await oauth.aclose()
        box = seal_token_box(sealer, tokens, context=_install_context(install_id))
        claimed_store = await _persist(lambda: db.rpc("put_pending_install_credentials", {
            "p_install_id": install_id, "p_credentials": box}), "the shop's tokens")
        if claimed_store is not None:
            # claimed while we exchanged: make sure a claim job runs now that the tokens are here
            await db.rpc("enqueue_job", {"p_kind": "shopify.install_claimed", "p_payload": {"install_id": install_id},
                                         "p_store_id": claimed_store, "p_dedupe_key": f"install:{install_id}",
                                         "p_priority": 10})
        return {"shop": shop, "install_id": install_id, "claimed": claimed_store is not None}

    async def install_claimed(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        """An organization claimed a parked install: move its tokens to the store and activate it."""
        install_id = _payload_text(job, "install_id")
        if job.store_id is None:
            raise PermanentError(f"shopify.install_claimed job {job.id} has no store")
        db = jctx.db
        rows = await db.rpc("get_pending_install", {"p_install_id": install_id})
        if not rows:
            raise PermanentError(f"pending install {install_id} no longer exists")
        install = rows[0]
        credentials = install["credentials"]
        if credentials is None:
            # the exchange job has not stored them yet (the merchant was fast): come back shortly
            raise RetryableError("waiting for the OAuth code exchange of this install", retry_in=2.0)
        sealer: Sealer = connector.sealer(jctx.settings)
        tokens = open_token_box(sealer, credentials, context=_install_context(install_id))
        await save_tokens(db, sealer, job.store_id, tokens)
        await db.rpc("clear_pending_install_credentials", {"p_install_id": install_id})
        await _enqueue_activation(db, job.store_id)
        return {"store_id": str(job.store_id)}

    async def activate(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        if job.store_id is None:
            raise PermanentError(f"shopify.activate job {job.id} has no store")
        return await activate_store(connector, jctx, job.store_id)

    registry.register("shopify.exchange", exchange)
    registry.register("shopify.install_claimed", install_claimed)
    registry.register("shopify.activate", activate)


async def activate_store(connector: ShopifyConnector, jctx: JobContext, store_id: UUID) -> Mapping[str, Any]:
    """Read the shop, mark the store active, register webhooks, enqueue the first full sync."""
    db = jctx.db
    rows = await db.rpc("get_store", {"p_store_id": store_id})
    if not rows:
        raise PermanentError(f"store {store_id} no longer exists")
    store = rows[0]
    if store["status"] == "disconnected":
        return {"skipped": "the store was disconnected meanwhile"}
    async with connector.open_client(jctx, store_id, store["shop_key"]) as client:
        shop = (await client.query(SHOP_INFO)).get("shop") or {}
        plan = shop.get("plan") or {}
        info = {"name": shop.get("name"), "currency": shop.get("currencyCode"), "plan": plan.get("displayName"),
                "timezone": shop.get("ianaTimezone"), "api_version": connector.settings.api_version}
        await db.rpc("upsert_store", {
            "p_organization_id": store["organization_id"], "p_platform": PLATFORM, "p_shop_key": store["shop_key"],
            "p_display_name": shop.get("name"), "p_status": "active",
            "p_external_id": str(shop.get("id") or "").rsplit("/", 1)[-1] or None,
            "p_platform_info": {k: v for k, v in info.items() if v is not None}})
        webhooks = await ensure_subscriptions(connector, client, jctx.settings, store)
    jobs = await db.rpc("request_sync", {"p_store_id": store_id, "p_mode": "full", "p_reason": "install",
                                         "p_priority": 50})
    log.info("shopify %s connected; first full sync enqueued", store["shop_key"])
    return {"store_id": str(store_id), "webhooks": webhooks, "sync_jobs": jobs}
