"""A local SMTP server that keeps every message it accepts (aiosmtpd): what `make dev` points its demo
notification channel at, and what the notification tests and benchmarks send to.

It speaks real SMTP on 127.0.0.1: EHLO, optional AUTH (PLAIN/LOGIN against one user and password),
optional STARTTLS or implicit TLS, MAIL/RCPT/DATA. Faults on demand: ``refuse("451 4.3.0 Try again later")``
answers every DATA with that reply (4xx: the sender retries; 5xx: it gives up), ``refuse(None)`` accepts again;
``refuse_recipients(...)`` does the same at RCPT. With ``directory`` each accepted message is also written as
``<n>.eml`` there (and appended to ``inbox.mbox``), so a person can open it.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

__all__ = ["MailSink", "Received"]


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    accepted_at: float                  # time.time() when DATA was accepted
    message: EmailMessage = field(repr=False)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        return "" if part is None else str(part.get_content())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802 - aiosmtpd's hook
                          rcpt_options: list[str]) -> str:
        if self.sink.rcpt_reply is not None:
            return self.sink.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        if self.sink.data_reply is not None:
            self.sink.refused += 1
            return self.sink.data_reply
        content = bytes(envelope.content)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.sink.keep(Received(str(envelope.mail_from), list(envelope.rcpt_tos), content, time.time(), parsed))
        return "250 2.0.0 Message accepted for delivery"


class MailSink:
    """``with MailSink() as sink:`` — listening on ``sink.host:sink.port`` until the block ends."""

    def __init__(self, *, port: int = 0, directory: Path | None = None, login: tuple[str, str] | None = None,
                 starttls: ssl.SSLContext | None = None, implicit_tls: ssl.SSLContext | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.directory = directory
        self.messages: list[Received] = []
        self.data_reply: str | None = None
        self.rcpt_reply: str | None = None
        self.refused = 0
        self._login = login
        self._starttls = starttls
        self._implicit_tls = implicit_tls
        self._lock = threading.Condition()
        self._controller: Controller | None = None

    # --- faults ----------------------------------------------------------------------------------------
    def refuse(self, reply: str | None) -> None:
        """Answer every DATA with ``reply`` (e.g. ``"451 4.3.0 Try again later"``); None accepts again."""
        self.data_reply = reply

    def refuse_recipients(self, reply: str | None) -> None:
        self.rcpt_reply = reply

    # --- what arrived ----------------------------------------------------------------------------------
    def keep(self, received: Received) -> None:
        with self._lock:
            self.messages.append(received)
            count = len(self.messages)
            self._lock.notify_all()
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / f"{count:05d}.eml").write_bytes(received.content)
            box = mailbox.mbox(self.directory / "inbox.mbox")
            try:
                box.add(received.message)
            finally:
                box.close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first ``count`` messages, waiting for them; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the mail sink got {len(self.messages)} messages, expected {count}")
                self._lock.wait(left)
            return list(self.messages[:count])

    # --- running ---------------------------------------------------------------------------------------
    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert self._login is not None
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) \
            == self._login
        return AuthResult(success=ok, handled=False)    # handled=False: the server answers 535 itself

    def start(self) -> MailSink:
        extra: dict[str, Any] = {}
        if self._login is not None:
            extra.update(authenticator=self._authenticate, auth_require_tls=self._starttls is not None)
        if self._starttls is not None:
            extra.update(tls_context=self._starttls, require_starttls=True)
        for attempt in range(5):          # aiosmtpd cannot bind port 0: pick one, retry if it was taken
            port = self.port or _free_port()
            controller = Controller(_Handler(self), hostname=self.host, port=port, ssl_context=self._implicit_tls,
                                    server_hostname="localhost", ready_timeout=10.0, **extra)
            try:
                controller.start()
            except (OSError, RuntimeError):
                if self.port or attempt == 4:
                    raise
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError("the mail sink could not start")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[Received]:
        with self._lock:
            return iter(list(self.messages))
