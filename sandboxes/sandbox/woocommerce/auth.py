"""REST API keys and request authentication, as ``WC_REST_Authentication`` does it
(plugins/woocommerce/includes/class-wc-rest-authentication.php).

Order of checks for a ``/wp-json/wc/...`` request:

1. **Over HTTPS only** — ``consumer_key`` + ``consumer_secret`` query parameters (both non-empty) win; else HTTP
   Basic ``ck:cs``. An unknown key is *not* an error here (the request just stays anonymous); a known key with
   a wrong secret is ``"Consumer secret is invalid."``. Over plain HTTP both are ignored.
2. **OAuth 1.0a one-legged** (HTTP, and HTTPS when step 1 found no user) — parameters from the query string, a
   form body, or an ``Authorization: OAuth ...`` header. If none of the five ``oauth_*`` parameters is present the
   request stays anonymous; if only some are: ``woocommerce_rest_authentication_missing_parameter``. Then, in this
   order: unknown key → ``"Consumer key is invalid."``; signature → ``"Invalid signature - provided signature does
   not match."``; timestamp outside ±15 min → ``"Invalid timestamp."``; nonce already used → ``"Invalid nonce -
   nonce has already been used."``. Used nonces are stored per key *keyed by timestamp* (two requests with the
   same timestamp overwrite each other's entry — a WooCommerce quirk kept on purpose) and expire after 15 min.
3. **Key permissions** (``check_permissions``): GET/HEAD need ``read``/``read_write``, POST/PUT/PATCH/DELETE need
   ``write``/``read_write`` → 401 ``woocommerce_rest_authentication_error`` "The API key provided does not have
   read|write permissions.".

Signature base string: ``METHOD&rawurlencode(home_url(path, scheme))&params`` where ``path`` is the request path
with the site's home path removed (so a WordPress in a sub-directory signs its full URL), ``params`` are *all*
query/form parameters plus the OAuth ones except ``oauth_signature``, sorted by raw key (``strcmp``), each
``rawurlencode(rawurlencode(k) "=" rawurlencode(v))``, joined by ``%26``. Array parameters (``a[]=1``) are expanded
PHP-style as ``a%5B0%5D=1`` — which differs from what generic OAuth libraries sign. Key: ``consumer_secret + "&"``;
HMAC-SHA1 or HMAC-SHA256; base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

from sandbox.woocommerce.php import PhpValue, php_empty, php_query, php_query_pairs, rawurlencode, wp_error

__all__ = [
    "NONCE_WINDOW",
    "ApiKey",
    "AuthOutcome",
    "authenticate",
    "check_permissions",
    "oauth1_sign",
    "signature_base_string",
]

NONCE_WINDOW = 15 * 60
OAUTH_PARAMS = ("oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method")
PERMISSIONS = ("read", "write", "read_write")
_HEADER_PARAM = re.compile(r'(oauth_[a-z_-]*)=(:?"([^"]*)"|([^,]*))')


@dataclass
class ApiKey:
    """A row of ``wp_woocommerce_api_keys`` (the real table stores a hash of the key; we keep it plain)."""

    key_id: int
    consumer_key: str
    consumer_secret: str
    permissions: str
    description: str = ""
    user_id: int = 1
    nonces: dict[str, str] = field(default_factory=dict)  # timestamp -> nonce, like WooCommerce's serialized array
    last_access: float | None = None

    @property
    def truncated_key(self) -> str:
        return self.consumer_key[-7:]

    @classmethod
    def generate(cls, key_id: int, permissions: str, description: str = "") -> ApiKey:
        if permissions not in PERMISSIONS:
            raise ValueError(f"permissions must be one of {', '.join(PERMISSIONS)}, not {permissions!r}")
        return cls(key_id, "ck_" + secrets.token_hex(20), "cs_" + secrets.token_hex(20), permissions, description)


@dataclass
class AuthOutcome:
    key: ApiKey | None = None
    mode: str | None = None  # "basic" | "query" | "oauth1" (None: anonymous)
    error: dict[str, Any] | None = None  # a WP error body; data.status is the HTTP status


def _auth_error(message: str) -> dict[str, Any]:
    return wp_error("woocommerce_rest_authentication_error", message, 401)


def _pairs(params: Mapping[str, Any] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    if isinstance(params, Mapping):
        out: list[tuple[str, str]] = []
        for k, v in params.items():
            if isinstance(v, list | tuple):
                out.extend((str(k), str(item)) for item in v)
            else:
                out.append((str(k), str(v)))
        return out
    return [(str(k), str(v)) for k, v in params]


def _normalized_params(params: Mapping[str, PhpValue]) -> str:
    parts: list[str] = []
    for key in sorted(params, key=lambda k: k.encode()):  # uksort(..., 'strcmp') on the raw keys
        if key == "oauth_signature":
            continue
        value = params[key]
        ekey = rawurlencode(key)
        if isinstance(value, str):
            parts.append(rawurlencode(f"{ekey}={rawurlencode(value)}"))
            continue
        items = enumerate(value) if isinstance(value, list) else value.items()
        for sub, item in items:
            parts.append(rawurlencode(f"{ekey}%5B{sub}%5D={rawurlencode(item)}"))
    return "%26".join(parts)


def signature_base_string(method: str, url: str, params: Mapping[str, PhpValue]) -> str:
    """``METHOD&rawurlencode(url)&params`` exactly as WooCommerce builds it (``url`` without a query)."""
    return f"{method.upper()}&{rawurlencode(url)}&{_normalized_params(params)}"


def _sign(base: str, consumer_secret: str, algorithm: str) -> str:
    digest = hashlib.sha1 if algorithm == "HMAC-SHA1" else hashlib.sha256
    return base64.b64encode(hmac.new(f"{consumer_secret}&".encode(), base.encode(), digest).digest()).decode()


def oauth1_sign(method: str, url: str, params: Mapping[str, Any] | Iterable[tuple[str, str]], consumer_secret: str,
                algorithm: str = "HMAC-SHA256") -> str:
    """The ``oauth_signature`` WooCommerce expects.

    ``url``: the request URL as the store's home URL spells it (scheme, host, port, sub-path), with or without a
    query — query parameters in it are signed too. ``params``: every other query parameter including the
    ``oauth_*`` ones (``oauth_signature`` is ignored); a mapping (list values become repeated keys) or
    ``(key, value)`` pairs, un-encoded."""
    if algorithm not in ("HMAC-SHA1", "HMAC-SHA256"):
        raise ValueError("algorithm must be HMAC-SHA1 or HMAC-SHA256")
    parts = urlsplit(url)
    merged = php_query(parts.query)
    merged.update(php_query_pairs(_pairs(params)))
    base_url = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return _sign(signature_base_string(method, base_url, merged), consumer_secret, algorithm)


def _header_oauth_params(header: str) -> dict[str, str]:
    header = header.strip()
    if not header.startswith("OAuth "):
        return {}
    out: dict[str, str] = {}
    for m in _HEADER_PARAM.finditer(header):
        out[m.group(1)] = unquote_plus(m.group(3) or m.group(4) or "")
    return out


def _basic_credentials(header: str) -> tuple[str, str] | None:
    if not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def check_permissions(key: ApiKey, method: str) -> dict[str, Any] | None:
    method = method.upper()
    if method in ("HEAD", "GET"):
        if key.permissions not in ("read", "read_write"):
            return _auth_error("The API key provided does not have read permissions.")
    elif method in ("POST", "PUT", "PATCH", "DELETE"):
        if key.permissions not in ("write", "read_write"):
            return _auth_error("The API key provided does not have write permissions.")
    elif method != "OPTIONS":
        return _auth_error("Unknown request method.")
    return None


def authenticate(keys: Mapping[str, ApiKey], *, ssl: bool, method: str, signed_url: str,
                 get: Mapping[str, PhpValue], post: Mapping[str, PhpValue], authorization: str,
                 now: float | None = None) -> AuthOutcome:
    """Run WooCommerce's authentication for one request.

    ``signed_url``: ``home_url(path-without-home-path, scheme)`` — what the signature must cover. ``get``/``post``:
    PHP-parsed query and form parameters. ``now``: the store clock (seconds)."""
    now = time.time() if now is None else now
    error: dict[str, Any] | None = None
    if ssl:
        ck = cs = ""
        mode = "query"
        qk, qs = get.get("consumer_key"), get.get("consumer_secret")
        if not php_empty(qk) and not php_empty(qs) and isinstance(qk, str) and isinstance(qs, str):
            ck, cs = qk, qs
        if not ck:
            basic = _basic_credentials(authorization)
            if basic and basic[0] and basic[1]:
                (ck, cs), mode = basic, "basic"
        if ck and cs:
            key = keys.get(ck)
            if key is not None:
                if hmac.compare_digest(key.consumer_secret.encode(), cs.encode()):
                    return AuthOutcome(key, mode)
                error = _auth_error("Consumer secret is invalid.")
    # OAuth 1.0a: $_GET + $_POST + Authorization: OAuth header.
    params: dict[str, PhpValue] = {**get, **post}
    params.update(_header_oauth_params(authorization))
    missing = [p for p in OAUTH_PARAMS if php_empty(params.get(p))]
    if len(missing) == len(OAUTH_PARAMS):
        return AuthOutcome(error=error)
    if missing:
        noun = "parameter" if len(missing) == 1 else "parameters"
        return AuthOutcome(error=wp_error("woocommerce_rest_authentication_missing_parameter",
                                          f"Missing OAuth {noun} {', '.join(missing)}", 401))
    consumer_key, timestamp, nonce, signature, algorithm = (params[p] for p in OAUTH_PARAMS)
    if not all(isinstance(v, str) for v in (consumer_key, timestamp, nonce, signature, algorithm)):
        return AuthOutcome(error=_auth_error("Consumer key is invalid."))
    assert isinstance(consumer_key, str) and isinstance(timestamp, str) and isinstance(nonce, str)
    assert isinstance(signature, str) and isinstance(algorithm, str)
    key = keys.get(consumer_key)
    if key is None:
        return AuthOutcome(error=_auth_error("Consumer key is invalid."))
    if algorithm not in ("HMAC-SHA1", "HMAC-SHA256"):
        return AuthOutcome(error=_auth_error("Invalid signature - signature method is invalid."))
    provided = unquote(signature.replace(" ", "+"))
    expected = _sign(signature_base_string(method, signed_url, params), key.consumer_secret, algorithm)
    if not hmac.compare_digest(expected.encode(), provided.encode()):
        return AuthOutcome(error=_auth_error("Invalid signature - provided signature does not match."))
    try:
        ts = int(timestamp)
    except ValueError:
        return AuthOutcome(error=_auth_error("Invalid timestamp."))
    if ts < now - NONCE_WINDOW or ts > now + NONCE_WINDOW:
        return AuthOutcome(error=_auth_error("Invalid timestamp."))
    if nonce in key.nonces.values():
        return AuthOutcome(error=_auth_error("Invalid nonce - nonce has already been used."))
    key.nonces[timestamp] = nonce
    for stamp in [s for s in key.nonces if _int_or_zero(s) < now - NONCE_WINDOW]:
        del key.nonces[stamp]
    return AuthOutcome(key, "oauth1")


def _int_or_zero(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0
