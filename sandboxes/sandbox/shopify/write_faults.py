"""How the GraphQL endpoint answers a write fault (``faults.py``: ``lost_answer``, ``slow_write``).

A lost answer of the ``drop`` kind sends the status line and headers (``content-length`` of the real answer)
and then lets the server close the connection: the client reads a broken response (httpx raises
``RemoteProtocolError``) after the write committed. uvicorn logs every such close as an error; the one log line
each deliberate drop causes is filtered out here, nothing else. The ``hang`` kind waits ``seconds`` (longer than
a client's timeout) and then answers 504 like the edge would.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sandbox.shopify.faults import fault_body
from sandbox.shopify.gql import GraphQLSyntaxError, collect_fields, parse, resolve_value

__all__ = ["LostAnswer", "mutation_fields"]

_INCOMPLETE = "ASGI callable returned without completing response."


class _DeliberateDrops(logging.Filter):
    """Swallows uvicorn's "without completing response" error once per drop this module caused."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = 0
        self.lock = threading.Lock()

    def expect(self) -> None:
        with self.lock:
            self.pending += 1

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() != _INCOMPLETE:
            return True
        with self.lock:
            if self.pending > 0:
                self.pending -= 1
                return False
        return True


_DROPS = _DeliberateDrops()
logging.getLogger("uvicorn.error").addFilter(_DROPS)


class LostAnswer(Response):
    """The answer to a committed write that never reaches the client."""

    def __init__(self, how: str, seconds: float, size: int) -> None:
        super().__init__()
        self.how = how
        self.seconds = seconds
        self.size = size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.how == "hang":
            await asyncio.sleep(self.seconds)
            body, ctype = fault_body(504)
            await send({"type": "http.response.start", "status": 504,
                        "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        _DROPS.expect()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(self.size).encode())]})
        # returning without the body: the server closes the connection mid-answer


def mutation_fields(query: str, variables: dict[str, Any] | None, operation_name: str | None) -> list[str]:
    """The root field names of the operation to run if it is a mutation, else []."""
    try:
        doc = parse(query)
        op = doc.operation(operation_name)
        if op.kind != "mutation":
            return []
        values = {k: resolve_value(v, {}) for k, v in op.variable_defaults.items() if v is not None}
        values.update(variables or {})
        return [f.name for f in collect_fields(op.selections, doc, values, "Mutation")]
    except GraphQLSyntaxError:
        return []
