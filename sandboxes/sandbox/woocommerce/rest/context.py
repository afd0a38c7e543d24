"""The request a handler gets, the result it returns, and the error answers every handler shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.woocommerce.php import PhpValue, php_json, wp_error
from sandbox.woocommerce.state import WooStore
from sandbox.woocommerce.webhooks import WooWebhook

if TYPE_CHECKING:
    from sandbox.woocommerce.auth import ApiKey

__all__ = [
    "CANNOT_CREATE",
    "CANNOT_DELETE",
    "CANNOT_EDIT",
    "CANNOT_LIST",
    "CANNOT_VIEW",
    "JSON_TYPE",
    "Ctx",
    "RestRequest",
    "RestResult",
    "denied",
    "error_result",
    "json_result",
    "no_route",
    "value_error",
]

JSON_TYPE = "application/json; charset=UTF-8"


@dataclass
class RestRequest:
    method: str  # the HTTP method as sent (signatures use it)
    route: str  # "/wc/v3/products/12" (after /wp-json)
    get: dict[str, PhpValue]
    post: dict[str, PhpValue] = field(default_factory=dict)  # form body
    json: dict[str, Any] = field(default_factory=dict)  # JSON body
    authorization: str = ""
    method_override: str = ""
    ssl: bool = False
    signed_path: str = ""  # the request path minus the home path, e.g. "wp-json/wc/v3/products"


@dataclass
class RestResult:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    auth: str | None = None
    ping: WooWebhook | None = None


@dataclass
class Ctx:
    store: WooStore
    req: RestRequest
    method: str
    url: dict[str, str]
    key: ApiKey | None

    @property
    def anon(self) -> bool:
        return self.key is None

    @property
    def params(self) -> dict[str, Any]:
        # WP_REST_Request::get_parameter_order: JSON body, form body, query string, then URL parameters.
        return {**self.url, **self.req.get, **self.req.post, **self.req.json}

    def id(self, name: str = "id") -> int:
        return int(self.url[name])


def error_result(body: dict[str, Any], headers: list[tuple[str, str]] | None = None) -> RestResult:
    return RestResult(int(body["data"]["status"]), php_json(body), headers or [])


def json_result(obj: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> RestResult:
    return RestResult(status, obj if isinstance(obj, bytes) else php_json(obj), headers or [])


def denied(code: str, message: str) -> RestResult:
    return error_result(wp_error(code, message, 401))


CANNOT_LIST = ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
CANNOT_VIEW = ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource.")
CANNOT_CREATE = ("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources.")
CANNOT_EDIT = ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource.")
CANNOT_DELETE = ("woocommerce_rest_cannot_delete", "Sorry, you are not allowed to delete this resource.")


def no_route() -> RestResult:
    return error_result(wp_error("rest_no_route", "No route was found matching the URL and request method.", 404))


def value_error(exc: Exception, code: str) -> RestResult:
    return error_result(wp_error(code, str(exc).strip("'\""), 400))
