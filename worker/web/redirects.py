"""Sending the browser back to the frontend after an install step, without becoming an open redirect."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.responses import RedirectResponse, Response

__all__ = ["frontend_redirect", "safe_return_to"]


def frontend_redirect(base: str, query: Mapping[str, str], fragment: Mapping[str, str] | None = None) -> Response:
    parts = urlsplit(base)
    joined = "&".join(q for q in (parts.query, urlencode(query)) if q)
    # fragments never reach servers or their logs: claim tokens travel there
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, joined, urlencode(fragment) if fragment else ""))
    return RedirectResponse(url, status_code=302)


def safe_return_to(return_to: str | None, frontend_url: str) -> str:
    """Only URLs on the frontend's own origin: anything else would be an open redirect."""
    if return_to and (return_to == frontend_url or return_to.startswith(frontend_url + "/")):
        return return_to
    return frontend_url
