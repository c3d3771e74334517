"""The load generator's pieces: the HTTP/1.1 response parser and the synthetic traffic."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest

from shopkeeper.bench.client import Endpoint, ProtocolError, _parse_head
from shopkeeper.bench.traffic import Traffic
from shopkeeper.customers.normalize import normalise_phone
from shopkeeper.errors import Invalid
from shopkeeper.events.limits import MAX_BATCH_BYTES


def test_response_head_gives_status_length_and_connection_state() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 16\r\ncontent-type: application/json\r\n\r\n"
    assert _parse_head(head) == (200, 16, False, False)
    head = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    assert _parse_head(head) == (503, 0, True, True)
    with pytest.raises(ProtocolError):
        _parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_requests_carry_the_write_key_as_basic_auth_user_name() -> None:
    endpoint = Endpoint.parse("http://127.0.0.1:8123", "/v1/batch", "wk_abc")
    wire = endpoint.wire(b'{"batch":[]}')
    head, _, body = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/batch HTTP/1.1\r\n")
    assert f"Authorization: Basic {base64.b64encode(b'wk_abc:').decode()}".encode() in head
    assert b"Content-Length: 12" in head
    assert body == b'{"batch":[]}'
    with pytest.raises(Invalid):
        Endpoint.parse("https://example.com", "/v1/batch", "wk")


def test_traffic_is_a_realistic_mix_of_about_one_kilobyte_per_event() -> None:
    traffic = Traffic(people=500)
    bodies = list(traffic.batch_bodies(2_050, 100))
    assert [n for _, n in bodies] == [100] * 20 + [50]
    assert all(len(body) < MAX_BATCH_BYTES for body, _ in bodies)
    events = [e for body, _ in bodies for e in orjson.loads(body)["batch"]]
    assert 700 < sum(len(b) for b, _ in bodies) / len(events) < 1400
    assert len({e["messageId"] for e in events}) == len(events)
    kinds = {e["type"] for e in events}
    assert kinds == {"track", "page", "identify"}
    assert all(e.get("userId") or e.get("anonymousId") for e in events)
    assert any("email" in e.get("traits", {}) for e in events)
    # A fixed population: people come back.
    assert len({e.get("anonymousId") or e["userId"] for e in events}) < len(events)


def test_the_same_seed_sends_the_same_people() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    a, b = Traffic(people=50, seed=3, now=now), Traffic(people=50, seed=3, now=now)
    assert a.people == b.people


def test_phone_numbers_sent_are_valid_so_the_server_links_them() -> None:
    phones = [p.phone for p in Traffic(people=400).people if p.phone]
    assert len(phones) > 20
    assert all(normalise_phone(phone) == phone for phone in phones)
