"""The ``@idempotent(key:)`` directive on inventory mutations (``directive @idempotent(key: String!) on FIELD``).

Versions: before 2026-01 the directive does not exist (``Directive @idempotent is not defined``); in 2026-01 it
is optional; from 2026-04 a call without it fails at run time (Shopify's changelog "Making idempotency mandatory
for inventory adjustments and refund mutations"; the schema still shows it optional). A blank key is refused.

A key belongs to one app on one shop. The first request with a key runs and its answer is stored: the same key
with the same arguments answers that stored payload again without applying anything twice (webhooks included);
with other arguments (or another mutation) ``IDEMPOTENCY_KEY_PARAMETER_MISMATCH``; while the first request is
still running ``IDEMPOTENCY_CONCURRENT_REQUEST`` (a ``slow_write`` fault holds one in flight, see ``faults.py``).
A request refused before it ran (a top-level error: bad arguments, missing directive) stores nothing. Keys are
kept for the sandbox's life (Shopify's retention window is not documented).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.shopify.clock import version_at_least
from sandbox.shopify.gql import Field, GraphQLSyntaxError, collect_fields, parse, resolve_value
from sandbox.shopify.project import FieldError, Projector
from sandbox.shopify.writes.common import user_error
from sandbox.shopify.writes.model import IdempotencyRecord

if TYPE_CHECKING:
    from sandbox.shopify.resolver import RequestContext

__all__ = ["DIRECTIVE_FROM", "IDEMPOTENT_MUTATIONS", "REQUIRED_FROM", "idempotent", "release", "reserve"]

IDEMPOTENT_MUTATIONS = frozenset({"inventorySetQuantities", "inventoryActivate"})
DIRECTIVE_FROM = "2026-01"
REQUIRED_FROM = "2026-04"
MISMATCH = "The same idempotency key cannot be used with different operation parameters."
CONCURRENT = "This request is currently in progress, please try again."
Resolver = Callable[["RequestContext", Projector, Field, dict[str, Any]], Any]


def _key(ctx: RequestContext, variables: Any, fld: Field) -> str | None:
    directive = fld.directives.get("idempotent")
    if directive is None:
        if version_at_least(ctx.version, REQUIRED_FROM):
            raise FieldError(f"An idempotency key is required for {fld.name} from API version {REQUIRED_FROM}: "
                             "add @idempotent(key: \"<a new UUID>\") to the field.", "BAD_REQUEST")
        return None
    if not version_at_least(ctx.version, DIRECTIVE_FROM):
        raise FieldError("Directive @idempotent is not defined", "undefinedDirective", directiveName="idempotent")
    key = resolve_value(directive.get("key"), variables)
    if not isinstance(key, str) or not key.strip():
        raise FieldError("The idempotency key can't be blank.", "BAD_REQUEST")
    return key


def _fingerprint(fld: Field, args: dict[str, Any]) -> str:
    return json.dumps([fld.name, args], sort_keys=True, default=str)


def idempotent(error_type: str, coded: bool,
               empty: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> Callable[[Resolver], Resolver]:
    """Wrap a mutation resolver with the directive's rules; ``empty(errors)`` is its payload with only
    ``userErrors`` (of type ``error_type``, with a ``code`` when ``coded``)."""
    def wrap(inner: Resolver) -> Resolver:
        def resolve(ctx: RequestContext, proj: Projector, fld: Field, args: dict[str, Any]) -> Any:
            key = _key(ctx, proj.variables, fld)
            if key is None:
                return inner(ctx, proj, fld, args)
            store = ctx.shop.writes.idempotency
            slot = (ctx.client_id, key)
            fingerprint = _fingerprint(fld, args)
            found = store.get(slot)
            if found is not None and (found.fingerprint != fingerprint or found.owner != ctx.request_id):
                if found.fingerprint != fingerprint:
                    code, message = "IDEMPOTENCY_KEY_PARAMETER_MISMATCH", MISMATCH
                elif found.owner is not None:
                    code, message = "IDEMPOTENCY_CONCURRENT_REQUEST", CONCURRENT
                else:
                    ctx.sandbox.count("idempotent_replays")
                    return found.result
                ctx.sandbox.count("idempotency_refusals")
                return empty([user_error(error_type, None, message, code if coded else None)])
            store[slot] = IdempotencyRecord(fingerprint, ctx.request_id)
            try:
                result = inner(ctx, proj, fld, args)
            except FieldError:
                store.pop(slot, None)
                raise
            store[slot] = IdempotencyRecord(fingerprint, None, result)
            return result
        return resolve
    return wrap


def reserve(ctx: RequestContext, query: str, variables: dict[str, Any] | None, operation_name: str | None,
            names: frozenset[str]) -> int:
    """Put the ``@idempotent`` keys of a mutation's ``names`` fields in flight for ``ctx.request_id`` (a
    ``slow_write`` fault, before it waits); -> how many. Callers hold the sandbox lock."""
    try:
        doc = parse(query)
        op = doc.operation(operation_name)
    except GraphQLSyntaxError:
        return 0
    values = {k: resolve_value(v, {}) for k, v in op.variable_defaults.items() if v is not None}
    values.update(variables or {})
    proj = Projector(doc, values)
    count = 0
    for fld in collect_fields(op.selections, doc, values, "Mutation"):
        if op.kind != "mutation" or fld.name not in names or "idempotent" not in fld.directives:
            continue
        try:
            key = _key(ctx, values, fld)
        except FieldError:
            continue
        slot = (ctx.client_id, str(key))
        if key is not None and slot not in ctx.shop.writes.idempotency:
            ctx.shop.writes.idempotency[slot] = IdempotencyRecord(_fingerprint(fld, proj.args(fld)), ctx.request_id)
            count += 1
    return count


def release(ctx: RequestContext) -> None:
    """Forget keys this request reserved but never answered (it was throttled or refused before running)."""
    store = ctx.shop.writes.idempotency
    for slot in [s for s, rec in store.items() if rec.owner == ctx.request_id]:
        del store[slot]
