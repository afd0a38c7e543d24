"""A minimal Supabase Realtime stand-in: Phoenix channels over ``/realtime/v1/websocket`` (vsn 1.0.0).

It speaks what the ``realtime`` Python client (2.x) sends and parses:

* connect: ``/realtime/v1/websocket?apikey=<jwt>&vsn=1.0.0``; the apikey must verify (HS256), else
  the handshake is refused (HTTP 403).
* frames are JSON objects ``{topic, event, payload, ref, join_ref}``.
* ``phx_join`` on ``realtime:<topic>`` → ``phx_reply`` ``{"status": "ok", "response": {"postgres_changes":
  []}}`` (the join's ``access_token`` must verify too; Postgres Changes are not supported and refused),
  ``phx_leave`` → ok, ``heartbeat`` on ``phoenix`` → ok, client ``broadcast`` → relayed to the topic's
  other members (and to the sender when its join asked for ``broadcast.self``), acked when asked.
* server broadcasts arrive as ``{"event": "broadcast", "payload": {"type": "broadcast", "event": ...,
  "payload": {...}, "meta": {"id": ...}}, "ref": null}`` — the shape ``on_broadcast`` callbacks get.

In place of Supabase's ``realtime.send()`` from the database, it LISTENs on PostgreSQL channels
(``shopsync_jobs`` by default, which the schema's enqueue trigger NOTIFYs) and relays each
notification as a broadcast (event ``enqueued``) to clients joined to ``realtime:<channel>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
import psycopg
from psycopg import sql
from starlette.applications import Starlette
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.standins.postgrest import decode_jwt, serve_app

__all__ = ["DEFAULT_RELAYS", "RealtimeStandin", "create_app", "serve_realtime"]

log = logging.getLogger(__name__)

# PostgreSQL NOTIFY channel → broadcast event sent to topic ``realtime:<channel>``.
DEFAULT_RELAYS: Mapping[str, str] = {"shopsync_jobs": "enqueued"}

_VSN = "1.0.0"


@dataclass
class _Join:
    join_ref: str | None
    echo: bool     # config.broadcast.self: the sender gets its own broadcasts
    ack: bool      # config.broadcast.ack: client broadcasts are acknowledged


@dataclass(eq=False)
class _Client:
    ws: WebSocket
    topics: dict[str, _Join] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, message: Mapping[str, Any]) -> None:
        async with self.lock:   # the relay task and the receive loop both send
            await self.ws.send_text(json.dumps(message))

    async def reply(self, msg: Mapping[str, Any], status: str, response: Mapping[str, Any]) -> None:
        await self.send({"topic": msg.get("topic"), "event": "phx_reply",
                         "payload": {"status": status, "response": dict(response)},
                         "ref": msg.get("ref"), "join_ref": msg.get("join_ref")})


class RealtimeStandin:
    """Routes and lifespan of the Realtime stand-in (``server.py`` mounts them next to PostgREST's)."""

    def __init__(self, dsn: str, jwt_secret: str, *, relays: Mapping[str, str] = DEFAULT_RELAYS) -> None:
        self._dsn = dsn
        self._secret = jwt_secret
        self._relays = dict(relays)
        self._clients: set[_Client] = set()
        self._relay_task: asyncio.Task[None] | None = None
        self.routes: list[BaseRoute] = [WebSocketRoute("/realtime/v1/websocket", self._endpoint)]

    # --- lifespan: LISTEN before serving, so nothing enqueued after start-up is missed ----------------
    @asynccontextmanager
    async def lifespan(self, _app: Starlette | None = None) -> AsyncIterator[None]:
        conn = await self._listen()
        self._relay_task = asyncio.create_task(self._relay(conn), name="realtime-standin-relay")
        try:
            yield
        finally:
            self._relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay_task
            self._relay_task = None

    async def _listen(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        for channel in self._relays:
            await conn.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
        return conn

    async def _relay(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Forward notifications as broadcasts; reconnect if the LISTEN connection drops."""
        while True:
            try:
                async with conn:
                    async for note in conn.notifies():
                        event = self._relays.get(note.channel)
                        if event is not None:
                            payload = _notify_payload(note.payload)
                            await self.broadcast(f"realtime:{note.channel}", event, payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - stand-in: log, retry
                log.warning("realtime stand-in: LISTEN connection lost (%s); reconnecting",
                            type(exc).__name__)
            while True:
                await asyncio.sleep(0.5)
                try:
                    conn = await self._listen()
                    break
                except psycopg.Error:
                    continue

    async def broadcast(self, topic: str, event: str, payload: Mapping[str, Any],
                        sender: _Client | None = None) -> int:
        """Send a broadcast to every client joined to ``topic``; returns how many got it."""
        message = {"topic": topic, "event": "broadcast", "ref": None, "join_ref": None,
                   "payload": {"type": "broadcast", "event": event, "payload": dict(payload),
                               "meta": {"id": str(uuid.uuid4())}}}
        sent = 0
        for client in list(self._clients):
            join = client.topics.get(topic)
            if join is None or (client is sender and not join.echo):
                continue
            try:
                await client.send(message)
            except Exception as exc:  # noqa: BLE001 - a client that went away is dropped by its own loop
                log.debug("realtime stand-in: broadcast to a closing socket failed (%s)", type(exc).__name__)
            else:
                sent += 1
        return sent

    # --- the socket --------------------------------------------------------------------------------
    def _valid(self, token: object) -> bool:
        if not isinstance(token, str) or not token:
            return False
        try:
            decode_jwt(token, self._secret)
        except jwt.InvalidTokenError:
            return False
        return True

    async def _endpoint(self, ws: WebSocket) -> None:
        vsn = ws.query_params.get("vsn", _VSN)
        if not self._valid(ws.query_params.get("apikey")) or vsn != _VSN:
            await ws.close(code=1008)   # before accept: the handshake is refused with HTTP 403
            return
        await ws.accept()
        client = _Client(ws)
        self._clients.add(client)
        try:
            while True:
                text = await ws.receive_text()
                try:
                    msg = json.loads(text)
                except ValueError:
                    continue
                if isinstance(msg, dict):
                    await self._handle(client, msg)
        except WebSocketDisconnect:
            pass
        finally:
            self._clients.discard(client)

    async def _handle(self, client: _Client, msg: dict[str, Any]) -> None:
        topic, event = msg.get("topic"), msg.get("event")
        raw = msg.get("payload")
        payload: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if topic == "phoenix" and event == "heartbeat":
            await client.reply(msg, "ok", {})
        elif event == "phx_join" and isinstance(topic, str):
            config = payload.get("config") or {}
            if "access_token" in payload and not self._valid(payload["access_token"]):
                await client.reply(msg, "error", {"reason": "Invalid JWT: access_token does not verify"})
            elif config.get("postgres_changes"):
                await client.reply(msg, "error", {"reason": "the Realtime stand-in only supports Broadcast"})
            else:
                broadcast = config.get("broadcast") or {}
                client.topics[topic] = _Join(msg.get("join_ref") or msg.get("ref"),
                                             echo=bool(broadcast.get("self")), ack=bool(broadcast.get("ack")))
                await client.reply(msg, "ok", {"postgres_changes": []})
        elif event == "phx_leave" and isinstance(topic, str):
            client.topics.pop(topic, None)
            await client.reply(msg, "ok", {})
        elif event == "access_token":
            if not self._valid(payload.get("access_token")) and isinstance(topic, str):
                client.topics.pop(topic, None)
                await client.send({"topic": topic, "event": "phx_close", "payload": {}, "ref": None})
        elif event == "broadcast" and isinstance(topic, str) and topic in client.topics:
            await self.broadcast(topic, str(payload.get("event", "")), payload.get("payload") or {},
                                 sender=client)
            if client.topics[topic].ack and msg.get("ref") is not None:
                await client.reply(msg, "ok", {})
        elif msg.get("ref") is not None:
            await client.reply(msg, "error", {"reason": f"unsupported event {event!r} on {topic!r}"})


def _notify_payload(text: str) -> dict[str, Any]:
    """NOTIFY payloads are text; a JSON object is passed through, anything else becomes ``{}``."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def create_app(dsn: str, jwt_secret: str, *, relays: Mapping[str, str] = DEFAULT_RELAYS) -> Starlette:
    standin = RealtimeStandin(dsn, jwt_secret, relays=relays)
    return Starlette(routes=standin.routes, lifespan=standin.lifespan)


@contextmanager
def serve_realtime(dsn: str, jwt_secret: str, *, port: int = 0) -> Iterator[str]:
    """The Realtime stand-in alone; clients connect to ``<url>/realtime/v1/websocket``."""
    with serve_app(create_app(dsn, jwt_secret), port=port) as url:
        yield url
