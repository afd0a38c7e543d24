"""A minimal PostgREST stand-in: ``POST /rest/v1/rpc/{function}`` over the real SQL functions.

It does what PostgREST (behind Supabase's gateway) does for an RPC, so the supabase path can be tested
without a Supabase project:

* auth: an ``apikey`` header and/or ``Authorization: Bearer <jwt>`` (HS256, the project's JWT secret);
  the token's ``role`` claim becomes the transaction's role and all its claims go into
  ``request.jwt.claims``, both transaction-local, exactly like PostgREST.
* schema: ``Content-Profile`` (``public`` when absent); only ``shopsync`` and ``public`` are exposed.
* call: the function is looked up in pg_catalog by name and by the JSON body's keys (overloads are
  told apart the way PostgREST does) and called with named arguments taken from
  ``json_to_record(body)`` typed with the declared argument types — PostgREST's own technique, so
  json/jsonb, arrays, timestamps and uuids convert identically.
* result: a JSON array for set-returning functions, an object for a single composite, the bare JSON
  value for scalars, ``204 No Content`` for ``void``.
* errors: ``{code, message, details, hint}`` with PostgREST's SQLSTATE → HTTP status table.

The JWT helpers live here too (``realtime.py`` and ``server.py`` reuse them); servers run through
``sandbox.serving.serve_app``, the runner the platform sandboxes use.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.serving import serve_app

__all__ = [
    "API_ROLES",
    "EXPOSED_SCHEMAS",
    "PostgrestStandin",
    "create_app",
    "decode_jwt",
    "make_jwt",
    "pg_error_status",
    "serve_app",
    "serve_postgrest",
]

EXPOSED_SCHEMAS = ("shopsync", "public")
API_ROLES = ("anon", "authenticated", "service_role")
ANON_ROLE = "anon"


# --- JWTs ------------------------------------------------------------------------------------------

def make_jwt(secret: str, role: str, sub: str | None = None, *, expires_in: float = 3600.0,
             **claims: Any) -> str:
    """Mint an HS256 token shaped like Supabase's (anon/service_role keys, user access tokens)."""
    now = int(time.time())
    payload: dict[str, Any] = {"iss": "supabase-standin", "role": role, "iat": now,
                               "exp": now + int(expires_in)}
    if role == "authenticated":
        payload["aud"] = "authenticated"
    if sub is not None:
        payload["sub"] = sub
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


def decode_jwt(token: str, secret: str) -> dict[str, Any]:
    """Verify signature and expiry; raises ``jwt.InvalidTokenError``. ``aud`` is not checked (PostgREST
    only checks it when jwt-aud is configured, and Supabase does not configure it)."""
    claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False})
    if not isinstance(claims, dict):
        raise jwt.InvalidTokenError("claims are not an object")
    return claims


# --- errors ----------------------------------------------------------------------------------------

def pg_error_status(sqlstate: str | None, *, authenticated: bool) -> int:
    """PostgREST's SQLSTATE → HTTP status table (docs: References › Errors › HTTP Status Codes)."""
    code = sqlstate or ""
    exact = {"23503": 409, "23505": 409, "25006": 405, "53400": 500, "P0001": 400, "42883": 404,
             "42P01": 404, "42P17": 500}
    if code in exact:
        return exact[code]
    if code == "42501":
        return 403 if authenticated else 401
    if code.startswith("PT") and code[2:].isdigit():
        return int(code[2:])
    prefixes = {"08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500,
                "39": 500, "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500,
                "F0": 500, "HV": 500, "P0": 500, "XX": 500}
    return prefixes.get(code[:2], 400) if code else 500


def _error(status: int, code: str | None, message: str, details: str | None = None, hint: str | None = None,
           headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"code": code, "details": details, "hint": hint, "message": message}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _jwt_error(message: str) -> JSONResponse:
    challenge = f'Bearer error="invalid_token", error_description="{message}"'
    return _error(401, "PGRST301", message, headers={"WWW-Authenticate": challenge})


# --- function lookup -------------------------------------------------------------------------------

_LOOKUP = """
select p.proretset as returns_set,
       p.prorettype = 'void'::regtype as returns_void,
       (t.typtype = 'c' or p.prorettype = 'record'::regtype) as returns_composite,
       p.pronargs as nargs,
       p.pronargdefaults as ndefaults,
       coalesce(p.proargnames, '{}') as arg_names,
       coalesce(p.proargmodes::text[], '{}') as arg_modes,
       array(select format_type(a.oid, null)
               from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality a(oid, n)
              order by a.n) as arg_types
  from pg_proc p
  join pg_namespace ns on ns.oid = p.pronamespace
  join pg_type t on t.oid = p.prorettype
 where ns.nspname = %s and p.proname = %s and p.prokind = 'f'
"""


@dataclass(frozen=True)
class _Function:
    returns_set: bool
    returns_void: bool
    returns_composite: bool
    inputs: dict[str, str]      # input argument name → SQL type, in declaration order
    required: frozenset[str]    # inputs without a default

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> _Function:
        names: list[str] = list(row["arg_names"])
        modes: list[str] = list(row["arg_modes"]) or ["i"] * len(row["arg_types"])
        types: list[str] = list(row["arg_types"])
        inputs = [(names[i] if i < len(names) else "", types[i])
                  for i, mode in enumerate(modes) if mode in ("i", "b", "v")]
        n_required = int(row["nargs"]) - int(row["ndefaults"])
        return cls(returns_set=bool(row["returns_set"]), returns_void=bool(row["returns_void"]),
                   returns_composite=bool(row["returns_composite"]),
                   inputs={name: typ for name, typ in inputs if name},
                   required=frozenset(name for name, _ in inputs[:n_required]))

    def accepts(self, keys: set[str]) -> bool:
        return keys <= set(self.inputs) and self.required <= keys


def _call_statement(schema: str, function: str, fn: _Function, keys: list[str]) -> sql.Composed:
    """The SELECT that calls ``fn`` with the body's keys and renders PostgREST's response as text."""
    target = sql.Identifier(schema, function)
    args = sql.SQL(", ").join(sql.SQL("{name} => _args.{name}").format(name=sql.Identifier(k)) for k in keys)
    sources: list[sql.Composable] = []
    if keys:
        columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(k), sql.SQL(fn.inputs[k]))
                                     for k in keys)
        sources.append(sql.SQL("json_to_record({}::json) as _args({})").format(sql.Placeholder(), columns))
    call = sql.SQL("{}({})").format(target, args)
    select: sql.Composable
    if fn.returns_set:
        sources.append(sql.SQL("{} _r").format(call))
        select = sql.SQL("coalesce(json_agg(_r), '[]'::json)::text")
    elif fn.returns_composite:
        sources.append(sql.SQL("{} _r").format(call))
        select = sql.SQL("to_json(_r)::text")
    elif fn.returns_void:
        select = call
    else:
        select = sql.SQL("to_json({})::text").format(call)
    if not sources:
        return sql.SQL("select {}").format(select)
    return sql.SQL("select {} from {}").format(select, sql.SQL(", ").join(sources))


# --- the app ---------------------------------------------------------------------------------------

class PostgrestStandin:
    """Routes and lifespan of the RPC stand-in (``server.py`` mounts them next to Realtime's)."""

    def __init__(self, dsn: str, jwt_secret: str, *, pool_size: int = 8) -> None:
        self._dsn = dsn
        self._secret = jwt_secret
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]] | None = None
        self.routes: list[BaseRoute] = [Route("/rest/v1/rpc/{function}", self._rpc, methods=["POST"])]

    @asynccontextmanager
    async def lifespan(self, _app: Starlette | None = None) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(self._dsn, min_size=1, max_size=self._pool_size, open=False,
                                   connection_class=psycopg.AsyncConnection[DictRow],
                                   kwargs={"autocommit": True, "row_factory": dict_row})
        await pool.open(wait=True, timeout=30)
        self._pool = pool
        try:
            yield
        finally:
            self._pool = None
            await pool.close()

    def _authenticate(self, request: Request) -> dict[str, Any] | JSONResponse:
        """Gateway + PostgREST auth: claims of the request's JWT, or the 401 to answer with."""
        apikey = request.headers.get("apikey")
        authorization = request.headers.get("authorization")
        if not apikey and not authorization:
            return _error(401, None, "No API key found in request",
                          hint="No `apikey` request header or url param was found.")
        if apikey:
            try:
                decode_jwt(apikey, self._secret)
            except jwt.InvalidTokenError:
                return _error(401, None, "Invalid API key",
                              hint="Double check your Supabase `anon` or `service_role` API key.")
        token = apikey
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                return _jwt_error("Authorization header is not a Bearer token")
            token = value.strip()
        assert token is not None
        try:
            return decode_jwt(token, self._secret)
        except jwt.ExpiredSignatureError:
            return _jwt_error("JWT expired")
        except jwt.InvalidTokenError as exc:
            return _jwt_error(f"JWT invalid: {type(exc).__name__}")

    async def _rpc(self, request: Request) -> Response:
        claims = self._authenticate(request)
        if isinstance(claims, JSONResponse):
            return claims
        role = claims.get("role") or ANON_ROLE
        if role not in API_ROLES:
            return _error(400, "22023", f'role "{role}" does not exist')
        authenticated = role != ANON_ROLE

        schema = request.headers.get("content-profile") or "public"
        if schema not in EXPOSED_SCHEMAS:
            return _error(406, "PGRST106", "Invalid schema: " + schema,
                          hint="Only the following schemas are exposed: " + ", ".join(EXPOSED_SCHEMAS))

        function = request.path_params["function"]
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            return _error(400, "PGRST102", "Empty or invalid json", details=str(exc))
        if not isinstance(body, dict):
            return _error(400, "PGRST102", "The request body must be a JSON object of named arguments")
        keys = list(body)

        pool = self._pool
        if pool is None:
            return _error(503, "PGRST001", "The stand-in is not running")
        async with pool.connection() as conn:
            rows = await (await conn.execute(_LOOKUP, (schema, function))).fetchall()
            matches = [fn for fn in map(_Function.from_row, rows) if fn.accepts(set(keys))]
            if not matches:
                params = ", ".join(sorted(keys))
                return _error(404, "PGRST202",
                              f"Could not find the function {schema}.{function}({params}) "
                              "in the schema cache",
                              hint="No function matches the given name and argument names.")
            if len(matches) > 1:
                return _error(300, "PGRST203",
                              f"Could not choose the best candidate function between overloads of "
                              f"{schema}.{function}")
            fn = matches[0]
            statement = _call_statement(schema, function, fn, keys)
            try:
                async with conn.transaction():
                    # PostgREST's per-request preamble: transaction-local search_path, claims, role.
                    await conn.execute(
                        "select set_config('search_path', %s, true),"
                        " set_config('request.jwt.claims', %s, true),"
                        " set_config('request.method', 'POST', true),"
                        " set_config('request.path', %s, true),"
                        " set_config('role', %s, true)",
                        (f'"{schema}", "public"', json.dumps(claims), request.url.path, role))
                    cur = await conn.execute(statement, (json.dumps(body),) if keys else None)
                    row = await cur.fetchone()
            except psycopg.Error as exc:
                diag = exc.diag
                status = pg_error_status(diag.sqlstate, authenticated=authenticated)
                return _error(status, diag.sqlstate, diag.message_primary or str(exc).strip(),
                              diag.message_detail, diag.message_hint)
        if fn.returns_void:
            return Response(status_code=204)
        text = next(iter(row.values())) if row else None
        return Response(text if text is not None else "null", media_type="application/json")


def create_app(dsn: str, jwt_secret: str) -> Starlette:
    standin = PostgrestStandin(dsn, jwt_secret)
    return Starlette(routes=standin.routes, lifespan=standin.lifespan)


# --- running ---------------------------------------------------------------------------------------

@contextmanager
def serve_postgrest(dsn: str, jwt_secret: str, *, port: int = 0) -> Iterator[str]:
    """The PostgREST stand-in alone; the yielded base URL serves ``/rest/v1/rpc/...``."""
    with serve_app(create_app(dsn, jwt_secret), port=port) as url:
        yield url
