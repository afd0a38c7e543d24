"""The direct database path: psycopg 3 async pool for calls, one LISTEN connection for wake-ups.

``rpc`` calls ``shopsync.<function>`` with named arguments cast to the function's declared types,
so it behaves like PostgREST's RPC (which the supabase path uses) and both paths share one set of
semantics: set-returning functions give a list of row dicts, others a scalar.

When the database stops answering (a restart, a failover), calls fail at once with an outage error
(``DatabaseError.outage``) instead of each waiting out the pool's timeout, and a probe connects every
0.2 s; once it gets through, a fresh pool replaces the old one (whose reconnection backs off
exponentially), so service resumes within a fraction of a second of the database's return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from worker.db.port import JOBS_CHANNEL, WakeupSignal
from worker.db.values import to_json
from worker.errors import DatabaseError
from worker.paths import query

__all__ = ["DirectDatabase"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
PROBE_INTERVAL = 0.2


@dataclass(frozen=True)
class _Signature:
    arg_types: dict[str, str]     # argument name → SQL type, as format_type() spells it
    returns_set: bool


def _dumps(value: Any) -> bytes:
    # orjson: raw jsonb of every synced row is serialized here at full-sync volume
    return orjson.dumps(value, default=to_json)


def _adapt(value: Any, sql_type: str) -> Any:
    # json(b) arguments may carry Decimals, datetimes and UUIDs (e.g. rows for upsert_synced)
    if sql_type in ("json", "jsonb") and value is not None:
        return Jsonb(value, dumps=_dumps)
    if sql_type in ("json[]", "jsonb[]") and value is not None:
        return [None if v is None else Jsonb(v, dumps=_dumps) for v in value]
    return value


class DirectDatabase:
    """``Database`` over a psycopg pool (calls) and a dedicated LISTEN connection (wake-ups)."""

    def __init__(self, dsn: str, pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]], pool_size: int = 8,
                 timeout: float = 5.0) -> None:
        self._dsn = dsn
        self._pool = pool
        self._pool_size = pool_size
        self._timeout = timeout
        self._available = True
        self._probe: asyncio.Task[None] | None = None
        self._signatures: dict[str, _Signature] = {}
        self._statements: dict[tuple[str, tuple[str, ...]], bytes] = {}
        self._table_types: dict[str, dict[str, str]] = {}
        self._wakeup = WakeupSignal()
        self._listener: asyncio.Task[None] | None = None
        self._closing = False

    @staticmethod
    def _new_pool(dsn: str, pool_size: int, timeout: float) -> AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]:
        return AsyncConnectionPool(dsn, min_size=1, max_size=pool_size, open=False, timeout=timeout,
                                   connection_class=psycopg.AsyncConnection[DictRow],
                                   kwargs={"autocommit": True, "row_factory": dict_row,
                                           "connect_timeout": max(1, round(timeout))})

    @classmethod
    async def connect(cls, dsn: str, pool_size: int = 8, *, listen: bool = True, timeout: float = 5.0,
                      wait: bool = True) -> DirectDatabase:
        """Open the pool. ``timeout``: how long a call waits for a connection, and a connection attempt for the
        server. With ``wait`` the database must answer within ``timeout`` (ConfigError-free DatabaseError
        otherwise); without, calls fail as outages until it does."""
        pool = cls._new_pool(dsn, pool_size, timeout)
        try:
            await pool.open(wait=wait, timeout=timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise DatabaseError(f"the database did not answer within {timeout:g} s ({type(exc).__name__})",
                                "08001") from None
        db = cls(dsn, pool, pool_size, timeout)
        if not wait:
            try:
                await pool.wait(timeout=min(timeout, 2.0))
            except psycopg.Error as exc:      # not answering yet: calls fail fast until the probe gets through
                db._error(exc)
        if listen:
            db._listener = asyncio.create_task(db._listen(), name="shopsync-listen")
        return db

    # --- calls ----------------------------------------------------------------------------------
    async def _signature(self, function: str) -> _Signature:
        sig = self._signatures.get(function)
        if sig is None:
            if not _NAME.match(function):
                raise DatabaseError(f"invalid function name {function!r}", "42602")
            async with self._pool.connection() as conn:
                rows = await (await conn.execute(query("function_signature"), {"name": function})).fetchall()
            if not rows:
                raise DatabaseError(f"function shopsync.{function} does not exist", "42883")
            if len(rows) > 1:
                raise DatabaseError(f"function shopsync.{function} is overloaded; rpc needs one signature", "42725")
            row = rows[0]
            sig = _Signature(dict(zip(row["arg_names"] or [], row["arg_types"] or [], strict=False)),
                             bool(row["returns_set"]))
            self._signatures[function] = sig
        return sig

    def _call_statement(self, function: str, sig: _Signature, names: tuple[str, ...],
                        conn: psycopg.AsyncConnection[DictRow]) -> bytes:
        # composed once per function and argument set: composing it is a tenth of a webhook job's CPU
        key = (function, names)
        stmt = self._statements.get(key)
        if stmt is None:
            call_args = sql.SQL(", ").join(
                sql.SQL("{} => {}::{}").format(sql.Identifier(name), sql.Placeholder(name),
                                              sql.SQL(sig.arg_types[name]))
                for name in names)
            fn = sql.Identifier("shopsync", function)
            if sig.returns_set:
                composed = sql.SQL("select * from {}({})").format(fn, call_args)
            else:
                composed = sql.SQL("select {}({}) as value").format(fn, call_args)
            stmt = self._statements[key] = composed.as_bytes(conn)
        return stmt

    # --- availability ---------------------------------------------------------------------------
    def _error(self, exc: psycopg.Error | BaseException) -> DatabaseError:
        """The DatabaseError for a failed call; an outage also closes the gate until the probe gets through."""
        diag = exc.diag if isinstance(exc, psycopg.Error) else None
        error = DatabaseError((diag.message_primary if diag else None) or str(exc).strip() or type(exc).__name__,
                              diag.sqlstate if diag else None)
        if error.outage and not self._closing:
            if self._available:
                log.warning("database unavailable (%s); probing every %.1f s", type(exc).__name__, PROBE_INTERVAL)
            self._available = False
            if self._probe is None or self._probe.done():
                self._probe = asyncio.create_task(self._probe_until_back(), name="shopsync-db-probe")
        return error

    def _check_available(self) -> None:
        if not self._available:
            raise DatabaseError("the database is unavailable; retry shortly", "08006")

    async def _probe_until_back(self) -> None:
        while not self._closing:
            try:
                conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True, connect_timeout=2)
                async with conn:
                    await conn.execute("select 1")
            except (psycopg.Error, OSError):
                await asyncio.sleep(PROBE_INTERVAL)
                continue
            # back: a fresh pool now (the old pool's reconnection backs off exponentially: 1, 2, 4, 8 s...)
            fresh = self._new_pool(self._dsn, self._pool_size, self._timeout)
            try:
                await fresh.open(wait=True, timeout=self._timeout)
            except psycopg.Error:
                await fresh.close()
                continue
            stale, self._pool = self._pool, fresh
            self._available = True
            log.warning("database available again")
            await stale.close(timeout=self._timeout)
            return

    @property
    def available(self) -> bool:
        return self._available

    async def rpc(self, function: str, args: Mapping[str, Any] | None = None) -> Any:
        args = dict(args or {})
        self._check_available()
        try:
            sig = await self._signature(function)
        except psycopg.Error as exc:
            raise self._error(exc) from None
        unknown = set(args) - set(sig.arg_types)
        if unknown:
            raise DatabaseError(f"shopsync.{function} has no argument(s) {', '.join(sorted(unknown))}", "42883")
        params = {k: _adapt(v, sig.arg_types[k]) for k, v in args.items()}
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(self._call_statement(function, sig, tuple(args), conn), params)
                rows: Sequence[dict[str, Any]] = await cur.fetchall()
        except psycopg.Error as exc:
            raise self._error(exc) from None
        if sig.returns_set:
            return list(rows)
        return rows[0]["value"] if rows else None

    async def _column_types(self, table: str) -> dict[str, str]:
        types = self._table_types.get(table)
        if types is None:
            async with self._pool.connection() as conn:
                cur = await conn.execute(query("table_columns"), {"table": table})
                types = {r["name"]: r["type"] for r in await cur.fetchall()}
            if not types:
                raise DatabaseError(f"not a synced table: {table}", "22023")
            self._table_types[table] = types
        return types

    async def write_synced(self, table: str, rows: Sequence[Mapping[str, Any]], *, job_id: int | None = None,
                           worker_id: str | None = None, keep: Sequence[str] = (),
                           fresh: bool = False) -> Mapping[str, int]:
        """COPY into a temp stage, then the same merge the supabase path uses (merge_staged). With
        ``fresh`` (a first full sync) COPY straight into the table first; any existing key sends the
        batch down the merge path instead."""
        if not rows:
            return {"inserted": 0, "updated": 0, "skipped": 0}
        columns = list(rows[0])
        self._check_available()
        try:
            types = await self._column_types(table)
        except psycopg.Error as exc:
            raise self._error(exc) from None
        json_columns = {c for c in columns if types.get(c) in ("json", "jsonb")}

        async def copy_rows(conn: psycopg.AsyncConnection[DictRow], target: sql.Composable) -> None:
            copy_sql = sql.SQL("copy {} ({}) from stdin").format(target, sql.SQL(", ").join(map(sql.Identifier,
                                                                                                columns)))
            # json(b) values go in as JSON text: COPY's text format parses each column by its type
            # (cheaper than a Jsonb wrapper and its dumper per value)
            positions = [i for i, c in enumerate(columns) if c in json_columns]
            # timestamptz values go in as ISO text too, each distinct one formatted once per batch: psycopg's
            # dumper costs several µs per value and rows share their times (a product's, the batch's read
            # time); an empty array is '{}' (the list dumper inspects every list)
            stamped = [i for i, c in enumerate(columns) if types.get(c) == "timestamp with time zone"]
            arrays = [i for i, c in enumerate(columns) if types.get(c, "").endswith("[]")]
            stamps: dict[datetime, str] = {}
            async with conn.cursor().copy(copy_sql) as copy:
                for row in rows:
                    values = [row[c] for c in columns]
                    for i in positions:
                        if values[i] is not None:
                            values[i] = _dumps(values[i]).decode()
                    for i in stamped:
                        if isinstance(stamp := values[i], datetime) and stamp.tzinfo is not None:
                            text = stamps.get(stamp)
                            if text is None:
                                text = stamps[stamp] = stamp.isoformat()
                            values[i] = text
                    for i in arrays:
                        if values[i] == []:
                            values[i] = "{}"
                    await copy.write_row(values)

        try:
            if fresh and await self._insert_fresh(table, rows, copy_rows, job_id, worker_id):
                return {"inserted": len(rows), "updated": 0, "skipped": 0}
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(sql.SQL("create temp table shopsync_stage on commit drop as "
                                           "select * from {} with no data").format(sql.Identifier("shopsync", table)))
                await copy_rows(conn, sql.Identifier("pg_temp", "shopsync_stage"))
                cur = await conn.execute(query("merge_stage"), {"table": table, "job_id": job_id, "worker": worker_id,
                                                                "keep": list(keep) or None})
                result = await cur.fetchone()
        except psycopg.Error as exc:
            raise self._error(exc) from None
        except KeyError as exc:
            raise DatabaseError(f"every row needs the same columns; one lacks {exc}", "22023") from None
        assert result is not None
        return {k: int(v) for k, v in result["r"].items()}

    async def _insert_fresh(self, table: str, rows: Sequence[Mapping[str, Any]], copy_rows: Any,
                            job_id: int | None, worker_id: str | None) -> bool:
        """COPY rows straight into ``shopsync.<table>``: True if all were new. The merge's other rules
        hold trivially for new rows, except the organization, which is checked against the store."""
        stores = {(str(r["store_id"]), str(r["organization_id"])) for r in rows}
        if len(stores) != 1:
            return False
        ((store_id, organization_id),) = stores
        async with self._pool.connection() as conn:
            try:
                async with conn.transaction():
                    cur = await conn.execute(query("fresh_insert_check"),
                                             {"job_id": job_id, "worker": worker_id, "store_id": store_id})
                    found = await cur.fetchone()
                    if found is None or found["org"] != organization_id or found["redactions"]:
                        return False
                    await copy_rows(conn, sql.Identifier("shopsync", table))
            except psycopg.errors.UniqueViolation:
                return False            # some keys exist (a resumed run, a webhook): merge this batch
        return True

    # --- wake-ups -------------------------------------------------------------------------------
    async def _listen(self) -> None:
        """Keep one LISTEN connection open; reconnect with backoff if it drops."""
        delay = 0.5
        while not self._closing:
            try:
                async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                    await conn.execute(sql.SQL("listen {}").format(sql.Identifier(JOBS_CHANNEL)))
                    delay = 0.5
                    self._wakeup.set()   # anything enqueued while we were away: look now
                    async for _ in conn.notifies():
                        self._wakeup.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: log, back off, reconnect
                if self._closing:   # psycopg may turn our cancellation into an error
                    return
                log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def wait_for_wakeup(self, timeout: float) -> bool:
        return await self._wakeup.wait(timeout)

    async def close(self) -> None:
        self._closing = True
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(5):
                    await self._listener
        await self._pool.close()
