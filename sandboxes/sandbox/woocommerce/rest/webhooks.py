"""``/wc/v3/webhooks`` and ``/wc/v3/webhooks/{id}``: list, create, read, update, delete.

A create's result carries the new webhook for the creation ping, which the app sends once the handler returns; the
subscriptions and deliveries themselves are ``sandbox.woocommerce.webhooks``.
"""

from __future__ import annotations

import re

from sandbox.woocommerce.clock import query_literal
from sandbox.woocommerce.php import php_json, wp_error
from sandbox.woocommerce.rest.context import (
    CANNOT_CREATE,
    CANNOT_DELETE,
    CANNOT_EDIT,
    CANNOT_LIST,
    CANNOT_VIEW,
    Ctx,
    RestResult,
    denied,
    error_result,
    json_result,
)
from sandbox.woocommerce.rest.items import Item
from sandbox.woocommerce.rest.listing import list_response, single
from sandbox.woocommerce.rest.params import COLLECTION, SINGLE, P, is_bool, validate
from sandbox.woocommerce.webhooks import STATUSES as WEBHOOK_STATUSES
from sandbox.woocommerce.webhooks import valid_topic

__all__ = ["create_webhook", "delete_webhook", "get_webhook", "list_webhooks", "update_webhook"]

WEBHOOK_LIST = {
    **COLLECTION,
    "after": P("date"), "before": P("date"),
    "order": P("enum", "desc", enum=("asc", "desc")),
    "orderby": P("enum", "date", enum=("date", "id", "title")),
    "status": P("enum", "all", enum=("all", *WEBHOOK_STATUSES)),
}
WEBHOOK_WRITE = {"name": P("string"), "topic": P("string"), "delivery_url": P("string"), "secret": P("string"),
                 "status": P("string")}


def list_webhooks(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, WEBHOOK_LIST)
    if err:
        return err
    if ctx.anon:
        return denied(*CANNOT_LIST)
    hooks = list(ctx.store.webhooks.values())
    if p["orderby"] == "id":
        hooks.sort(key=lambda w: w.id)
    elif p["orderby"] == "title":
        hooks.sort(key=lambda w: (w.name.lower(), w.id))
    else:
        hooks.sort(key=lambda w: (w.created_s, w.id))
    if p["order"] == "desc":
        hooks.reverse()
    search = (p.get("search") or "").lower()
    after = query_literal(p["after"], 0) if p.get("after") else None
    before = query_literal(p["before"], 0) if p.get("before") else None
    items: list[Item] = []
    for wh in hooks:
        if p["status"] != "all" and wh.status != p["status"]:
            continue
        if (p["include"] and wh.id not in p["include"]) or wh.id in p["exclude"]:
            continue
        if search and search not in wh.name.lower():
            continue
        if after is not None and not wh.created_s > after:
            continue
        if before is not None and not wh.created_s < before:
            continue
        items.append(("w", wh.id))
    return list_response(ctx, items, p, "/wc/v3/webhooks")


def _webhook_invalid(status: int, message: str) -> RestResult:
    return error_result(wp_error("woocommerce_rest_shop_webhook_invalid_id", message, status))


def _valid_url(url: str) -> bool:
    # wc_is_valid_url: http(s) scheme and a host.
    return re.match(r"^https?://[^/\s]+", url) is not None


def create_webhook(ctx: Ctx) -> RestResult:
    schema = {**WEBHOOK_WRITE, "topic": P("string", required=True), "delivery_url": P("string", required=True)}
    p, err = validate(ctx.params, schema)
    if err:
        return err
    if ctx.anon:
        return denied(*CANNOT_CREATE)
    if ctx.params.get("id"):
        return error_result(wp_error("woocommerce_rest_shop_webhook_exists", "Cannot create existing shop_webhook.",
                                     400))
    topic = str(p["topic"]).lower()
    if not topic or not valid_topic(topic):
        return error_result(wp_error("woocommerce_rest_shop_webhook_invalid_topic",
                                     "Webhook topic is required and must be valid.", 400))
    if not p["delivery_url"] or not _valid_url(p["delivery_url"]):
        return error_result(wp_error("woocommerce_rest_shop_webhook_invalid_delivery_url",
                                     "Webhook delivery URL must be a valid URL starting with http:// or https://.",
                                     400))
    # The status parameter is ignored on creation: a REST-created webhook starts active.
    wh = ctx.store.add_webhook(topic, p["delivery_url"], secret=p.get("secret") or None, name=p.get("name") or None)
    result = json_result(ctx.store.res.webhook(wh), 201,
                         [("Location", f"{ctx.store.rest_url}/wc/v3/webhooks/{wh.id}")])
    result.ping = wh
    return result


def get_webhook(ctx: Ctx) -> RestResult:
    _, err = validate(ctx.params, SINGLE)
    if err:
        return err
    if ctx.anon:
        return denied(*CANNOT_VIEW)
    wh = ctx.store.webhooks.get(ctx.id())
    if ctx.id() == 0:
        return _webhook_invalid(404, "Invalid ID.")
    if wh is None:
        return _webhook_invalid(400, "ID is invalid.")
    return single(ctx, ("w", wh.id))


def update_webhook(ctx: Ctx) -> RestResult:
    p, err = validate(ctx.params, WEBHOOK_WRITE)
    if err:
        return err
    if ctx.anon:
        return denied(*CANNOT_EDIT)
    wh = ctx.store.webhooks.get(ctx.id())
    if wh is None:
        return _webhook_invalid(400, "ID is invalid.")
    if p.get("topic"):
        if not valid_topic(str(p["topic"]).lower()):
            return error_result(wp_error("woocommerce_rest_shop_webhook_invalid_topic", "Webhook topic must be valid.",
                                         400))
    if p.get("delivery_url") and not _valid_url(p["delivery_url"]):
        return error_result(wp_error("woocommerce_rest_shop_webhook_invalid_delivery_url",
                                     "Webhook delivery URL must be a valid URL starting with http:// or https://.",
                                     400))
    if p.get("status") and str(p["status"]).lower() not in WEBHOOK_STATUSES:
        return error_result(wp_error("woocommerce_rest_shop_webhook_invalid_status", "Webhook status must be valid.",
                                     400))
    if p.get("topic"):
        wh.topic = str(p["topic"]).lower()
    if p.get("delivery_url"):
        wh.delivery_url = p["delivery_url"]
    if p.get("secret"):
        wh.secret = p["secret"]
    if p.get("status"):
        wh.status = str(p["status"]).lower()
    if p.get("name"):
        wh.name = p["name"]
    wh.modified_s = ctx.store.clock.now_s()
    return single(ctx, ("w", wh.id))


def delete_webhook(ctx: Ctx) -> RestResult:
    if ctx.anon:
        return denied(*CANNOT_DELETE)
    force = is_bool(ctx.params.get("force", False)) or False
    if not force:
        return error_result(wp_error("woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.",
                                     501))
    wh = ctx.store.webhooks.get(ctx.id())
    if wh is None:
        return _webhook_invalid(404, "Invalid ID.")
    body = php_json(ctx.store.res.webhook(wh))
    del ctx.store.webhooks[wh.id]
    return RestResult(200, body)
