"""One look at the configured database, answered in one line: unreachable, authentication failed, no such
database, not migrated, or migrated (at which migration, and what is pending). ``shopsync check-config``
prints it; the other commands use ``describe_error`` so a connection problem is one line, never a traceback.
Messages name hosts and reasons, never passwords or keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import psycopg

from worker.config import DatabaseMode, Settings
from worker.migrate import migration_files

__all__ = ["Probe", "describe_error", "probe"]


@dataclass(frozen=True)
class Probe:
    ok: bool
    line: str


def describe_error(exc: BaseException) -> str:
    """What a failed connection attempt means, in a few words (no secret: libpq never echoes passwords)."""
    text = str(exc).strip()
    lower = text.lower()
    if "password authentication failed" in lower or "authentication failed" in lower or "no password" in lower:
        return "authentication failed (check the user and password in DATABASE_URL)"
    if "does not exist" in lower and "database" in lower:
        return "that database does not exist on the server"
    if "timeout" in lower or "timed out" in lower:
        return "unreachable (no answer in time)"
    if "connection refused" in lower:
        return "unreachable (connection refused: is the server running, on that host and port?)"
    if "could not translate host name" in lower or "name or service not known" in lower:
        return "unreachable (the host name does not resolve)"
    if "ssl" in lower:
        return f"unreachable (TLS: {text.splitlines()[0][:160]})"
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"unreachable ({first[:200]})"


def _migration_state(applied: list[str]) -> Probe:
    shipped = [f.name for f in migration_files()]
    pending = [m for m in shipped if m not in set(applied)]
    if not applied:
        return Probe(False, "reachable, but not migrated (run `shopsync migrate`)")
    latest = max(applied)
    if pending:
        return Probe(False, f"migrated up to {latest}; {len(pending)} pending (run `shopsync migrate`)")
    return Probe(True, f"migrated, up to date ({latest})")


def probe(settings: Settings, timeout: float | None = None) -> Probe:
    """Connect once (within ``timeout``, default ``SHOPSYNC_DB_TIMEOUT``) and say where the database stands."""
    wait = timeout if timeout is not None else settings.db_timeout
    if settings.db_mode is DatabaseMode.SUPABASE:
        return _probe_supabase(settings, wait)
    if settings.database_url is None:
        return Probe(False, "no database configured")
    try:
        with psycopg.connect(settings.database_url.get_secret_value(), connect_timeout=max(1, round(wait)),
                             autocommit=True) as conn:
            found = conn.execute("select to_regclass('shopsync_private.schema_migrations') is not null").fetchone()
            if not found or not found[0]:
                return Probe(False, "reachable, but not migrated (run `shopsync migrate`)")
            applied = [r[0] for r in conn.execute("select name from shopsync_private.schema_migrations")]
    except psycopg.Error as exc:
        return Probe(False, describe_error(exc))
    return _migration_state(applied)


def _probe_supabase(settings: Settings, wait: float) -> Probe:
    if settings.supabase_url is None or settings.supabase_service_role_key is None:
        return Probe(False, "SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY are both needed")
    key = settings.supabase_service_role_key.get_secret_value()
    try:
        response = httpx.post(f"{settings.supabase_url}/rest/v1/rpc/applied_migrations", json={}, timeout=wait,
                              headers={"apikey": key, "Authorization": f"Bearer {key}",
                                       "Content-Profile": "shopsync", "Accept-Profile": "shopsync"})
    except httpx.HTTPError as exc:
        return Probe(False, f"unreachable ({type(exc).__name__})")
    if response.status_code in (401, 403):
        return Probe(False, "authentication failed (check SUPABASE_SERVICE_ROLE_KEY)")
    if response.status_code in (404, 406) or (response.status_code == 400 and "schema" in response.text.lower()):
        return Probe(False, "reachable, but not migrated (run `shopsync migrate` with the project's DATABASE_URL)")
    if response.status_code != 200:
        return Probe(False, f"the project answered HTTP {response.status_code}")
    rows = response.json()
    return _migration_state([str(r.get("name")) for r in rows if isinstance(r, dict)])
