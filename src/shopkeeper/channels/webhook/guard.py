"""The SSRF guard for outbound HTTP (SPEC §12) — webhooks, and any other request to an address a
workspace typed in: no request to a private, loopback, link-local, multicast or otherwise
non-public address unless the operator allows it (`SHOPKEEPER_WEBHOOK_ALLOW_PRIVATE=true`).

- `check_url`: the quick check when an endpoint is saved (literal addresses and `localhost`; no
  DNS lookup, so a slow resolver cannot stall the API).
- `GuardedTransport`: the httpx transport deliveries go through. Its network backend resolves
  the host once, refuses it if *any* address is not public, and connects to one of exactly those
  addresses — a name that points outside when saved and inside when called (DNS rebinding) gains
  nothing, as there is no second lookup. TLS still verifies the certificate against the host
  name. Proxies from the environment are ignored (a proxy would connect on our behalf, past the
  guard); the client must not follow redirects.
- `deadline`: a limit for a whole request. httpx's timeouts bound each read and write, so a
  receiver answering one byte every few seconds could hold a delivery worker — and every
  workspace's messages queued behind it — for hours; under a deadline each socket operation gets
  at most the time left.

httpx has no public way to pass a network backend to its transport, so the pool it builds is
replaced by one built the same way; httpx and httpcore are pinned in pyproject.toml.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from shopkeeper.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[tuple[Any, ...]]]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class BlockedAddress(Exception):
    """The webhook's host is, or resolves to, an address the guard refuses."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """An IPv4 address carried inside an IPv6 one (mapped, 6to4, Teredo, NAT64): judged as itself."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast: not private, loopback, link-local (169.254/16, the cloud
    metadata address), shared (100.64/10), reserved, documentation, unspecified or multicast."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and not is_public(inner):
            return False
    return ip.is_global and not ip.is_multicast


def parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id (fe80::1%eth0)
    except ValueError:
        return None


def check_url(url: str, *, allow_private: bool) -> str:
    """An endpoint URL as it may be saved: http(s), a host, no credentials; when private
    addresses are not allowed, no literal private address and no `localhost`."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Invalid(f"url: not a valid URL ({exc})", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise Invalid("url: must start with https:// (or http://)", field="url")
    host = parts.hostname
    if not host:
        raise Invalid("url: has no host name", field="url")
    if parts.username is not None or parts.password is not None:
        raise Invalid("url: credentials in the URL are not supported; verify the signature instead", field="url")
    if port == 0:
        raise Invalid("url: port 0 cannot be connected to", field="url")
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise Invalid(f"url: not a valid URL ({exc})", field="url") from None
    if not allow_private:
        ip = parse_ip(host)
        if (ip is not None and not is_public(ip)) or host.rstrip(".").lower() in _LOCAL_NAMES:
            raise Invalid(
                f"url: {host} is a private or loopback address; webhooks go to public addresses "
                "(an operator can allow private ones with SHOPKEEPER_WEBHOOK_ALLOW_PRIVATE=true)",
                field="url",
            )
    return url


def resolve_checked(
    host: str, port: int, *, allow_private: bool, resolve: Resolver = socket.getaddrinfo
) -> list[tuple[Any, ...]]:
    """getaddrinfo for `host`, refusing the lot if any address is not public (a name with one
    public and one private address is refused: which one a client picks is not ours to rely on)."""
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    if not infos:
        raise httpcore.ConnectError(f"{host} resolves to no address")
    if not allow_private:
        for info in infos:
            ip = parse_ip(str(info[4][0]))
            if ip is None or not is_public(ip):
                raise BlockedAddress(
                    f"{host} resolves to {info[4][0]}, a private or reserved address; webhooks go to "
                    "public addresses (SHOPKEEPER_WEBHOOK_ALLOW_PRIVATE=true allows private ones)"
                )
    return list(infos)


_local = threading.local()  # the current request's deadline (time.monotonic), per worker thread


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every network operation inside the block ends by `seconds` from now."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = previous


def _bounded(timeout: float | None, expired: type[Exception]) -> float | None:
    end: float | None = getattr(_local, "deadline", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise expired("the request took longer than its time limit")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to addresses that passed the guard."""

    def __init__(self, *, allow_private: bool, resolve: Resolver = socket.getaddrinfo) -> None:
        self.allow_private = allow_private
        self.resolve = resolve

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        infos = resolve_checked(host, port, allow_private=self.allow_private, resolve=self.resolve)
        last: Exception | None = None
        for info in infos:
            address = str(info[4][0])
            try:
                # An address literal: the parent's create_connection does no second lookup.
                stream = super().connect_tcp(
                    address, port, _bounded(timeout, httpcore.ConnectTimeout), local_address, socket_options
                )
                return _DeadlineStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on the guarded backend."""

    def __init__(
        self,
        *,
        allow_private: bool,
        limits: httpx.Limits,
        resolve: Resolver = socket.getaddrinfo,
    ) -> None:
        super().__init__(limits=limits, trust_env=False, retries=0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,
            network_backend=GuardedBackend(allow_private=allow_private, resolve=resolve),
        )
