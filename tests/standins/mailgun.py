"""A Mailgun stand-in: ``POST /v3/{domain}/messages`` as Mailgun documents it
(https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/messages), a real HTTP server for
the notification tests and benchmarks.

* auth: HTTP Basic, user ``api``, password the API key; anything else → 401 with the plain-text body
  ``Forbidden`` (not JSON, as Mailgun answers);
* the domain: unknown → 404 ``{"message": "Domain not found: x"}``; known but not verified → 403
  ``{"message": "Domain x is not allowed to send: ..."}``;
* body: multipart/form-data or urlencoded, fields may repeat (``to``); ``from``, ``to``, ``subject`` and one of
  ``text``/``html`` required, addresses checked → 400 ``{"message": ...}``; ``h:`` headers and ``v:``
  variables kept;
* success: 200 ``{"id": "<…@domain>", "message": "Queued. Thank you."}``; there is no idempotency key;
* faults: ``down`` (503), ``fail_next`` (statuses for the next requests), ``lose_next_answers`` (the message is
  queued, then the answer is a 503 — what a retry then does is what Mailgun users get: a second message).
"""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sandbox.serving import serve_app

__all__ = ["MailgunStandin", "QueuedMessage", "serve_mailgun"]

_ADDRESS = re.compile(r"^(?:[^<>]*<)?[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+>?$")


@dataclass(frozen=True)
class QueuedMessage:
    id: str
    domain: str
    fields: dict[str, list[str]]
    queued_at: float = field(default_factory=time.time)

    def first(self, name: str) -> str:
        return self.fields.get(name, [""])[0]


class MailgunStandin:
    def __init__(self, api_key: str = "key-test", domains: tuple[str, ...] = ("mg.example.com",),
                 unverified: tuple[str, ...] = ()) -> None:
        self.api_key = api_key
        self.domains = set(domains) | set(unverified)
        self.unverified = set(unverified)
        self.queued: list[QueuedMessage] = []
        self.requests = 0
        self.down = False
        self.fail_next: list[int] = []
        self.lose_next_answers = 0
        self._lock = threading.Lock()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v3/{domain}/messages", self._send, methods=["POST"])])

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(token).decode().partition(":")
        except ValueError:
            return False
        return user == "api" and password == self.api_key

    async def _send(self, request: Request) -> Response:
        with self._lock:
            self.requests += 1
            if self.down:
                return PlainTextResponse("Service Unavailable", status_code=503)
            if self.fail_next:
                status = self.fail_next.pop(0)
                return JSONResponse({"message": "Too many requests" if status == 429 else "Internal Server Error"},
                                    status_code=status)
        if not self._authorized(request):
            return PlainTextResponse("Forbidden", status_code=401)
        domain = request.path_params["domain"]
        if domain not in self.domains:
            return JSONResponse({"message": f"Domain not found: {domain}"}, status_code=404)
        if domain in self.unverified:
            return JSONResponse({"message": f"Domain {domain} is not allowed to send: The domain is unverified and "
                                            "requires DNS configuration. Log in to your control panel to view "
                                            "required DNS records."}, status_code=403)
        form = await request.form()
        fields: dict[str, list[str]] = {}
        for name, value in form.multi_items():
            fields.setdefault(name, []).append(value if isinstance(value, str) else (await value.read()).decode())
        for name in ("from", "to", "subject"):
            if not fields.get(name):
                return JSONResponse({"message": f"'{name}' parameter is missing"}, status_code=400)
        if not (fields.get("text") or fields.get("html")):
            return JSONResponse({"message": "Need at least one of 'text', 'html', 'amp-html' or 'template' "
                                            "parameters specified"}, status_code=400)
        for name in ("from", "to"):
            for value in fields[name]:
                if not all(_ADDRESS.match(a.strip()) for a in value.split(",")):
                    return JSONResponse({"message": f"{name} parameter is not a valid address. please check "
                                                    "documentation"}, status_code=400)
        message = QueuedMessage(f"<{time.strftime('%Y%m%d%H%M%S')}.{uuid.uuid4().hex[:12]}@{domain}>", domain, fields)
        with self._lock:
            self.queued.append(message)
            if self.lose_next_answers > 0:
                self.lose_next_answers -= 1
                return PlainTextResponse("Service Unavailable", status_code=503)
        return JSONResponse({"id": message.id, "message": "Queued. Thank you."})


@contextmanager
def serve_mailgun(standin: MailgunStandin, *, port: int = 0) -> Iterator[str]:
    with serve_app(standin.app(), port=port, name="mailgun-standin") as url:
        yield url
