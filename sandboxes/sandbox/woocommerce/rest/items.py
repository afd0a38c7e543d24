"""The keys list and single-object answers are built from (``Item``), and the JSON bytes each stands for.

A list handler collects keys; only the keys on the page sent are turned into bytes, most of them from the store's
rendered-JSON cache.
"""

from __future__ import annotations

import weakref
from typing import Any

from sandbox.woocommerce.php import php_json
from sandbox.woocommerce.state import WooStore, _version_tuple

__all__ = ["STORE_WIDE_VARIATIONS_SINCE", "Item", "has_store_wide_variations", "item_bytes"]

Item = tuple[Any, ...]  # a cache key: ("p", i), ("pv", i, k), ("v", i, k), ("vw", i, k), ("o", o), ("c", j)


def item_bytes(store: WooStore, item: Item) -> bytes:
    kind = item[0]
    if kind == "p":
        return store.product_json(item[1])
    if kind == "pv":
        return store.variation_as_product_json(item[1], item[2])
    if kind == "v":
        return store.variation_json(item[1], item[2])
    if kind == "vw":
        return _store_wide_variation_json(store, item[1], item[2])
    if kind == "o":
        return store.order_json(item[1])
    if kind == "c":
        return store.customer_json(item[1])
    wh = store.webhooks[item[1]]
    return php_json(store.res.webhook(wh))


# GET /wc/v3/variations (WooCommerce 10.3+, class-wc-rest-variations-controller.php): the per-product controller
# with rest_base "variations" and no product_id, so WP_Query runs without post_parent and lists every variation.
STORE_WIDE_VARIATIONS_SINCE = (10, 3, 0)
# store -> (i, k) -> (the per-product bytes it was derived from, the store-wide bytes)
_STORE_WIDE_JSON: weakref.WeakKeyDictionary[WooStore, dict[tuple[int, int], tuple[bytes, bytes]]] = (
    weakref.WeakKeyDictionary())


def has_store_wide_variations(store: WooStore) -> bool:
    return _version_tuple(store.wc_version) >= STORE_WIDE_VARIATIONS_SINCE


def _store_wide_variation_json(store: WooStore, i: int, k: int) -> bytes:
    """The per-product item with the links WooCommerce builds on this route.

    ``parent_id`` is already in the per-product item (WC_REST_Variations_Controller sets the same key again, same
    value). ``prepare_links`` reads ``$request['product_id']``, absent here: self is ``/variations/{id}``,
    collection ``/variations`` and up ``/products/0``. Derived from the cached per-product bytes and re-derived
    only when those are re-rendered (the identity check), so a change to the variation shows up here too.
    """
    source = store.variation_json(i, k)
    cache = _STORE_WIDE_JSON.setdefault(store, {})
    hit = cache.get((i, k))
    if hit is not None and hit[0] is source:
        return hit[1]
    cut = source.rfind(b',"_links":')
    assert cut != -1 and source.endswith(b"}")
    base = f"{store.rest_url}/wc/v3"
    vid = int(store.catalog.p_ids[i]) + 1 + k
    links = php_json({"self": [{"href": f"{base}/variations/{vid}"}], "collection": [{"href": f"{base}/variations"}],
                      "up": [{"href": f"{base}/products/0"}]})
    raw = source[:cut] + b',"_links":' + links + b"}"
    cache[(i, k)] = (source, raw)
    return raw
