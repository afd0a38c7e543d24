"""The HTTP endpoints of the stores' WordPress sites: the REST API (``/wp-json/...`` and ``?rest_route=``), the
home page, the legacy ``/wc-api`` index and WordPress's HTML 404.

A REST request is parsed here (body, query, method override), served by ``rest.dispatch`` under the sandbox
lock in a worker thread, and a webhook created by it is pinged before the answer goes out.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sandbox.woocommerce.php import php_json, php_query, wp_error
from sandbox.woocommerce.rest import JSON_TYPE, RestRequest, RestResult, dispatch, legacy_index
from sandbox.woocommerce.state import WooSandbox, WooStore

__all__ = ["StoreSites"]

_REST_HEADERS = [
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    ("Access-Control-Expose-Headers", "X-WP-Total, X-WP-TotalPages, Link"),
    ("Access-Control-Allow-Headers", "Authorization, X-WP-Nonce, Content-Disposition, Content-MD5, Content-Type"),
    ("Expires", "Wed, 11 Jan 1984 05:00:00 GMT"),
    ("Cache-Control", "no-cache, must-revalidate, max-age=0, no-store, private"),
]


def _html_404(store: WooStore | None) -> Response:
    title = store.title if store else "WordPress"
    body = (f"<!DOCTYPE html><html><head><title>Page not found &#8211; {title}</title></head>"
            f"<body class=\"error404\"><h1>Oops! That page can&rsquo;t be found.</h1></body></html>")
    return Response(body, status_code=404, media_type="text/html; charset=UTF-8")


def _rest_response(result: RestResult, head: bool) -> Response:
    response = Response(b"" if head else result.body, status_code=result.status, media_type=JSON_TYPE)
    if head:
        response.headers["content-length"] = str(len(result.body))
    for name, value in _REST_HEADERS:
        response.headers.append(name, value)
    for name, value in result.headers:
        response.headers.append(name, value)
    return response


class StoreSites:
    """Every store of one sandbox, each a WordPress in ``/stores/{store}``."""

    def __init__(self, sandbox: WooSandbox) -> None:
        self.sandbox = sandbox

    # --- the REST API --------------------------------------------------------------------------------------------

    async def wp_json(self, request: Request) -> Response:
        store = self._store_of(request)
        if store is None:
            return _html_404(None)
        return await self._rest(request, store, "/" + request.path_params.get("route", ""),
                                self._signed_path(request, store))

    async def _rest(self, request: Request, store: WooStore, route: str, signed_path: str) -> Response:
        sandbox = self.sandbox
        raw = await request.body()
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        json_body: dict[str, object] = {}
        post = {}
        if raw and ctype == "application/json":
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = wp_error("rest_invalid_json", "Invalid JSON body passed.", 400,
                                details={"json_error_code": 4, "json_error_message": "Syntax error"})
                return _rest_response(RestResult(400, php_json(body)), request.method == "HEAD")
            if isinstance(parsed, dict):
                json_body = parsed
        elif raw and ctype == "application/x-www-form-urlencoded":
            post = php_query(raw.decode("utf-8", "replace"))
        query = php_query(request.scope.get("query_string", b"").decode("latin-1"))
        override = request.headers.get("x-http-method-override", "")
        method_param = query.get("_method")
        if isinstance(method_param, str) and method_param:
            override = method_param
        req = RestRequest(request.method, route, query, post, json_body, request.headers.get("authorization", ""),
                          override, sandbox.ssl, signed_path)

        def run() -> RestResult:
            with sandbox.lock:
                return dispatch(store, req)

        result = await run_in_threadpool(run)
        request.state.woo_auth = result.auth
        if result.ping is not None:
            await sandbox.webhooks.ping(store, result.ping)
        return _rest_response(result, request.method == "HEAD")

    def _store_of(self, request: Request) -> WooStore | None:
        return self.sandbox.stores.get(request.path_params["store"])

    def _signed_path(self, request: Request, store: WooStore) -> str:
        # check_oauth_signature: REQUEST_URI's path, minus the home path when it starts with it (raw, undecoded).
        raw = request.scope.get("raw_path")
        path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
        prefix = urlsplit(store.home_url).path + "/"
        return path[len(prefix):] if path.startswith(prefix) else path

    # --- pages ---------------------------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        store = self._store_of(request)
        if store is None:
            return _html_404(None)
        rest_route = request.query_params.get("rest_route")
        if rest_route is not None:
            return await self._rest(request, store, "/" + rest_route.lstrip("/"), self._signed_path(request, store))
        link = f'<{store.rest_url}/>; rel="https://api.w.org/"'
        generator = f'<meta name="generator" content="WooCommerce {store.wc_version}" />' \
            if store.is_woocommerce else ""
        body = (f"<!DOCTYPE html><html lang=\"en-US\"><head><title>{store.title}</title>"
                f"<meta name=\"generator\" content=\"WordPress {store.wp_version}\" />{generator}"
                f"<link rel=\"https://api.w.org/\" href=\"{store.rest_url}/\" /></head>"
                f"<body class=\"home\"><h1>{store.title}</h1></body></html>")
        return Response(body, media_type="text/html; charset=UTF-8", headers={"Link": link})

    async def legacy(self, request: Request) -> Response:
        store = self._store_of(request)
        if store is None or not store.legacy_api:
            return _html_404(store)
        path = request.path_params.get("route", "").strip("/")
        if path in ("v3", "v2", "v1"):
            return Response(legacy_index(store, self.sandbox.ssl), media_type="application/json; charset=UTF-8")
        body = {"errors": [{"code": "woocommerce_api_no_route",
                            "message": "No route was found matching the URL and request method"}]}
        return Response(php_json(body), status_code=404, media_type="application/json; charset=UTF-8")

    async def other(self, request: Request) -> Response:
        return _html_404(self._store_of(request))
