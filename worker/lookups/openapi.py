"""The OpenAPI 3.1 description of the look-up endpoints, generated from ``OPERATIONS`` (the same models the MCP
tools' JSON schemas come from), served at ``/v1/lookups/openapi.json``."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from worker.lookups.operations import OPERATIONS

__all__ = ["API_PREFIX", "openapi_document"]

API_PREFIX = "/v1/lookups"
VERSION = "1.0.0"

_ERROR = {
    "type": "object", "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "A stable snake_case code (the HTTP status's phrase)."},
        "detail": {"type": "string", "description": "What went wrong and what to do, for a person or an agent."},
        "policy": {"type": "string", "description": "The access policy that refused the look-up (403)."},
        "resource": {"type": "string"},
        "live_lookups": {"type": "array", "items": {"type": "string"},
                         "description": "What the platform can look up live (422 unsupported)."},
    },
}
_ERRORS = {
    "401": "No key or token, a malformed, unknown, revoked or expired key, or an invalid user token.",
    "403": "The key does not cover the resource, or the store's access policy for it is not_allowed.",
    "404": "Unknown store (also: a store of another organization, or outside the key's stores).",
    "409": "A live look-up for a store that is not connected (needs re-authorization, uninstalled, ...).",
    "413": "The request body is too large.",
    "422": "Invalid parameters (what to fix is in detail), or a look-up the platform cannot answer live.",
    "429": "Over the key's (or user's) rate; Retry-After says when to try again.",
    "502": "The platform refused or failed the live look-up.",
    "503": "The look-up could not be audited, or the platform is not configured here.",
    "504": "The look-up took longer than its time budget.",
}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = []
    for op in OPERATIONS.values():
        models += [(op.params, "validation"), (op.answer, "serialization")]
    keys, schema = models_json_schema(models, ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = dict(schema.get("$defs", {}))
    components["Error"] = _ERROR
    paths: dict[str, Any] = {}
    for op in OPERATIONS.values():
        answer_ref = keys[(op.answer, "serialization")]
        responses: dict[str, Any] = {"200": {"description": op.title,
                                             "content": {"application/json": {"schema": answer_ref}}}}
        for status, text in _ERRORS.items():
            responses[status] = {"description": text,
                                 "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        post = {"operationId": op.name, "summary": op.title, "description": op.description, "tags": ["lookups"],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": keys[(op.params, "validation")]}}},
                "responses": responses}
        paths[f"{API_PREFIX}/{op.name}"] = {"post": post}
        if op.resource is None:     # parameterless: a GET too
            paths[f"{API_PREFIX}/{op.name}"]["get"] = {
                "operationId": f"{op.name}_get", "summary": op.title, "description": op.description,
                "tags": ["lookups"], "responses": responses}
    return {
        "openapi": "3.1.0",
        "info": {"title": "shopsync look-ups", "version": VERSION,
                 "description": "Customers, orders and products of your stores for agents, under each store's "
                                "access policy (sync: from shopsync's copy; api_only: asked live, nothing kept; "
                                "not_allowed: refused). The same look-ups are MCP tools at /v1/mcp/. Every "
                                "look-up is audited (never its values or answers)."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "An organization API key (ssk_…) or a member's Supabase access token."}}},
        "security": [{"bearer": []}],
    }
