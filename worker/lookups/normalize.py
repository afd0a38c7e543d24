"""What an agent asks for, made comparable with what the synced tables hold, or refused with a message that
never repeats the value (messages end up in logs and MCP error texts).

* Emails: trimmed and lowercased, as ``email_normalized`` is.
* Phones: parsed with ``phonenumbers`` into E.164 (``+36301234567``). Stored numbers are compared by their
  digits (``phone_normalized``), and a store may hold them internationally (``+36 30 …`` → 3630…) or as the
  country writes them at home (``06 30 …`` → 0630…): both digit strings are looked for.
* Ids: trimmed; a Shopify GraphQL id (``gid://shopify/Order/123``) becomes the id the rows hold (``123``).
"""

from __future__ import annotations

import re

import phonenumbers

__all__ = ["BadInput", "email", "identifier", "order_number", "phone", "sku", "words"]

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s.]+$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/=+-]{0,99}$")
_GID = re.compile(r"^gid://shopify/[A-Za-z]+/(\d+)(?:\?.*)?$")
_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_WORDS = 10
MAX_WORD = 50


class BadInput(ValueError):
    """A value that cannot be looked up; the message names the parameter, never its value."""


def _clean(value: str, what: str) -> str:
    text = value.strip()
    if not text:
        raise BadInput(f"{what} is empty")
    if _CONTROL.search(text):
        raise BadInput(f"{what} contains control characters")
    return text


def email(value: str) -> str:
    text = _clean(value, "email").lower()
    if not _EMAIL.match(text):
        raise BadInput("email is not an email address (expected name@domain.tld)")
    return text


def phone(value: str, region: str | None) -> tuple[str, tuple[str, ...]]:
    """The number in E.164 and the digit strings it may be stored as (international first)."""
    text = _clean(value, "phone")
    try:
        parsed = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise BadInput("phone has no country code: write it as +<country code> <number>, or pass "
                           "phone_region (e.g. HU)") from None
        raise BadInput("phone is not a phone number") from None
    if not phonenumbers.is_possible_number(parsed):
        raise BadInput("phone is not a possible phone number (too short or too long for its country)")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    national = re.sub(r"\D", "", phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL))
    candidates = tuple(dict.fromkeys(c for c in (e164[1:], national) if c))
    return e164, candidates


def identifier(value: str, what: str) -> str:
    text = _clean(value, what)
    gid = _GID.match(text)
    if gid:
        return gid.group(1)
    if not _ID.match(text):
        raise BadInput(f"{what} is not an id (letters, digits and ._:/=+- only, at most 100)")
    return text


def order_number(value: str) -> str:
    """``#1001``, ``1001`` → ``1001``."""
    text = _clean(value, "order_number").lstrip("#").strip()
    if not _NUMBER.match(text):
        raise BadInput("order_number is not an order name or number (e.g. #1001)")
    return text


def sku(value: str) -> str:
    return _clean(value, "sku")


def words(value: str) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(w for w in _clean(value, "text").split() if w))
    if len(found) > MAX_WORDS:
        raise BadInput(f"text has more than {MAX_WORDS} words")
    if any(len(w) > MAX_WORD for w in found):
        raise BadInput(f"text has a word longer than {MAX_WORD} characters")
    return found
