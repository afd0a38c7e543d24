"""``links.reconcile``: read back what a target store shows for its linked SKUs.

No platform webhook fires for every price or stock change on the target's side (TikTok has none for prices and
only low/out-of-stock alerts for stock; orders placed there lower stock), so the schedule
(``enqueue_link_reconciles``, hourly per target store) reads every linked product back. Where the target shows
something other than what it last confirmed, the link forgets the confirmation; a push is requested for every
product either way, and pushes only send what differs from the source after the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.connectors import registry
from worker.errors import PermanentError
from worker.jobs.registry import Job, JobContext
from worker.rpc import product_links, stores

__all__ = ["reconcile_handler"]


async def reconcile_handler(job: Job, jctx: JobContext) -> Mapping[str, Any]:
    if job.store_id is None:
        raise PermanentError(f"links.reconcile job {job.id} names no store")
    store = await stores.get_store(jctx.db, store_id=job.store_id)
    if store is None or store["status"] != "active":
        return {"skipped": "the target store is not active"}
    contract = registry.connector(str(store["platform"])).contract
    if contract.open_writer is None:
        return {"skipped": f"{contract.display_name} stores take no pushes"}
    products = await product_links.linked_target_products(jctx.db, target_store_id=job.store_id)
    drifted = 0
    async with contract.open_writer(jctx, {**store, "id": job.store_id}) as writer:
        for product in products:
            state = await writer.read_group(product)
            observed = {sku: {"price": None if item.price is None else str(item.price),
                              "quantity": sum(item.levels.values()) if item.levels else None}
                        for sku, item in state.items.items()}
            drifted += await product_links.note_link_readback(jctx.db, target_store_id=job.store_id,
                                                              product_id=product, observed=observed)
    return {"products": len(products), "drifted": drifted}
