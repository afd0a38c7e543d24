"""The synced-resource catalog (``sql/functions/00_catalog.sql``), as shopsync's processes read it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from worker.db.port import Database
from worker.rpc._function import sql

__all__ = ["CatalogTable", "synced_catalog", "synced_record_counts"]

_CATALOG = sql("synced_catalog", "setof")
_COUNTS = sql("synced_record_counts", "jsonb", p_store_id="uuid")


@dataclass(frozen=True)
class CatalogTable:
    table_name: str
    resource: str
    key_columns: tuple[str, ...]
    version_column: str | None
    soft_delete: bool
    reconcile: bool
    observed_column: str | None = None      # when the platform's state was read: the tie-breaker's column


async def synced_catalog(db: Database) -> list[CatalogTable]:
    """Every synced table, in the catalog's order (resource by resource)."""
    return [CatalogTable(str(r["table_name"]), str(r["resource"]), tuple(r["key_columns"]), r["version_column"],
                         bool(r["soft_delete"]), bool(r["reconcile"]), r["observed_column"])
            for r in await _CATALOG.rows(db)]


async def synced_record_counts(db: Database, *, store_id: UUID) -> dict[str, int]:
    return {str(k): int(v) for k, v in (await _COUNTS(db, p_store_id=store_id) or {}).items()}
