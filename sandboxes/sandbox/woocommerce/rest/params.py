"""Parameter validation as WordPress does it (``rest_validate_request_arg``), and the schema pieces routes share.

Each route's schema lives beside its handlers; a failing schema answers 400 ``rest_invalid_param`` or
``rest_missing_callback_param``, and parameters a schema does not name are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.woocommerce.clock import query_literal
from sandbox.woocommerce.php import rest_invalid_param, wp_error, wp_sprintf_l
from sandbox.woocommerce.rest.context import RestResult, error_result

__all__ = [
    "COLLECTION",
    "CONTEXT",
    "DATES",
    "POST_ORDERBY",
    "SINGLE",
    "P",
    "is_bool",
    "str_list",
    "validate",
    "write_fields",
]


@dataclass(frozen=True)
class P:
    kind: str  # integer | boolean | string | enum | enumlist | date | idlist | email
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    enum: tuple[str, ...] = ()
    required: bool = False


def _is_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.0*)?\s*", value):
        return int(float(value))
    return None


def is_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return None


def _id_list(value: Any) -> list[int]:
    """``wp_parse_id_list``: a list or a comma/space separated string; absint, unique."""
    items: Iterable[Any]
    if isinstance(value, list | tuple):
        items = value
    elif isinstance(value, dict):
        items = value.values()
    else:
        items = re.split(r"[\s,]+", str(value))
    out: list[int] = []
    for item in items:
        n = _is_int(item) if not isinstance(item, str) or item.strip() else None
        n = abs(n) if n is not None else 0
        if n not in out:
            out.append(n)
    return [n for n in out if n] if out != [0] else []


def str_list(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if isinstance(value, dict):
        return [str(v) for v in value.values()]
    return [v for v in re.split(r"[\s,]+", str(value)) if v]


def validate(params: Mapping[str, Any], schema: Mapping[str, P]) -> tuple[dict[str, Any], RestResult | None]:
    missing = [name for name, p in schema.items() if p.required and params.get(name) is None]
    if missing:
        return {}, error_result(wp_error("rest_missing_callback_param",
                                         f"Missing parameter(s): {', '.join(missing)}", 400, params=missing))
    out: dict[str, Any] = {}
    errors: dict[str, tuple[str, str]] = {}
    for name, p in schema.items():
        if name not in params:
            out[name] = list(p.default) if isinstance(p.default, list) else p.default
            continue
        value = params[name]
        if p.kind == "integer":
            n = _is_int(value)
            if n is None:
                errors[name] = ("rest_invalid_type", f"{name} is not of type integer.")
            elif p.minimum is not None and p.maximum is not None and not p.minimum <= n <= p.maximum:
                errors[name] = ("rest_out_of_bounds",
                                f"{name} must be between {p.minimum} (inclusive) and {p.maximum} (inclusive)")
            elif p.minimum is not None and n < p.minimum:
                errors[name] = ("rest_out_of_bounds", f"{name} must be greater than or equal to {p.minimum}")
            else:
                out[name] = n
        elif p.kind == "boolean":
            b = is_bool(value)
            if b is None:
                errors[name] = ("rest_invalid_type", f"{name} is not of type boolean.")
            else:
                out[name] = b
        elif p.kind == "enum":
            if not isinstance(value, str) or value not in p.enum:
                errors[name] = ("rest_not_in_enum", f"{name} is not one of {wp_sprintf_l(list(p.enum))}.")
            else:
                out[name] = value
        elif p.kind == "enumlist":
            items = str_list(value)
            bad = [n for n, v in enumerate(items) if v not in p.enum]
            if bad:
                errors[name] = ("rest_not_in_enum", f"{name}[{bad[0]}] is not one of {wp_sprintf_l(list(p.enum))}.")
            else:
                out[name] = items
        elif p.kind == "date":
            if not isinstance(value, str) or query_literal(value, 0) is None:
                errors[name] = ("rest_invalid_date", "Invalid date.")
            else:
                out[name] = value
        elif p.kind == "idlist":
            out[name] = _id_list(value)
        elif p.kind == "email":
            if not isinstance(value, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
                errors[name] = ("rest_invalid_email", "Invalid email address.")
            else:
                out[name] = value
        else:  # string
            if not isinstance(value, str):
                errors[name] = ("rest_invalid_type", f"{name} is not of type string.")
            else:
                out[name] = value
    if errors:
        return out, error_result(rest_invalid_param(errors))
    return out, None


def write_fields(p: Mapping[str, Any], params: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    """The validated body fields the client actually sent."""
    return {k: p[k] for k in allowed if k in params}


CONTEXT = P("enum", "view", enum=("view", "edit"))
COLLECTION = {
    "context": CONTEXT,
    "page": P("integer", 1, minimum=1),
    "per_page": P("integer", 10, minimum=1, maximum=100),
    "search": P("string"),
    "exclude": P("idlist", []),
    "include": P("idlist", []),
    "offset": P("integer"),
}
DATES = {
    "after": P("date"), "before": P("date"), "modified_after": P("date"), "modified_before": P("date"),
    "dates_are_gmt": P("boolean", False),
}
POST_ORDERBY = ("date", "id", "include", "title", "slug", "modified")
SINGLE = {"context": CONTEXT}
