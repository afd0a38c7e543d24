"""Credential sealing: round trips, every failure mode, rotation, and key-spec parsing (no database)."""

from __future__ import annotations

import base64
import os
import re

import pytest

from worker.config import load_settings
from worker.errors import ConfigError, SealingError
from worker.sealing import Sealed, Sealer, generate_key_spec, parse_sealing_keys

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
B64_A = base64.b64encode(KEY_A).decode()
B64_B = base64.urlsafe_b64encode(KEY_B).decode().rstrip("=")  # urlsafe, unpadded: also accepted
CREDS = {"access_token": "shpat_0123456789abcdef", "scope": "read_products"}


def sealer(spec: str) -> Sealer:
    return Sealer.from_settings(load_settings(sealing_keys=spec))


def test_round_trip_json_and_bytes() -> None:
    s = sealer(f"a:{B64_A}")
    sealed = s.seal(CREDS, context="store-1")
    assert sealed.key_id == "a"
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]+", sealed.sealed)
    assert "shpat_" not in sealed.sealed
    assert s.open_json(sealed.key_id, sealed.sealed, context="store-1") == CREDS

    raw = s.seal(b"\x00binary\xff", context="store-1")
    assert s.open(raw.key_id, raw.sealed, context="store-1") == b"\x00binary\xff"


def test_sealed_is_frozen_and_repr_hides_blob() -> None:
    sealed = sealer(f"a:{B64_A}").seal(CREDS, context="s")
    with pytest.raises(AttributeError):
        sealed.key_id = "b"  # type: ignore[misc]
    assert sealed.sealed not in repr(sealed)


def test_random_nonce_makes_each_seal_different() -> None:
    s = sealer(f"a:{B64_A}")
    one, two = s.seal(CREDS, context="store-1"), s.seal(CREDS, context="store-1")
    assert one.sealed != two.sealed
    assert s.open_json("a", one.sealed, context="store-1") == s.open_json("a", two.sealed, context="store-1")


def test_wrong_context_fails() -> None:
    s = sealer(f"a:{B64_A}")
    sealed = s.seal(CREDS, context="store-1")
    with pytest.raises(SealingError) as err:
        s.open("a", sealed.sealed, context="store-2")
    assert "shpat_" not in str(err.value)


def test_empty_context_is_refused() -> None:
    s = sealer(f"a:{B64_A}")
    with pytest.raises(SealingError):
        s.seal(CREDS, context="")
    sealed = s.seal(CREDS, context="x")
    with pytest.raises(SealingError):
        s.open("a", sealed.sealed, context="")


def test_unknown_key_id_fails() -> None:
    s = sealer(f"a:{B64_A}")
    sealed = s.seal(CREDS, context="c")
    with pytest.raises(SealingError, match="unknown sealing key id 'zzz'"):
        s.open("zzz", sealed.sealed, context="c")


def test_tampered_blob_fails() -> None:
    s = sealer(f"a:{B64_A}")
    sealed = s.seal(CREDS, context="c").sealed
    body = bytearray(base64.urlsafe_b64decode(sealed[3:] + "=" * (-len(sealed[3:]) % 4)))
    for index in (0, 12, len(body) - 1):  # nonce, ciphertext, tag
        flipped = bytearray(body)
        flipped[index] ^= 0x01
        tampered = "v1." + base64.urlsafe_b64encode(bytes(flipped)).decode().rstrip("=")
        with pytest.raises(SealingError, match="failed authentication"):
            s.open("a", tampered, context="c")


def test_blob_sealed_with_another_key_fails() -> None:
    sealed = sealer(f"a:{B64_B}").seal(CREDS, context="c")
    with pytest.raises(SealingError, match="failed authentication"):
        sealer(f"a:{B64_A}").open("a", sealed.sealed, context="c")


@pytest.mark.parametrize("bad", ["", "v2.AAAA", "v1.", "v1.AAAA", "v1.not base64!", "v1." + "A" * 37,
                                 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
def test_malformed_strings_fail(bad: str) -> None:
    with pytest.raises(SealingError, match="malformed"):
        sealer(f"a:{B64_A}").open("a", bad, context="c")


def test_open_json_rejects_non_object() -> None:
    s = sealer(f"a:{B64_A}")
    for payload in (b"[1,2]", b"not json at all"):
        sealed = s.seal(payload, context="c")
        with pytest.raises(SealingError) as err:
            s.open_json("a", sealed.sealed, context="c")
        assert payload.decode() not in str(err.value)


def test_rotation_old_key_listed_second_still_opens() -> None:
    old = sealer(f"old:{B64_A}")
    sealed_old = old.seal(CREDS, context="store-1")
    assert not old.needs_reseal(sealed_old.key_id)

    rotated = sealer(f"new:{B64_B}, old:{B64_A}")
    assert rotated.active_key_id == "new"
    assert rotated.key_ids == ("new", "old")
    assert rotated.open_json(sealed_old.key_id, sealed_old.sealed, context="store-1") == CREDS
    assert rotated.needs_reseal("old")

    resealed = rotated.seal(rotated.open_json("old", sealed_old.sealed, context="store-1"), context="store-1")
    assert resealed.key_id == "new"
    assert not rotated.needs_reseal(resealed.key_id)

    # Once the old key is dropped from the list, its blobs no longer open.
    with pytest.raises(SealingError, match="unknown sealing key id"):
        sealer(f"new:{B64_B}").open("old", sealed_old.sealed, context="store-1")


def test_repr_hides_keys() -> None:
    s = sealer(f"new:{B64_B},old:{B64_A}")
    text = repr(s)
    assert "new" in text and "old" in text
    for secret in (B64_A, B64_B, repr(KEY_A), repr(KEY_B), KEY_A.hex()):
        assert secret not in text


def test_direct_constructor_validates() -> None:
    s = Sealer({"a": KEY_A, "b": KEY_B}, active="b")
    assert s.active_key_id == "b"
    assert s.needs_reseal("a")
    with pytest.raises(ConfigError):
        Sealer({"a": KEY_A}, active="b")
    with pytest.raises(ConfigError):
        Sealer({"a": KEY_A[:16]}, active="a")
    with pytest.raises(ConfigError):
        Sealer({"bad id!": KEY_A}, active="bad id!")
    with pytest.raises(ConfigError):
        Sealer({}, active="a")


def test_from_settings_without_keys() -> None:
    with pytest.raises(ConfigError, match="SHOPSYNC_SEALING_KEYS is not set"):
        Sealer.from_settings(load_settings(sealing_keys=None))


def test_parse_accepts_standard_and_urlsafe_base64() -> None:
    urlsafe_key = bytes([0xFB, 0xFF] * 16)  # encodes with '-' / '_' in urlsafe, '+' / '/' in standard
    spec = (f" a:{base64.b64encode(urlsafe_key).decode()} ,"
            f"b:{base64.urlsafe_b64encode(urlsafe_key).decode()},c:{B64_B},")
    active, keys = parse_sealing_keys(spec)
    assert active == "a"
    assert list(keys) == ["a", "b", "c"]
    assert keys["a"] == keys["b"] == urlsafe_key
    assert keys["c"] == KEY_B


SECRET_33 = base64.b64encode(b"S" * 33).decode()
SECRET_16 = base64.b64encode(b"T" * 16).decode()


@pytest.mark.parametrize(
    ("spec", "message", "material"),
    [
        (f"a:{B64_A},b:%%%notbase64{B64_B[:20]}", r"pair 2: key is not valid base64", B64_B[:20]),
        (f"a:{SECRET_16}", r"pair 1: key decodes to 16 bytes, expected 32", SECRET_16),
        (f"a:{B64_A},b:{SECRET_33}", r"pair 2: key decodes to 33 bytes, expected 32", SECRET_33),
        (f"a:{B64_A},a:{B64_B}", r"pair 2: duplicate key id 'a'", B64_B),
        (f"a:{B64_A},bad id:{B64_B}", r"pair 2: key id must be", B64_B),
        (f"a:{B64_A},{'x' * 33}:{B64_B}", r"pair 2: key id must be", B64_B),
        (f"{B64_A}", r"pair 1: expected key_id:base64key", B64_A),
        (f"a:{B64_A},b:", r"pair 2: key is empty", B64_A),
        (" , ", r"SHOPSYNC_SEALING_KEYS is empty", None),
    ],
)
def test_parse_errors_name_the_pair_but_not_the_key(spec: str, message: str, material: str | None) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        sealer(spec)
    text = str(err.value)
    if material is not None:
        assert material not in text
    assert B64_A not in text and B64_B not in text


def test_generate_key_spec() -> None:
    spec = generate_key_spec()
    assert re.fullmatch(r"k\d{8}:[A-Za-z0-9+/]{43}=", spec)
    active, keys = parse_sealing_keys(spec)
    assert len(keys[active]) == 32

    named = generate_key_spec("prod-2")
    assert named.startswith("prod-2:")
    assert named != generate_key_spec("prod-2")  # fresh randomness each time
    s = sealer(f"{named},{spec}")
    sealed = s.seal({"k": "v"}, context="c")
    assert s.open_json("prod-2", sealed.sealed, context="c") == {"k": "v"}

    with pytest.raises(ConfigError):
        generate_key_spec("no spaces allowed")


def test_seal_rejects_unserialisable_mapping_without_quoting_it() -> None:
    s = sealer(f"a:{B64_A}")
    with pytest.raises(SealingError) as err:
        s.seal({"token": object()}, context="c")
    assert "object at" not in str(err.value)


def test_sealed_dataclass_fields() -> None:
    token = os.urandom(4).hex()
    s = sealer(f"a:{B64_A}")
    sealed = s.seal({"t": token}, context="c")
    assert isinstance(sealed, Sealed)
    assert Sealed(sealed.key_id, sealed.sealed) == sealed


def test_a_connector_seals_with_the_settings_it_is_given_now() -> None:
    # settings objects come and go (tests, reloads); one freed settings object's id() can be reused by the
    # next, which must still get a sealer with its own keys
    from worker.connectors.shoprenter import CONNECTOR

    for i in range(20):
        core = load_settings(sealing_keys=generate_key_spec(f"k{i}"))
        sealed = CONNECTOR.sealer(core).seal(CREDS, context="store-1")
        assert sealed.key_id == f"k{i}"
        assert Sealer.from_settings(core).open_json(sealed.key_id, sealed.sealed, context="store-1") == CREDS
        del core
