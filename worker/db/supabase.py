"""The supabase database path: PostgREST RPC with the service role, Realtime broadcast wake-ups.

``rpc`` calls ``shopsync.<function>`` through the official async client (``supabase`` 2.x), so
results have PostgREST's shapes: a list of row dicts for set-returning functions, the bare JSON value
otherwise (timestamps and uuids arrive as strings; a ``void`` function answers 204, which supabase-py
turns into ``[]``). Failures become ``DatabaseError`` carrying PostgREST's ``code`` (the SQLSTATE, or
``PGRSTxxx`` for PostgREST's own errors).

Wake-ups: the enqueue trigger calls ``realtime.send(..., 'enqueued', 'shopsync_jobs', false)`` on
Supabase; we join the Broadcast channel ``shopsync_jobs`` and set an event per message. Wake-ups are
hints only (callers poll), so a Realtime outage is logged and survived, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from postgrest.exceptions import APIError
from realtime import AsyncRealtimeChannel, BroadcastPayload, RealtimeSubscribeStates
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from worker.config import Settings
from worker.db.port import JOBS_CHANNEL, WakeupSignal
from worker.db.values import to_json
from worker.errors import ConfigError, DatabaseError

__all__ = ["SCHEMA", "WAKEUP_EVENT", "SupabaseDatabase"]

log = logging.getLogger(__name__)

SCHEMA = "shopsync"
# Broadcast event the enqueue trigger sends on topic JOBS_CHANNEL.
WAKEUP_EVENT = "enqueued"

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_REDACTED = "[redacted]"


def _quiet_handshake_logs() -> None:
    """websockets logs the handshake request line at DEBUG, and it carries ``?apikey=<service key>``.

    Only a logger nobody configured is raised to INFO; an explicit choice is left alone."""
    handshake_log = logging.getLogger("websockets.client")
    if handshake_log.level == logging.NOTSET:
        handshake_log.setLevel(logging.INFO)


def _reraise_cancellation() -> None:
    """Python 3.11's ``wait_for`` can hand a cancellation of the caller back as TimeoutError (or a
    result); when the current task is being cancelled, an exception we swallow must not eat that."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class SupabaseDatabase:
    """``Database`` over supabase-py: PostgREST RPC calls and a Realtime Broadcast subscription."""

    def __init__(self, client: AsyncClient, http: httpx.AsyncClient, key: str, *,
                 realtime_timeout: float = 10.0, realtime_recheck: float = 30.0) -> None:
        self._client = client
        self._http = http
        self._key = key
        self._rest = client.schema(SCHEMA)   # shares ``http``; built once, not per call
        self._wakeup = WakeupSignal()
        self._channel: AsyncRealtimeChannel | None = None
        self._subscribed_before = False
        self._realtime_timeout = realtime_timeout
        self._realtime_recheck = realtime_recheck
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def connect(cls, settings: Settings, *, listen: bool = True, timeout: float = 60.0,
                      realtime_timeout: float = 10.0, realtime_recheck: float = 30.0) -> SupabaseDatabase:
        """Build the client and (with ``listen``) join the wake-up channel.

        ``timeout`` bounds each RPC; ``realtime_timeout`` bounds each Realtime join attempt, after which
        the worker goes on polling; a channel still down after ``realtime_recheck`` seconds (twice in a
        row) is re-joined from scratch.
        """
        if settings.supabase_url is None or settings.supabase_service_role_key is None:
            raise ConfigError("the supabase path needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY")
        key = settings.supabase_service_role_key.get_secret_value()
        _quiet_handshake_logs()
        # Our own HTTP client: we control timeouts and close it; postgrest-py never retries POSTs.
        # HTTP/1.1 on purpose: with HTTP/2, hpack's DEBUG log prints the (non-"sensitive") apikey header.
        http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0))
        options = AsyncClientOptions(
            schema=SCHEMA, httpx_client=http, auto_refresh_token=False, persist_session=False,
            realtime={"auto_reconnect": True, "max_retries": 5, "initial_backoff": 1.0},
        )
        try:
            client = await acreate_client(settings.supabase_url, key, options)
        except Exception as exc:
            await http.aclose()
            raise ConfigError(f"cannot create the Supabase client: {type(exc).__name__}: "
                              f"{str(exc).replace(key, _REDACTED)}") from None
        db = cls(client, http, key, realtime_timeout=realtime_timeout, realtime_recheck=realtime_recheck)
        if listen:
            await db._subscribe()
            db._watcher = asyncio.create_task(db._watch_realtime(), name="shopsync-realtime-watch")
        return db

    # --- calls ----------------------------------------------------------------------------------
    async def rpc(self, function: str, args: Mapping[str, Any] | None = None) -> Any:
        if not _NAME.match(function):
            raise DatabaseError(f"invalid function name {function!r}", "42602")
        params = {str(name): to_json(value) for name, value in (args or {}).items()}
        try:
            response = await self._rest.rpc(function, params).execute()
        except APIError as exc:
            message = exc.message or "request failed"
            raise DatabaseError(self._redact(message), exc.code) from None
        except httpx.HTTPError as exc:
            # Transport failure (connect, timeout, protocol): no SQLSTATE, like a lost direct connection.
            raise DatabaseError(self._redact(f"shopsync.{function}: {type(exc).__name__}: {exc}")) from None
        return response.data

    # --- wake-ups -------------------------------------------------------------------------------
    def _on_broadcast(self, _payload: BroadcastPayload) -> None:
        self._wakeup.set()

    def _on_subscribe_state(self, status: RealtimeSubscribeStates, error: Exception | None) -> None:
        if status is RealtimeSubscribeStates.SUBSCRIBED:
            log.info("Realtime: joined broadcast channel %s", JOBS_CHANNEL)
            if self._subscribed_before:
                self._wakeup.set()   # messages sent while we were away are lost: look now
            self._subscribed_before = True
        elif status is RealtimeSubscribeStates.CLOSED:
            log.debug("Realtime: channel %s closed", JOBS_CHANNEL)
        else:
            log.warning("Realtime: channel %s %s%s; job wake-ups fall back to polling", JOBS_CHANNEL,
                        status.value, f" ({self._describe(error)})" if error else "")

    async def _subscribe(self) -> None:
        """(Re)join the wake-up channel on a fresh channel. Failures are logged, never raised."""
        await self._drop_channels()
        channel = self._client.channel(JOBS_CHANNEL).on_broadcast(WAKEUP_EVENT, self._on_broadcast)
        self._channel = channel
        try:
            await asyncio.wait_for(channel.subscribe(self._on_subscribe_state), self._realtime_timeout)
        except Exception as exc:  # noqa: BLE001 - wake-ups are hints: never fail the worker for them
            _reraise_cancellation()
            log.warning("Realtime unavailable (%s); job wake-ups fall back to polling", self._describe(exc))

    async def _drop_channels(self) -> None:
        try:
            await asyncio.wait_for(self._client.remove_all_channels(), self._realtime_timeout)
        except Exception as exc:  # noqa: BLE001 - best effort: the socket may already be gone
            _reraise_cancellation()
            log.debug("Realtime: dropping channels failed (%s)", self._describe(exc))

    async def _watch_realtime(self) -> None:
        """Re-subscribe from scratch once the channel has been down for a whole check interval.

        The realtime client reconnects and rejoins by itself, but stops after ``max_retries`` failed
        connects and never retries a join whose first connect failed; this slow loop covers both
        without racing the client's own (faster) recovery.
        """
        down_before = False
        while not self._closed:
            await asyncio.sleep(self._realtime_recheck)
            down = self._channel is None or not self._channel.is_joined
            if down and down_before:
                await self._subscribe()
                down = self._channel is None or not self._channel.is_joined
            down_before = down

    async def write_synced(self, table: str, rows: Sequence[Mapping[str, Any]], *, job_id: int | None = None,
                           worker_id: str | None = None, keep: Sequence[str] = (),
                           fresh: bool = False) -> Mapping[str, int]:
        if not rows:
            return {"inserted": 0, "updated": 0, "skipped": 0}
        from worker.rpc.synced_writes import upsert_synced  # the façade names SQL functions, not the port

        return await upsert_synced(self, table=table, rows=rows, job_id=job_id, worker=worker_id, keep=keep)

    async def wait_for_wakeup(self, timeout: float) -> bool:
        return await self._wakeup.wait(timeout)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
            # bounded: a cancellation that lands inside the realtime client can be swallowed there
            await asyncio.wait([self._watcher], timeout=self._realtime_timeout)
        await self._drop_channels()
        await self._http.aclose()

    # --- helpers --------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return text.replace(self._key, _REDACTED) if self._key else text

    def _describe(self, exc: BaseException | None) -> str:
        if exc is None:
            return "unknown error"
        detail = self._redact(str(exc))
        return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
