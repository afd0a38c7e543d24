"""SSRF guard: store URL normalization, address checks, checked resolution, and the pinning transport
against real local HTTP and TLS servers."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.serving import serve_app
from worker import netguard
from worker.netguard import (
    GuardedTransport,
    UnsafeUrl,
    check_address,
    guarded_client,
    normalize_store_url,
    pinned_request,
    resolve_checked,
)

PUBLIC_IP = "93.184.215.14"
PUBLIC_IP_2 = "151.101.1.69"


# --- normalize_store_url --------------------------------------------------------------------------

HOSTILE = [
    # (url, words the message must contain, secrets it must not echo)
    ("https://admin:hunter2@shop.example.com/", "user name or password", ["hunter2", "admin"]),
    ("https://ck_live_123@shop.example.com/", "user name or password", ["ck_live_123"]),
    ("https://shop.example.com/wp-json/wc/v3?consumer_key=ck_abc&consumer_secret=cs_xyz", "query string",
     ["ck_abc", "cs_xyz", "consumer"]),
    ("https://shop.example.com/?", "query string", []),
    ("https://shop.example.com/#token=abc", "fragment", ["abc"]),
    ("file:///etc/passwd", "https://", ["passwd"]),
    ("gopher://shop.example.com:70/_GET", "https://", []),
    ("ftp://shop.example.com/", "https://", []),
    ("javascript:alert(1)", "https://", ["alert"]),
    ("//shop.example.com/", "https://", []),
    ("shop.example.com", "https://", []),
    ("http://shop.example.com/", "must use https://", []),
    ("https:///no-host", "no host", []),
    ("https://[::1]/", "loopback", []),
    ("https://[::]/", "unspecified", []),
    ("https://[::ffff:127.0.0.1]/", "loopback", []),
    ("https://[::ffff:7f00:1]/", "loopback", []),
    ("https://[::ffff:169.254.169.254]/", "metadata", []),
    ("https://[fd00:ec2::254]/", "metadata", []),
    ("https://[fe80::1]/", "link-local", []),
    ("https://[fe80::1%25eth0]/", "zone id", []),
    ("https://[fc00::1]/", "private", []),
    ("https://[2002:7f00:1::]/", "loopback", []),        # 6to4 embedding 127.0.0.1
    ("https://[64:ff9b::a00:1]/", "private", []),        # NAT64 embedding 10.0.0.1
    ("https://[2001:db8::1]/", "address is not allowed", []),
    ("https://[::1/", "IPv6", []),
    ("https://127.0.0.1/", "loopback", []),
    ("https://127.1/", "loopback", []),
    ("https://2130706433/", "loopback", []),
    ("https://0x7f000001/", "loopback", []),
    ("https://0x7f.1/", "loopback", []),
    ("https://0177.0.0.1/", "loopback", []),
    ("https://017700000001/", "loopback", []),
    ("https://0/", "unspecified", []),
    ("https://0.0.0.0/", "unspecified", []),
    ("https://10.0.0.1/", "private", []),
    ("https://192.168.1.1:8443/", "private", []),
    ("https://172.16.5.4/", "private", []),
    ("https://100.64.0.1/", "shared", []),
    ("https://100.100.100.200/", "metadata", []),
    ("https://169.254.169.254/latest/meta-data", "metadata", []),
    ("https://169.254.1.1/", "link-local", []),
    ("https://224.0.0.1/", "multicast", []),
    ("https://240.0.0.1/", "address is not allowed", []),
    ("https://255.255.255.255/", "address is not allowed", []),
    ("https://1.2.3.4.5/", "IPv4", []),
    ("https://shop.example.123/", "IPv4", []),
    ("https://256.1.1.1/", "IPv4", []),
    ("https://localhost/", "local or reserved", []),
    ("https://localhost./", "local or reserved", []),
    ("https://LOCALHOST:8080/", "local or reserved", []),
    ("https://ｌｏｃａｌｈｏｓｔ/", "local or reserved", []),         # fullwidth, mapped by IDNA
    ("https://api.localhost/", "local or reserved", []),
    ("https://printer.local/", "local or reserved", []),
    ("https://metadata.google.internal/", "local or reserved", []),
    ("https://router.home.arpa/", "local or reserved", []),
    ("https://intranet/", "local or reserved", []),
    ("https://shopserver/", "not a public internet name", []),
    ("https://shop.example.com../", "not a valid host name", []),
    ("https://-shop.example.com/", "not a valid host name", []),
    ("https://shop_1.example.com/", "not a valid host name", []),
    ("https://%6c%6fcalhost/", "not a valid host name", []),
    ("https://" + "a" * 64 + ".example.com/", "not a valid host name", []),
    ("https://" + ("a" * 60 + ".") * 5 + "com/", "not a valid host name", []),
    ("https://evil.example.com\\@shop.example.com/", "backslashes", []),
    ("https://shop.example.com/a b", "spaces", []),
    ("https://shop.example.com/\x00", "spaces", []),
    ("https://shop.example.com:0/", "port", []),
    ("https://shop.example.com:99999/", "port", []),
    ("https://shop.example.com:http/", "port", []),
    ("https://shop.example.com/a/../../admin", "'..'", []),
    ("https://shop.example.com/%2e%2e/admin", "'..'", []),
    ("https://shop.example.com/" + "p" * 300, "longer than 255", []),
    ("", "empty", []),
]


@pytest.mark.parametrize(("url", "expected", "secrets"), HOSTILE)
def test_hostile_store_urls_are_refused_without_echoing_secrets(url: str, expected: str, secrets: list[str]) -> None:
    with pytest.raises(UnsafeUrl) as info:
        normalize_store_url(url, allow_http=False)
    message = str(info.value)
    assert expected.lower() in message.lower()
    for secret in secrets:
        assert secret not in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("url", "normalized"), [
    ("https://Shop.Example.COM", "https://shop.example.com"),
    ("  https://shop.example.com/  ", "https://shop.example.com"),
    ("HTTPS://shop.example.com:443/", "https://shop.example.com"),
    ("https://shop.example.com:8443/", "https://shop.example.com:8443"),
    ("https://shop.example.com./wp/", "https://shop.example.com/wp"),
    ("https://shop.example.com/WordPress/Shop//", "https://shop.example.com/WordPress/Shop"),
    ("https://shop.example.com/a%20b/ü", "https://shop.example.com/a%20b/%C3%BC"),
    ("https://bücher.example.de/", "https://xn--bcher-kva.example.de"),
    ("https://BÜCHER.example.de/", "https://xn--bcher-kva.example.de"),
    ("https://xn--bcher-kva.example.de", "https://xn--bcher-kva.example.de"),
    ("https://shop。example。com/", "https://shop.example.com"),     # ideographic full stops
    ("https://8.8.8.8/", "https://8.8.8.8"),
    ("https://134744072/", "https://8.8.8.8"),                      # decimal form of a public address
    ("https://0x08.0x08.0x08.0x08/", "https://8.8.8.8"),
    ("https://[2606:4700:0:0::1111]:8443/api", "https://[2606:4700::1111]:8443/api"),
    ("https://[::ffff:8.8.8.8]/", "https://[::ffff:808:808]"),
])
def test_normalization(url: str, normalized: str) -> None:
    assert normalize_store_url(url, allow_http=False) == normalized
    assert normalize_store_url(normalized, allow_http=False) == normalized     # idempotent


def test_local_development_allows_http_and_private_targets() -> None:
    assert normalize_store_url("http://127.0.0.1:8080/wp/", allow_http=True) == "http://127.0.0.1:8080/wp"
    assert normalize_store_url("http://localhost:80/", allow_http=True) == "http://localhost"
    assert normalize_store_url("http://127.1:9000", allow_http=True) == "http://127.0.0.1:9000"
    assert normalize_store_url("http://[::1]:9000/", allow_http=True) == "http://[::1]:9000"
    assert normalize_store_url("http://shop.test/", allow_http=True) == "http://shop.test"
    # private targets follow allow_http unless said otherwise
    with pytest.raises(UnsafeUrl, match="local or reserved"):
        normalize_store_url("http://localhost:8080", allow_http=True, allow_private=False)
    with pytest.raises(UnsafeUrl, match="loopback"):
        normalize_store_url("http://127.0.0.1:8080", allow_http=True, allow_private=False)
    assert normalize_store_url("https://127.0.0.1", allow_http=False, allow_private=True) == "https://127.0.0.1"
    # still no credentials, queries or odd schemes in local development
    for url in ("http://u:p@localhost/", "http://localhost/?k=v", "file:///etc/passwd", "ftp://localhost/"):
        with pytest.raises(UnsafeUrl):
            normalize_store_url(url, allow_http=True)


# --- check_address --------------------------------------------------------------------------------

@pytest.mark.parametrize("ip", [
    "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.31.255.255", "192.168.0.1", "169.254.169.254",
    "169.254.170.2", "100.100.100.200", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3", "224.0.0.251",
    "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.0.192", "192.0.2.1", "198.18.0.1",
    "198.51.100.7", "203.0.113.9",
    "::", "::1", "::127.0.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "fe80::1",
    "fe80::1%eth0", "fc00::1", "fd12:3456::1", "fd00:ec2::254", "fec0::1", "ff02::1", "2001:db8::1",
    "100::1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "2002:7f00:1::1", "2002:a00:1::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",   # Teredo
])
def test_unsafe_addresses(ip: str) -> None:
    with pytest.raises(UnsafeUrl, match="not allowed"):
        check_address(ip, allow_private=False)
    check_address(ip, allow_private=True)      # local development allows everything


@pytest.mark.parametrize("ip", [
    "8.8.8.8", "1.1.1.1", PUBLIC_IP, "100.63.255.255", "100.128.0.1", "172.32.0.1", "::ffff:8.8.8.8",
    "2606:4700:4700::1111", "2a00:1450:4001:81b::200e", "64:ff9b::808:808", "2002:808:808::1",
])
def test_public_addresses(ip: str) -> None:
    check_address(ip, allow_private=False)


def test_check_address_rejects_non_addresses() -> None:
    for value in ("localhost", "127.1", "", "1.2.3.4:80"):
        with pytest.raises(UnsafeUrl, match="not a valid IP address"):
            check_address(value, allow_private=True)


# --- resolve_checked ------------------------------------------------------------------------------

async def test_resolve_checked_refuses_private_and_mixed_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {
        "private.example.com": ["10.0.0.1"],
        "mixed.example.com": [PUBLIC_IP, "10.0.0.1"],
        "mixed6.example.com": ["2606:4700::1111", "::1"],
        "public.example.com": [PUBLIC_IP, PUBLIC_IP, "2606:4700::1111"],
        "metadata.example.com": ["169.254.169.254"],
        "empty.example.com": [],
    }
    looked_up: list[str] = []

    async def fake_lookup(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return answers[host]

    monkeypatch.setattr(netguard, "lookup", fake_lookup)
    for name in ("private.example.com", "mixed.example.com", "mixed6.example.com", "metadata.example.com"):
        with pytest.raises(UnsafeUrl) as info:
            await resolve_checked(name, 443, allow_private=False)
        assert "10.0.0.1" not in str(info.value) and "169.254" not in str(info.value)   # internal DNS stays private
    assert await resolve_checked("public.example.com", 443, allow_private=False) == [PUBLIC_IP, "2606:4700::1111"]
    assert await resolve_checked("mixed.example.com", 443, allow_private=True) == [PUBLIC_IP, "10.0.0.1"]
    with pytest.raises(socket.gaierror):
        await resolve_checked("empty.example.com", 443, allow_private=False)
    # IP literals are checked without a lookup
    looked_up.clear()
    assert await resolve_checked("8.8.8.8", 443, allow_private=False) == ["8.8.8.8"]
    assert await resolve_checked("[2606:4700::1111]", 443, allow_private=False) == ["2606:4700::1111"]
    with pytest.raises(UnsafeUrl, match="loopback"):
        await resolve_checked("::1", 443, allow_private=False)
    for numeric in ("2130706433", "0x7f.1", "127.1", "0177.0.0.1."):     # what inet_aton would accept
        with pytest.raises(UnsafeUrl, match="loopback"):
            await resolve_checked(numeric, 443, allow_private=False)
    assert await resolve_checked("0x7f.1", 443, allow_private=True) == ["127.0.0.1"]
    assert looked_up == []


async def test_resolve_checked_uses_the_system_resolver() -> None:
    # the real resolver: "localhost" resolves to loopback, which is refused unless private is allowed
    with pytest.raises(UnsafeUrl, match="loopback"):
        await resolve_checked("localhost", 80, allow_private=False)
    found = await resolve_checked("localhost", 80, allow_private=True)
    assert found and all(ipaddress.ip_address(ip.split("%")[0]).is_loopback for ip in found)


# --- pinning --------------------------------------------------------------------------------------

def test_pinned_request_keeps_the_name_for_host_and_sni() -> None:
    original = httpx.Request("POST", "https://shop.example.com:8443/wp-json/wc/v3/products?page=2",
                             headers={"Authorization": "Basic abc"}, content=b"{}")
    pinned = pinned_request(original, PUBLIC_IP)
    assert str(pinned.url) == f"https://{PUBLIC_IP}:8443/wp-json/wc/v3/products?page=2"
    assert pinned.headers["Host"] == "shop.example.com:8443"
    assert pinned.headers["Authorization"] == "Basic abc"
    assert pinned.extensions["sni_hostname"] == "shop.example.com"
    assert pinned.stream is original.stream and pinned.method == "POST"

    plain = pinned_request(httpx.Request("GET", "http://shop.example.com/x"), "2606:4700::1111")
    assert str(plain.url) == "http://[2606:4700::1111]/x"
    assert plain.headers["Host"] == "shop.example.com"
    assert "sni_hostname" not in plain.extensions


class Recorder(httpx.AsyncBaseTransport):
    """An inner transport that records what it is asked to send and answers with ``handler``."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    async def aclose(self) -> None:
        self.closed = True


def recording_client(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]],
                     handler: Callable[[httpx.Request], httpx.Response], *, allow_private: bool = False,
                     max_pools: int = 16) -> tuple[httpx.AsyncClient, list[Recorder]]:
    async def fake_lookup(host: str, port: int) -> list[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    monkeypatch.setattr(netguard, "lookup", fake_lookup)
    inners: list[Recorder] = []

    def factory(context: ssl.SSLContext) -> httpx.AsyncBaseTransport:
        inners.append(Recorder(handler))
        return inners[-1]

    transport = GuardedTransport(allow_private=allow_private, transport_factory=factory, max_pools=max_pools)
    return httpx.AsyncClient(transport=transport, timeout=5), inners


async def test_transport_connects_to_the_checked_address_with_sni(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"shop.example.com": [PUBLIC_IP]}
    client, inners = recording_client(monkeypatch, answers, lambda r: httpx.Response(200, json={"ok": True}))
    async with client:
        response = await client.get("https://shop.example.com/wp-json/")
        assert response.json() == {"ok": True}
        assert str(response.request.url) == "https://shop.example.com/wp-json/"   # callers see the name
        sent = inners[0].requests[0]
        assert sent.url.host == PUBLIC_IP
        assert sent.headers["Host"] == "shop.example.com"
        assert sent.extensions["sni_hostname"] == "shop.example.com"
        assert "timeout" in sent.extensions

        # DNS rebinding: the next answer is loopback; the check refuses before anything connects
        answers["shop.example.com"] = ["127.0.0.1"]
        with pytest.raises(UnsafeUrl, match="loopback"):
            await client.get("https://shop.example.com/wp-json/")
        assert len(inners[0].requests) == 1


async def test_unsafe_target_is_not_a_transport_error(monkeypatch: pytest.MonkeyPatch) -> None:
    client, inners = recording_client(monkeypatch, {"evil.example.com": ["10.0.0.7"]}, lambda r: httpx.Response(200))
    async with client:
        try:
            await client.get("https://evil.example.com/")
        except httpx.TransportError:
            pytest.fail("an unsafe target must not look like a retryable network error")
        except UnsafeUrl as exc:
            assert "private" in str(exc)
        else:
            pytest.fail("the private address was not refused")
        # a name that does not resolve is a network error (ConnectError), not UnsafeUrl
        with pytest.raises(httpx.ConnectError, match="could not resolve"):
            await client.get("https://nxdomain.example.com/")
        with pytest.raises(UnsafeUrl, match="loopback"):
            await client.get("http://[::1]:8080/")
    assert inners == [] or all(not inner.requests for inner in inners)


async def test_redirect_to_loopback_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/to-loopback":
            return httpx.Response(302, headers={"Location": "http://127.0.0.1:8080/admin"})
        if request.url.path == "/to-internal-name":
            return httpx.Response(301, headers={"Location": "https://db.example.com/"})
        if request.url.path == "/to-decimal":
            return httpx.Response(307, headers={"Location": "http://2130706433/"})
        return httpx.Response(200, text="landed")

    answers = {"shop.example.com": [PUBLIC_IP], "db.example.com": ["10.0.0.5"], "www.example.com": [PUBLIC_IP_2]}
    client, inners = recording_client(monkeypatch, answers, handler)
    async with client:
        for path, reason in (("/to-loopback", "loopback"), ("/to-internal-name", "private"),
                             ("/to-decimal", "loopback")):
            with pytest.raises(UnsafeUrl, match=reason):
                await client.get(f"https://shop.example.com{path}", follow_redirects=True)
        sent = [(r.url.host, r.url.path) for inner in inners for r in inner.requests]
        assert sent == [(PUBLIC_IP, "/to-loopback"), (PUBLIC_IP, "/to-internal-name"), (PUBLIC_IP, "/to-decimal")]


async def test_connect_failure_moves_to_the_next_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == PUBLIC_IP:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, text=request.url.host)

    client, inners = recording_client(monkeypatch, {"shop.example.com": [PUBLIC_IP, PUBLIC_IP_2]}, handler)
    async with client:
        response = await client.get("https://shop.example.com/")
        assert response.text == PUBLIC_IP_2
    assert [r.url.host for r in inners[0].requests] == [PUBLIC_IP, PUBLIC_IP_2]


async def test_pools_are_per_host_and_evicted_after_their_responses_close(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {f"s{i}.example.com": [PUBLIC_IP] for i in range(3)}
    client, inners = recording_client(monkeypatch, answers, lambda r: httpx.Response(200, content=b"x" * 10),
                                      max_pools=2)
    async with client:
        async with client.stream("GET", "https://s0.example.com/") as streaming:
            await client.get("https://s1.example.com/")
            await client.get("https://s2.example.com/")      # evicts s0's pool, whose response is open
            assert len(inners) == 3      # one pool per host although all three share an address
            assert not inners[0].closed
            assert await streaming.aread() == b"x" * 10
        assert inners[0].closed          # closed once its last response closed
        assert not inners[1].closed and not inners[2].closed
        await client.get("https://s1.example.com/")
        assert len(inners) == 3          # s1's pool was reused
    assert all(inner.closed for inner in inners)


def test_guarded_client_refuses_ways_around_the_transport() -> None:
    for kw in ({"transport": httpx.AsyncHTTPTransport()}, {"mounts": {}}, {"proxy": "http://proxy:3128"},
               {"trust_env": True}):
        with pytest.raises(TypeError, match="does not accept"):
            guarded_client(allow_private=False, timeout=5, **kw)
    client = guarded_client(allow_private=False, timeout=5, follow_redirects=True)
    assert client.trust_env is False and client.follow_redirects is True
    assert isinstance(client._transport, GuardedTransport)


# --- against a real local HTTP server ---------------------------------------------------------------

def _http_app() -> Starlette:
    async def echo(request: Request) -> Response:
        return JSONResponse({"host": request.headers.get("host"), "path": request.url.path})

    async def redirect(request: Request) -> Response:
        return RedirectResponse(request.query_params["to"], status_code=302)

    return Starlette(routes=[Route("/echo", echo), Route("/redirect", redirect)])


@pytest.fixture(scope="module")
def local_http() -> Iterator[str]:
    with serve_app(_http_app(), name="netguard-http") as url:
        yield url


async def test_real_server_reached_only_when_private_targets_are_allowed(local_http: str) -> None:
    async with guarded_client(allow_private=True, timeout=5) as client:
        response = await client.get(f"{local_http}/echo")
        assert response.status_code == 200
        assert response.json() == {"host": local_http.removeprefix("http://"), "path": "/echo"}
    async with guarded_client(allow_private=False, timeout=5) as client:
        with pytest.raises(UnsafeUrl, match="loopback"):
            await client.get(f"{local_http}/echo")


async def test_real_server_by_name_keeps_the_host_header(local_http: str, monkeypatch: pytest.MonkeyPatch) -> None:
    port = httpx.URL(local_http).port
    looked_up: list[str] = []

    async def fake_lookup(host: str, p: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"] if host == "shop.example.com" else [PUBLIC_IP]

    monkeypatch.setattr(netguard, "lookup", fake_lookup)
    async with guarded_client(allow_private=True, timeout=5, follow_redirects=True) as client:
        response = await client.get(f"http://shop.example.com:{port}/echo")
        assert response.json()["host"] == f"shop.example.com:{port}"
        # a redirect goes through the transport again (one more lookup), and keeps working when allowed
        to = f"http://shop.example.com:{port}/echo"
        response = await client.get(f"{local_http}/redirect", params={"to": to})
        assert response.json() == {"host": f"shop.example.com:{port}", "path": "/echo"}
        assert looked_up == ["shop.example.com", "shop.example.com"]
    async with guarded_client(allow_private=False, timeout=5, follow_redirects=True) as client:
        with pytest.raises(UnsafeUrl, match="loopback"):
            await client.get(f"http://shop.example.com:{port}/echo")


# --- against a real local TLS server ----------------------------------------------------------------

def _certificate(tmp: Path, names: list[str]) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@asynccontextmanager
async def tls_server(tmp: Path, names: list[str]) -> AsyncIterator[tuple[int, Path, list[str | None]]]:
    """A minimal HTTPS/1.1 server on 127.0.0.1 answering each request with its Host header; yields the
    port, the certificate (to trust) and the SNI names of the handshakes it saw."""
    cert, key = _certificate(tmp, names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handshakes: list[str | None] = []

    def on_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        handshakes.append(name)

    context.sni_callback = on_sni  # type: ignore[assignment]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                host = next((line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                             if line.lower().startswith(b"host:")), b"")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(host), host))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1], cert, handshakes
    finally:
        server.close()
        await server.wait_closed()


async def test_tls_certificate_is_verified_for_the_name_not_the_ip(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_lookup(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(netguard, "lookup", fake_lookup)
    async with tls_server(tmp_path, ["shop.example.com", "www.shop.example.com"]) as (port, cert, handshakes):
        trust = ssl.create_default_context(cafile=str(cert))
        async with guarded_client(allow_private=True, verify=trust, timeout=5) as client:
            response = await client.get(f"https://shop.example.com:{port}/")
            assert response.text == f"shop.example.com:{port}"
            assert handshakes == ["shop.example.com"]
            await client.get(f"https://shop.example.com:{port}/again")
            assert handshakes == ["shop.example.com"]              # keep-alive reuses the connection
            # same address, another name: its own connection and its own SNI, never the first one's
            response = await client.get(f"https://www.shop.example.com:{port}/")
            assert response.text == f"www.shop.example.com:{port}"
            assert handshakes == ["shop.example.com", "www.shop.example.com"]
            # a name the certificate does not cover fails verification although the IP is the same
            with pytest.raises(httpx.ConnectError, match="(?i)certificate|hostname"):
                await client.get(f"https://other.example.org:{port}/")
        # the path string form of verify works too
        async with guarded_client(allow_private=True, verify=str(cert), timeout=5) as client:
            assert (await client.get(f"https://shop.example.com:{port}/")).status_code == 200
