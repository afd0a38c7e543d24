"""Verifying ShopRenter's signed install / uninstall / entry calls."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

import pytest

from worker.connectors.shoprenter.auth import InvalidSignedCall, verify_signed_call

SECRET = "sr_client_secret"


def sign(pairs: list[tuple[str, str]], secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), urlencode(pairs).encode(), hashlib.sha256).hexdigest()


def call(order: str = "docs", ts: int | None = None, **extra: str) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    values = {"shopname": "demo", "code": "0907a61c0c8d55e99db179b68161bc00", "timestamp": str(ts)}
    keys = ("code", "shopname", "timestamp") if order == "docs" else ("shopname", "code", "timestamp")
    params = {**values, "app_url": "https://demo.shoprenter.hu/admin/app/7", **extra}
    params["hmac"] = sign([(k, values[k]) for k in keys])
    return params


@pytest.mark.parametrize("order", ["docs", "demo"])
def test_both_documented_orders_verify(order: str) -> None:
    signed = verify_signed_call(call(order), [SECRET], max_age=300)
    assert signed.shopname == "demo" and signed.code and signed.app_url == "https://demo.shoprenter.hu/admin/app/7"


def test_an_old_secret_still_verifies_during_rotation() -> None:
    assert verify_signed_call(call(), ["new_secret", SECRET], max_age=300).shopname == "demo"


@pytest.mark.parametrize("tamper", [
    {"hmac": "0" * 64},                                       # forged
    {"shopname": "other"},                                    # signed for another shop
    {"code": "ffff"},                                         # another code
])
def test_tampered_calls_are_refused(tamper: dict[str, str]) -> None:
    params = {**call(), **tamper}
    with pytest.raises(InvalidSignedCall, match="signature"):
        verify_signed_call(params, [SECRET], max_age=300)


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(InvalidSignedCall, match="signature"):
        verify_signed_call(call(), ["another_secret"], max_age=300)


@pytest.mark.parametrize("age", [301, -301, 86_400])
def test_replays_outside_the_window_are_refused(age: int) -> None:
    with pytest.raises(InvalidSignedCall, match="too old"):
        verify_signed_call(call(ts=int(time.time()) - age), [SECRET], max_age=300)


@pytest.mark.parametrize("params,reason", [
    ({"shopname": "demo", "timestamp": "1"}, "hmac"),
    ({"shopname": "demo", "timestamp": "1", "hmac": "xyz"}, "hmac"),
    ({"shopname": "../etc", "timestamp": "1", "hmac": "a" * 64}, "shopname"),
    ({"shopname": "Demo.evil.com", "timestamp": "1", "hmac": "a" * 64}, "shopname"),
    ({"shopname": "demo", "timestamp": "yesterday", "hmac": "a" * 64}, "timestamp"),
    ({"shopname": "demo", "timestamp": "1", "hmac": "a" * 64, "app_url": "x" * 5000}, "too long"),
])
def test_malformed_calls_get_a_clear_reason(params: dict[str, str], reason: str) -> None:
    with pytest.raises(InvalidSignedCall, match=reason):
        verify_signed_call(params, [SECRET], max_age=300)
