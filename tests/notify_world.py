"""The notification tests' world: shopsync's web process on a real port, a worker on the test's loop, and the
providers as real servers — the mail sink (aiosmtpd), the Resend and Mailgun stand-ins, a webhook receiver —
with an organization, its owner and a store. Channels are created the way a frontend does it: through
``POST /notifications/channels`` with the owner's Supabase token."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import jwt
import psycopg
import pytest

from sandbox.mail_sink import MailSink
from sandbox.serving import serve_app
from tests.conftest import as_role, new_user, personal_org
from tests.platform_world import AppWorld, free_port
from tests.standins.mailgun import MailgunStandin, serve_mailgun
from tests.standins.resend import ResendStandin, serve_resend
from tests.standins.webhook_receiver import WebhookReceiver, serve_receiver
from worker.config import Settings
from worker.db.direct import DirectDatabase
from worker.notify.delivery import NOTIFIER
from worker.notify.settings import NotifySettings
from worker.runtime import build_registry
from worker.sealing import generate_key_spec
from worker.web.app import create_app

__all__ = ["APP_URL", "JWT_SECRET", "NotifyWorld", "token"]

JWT_SECRET = "notify-test-jwt-secret-with-at-least-32-characters"
APP_URL = "https://app.example.com"


def token(user: UUID) -> str:
    now = int(time.time())
    return jwt.encode({"sub": str(user), "aud": "authenticated", "role": "authenticated", "iat": now,
                       "exp": now + 600}, JWT_SECRET, algorithm="HS256")


@dataclass(kw_only=True)
class NotifyWorld(AppWorld):
    sink: MailSink
    resend: ResendStandin
    resend_url: str
    mailgun: MailgunStandin
    receiver: WebhookReceiver
    receiver_url: str
    notify: NotifySettings
    owner: UUID
    org: UUID
    store: UUID

    async def post(self, path: str, body: Any, user: UUID | None = None, method: str = "POST") -> httpx.Response:
        async with self.web as web:
            return await web.request(method, path, json=body,
                                     headers={"Authorization": f"Bearer {token(user or self.owner)}"})

    async def channel(self, kind: str, config: dict[str, Any], secret: dict[str, Any] | None = None,
                      name: str | None = None) -> dict[str, Any]:
        answer = await self.post("/notifications/channels", {"organization_id": str(self.org), "name": name or kind,
                                                             "kind": kind, "config": config, "secret": secret})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def smtp_config(self, **extra: Any) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.sink.port, "security": "none", "from": "Shop alerts <alerts@example.com>",
                "to": ["ops@example.com"], **extra}

    def rule(self, channel: Any, **args: Any) -> Any:
        named = "".join(f", {k} => %({k})s" for k in args)
        with as_role(self.conn, "authenticated", self.owner):
            return self.scalar(f"select shopsync.create_notification_rule(%(c)s{named})", {"c": channel, **args})

    def event(self, type: str = "job.dead", subject: str = "shopify.sync", details: str | None = None) -> int:
        details = details or '{"kind": "shopify.sync", "resource": "orders", "attempts": 10, "error": "boom"}'
        return int(self.scalar("select shopsync.record_event(%s, %s, %s, %s::jsonb)",
                               (self.store, type, subject, details)))

    def notifications(self, channel: Any | None = None) -> list[dict[str, Any]]:
        return self.conn.execute("select * from shopsync.notifications where %s::uuid is null or channel_id = %s "
                                 "order by id", (channel, channel)).fetchall()

    def sent(self, channel: Any) -> bool:
        rows = self.notifications(channel)
        return bool(rows) and all(r["status"] == "sent" for r in rows)


@pytest.fixture
async def notify_world(dsn: str, conn: psycopg.Connection[dict[str, Any]],
                       monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NotifyWorld]:
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    resend, mailgun, receiver = ResendStandin(), MailgunStandin(unverified=("unverified.example.com",)), \
        WebhookReceiver()
    owner = new_user(conn)
    org = personal_org(conn, owner)
    store = conn.execute("select shopsync.upsert_store(%s, 'shopify', 'demo.myshopify.com', 'Demo shop') as s",
                         (org,)).fetchone()["s"]  # type: ignore[index]
    with MailSink() as sink, serve_resend(resend) as resend_url, serve_mailgun(mailgun) as mailgun_url, \
            serve_receiver(receiver) as receiver_url:
        core = Settings(_env_file=None, database_url=dsn, sealing_keys=generate_key_spec("test"),  # type: ignore[call-arg]
                        public_url=web_url, frontend_url=APP_URL, local_dev=True, supabase_jwt_secret=JWT_SECRET)
        notify = NotifySettings(_env_file=None, resend_api_url=resend_url, mailgun_api_url=mailgun_url,  # type: ignore[call-arg]
                                retry_base_seconds=0.1, retry_max_seconds=0.5, send_timeout_seconds=5)
        monkeypatch.setattr(NOTIFIER, "_settings", notify)
        db = await DirectDatabase.connect(dsn, listen=True)
        try:
            with serve_app(create_app(core), port=port, name="shopsync-web"):
                yield NotifyWorld(web_url=web_url, core=core, db=db, conn=conn, registry=build_registry(), sink=sink,
                                  resend=resend, resend_url=resend_url, mailgun=mailgun, receiver=receiver,
                                  receiver_url=receiver_url, notify=notify, owner=owner, org=org, store=store)
        finally:
            await db.close()
