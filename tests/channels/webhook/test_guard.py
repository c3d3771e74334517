"""SPEC §12: outbound webhooks refuse private and loopback addresses unless allowed by config —
when an endpoint is saved (literal addresses) and again when the connection is made (every
address the host name resolves to), so a name that points inside cannot slip through."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import httpx
import pytest

from shopkeeper.channels.webhook.guard import BlockedAddress, GuardedTransport, check_url, is_public, resolve_checked
from shopkeeper.errors import Invalid
from tests.channels.webhook.receiver import Receiver

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # the cloud metadata service
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "255.255.255.255",
    "::1",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",
    "2002:7f00:1::1",  # 6to4 around 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
]


@pytest.mark.parametrize("address", REFUSED)
def test_private_loopback_link_local_and_multicast_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "http://10.1.2.3/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9000/",
        "https://localhost/hooks",
        "http://224.0.0.1/",
    ],
)
def test_saving_an_endpoint_at_a_private_address_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_url(url, allow_private=False)
    assert refused.value.field == "url" and "private or loopback" in refused.value.message
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/hooks", "https://"),
        ("https:///hooks", "no host"),
        ("https://user:pw@example.com/hooks", "credentials"),
        ("https://example.com:99999/", "not a valid URL"),
        ("example.com/hooks", "https://"),
    ],
)
def test_an_endpoint_url_must_be_http_with_a_host(url: str, why: str) -> None:
    with pytest.raises(Invalid, match=why):
        check_url(url, allow_private=True)


def _resolver(table: dict[str, list[str]]) -> Any:
    """A name service for names we make up (the addresses are only looked at, never dialled,
    unless they are the loopback receiver's)."""

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in table[host]
        ]

    return resolve


def test_a_name_is_refused_when_any_of_its_addresses_is_private() -> None:
    resolve = _resolver({"hooks.example.test": ["93.184.215.14", "10.0.0.7"], "ok.example.test": ["93.184.215.14"]})
    with pytest.raises(BlockedAddress, match=r"10\.0\.0\.7"):
        resolve_checked("hooks.example.test", 443, allow_private=False, resolve=resolve)
    assert len(resolve_checked("ok.example.test", 443, allow_private=False, resolve=resolve)) == 1
    # The real resolver: localhost is loopback.
    with pytest.raises(BlockedAddress):
        resolve_checked("localhost", 80, allow_private=False)


def test_the_guard_runs_at_connect_time_on_the_address_it_connects_to(receiver: Receiver) -> None:
    """A host name saved as harmless that resolves to loopback when the request is made (DNS
    rebinding) is refused before any byte is sent; allowed, the connection goes to exactly the
    address that was checked, with the name kept in the Host header."""
    resolve = _resolver({"hooks.example.test": ["127.0.0.1"]})
    url = f"http://hooks.example.test:{receiver.port}/hooks"
    assert check_url(url, allow_private=False) == url  # no lookup when saving
    limits = httpx.Limits(max_connections=2)
    with (
        httpx.Client(transport=GuardedTransport(allow_private=False, limits=limits, resolve=resolve)) as client,
        pytest.raises(BlockedAddress, match=r"127\.0\.0\.1"),
    ):
        client.post(url, content=b"{}")
    assert receiver.requests == []
    with httpx.Client(transport=GuardedTransport(allow_private=True, limits=limits, resolve=resolve)) as client:
        assert client.post(url, content=b"{}").status_code == 200
    assert [r.headers["host"] for r in receiver.requests] == [f"hooks.example.test:{receiver.port}"]
