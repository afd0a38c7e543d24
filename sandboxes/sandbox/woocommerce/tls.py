"""HTTPS for the sandbox: a throwaway CA + server certificate (``cryptography``) and a small TLS terminator.

``sandbox/serving.py``'s ``serve_app`` speaks plain HTTP, so ``https=True`` puts this terminator in front of it —
the way nginx terminates TLS in front of PHP on a real host. It forwards raw bytes both ways (keep-alive works);
the app learns "this request was SSL" from ``sandbox.scheme``, like ``is_ssl()`` behind a proxy.

The certificate covers ``127.0.0.1`` and ``localhost`` and is signed by a CA generated on the fly; clients trust
``sandbox.ca_file`` (``httpx.Client(verify=sandbox.ca_file)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
import threading
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsTerminator", "make_certificates"]


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """-> (CA certificate, server certificate chain, server key), all PEM files in ``directory``."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shopsync WooCommerce sandbox CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pem = serialization.Encoding.PEM
    cert_path.write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    _write_key(key_path, key)
    return ca_path, cert_path, key_path


class TlsTerminator:
    """Accept TLS on ``host:port`` and pipe each connection to the plain-HTTP backend."""

    def __init__(self, backend: tuple[str, int], cert: Path, key: Path, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.backend = backend
        self.host = host
        self.port = port
        self._ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ctx.load_cert_chain(cert, key)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._conns: set[asyncio.Task[None]] = set()

    def start(self, timeout: float = 10.0) -> int:
        self._thread = threading.Thread(target=self._main, name="woo-sandbox-tls", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"TLS terminator failed to start: {self._error!r}")
        return self.port

    def stop(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.set_exception_handler(self._quiet)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, ssl=self._ctx, reuse_address=True))
            self.port = int(self._server.sockets[0].getsockname()[1])
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for task in list(self._conns):
                task.cancel()
            loop.run_until_complete(asyncio.gather(*self._conns, return_exceptions=True))
            loop.run_until_complete(self._server.wait_closed())
            loop.close()
            self._loop = None

    @staticmethod
    def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # Clients that do not trust the CA abort the handshake; that is their test, not our error.
        exc = context.get("exception")
        if isinstance(exc, ssl.SSLError | ConnectionError | OSError):
            return
        loop.default_exception_handler(context)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.backend)
        except OSError:
            writer.close()
            self._conns.discard(task)
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError, ssl.SSLError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    if dst.can_write_eof():
                        dst.write_eof()

        up = asyncio.ensure_future(pipe(reader, up_writer))
        try:
            # The backend closing the connection (keep-alive timeout, Connection: close) ends it for the client too.
            await pipe(up_reader, writer)
        finally:
            up.cancel()
            with contextlib.suppress(BaseException):
                await up
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()
            self._conns.discard(task)
