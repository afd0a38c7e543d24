"""Database paths behind one port; ``open_database`` picks one from the settings."""

from __future__ import annotations

from worker.config import DatabaseMode, Settings
from worker.db.port import JOBS_CHANNEL, Database
from worker.errors import ConfigError

__all__ = ["Database", "JOBS_CHANNEL", "open_database"]


async def open_database(settings: Settings, *, listen: bool = True, wait: bool = True) -> Database:
    """The configured database path. ``wait``: the database must answer now (else DatabaseError); without,
    calls fail as outages until it does (the web process starts and answers /healthz meanwhile)."""
    problems = settings.problems(need_sealing=False)
    if problems:
        raise ConfigError("; ".join(problems))
    if settings.db_mode is DatabaseMode.SUPABASE:
        from worker.db.supabase import SupabaseDatabase

        return await SupabaseDatabase.connect(settings, listen=listen)
    from worker.db.direct import DirectDatabase

    assert settings.database_url is not None
    return await DirectDatabase.connect(settings.database_url.get_secret_value(), settings.db_pool_size,
                                        listen=listen, timeout=settings.db_timeout, wait=wait)
