"""API2 answers: the error every handler raises, and JSON or XML by the request's ``Accept`` header."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sandbox.shoprenter.render import to_xml
from sandbox.shoprenter.state import SrShop

__all__ = ["ApiError", "api_base", "json_response", "render", "wants_json"]


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message} if self.code else {"message": self.message}


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()


def render(request: Request, status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    if wants_json(request):
        return Response(orjson.dumps(obj), status_code=status, media_type="application/json", headers=headers)
    return Response(to_xml(obj), status_code=status, media_type="application/xml; charset=utf-8", headers=headers)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json", headers=headers)


def api_base(request: Request, shop: SrShop) -> str:
    """The shop's API2 base URL as this server serves it (hrefs in answers point back here)."""
    return f"{str(request.base_url).rstrip('/')}/shops/{shop.name}/api"
