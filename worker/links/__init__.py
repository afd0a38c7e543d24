"""Product links: a source variant's price and stock pushed to a target SKU (``push``), target values read back
on a schedule (``reconcile``), each link's rules (``rules``). SQL: ``sql/functions/62_product_links.sql``."""

from __future__ import annotations

from worker.jobs.registry import JobRegistry
from worker.links.push import push_handler
from worker.links.reconcile import reconcile_handler

__all__ = ["register_jobs"]


def register_jobs(registry: JobRegistry) -> None:
    registry.register("links.push", push_handler)
    registry.register("links.reconcile", reconcile_handler)
