"""Someone else's webhook endpoint: records every request (headers and exact body bytes) and answers with the
statuses it is told to (``answers``, then ``default``). The notification tests verify what it received with
the reference Standard Webhooks library."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sandbox.serving import serve_app

__all__ = ["Delivered", "WebhookReceiver", "serve_receiver"]


@dataclass(frozen=True)
class Delivered:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float


class WebhookReceiver:
    def __init__(self) -> None:
        self.requests: list[Delivered] = []
        self.answers: list[int] = []
        self.default = 204
        self._lock = threading.Lock()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            status = self.answers.pop(0) if self.answers else self.default
            self.requests.append(Delivered(request.url.path, dict(request.headers), body, status, time.time()))
        return PlainTextResponse("nope: not today" if status >= 400 else "", status_code=status)

    def accepted(self) -> list[Delivered]:
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]


@contextmanager
def serve_receiver(receiver: WebhookReceiver, *, port: int = 0) -> Iterator[str]:
    with serve_app(receiver.app(), port=port, name="webhook-receiver") as url:
        yield url
