"""Connecting TikTok shops: the consent callback (web) and the claimed install and activation (worker).

TikTok authorizes a *seller*, not a shop: the consent page names no shop up front, and after it one
authorization covers every shop the seller chose. So the flow is ``begin_install`` with no shop → TikTok's
consent page (``service_id`` + our single-use ``state``) → ``GET /tiktok/callback?code&state`` where, unlike the
Shopify flow, the code is exchanged **at once** (it is only good for minutes, and the shops must be known before
anything can be parked) and the authorized shops are read (``GET /authorization/202309/shops``). The install is
parked as one pending install keyed by the first shop id, carrying every shop (id, cipher, name, region) in its
details and the token pair sealed for the install; the browser returns to the frontend with a claim token.
``claim_pending_install`` (the user who began it, for that organization) creates the first shop's store;
``tiktok.install_claimed`` creates (or reuses) a store for every other shop, gives each its ``cipher`` and the
authorization's facts in ``platform_info`` (``token_anchor``: the first shop's store, whose refresh lease all of
them share) and a sealed copy of the tokens, then ``tiktok.activate`` registers webhooks and starts the first
full sync of each. Callbacks without a state (a consent started elsewhere) are refused: shopsync only connects
shops a signed-in user asked for.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from worker.connectors.tiktok.client import TikTokClient
from worker.connectors.tiktok.oauth import GrantRefused, TikTokOAuth, TokenSet
from worker.connectors.tiktok.tokens import open_token_box, save_tokens, seal_token_box
from worker.connectors.tiktok.webhooks import ensure_webhooks
from worker.db.port import Database
from worker.errors import PermanentError, RetryableError, ShopsyncError
from worker.jobs.registry import Handler, Job, JobContext
from worker.rpc import connect, queue, stores, syncs
from worker.web.redirects import frontend_redirect, safe_return_to
from worker.web.responses import error_response

if TYPE_CHECKING:
    from worker.connectors.tiktok.connector import TikTokConnector

__all__ = ["ACTIVATE", "NO_SHOP", "install_jobs", "install_routes"]

log = logging.getLogger("shopsync.tiktok.install")

PLATFORM = "tiktok"
ACTIVATE = "activate"
NO_SHOP = ""                       # begin_install's shop for TikTok: the seller picks shops on the consent page
PENDING_INSTALL_TTL = 86_400
SHOP_FIELDS = ("id", "cipher", "name", "region", "seller_type", "code")
STATE = re.compile(r"^[0-9a-f]{32,128}$")          # what create_oauth_state issues
CODE = re.compile(r"^[\x21-\x7e]{1,512}$")           # an authorization code: printable ASCII


class _Fixed:
    """A token source for the calls made before the tokens belong to a store."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def __call__(self) -> str:
        return self.token

    async def after_expired(self, stale: str) -> str:
        raise PermanentError("TikTok says a token it just issued has expired")


def _install_context(install_id: str) -> str:
    return f"tiktok-install:{install_id}"


async def authorized_shops(connector: TikTokConnector, http: httpx.AsyncClient,
                           tokens: TokenSet) -> list[dict[str, Any]]:
    s = connector.settings
    client = TikTokClient(http, api_base_url=s.api_base_url, app_key=s.app_key or "", app_secret=s.secret(),
                          tokens=_Fixed(tokens.access_token), shop_cipher=None, name="TikTok authorization",
                          max_attempts=s.max_attempts)
    data = await client.call("GET", "/authorization/202309/shops", shop=False)
    found = []
    for shop in data.get("shops") or []:
        if isinstance(shop, dict) and str(shop.get("id", "")).isdigit() and shop.get("cipher"):
            found.append({k: str(shop[k]) for k in SHOP_FIELDS if shop.get(k) is not None})
    return sorted(found, key=lambda s: s["id"])


def install_routes(connector: TikTokConnector) -> Sequence[BaseRoute]:
    async def callback(request: Request) -> Response:
        s = connector.settings
        if not s.configured:
            return error_response(503, "TikTok Shop is not configured on this server")
        q = request.query_params
        code, state = q.get("code"), q.get("state")
        if not state:
            return error_response(400, "the callback needs the state begin_install created")
        if not STATE.match(state):
            return error_response(401, "unknown, expired or already used state")
        core = request.app.state.settings
        db: Database = request.app.state.db
        bound = await connect.consume_oauth_state(db, platform=PLATFORM, nonce=state, shop_key=NO_SHOP)
        if bound is None or bound["organization_id"] is None:
            return error_response(401, "unknown, expired or already used state")
        target = safe_return_to(bound["return_to"], core.frontend_url)
        if not code or not CODE.match(code):
            # the seller declined on TikTok's consent page (or the code is not one TikTok issues)
            return frontend_redirect(target, {"platform": PLATFORM, "status": "denied"})
        async with httpx.AsyncClient(timeout=s.request_timeout_seconds, follow_redirects=False) as http:
            try:
                tokens = await TikTokOAuth(s, http).exchange_code(code)
                shops = await authorized_shops(connector, http, tokens)
            except GrantRefused:
                return frontend_redirect(target, {"platform": PLATFORM, "status": "error",
                                                  "reason": "authorization_refused"})
            except ShopsyncError as exc:
                log.warning("tiktok callback: exchanging the code failed (%s)", type(exc).__name__)
                return frontend_redirect(target, {"platform": PLATFORM, "status": "error",
                                                  "reason": "tiktok_unavailable"})
        if not shops:
            return frontend_redirect(target, {"platform": PLATFORM, "status": "error", "reason": "no_shops"})
        details = {"source": "frontend", "organization_id": str(bound["organization_id"]),
                   "user_id": str(bound["user_id"]), "open_id": tokens.open_id, "seller_name": tokens.seller_name,
                   "shops": shops}
        parked = await connect.park_pending_install(db, platform=PLATFORM, shop_key=shops[0]["id"], details=details,
                                                    ttl_seconds=PENDING_INSTALL_TTL)
        install_id = str(parked["install_id"])
        box = seal_token_box(connector.sealer(core), tokens, context=_install_context(install_id))
        await connect.put_pending_install_credentials(db, install_id=install_id, credentials=box)
        return frontend_redirect(target, {"platform": PLATFORM, "shop": shops[0]["id"], "shops": str(len(shops)),
                                          "status": "pending"},
                                 {"install_id": install_id, "claim_token": str(parked["claim_token"])})

    return [Route("/callback", callback, methods=["GET"])]


def _platform_info(shop: Mapping[str, str], details: Mapping[str, Any], anchor: UUID) -> dict[str, Any]:
    return {"cipher": shop["cipher"], "region": shop.get("region"), "seller_type": shop.get("seller_type"),
            "shop_code": shop.get("code"), "open_id": details.get("open_id"), "seller_name": details.get("seller_name"),
            "token_anchor": str(anchor), "authorization_shops": [s["id"] for s in details.get("shops") or []]}


def install_jobs(connector: TikTokConnector) -> tuple[Handler, dict[str, Handler]]:
    async def install_claimed(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        install_id = job.payload.get("install_id")
        if job.store_id is None or not isinstance(install_id, str):
            raise PermanentError(f"tiktok.install_claimed job {job.id} has no store or install")
        db = jctx.db
        install = await connect.get_pending_install(db, install_id=install_id)
        if install is None:
            raise PermanentError(f"pending install {install_id} no longer exists")
        if install["credentials"] is None:
            raise RetryableError("the install's tokens are not there (yet)", retry_in=2.0)
        sealer = connector.sealer(jctx.settings)
        tokens = open_token_box(sealer, install["credentials"], context=_install_context(install_id))
        details = install["details"] or {}
        org = install["organization_id"]
        connected = []
        for shop in details.get("shops") or []:
            # the first shop's store is the claimed one (same organization, platform and shop key)
            store_id = await stores.upsert_store(db, organization_id=org, platform=PLATFORM, shop_key=shop["id"],
                                                 display_name=shop.get("name"), status="connecting",
                                                 external_id=shop["id"],
                                                 platform_info=_platform_info(shop, details, job.store_id))
            await save_tokens(db, sealer, store_id, tokens)
            await queue.enqueue_job(db, kind=f"{PLATFORM}.{ACTIVATE}", store_id=store_id, priority=10,
                                    dedupe_key=f"{PLATFORM}.{ACTIVATE}:{store_id}")
            connected.append(str(store_id))
        await connect.clear_pending_install_credentials(db, install_id=install_id)
        return {"stores": connected}

    async def activate(job: Job, jctx: JobContext) -> Mapping[str, Any]:
        if job.store_id is None:
            raise PermanentError(f"tiktok.activate job {job.id} has no store")
        store = await stores.get_store(jctx.db, store_id=job.store_id)
        if store is None:
            raise PermanentError(f"store {job.store_id} no longer exists")
        if store["status"] == "disconnected":
            return {"skipped": "the store was disconnected meanwhile"}
        async with connector.open_client(jctx, job.store_id, store) as client:
            webhooks = await ensure_webhooks(connector, client, connector.settings.webhook_uri(jctx.settings))
        await stores.set_store_status(jctx.db, store_id=job.store_id, status="active")
        jobs = await syncs.request_sync(jctx.db, store_id=job.store_id, mode="full", reason="install", priority=50)
        log.info("tiktok shop %s connected; first full sync enqueued", store["shop_key"])
        return {"store_id": str(job.store_id), "webhooks": webhooks, "sync_jobs": jobs}

    return install_claimed, {ACTIVATE: activate}
