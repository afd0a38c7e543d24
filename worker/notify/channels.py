"""Notification channels: what each kind needs, checked before anything is stored, and their sealed secrets.

A channel's ``config`` is what members may read (addresses, hosts, the webhook URL); its secret (the SMTP
password, the Resend or Mailgun API key, the webhook signing secret) is sealed like store credentials, bound
to the channel id, and only the worker opens it. Every refusal is a ``ChannelRefused`` whose message says
what to fix, in words a person can act on, and never contains the secret.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import secrets as random_secrets
from collections.abc import Mapping
from email.headerregistry import Address
from email.utils import formataddr, parseaddr
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from worker.netguard import UnsafeUrl, normalize_store_url, resolve_checked
from worker.sealing import Sealed, Sealer

__all__ = ["KINDS", "SECRET_FIELDS", "ChannelRefused", "channel_secret", "new_signing_secret", "open_secret",
           "seal_secret", "secret_context", "sender_domain", "validate_channel"]

KINDS = ("smtp", "resend", "mailgun", "webhook")
SECRET_FIELDS = {"smtp": "password", "resend": "api_key", "mailgun": "api_key", "webhook": "signing_secret"}
SMTP_SECURITY = {"starttls": 587, "tls": 465, "none": 25}
PUBLIC_SMTP_PORTS = frozenset({25, 465, 587, 2525})
MAX_RECIPIENTS = 50                    # Resend's limit per message; plenty for alerts
_FIELDS = {
    "smtp": {"host", "port", "security", "username", "from", "to", "reply_to"},
    "resend": {"from", "to", "reply_to"},
    "mailgun": {"domain", "region", "from", "to", "reply_to"},
    "webhook": {"url"},
}
_HOST = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
_SIGNING_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]+={0,2}$")


class ChannelRefused(ValueError):  # noqa: N818 - a refusal, shown to the person who filled the form
    """Why a channel cannot be saved; the message is safe to show (never a secret)."""


def _text(config: Mapping[str, Any], name: str, *, required: bool = True, limit: int = 500) -> str | None:
    value = config.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ChannelRefused(f"{name} is required")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ChannelRefused(f"{name} must be text of at most {limit} characters")
    return value.strip()


def _address(value: str, field: str, *, display_name: bool) -> str:
    """One address, normalized (email-validator, no DNS); ``Name <a@b>`` where a display name is allowed."""
    name, addr = parseaddr(value) if display_name and "<" in value else ("", value)
    if not addr:
        raise ChannelRefused(f"{field}: {value[:100]!r} is not an email address")
    try:
        checked = validate_email(addr, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ChannelRefused(f"{field}: {addr[:100]!r} is not a valid email address: {exc}") from None
    return formataddr((name, checked)) if name else checked


def _addresses(config: Mapping[str, Any], field: str) -> list[str]:
    value = config.get(field)
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        raise ChannelRefused(f"{field} is required: one address or a list of them")
    if len(value) > MAX_RECIPIENTS:
        raise ChannelRefused(f"{field} may list at most {MAX_RECIPIENTS} addresses")
    if not all(isinstance(v, str) for v in value):
        raise ChannelRefused(f"{field} must be email addresses")
    return list(dict.fromkeys(_address(v.strip(), field, display_name=False) for v in value))


def _email_target(config: Mapping[str, Any]) -> dict[str, Any]:
    sender = _text(config, "from", limit=300)
    assert sender is not None
    out: dict[str, Any] = {"from": _address(sender, "from", display_name=True), "to": _addresses(config, "to")}
    reply_to = _text(config, "reply_to", required=False, limit=300)
    if reply_to is not None:
        out["reply_to"] = _address(reply_to, "reply_to", display_name=True)
    return out


def sender_domain(sender: str) -> str:
    """The domain of a ``from`` address (``Name <a@example.com>`` → ``example.com``)."""
    return Address(addr_spec=parseaddr(sender)[1]).domain


async def _public_host(host: str, port: int, what: str, *, allow_private: bool) -> None:
    """Outside development: the host must resolve, and only to public addresses."""
    if allow_private:
        return
    try:
        await resolve_checked(host, port, allow_private=False)
    except UnsafeUrl as exc:
        raise ChannelRefused(f"{what}: {str(exc).replace('the store', 'the host')}") from None
    except OSError:          # socket.gaierror: the name does not resolve
        raise ChannelRefused(f"{what}: {host} does not resolve to an address") from None


async def _smtp(config: Mapping[str, Any], *, allow_private: bool) -> dict[str, Any]:
    host = (_text(config, "host", limit=253) or "").lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST.match(host):
            raise ChannelRefused(f"host {host[:100]!r} is not a host name or IP address") from None
    security = config.get("security", "starttls")
    if security not in SMTP_SECURITY:
        raise ChannelRefused("security must be starttls (port 587), tls (implicit TLS, port 465) or none")
    if security == "none" and not allow_private:
        raise ChannelRefused("security none would send the password and the mail unencrypted: use starttls or tls")
    port = config.get("port", SMTP_SECURITY[security])
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ChannelRefused("port must be a number from 1 to 65535")
    if not allow_private and port not in PUBLIC_SMTP_PORTS:
        raise ChannelRefused(f"port must be one of the mail submission ports {sorted(PUBLIC_SMTP_PORTS)}")
    await _public_host(host, port, "host", allow_private=allow_private)
    out: dict[str, Any] = {"host": host, "port": port, "security": security, **_email_target(config)}
    username = _text(config, "username", required=False, limit=300)
    if username is not None:
        out["username"] = username
    return out


def _mailgun(config: Mapping[str, Any]) -> dict[str, Any]:
    domain = (_text(config, "domain", limit=253) or "").lower().rstrip(".")
    if not _HOST.match(domain) or "." not in domain:
        raise ChannelRefused(f"domain {domain[:100]!r} is not a domain name (the sending domain set up in Mailgun)")
    region = config.get("region", "us")
    if region not in ("us", "eu"):
        raise ChannelRefused("region must be us or eu (where the Mailgun domain was created)")
    return {"domain": domain, "region": region, **_email_target(config)}


async def _webhook(config: Mapping[str, Any], *, allow_private: bool) -> dict[str, Any]:
    url = _text(config, "url", limit=2000) or ""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ChannelRefused("url is not a valid URL") from None
    if parts.fragment or "#" in url:
        raise ChannelRefused("url must not contain a fragment (#...)")
    try:
        # the host rules of store URLs (https, no credentials, no local names or private literals)
        base = normalize_store_url(f"{parts.scheme}://{parts.netloc}", allow_http=allow_private,
                                   allow_private=allow_private)
    except UnsafeUrl as exc:
        raise ChannelRefused(str(exc).replace("store URL", "webhook URL").replace("the store", "the webhook")) \
            from None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    await _public_host(parts.hostname or "", port, "url", allow_private=allow_private)
    return {"url": base + (parts.path or "") + (f"?{parts.query}" if parts.query else "")}


async def validate_channel(kind: str, config: Any, *, allow_private: bool) -> dict[str, Any]:
    """The channel's config, normalized, or ``ChannelRefused`` saying what to fix."""
    if kind not in KINDS:
        raise ChannelRefused(f"kind must be one of {', '.join(KINDS)}")
    if not isinstance(config, Mapping):
        raise ChannelRefused("config must be a JSON object")
    unknown = sorted(set(config) - _FIELDS[kind])
    if unknown:
        hint = " (secrets go in \"secret\", not in config)" if set(unknown) & set(SECRET_FIELDS.values()) else ""
        raise ChannelRefused(f"unknown field(s) for a {kind} channel: {', '.join(unknown)}{hint}")
    if kind == "smtp":
        return await _smtp(config, allow_private=allow_private)
    if kind == "mailgun":
        return _mailgun(config)
    if kind == "webhook":
        return await _webhook(config, allow_private=allow_private)
    return _email_target(config)


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(random_secrets.token_bytes(32)).decode("ascii")


def channel_secret(kind: str, config: Mapping[str, Any], given: Any, *, creating: bool) -> dict[str, str] | None:
    """The secret to seal (None: keep the stored one). A webhook's signing secret is generated unless given."""
    field = SECRET_FIELDS[kind]
    if given is not None and not isinstance(given, Mapping):
        raise ChannelRefused(f"secret must be a JSON object like {{\"{field}\": \"…\"}}")
    unknown = sorted(set(given or {}) - {field})
    if unknown:
        raise ChannelRefused(f"unknown secret field(s) for a {kind} channel: {', '.join(unknown)} (expected {field})")
    value = (given or {}).get(field)
    if value is None:
        if kind == "webhook" and creating:
            return {field: new_signing_secret()}
        if creating and kind in ("resend", "mailgun"):
            raise ChannelRefused(f"secret.{field} is required: the {kind.capitalize()} API key")
        if creating and kind == "smtp" and "username" in config:
            raise ChannelRefused("secret.password is required with a username")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 1000 or any(c.isspace() for c in value):
        raise ChannelRefused(f"secret.{field} must be non-empty text without spaces")
    if kind == "webhook":
        body = value[len("whsec_"):].rstrip("=")
        try:
            decoded = base64.b64decode(body + "=" * (-len(body) % 4)) if _SIGNING_SECRET.match(value) else b""
        except (binascii.Error, ValueError):
            decoded = b""
        if not 24 <= len(decoded) <= 64:
            raise ChannelRefused("secret.signing_secret must be whsec_ followed by base64 of 24 to 64 bytes "
                                 "(omit it to have one generated)")
    return {field: value}


def secret_context(channel_id: Any) -> str:
    return f"notification_channel:{channel_id}"


def seal_secret(sealer: Sealer, channel_id: Any, secret: Mapping[str, str]) -> Sealed:
    return sealer.seal(secret, context=secret_context(channel_id))


def open_secret(sealer: Sealer, channel_id: Any, stored: Mapping[str, Any] | None) -> dict[str, Any]:
    if not stored:
        return {}
    return sealer.open_json(str(stored["key_id"]), str(stored["sealed"]), context=secret_context(channel_id))

