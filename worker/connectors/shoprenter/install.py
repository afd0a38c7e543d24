"""ShopRenter installs, uninstalls and the admin entry, and the jobs that finish connecting a shop.

Installs start in the ShopRenter admin, where the merchant may not be signed in to the app yet:

1. ``GET /shoprenter/install`` (the app's RedirectUri) carries ``shopname, code, timestamp, hmac, app_url``.
   Verified (HMAC, timestamp window) → the install is parked (``park_pending_install``) and the browser
   redirected to ``app_url``, as ShopRenter requires. Nothing else is written; a bad call → 401.
2. ShopRenter then opens the app's EntryPoint, ``GET /shoprenter/entry``, signed the same way. Verified →
   the browser goes to the frontend: with ``#install_id&claim_token`` (a fresh token) when an install
   waits to be claimed, else with ``?shop=…&status=connected``.
3. The signed-in frontend claims the install for an organization (``claim_pending_install``); the
   ``shoprenter.install_claimed`` job gets a client-credentials token (proving the app is installed),
   seals it with a generated webhook token, activates the store, registers webhooks, enqueues the first
   full sync.

``GET /shoprenter/uninstall`` (the UninstallUri, signed): every store of the shop is marked uninstalled
and, after ``delete_data_after_uninstall_hours`` unless reinstalled, its data deleted.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from worker.connectors.shoprenter.auth import InvalidSignedCall, SignedCall, verify_signed_call
from worker.connectors.shoprenter.client import CREDENTIALS_KIND, request_token
from worker.connectors.store_secrets import save_secrets
from worker.db.port import Database
from worker.errors import PermanentError
from worker.jobs.registry import Job, JobContext, JobRegistry
from worker.web.app import error_response
from worker.web.redirects import frontend_redirect

if TYPE_CHECKING:
    from worker.connectors.shoprenter.connector import ShopRenterConnector

__all__ = ["install_routes", "register_jobs"]

log = logging.getLogger("shopsync.shoprenter.install")

PLATFORM = "shoprenter"
PENDING_INSTALL_TTL = 86_400


def install_routes(connector: ShopRenterConnector) -> Sequence[BaseRoute]:

    def verified(request: Request) -> SignedCall | Response:
        s = connector.settings
        if not s.configured:
            return error_response(503, "ShopRenter is not configured on this server")
        params = dict(request.query_params)
        try:
            return verify_signed_call(params, [s.secret()], max_age=s.install_max_age_seconds)
        except InvalidSignedCall as exc:
            return error_response(401, f"refused: {exc}")

    async def install(request: Request) -> Response:
        call = verified(request)
        if isinstance(call, Response):
            return call
        if not call.app_url or not re.match(connector.settings.app_url_pattern, call.app_url):
            return error_response(400, "missing app_url, or not a ShopRenter admin URL")
        db: Database = request.app.state.db
        await db.rpc("park_pending_install", {"p_platform": PLATFORM, "p_shop_key": call.shopname,
                                              "p_details": {"source": "shoprenter_install"},
                                              "p_ttl_seconds": PENDING_INSTALL_TTL})
        log.info("shoprenter install parked for %s", call.shopname)
        return RedirectResponse(call.app_url, status_code=302)

    async def entry(request: Request) -> Response:
        call = verified(request)
        if isinstance(call, Response):
            return call
        db: Database = request.app.state.db
        frontend = request.app.state.settings.frontend_url
        rows = await db.rpc("reissue_pending_install_claim", {"p_platform": PLATFORM, "p_shop_key": call.shopname})
        if rows:
            return frontend_redirect(frontend, {"platform": PLATFORM, "shop": call.shopname},
                                     {"install_id": str(rows[0]["install_id"]), "claim_token": rows[0]["claim_token"]})
        return frontend_redirect(frontend, {"platform": PLATFORM, "shop": call.shopname, "status": "connected"})

    async def uninstall(request: Request) -> Response:
        call = verified(request)
        if isinstance(call, Response):
            return call
        hours = connector.settings.delete_data_after_uninstall_hours
        db: Database = request.app.state.db
        count = await db.rpc("uninstall_shop", {
            "p_platform": PLATFORM, "p_shop_key": call.shopname,
            "p_reason": "the app was uninstalled in the ShopRenter admin",
            "p_delete_after": timedelta(hours=hours) if hours is not None else None})
        log.info("shoprenter %s uninstalled (%s stores)", call.shopname, count)
        return JSONResponse({"status": "uninstalled", "stores": count})

    return [Route("/install", install, methods=["GET"]), Route("/entry", entry, methods=["GET"]),
            Route("/uninstall", uninstall, methods=["GET"])]


# --- jobs ---------------------------------------------------------------------------------------------------

async def _claimed(connector: ShopRenterConnector, job: Job, jctx: JobContext) -> Mapping[str, Any]:
    s = connector.settings
    s.require_configured()
    if job.store_id is None:
        raise PermanentError("shoprenter.install_claimed needs a store")
    db = jctx.db
    rows = await db.rpc("get_store", {"p_store_id": job.store_id})
    if not rows:
        raise PermanentError(f"store {job.store_id} is gone")
    shop = str(rows[0]["shop_key"])
    async with connector.http() as http:
        token, expires = await request_token(http, s.token_url(shop), str(s.client_id), s.secret(), shop)
    await save_secrets(db, connector.sealer(jctx.settings), job.store_id, CREDENTIALS_KIND,
                       {"access_token": token, "webhook_token": secrets.token_urlsafe(32)},
                       access_expires_at=expires)
    await db.rpc("upsert_store", {"p_organization_id": rows[0]["organization_id"], "p_platform": PLATFORM,
                                  "p_shop_key": shop, "p_display_name": shop, "p_status": "active",
                                  "p_platform_info": {"api": "api2"}})
    await db.rpc("enqueue_job", {"p_kind": "shoprenter.check_webhooks", "p_store_id": job.store_id,
                                 "p_dedupe_key": f"check_webhooks:{job.store_id}", "p_priority": 20})
    syncs = await db.rpc("request_sync", {"p_store_id": job.store_id, "p_resources": None, "p_mode": "full",
                                          "p_reason": "install", "p_priority": 50})
    return {"shop": shop, "syncs": syncs}


def register_jobs(connector: ShopRenterConnector, registry: JobRegistry) -> None:
    async def claimed(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        return await _claimed(connector, job, jctx)

    registry.register("shoprenter.install_claimed", claimed)
