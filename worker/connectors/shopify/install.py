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

from worker.connectors.contract import StandardJob
from worker.connectors.shopify.auth import (
    InvalidShopDomain,
    authorize_url,
    normalize_shop_domain,
    verify_callback,
)
from worker.connectors.shopify.oauth import GrantRefused
from worker.connectors.shopify.tokens import open_token_box, save_tokens, seal_token_box
from worker.connectors.shopify.webhooks import ensure_subscriptions, wanted_topics
from worker.db.port import Database
from worker.errors import DatabaseError, PermanentError, RetryableError
from worker.jobs.registry import Handler, Job, JobContext
from worker.rpc import connect, queue, stores, syncs
from worker.sealing import Sealer
from worker.web.redirects import frontend_redirect, safe_return_to
from worker.web.responses import error_response

if TYPE_CHECKING:
    from worker.connectors.shopify.connector import ShopifyConnector

__all__ = ["ACTIVATE", "EXCHANGE", "activate_store", "install_jobs", "install_routes"]

log = logging.getLogger("shopsync.shopify.install")

PLATFORM = "shopify"
# Shopify's own job kinds (shopify.<name>), beside the standard ones of the contract
EXCHANGE = "exchange"     # the one-time authorization code → tokens sealed for the parked install
ACTIVATE = "activate"     # read the shop, mark the store active, subscribe webhooks, first full sync
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
        found = await stores.find_store(db, platform=PLATFORM, shop_key=shop)
        if found is not None and found["status"] == "active":
            return frontend_redirect(core.frontend_url, {"platform": PLATFORM, "shop": shop,
                                                          "store_id": str(found["store_id"])})
        s = connector.settings
        nonce = await connect.create_oauth_state(db, platform=PLATFORM, shop_key=shop,
                                                 ttl_seconds=s.install_state_ttl_seconds)
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
        bound = await connect.consume_oauth_state(db, platform=PLATFORM, nonce=state, shop_key=shop)
        if bound is None:
            return error_response(401, "unknown, expired or already used state")
        details: dict[str, Any] = {"source": "shopify"}
        if bound["organization_id"] is not None:       # begun by a signed-in user with begin_install
            details = {"source": "frontend", "organization_id": str(bound["organization_id"]),
                       "user_id": str(bound["user_id"])}
        parked = await connect.park_pending_install(db, platform=PLATFORM, shop_key=shop, details=details,
                                                    ttl_seconds=PENDING_INSTALL_TTL)
        sealed = connector.sealer(core).seal({"code": code}, context=_code_context(shop))
        await queue.enqueue_job(db, kind=f"{PLATFORM}.{EXCHANGE}", priority=10, payload={
            "shop": shop, "install_id": str(parked["install_id"]),
            "code": {"key_id": sealed.key_id, "sealed": sealed.sealed}})
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


async def _enqueue_activation(db: Database, store_id: UUID) -> None:
    await queue.enqueue_job(db, kind=f"{PLATFORM}.{ACTIVATE}", store_id=store_id, priority=10,
                            dedupe_key=f"{PLATFORM}.{ACTIVATE}:{store_id}")


def install_jobs(connector: ShopifyConnector) -> tuple[Handler, dict[str, Handler]]:
    """The contract's ``install_claimed`` handler, and Shopify's own kinds: ``exchange`` and ``activate``."""

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
            pending = await connect.get_pending_install(db, install_id=install_id)
            if pending is not None and pending["store_id"] is not None:
                await stores.set_store_status(db, store_id=pending["store_id"], status="needs_reauth",
                                              reason=f"{exc}; connect the shop again")
            raise
        finally:
            await oauth.aclose()
        box = seal_token_box(sealer, tokens, context=_install_context(install_id))
        claimed_store = await _persist(lambda: connect.put_pending_install_credentials(
            db, install_id=install_id, credentials=box), "the shop's tokens")
        if claimed_store is not None:
            # claimed while we exchanged: make sure a claim job runs now that the tokens are here
            await queue.enqueue_job(db, kind=f"{PLATFORM}.{StandardJob.INSTALL_CLAIMED}",
                                    payload={"install_id": install_id}, store_id=claimed_store,
                                    dedupe_key=f"install:{install_id}", priority=10)
        return {"shop": shop, "install_id": install_id, "claimed": claimed_store is not None}

    async def install_claimed(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        """An organization claimed a parked install: move its tokens to the store and activate it."""
        install_id = _payload_text(job, "install_id")
        if job.store_id is None:
            raise PermanentError(f"shopify.install_claimed job {job.id} has no store")
        db = jctx.db
        install = await connect.get_pending_install(db, install_id=install_id)
        if install is None:
            raise PermanentError(f"pending install {install_id} no longer exists")
        credentials = install["credentials"]
        if credentials is None:
            # the exchange job has not stored them yet (the merchant was fast): come back shortly
            raise RetryableError("waiting for the OAuth code exchange of this install", retry_in=2.0)
        sealer: Sealer = connector.sealer(jctx.settings)
        tokens = open_token_box(sealer, credentials, context=_install_context(install_id))
        await save_tokens(db, sealer, job.store_id, tokens)
        await connect.clear_pending_install_credentials(db, install_id=install_id)
        await _enqueue_activation(db, job.store_id)
        return {"store_id": str(job.store_id)}

    async def activate(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        if job.store_id is None:
            raise PermanentError(f"shopify.activate job {job.id} has no store")
        return await activate_store(connector, jctx, job.store_id)

    return install_claimed, {EXCHANGE: exchange, ACTIVATE: activate}


async def activate_store(connector: ShopifyConnector, jctx: JobContext, store_id: UUID) -> Mapping[str, Any]:
    """Read the shop, mark the store active, register webhooks, enqueue the first full sync."""
    db = jctx.db
    store = await stores.get_store(db, store_id=store_id)
    if store is None:
        raise PermanentError(f"store {store_id} no longer exists")
    if store["status"] == "disconnected":
        return {"skipped": "the store was disconnected meanwhile"}
    async with connector.open_client(jctx, store_id, store["shop_key"]) as client:
        shop = (await client.query(SHOP_INFO)).get("shop") or {}
        plan = shop.get("plan") or {}
        info = {"name": shop.get("name"), "currency": shop.get("currencyCode"), "plan": plan.get("displayName"),
                "timezone": shop.get("ianaTimezone"), "api_version": connector.settings.api_version}
        await stores.upsert_store(db, organization_id=store["organization_id"], platform=PLATFORM,
                                  shop_key=store["shop_key"], display_name=shop.get("name"), status="active",
                                  external_id=str(shop.get("id") or "").rsplit("/", 1)[-1] or None,
                                  platform_info={k: v for k, v in info.items() if v is not None})
        webhooks = await ensure_subscriptions(connector, client, jctx.settings, wanted_topics(store))
    jobs = await syncs.request_sync(db, store_id=store_id, mode="full", reason="install", priority=50)
    log.info("shopify %s connected; first full sync enqueued", store["shop_key"])
    return {"store_id": str(store_id), "webhooks": webhooks, "sync_jobs": jobs}
