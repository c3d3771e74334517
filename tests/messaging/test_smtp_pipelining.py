"""SMTP PIPELINING (RFC 2920): with a server that offers it, MAIL, RCPT and DATA go out in one
write; refusals of any of them still end as the right error and never as a half-sent message."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections.abc import Iterator

import pytest

from shopkeeper.bench.lean_sink import Tally, serve
from shopkeeper.channels.base import OutboundMessage, ProviderError
from shopkeeper.channels.email.smtp import SmtpProvider
from tests.conftest import free_port
from tests.messaging.smtp_sink import SmtpSink


def _message(n: int, to: str = "ann@example.com") -> OutboundMessage:
    content = {"subject": f"Hello {n}", "text": f"line one\n.starts with a dot\nmessage {n}", "html": f"<p>{n}</p>"}
    return OutboundMessage(f"snd_{n}", "ws", "cus", "email", "transactional", to, content, f"snd_{n}")


@pytest.fixture
def pipelining_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(pipelining=True).start()
    try:
        yield sink
    finally:
        sink.stop()


def test_pipelined_sends_arrive_whole_over_one_connection(pipelining_sink: SmtpSink) -> None:
    provider = SmtpProvider(pipelining_sink.settings())
    try:
        results = [provider.send(_message(n)) for n in range(3)]
        conn = provider._conn
        assert conn is not None and conn.has_extn("pipelining")
    finally:
        provider.close()
    assert provider.connections == 1
    assert [r.provider_message_id for r in results] == [f"<snd_{n}@acme.test>" for n in range(3)]
    got = [r.message for r in pipelining_sink.received]
    assert [m["Subject"] for m in got] == ["Hello 0", "Hello 1", "Hello 2"]
    body = got[1].get_body(preferencelist=("plain",))
    assert body is not None and ".starts with a dot" in str(body.get_content())  # type: ignore[attr-defined]


def test_a_refused_recipient_is_a_permanent_rejection_and_the_connection_stays_usable(
    pipelining_sink: SmtpSink,
) -> None:
    pipelining_sink.handler.rcpt_reply, pipelining_sink.handler.refuse_times = "550 5.1.1 no such mailbox", 1
    provider = SmtpProvider(pipelining_sink.settings())
    try:
        with pytest.raises(ProviderError) as refused:
            provider.send(_message(1, "nobody@example.com"))
        assert not refused.value.temporary and refused.value.code == "rejected"
        assert "550" in str(refused.value)
        provider.send(_message(2))
    finally:
        provider.close()
    assert provider.connections == 1
    assert [r.rcpt_tos for r in pipelining_sink.received] == [["ann@example.com"]]


def test_a_refusal_after_the_data_is_temporary_for_4xx(pipelining_sink: SmtpSink) -> None:
    pipelining_sink.handler.data_reply, pipelining_sink.handler.refuse_times = "451 4.3.0 try again later", 1
    provider = SmtpProvider(pipelining_sink.settings())
    try:
        with pytest.raises(ProviderError) as refused:
            provider.send(_message(1))
        assert refused.value.temporary
        provider.send(_message(2))
    finally:
        provider.close()
    assert len(pipelining_sink.received) == 1


def test_the_bench_sink_speaks_smtp_in_order_and_counts_distinct_message_ids() -> None:
    tally = Tally()
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def start() -> None:
        await serve("127.0.0.1", port, tally)
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as raw:
            assert raw.ehlo()[0] == 250 and raw.has_extn("pipelining")
            assert raw.docmd("RCPT TO:<a@example.com>")[0] == 503  # MAIL first
            assert raw.docmd("DATA")[0] == 503  # no recipient yet
        provider = SmtpProvider({"host": "127.0.0.1", "port": port, "from_email": "shop@acme.test"})
        try:
            for n in (1, 2, 2):  # the third repeats the second's Message-ID
                provider.send(_message(n))
        finally:
            provider.close()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    assert tally.messages == 3 and len(tally.ids) == 2
