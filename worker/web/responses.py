"""What every web route shares: the one error shape and reading request headers safely. Connector
routes import these from here, never from the app module."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["error_response", "header_value"]


def error_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The one error shape: ``error`` is a stable snake_case code, ``detail`` is for humans."""
    try:
        code = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:      # a non-standard status some handler chose
        code = "error"
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def header_value(request: Request, name: str, max_length: int = 200) -> str | None:
    """A request header stripped, or None when it is missing, blank or longer than ``max_length``."""
    value = request.headers.get(name)
    if value is None or not value.strip() or len(value) > max_length:
        return None
    return value.strip()
