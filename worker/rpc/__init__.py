"""The typed façade over shopsync's SQL functions: the only place Python names one.

One module per SQL domain (the files of ``sql/functions/``): ``queue``, ``stores`` (stores and
credentials), ``connect``, ``syncs``, ``synced_writes``, ``webhook_inbox``, ``gdpr``, ``rate_limits``,
``admin``, ``maintenance``, ``catalog``, ``events`` and ``notifications``. Each function takes the
``Database`` port first and keyword arguments after, and returns typed values. Every SQL function
called here is declared once with its argument types (``SqlFunction``); ``tests/test_rpc_facade.py``
checks each declaration against the migrated database, so a renamed or changed SQL function fails
the tests, not production.
"""

from worker.rpc._function import SQL_FUNCTIONS, SqlFunction

__all__ = ["SQL_FUNCTIONS", "SqlFunction"]
