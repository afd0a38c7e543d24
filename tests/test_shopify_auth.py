"""Shopify signature and shop-domain checks, against independently computed signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, urlsplit

import pytest

from worker.connectors.shopify.auth import (
    InvalidShopDomain,
    authorize_url,
    normalize_shop_domain,
    verify_callback,
    verify_webhook,
)

SECRET = "hush-app-secret"
NOW = 1_790_000_000


def signed(params: dict[str, str], secret: str = SECRET) -> list[tuple[str, str]]:
    # what Shopify does, written out by hand: sorted k=v joined with &, hex HMAC-SHA256
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return [*params.items(), ("hmac", digest)]


def callback(**extra: str) -> dict[str, str]:
    return {"code": "0907a61c0c8d55e99db179b68161bc00", "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvZGVtbw",
            "shop": "demo.myshopify.com", "state": "0123456789abcdef", "timestamp": str(NOW), **extra}


@pytest.mark.parametrize("domain", ["demo.myshopify.com", "Demo-Shop1.myshopify.com", "a.myshopify.com"])
def test_valid_shop_domains(domain: str) -> None:
    assert normalize_shop_domain(domain) == domain.lower()


@pytest.mark.parametrize("domain", [
    "", None, "demo.myshopify.com.evil.com", "evil.com", "demo.myshopify.com/admin", "-demo.myshopify.com",
    "demo.myshopify.com:8080", "169.254.169.254", "user@demo.myshopify.com", "demo\n.myshopify.com",
    "de mo.myshopify.com", "a" * 300 + ".myshopify.com", "demo.shopify.com", "http://demo.myshopify.com",
])
def test_hostile_shop_domains_are_refused(domain: str | None) -> None:
    with pytest.raises(InvalidShopDomain):
        normalize_shop_domain(domain)


def test_callback_signature_accepted() -> None:
    assert verify_callback(signed(callback()), [SECRET], now=NOW + 5)


def test_callback_with_rotated_secret_is_accepted_by_either() -> None:
    params = signed(callback(), secret="old-secret")
    assert verify_callback(params, [SECRET, "old-secret"], now=NOW)
    assert not verify_callback(params, [SECRET], now=NOW)


@pytest.mark.parametrize("tamper", ["shop", "code", "state"])
def test_altered_callback_is_refused(tamper: str) -> None:
    params = [(k, v + "x" if k == tamper else v) for k, v in signed(callback())]
    assert not verify_callback(params, [SECRET], now=NOW)


def test_old_or_future_callbacks_are_refused() -> None:
    params = signed(callback())
    assert not verify_callback(params, [SECRET], now=NOW + 91)
    assert not verify_callback(params, [SECRET], now=NOW - 91)


def test_malformed_callbacks_are_refused() -> None:
    params = signed(callback())
    assert not verify_callback([p for p in params if p[0] != "hmac"], [SECRET], now=NOW)
    assert not verify_callback([*params, ("hmac", "00")], [SECRET], now=NOW)        # two hmacs
    assert not verify_callback(signed(callback(timestamp="soon")), [SECRET], now=NOW)
    assert not verify_callback(params, [], now=NOW)
    assert not verify_callback([(k, "zz" if k == "hmac" else v) for k, v in params], [SECRET], now=NOW)


def test_signature_param_is_ignored_and_values_are_form_encoded() -> None:
    # values with characters URLSearchParams escapes: the signer encodes them, so must we
    params = callback(return_to="/app?x=1&y=a b")
    message = "&".join(f"{k}={v}" for k, v in sorted(
        (k, v.replace("/", "%2F").replace("?", "%3F").replace("=", "%3D").replace("&", "%26").replace(" ", "+"))
        for k, v in params.items()))
    digest = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    assert verify_callback([*params.items(), ("signature", "legacy"), ("hmac", digest)], [SECRET], now=NOW)


def test_webhook_signature() -> None:
    body = b'{"id": 1, "title": "Shoe \xe2\x9c\x93"}'
    good = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert verify_webhook(body, good, [SECRET])
    assert verify_webhook(body, good, ["new-secret", SECRET])
    assert not verify_webhook(body + b" ", good, [SECRET])              # raw bytes, not re-serialized JSON
    assert not verify_webhook(body, good, ["other"])
    assert not verify_webhook(body, None, [SECRET])
    assert not verify_webhook(body, "not base64 ✗", [SECRET])


def test_authorize_url() -> None:
    url = authorize_url("Demo.myshopify.com", client_id="key", scopes=["read_products", "read_orders"],
                        redirect_uri="https://app.example/shopify/callback", state="n0nce")
    parts = urlsplit(url)
    assert parts.netloc == "demo.myshopify.com" and parts.path == "/admin/oauth/authorize"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    assert query == {"client_id": "key", "scope": "read_products,read_orders",
                     "redirect_uri": "https://app.example/shopify/callback", "state": "n0nce", "grant_options[]": ""}
    assert "+" not in parts.query
    with pytest.raises(InvalidShopDomain):
        authorize_url("evil.com", client_id="k", scopes=[], redirect_uri="x", state="s")


def test_scopes_from_the_environment_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.connectors.shopify.settings import DEFAULT_SCOPES, ShopifySettings

    monkeypatch.setenv("SHOPSYNC_SHOPIFY_SCOPES", "read_products, read_orders,read_customers")
    assert ShopifySettings(_env_file=None).scopes == ["read_products", "read_orders", "read_customers"]  # type: ignore[call-arg]
    monkeypatch.delenv("SHOPSYNC_SHOPIFY_SCOPES")
    assert ShopifySettings(_env_file=None).scopes == list(DEFAULT_SCOPES)  # type: ignore[call-arg]
