"""Executes one GraphQL Admin API request against a shop: cost, throttling, the known root fields.

Root fields: ``shop``, ``currentAppInstallation``, ``products``/``customers``/``orders``/``locations``
(+ ``…Count``), ``product``/``customer``/``order``/``location``/``productVariant``/``inventoryItem``(id:),
``node``/``nodes``, ``webhookSubscriptions``/``webhookSubscription``, ``currentBulkOperation``,
``bulkOperation``, ``bulkOperations``, ``publicApiVersions``, ``productVariants`` (``variant_search``), ``job``,
``fulfillmentOrder``, ``fulfillment``; mutations ``bulkOperationRunQuery``, ``bulkOperationCancel``,
``webhookSubscriptionCreate``/``Update``/``Delete`` and the write side of ``writes/`` (``orderCreate``,
``orderCancel``, ``fulfillmentCreate``, ``fulfillmentTrackingInfoUpdate``, ``inventorySetQuantities``,
``inventoryActivate``). Anything else is the ``undefinedField`` error Shopify gives.

Responses are HTTP 200 with ``data``/``errors`` and always ``extensions.cost`` — also when throttled
(``actualQueryCost: null``), as Shopify's own client-library fixtures show.
"""

# long module: the root-field tables and their few-line resolvers list every answered field in one place.

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.shopify.clock import format_gql, now_us, version_at_least
from sandbox.shopify.dataset import Table
from sandbox.shopify.gql import Field, GraphQLSyntaxError, collect_fields, parse, resolve_value
from sandbox.shopify.nodes import connection, gid, list_connection, page_args, parse_gid
from sandbox.shopify.project import FieldError, Projector, actual_cost, requested_cost
from sandbox.shopify.search import search_filter
from sandbox.shopify.variant_search import product_variants
from sandbox.shopify.webhooks import TOPICS, WebhookSubscription
from sandbox.shopify.writes.roots import WRITE_MUTATIONS, WRITE_QUERIES

if TYPE_CHECKING:
    from sandbox.shopify.state import AccessToken, Shop, ShopifySandbox

__all__ = ["RequestContext", "execute"]

THROTTLE_DOCS = "https://shopify.dev/api/usage/rate-limits"
SCOPE_DOCS = "https://shopify.dev/api/usage/access-scopes"
SORT_KEYS = {
    "product": {"ID", "TITLE", "PRODUCT_TYPE", "VENDOR", "INVENTORY_TOTAL", "UPDATED_AT", "CREATED_AT",
                "PUBLISHED_AT", "RELEVANCE"},
    "customer": {"ID", "NAME", "LOCATION", "UPDATED_AT", "CREATED_AT", "RELEVANCE"},
    "order": {"ID", "CREATED_AT", "UPDATED_AT", "PROCESSED_AT", "ORDER_NUMBER", "TOTAL_PRICE", "CUSTOMER_NAME",
              "FINANCIAL_STATUS", "FULFILLMENT_STATUS", "RELEVANCE", "DESTINATION", "PO_NUMBER",
              "TOTAL_ITEMS_QUANTITY"},
}
MODELLED_SORT_KEYS = {"ID", "UPDATED_AT", "CREATED_AT", "PROCESSED_AT"}
TYPE_NAMES = {"product": "ProductSortKeys", "customer": "CustomerSortKeys", "order": "OrderSortKeys"}


@dataclass
class RequestContext:
    sandbox: ShopifySandbox
    shop: Shop
    token: AccessToken
    version: str
    base_url: str
    search: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # owns the idempotency keys it runs

    @property
    def scopes(self) -> tuple[str, ...]:
        return self.token.scopes

    @property
    def client_id(self) -> str:
        return self.token.client_id


Resolver = Callable[[RequestContext, Projector, Field, dict[str, Any]], Any]


def _has_scope(scopes: tuple[str, ...], scope: str) -> bool:
    return scope in scopes or scope.replace("read_", "write_") in scopes


def _require(ctx: RequestContext, fld: Field, scope: str) -> None:
    if not _has_scope(ctx.scopes, scope):
        raise FieldError(f"Access denied for {fld.name} field. Required access: `{scope}` access scope.",
                         "ACCESS_DENIED", documentation=SCOPE_DOCS, requiredAccess=f"`{scope}` access scope.")


# --- connections over entity tables ------------------------------------------------------------------------

def _entity_connection(ctx: RequestContext, fld: Field, args: dict[str, Any], kind: str,
                       build: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    first, last, after, before = page_args(args)
    catalog = ctx.shop.catalog
    table: Table = catalog.tables[kind]
    sort_key = str(args.get("sortKey") or "ID")
    if sort_key not in SORT_KEYS[kind]:
        raise FieldError(f"Argument 'sortKey' on Field '{fld.name}' has an invalid value ({sort_key}). "
                         f"Expected type '{TYPE_NAMES[kind]}'.", "argumentLiteralsIncompatible")
    if sort_key not in MODELLED_SORT_KEYS:
        ctx.notes.append(f"sortKey {sort_key} is not modelled; sorted by ID")
        sort_key = "ID"
    query = args.get("query")
    flt = search_filter(kind, query, ctx.version)
    if flt.warnings:
        ctx.search.append({"path": [fld.key], "query": query,
                           "warnings": [{"field": None, "message": w} for w in flt.warnings]})
    visible = ctx.sandbox.order_visible(ctx.shop, ctx.scopes) if kind == "order" else None
    try:
        page = catalog.page(table, first=first, after=after, last=last, before=before, sort_key=sort_key,
                            reverse=bool(args.get("reverse")), flt=flt, visible=visible)
    except ValueError as exc:
        raise FieldError(str(exc), "invalidCursor") from exc
    return connection([build(i) for i in page.indexes], page.cursors, page.has_next, page.has_previous)


def _products(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    _require(ctx, fld, "read_products")
    return _entity_connection(ctx, fld, args, "product", ctx.shop.nodes.product)


def _customers(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    _require(ctx, fld, "read_customers")
    return _entity_connection(ctx, fld, args, "customer", ctx.shop.nodes.customer)


def _orders(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    _require(ctx, fld, "read_orders")
    return _entity_connection(ctx, fld, args, "order", ctx.shop.nodes.order)


def _locations(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    _require(ctx, fld, "read_locations")
    locs = ctx.shop.catalog.locations
    keep = [j for j, loc in enumerate(locs) if loc["active"] or args.get("includeInactive")]
    return list_connection(keep, ctx.shop.nodes.location, lambda j: int(locs[j]["id"]), args)


def _count(kind: str, scope: str) -> Resolver:
    def resolve(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
        _require(ctx, fld, scope)
        catalog = ctx.shop.catalog
        if kind == "location":
            n = sum(1 for loc in catalog.locations if loc["active"])
        else:
            flt = search_filter(kind, args.get("query"), ctx.version)
            visible = ctx.sandbox.order_visible(ctx.shop, ctx.scopes) if kind == "order" else None
            n = catalog.count(catalog.tables[kind], flt, visible)
        limit = args.get("limit", 10_000)
        if isinstance(limit, int) and n > limit:
            return {"__typename": "Count", "count": limit, "precision": "AT_LEAST"}
        return {"__typename": "Count", "count": n, "precision": "EXACT"}
    return resolve


# --- single objects ----------------------------------------------------------------------------------------

def lookup(ctx: RequestContext, value: Any) -> dict[str, Any] | None:
    """Resolve any supported GID to its node (or None), honouring scopes and order visibility."""
    parsed = parse_gid(value)
    if parsed is None:
        return None
    kind, legacy = parsed
    shop, catalog, nodes = ctx.shop, ctx.shop.catalog, ctx.shop.nodes
    if kind == "Product" and _has_scope(ctx.scopes, "read_products"):
        i = catalog.products.live_index(legacy)
        return nodes.product(i) if i is not None else None
    if kind in ("ProductVariant", "InventoryItem") and _has_scope(ctx.scopes, "read_products"):
        found = catalog.variant_by_id(legacy) if kind == "ProductVariant" else catalog.variant_by_inventory_item(legacy)
        if found is None:
            return None
        node = nodes.variant(*found)
        return node if kind == "ProductVariant" else dict(node["inventoryItem"])
    if kind == "Customer" and _has_scope(ctx.scopes, "read_customers"):
        i = catalog.customers.live_index(legacy)
        return nodes.customer(i) if i is not None else None
    if kind == "Order" and _has_scope(ctx.scopes, "read_orders"):
        i = catalog.orders.live_index(legacy)
        visible = ctx.sandbox.order_visible(shop, ctx.scopes)
        return nodes.order(i) if i is not None and (visible is None or visible(i)) else None
    if kind == "Location" and _has_scope(ctx.scopes, "read_locations"):
        j = catalog.location_index(legacy)
        return nodes.location(j) if j is not None else None
    if kind == "BulkOperation":
        op = ctx.sandbox.bulk.ops.get(legacy)
        if op is None or op.shop != shop.domain or op.client_id != ctx.client_id:
            return None
        return ctx.sandbox.bulk.node(op, ctx.base_url)
    if kind == "WebhookSubscription":
        sub = ctx.sandbox.subscriptions.get(legacy)
        if sub is None or sub.shop != shop.domain or sub.client_id != ctx.client_id:
            return None
        return _subscription_node(sub)
    return None


def _by_id(kind: str, scope: str | None) -> Resolver:
    def resolve(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
        if scope:
            _require(ctx, fld, scope)
        value = args.get("id")
        parsed = parse_gid(value)
        if parsed is None:
            raise FieldError(f"Invalid global id '{value}'", "argumentLiteralsIncompatible")
        if parsed[0] != kind:
            return None
        return lookup(ctx, value)
    return resolve


def _node(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    return lookup(ctx, args.get("id"))


def _nodes(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    ids = args.get("ids") or []
    if not isinstance(ids, list):
        ids = [ids]
    if len(ids) > 250:
        raise FieldError("The 'ids' argument cannot contain more than 250 ids.", "MAX_PAGE_SIZE_EXCEEDED")
    return [lookup(ctx, v) for v in ids]


def _shop(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    return ctx.shop.graphql()


def _installation(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    app = ctx.sandbox.apps[ctx.client_id]
    install_id = zlib.crc32(f"{ctx.shop.domain}/{app.client_id}".encode())
    return {"__typename": "AppInstallation", "id": gid("AppInstallation", install_id),
            "accessScopes": [{"__typename": "AccessScope", "handle": s, "description": s} for s in ctx.scopes],
            "app": {"__typename": "App", "id": gid("App", zlib.crc32(app.client_id.encode())), "title": app.name,
                    "apiKey": app.client_id, "handle": app.name.lower()}}


def _versions(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    return [{"__typename": "ApiVersion", "handle": v, "displayName": v, "supported": True}
            for v in ctx.sandbox.supported_versions] + \
        [{"__typename": "ApiVersion", "handle": "unstable", "displayName": "unstable", "supported": False}]


# --- bulk operations ---------------------------------------------------------------------------------------

def _current_bulk(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    op = ctx.sandbox.bulk.current(ctx.shop.domain, ctx.client_id, str(args.get("type") or "QUERY"))
    return ctx.sandbox.bulk.node(op, ctx.base_url) if op else None


def _bulk_operations(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    ops = sorted((op for op in ctx.sandbox.bulk.ops.values()
                  if op.shop == ctx.shop.domain and op.client_id == ctx.client_id),
                 key=lambda op: op.id, reverse=not args.get("reverse"))
    return list_connection(ops, lambda op: ctx.sandbox.bulk.node(op, ctx.base_url), lambda op: op.id, args)


def _run_bulk(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    query = args.get("query")
    if not isinstance(query, str):
        raise FieldError("Field 'bulkOperationRunQuery' is missing required arguments: query",
                         "missingRequiredArguments")
    group = args.get("groupObjects")
    if group is None:
        group = not version_at_least(ctx.version, "2026-01")  # the default flipped to false in 2026-01
    op, errors = ctx.sandbox.bulk.create(ctx.shop, ctx.client_id, ctx.scopes, query, bool(group), ctx.version)
    return {"__typename": "BulkOperationRunQueryPayload",
            "bulkOperation": ctx.sandbox.bulk.node(op, ctx.base_url) if op else None, "userErrors": errors}


def _cancel_bulk(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    parsed = parse_gid(args.get("id"))
    op = ctx.sandbox.bulk.ops.get(parsed[1]) if parsed and parsed[0] == "BulkOperation" else None
    if op is None or op.shop != ctx.shop.domain or op.client_id != ctx.client_id:
        return {"__typename": "BulkOperationCancelPayload", "bulkOperation": None,
                "userErrors": [{"__typename": "UserError", "field": ["id"],
                                "message": "Bulk operation does not exist"}]}
    errors = ctx.sandbox.bulk.cancel(op)
    return {"__typename": "BulkOperationCancelPayload", "bulkOperation": ctx.sandbox.bulk.node(op, ctx.base_url),
            "userErrors": errors}


# --- webhook subscriptions ---------------------------------------------------------------------------------

def _subscription_node(sub: WebhookSubscription) -> dict[str, Any]:
    return {
        "__typename": "WebhookSubscription",
        "id": gid("WebhookSubscription", sub.id),
        "legacyResourceId": str(sub.id),
        "topic": sub.topic_enum,
        "format": sub.format,
        "uri": sub.uri,
        "callbackUrl": sub.uri,  # deprecated in favour of ``uri``, still answered
        "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": sub.uri},
        "apiVersion": {"__typename": "ApiVersion", "handle": sub.api_version, "displayName": sub.api_version,
                       "supported": True},
        "includeFields": [],
        "metafieldNamespaces": [],
        "filter": None,
        "createdAt": format_gql(sub.created_us),
        "updatedAt": format_gql(sub.updated_us),
    }


def _subscriptions(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    topics = args.get("topics")
    uri = args.get("uri") or args.get("callbackUrl")
    subs = sorted((s for s in ctx.sandbox.subscriptions.values()
                   if s.shop == ctx.shop.domain and s.client_id == ctx.client_id
                   and (not topics or s.topic_enum in topics) and (not uri or s.uri == uri)), key=lambda s: s.id)
    return list_connection(subs, _subscription_node, lambda s: s.id, args)


def _sub_input(ctx: RequestContext, args: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    data = args.get("webhookSubscription") or {}
    uri = data.get("uri") or data.get("callbackUrl") if isinstance(data, dict) else None
    if not isinstance(uri, str) or not uri:
        return None, [{"__typename": "UserError", "field": ["webhookSubscription", "uri"],
                       "message": "Address can't be blank"}]
    ok = uri.startswith("https://") or (ctx.sandbox.allow_http_webhooks and uri.startswith("http://"))
    if not ok:
        return None, [{"__typename": "UserError", "field": ["webhookSubscription", "uri"],
                       "message": "Address protocol http:// is not supported"}]
    return uri, []


def _create_subscription(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    topic = args.get("topic")
    if topic not in TOPICS:
        raise FieldError(f"Argument 'topic' on Field 'webhookSubscriptionCreate' has an invalid value ({topic}). "
                         "Expected type 'WebhookSubscriptionTopic!'.", "argumentLiteralsIncompatible")
    uri, errors = _sub_input(ctx, args)
    payload: dict[str, Any] = {"__typename": "WebhookSubscriptionCreatePayload", "webhookSubscription": None,
                               "userErrors": errors}
    if uri is None:
        return payload
    taken = any(s.shop == ctx.shop.domain and s.client_id == ctx.client_id and s.topic_enum == topic and s.uri == uri
                for s in ctx.sandbox.subscriptions.values())
    if taken:
        payload["userErrors"] = [{"__typename": "UserError", "field": ["webhookSubscription", "callbackUrl"],
                                  "message": "Address for this topic has already been taken"}]
        return payload
    sub = ctx.sandbox.add_subscription(ctx.shop, ctx.client_id, str(topic), uri, ctx.version)
    payload["webhookSubscription"] = _subscription_node(sub)
    return payload


def _own_subscription(ctx: RequestContext, value: Any) -> WebhookSubscription | None:
    parsed = parse_gid(value)
    sub = ctx.sandbox.subscriptions.get(parsed[1]) if parsed and parsed[0] == "WebhookSubscription" else None
    if sub is None or sub.shop != ctx.shop.domain or sub.client_id != ctx.client_id:
        return None
    return sub


def _update_subscription(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    sub = _own_subscription(ctx, args.get("id"))
    payload: dict[str, Any] = {"__typename": "WebhookSubscriptionUpdatePayload", "webhookSubscription": None,
                               "userErrors": []}
    if sub is None:
        payload["userErrors"] = [{"__typename": "UserError", "field": ["id"],
                                  "message": "Webhook subscription does not exist"}]
        return payload
    uri, errors = _sub_input(ctx, args)
    if uri is None:
        payload["userErrors"] = errors
        return payload
    sub.uri = uri
    sub.updated_us = now_us()
    payload["webhookSubscription"] = _subscription_node(sub)
    return payload


def _delete_subscription(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
    sub = _own_subscription(ctx, args.get("id"))
    if sub is None:
        return {"__typename": "WebhookSubscriptionDeletePayload", "deletedWebhookSubscriptionId": None,
                "userErrors": [{"__typename": "UserError", "field": ["id"],
                                "message": "Webhook subscription does not exist"}]}
    del ctx.sandbox.subscriptions[sub.id]
    return {"__typename": "WebhookSubscriptionDeletePayload",
            "deletedWebhookSubscriptionId": gid("WebhookSubscription", sub.id), "userErrors": []}


QUERY_ROOT: dict[str, Resolver] = {
    "shop": _shop,
    "currentAppInstallation": _installation,
    "publicApiVersions": _versions,
    "products": _products,
    "customers": _customers,
    "orders": _orders,
    "locations": _locations,
    "productsCount": _count("product", "read_products"),
    "customersCount": _count("customer", "read_customers"),
    "ordersCount": _count("order", "read_orders"),
    "locationsCount": _count("location", "read_locations"),
    "product": _by_id("Product", "read_products"),
    "productVariant": _by_id("ProductVariant", "read_products"),
    "inventoryItem": _by_id("InventoryItem", "read_inventory"),
    "customer": _by_id("Customer", "read_customers"),
    "order": _by_id("Order", "read_orders"),
    "location": _by_id("Location", "read_locations"),
    "node": _node,
    "nodes": _nodes,
    "webhookSubscriptions": _subscriptions,
    "webhookSubscription": _by_id("WebhookSubscription", None),
    "currentBulkOperation": _current_bulk,
    "bulkOperation": _by_id("BulkOperation", None),
    "bulkOperations": _bulk_operations,
    "productVariants": product_variants,
    **WRITE_QUERIES,
}
MUTATION_ROOT: dict[str, Resolver] = {
    "bulkOperationRunQuery": _run_bulk,
    "bulkOperationCancel": _cancel_bulk,
    "webhookSubscriptionCreate": _create_subscription,
    "webhookSubscriptionUpdate": _update_subscription,
    "webhookSubscriptionDelete": _delete_subscription,
    **WRITE_MUTATIONS,
}


def _cost_extension(requested: int, actual: int | None, status: dict[str, float | int]) -> dict[str, Any]:
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}}


def execute(ctx: RequestContext, query: str, variables: dict[str, Any] | None,
            operation_name: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """-> (response body, detail for the request log). Callers hold the sandbox lock."""
    sandbox = ctx.sandbox
    try:
        doc = parse(query)
        op = doc.operation(operation_name)
        given = variables or {}
        values = {k: resolve_value(v, {}) for k, v in op.variable_defaults.items() if v is not None}
        values.update(given)
        root_type = "Mutation" if op.kind == "mutation" else "QueryRoot"
        top = collect_fields(op.selections, doc, values, root_type)
    except GraphQLSyntaxError as exc:
        return {"errors": [{"message": exc.message, "locations": [{"line": exc.line, "column": exc.column}]}]}, \
            {"error": "parse"}
    if op.kind == "subscription":
        return {"errors": [{"message": "Subscriptions are not supported"}]}, {"error": "subscription"}
    table = MUTATION_ROOT if op.kind == "mutation" else QUERY_ROOT
    unknown = [f for f in top if f.name != "__typename" and f.name not in table]
    if unknown:
        return {"errors": [{"message": f"Field '{f.name}' doesn't exist on type '{root_type}'",
                            "locations": [{"line": f.line, "column": f.column}],
                            "path": [op.kind if not op.name else f"{op.kind} {op.name}", f.name],
                            "extensions": {"code": "undefinedField", "typeName": root_type, "fieldName": f.name}}
                           for f in unknown]}, {"error": "undefinedField"}
    proj = Projector(doc, values)
    mutation = op.kind == "mutation"
    requested = requested_cost(proj, top, mutation=mutation)
    bucket = sandbox.bucket(ctx.shop, ctx.client_id)
    detail: dict[str, Any] = {"fields": [f.name for f in top], "requested": requested, "operation": op.name,
                              "kind": op.kind}
    if requested > sandbox.max_query_cost:
        sandbox.count("max_cost_exceeded")
        msg = (f"Query cost is {requested}, which exceeds the single query max cost limit "
               f"({sandbox.max_query_cost}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits for more "
               "information on how the\ncost of a query is calculated.\n\nTo query larger amounts of data with "
               "fewer limits, bulk operations should be used instead.\nSee "
               "https://shopify.dev/api/usage/bulk-operations/queries for usage details.\n")
        return {"errors": [{"message": msg, "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested,
                                                           "maxCost": sandbox.max_query_cost}}],
                "extensions": _cost_extension(requested, None, bucket.status())}, {**detail, "error": "max_cost"}
    if sandbox.throttle and not bucket.take(requested):
        sandbox.count("throttled")
        throttled = {"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": THROTTLE_DOCS}}
        return {"errors": [throttled], "extensions": _cost_extension(requested, None, bucket.status())}, \
            {**detail, "throttled": True}
    data: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for f in top:
        if f.name == "__typename":
            data[f.key] = root_type
            continue
        try:
            data[f.key] = proj.value(table[f.name](ctx, proj, f, proj.args(f)), f)
        except FieldError as exc:
            data[f.key] = None
            ext = {"code": exc.code, **exc.extra} if exc.code else dict(exc.extra)
            errors.append({"message": exc.message, "locations": [{"line": f.line, "column": f.column}],
                           "path": [f.key], "extensions": ext})
    actual = actual_cost(proj, top, data, mutation=mutation)
    actual = min(actual, requested)
    if sandbox.throttle:
        bucket.refund(requested - actual)
    body: dict[str, Any] = {"data": data}
    if errors:
        body["errors"] = errors
    extensions = _cost_extension(requested, actual, bucket.status())
    if ctx.search:
        extensions["search"] = ctx.search
    if proj.unknown_fields or ctx.notes:
        extensions["sandbox"] = {"unknownFields": sorted(set(proj.unknown_fields)), "notes": ctx.notes}
    body["extensions"] = extensions
    detail["actual"] = actual
    sandbox.count("graphql_ok")
    return body, detail
