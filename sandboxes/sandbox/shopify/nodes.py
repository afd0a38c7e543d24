"""GraphQL node shapes and REST (webhook) payloads built from ``dataset`` records.

GraphQL nodes are *full* dicts — every modelled field — with nested connections as ``LazyConnection``
and argument-taking fields as ``LazyValue``; ``project.Projector`` keeps what the request selected. The
types bulk exports stream by the hundred thousand (products, variants, inventory, orders, line items, money)
are ``NodeType``s — field getters over a per-node context — so an export computes only what it selects
(``*_view`` builders) from the same definitions that make the full dicts.
Scalar encodings follow the Admin API: IDs are GIDs, ``DateTime`` is second-precision UTC, ``Money`` and
``Decimal`` are strings, ``UnsignedInt64`` (``numberOfOrders``) is a string.

REST payloads follow the shape of Shopify's webhook bodies (snake_case, lowercase enums, comma-joined
tags, ``admin_graphql_api_id``).
"""

# long module: the GraphQL node renderer table: one builder per Admin API type over shared helpers.

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from sandbox.shopify.clock import format_gql, format_rest
from sandbox.shopify.dataset import LOCATION_BASE, MAX_CHILDREN, Catalog, decode_cursor, encode_cursor, money
from sandbox.shopify.gql import LazyConnection, LazyValue
from sandbox.shopify.project import FieldError

if TYPE_CHECKING:
    from sandbox.shopify.state import Shop

__all__ = ["MAX_PAGE_SIZE", "ArgField", "ConnField", "NodeBuilder", "NodeType", "ObjField", "TypedNode",
           "connection", "gid", "page_args", "parse_gid"]

MAX_PAGE_SIZE = 250
T = TypeVar("T")

QUANTITY_NAMES = ("available", "on_hand", "committed", "incoming", "reserved", "damaged", "safety_stock",
                  "quality_control")


def gid(kind: str, legacy_id: int | str) -> str:
    return f"gid://shopify/{kind}/{legacy_id}"


def parse_gid(value: Any) -> tuple[str, int] | None:
    """``gid://shopify/Product/123`` (query string allowed) -> ("Product", 123)."""
    if not isinstance(value, str) or not value.startswith("gid://shopify/"):
        return None
    kind, _, rest = value[len("gid://shopify/"):].partition("/")
    num = rest.split("?", 1)[0]
    return (kind, int(num)) if num.isdigit() else None


def page_args(args: dict[str, Any]) -> tuple[int | None, int | None, str | None, str | None]:
    """Validate ``first``/``last``/``after``/``before`` the way the Admin API does."""
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise FieldError("you must provide one of first or last", "argumentLiteralsIncompatible")
    for name, value in (("first", first), ("last", last)):
        if value is None:
            continue
        if not isinstance(value, int) or value < 0:
            raise FieldError(f"Argument '{name}' must be a non-negative integer", "argumentLiteralsIncompatible")
        if value > MAX_PAGE_SIZE:
            # Sandbox wording; the rule (a page holds at most 250 nodes) is Shopify's.
            raise FieldError(f"The '{name}' argument cannot exceed {MAX_PAGE_SIZE}.", "MAX_PAGE_SIZE_EXCEEDED",
                             maximum=MAX_PAGE_SIZE)
    after, before = args.get("after"), args.get("before")
    return first, last, after if isinstance(after, str) else None, before if isinstance(before, str) else None


def connection(nodes: list[Any], cursors: list[str], has_next: bool, has_previous: bool) -> dict[str, Any]:
    return {
        "edges": [{"cursor": c, "node": n} for n, c in zip(nodes, cursors, strict=True)],
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def list_connection(items: Sequence[T], build: Callable[[T], dict[str, Any]], key: Callable[[T], int],
                    args: dict[str, Any]) -> dict[str, Any]:
    """A connection over a small in-memory list (variants of a product, line items of an order)."""
    first, last, after, before = page_args(args)
    lo, hi = 0, len(items)
    if after:
        decoded = decode_cursor(after)
        if decoded is None:
            raise FieldError("Invalid cursor", "invalidCursor")
        lo = next((p + 1 for p, it in enumerate(items) if key(it) == decoded[0]), len(items))
    if before:
        decoded = decode_cursor(before)
        if decoded is None:
            raise FieldError("Invalid cursor", "invalidCursor")
        hi = next((p for p, it in enumerate(items) if key(it) == decoded[0]), 0)
    window = list(items[lo:hi])
    if first is not None:
        chosen, has_next, has_prev = window[:first], len(window) > first, lo > 0
    else:
        n = last or 0
        chosen = window[-n:] if n else []
        has_next, has_prev = hi < len(items), len(window) > len(chosen)
    nodes = [build(it) for it in chosen]
    cursors = [encode_cursor(key(it), key(it)) for it in chosen]
    return connection(nodes, cursors, has_next, has_prev)


def _first_n(items: list[T], args: dict[str, Any]) -> list[T]:
    first = args.get("first")
    return items[:first] if isinstance(first, int) else items


# --- typed nodes ----------------------------------------------------------------------------------------------
#
# The busiest types (products, variants, inventory items and levels, orders, line items, money) are defined as
# field getters over a small per-node context object. ``NodeType.node`` turns one into the full node dict that
# ``project.Projector`` cuts down for a request; a bulk export (``bulk.RenderPlan``) calls only the getters its
# query selects. One definition serves both, so they cannot drift apart.

class ArgField:
    """A field that takes arguments: ``fn(ctx, args)``; a ``LazyValue`` in the full node."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any, dict[str, Any]], Any]) -> None:
        self.fn = fn


class ConnField:
    """A nested connection: ``page(ctx, args)`` answers a request, ``nodes(ctx)`` yields every node typed."""

    __slots__ = ("nodes", "page")

    def __init__(self, page: Callable[[Any, dict[str, Any]], dict[str, Any]],
                 nodes: Callable[[Any], Iterator[TypedNode]]) -> None:
        self.page = page
        self.nodes = nodes


class ObjField:
    """A nested object of a typed kind: ``view(ctx)`` gives it (or None)."""

    __slots__ = ("view",)

    def __init__(self, view: Callable[[Any], TypedNode | None]) -> None:
        self.view = view


FieldDef = Callable[[Any], Any] | ArgField | ConnField | ObjField


class NodeType:
    """A GraphQL object type: ``__typename`` plus named field definitions over a context object."""

    def __init__(self, name: str, fields: dict[str, FieldDef]) -> None:
        self.name = name
        self.fields: dict[str, FieldDef] = {"__typename": lambda _c: name, **fields}
        self._full = tuple((field_name, _full_getter(d)) for field_name, d in self.fields.items())
        self._id = dict(self._full).get("id")

    def node(self, ctx: Any) -> dict[str, Any]:
        """The full node: every field, argument-taking ones as ``LazyValue``, connections as ``LazyConnection``."""
        return {field_name: get(ctx) for field_name, get in self._full}

    def owner_id(self, ctx: Any) -> str:
        """``str(node.get("id"))`` of the full node, without building it."""
        return str(self._id(ctx) if self._id is not None else None)


TypedNode = tuple[NodeType, Any]


def _full_getter(d: FieldDef) -> Callable[[Any], Any]:
    if isinstance(d, ArgField):
        fn = d.fn
        return lambda ctx: LazyValue(partial(fn, ctx))
    if isinstance(d, ConnField):
        page, nodes = d.page, d.nodes
        return lambda ctx: LazyConnection(partial(page, ctx), partial(_full_nodes, nodes, ctx))
    if isinstance(d, ObjField):
        view = d.view
        return lambda ctx: _full_node(view(ctx))
    return d


def _full_nodes(nodes: Callable[[Any], Iterator[TypedNode]], ctx: Any) -> Iterator[dict[str, Any]]:
    return (ntype.node(c) for ntype, c in nodes(ctx))


def _full_node(view: TypedNode | None) -> dict[str, Any] | None:
    return None if view is None else view[0].node(view[1])


# --- money ---------------------------------------------------------------------------------------------------

class _Money:
    __slots__ = ("amount", "currency")

    def __init__(self, cents: Any, currency: str) -> None:
        self.amount = money(cents)
        self.currency = currency


MONEY = NodeType("MoneyV2", {"amount": lambda c: c.amount, "currencyCode": lambda c: c.currency})
MONEY_BAG = NodeType("MoneyBag", {"shopMoney": ObjField(lambda c: (MONEY, c)),
                                  "presentmentMoney": ObjField(lambda c: (MONEY, c))})


def _money_bag(cents: int, currency: str) -> dict[str, Any]:
    return MONEY_BAG.node(_Money(cents, currency))


def _bag(cents: Callable[[Any], Any]) -> ObjField:
    """A ``MoneyBag`` field in the context's currency (``ctx.cur``)."""
    return ObjField(lambda c: (MONEY_BAG, _Money(cents(c), c.cur)))


# --- products ------------------------------------------------------------------------------------------------

class _Product:
    __slots__ = ("b", "i", "pid", "rec", "variants")

    def __init__(self, b: NodeBuilder, i: int) -> None:
        self.b = b
        self.i = i
        self.rec = rec = b.catalog.product(i)
        self.variants = b.catalog.variants(i, rec)
        self.pid = gid("Product", rec["id"])


def _options(c: _Product) -> list[dict[str, Any]]:
    option_names: dict[str, list[str]] = {}
    for v in c.variants:
        for name, value in v["options"]:
            values = option_names.setdefault(name, [])
            if value not in values:
                values.append(value)
    return [{"__typename": "ProductOption", "id": gid("ProductOption", c.rec["id"] * 10 + n),
             "name": name, "position": n + 1, "values": values}
            for n, (name, values) in enumerate(option_names.items())]


PRODUCT = NodeType("Product", {
    "id": lambda c: c.pid,
    "legacyResourceId": lambda c: str(c.rec["id"]),
    "title": lambda c: c.rec["title"],
    "handle": lambda c: c.rec["handle"],
    "status": lambda c: c.rec["status"],
    "vendor": lambda c: c.rec["vendor"],
    "productType": lambda c: c.rec["product_type"],
    "tags": lambda c: list(c.rec["tags"]),
    "descriptionHtml": lambda c: c.rec["description"],
    "description": lambda c: str(c.rec["description"]).replace("<p>", "").replace("</p>", ""),
    "createdAt": lambda c: format_gql(c.rec["created_us"]),
    "updatedAt": lambda c: format_gql(c.rec["updated_us"]),
    "publishedAt": lambda c: format_gql(c.rec["created_us"]) if c.rec["status"] == "ACTIVE" else None,
    "templateSuffix": lambda c: None,
    "onlineStoreUrl": lambda c: None,
    "tracksInventory": lambda c: True,
    "isGiftCard": lambda c: False,
    "totalInventory": ArgField(lambda c, _a: sum(c.b.catalog.inventory_total(c.i, int(v["index"]))
                                                 for v in c.variants)),
    "variantsCount": lambda c: {"count": len(c.variants), "precision": "EXACT"},
    "options": _options,
    "variants": ConnField(
        lambda c, args: list_connection(c.variants, lambda v: c.b.variant(c.i, int(v["index"]), c.rec, v),
                                        lambda v: int(v["id"]), args),
        lambda c: (c.b.variant_view(c.i, int(v["index"]), c.rec, v) for v in c.variants)),
})


class _Variant:
    __slots__ = ("b", "i", "k", "product", "rec", "vid")

    def __init__(self, b: NodeBuilder, i: int, k: int, product: dict[str, Any] | None,
                 rec: dict[str, Any] | None) -> None:
        self.b = b
        self.i = i
        self.k = k
        self.product = product = product or b.catalog.product(i)
        self.rec = rec = rec or b.catalog.variant(i, k, product)
        self.vid = gid("ProductVariant", rec["id"])


VARIANT = NodeType("ProductVariant", {
    "id": lambda c: c.vid,
    "legacyResourceId": lambda c: str(c.rec["id"]),
    "title": lambda c: c.rec["title"],
    "displayName": lambda c: f"{c.product['title']} - {c.rec['title']}",
    "sku": lambda c: c.rec["sku"],
    "barcode": lambda c: c.rec["barcode"],
    "price": lambda c: money(c.rec["price_cents"]),
    "compareAtPrice": lambda c: money(c.rec["compare_at_cents"]),
    "position": lambda c: c.rec["position"],
    "taxable": lambda c: c.rec["taxable"],
    "inventoryPolicy": lambda c: c.rec["inventory_policy"],
    "availableForSale": lambda c: c.product["status"] == "ACTIVE",
    "inventoryQuantity": ArgField(lambda c, _a: c.b.catalog.inventory_total(c.i, c.k)),
    "selectedOptions": lambda c: [{"__typename": "SelectedOption", "name": n, "value": v}
                                  for n, v in c.rec["options"]],
    "createdAt": lambda c: format_gql(c.rec["created_us"]),
    "updatedAt": lambda c: format_gql(c.rec["updated_us"]),
    # the whole product, built only when selected (look-ups by SKU read its title, status, vendor, ...)
    "product": ArgField(lambda c, _a: c.b.product(c.i)),
    "inventoryItem": ObjField(lambda c: c.b.item_view(c.i, c.k, c.rec, c.vid)),
})


class _Item:
    __slots__ = ("b", "gid", "i", "k", "locations", "variant", "variant_gid")

    def __init__(self, b: NodeBuilder, i: int, k: int, variant: dict[str, Any], variant_gid: str) -> None:
        self.b = b
        self.i = i
        self.k = k
        self.variant = variant
        self.variant_gid = variant_gid
        self.gid = gid("InventoryItem", variant["inventory_item_id"])
        self.locations = [j for j, loc in enumerate(b.catalog.locations)
                          if loc["active"] and (i, k, j) not in b.catalog.unstocked]


def _level_for(c: _Item, args: dict[str, Any]) -> dict[str, Any] | None:
    parsed = parse_gid(args.get("locationId"))
    j = c.b.catalog.location_index(parsed[1]) if parsed else None
    if j is None or not c.b.catalog.stocked(c.i, c.k, j):
        return None  # null where the item is not stocked, as Shopify answers
    return c.b.inventory_level(c.i, c.k, j, c.variant)


def _duplicate_skus(c: _Item) -> int:
    sku = c.variant["sku"]
    return max(len(c.b.catalog.variants_with_sku(str(sku))) - 1, 0) if sku else 0


ITEM = NodeType("InventoryItem", {
    "id": lambda c: c.gid,
    "legacyResourceId": lambda c: str(c.variant["inventory_item_id"]),
    "sku": lambda c: c.variant["sku"],
    "tracked": lambda c: True,
    "requiresShipping": lambda c: True,
    "duplicateSkuCount": _duplicate_skus,
    "createdAt": lambda c: format_gql(c.variant["created_us"]),
    "updatedAt": lambda c: format_gql(c.variant["updated_us"]),
    "variant": lambda c: {"__typename": "ProductVariant", "id": c.variant_gid},
    "inventoryLevel": ArgField(_level_for),
    "inventoryLevels": ConnField(
        lambda c, args: list_connection(c.locations, lambda j: c.b.inventory_level(c.i, c.k, j, c.variant),
                                        lambda j: LOCATION_BASE + j + 1, args),
        lambda c: (c.b.level_view(c.i, c.k, j, c.variant) for j in c.locations)),
})


class _Level:
    __slots__ = ("gid", "loc", "lvl", "updated")

    def __init__(self, b: NodeBuilder, i: int, k: int, j: int, variant: dict[str, Any] | None) -> None:
        self.lvl = lvl = b.catalog.inventory_level(i, k, j, variant)
        self.loc = loc = b.catalog.locations[j]
        self.updated = format_gql(lvl["updated_us"])
        self.gid = f"gid://shopify/InventoryLevel/{loc['id']}?inventory_item_id={lvl['inventory_item_id']}"


def _quantities(c: _Level, args: dict[str, Any]) -> list[dict[str, Any]]:
    lvl = c.lvl  # has available / on_hand / committed and no other quantity name: the rest are 0
    names = args.get("names") or ["available"]
    return [{"__typename": "InventoryQuantity", "id": None, "name": n, "quantity": lvl.get(n, 0),
             "updatedAt": c.updated} for n in names if n in QUANTITY_NAMES]


LEVEL = NodeType("InventoryLevel", {
    "id": lambda c: c.gid,
    "location": lambda c: {"__typename": "Location", "id": gid("Location", c.loc["id"]), "name": c.loc["name"]},
    "item": lambda c: {"__typename": "InventoryItem", "id": gid("InventoryItem", c.lvl["inventory_item_id"])},
    "quantities": ArgField(_quantities),
    "canDeactivate": lambda c: True,
    "createdAt": lambda c: format_gql(c.loc["created_us"]),
    "updatedAt": lambda c: c.updated,
})


# --- orders --------------------------------------------------------------------------------------------------

class _Order:
    __slots__ = ("b", "buyer", "cur", "gid", "lines", "rec")

    def __init__(self, b: NodeBuilder, o: int) -> None:
        self.b = b
        self.rec, self.buyer = b.catalog.order_with_customer(o)
        self.cur = str(self.rec["currency"])
        self.lines: list[dict[str, Any]] = self.rec["line_items"]
        self.gid = gid("Order", self.rec["id"])


def _order_customer(c: _Order) -> dict[str, Any] | None:
    rec = c.rec
    if rec["customer_id"] is None:
        return None
    # ``buyer`` is None exactly when ``customer_index`` is (then int(None) fails, as it always did)
    cust = c.buyer if c.buyer is not None else c.b.catalog.customer(int(rec["customer_index"]))
    return {"__typename": "Customer", "id": gid("Customer", rec["customer_id"]),
            "legacyResourceId": str(rec["customer_id"]), "email": cust["email"], "firstName": cust["first_name"],
            "lastName": cust["last_name"], "displayName": f"{cust['first_name']} {cust['last_name']}"}


def fulfillment_lines(f: dict[str, Any], lines: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    """(fulfillment line item id, line item id, quantity) of a fulfillment; a generated one holds every line."""
    if "line_items" in f:
        return [(int(a), int(b), int(q)) for a, b, q in f["line_items"]]
    return [(int(li["id"]), int(li["id"]), int(li["quantity"])) for li in lines]


def tracking_of(f: dict[str, Any]) -> list[dict[str, Any]]:
    """A fulfillment's tracking entries ``{company, number, url}`` (a generated one has exactly one)."""
    return list(f["tracking"]) if "tracking" in f else [{"company": f["company"], "number": f["number"],
                                                         "url": f["url"]}]


def _fulfillment(c: _Order, f: dict[str, Any]) -> dict[str, Any]:
    tracking = [{"__typename": "FulfillmentTrackingInfo", "company": t["company"], "number": t["number"],
                 "url": t["url"]} for t in tracking_of(f)]
    by_id = {int(li["id"]): li for li in c.lines}
    entries = fulfillment_lines(f, c.lines)
    loc = c.b.catalog.locations[int(f.get("location_index", 0))] if c.b.catalog.locations else None

    def line(entry: tuple[int, int, int]) -> dict[str, Any]:
        fli_id, li_id, qty = entry
        li = by_id.get(li_id)
        price = int(li["price_cents"]) if li else 0
        return {"__typename": "FulfillmentLineItem", "id": gid("FulfillmentLineItem", fli_id), "quantity": qty,
                "lineItem": c.b.line_item(li, c.rec) if li else None,
                "originalTotalSet": _money_bag(price * qty, c.cur),
                "discountedTotalSet": _money_bag(price * qty, c.cur)}

    status = str(f["status"])
    return {
        "__typename": "Fulfillment",
        "id": gid("Fulfillment", f["id"]),
        "legacyResourceId": str(f["id"]),
        "name": f.get("name") or f"{c.rec['name']}.1",
        "status": status,
        "displayStatus": "CANCELED" if status == "CANCELLED" else "FULFILLED",
        "trackingInfo": LazyValue(lambda a: _first_n(tracking, a)),
        "location": {"__typename": "Location", "id": gid("Location", loc["id"]), "name": loc["name"]} if loc else None,
        "totalQuantity": sum(q for _, _, q in entries),
        "requiresShipping": True,
        "deliveredAt": None,
        "estimatedDeliveryAt": None,
        "inTransitAt": None,
        "fulfillmentLineItems": LazyConnection(lambda a: list_connection(entries, line, lambda e: e[0], a),
                                               lambda: (line(e) for e in entries)),
        "createdAt": format_gql(f["created_us"]),
        "updatedAt": format_gql(f["updated_us"]),
    }


def _refund(r: dict[str, Any], cur: str) -> dict[str, Any]:
    return {"__typename": "Refund", "id": gid("Refund", r["id"]), "note": None,
            "totalRefundedSet": _money_bag(r["amount_cents"], cur), "createdAt": format_gql(r["created_us"]),
            "updatedAt": format_gql(r["created_us"])}


ORDER = NodeType("Order", {
    "id": lambda c: c.gid,
    "legacyResourceId": lambda c: str(c.rec["id"]),
    "name": lambda c: c.rec["name"],
    "email": lambda c: c.rec["email"],
    "phone": lambda c: c.rec["phone"],
    "displayFinancialStatus": lambda c: c.rec["financial_status"],
    "displayFulfillmentStatus": lambda c: c.rec["fulfillment_status"],
    "currencyCode": lambda c: c.cur,
    "presentmentCurrencyCode": lambda c: c.cur,
    "subtotalPriceSet": _bag(lambda c: c.rec["subtotal_cents"]),
    "totalPriceSet": _bag(lambda c: c.rec["total_cents"]),
    "currentTotalPriceSet": _bag(lambda c: int(c.rec["total_cents"]) - int(c.rec["refunded_cents"])),
    "totalTaxSet": _bag(lambda c: c.rec["tax_cents"]),
    "totalDiscountsSet": _bag(lambda c: c.rec["discount_cents"]),
    "totalShippingPriceSet": _bag(lambda c: c.rec["shipping_cents"]),
    "totalRefundedSet": _bag(lambda c: c.rec["refunded_cents"]),
    "totalLineItemsPriceSet": _bag(lambda c: sum(int(li["price_cents"]) * int(li["quantity"]) for li in c.lines)),
    "customer": _order_customer,
    "shippingAddress": lambda c: c.b.mailing_address(c.rec["shipping_address"], "Address"),
    "billingAddress": lambda c: c.b.mailing_address(c.rec["billing_address"], "Address"),
    "tags": lambda c: list(c.rec["tags"]),
    "note": lambda c: c.rec["note"],
    "test": lambda c: bool(c.rec.get("test", False)),
    "poNumber": lambda c: c.rec.get("po_number"),
    "confirmed": lambda c: True,
    "closed": lambda c: c.rec["closed_us"] is not None,
    "cancelReason": lambda c: str(c.rec.get("cancel_reason") or "other").upper() if c.rec["cancelled_us"] else None,
    "sourceName": lambda c: c.rec["source_name"],
    "sourceIdentifier": lambda c: c.rec["source_identifier"],
    "customAttributes": lambda c: [{"__typename": "Attribute", "key": a["key"], "value": a["value"]}
                                   for a in c.rec["custom_attributes"]],
    "processedAt": lambda c: format_gql(c.rec["processed_us"]),
    "cancelledAt": lambda c: format_gql(c.rec["cancelled_us"]),
    "closedAt": lambda c: format_gql(c.rec["closed_us"]),
    "createdAt": lambda c: format_gql(c.rec["created_us"]),
    "updatedAt": lambda c: format_gql(c.rec["updated_us"]),
    "lineItems": ConnField(
        lambda c, args: list_connection(c.lines, lambda li: c.b.line_item(li, c.rec), lambda li: int(li["id"]), args),
        lambda c: (c.b.line_item_view(li, c.rec) for li in c.lines)),
    "fulfillments": ArgField(lambda c, a: _first_n([_fulfillment(c, f) for f in c.rec["fulfillments"]], a)),
    # fulfillment orders live in the shop's write state (``writes.fulfillment``), made on first use
    "fulfillmentOrders": ConnField(lambda c, args: c.b.shop.writes.fulfillment_orders_page(c.rec, args),
                                   lambda c: c.b.shop.writes.fulfillment_order_views(c.rec)),
    "refunds": ArgField(lambda c, a: _first_n([_refund(r, c.cur) for r in c.rec["refunds"]], a)),
})


class _LineItem:
    __slots__ = ("b", "cur", "disc", "gid", "li", "order", "price", "qty")

    def __init__(self, b: NodeBuilder, li: dict[str, Any], order: dict[str, Any]) -> None:
        self.b = b
        self.li = li
        self.order = order
        self.cur = str(order.get("currency") or b.currency)
        self.qty, self.price, self.disc = int(li["quantity"]), int(li["price_cents"]), int(li["discount_cents"])
        self.gid = gid("LineItem", li["id"])


def _line_product(c: _LineItem) -> dict[str, Any] | None:
    li = c.li
    if li["product_id"] is None or c.b.catalog.products.live_index(int(li["product_id"])) is None:
        return None
    return {"__typename": "Product", "id": gid("Product", li["product_id"])}


def _line_variant(c: _LineItem) -> dict[str, Any] | None:
    li = c.li
    if li["product_id"] is None or li["variant_id"] is None \
            or c.b.catalog.products.live_index(int(li["product_id"])) is None \
            or c.b.catalog.variant_by_id(int(li["variant_id"])) is None:
        return None
    return {"__typename": "ProductVariant", "id": gid("ProductVariant", li["variant_id"])}


LINE_ITEM = NodeType("LineItem", {
    "id": lambda c: c.gid,
    "title": lambda c: c.li["title"],
    "name": lambda c: f"{c.li['title']} - {c.li['variant_title']}" if c.li["variant_title"] else c.li["title"],
    "sku": lambda c: c.li["sku"],
    "vendor": lambda c: c.li["vendor"],
    "quantity": lambda c: c.qty,
    "currentQuantity": lambda c: c.qty,
    "unfulfilledQuantity": lambda c: 0 if c.order["fulfillment_status"] == "FULFILLED" else
    c.qty - int(c.li.get("fulfilled_quantity", 0)),
    "variantTitle": lambda c: c.li["variant_title"],
    "taxable": lambda c: True,
    "requiresShipping": lambda c: True,
    "originalUnitPriceSet": _bag(lambda c: c.price),
    "discountedUnitPriceSet": _bag(lambda c: c.price - c.disc // max(c.qty, 1)),
    "originalTotalSet": _bag(lambda c: c.price * c.qty),
    "totalDiscountSet": _bag(lambda c: c.disc),
    "product": _line_product,
    "variant": _line_variant,
})


class NodeBuilder:
    """GraphQL nodes of one shop: ``product(i)`` etc. give full node dicts, ``*_view`` the typed form."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.catalog: Catalog = shop.catalog
        self.currency = shop.catalog.spec.currency

    # --- products --------------------------------------------------------------------------------------

    def product(self, i: int) -> dict[str, Any]:
        return PRODUCT.node(_Product(self, i))

    def product_view(self, i: int) -> TypedNode:
        return PRODUCT, _Product(self, i)

    def variant(self, i: int, k: int, product: dict[str, Any] | None = None,
                rec: dict[str, Any] | None = None) -> dict[str, Any]:
        return VARIANT.node(_Variant(self, i, k, product, rec))

    def variant_view(self, i: int, k: int, product: dict[str, Any] | None = None,
                     rec: dict[str, Any] | None = None) -> TypedNode:
        return VARIANT, _Variant(self, i, k, product, rec)

    def inventory_item(self, i: int, k: int, variant: dict[str, Any], variant_gid: str) -> dict[str, Any]:
        return ITEM.node(_Item(self, i, k, variant, variant_gid))

    def item_view(self, i: int, k: int, variant: dict[str, Any], variant_gid: str) -> TypedNode:
        return ITEM, _Item(self, i, k, variant, variant_gid)

    def inventory_level(self, i: int, k: int, j: int, variant: dict[str, Any] | None = None) -> dict[str, Any]:
        return LEVEL.node(_Level(self, i, k, j, variant))

    def level_view(self, i: int, k: int, j: int, variant: dict[str, Any] | None = None) -> TypedNode:
        return LEVEL, _Level(self, i, k, j, variant)

    # --- locations -------------------------------------------------------------------------------------

    def location(self, j: int) -> dict[str, Any]:
        loc = self.catalog.locations[j]

        unstocked = self.catalog.unstocked

        def all_levels() -> Iterator[dict[str, Any]]:
            for i in range(self.catalog.products.count):
                if self.catalog.products.alive(i):
                    prod = self.catalog.product(i)
                    for k in range(int(prod["variant_count"])):
                        if (i, k, j) not in unstocked:
                            yield self.inventory_level(i, k, j)

        def levels_page(args: dict[str, Any]) -> dict[str, Any]:
            keys = [(i, k) for i in range(self.catalog.products.count) if self.catalog.products.alive(i)
                    for k in range(int(self.catalog.product(i)["variant_count"])) if (i, k, j) not in unstocked]
            return list_connection(keys, lambda ik: self.inventory_level(ik[0], ik[1], j),
                                   lambda ik: ik[0] * MAX_CHILDREN + ik[1], args)

        def level_of(args: dict[str, Any]) -> dict[str, Any] | None:
            parsed = parse_gid(args.get("inventoryItemId"))
            found = self.catalog.variant_by_inventory_item(parsed[1]) if parsed else None
            if found is None or not self.catalog.stocked(found[0], found[1], j):
                return None
            return self.inventory_level(found[0], found[1], j)

        return {
            "__typename": "Location",
            "id": gid("Location", loc["id"]),
            "legacyResourceId": str(loc["id"]),
            "name": loc["name"],
            "isActive": loc["active"],
            "fulfillsOnlineOrders": True,
            "hasActiveInventory": True,
            "address": {"__typename": "LocationAddress", "address1": loc["address1"], "address2": None,
                        "city": loc["city"], "provinceCode": loc["province_code"], "countryCode": loc["country_code"],
                        "country": loc["country"], "zip": loc["zip"],
                        "formatted": [loc["address1"], f"{loc['city']} {loc['zip']}", loc["country"]]},
            "createdAt": format_gql(loc["created_us"]),
            "updatedAt": format_gql(loc["updated_us"]),
            "inventoryLevels": LazyConnection(levels_page, all_levels),
            "inventoryLevel": LazyValue(level_of),
            "shipsInventory": True,
        }

    # --- customers -------------------------------------------------------------------------------------

    def mailing_address(self, addr: dict[str, Any] | None, model: str = "CustomerAddress") -> dict[str, Any] | None:
        if addr is None:
            return None
        return {
            "__typename": "MailingAddress",
            "id": f"gid://shopify/MailingAddress/{addr['id']}?model_name={model}",
            "firstName": addr["first_name"],
            "lastName": addr["last_name"],
            "name": addr["name"],
            "company": addr["company"],
            "address1": addr["address1"],
            "address2": addr["address2"],
            "city": addr["city"],
            "province": addr["province_code"],
            "provinceCode": addr["province_code"],
            "country": addr["country"],
            "countryCodeV2": addr["country_code"],
            "zip": addr["zip"],
            "phone": addr["phone"],
            "formatted": [p for p in (addr["address1"], addr["address2"], f"{addr['city']} {addr['zip']}",
                                      addr["country"]) if p],
        }

    def customer(self, i: int) -> dict[str, Any]:
        rec = self.catalog.customer(i)
        addr = self.mailing_address(rec["address"])
        return {
            "__typename": "Customer",
            "id": gid("Customer", rec["id"]),
            "legacyResourceId": str(rec["id"]),
            "email": rec["email"],
            "phone": rec["phone"],
            "firstName": rec["first_name"],
            "lastName": rec["last_name"],
            "displayName": f"{rec['first_name']} {rec['last_name']}",
            "state": rec["state"],
            "tags": list(rec["tags"]),
            "note": rec["note"],
            "verifiedEmail": rec["verified_email"],
            "taxExempt": False,
            "numberOfOrders": LazyValue(lambda _a: str(self.catalog.customer_stats(i)[0])),
            "amountSpent": LazyValue(lambda _a: {"__typename": "MoneyV2",
                                                 "amount": money(self.catalog.customer_stats(i)[1]),
                                                 "currencyCode": self.currency}),
            "defaultAddress": addr,
            "addresses": LazyValue(lambda a: _first_n([addr] if addr else [], a)),
            "emailMarketingConsent": {"__typename": "CustomerEmailMarketingConsentState",
                                      "marketingState": "SUBSCRIBED" if "newsletter" in rec["tags"] else
                                      "NOT_SUBSCRIBED", "marketingOptInLevel": "SINGLE_OPT_IN",
                                      "consentUpdatedAt": None},
            "createdAt": format_gql(rec["created_us"]),
            "updatedAt": format_gql(rec["updated_us"]),
        }

    # --- orders ----------------------------------------------------------------------------------------

    def order(self, o: int) -> dict[str, Any]:
        return ORDER.node(_Order(self, o))

    def order_view(self, o: int) -> TypedNode:
        return ORDER, _Order(self, o)

    def fulfillment(self, o: int, f: dict[str, Any]) -> dict[str, Any]:
        """A ``Fulfillment`` node of order ``o`` (``f`` one of its ``fulfillments`` records)."""
        return _fulfillment(_Order(self, o), f)

    def line_item(self, li: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
        return LINE_ITEM.node(_LineItem(self, li, order))

    def line_item_view(self, li: dict[str, Any], order: dict[str, Any]) -> TypedNode:
        return LINE_ITEM, _LineItem(self, li, order)

    # --- REST payloads (webhook bodies) -----------------------------------------------------------------

    def product_rest(self, i: int) -> dict[str, Any]:
        rec = self.catalog.product(i)
        variants = self.catalog.variants(i, rec)
        names: list[str] = []
        for v in variants:
            for name, _ in v["options"]:
                if name not in names:
                    names.append(name)
        return {
            "admin_graphql_api_id": gid("Product", rec["id"]),
            "body_html": rec["description"],
            "created_at": format_rest(rec["created_us"]),
            "handle": rec["handle"],
            "id": rec["id"],
            "product_type": rec["product_type"],
            "published_at": format_rest(rec["created_us"]) if rec["status"] == "ACTIVE" else None,
            "template_suffix": None,
            "title": rec["title"],
            "updated_at": format_rest(rec["updated_us"]),
            "vendor": rec["vendor"],
            "status": str(rec["status"]).lower(),
            "published_scope": "global",
            "tags": ", ".join(rec["tags"]),
            "variants": [self._variant_rest(i, v) for v in variants],
            "variant_gids": [{"admin_graphql_api_id": gid("ProductVariant", v["id"]),
                              "updated_at": format_rest(v["updated_us"])} for v in variants],
            "options": [{"name": n, "id": rec["id"] * 10 + p, "product_id": rec["id"], "position": p + 1,
                         "values": sorted({val for v in variants for name, val in v["options"] if name == n})}
                        for p, n in enumerate(names)],
            "images": [],
            "image": None,
            "media": [],
            "category": None,
            "has_variants_that_requires_components": False,
        }

    def _variant_rest(self, i: int, v: dict[str, Any]) -> dict[str, Any]:
        opts = [val for _, val in v["options"]] + [None, None, None]
        qty = self.catalog.inventory_total(i, int(v["index"]))
        return {
            "admin_graphql_api_id": gid("ProductVariant", v["id"]),
            "barcode": v["barcode"],
            "compare_at_price": money(v["compare_at_cents"]),
            "created_at": format_rest(v["created_us"]),
            "id": v["id"],
            "inventory_policy": str(v["inventory_policy"]).lower(),
            "position": v["position"],
            "price": money(v["price_cents"]),
            "product_id": v["product_id"],
            "sku": v["sku"],
            "taxable": v["taxable"],
            "title": v["title"],
            "updated_at": format_rest(v["updated_us"]),
            "option1": opts[0],
            "option2": opts[1],
            "option3": opts[2],
            "image_id": None,
            "inventory_item_id": v["inventory_item_id"],
            "inventory_quantity": qty,
            "old_inventory_quantity": qty,
            "inventory_management": "shopify",
            "requires_shipping": True,
            "grams": v["weight_grams"],
            "weight": v["weight_grams"],
            "weight_unit": "g",
        }

    def _address_rest(self, addr: dict[str, Any] | None, customer_id: int | None = None) -> dict[str, Any] | None:
        if addr is None:
            return None
        out = {"first_name": addr["first_name"], "last_name": addr["last_name"], "name": addr["name"],
               "company": addr["company"], "address1": addr["address1"], "address2": addr["address2"],
               "city": addr["city"], "province": addr["province_code"], "province_code": addr["province_code"],
               "country": addr["country"], "country_code": addr["country_code"], "zip": addr["zip"],
               "phone": addr["phone"]}
        if customer_id is not None:
            out.update({"id": addr["id"], "customer_id": customer_id, "country_name": addr["country"],
                        "default": True})
        return out

    def customer_rest(self, i: int) -> dict[str, Any]:
        rec = self.catalog.customer(i)
        addr = self._address_rest(rec["address"], rec["id"])
        return {
            "id": rec["id"],
            "email": rec["email"],
            "created_at": format_rest(rec["created_us"]),
            "updated_at": format_rest(rec["updated_us"]),
            "first_name": rec["first_name"],
            "last_name": rec["last_name"],
            "state": str(rec["state"]).lower(),
            "note": rec["note"],
            "verified_email": rec["verified_email"],
            "multipass_identifier": None,
            "tax_exempt": False,
            "phone": rec["phone"],
            "currency": self.currency,
            "tags": ", ".join(rec["tags"]),
            "addresses": [addr] if addr else [],
            "tax_exemptions": [],
            "admin_graphql_api_id": gid("Customer", rec["id"]),
            "default_address": addr,
            "email_marketing_consent": {"state": "subscribed" if "newsletter" in rec["tags"] else "not_subscribed",
                                        "opt_in_level": "single_opt_in", "consent_updated_at": None},
        }

    def _line_rest(self, li: dict[str, Any], fstatus: str | None, quantity: int | None = None) -> dict[str, Any]:
        done = li.get("fulfilled_quantity")
        if done is not None:  # written through the API: each line knows how much of it was fulfilled
            fstatus = "fulfilled" if done >= li["quantity"] else "partial" if done else None
        return {
            "id": li["id"], "admin_graphql_api_id": gid("LineItem", li["id"]), "title": li["title"],
            "name": f"{li['title']} - {li['variant_title']}" if li["variant_title"] else li["title"],
            "sku": li["sku"], "vendor": li["vendor"], "quantity": li["quantity"] if quantity is None else quantity,
            "price": money(li["price_cents"]), "product_id": li["product_id"], "variant_id": li["variant_id"],
            "variant_title": li["variant_title"], "total_discount": money(li["discount_cents"]), "taxable": True,
            "requires_shipping": True,
            "fulfillable_quantity": 0 if fstatus == "fulfilled" else li["quantity"] - int(done or 0),
            "fulfillment_status": fstatus,
        }

    def fulfillment_rest(self, rec: dict[str, Any], f: dict[str, Any]) -> dict[str, Any]:
        """A fulfillment as fulfillments/create and an order's ``fulfillments[]`` carry it."""
        tracking = tracking_of(f)
        by_id = {int(li["id"]): li for li in rec["line_items"]}
        loc = self.catalog.locations[int(f.get("location_index", 0))] if self.catalog.locations else None
        return {
            "id": f["id"], "order_id": rec["id"], "status": str(f["status"]).lower(),
            "name": f.get("name") or f"{rec['name']}.1", "location_id": loc["id"] if loc else None,
            "tracking_company": tracking[0]["company"] if tracking else None,
            "tracking_number": tracking[0]["number"] if tracking else None,
            "tracking_url": tracking[0]["url"] if tracking else None,
            "tracking_numbers": [t["number"] for t in tracking if t["number"]],
            "tracking_urls": [t["url"] for t in tracking if t["url"]],
            "notify_customer": bool(f.get("notify_customer", False)), "shipment_status": None, "service": "manual",
            "origin_address": f.get("origin_address"),
            "line_items": [self._line_rest(by_id[li_id], None, qty) for _, li_id, qty in
                           fulfillment_lines(f, rec["line_items"]) if li_id in by_id],
            "created_at": format_rest(f["created_us"]), "updated_at": format_rest(f["updated_us"]),
            "admin_graphql_api_id": gid("Fulfillment", f["id"]),
        }

    def order_rest(self, o: int) -> dict[str, Any]:
        rec, buyer = self.catalog.order_with_customer(o)
        cur = str(rec["currency"])

        def price_set(cents: int) -> dict[str, Any]:
            return {"shop_money": {"amount": money(cents), "currency_code": cur},
                    "presentment_money": {"amount": money(cents), "currency_code": cur}}

        customer = None
        if rec["customer_id"] is not None:
            cust = buyer if buyer is not None else self.catalog.customer(int(rec["customer_index"]))
            customer = {"id": cust["id"], "email": cust["email"], "first_name": cust["first_name"],
                        "last_name": cust["last_name"], "phone": cust["phone"], "state": str(cust["state"]).lower(),
                        "admin_graphql_api_id": gid("Customer", cust["id"]),
                        "created_at": format_rest(cust["created_us"]), "updated_at": format_rest(cust["updated_us"])}
        fstatus = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(str(rec["fulfillment_status"]))
        lines = rec["line_items"]
        return {
            "id": rec["id"],
            "admin_graphql_api_id": gid("Order", rec["id"]),
            "name": rec["name"],
            "number": int(rec["order_number"]) - 1000,
            "order_number": rec["order_number"],
            "email": rec["email"],
            "contact_email": rec["email"],
            "phone": rec["phone"],
            "created_at": format_rest(rec["created_us"]),
            "updated_at": format_rest(rec["updated_us"]),
            "processed_at": format_rest(rec["processed_us"]),
            "cancelled_at": format_rest(rec["cancelled_us"]),
            "cancel_reason": (rec.get("cancel_reason") or "other") if rec["cancelled_us"] else None,
            "closed_at": format_rest(rec["closed_us"]),
            "currency": cur,
            "presentment_currency": cur,
            "financial_status": str(rec["financial_status"]).lower(),
            "fulfillment_status": fstatus,
            "subtotal_price": money(rec["subtotal_cents"]),
            "total_price": money(rec["total_cents"]),
            "current_total_price": money(int(rec["total_cents"]) - int(rec["refunded_cents"])),
            "total_tax": money(rec["tax_cents"]),
            "total_discounts": money(rec["discount_cents"]),
            "total_line_items_price": money(sum(int(li["price_cents"]) * int(li["quantity"]) for li in lines)),
            "total_shipping_price_set": price_set(rec["shipping_cents"]),
            "total_price_set": price_set(rec["total_cents"]),
            "test": bool(rec.get("test", False)),
            "po_number": rec.get("po_number"),
            "confirmed": True,
            "tags": ", ".join(rec["tags"]),
            "note": rec["note"],
            "note_attributes": [{"name": a["key"], "value": a["value"]} for a in rec["custom_attributes"]],
            "source_name": rec["source_name"],
            "source_identifier": rec["source_identifier"],
            "customer": customer,
            "billing_address": self._address_rest(rec["billing_address"]),
            "shipping_address": self._address_rest(rec["shipping_address"]),
            "line_items": [self._line_rest(li, fstatus) for li in lines],
            "fulfillments": [self.fulfillment_rest(rec, f) for f in rec["fulfillments"]],
            "refunds": [{
                "id": r["id"], "order_id": rec["id"], "created_at": format_rest(r["created_us"]),
                "admin_graphql_api_id": gid("Refund", r["id"]), "note": None,
                "transactions": [{"amount": money(r["amount_cents"]), "kind": "refund", "status": "success",
                                  "currency": cur}],
            } for r in rec["refunds"]],
        }

    def inventory_level_rest(self, i: int, k: int, j: int) -> dict[str, Any]:
        lvl = self.catalog.inventory_level(i, k, j)
        loc = self.catalog.locations[j]
        return {
            "inventory_item_id": lvl["inventory_item_id"],
            "location_id": loc["id"],
            "available": lvl["available"],
            "updated_at": format_rest(lvl["updated_us"]),
            "admin_graphql_api_id":
                f"gid://shopify/InventoryLevel/{loc['id']}?inventory_item_id={lvl['inventory_item_id']}",
        }
