"""The channel endpoints (``/notifications``): who may do what, every bad input refused with what to fix and
nothing stored, secrets sealed and never shown again (a webhook's signing secret once, at creation), and
previews that send nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import new_user
from tests.notify_world import NotifyWorld, token
from worker import netguard
from worker.config import Settings
from worker.db.direct import DirectDatabase
from worker.notify.delivery import NOTIFIER
from worker.web.app import create_app


def channels(w: NotifyWorld) -> int:
    return int(w.scalar("select count(*) from shopsync.notification_channels"))


async def refused(w: NotifyWorld, body: dict[str, Any], status: int = 400) -> str:
    answer = await w.post("/notifications/channels", {"organization_id": str(w.org), "name": "x", **body})
    assert answer.status_code == status, answer.text
    return str(answer.json()["detail"])


async def test_who_may_manage_channels(notify_world: NotifyWorld) -> None:
    w = notify_world
    body = {"organization_id": str(w.org), "name": "ops", "kind": "smtp", "config": w.smtp_config()}
    async with w.web as web:
        assert (await web.post("/notifications/channels", json=body)).status_code == 401
        bad = await web.post("/notifications/channels", json=body, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
    member = new_user(w.conn)
    w.conn.execute("insert into shopsync.organization_members (organization_id, user_id, role) values (%s, %s, "
                   "'member')", (w.org, member))
    answer = await w.post("/notifications/channels", body, user=member)
    assert answer.status_code == 403 and "needs owner or admin" in answer.json()["detail"]
    stranger = new_user(w.conn)
    answer = await w.post("/notifications/channels", body, user=stranger)
    assert answer.status_code == 403 and "not a member" in answer.json()["detail"]
    assert channels(w) == 0
    channel = await w.channel("smtp", w.smtp_config())
    # a stranger cannot tell a channel from nothing; a member may preview but not change it
    assert (await w.post(f"/notifications/channels/{channel['id']}", {"name": "mine"}, user=stranger,
                         method="PATCH")).status_code == 404
    assert (await w.post(f"/notifications/channels/{channel['id']}", {"name": "mine"}, user=member,
                         method="PATCH")).status_code == 403
    assert (await w.post(f"/notifications/channels/{channel['id']}/preview", {}, user=member)).status_code == 200
    assert (await w.post("/notifications/channels/not-a-uuid/preview", {})).status_code == 404


@pytest.mark.parametrize(("body", "detail"), [
    ({"kind": "fax", "config": {}}, "kind must be one of smtp, resend, mailgun, webhook"),
    ({"kind": "resend", "config": {"from": "alerts@example", "to": "ops@example.com"}, "secret": {"api_key": "re_1"}},
     "from: 'alerts@example' is not a valid email address: The part after the @-sign is not valid. It should have a "
     "period."),
    ({"kind": "resend", "config": {"from": "alerts@example.com", "to": ["ops@example.com", "not an address"]},
     "secret": {"api_key": "re_1"}}, "to: 'not an address' is not a valid email address: An email address must have an "
     "@-sign."),
    ({"kind": "resend", "config": {"from": "alerts@example.com", "to": "ops@example.com"}},
     "secret.api_key is required: the Resend API key"),
    ({"kind": "resend", "config": {"from": "alerts@example.com", "to": "ops@example.com", "api_key": "re_1"}},
     "unknown field(s) for a resend channel: api_key (secrets go in \"secret\", not in config)"),
    ({"kind": "mailgun", "config": {"domain": "mg", "from": "a@example.com", "to": "b@example.com"},
      "secret": {"api_key": "k"}}, "domain 'mg' is not a domain name (the sending domain set up in Mailgun)"),
    ({"kind": "mailgun", "config": {"domain": "mg.example.com", "region": "asia", "from": "a@example.com",
                                    "to": "b@example.com"}, "secret": {"api_key": "k"}}, "region must be us or eu (where the Mailgun domain was created)"),
    ({"kind": "webhook", "config": {"url": "https://hooks.example.com/x"}, "secret": {"signing_secret": "short"}},
     "secret.signing_secret must be whsec_ followed by base64 of 24 to 64 bytes (omit it to have one generated)"),
    ({"kind": "smtp", "config": {"host": "smtp.example.com", "from": "a@example.com", "to": "b@example.com",
                                 "username": "u"}}, "secret.password is required with a username"),
])
async def test_bad_channels_are_refused_with_what_to_fix(notify_world: NotifyWorld, body: dict[str, Any],
                                                         detail: str) -> None:
    assert await refused(notify_world, body) == detail
    assert channels(notify_world) == 0


async def test_outside_development_no_private_address_no_plain_text(notify_world: NotifyWorld,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    w = notify_world
    monkeypatch.setattr(NOTIFIER, "_settings", w.notify.model_copy(update={"allow_private": False}))

    async def resolves_privately(host: str, port: int) -> list[str]:
        return {"internal.example.com": ["10.0.0.7"], "mail.example.com": ["93.184.215.14"]}.get(host, ["192.0.2.1"])

    monkeypatch.setattr(netguard, "lookup", resolves_privately)
    webhook = {"kind": "webhook"}
    assert "loopback" in await refused(w, {**webhook, "config": {"url": "https://127.0.0.1/hook"}})
    assert await refused(w, {**webhook, "config": {"url": "https://localhost/hook"}}) == \
        "webhook URL host localhost is a local or reserved name"
    assert await refused(w, {**webhook, "config": {"url": "http://hooks.example.com/hook"}}) == \
        "webhook URL must use https://"
    assert await refused(w, {**webhook, "config": {"url": "https://internal.example.com/hook"}}) == \
        "url: the host's address is not allowed: it is a private network address"
    mail = {"from": "a@example.com", "to": "b@example.com"}
    assert "unencrypted" in await refused(w, {"kind": "smtp", "config": {"host": "mail.example.com",
                                                                           "security": "none", **mail}})
    assert "submission ports" in await refused(w, {"kind": "smtp", "config": {"host": "mail.example.com",
                                                                                "port": 6379, **mail}})
    assert "private network address" in await refused(w, {"kind": "smtp", "config": {"host": "internal.example.com",
                                                                                         **mail}})
    assert channels(w) == 0
    ok = await w.channel("smtp", {"host": "mail.example.com", "port": 465, "security": "tls", **mail})
    assert ok["config"]["host"] == "mail.example.com"


async def test_changing_a_channel_keeps_its_secret_sealed_and_rotates_a_signing_secret(
        notify_world: NotifyWorld) -> None:
    w = notify_world
    hook = await w.channel("webhook", {"url": f"{w.receiver_url}/a"}, name="hooks")
    first = hook["signing_secret"]
    assert first.startswith("whsec_") and hook["has_secret"] is True
    sealed = w.scalar("select sealed from shopsync_private.notification_channel_secrets")
    renamed = await w.post(f"/notifications/channels/{hook['id']}", {"name": "renamed",
                                                                   "config": {"url": f"{w.receiver_url}/b"}},
                           method="PATCH")
    assert renamed.status_code == 200 and "signing_secret" not in renamed.json()
    assert renamed.json()["config"] == {"url": f"{w.receiver_url}/b"} and renamed.json()["name"] == "renamed"
    assert w.scalar("select sealed from shopsync_private.notification_channel_secrets") == sealed
    rotated = await w.post(f"/notifications/channels/{hook['id']}", {"rotate_signing_secret": True}, method="PATCH")
    assert rotated.status_code == 200 and rotated.json()["signing_secret"] not in (first, None)
    assert w.scalar("select version from shopsync_private.notification_channel_secrets") == 2
    resend = await w.channel("resend", {"from": "a@example.com", "to": "b@example.com"}, {"api_key": "re_123"})
    assert (await w.post(f"/notifications/channels/{resend['id']}", {"rotate_signing_secret": True},
                         method="PATCH")).status_code == 400
    assert (await w.post(f"/notifications/channels/{resend['id']}", {"kind": "smtp"}, method="PATCH")).json() == {
        "error": "bad_request", "detail": "unknown field(s): kind"}
    # the activity log says who did what (the two refused changes are not there)
    assert [r["action"] for r in w.conn.execute(
        "select action from shopsync.activity_log where action like 'notification_channel.%%' and actor_user_id = %s "
        "order by id", (w.owner,))] == ["notification_channel.created", "notification_channel.updated",
                                         "notification_channel.updated", "notification_channel.created"]


async def test_a_preview_renders_without_sending(notify_world: NotifyWorld) -> None:
    w = notify_world
    smtp = await w.channel("smtp", w.smtp_config())
    hook = await w.channel("webhook", {"url": f"{w.receiver_url}/p"})
    sample = await w.post(f"/notifications/channels/{smtp['id']}/preview", {"event_type": "store.needs_reauth"})
    assert sample.status_code == 200
    assert sample.json()["subject"].endswith("demo-store (an example) must be connected again (invalid_grant (an "
                                             "example))")
    w.event("sync.record_errors", "orders", '{"failed": 7, "run_id": 1}')
    real = (await w.post(f"/notifications/channels/{smtp['id']}/preview", {"event_type": "sync.record_errors"})).json()
    assert "7 orders record(s) could not be stored in a sync of Demo shop" in real["text"]
    assert f'href="https://app.example.com/stores/{w.store}"' in real["html"]
    summary = (await w.post(f"/notifications/channels/{smtp['id']}/preview", {"event_type": "summary.daily"})).json()
    assert "Orders imported:        87" in summary["text"]
    webhook = (await w.post(f"/notifications/channels/{hook['id']}/preview", {})).json()
    assert webhook["body"]["type"] == "sync.record_errors" and webhook["headers"]["webhook-id"]
    unknown = await w.post(f"/notifications/channels/{smtp['id']}/preview", {"event_type": "flow.oops"})
    assert unknown.status_code == 400 and unknown.json()["detail"] == "unknown event type 'flow.oops'"
    assert w.sink.messages == [] and w.receiver.requests == [] and w.notifications() == []


async def test_html_is_autoescaped_and_plain_text_is_not(notify_world: NotifyWorld) -> None:
    w = notify_world
    smtp = await w.channel("smtp", w.smtp_config())
    w.event(details='{"kind": "shopify.sync", "attempts": 1, "error": "<script>alert(1)</script> & more"}')
    shown = (await w.post(f"/notifications/channels/{smtp['id']}/preview", {"event_type": "job.dead"})).json()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in shown["html"] and "<script>" not in shown["html"]
    assert "<script>alert(1)</script> & more" in shown["text"]


async def test_the_endpoints_need_a_way_to_check_tokens(notify_world: NotifyWorld) -> None:
    from sandbox.serving import serve_app
    from worker.web.app import create_app

    w = notify_world
    core = w.core.model_copy(update={"supabase_jwt_secret": None})
    with serve_app(create_app(core, w.db)) as url:
        async with httpx.AsyncClient(base_url=url) as web:
            answer = await web.post("/notifications/channels", json={},
                                    headers={"Authorization": f"Bearer {token(w.owner)}"})
    assert answer.status_code == 503 and "SUPABASE_JWT_SECRET" in answer.json()["detail"]


async def test_rotate_key_reseals_channel_secrets(notify_world: NotifyWorld) -> None:
    from worker.keys import rotate_credentials
    from worker.notify.channels import open_secret
    from worker.sealing import Sealer, generate_key_spec

    w = notify_world
    channel = await w.channel("resend", {"from": "a@example.com", "to": "b@example.com"}, {"api_key": "re_rotate"})
    assert w.scalar("select key_id from shopsync_private.notification_channel_secrets") == "test"
    rotated = w.core.model_copy(update={"sealing_keys": type(w.core.sealing_keys)(
        f"{generate_key_spec('next')},{w.core.sealing_keys.get_secret_value()}")})  # type: ignore[union-attr]
    assert await rotate_credentials(w.db, rotated) == 1
    stored = w.conn.execute("select key_id, sealed from shopsync_private.notification_channel_secrets").fetchone()
    assert stored is not None and stored["key_id"] == "next"
    assert open_secret(Sealer.from_settings(rotated), channel["id"], stored) == {"api_key": "re_rotate"}
    assert await rotate_credentials(w.db, rotated) == 0


async def test_the_channel_endpoints_are_browser_routes_for_the_configured_origins(db: DirectDatabase) -> None:
    origin = "https://app.example.com"
    settings = Settings(_env_file=None, cors_origins=[origin], supabase_jwt_secret="x" * 40)  # type: ignore[call-arg]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, db)),
                                 base_url="http://test") as web:
        for path, method in (("/notifications/channels", "POST"),
                             ("/notifications/channels/00000000-0000-0000-0000-000000000001", "PATCH"),
                             ("/notifications/channels/00000000-0000-0000-0000-000000000001/preview", "POST")):
            preflight = {"Origin": origin, "Access-Control-Request-Method": method,
                         "Access-Control-Request-Headers": "authorization,content-type"}
            ok = await web.options(path, headers=preflight)
            assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == origin, path
            assert method in ok.headers["access-control-allow-methods"]
            other = await web.options(path, headers={**preflight, "Origin": "https://evil.example"})
            assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
            # the page reads refusals too (here: no token)
            refused = await web.request(method, path, json={}, headers={"Origin": origin})
            assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == origin
