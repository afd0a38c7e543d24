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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from worker.connectors.contract import StandardJob
from worker.connectors.shoprenter.auth import InvalidSignedCall, SignedCall, verify_signed_call
from worker.connectors.shoprenter.client import CREDENTIALS_KIND, request_token
from worker.connectors.store_secrets import save_secrets
from worker.db.port import Database
from worker.errors import PermanentError
from worker.jobs.registry import Handler, Job, JobContext
from worker.rpc import connect, queue, stores, syncs
from worker.web.redirects import frontend_redirect
from worker.web.responses import error_response

if TYPE_CHECKING:
    from worker.connectors.shoprenter.connector import ShopRenterConnector

__all__ = ["install_claimed_handler", "install_routes"]

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
        await connect.park_pending_install(db, platform=PLATFORM, shop_key=call.shopname,
                                           details={"source": "shoprenter_install"}, ttl_seconds=PENDING_INSTALL_TTL)
        log.info("shoprenter install parked for %s", call.shopname)
        return RedirectResponse(call.app_url, status_code=302)

    async def entry(request: Request) -> Response:
        call = verified(request)
        if isinstance(call, Response):
            return call
        db: Database = request.app.state.db
        frontend = request.app.state.settings.frontend_url
        claim = await connect.reissue_pending_install_claim(db, platform=PLATFORM, shop_key=call.shopname)
        if claim is not None:
            return frontend_redirect(frontend, {"platform": PLATFORM, "shop": call.shopname},
                                     {"install_id": str(claim["install_id"]), "claim_token": claim["claim_token"]})
        return frontend_redirect(frontend, {"platform": PLATFORM, "shop": call.shopname, "status": "connected"})

    async def uninstall(request: Request) -> Response:
        call = verified(request)
        if isinstance(call, Response):
            return call
        hours = connector.settings.delete_data_after_uninstall_hours
        db: Database = request.app.state.db
        count = await connect.uninstall_shop(db, platform=PLATFORM, shop_key=call.shopname,
                                             reason="the app was uninstalled in the ShopRenter admin",
                                             delete_after=timedelta(hours=hours) if hours is not None else None,
                                             # the signed call's time: a late one leaves a reinstalled store alone
                                             as_of=datetime.fromtimestamp(call.timestamp, UTC))
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
    store = await stores.get_store(db, store_id=job.store_id)
    if store is None:
        raise PermanentError(f"store {job.store_id} is gone")
    shop = str(store["shop_key"])
    async with connector.http() as http:
        token, expires = await request_token(http, s.token_url(shop), str(s.client_id), s.secret(), shop)
    await save_secrets(db, connector.sealer(jctx.settings), job.store_id, CREDENTIALS_KIND,
                       {"access_token": token, "webhook_token": secrets.token_urlsafe(32)},
                       access_expires_at=expires)
    await stores.upsert_store(db, organization_id=store["organization_id"], platform=PLATFORM, shop_key=shop,
                              display_name=shop, status="active", platform_info={"api": "api2"})
    await queue.enqueue_job(db, kind=f"{PLATFORM}.{StandardJob.CHECK_WEBHOOKS}", store_id=job.store_id,
                            dedupe_key=f"check_webhooks:{job.store_id}", priority=20)
    sync_jobs = await syncs.request_sync(db, store_id=job.store_id, mode="full", reason="install", priority=50)
    return {"shop": shop, "syncs": sync_jobs}


def install_claimed_handler(connector: ShopRenterConnector) -> Handler:
    async def claimed(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        return await _claimed(connector, job, jctx)

    return claimed
