"""HTTP fault injection: make the next N requests fail the way a WordPress host fails.

Endpoints (what a rule matches; ``store=`` narrows it to one store):

* ``rest`` — any ``/wp-json/wc/...`` request (``webhooks`` included);
* ``webhooks`` — ``/wp-json/wc/v3/webhooks...`` only;
* ``index`` — ``/wp-json/`` and other non-WooCommerce REST routes;
* ``legacy`` — ``/wc-api/...``; ``site`` — anything else under the store;
* ``*`` — all of the above (never the sandbox's own ``/_sandbox/...``).

Kinds: ``status`` (answer at once: 5xx bodies are HTML — nginx's gateway pages, or WordPress's "critical error"
page for 500 — and 429 carries ``Retry-After``), ``hang`` (hold the request ``seconds``, then nginx's 504) and
``latency`` (delay, then serve normally; stacks with other rules). ``remaining=None`` keeps a rule until
``clear()``; ``probability`` < 1 makes it intermittent (seeded). The rule queue itself is ``sandbox.faults``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.faults import FaultQueue

__all__ = ["ENDPOINTS", "FaultRule", "WooFaults", "classify_path", "fault_body"]

ENDPOINTS = ("rest", "webhooks", "index", "legacy", "site", "*")


@dataclass
class FaultRule:
    kind: str = "status"  # "status" | "hang" | "latency"
    status: int = 503
    remaining: int | None = 1
    endpoint: str = "*"
    store: str | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    body: str | None = None
    probability: float = 1.0
    fired: int = 0

    def applies(self, endpoint: str, store: str | None) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.store is not None and self.store != store:
            return False
        if endpoint == "other":
            return False
        if self.endpoint == "*":
            return True
        if self.endpoint == "rest":
            return endpoint in ("rest", "webhooks")
        return self.endpoint == endpoint


def classify_path(path: str) -> tuple[str, str | None]:
    """-> (endpoint, store name)."""
    if not path.startswith("/stores/"):
        return "other", None
    store, _, tail = path[len("/stores/"):].partition("/")
    tail = "/" + tail
    if tail.startswith("/wp-json/wc/"):
        route = tail[len("/wp-json"):]
        parts = route.strip("/").split("/")
        return ("webhooks" if len(parts) >= 3 and parts[2] == "webhooks" else "rest"), store
    if tail == "/wp-json" or tail.startswith("/wp-json/"):
        return "index", store
    if tail.startswith("/wc-api"):
        return "legacy", store
    return "site", store


_NGINX_TITLES = {
    403: "403 Forbidden", 404: "404 Not Found", 429: "429 Too Many Requests", 502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable", 504: "504 Gateway Time-out",
}

_WP_CRITICAL = (
    '<!DOCTYPE html>\n<html lang="en-US">\n<head>\n\t<meta http-equiv="Content-Type" content="text/html; '
    'charset=utf-8" />\n\t<meta name="viewport" content="width=device-width">\n\t<title>WordPress &rsaquo; Error'
    '</title>\n</head>\n<body id="error-page">\n\t<div class="wp-die-message"><p>There has been a critical error on '
    'this website.</p><p><a href="https://wordpress.org/documentation/article/faq-troubleshooting/">Learn more about '
    'troubleshooting WordPress.</a></p></div></body>\n</html>\n'
)


def fault_body(status: int) -> tuple[bytes, str]:
    """(body, content type) for an injected status: what the web server or PHP would send."""
    if status == 500:
        return _WP_CRITICAL.encode(), "text/html; charset=UTF-8"
    title = _NGINX_TITLES.get(status, f"{status} Error")
    page = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            f"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    return page.encode(), "text/html"


@dataclass
class WooFaults(FaultQueue[FaultRule]):
    def add(self, rule: FaultRule) -> FaultRule:
        if rule.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown fault endpoint {rule.endpoint!r}; use one of {', '.join(ENDPOINTS)}")
        return super().add(rule)

    def fail_next(self, n: int = 1, status: int = 503, *, endpoint: str = "*", store: str | None = None,
                  retry_after: float | None = None, body: str | None = None) -> FaultRule:
        return self.add(FaultRule("status", status, n, endpoint, store, retry_after, body=body))

    def rate_limit_next(self, n: int = 1, *, retry_after: float = 1.0, endpoint: str = "*",
                        store: str | None = None) -> FaultRule:
        return self.add(FaultRule("status", 429, n, endpoint, store, retry_after))

    def hang_next(self, n: int = 1, seconds: float = 30.0, *, endpoint: str = "*",
                  store: str | None = None) -> FaultRule:
        return self.add(FaultRule("hang", 504, n, endpoint, store, seconds=seconds))

    def slow(self, seconds: float, n: int | None = None, *, endpoint: str = "*",
             store: str | None = None) -> FaultRule:
        return self.add(FaultRule("latency", 200, n, endpoint, store, seconds=seconds))

    def take(self, endpoint: str, store: str | None) -> tuple[float, FaultRule | None]:
        """Consume the rules matching a request -> (total added latency, the terminal rule if any)."""
        return self.take_matching(lambda rule: rule.applies(endpoint, store))
