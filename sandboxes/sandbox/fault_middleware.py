"""Serving one request through the fault injector: the scripted delay, then the fault's answer or the app.

Each sandbox's ASGI middleware (an ``HttpMiddleware``) classifies the request, takes its faults and keeps its own
counters and request log; ``serve_with_faults`` does the part they share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.faults import ScriptedFault

__all__ = ["FaultAnswers", "HttpMiddleware", "serve_with_faults"]

Sandbox = TypeVar("Sandbox")


class HttpMiddleware(Generic[Sandbox]):
    """A plain ASGI wrapper, so it sees every route (404s included): HTTP requests go to ``handle``."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class FaultAnswers:
    """How a platform's edge answers an injected fault."""

    body: Callable[[int], tuple[bytes, str]]  # status -> (body, content type)
    retry_after: Callable[[float], str]  # seconds -> the Retry-After header value
    headers: tuple[tuple[bytes, bytes], ...] = ()  # added to every fault answer


async def serve_with_faults(app: ASGIApp, scope: Scope, receive: Receive, send: Send,
                            taken: tuple[float, ScriptedFault | None], answers: FaultAnswers,
                            on_fault: Callable[[], None]) -> tuple[int, str | None]:
    """Sleep the taken latency, then answer the terminal rule (calling ``on_fault`` first) or run ``app``.

    -> (response status, 0 if the app sent none; ``"kind:status"`` of the injected fault or None).
    """
    latency, rule = taken
    if latency:
        await asyncio.sleep(latency)
    if rule is None:
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await app(scope, receive, send_noting_status)
        return status, None
    on_fault()
    if rule.kind == "hang":
        await asyncio.sleep(rule.seconds)
    body, ctype = answers.body(rule.status)
    if rule.body is not None:
        body = rule.body.encode()
    headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode()), *answers.headers]
    if rule.retry_after is not None:
        headers.append((b"retry-after", answers.retry_after(rule.retry_after).encode()))
    await send({"type": "http.response.start", "status": rule.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return rule.status, f"{rule.kind}:{rule.status}"
