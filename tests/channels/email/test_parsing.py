"""Reading inbound mail: whatever arrives (truncated, corrupted, mis-declared), reading it never
raises and never yields text a database refuses — a message that cannot be read must not make
the sender retry for days."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopkeeper.channels.email.arf import parse_arf
from shopkeeper.channels.email.dsn import parse_dsn
from shopkeeper.channels.email.parse import message_ids, read, reply_part, text_of_html
from tests.channels.email import mails

ORIGINAL = (
    b"Message-ID: <snd_0123456789abcdef0123456789abcdef@acme.test>\r\nTo: ann@example.com\r\n"
    b"Subject: Welcome\r\n\r\nHello\r\n"
)
SAMPLES = [
    mails.gmail_reply(original_id="<a@b.example.com>"),
    mails.outlook_html_reply(original_id="<a@b.example.com>"),
    mails.gmail_dsn(ORIGINAL, recipient="ann@example.com"),
    mails.outlook_dsn(ORIGINAL, recipient="ann@example.com"),
    mails.postfix_dsn(ORIGINAL, recipient="ann@example.com"),
    mails.yahoo_arf(ORIGINAL, recipient="ann@example.com"),
    mails.aol_arf(ORIGINAL),
]


def storable(text: str | None) -> bool:
    if text is None:
        return True
    text.encode("utf-8")  # raises on a lone surrogate
    return "\x00" not in text


def read_everything(raw: bytes) -> None:
    mail = read(raw)
    for value in (mail.subject, mail.text, mail.html, mail.from_name, mail.message_id, *mail.thread_ids):
        assert storable(value)
    if mail.report_type is not None:
        dsn, arf = parse_dsn(mail.message), parse_arf(mail.message)
        for report in (dsn, arf):
            if report is not None:
                assert all(storable(m) for m in report.original.message_ids)
    if mail.text is not None:
        assert storable(reply_part(mail.text))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.sampled_from(SAMPLES),
    cuts=st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 200), st.binary(max_size=40)), max_size=6),
)
def test_corrupted_mail_is_read_without_error(sample: bytes, cuts: list[tuple[int, int, bytes]]) -> None:
    raw = sample
    for start, length, replacement in cuts:
        start %= len(raw) + 1
        raw = raw[:start] + replacement + raw[start + length :]
    read_everything(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_are_read_without_error(raw: bytes) -> None:
    read_everything(raw)


def test_undecodable_headers_and_unknown_charsets_become_replacement_characters() -> None:
    raw = (
        b"From: =?x-unknown?q?Ann?= <ann@example.com>\r\nSubject: caf\xe9 \xff\x00\r\n"
        b"Message-ID: <m1@example.com>\r\nContent-Type: text/plain; charset=x-martian\r\n\r\nbody \xe9\xff\r\n"
    )
    mail = read(raw)
    assert mail.from_address == "ann@example.com"
    assert mail.subject is not None and storable(mail.subject) and mail.subject.startswith("caf")
    assert mail.text is not None and storable(mail.text) and mail.text.startswith("body")


def test_threading_ids_and_reply_text() -> None:
    assert message_ids("<a@x.example.com> <b@x.example.com>\r\n <a@x.example.com> junk") == [
        "<a@x.example.com>",
        "<b@x.example.com>",
    ]
    assert message_ids("<" + "a" * 300 + "@x.example.com>") == []
    mail = read(mails.gmail_reply(original_id="<o@acme.test>", references="<r1@acme.test> <o@acme.test>"))
    assert mail.thread_ids == ["<o@acme.test>", "<r1@acme.test>"]  # nearest first
    assert reply_part("Yes please\n\n> Hi\n> there\n") == "Yes please"
    assert reply_part("Sure.\n\nOn Mon, 2 Mar 2026 at 09:00, Acme <shop@acme.test> wrote:\n> Hi") == "Sure."
    assert text_of_html("<p>One<br>Two</p><script>x()</script><p>&eacute;t&eacute;</p>") == "One\nTwo\n\nété"
