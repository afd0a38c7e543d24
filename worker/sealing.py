"""Credential sealing: AES-256-GCM with key ids, so keys can rotate without a flag day.

Keys come from ``SHOPSYNC_SEALING_KEYS`` as comma-separated ``key_id:base64(32 bytes)`` pairs. The first
pair seals; every listed key opens, so rotation is: put the new key first, keep the old one second until
``needs_reseal`` finds nothing left sealed with it. Callers pass a ``context`` (e.g. the store id) that
is bound as associated data, so a sealed blob copied onto another row will not open.

Sealed strings are ``v1.`` + urlsafe base64 (no padding) of ``nonce(12) || ciphertext || tag(16)``.
No error message here ever contains plaintext or key material.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from worker.config import Settings
from worker.errors import ConfigError, SealingError

__all__ = ["KEY_BYTES", "Sealed", "Sealer", "generate_key_spec", "parse_sealing_keys"]

KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_PREFIX = "v1."
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")
_B64_ANY = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed credential as stored: the key id that sealed it and the ``v1.`` string."""

    key_id: str
    # Ciphertext is not secret, but keep it out of reprs/logs like everything credential-shaped.
    sealed: str = field(repr=False)


def _decode_key(text: str) -> bytes | None:
    """Standard or urlsafe base64, padding optional; None if it is not base64 at all."""
    if not _B64_ANY.match(text):
        return None
    body = text.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_sealing_keys(spec: str) -> tuple[str, dict[str, bytes]]:
    """Parse ``key_id:base64,...`` into (active key id, keys). Errors name the pair index, never the key."""
    pairs = [p.strip() for p in spec.split(",")]
    pairs = [p for p in pairs if p]
    if not pairs:
        raise ConfigError("SHOPSYNC_SEALING_KEYS is empty: expected comma-separated key_id:base64key pairs")
    keys: dict[str, bytes] = {}
    for index, pair in enumerate(pairs, start=1):
        where = f"SHOPSYNC_SEALING_KEYS pair {index}"
        key_id, sep, encoded = pair.partition(":")
        key_id, encoded = key_id.strip(), encoded.strip()
        if not sep:
            raise ConfigError(f"{where}: expected key_id:base64key (no ':' found)")
        if not _KEY_ID.match(key_id):
            raise ConfigError(f"{where}: key id must be 1-32 characters of A-Z a-z 0-9 _ -")
        if key_id in keys:
            raise ConfigError(f"{where}: duplicate key id {key_id!r}")
        if not encoded:
            raise ConfigError(f"{where}: key is empty")
        key = _decode_key(encoded)
        if key is None:
            raise ConfigError(f"{where}: key is not valid base64")
        if len(key) != KEY_BYTES:
            raise ConfigError(f"{where}: key decodes to {len(key)} bytes, expected {KEY_BYTES}")
        keys[key_id] = key
    return pairs[0].partition(":")[0].strip(), keys


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _context_bytes(context: str) -> bytes:
    # An empty context would let a blob open on any row, which is what context exists to prevent.
    if not isinstance(context, str) or not context:
        raise SealingError("sealing context must be a non-empty string (e.g. the store id)")
    return context.encode("utf-8")


class Sealer:
    """Seals with the active key, opens with any listed key."""

    __slots__ = ("_active", "_aeads")

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if not keys:
            raise ConfigError("no sealing keys given")
        for key_id, key in keys.items():
            if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
                raise ConfigError("sealing key id must be 1-32 characters of A-Z a-z 0-9 _ -")
            if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
                raise ConfigError(f"sealing key {key_id!r} must be exactly {KEY_BYTES} bytes")
        if active not in keys:
            raise ConfigError(f"active sealing key id {active!r} is not among the keys")
        self._active = active
        self._aeads = {key_id: AESGCM(bytes(key)) for key_id, key in keys.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        if settings.sealing_keys is None:
            raise ConfigError("SHOPSYNC_SEALING_KEYS is not set: credentials cannot be sealed "
                              "(generate one with `shopsync generate-key`)")
        active, keys = parse_sealing_keys(settings.sealing_keys.get_secret_value())
        return cls(keys, active)

    @property
    def active_key_id(self) -> str:
        return self._active

    @property
    def key_ids(self) -> tuple[str, ...]:
        """All key ids that can open, active first."""
        return (self._active, *(k for k in self._aeads if k != self._active))

    def needs_reseal(self, key_id: str) -> bool:
        """True when a blob sealed under ``key_id`` should be re-sealed with the active key."""
        return key_id != self._active

    def seal(self, data: Mapping[str, Any] | bytes, *, context: str) -> Sealed:
        """Seal bytes, or a mapping as compact JSON, bound to ``context``."""
        aad = _context_bytes(context)
        if isinstance(data, bytes | bytearray):
            plaintext = bytes(data)
        elif isinstance(data, Mapping):
            try:
                plaintext = json.dumps(dict(data), separators=(",", ":"), sort_keys=True).encode("utf-8")
            except (TypeError, ValueError):
                # The exception text could quote a value; say only what kind of problem it is.
                raise SealingError("credential mapping is not JSON-serialisable") from None
        else:
            raise SealingError(f"cannot seal a {type(data).__name__}: pass a mapping or bytes")
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._aeads[self._active].encrypt(nonce, plaintext, aad)
        return Sealed(key_id=self._active, sealed=_PREFIX + _b64url(nonce + ciphertext))

    def open(self, key_id: str, sealed: str, *, context: str) -> bytes:
        """Open a blob sealed under ``key_id`` for ``context``; SealingError on any mismatch."""
        aad = _context_bytes(context)
        aead = self._aeads.get(key_id) if isinstance(key_id, str) else None
        if aead is None:
            shown = key_id[:40] if isinstance(key_id, str) else type(key_id).__name__
            raise SealingError(f"unknown sealing key id {shown!r} "
                               "(is it still listed in SHOPSYNC_SEALING_KEYS?)")
        if not isinstance(sealed, str) or not sealed.startswith(_PREFIX):
            raise SealingError("sealed credential is malformed (expected a 'v1.' string)")
        body = sealed[len(_PREFIX):]
        if not _URLSAFE.match(body):
            raise SealingError("sealed credential is malformed (not urlsafe base64)")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise SealingError("sealed credential is malformed (not urlsafe base64)") from None
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise SealingError("sealed credential is malformed (too short)")
        try:
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad)
        except InvalidTag:
            raise SealingError("sealed credential failed authentication "
                               "(tampered, sealed for another context, or wrong key)") from None

    def open_json(self, key_id: str, sealed: str, *, context: str) -> dict[str, Any]:
        """Open a blob sealed from a mapping."""
        plaintext = self.open(key_id, sealed, context=context)
        try:
            value = json.loads(plaintext)
        except (UnicodeDecodeError, ValueError):
            # JSONDecodeError carries the document; drop it so plaintext cannot leak via tracebacks.
            raise SealingError("sealed credential is not JSON") from None
        if not isinstance(value, dict):
            raise SealingError(f"sealed credential is JSON {type(value).__name__}, expected an object")
        return value

    def __repr__(self) -> str:
        return f"Sealer(active_key_id={self._active!r}, key_ids={list(self.key_ids)!r})"


def generate_key_spec(key_id: str | None = None) -> str:
    """A fresh ``key_id:base64`` pair for SHOPSYNC_SEALING_KEYS (key id defaults to ``k`` + yyyymmdd)."""
    if key_id is None:
        key_id = f"k{datetime.now(UTC):%Y%m%d}"
    if not _KEY_ID.match(key_id):
        raise ConfigError("key id must be 1-32 characters of A-Z a-z 0-9 _ -")
    return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode('ascii')}"
