"""What the list and single-object handlers share: the answer, date bounds and cached sort orders.

List responses carry ``X-WP-Total``, ``X-WP-TotalPages`` and one ``Link`` header per relation (``prev``/``next``).
As in WooCommerce, the links repeat *every* query parameter of the request verbatim (unencoded) — including
``consumer_key``/``consumer_secret`` or ``oauth_*`` ones — with ``page`` replaced. A page past the end is ``[]``
with the real totals. ``_fields`` trims list and single-object answers alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from sandbox.woocommerce.clock import query_literal
from sandbox.woocommerce.php import PhpValue, php_json
from sandbox.woocommerce.resources import select_fields
from sandbox.woocommerce.rest.context import Ctx, RestResult
from sandbox.woocommerce.rest.items import Item, item_bytes
from sandbox.woocommerce.rest.params import str_list
from sandbox.woocommerce.state import WooStore

__all__ = ["DateFilter", "by_include", "list_response", "ordered", "single"]


def _link_query(get: Mapping[str, PhpValue], page: int) -> str:
    """``add_query_arg($request->get_query_params(), ...)`` then ``page``: raw values, PHP-style arrays."""
    items: dict[str, PhpValue] = dict(get)
    items["page"] = str(page)
    parts: list[str] = []
    for key, value in items.items():
        if isinstance(value, str):
            parts.append(f"{key}={value}" if value != "" else key)
        else:
            pairs = enumerate(value) if isinstance(value, list) else value.items()
            parts.extend(f"{key}%5B{sub}%5D={v}" for sub, v in pairs)
    return "&".join(parts)


def list_response(ctx: Ctx, items: Sequence[Any], p: Mapping[str, Any], path: str,
                  make: Callable[[Any], Item] | None = None) -> RestResult:
    """One page of ``items`` (cache keys, or indexes turned into keys by ``make`` — only for the page)."""
    per_page = int(p["per_page"])
    page = int(p["page"])
    offset = p.get("offset")
    start = int(offset) if offset is not None else (page - 1) * per_page
    chunk = [make(x) if make else x for x in items[start:start + per_page]]
    total = len(items)
    max_pages = math.ceil(total / per_page)
    fields = _fields_param(ctx)
    if fields is None:
        body = b"[" + b",".join(item_bytes(ctx.store, item) for item in chunk) + b"]"
    else:
        body = php_json([select_fields(orjson.loads(item_bytes(ctx.store, item)), fields) for item in chunk])
    headers = [("X-WP-Total", str(total)), ("X-WP-TotalPages", str(max_pages))]
    base = f"{ctx.store.rest_url}{path}"
    if page > 1:
        headers.append(("Link", f'<{base}?{_link_query(ctx.req.get, min(page - 1, max_pages))}>; rel="prev"'))
    if max_pages > page:
        headers.append(("Link", f'<{base}?{_link_query(ctx.req.get, page + 1)}>; rel="next"'))
    return RestResult(200, body, headers)


def _fields_param(ctx: Ctx) -> list[str] | None:
    raw = ctx.req.get.get("_fields")
    if raw is None:
        return None
    return [f.strip() for f in str_list(raw) if f.strip()]


def single(ctx: Ctx, item: Item, status: int = 200, headers: list[tuple[str, str]] | None = None) -> RestResult:
    fields = _fields_param(ctx)
    raw = item_bytes(ctx.store, item)
    if fields is not None:
        raw = php_json(select_fields(orjson.loads(raw), fields))
    return RestResult(status, raw, headers or [])


class DateFilter:
    """after/before (created) and modified_after/modified_before, the way WP_Date_Query compares them."""

    def __init__(self, p: Mapping[str, Any], site_offset_s: int) -> None:
        self.shift = 0 if p.get("dates_are_gmt") else site_offset_s
        self.bounds: list[tuple[str, bool, int]] = []
        for name, column, after in (("after", "c", True), ("before", "c", False),
                                    ("modified_after", "m", True), ("modified_before", "m", False)):
            if p.get(name) is not None:
                literal = query_literal(str(p[name]), site_offset_s)
                assert literal is not None  # validated
                self.bounds.append((column, after, literal))

    def __bool__(self) -> bool:
        return bool(self.bounds)

    def ok(self, created: int, modified: int) -> bool:
        for column, after, literal in self.bounds:
            value = (created if column == "c" else modified) + self.shift
            if after and not value > literal:
                return False
            if not after and not value < literal:
                return False
        return True


def ordered(store: WooStore, kind: str, orderby: str, order: str, key: Callable[[int], Any], n: int) -> list[int]:
    asc = store.sorted_indexes(kind, orderby, lambda: sorted(range(n), key=key))
    return asc if order == "asc" else list(reversed(asc))


def by_include(indexes: list[int], include: list[int], id_of: Callable[[int], int]) -> list[int]:
    pos = {object_id: n for n, object_id in enumerate(include)}
    return sorted(indexes, key=lambda i: pos.get(id_of(i), len(pos)))
