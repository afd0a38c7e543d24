"""The channel endpoints of the web process, under ``/notifications``: the parts of channel management that
need shopsync's own code — email-validator, the SSRF guard, sealing secrets, rendering templates. Everything
else (rules, settings, test sends, resuming, deleting, reading) is an RPC the frontend calls through
supabase-js. Each endpoint takes the signed-in user's Supabase access token (``Authorization: Bearer``):

- ``POST /notifications/channels`` ``{organization_id, name, kind, config, secret}`` → 201, the channel (a
  webhook channel's generated ``signing_secret`` is shown once, here);
- ``PATCH /notifications/channels/{id}`` ``{name?, config?, secret?, rotate_signing_secret?}`` → 200 (a
  failing channel becomes active again and its held messages go out);
- ``POST /notifications/channels/{id}/preview`` ``{event_type?}`` → 200, the message that channel would get
  (email: subject, text, html; webhook: headers and body), sent nowhere.

Admins (owners, admins) create and change channels; members may preview. Each failure is a clear 4xx with
nothing stored: 401 token, 400 body or values, 403 role, 404 unknown channel or organization.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from worker.config import Settings
from worker.db.port import Database
from worker.errors import DatabaseError
from worker.notify.channels import ChannelRefused, channel_secret, new_signing_secret, seal_secret, validate_channel
from worker.notify.delivery import NOTIFIER, build_message
from worker.rpc import notifications
from worker.rpc.notifications import ADMINS
from worker.web.cors import BrowserRoute
from worker.web.responses import error_response
from worker.web.user_auth import (
    AuthUnavailable,
    Unauthenticated,
    UserIdentity,
    auth_unavailable_response,
    authenticate,
    unauthenticated_response,
)

__all__ = ["SAMPLE_DETAILS", "notification_routes"]

_SQL_STATUS = {"P0002": 404, "42501": 403, "22023": 400, "22P02": 400}
# what a preview shows when the organization has no event of the type yet
SAMPLE_DETAILS: dict[str, dict[str, Any]] = {
    "job.dead": {"job_id": 0, "kind": "shopify.sync", "resource": "orders", "attempts": 10,
                 "error": "RetryableError: the platform answered 503 (an example)"},
    "store.needs_reauth": {"reason": "invalid_grant (an example)"},
    "store.uninstalled": {"reason": "app/uninstalled webhook (an example)"},
    "sync.record_errors": {"run_id": 0, "failed": 3, "created": 120, "updated": 40},
    "webhooks.recreated": {"platform": "shopify", "topics": ["ORDERS_UPDATED"], "count": 1},
    "notification.channel_failing": {"reason": "Mailgun refused the message (403): Domain not verified (an example)"},
    "summary.daily": {"syncs": 24, "syncs_failed": 1, "records_changed": 1520, "orders_imported": 87,
                      "events": {"job.dead": 1}, "failures": 1, "waiting": 0, "stores_needing_reauth": 0},
}


class Refused(Exception):  # noqa: N818 - a refusal with the HTTP status to answer
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Refused(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    return body


def _uuid(value: Any, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Refused(400 if name != "channel id" else 404, f"{name} must be a UUID") from None


async def _sql(call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        return await call
    except DatabaseError as exc:
        status = _SQL_STATUS.get(exc.sqlstate or "")
        if status is None:
            raise
        raise Refused(status, str(exc).split("\n")[0]) from None


def _allow_private(core: Settings) -> bool:
    return NOTIFIER.settings.private_allowed(core)


Handler = Callable[[Request, UserIdentity, Settings, Database], Awaitable[Response]]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Token first (503 when tokens cannot be verified here), then the handler; refusals become 4xx."""
    async def endpoint(request: Request) -> Response:
        core: Settings = request.app.state.settings
        if core.supabase_jwt_secret is None and core.supabase_url is None:
            return error_response(503, "notification channels are managed with the user's token: set "
                                       "SUPABASE_JWT_SECRET or SUPABASE_URL so shopsync can verify it")
        try:
            user = await authenticate(request)
        except Unauthenticated as exc:
            return unauthenticated_response(exc)
        except AuthUnavailable as exc:
            return auth_unavailable_response(exc)
        try:
            return await handler(request, user, core, request.app.state.db)
        except Refused as exc:
            return error_response(exc.status, str(exc))
        except ChannelRefused as exc:
            return error_response(400, str(exc))
    return endpoint


def _name(body: Mapping[str, Any], default: str | None = None) -> str:
    name = body.get("name", default)
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
        raise Refused(400, "name is required: 1 to 100 characters")
    return name.strip()


async def _save(db: Database, core: Settings, user: UserIdentity, org: Any, channel_id: uuid.UUID, name: str,
                kind: str, config: dict[str, Any], secret: dict[str, str] | None) -> dict[str, Any]:
    sealed = seal_secret(NOTIFIER.sealer(core), channel_id, secret) if secret else None
    return await _sql(notifications.put_notification_channel(
        db, user_id=user.user_id, organization_id=org, channel_id=channel_id, name=name, kind=kind, config=config,
        key_id=sealed.key_id if sealed else None, sealed=sealed.sealed if sealed else None))


async def _create(request: Request, user: UserIdentity, core: Settings, db: Database) -> Response:
    body = await _body(request)
    org = _uuid(body.get("organization_id"), "organization_id")
    kind = body.get("kind")
    if not isinstance(kind, str):
        raise Refused(400, "kind is required: smtp, resend, mailgun or webhook")
    name = _name(body)
    await _sql(notifications.notification_channel_access(db, user_id=user.user_id, organization_id=org,
                                                         channel_id=None, roles=ADMINS))
    config = await validate_channel(kind, body.get("config"), allow_private=_allow_private(core))
    secret = channel_secret(kind, config, body.get("secret"), creating=True)
    channel_id = uuid.uuid4()
    channel = await _save(db, core, user, org, channel_id, name, kind, config, secret)
    if kind == "webhook" and secret is not None:
        channel["signing_secret"] = secret["signing_secret"]     # shown once; only its sealed form is kept
    return JSONResponse(channel, status_code=201)


async def _update(request: Request, user: UserIdentity, core: Settings, db: Database) -> Response:
    channel_id = _uuid(request.path_params["channel_id"], "channel id")
    body = await _body(request)
    unknown = sorted(set(body) - {"name", "config", "secret", "rotate_signing_secret"})
    if unknown:
        raise Refused(400, f"unknown field(s): {', '.join(unknown)}")
    access = await _sql(notifications.notification_channel_access(db, user_id=user.user_id, organization_id=None,
                                                                  channel_id=channel_id, roles=ADMINS))
    current = access["channel"]
    kind = str(current["kind"])
    config = (await validate_channel(kind, body["config"], allow_private=_allow_private(core))
              if "config" in body else dict(current["config"]))
    if body.get("rotate_signing_secret") is True:
        if kind != "webhook":
            raise Refused(400, "rotate_signing_secret is for webhook channels")
        secret: dict[str, str] | None = {"signing_secret": new_signing_secret()}
    else:
        secret = channel_secret(kind, config, body.get("secret"), creating=False)
    if kind == "smtp" and "username" in config and secret is None and not current.get("has_secret"):
        raise Refused(400, "secret.password is required with a username")
    channel = await _save(db, core, user, access["organization_id"], channel_id,
                          _name(body, str(current["name"])), kind, config, secret)
    if kind == "webhook" and secret is not None:
        channel["signing_secret"] = secret["signing_secret"]
    return JSONResponse(channel)


def _sample(event_type: str, description: str, severity: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    details = dict(SAMPLE_DETAILS.get(event_type, {}))
    if event_type == "summary.daily":
        details |= {"period_start": now, "period_end": now, "time_zone": "UTC"}
    return {"id": 0, "type": event_type, "severity": severity, "store_id": None, "store": "demo-store (an example)",
            "platform": None, "subject": "2026-01-01" if event_type == "summary.daily" else "example",
            "details": details, "occurred_at": now, "description": description}


async def _preview(request: Request, user: UserIdentity, core: Settings, db: Database) -> Response:
    channel_id = _uuid(request.path_params["channel_id"], "channel id")
    body = await _body(request)
    event_type = body.get("event_type")
    if event_type is not None and not isinstance(event_type, str):
        raise Refused(400, "event_type must be text")
    data = await _sql(notifications.notification_preview_data(db, user_id=user.user_id, channel_id=channel_id,
                                                              event_type=event_type))
    events = list(data.get("events") or [])
    if not events:
        shown = event_type or "job.dead"
        known = (data.get("types") or {}).get(shown) or {}
        events = [_sample(shown, str(known.get("description", shown)), str(known.get("severity", "error")))]
    if event_type == "summary.daily":
        events = events[-1:]
    severities = {"info": 1, "warning": 2, "error": 3, "critical": 4}
    severity = max((str(e.get("severity")) for e in events), key=lambda s: severities.get(s, 0))
    data["events"] = events
    data["notification"] = {"id": 0, "kind": "events", "event_count": len(events), "attempts": 0,
                            "severity": severity, "created_at": datetime.now(UTC).isoformat()}
    message = build_message(data, NOTIFIER.settings, core)
    channel = data["channel"]
    if channel["kind"] == "webhook":
        return JSONResponse({"kind": "webhook", "url": channel["config"].get("url"),
                             "headers": {"content-type": "application/json", "webhook-id": message.key,
                                         "webhook-timestamp": "<seconds at sending>",
                                         "webhook-signature": "v1,<HMAC-SHA256 with the channel's secret>"},
                             "body": orjson.loads(message.webhook_body)})
    return JSONResponse({"kind": channel["kind"], "subject": message.rendered.subject, "text": message.rendered.text,
                         "html": message.rendered.html})


def notification_routes() -> list[BaseRoute]:
    # a signed-in user's browser calls these with its access token: CORS applies (SHOPSYNC_CORS_ORIGINS)
    return [BrowserRoute("/channels", _endpoint(_create), methods=["POST"]),
            BrowserRoute("/channels/{channel_id}", _endpoint(_update), methods=["PATCH"]),
            BrowserRoute("/channels/{channel_id}/preview", _endpoint(_preview), methods=["POST"])]

