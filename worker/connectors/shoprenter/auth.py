"""Verifying ShopRenter's signed GETs (install, uninstall, the admin's EntryPoint): hex HMAC-SHA256 with
the app's client secret over the query without ``hmac``, compared in constant time, and a timestamp
window so an old (replayed) call is refused.

Which string is signed is not settled: ShopRenter's documentation signs ``code=…&shopname=…&timestamp=…``
while its demo apps sign the parameters in the order received (``shopname=…&code=…&timestamp=…``). Both
are accepted — each is still an HMAC over exactly the values received.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from worker.connectors.shoprenter.settings import SHOP_PATTERN
from worker.connectors.signatures import hex_hmac_matches

__all__ = ["InvalidSignedCall", "SignedCall", "verify_signed_call"]

_SHOP = re.compile(SHOP_PATTERN)
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_VALUE = 2048


class InvalidSignedCall(Exception):
    """Why a signed call was refused (safe to return: never echoes the signature or code)."""


@dataclass(frozen=True)
class SignedCall:
    shopname: str
    timestamp: int
    code: str | None
    app_url: str | None


def _candidates(params: Mapping[str, str]) -> list[str]:
    """The strings ShopRenter may have signed: documented order, received order, both without app_url."""
    unsigned = [(k, v) for k, v in params.items() if k != "hmac"]
    core = [(k, v) for k, v in unsigned if k != "app_url"]
    documented = sorted(core, key=lambda kv: {"code": 0, "shopname": 1, "timestamp": 2}.get(kv[0], 3))
    found = []
    for pairs in (documented, core, unsigned, sorted(unsigned)):
        text = urlencode(pairs)
        if text not in found:
            found.append(text)
    return found


def verify_signed_call(params: Mapping[str, str], secrets: list[str], *, max_age: float,
                       now: float | None = None) -> SignedCall:
    if any(len(v) > MAX_VALUE for v in params.values()):
        raise InvalidSignedCall("a parameter is too long")
    signature = params.get("hmac", "")
    if not _HEX.match(signature):
        raise InvalidSignedCall("missing or malformed hmac")
    shop = params.get("shopname", "")
    if not _SHOP.match(shop):
        raise InvalidSignedCall("missing or invalid shopname")
    try:
        timestamp = int(params.get("timestamp", ""))
    except ValueError:
        raise InvalidSignedCall("missing or invalid timestamp") from None
    if not hex_hmac_matches(_candidates(params), signature, secrets):
        raise InvalidSignedCall("invalid signature")
    if abs((now if now is not None else time.time()) - timestamp) > max_age:
        raise InvalidSignedCall("the signed call is too old (or from the future): replays are refused")
    return SignedCall(shop, timestamp, params.get("code") or None, params.get("app_url") or None)
