"""User-supplied store URLs must not turn the worker into an SSRF proxy.

Two layers:

- ``normalize_store_url`` validates what a user typed (scheme, no credentials or query string, a real
  host name or IP literal) and returns the canonical form, which is the store's ``shop_key``.
- ``GuardedTransport`` (and ``guarded_client``) re-checks at every request, redirects included: it
  resolves the host, refuses if *any* address is non-public, and connects to the address it checked
  (the URL host is rewritten to the IP; ``Host`` and TLS SNI keep the name, so certificates are still
  verified for the name). A DNS answer that changes between the check and the connect (rebinding)
  cannot reach an internal address.

``UnsafeUrl`` is a ``ValueError`` and deliberately *not* an ``httpx.TransportError``: connector code
retries ``httpx.TransportError`` as a network hiccup, while an unsafe target will not get better by
retrying. Catch ``UnsafeUrl`` first (e.g. map it to ``PermanentError``); DNS failures and refused
connections still arrive as ``httpx.ConnectError``.

``allow_private=True`` turns every address check off; it is for local development (sandboxes on
127.0.0.1, ``SHOPSYNC_LOCAL_DEV``) and tests only.
"""
# long module: the SSRF boundary (normalization, address checks, resolution, the pinned transport) is one unit to review

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

__all__ = ["GuardedTransport", "UnsafeUrl", "check_address", "guarded_client", "lookup", "normalize_store_url",
           "pinned_request", "resolve_checked", "MAX_URL_LENGTH"]

MAX_URL_LENGTH = 255          # fits shop_key columns and logs; real store URLs are far shorter
MAX_HOST_LENGTH = 253         # DNS limit (without the trailing dot)
MAX_POOLS = 16                # per-host connection pools kept per transport (see GuardedTransport)
MAX_ADDRESS_ATTEMPTS = 3      # addresses tried when connecting fails; each one was checked
DEFAULT_PORTS = {"http": 80, "https": 443}

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# anything a browser would treat differently from urlsplit, or that has no business in a store URL
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\<>\"{}|^`]")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0[xX][0-9a-fA-F]*)$")

# Names that only mean something inside a network (RFC 6761, RFC 8375, ICANN's .internal, mDNS) or
# are commonly used as private suffixes. A public store never lives there.
_LOCAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "lan", "home", "corp", "intranet",
                   "private", "test", "invalid", "example", "onion", "arpa")

_METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",   # AWS, GCP, Azure, DigitalOcean, OpenStack
    "169.254.170.2",     # AWS ECS task metadata
    "fd00:ec2::254",     # AWS IMDS over IPv6
    "100.100.100.200",   # Alibaba Cloud
    "192.0.0.192",       # Oracle Cloud (legacy)
))

# Ranges refused on top of the stdlib flags, whose exact coverage varies across Python patch releases.
_BLOCKED_V4 = tuple(ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
))
_BLOCKED_V6 = tuple(ipaddress.IPv6Network(n) for n in (
    "::/96",             # unspecified, loopback and the deprecated IPv4-compatible form
    "64:ff9b:1::/48",    # local-use NAT64
    "100::/64",          # discard
    "2001:db8::/32", "3fff::/20",   # documentation
    "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")   # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_TEREDO = ipaddress.IPv6Network("2001::/32")


class UnsafeUrl(ValueError):  # noqa: N818 - the name the callers and the brief use
    """A store URL or address shopsync refuses to contact. The message is safe to show users: it never
    contains the URL's credentials, query string or the addresses a name resolved to."""


# --- URL normalization ----------------------------------------------------------------------------
def normalize_store_url(url: str, *, allow_http: bool, allow_private: bool | None = None) -> str:
    """The canonical store URL (the store's ``shop_key``), or ``UnsafeUrl``.

    ``scheme://host[:port][/path]``: lower-case IDNA host, default port dropped, path without a
    trailing slash (WordPress may live in a sub-path). ``allow_private`` defaults to ``allow_http``:
    both come from ``Settings.local_dev``, where sandboxes run on http://127.0.0.1.
    """
    if allow_private is None:
        allow_private = allow_http
    if not isinstance(url, str):
        raise UnsafeUrl("store URL must be a string")
    candidate = url.strip()
    if not candidate:
        raise UnsafeUrl("store URL is empty")
    if len(candidate) > 2048:
        raise UnsafeUrl("store URL is too long")
    if _BAD_CHARS.search(candidate):
        raise UnsafeUrl("store URL contains spaces, backslashes or other characters a URL cannot have")
    scheme, sep, _ = candidate.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise UnsafeUrl("store URL must start with https://" + (" or http://" if allow_http else ""))
    if scheme == "http" and not allow_http:
        raise UnsafeUrl("store URL must use https://")
    # checked on the raw text: an empty query ("?") or fragment ("#") is refused too
    if "?" in candidate:
        raise UnsafeUrl("store URL must not contain a query string (enter API keys in their own fields)")
    if "#" in candidate:
        raise UnsafeUrl("store URL must not contain a fragment (#...)")
    try:
        parts = urlsplit(candidate)
    except ValueError as exc:      # unbalanced IPv6 brackets, odd Unicode in the netloc
        detail = "has an invalid IPv6 address" if "IPv6" in str(exc) else "is not a valid URL"
        raise UnsafeUrl(f"store URL {detail}") from None
    if "@" in parts.netloc:
        raise UnsafeUrl("store URL must not contain a user name or password")
    try:
        port = parts.port
    except ValueError:
        raise UnsafeUrl("store URL has an invalid port") from None
    if port == 0:
        raise UnsafeUrl("store URL has an invalid port")
    host = _normalize_host(parts.netloc, allow_private=allow_private)
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _normalize_path(parts.path)
    normalized = f"{scheme}://{netloc}{path}"
    if len(normalized) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"store URL is longer than {MAX_URL_LENGTH} characters")
    return normalized


def _normalize_host(netloc: str, *, allow_private: bool) -> str:
    hostport = netloc
    if hostport.startswith("["):
        literal, bracket, rest = hostport[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise UnsafeUrl("store URL has an invalid IPv6 address")
        if "%" in literal:
            raise UnsafeUrl("store URL must not use an IPv6 zone id")
        try:
            address = ipaddress.IPv6Address(literal)
        except ValueError:
            raise UnsafeUrl("store URL has an invalid IPv6 address") from None
        if not allow_private:
            check_address(str(address), allow_private=False)
        return f"[{address.compressed}]"
    host = hostport.rpartition(":")[0] if ":" in hostport else hostport
    if not host:
        raise UnsafeUrl("store URL has no host name")
    if host.endswith("."):       # "localhost." is localhost: the root dot must not bypass the checks
        host = host[:-1]
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UnsafeUrl("store URL host is not a valid host name") from None
    if not ascii_host or len(ascii_host) > MAX_HOST_LENGTH:
        raise UnsafeUrl("store URL host is not a valid host name")
    labels = ascii_host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # Like browsers and inet_aton: a host ending in a number is an IPv4 address ("127.1",
        # "0x7f.1", "2130706433"), never a name. Canonicalize it, then check it.
        ipv4 = _parse_ipv4(labels)
        if not allow_private:
            check_address(str(ipv4), allow_private=False)
        return str(ipv4)
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise UnsafeUrl("store URL host is not a valid host name")
    if not allow_private:
        for suffix in _LOCAL_SUFFIXES:
            if ascii_host == suffix or ascii_host.endswith("." + suffix):
                raise UnsafeUrl(f"store URL host {ascii_host} is a local or reserved name")
        if len(labels) < 2:    # a single label only resolves through local search domains
            raise UnsafeUrl(f"store URL host {ascii_host} is not a public internet name")
    return ascii_host


def _parse_ipv4(labels: list[str]) -> ipaddress.IPv4Address:
    """WHATWG URL / inet_aton IPv4 parsing: 1-4 parts, each decimal, 0x-hex or 0-octal; the last part
    fills the remaining bytes. Anything else that ends in a number is refused, not guessed at."""
    if len(labels) > 4 or any(label == "" for label in labels):
        raise UnsafeUrl("store URL host is not a valid IPv4 address")
    numbers: list[int] = []
    for label in labels:
        try:
            if label[:2].lower() == "0x":
                numbers.append(int(label[2:] or "0", 16))
            elif len(label) > 1 and label.startswith("0"):
                numbers.append(int(label, 8))
            else:
                numbers.append(int(label, 10))
        except ValueError:
            raise UnsafeUrl("store URL host is not a valid IPv4 address") from None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise UnsafeUrl("store URL host is not a valid IPv4 address")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _normalize_path(path: str) -> str:
    segments = path.split("/")
    if any(segment in (".", "..") or segment.lower() in ("%2e", "%2e%2e", ".%2e", "%2e.")
           for segment in segments):
        raise UnsafeUrl("store URL path must not contain '.' or '..' segments")
    # keep existing escapes, escape anything else (non-ASCII) so the shop_key is stable ASCII
    return quote(path.rstrip("/"), safe="/%:@!$&'()*+,;=-._~")


# --- address checks -------------------------------------------------------------------------------
def check_address(ip: str, *, allow_private: bool) -> None:
    """Refuse (``UnsafeUrl``) anything but a public unicast address, including IPv6 forms that embed
    a non-public IPv4 (mapped, 6to4, NAT64, Teredo). ``allow_private`` allows everything."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise UnsafeUrl("not a valid IP address") from None
    if allow_private:
        return
    reason = _unsafe_reason(address)
    if reason is not None:
        raise UnsafeUrl(f"the store's address is not allowed: it is {reason}")


def _unsafe_reason(address: _Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "a scoped (link-local) IPv6 address"
        if address.ipv4_mapped is not None:
            return _unsafe_reason(address.ipv4_mapped)
        if address in _NAT64:
            # DNS64 answers on IPv6-only hosts: exactly as safe as the IPv4 address inside
            # (the stdlib calls the whole range "reserved")
            inner_reason = _unsafe_reason(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
            return None if inner_reason is None else f"an IPv6 address embedding {inner_reason}"
        embedded: list[ipaddress.IPv4Address] = []
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address in _TEREDO and address.teredo is not None:
            embedded.extend(address.teredo)
        for inner in embedded:
            reason = _unsafe_reason(inner)
            if reason is not None:
                return f"an IPv6 address embedding {reason}"
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_private:
        return "a private network address"
    if address.is_reserved:
        return "a reserved address"
    blocked = _BLOCKED_V4 if isinstance(address, ipaddress.IPv4Address) else _BLOCKED_V6
    if any(address in network for network in blocked) or not address.is_global:
        return "not a public internet address"
    return None


# --- resolution -----------------------------------------------------------------------------------
async def lookup(host: str, port: int) -> list[str]:
    """The system resolver through the running loop (a thread). Tests replace this function."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Every address ``host`` resolves to, each checked; refused if *any* is unsafe (DNS answers can
    mix public and private addresses, and the connection could use either). An IP literal is checked
    without a lookup. Resolution failures raise ``OSError`` (``socket.gaierror``)."""
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    address: _Address | None = None
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        labels = literal.rstrip(".").split(".")
        if _NUMERIC_LABEL.fullmatch(labels[-1]):      # "2130706433", "0x7f.1": an address, not a name
            address = _parse_ipv4(labels)
    if address is not None:
        check_address(str(address), allow_private=allow_private)
        return [str(address)]
    found: list[str] = []
    for ip in await lookup(host, port):
        if ip not in found:
            found.append(ip)
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, "no addresses")
    for ip in found:
        check_address(ip, allow_private=allow_private)
    return found


# --- the transport --------------------------------------------------------------------------------
def pinned_request(request: httpx.Request, ip: str) -> httpx.Request:
    """``request`` sent to ``ip``: the URL host becomes the IP, the ``Host`` header keeps the name, and
    for https the TLS SNI (and so certificate verification) uses the name too."""
    name = request.url.raw_host.decode("ascii")
    extensions = dict(request.extensions)
    if request.url.scheme == "https":
        extensions["sni_hostname"] = name
    headers = request.headers.copy()
    if "host" not in headers:      # httpx always sets it; keep the name even for hand-made requests
        headers["Host"] = request.url.netloc.decode("ascii")
    return httpx.Request(request.method, request.url.copy_with(host=ip), headers=headers,
                         stream=request.stream, extensions=extensions)


class _Pool:
    """One inner transport and how many of its responses are still open."""

    __slots__ = ("transport", "active", "retired")

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.transport = transport
        self.active = 0
        self.retired = False

    async def release(self) -> None:
        self.active -= 1
        if self.retired and self.active == 0:
            await self.transport.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, pool: _Pool) -> None:
        self._stream = stream
        self._pool: _Pool | None = pool

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            pool, self._pool = self._pool, None
            if pool is not None:
                await pool.release()


def _ssl_context(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify, trust_env=False)


TransportFactory = Callable[[ssl.SSLContext], httpx.AsyncBaseTransport]


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that only connects to checked addresses (see the module docstring).

    Connections are pooled per ``(scheme, host, port)``, not per IP: a TLS connection opened with
    one name's SNI must never carry another name's request just because both resolve to the same
    address (CDNs answer 421/403, and the certificate only vouched for the first name). At most
    ``max_pools`` hosts keep pools; the least recently used is closed once its responses are.
    """

    def __init__(self, *, allow_private: bool, verify: ssl.SSLContext | str | bool = True,
                 limits: httpx.Limits | None = None, max_pools: int = MAX_POOLS,
                 transport_factory: TransportFactory | None = None) -> None:
        self.allow_private = allow_private
        self._ssl_context = _ssl_context(verify)
        self._limits = limits or httpx.Limits(max_connections=20, max_keepalive_connections=10)
        self._max_pools = max(1, max_pools)
        self._factory = transport_factory or self._default_factory
        self._pools: OrderedDict[tuple[str, str, int], _Pool] = OrderedDict()
        self._closed = False

    def _default_factory(self, context: ssl.SSLContext) -> httpx.AsyncBaseTransport:
        # retries=0: a retry inside httpcore would reconnect to the same pinned IP anyway; we move
        # on to the next checked address instead
        return httpx.AsyncHTTPTransport(verify=context, retries=0, limits=self._limits, trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        scheme = request.url.scheme
        if scheme not in DEFAULT_PORTS:
            raise UnsafeUrl("only http:// and https:// URLs can be fetched")
        host = request.url.raw_host.decode("ascii")
        if not host:
            raise UnsafeUrl("the URL has no host")
        port = request.url.port or DEFAULT_PORTS[scheme]
        timeout = request.extensions.get("timeout", {}).get("connect")
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve_checked(host, port, allow_private=self.allow_private)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out resolving {host}", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(f"could not resolve {host}", request=request) from exc

        pool = await self._pool_for((scheme, host, port))
        failure: httpx.ConnectError | None = None
        for ip in addresses[:MAX_ADDRESS_ATTEMPTS]:
            pool.active += 1
            try:
                response = await pool.transport.handle_async_request(pinned_request(request, ip))
            except httpx.ConnectError as exc:
                await pool.release()
                failure = exc     # nothing was sent yet: the next checked address may answer
                continue
            except BaseException:
                await pool.release()
                raise
            assert isinstance(response.stream, httpx.AsyncByteStream)
            return httpx.Response(response.status_code, headers=response.headers,
                                  stream=_ReleasingStream(response.stream, pool), extensions=response.extensions)
        assert failure is not None
        raise failure

    async def _pool_for(self, key: tuple[str, str, int]) -> _Pool:
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        pool = self._pools[key] = _Pool(self._factory(self._ssl_context))
        evicted: list[_Pool] = []
        while len(self._pools) > self._max_pools:
            _, old = self._pools.popitem(last=False)
            old.retired = True
            if old.active == 0:
                evicted.append(old)
        for old in evicted:      # after the bookkeeping: closing awaits
            await old.transport.aclose()
        return pool

    async def aclose(self) -> None:
        self._closed = True
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            await pool.transport.aclose()


_FORBIDDEN_CLIENT_ARGS = frozenset({"transport", "mounts", "proxy", "proxies", "app", "trust_env"})


def guarded_client(*, allow_private: bool, verify: ssl.SSLContext | str | bool = True, timeout: float,
                   **kw: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for user-supplied URLs: every request and redirect goes through
    ``GuardedTransport``. ``limits`` goes to the transport; anything that would route around the
    transport (``transport``, ``mounts``, ``proxy``, ``trust_env``: env proxies and .netrc) is refused."""
    bad = sorted(_FORBIDDEN_CLIENT_ARGS & kw.keys())
    if bad:
        raise TypeError(f"guarded_client does not accept {', '.join(bad)}")
    limits = kw.pop("limits", None)
    transport = GuardedTransport(allow_private=allow_private, verify=verify, limits=limits)
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False, **kw)
