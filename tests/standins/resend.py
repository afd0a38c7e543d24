"""A Resend stand-in: ``POST /emails`` as Resend documents it (https://resend.com/docs/api-reference), a real
HTTP server for the notification tests and benchmarks.

* auth: ``Authorization: Bearer <key>``; none → 401 ``missing_api_key``, another key → 403 ``invalid_api_key``;
* body: JSON ``from``, ``to`` (string or up to 50), ``subject`` required (422 ``missing_required_field``),
  ``html``/``text``/``reply_to``/``headers``; a ``from`` whose domain is not verified → 403
  ``validation_error`` "The `x` domain is not verified. Please, add and verify your domain.";
* ``Idempotency-Key`` (1-256 characters, else 400 ``invalid_idempotency_key``), kept 24 hours: the same key
  with the same payload answers the first answer again without sending; with another payload 409
  ``invalid_idempotent_request``; while the first request with the key is still running 409
  ``concurrent_idempotent_requests``;
* success: 200 ``{"id": uuid}``; errors: ``{"statusCode", "name", "message"}``, always JSON;
* faults: ``down`` (every request 503 ``application_error``), ``fail_next`` (statuses answered to the next
  requests), ``lose_next_answers`` (the email is sent, then the answer is a 500 — a lost answer).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.serving import serve_app

__all__ = ["ResendStandin", "SentEmail", "serve_resend"]


@dataclass(frozen=True)
class SentEmail:
    id: str
    payload: dict[str, Any]
    idempotency_key: str | None
    sent_at: float = field(default_factory=time.time)


def _error(status: int, name: str, message: str) -> JSONResponse:
    return JSONResponse({"statusCode": status, "name": name, "message": message}, status_code=status)


class ResendStandin:
    def __init__(self, api_key: str = "re_test_key", verified_domains: tuple[str, ...] = ("example.com",)) -> None:
        self.api_key = api_key
        self.verified_domains = set(verified_domains)
        self.sent: list[SentEmail] = []
        self.requests = 0
        self.down = False
        self.fail_next: list[int] = []
        self.lose_next_answers = 0
        self._keys: dict[str, tuple[str, int, dict[str, Any]]] = {}     # key → (payload hash, status, answer)
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/emails", self._send, methods=["POST"])])

    async def _send(self, request: Request) -> Response:
        with self._lock:
            self.requests += 1
            if self.down:
                return _error(503, "application_error", "An unexpected error occurred.")
            if self.fail_next:
                status = self.fail_next.pop(0)
                return _error(status, "application_error" if status >= 500 else "rate_limit_exceeded",
                              "An unexpected error occurred." if status >= 500 else "Too many requests.")
        auth = request.headers.get("authorization")
        if not auth:
            return _error(401, "missing_api_key", "Missing API key in the authorization header.")
        if auth != f"Bearer {self.api_key}":
            return _error(403, "invalid_api_key", "API key is invalid.")
        raw = await request.body()
        try:
            payload = json.loads(raw)
        except ValueError:
            return _error(422, "validation_error", "Invalid JSON body.")
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 256:
            return _error(400, "invalid_idempotency_key", "The key must be between 1-256 chars.")
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        if key is not None:
            with self._lock:
                if key in self._running:
                    return _error(409, "concurrent_idempotent_requests",
                                  "Same idempotency key used while original request is still in progress.")
                seen = self._keys.get(key)
                if seen is not None:
                    if seen[0] != digest:
                        return _error(409, "invalid_idempotent_request",
                                      "Same idempotency key used with a different request payload.")
                    return JSONResponse(seen[2], status_code=seen[1])
                self._running.add(key)
        try:
            return self._accept(payload, key, digest)
        finally:
            if key is not None:
                with self._lock:
                    self._running.discard(key)

    def _accept(self, payload: dict[str, Any], key: str | None, digest: str) -> Response:
        missing = [f for f in ("from", "to", "subject") if not payload.get(f)]
        if missing:
            return _error(422, "missing_required_field", f"Missing `{missing[0]}` field.")
        to = payload["to"] if isinstance(payload["to"], list) else [payload["to"]]
        if len(to) > 50:
            return _error(422, "validation_error", "Too many recipients: the maximum is 50.")
        domain = str(payload["from"]).rsplit("@", 1)[-1].rstrip(">").lower()
        if domain not in self.verified_domains:
            return _error(403, "validation_error",
                          f"The {domain} domain is not verified. Please, add and verify your domain on "
                          "https://resend.com/domains")
        email = SentEmail(str(uuid.uuid4()), payload, key)
        answer = {"id": email.id}
        with self._lock:
            self.sent.append(email)
            if key is not None:
                self._keys[key] = (digest, 200, answer)
            if self.lose_next_answers > 0:
                self.lose_next_answers -= 1
                return _error(500, "application_error", "An unexpected error occurred.")
        return JSONResponse(answer)


@contextmanager
def serve_resend(standin: ResendStandin, *, port: int = 0) -> Iterator[str]:
    with serve_app(standin.app(), port=port, name="resend-standin") as url:
        yield url
