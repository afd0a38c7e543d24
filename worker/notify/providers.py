"""Sending one message through a channel's provider, and what its answer means.

Every provider's answer becomes an ``Outcome``: ``sent`` (with the provider's message id), ``retry`` (a 5xx,
a timeout, a refused connection, a rate limit: the provider may take it later) or ``channel_failed`` (the
provider refused what we sent — a bad address, an unverified domain, a revoked key: the same message will be
refused again, so the channel stops until someone fixes it; ``error`` carries the provider's words).

- **Resend**: ``POST /emails`` with ``Authorization: Bearer`` and ``Idempotency-Key`` (the same key on every
  attempt of a message: Resend sends it once within 24 hours).
- **Mailgun**: ``POST /v3/{domain}/messages`` (HTTP Basic ``api``:key, multipart form). No idempotency key
  exists; our id goes in ``v:shopsync_notification`` and an ``X-Shopsync-Notification`` header.
- **SMTP** (aiosmtplib): STARTTLS or implicit TLS, connected to an address the SSRF guard checked (the name
  still verifies the certificate). A stable ``Message-ID`` lets mailboxes drop a repeat.
- **Webhook**: JSON signed per Standard Webhooks, through the SSRF-guarded client; ``webhook-id`` is stable.
"""

from __future__ import annotations

import asyncio
import email.policy
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, Literal

import aiosmtplib
import httpx

from worker.logs import redact_text
from worker.netguard import UnsafeUrl, guarded_client, resolve_checked
from worker.notify.channels import sender_domain
from worker.notify.settings import NotifySettings
from worker.notify.signing import signature_headers
from worker.notify.templates import Rendered

__all__ = ["Message", "Outcome", "deliver"]

USER_AGENT = "shopsync-notifications"
_RETRY_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Message:
    """One message, ready for any channel kind: the email parts and the webhook body."""

    notification_id: int
    organization_id: str
    rendered: Rendered
    webhook_body: bytes

    @property
    def key(self) -> str:
        """The same on every attempt: Resend's Idempotency-Key, the webhook-id."""
        return f"shopsync-notification-{self.notification_id}"


@dataclass(frozen=True)
class Outcome:
    status: Literal["sent", "retry", "channel_failed"]
    message_id: str | None = None
    error: str | None = None
    retry_in: float | None = None       # what the provider asked for (Retry-After)


def _words(text: str, limit: int = 400) -> str:
    return redact_text(" ".join(text.split()))[:limit]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(max(float(value), 0.0), 3600.0) if value is not None else None
    except ValueError:
        return None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _http_outcome(provider: str, response: httpx.Response, refused: str) -> Outcome:
    """The common part of an HTTP provider's non-2xx answer: retry what may pass later, stop on the rest."""
    if response.status_code in _RETRY_STATUSES or response.status_code >= 500:
        return Outcome("retry", error=f"{provider} answered {response.status_code}: {refused}",
                       retry_in=_retry_after(response))
    return Outcome("channel_failed", error=f"{provider} refused the message ({response.status_code}): {refused}")


# --- Resend ----------------------------------------------------------------------------------------------

async def _resend(config: Mapping[str, Any], secret: Mapping[str, Any], message: Message,
                  settings: NotifySettings) -> Outcome:
    body: dict[str, Any] = {"from": config["from"], "to": config["to"], "subject": message.rendered.subject,
                            "text": message.rendered.text, "html": message.rendered.html,
                            "headers": {"X-Shopsync-Notification": str(message.notification_id)}}
    if config.get("reply_to"):
        body["reply_to"] = config["reply_to"]
    async with httpx.AsyncClient(base_url=settings.resend_api_url, timeout=settings.send_timeout_seconds) as http:
        response = await http.post("/emails", json=body, headers={
            "Authorization": f"Bearer {secret.get('api_key', '')}", "Idempotency-Key": message.key,
            "User-Agent": USER_AGENT, "Accept": "application/json"})
    if response.status_code == 200:
        return Outcome("sent", message_id=str(_json(response).get("id") or ""))
    error = _json(response)
    name, text = str(error.get("name") or ""), str(error.get("message") or response.text)
    if response.status_code == 409 and name == "invalid_idempotent_request":
        # the key was already used for this message: an earlier attempt got through
        return Outcome("sent", message_id=None, error="Resend had already accepted this message")
    if response.status_code == 409 and name == "concurrent_idempotent_requests":
        return Outcome("retry", error="Resend is still processing an earlier attempt", retry_in=2.0)
    return _http_outcome("Resend", response, _words(f"{name}: {text}" if name else text))


# --- Mailgun ---------------------------------------------------------------------------------------------

async def _mailgun(config: Mapping[str, Any], secret: Mapping[str, Any], message: Message,
                   settings: NotifySettings) -> Outcome:
    fields: list[tuple[str, str]] = [("from", config["from"]), *(("to", t) for t in config["to"]),
                                     ("subject", message.rendered.subject), ("text", message.rendered.text),
                                     ("html", message.rendered.html),
                                     ("h:X-Shopsync-Notification", str(message.notification_id)),
                                     ("v:shopsync_notification", str(message.notification_id))]
    if config.get("reply_to"):
        fields.append(("h:Reply-To", config["reply_to"]))
    async with httpx.AsyncClient(base_url=settings.mailgun_base(str(config.get("region", "us"))),
                                 timeout=settings.send_timeout_seconds) as http:
        response = await http.post(f"/v3/{config['domain']}/messages", auth=("api", str(secret.get("api_key", ""))),
                                   files=[(name, (None, value.encode())) for name, value in fields],
                                   headers={"User-Agent": USER_AGENT})
    if response.status_code == 200:
        return Outcome("sent", message_id=str(_json(response).get("id") or ""))
    if response.status_code == 401:
        return Outcome("channel_failed", error="Mailgun refused the API key (401 Forbidden): check the key and "
                                               "the region (US or EU) of the domain")
    return _http_outcome("Mailgun", response, _words(str(_json(response).get("message") or response.text)))


# --- webhooks --------------------------------------------------------------------------------------------

async def _webhook(config: Mapping[str, Any], secret: Mapping[str, Any], message: Message,
                   settings: NotifySettings, allow_private: bool) -> Outcome:
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               **signature_headers(str(secret.get("signing_secret", "")), message.key, message.webhook_body)}
    try:
        async with guarded_client(allow_private=allow_private, verify=settings.tls_context(),
                                  timeout=settings.send_timeout_seconds) as http:
            response = await http.post(str(config["url"]), content=message.webhook_body, headers=headers)
    except UnsafeUrl as exc:
        return Outcome("channel_failed", error=f"the webhook URL is not allowed: {exc}".replace("the store", "it"))
    if 200 <= response.status_code < 300:
        return Outcome("sent", message_id=message.key)
    if 300 <= response.status_code < 400:
        return Outcome("channel_failed", error=f"the webhook URL answered {response.status_code} (a redirect, which "
                                               "is not followed): use the final URL")
    return _http_outcome("the webhook", response, _words(response.text[:300]) or "(no body)")


# --- SMTP ------------------------------------------------------------------------------------------------

# RFC 5322's hard line limit: the default (78) folds a subject that starts with a long word right after
# "Subject:", which some clients show with a leading space
_POLICY = email.policy.SMTP.clone(max_line_length=998)


def _email(config: Mapping[str, Any], message: Message) -> EmailMessage:
    mail = EmailMessage(policy=_POLICY)
    mail["From"] = config["from"]
    mail["To"] = ", ".join(config["to"])
    mail["Subject"] = message.rendered.subject
    mail["Date"] = formatdate(localtime=False)
    # the same on every attempt: mailboxes that see it twice (Gmail, many others) keep one
    mail["Message-ID"] = (f"<shopsync.{message.notification_id}.{message.organization_id[:8]}@"
                          f"{sender_domain(str(config['from']))}>")
    mail["Auto-Submitted"] = "auto-generated"          # RFC 3834: no auto-replies to alerts
    mail["X-Shopsync-Notification"] = str(message.notification_id)
    if config.get("reply_to"):
        mail["Reply-To"] = config["reply_to"]
    mail.set_content(message.rendered.text)
    mail.add_alternative(message.rendered.html, subtype="html")
    return mail


async def _connected_socket(host: str, port: int, timeout: float, allow_private: bool) -> socket.socket:
    """A TCP connection to an address of ``host`` the SSRF guard checked (UnsafeUrl, OSError otherwise)."""
    failure: OSError | None = None
    for address in (await resolve_checked(host, port, allow_private=allow_private))[:3]:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.get_running_loop().sock_connect(sock, (address, port))
            return sock
        except (OSError, TimeoutError) as exc:
            sock.close()
            failure = exc if isinstance(exc, OSError) else OSError(f"timed out connecting to {host}:{port}")
    raise failure or OSError(f"{host} has no address")


async def _smtp(config: Mapping[str, Any], secret: Mapping[str, Any], message: Message,
                settings: NotifySettings, allow_private: bool) -> Outcome:
    host, port, security = str(config["host"]), int(config["port"]), str(config.get("security", "starttls"))
    try:
        sock = await _connected_socket(host, port, settings.send_timeout_seconds, allow_private)
    except UnsafeUrl as exc:
        return Outcome("channel_failed", error=f"the SMTP host is not allowed: {exc}".replace("the store", "it"))
    except OSError as exc:
        return Outcome("retry", error=f"could not connect to {host}:{port}: {_words(str(exc), 200)}")
    client = aiosmtplib.SMTP(hostname=host, sock=sock, use_tls=security == "tls",
                             start_tls=security == "starttls", timeout=settings.send_timeout_seconds,
                             tls_context=settings.tls_context() if security != "none" else None,
                             username=config.get("username"), password=secret.get("password"))
    try:
        async with client:
            # flattened here: send_message would flatten with its own policy (folding at 78)
            refused, reply = await client.sendmail(parseaddr(str(config["from"]))[1], list(config["to"]),
                                                   _email(config, message).as_bytes(policy=_POLICY))
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        words = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        if all(400 <= c < 500 for c in codes):
            return Outcome("retry", error=f"the SMTP server deferred the recipients: {_words(words)}")
        return Outcome("channel_failed", error=f"the SMTP server refused the recipients: {_words(words)}")
    except aiosmtplib.SMTPResponseException as exc:
        words = f"{exc.code} {exc.message}"
        if 400 <= exc.code < 500:
            return Outcome("retry", error=f"the SMTP server answered {_words(words)}")
        what = "refused the login" if isinstance(exc, aiosmtplib.SMTPAuthenticationError) else "refused the message"
        return Outcome("channel_failed", error=f"the SMTP server {what}: {_words(words)}")
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError,
            ConnectionError, TimeoutError) as exc:
        return Outcome("retry", error=f"the SMTP connection failed: {_words(str(exc), 200)}")
    except ssl.SSLError as exc:
        return Outcome("channel_failed", error=f"TLS with the SMTP server failed: {_words(str(exc), 200)}")
    except aiosmtplib.SMTPException as exc:
        return Outcome("channel_failed", error=f"the SMTP server cannot take the message: {_words(str(exc), 200)}")
    # the socket is not closed here: its transport owns it, and with TLS it is closed only after the TLS
    # shutdown; closing it early frees its number while the event loop still watches it
    return Outcome("sent", message_id=_words(reply, 300),
                   error=f"some recipients were refused: {sorted(refused)}" if refused else None)


async def deliver(kind: str, config: Mapping[str, Any], secret: Mapping[str, Any], message: Message,
                  settings: NotifySettings, *, allow_private: bool) -> Outcome:
    """One attempt to hand ``message`` to the channel's provider."""
    try:
        if kind == "resend":
            return await _resend(config, secret, message, settings)
        if kind == "mailgun":
            return await _mailgun(config, secret, message, settings)
        if kind == "webhook":
            return await _webhook(config, secret, message, settings, allow_private)
        if kind == "smtp":
            return await _smtp(config, secret, message, settings, allow_private)
    except httpx.TimeoutException:
        return Outcome("retry", error=f"the {kind} provider did not answer within {settings.send_timeout_seconds:.0f}s")
    except httpx.TransportError as exc:
        return Outcome("retry", error=f"could not reach the {kind} provider: {type(exc).__name__}")
    return Outcome("channel_failed", error=f"unknown channel kind {kind!r}")
