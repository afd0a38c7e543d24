"""TikTok's answers → shopsync's error classes. Every Open API answer is ``{code, message, request_id, data}``;
``code != 0`` is an error even at HTTP 200, and the HTTP status is not reliable for business errors, so the
envelope code decides (source: the common-errors page and each endpoint's error table, see docs/tiktok.md):

* rate limited (back off, retry): HTTP 429, 36009002, 12052109;
* transient (retry with backoff): HTTP 5xx, 36009003 internal, 36009007 timeout, 12001000, 12052881, 33001002,
  10006402;
* the access token expired (refresh, then retry once): 105002;
* the authorization is gone (the store needs re-authorization): 101000, 105001 [unverified], 36004001,
  36004004, 36004005, and 36009004 when it names the access token or the shop cipher;
* anything else is permanent for this request (``TikTokApiError`` carries the code for callers that handle it:
  12052180 search cap, 12019045 price lock, 12019150 product gone, …).
"""

from __future__ import annotations

from enum import Enum

from worker.errors import PermanentError

__all__ = ["ErrorKind", "TikTokApiError", "classify"]


class ErrorKind(Enum):
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 (a kind of error, not a secret)
    REAUTH = "reauth"
    PERMANENT = "permanent"


RATE_LIMIT_CODES = frozenset({36009002, 12052109})
TRANSIENT_CODES = frozenset({36009003, 36009007, 12001000, 12052881, 33001002, 10006402})
REAUTH_CODES = frozenset({101000, 105001, 36004001, 36004004, 36004005})


class TikTokApiError(PermanentError):
    """A non-zero envelope code retrying cannot fix; ``code`` and TikTok's ``tiktok_message`` say which."""

    def __init__(self, message: str, code: int, tiktok_message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.tiktok_message = tiktok_message


def classify(http_status: int, code: int | None, message: str = "") -> ErrorKind | None:
    """None for a success (HTTP < 300 and code 0)."""
    if http_status == 429 or code in RATE_LIMIT_CODES:
        return ErrorKind.RATE_LIMITED
    if code == 0 and http_status < 300:
        return None
    if code == 105002:
        return ErrorKind.TOKEN_EXPIRED
    if code in REAUTH_CODES:
        return ErrorKind.REAUTH
    if code == 36009004:
        lowered = message.lower()
        if "invalid" in lowered and any(k in lowered for k in ("access-token", "access_token", "shop_cipher")):
            return ErrorKind.REAUTH
    if http_status >= 500 or code in TRANSIENT_CODES:
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT
