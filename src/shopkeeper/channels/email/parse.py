"""Reading an inbound email: who sent it, what it answers, and its text.

Mail from the internet is often malformed, so nothing here raises on a bad header or an unknown
charset: a header that cannot be read counts as absent, undecodable bytes are replaced. Message
ids are taken from the raw header text, which survives folding and stray comments that
stricter parsers refuse. NUL characters (which PostgreSQL cannot store) are removed.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser
from typing import Any

from shopkeeper.customers.normalize import normalise_email

MAX_PART_CHARS = 512 * 1024  # a stored text or HTML body is cut here
MAX_ID_CHARS = 250  # Interaction.message_id holds 300
_MSG_ID = re.compile(r"<([^<>\s]+)>")
# Lines that start the quoted original in a reply, as common mail programs write them.
_QUOTE_STARTS = (
    re.compile(r"^On .{1,300}wrote:\s*$"),  # Gmail, Apple Mail, Thunderbird
    re.compile(r"^Le .{1,300}a écrit\s*:\s*$"),
    re.compile(r"^Am .{1,300}schrieb .{1,200}:\s*$"),
    re.compile(r"^-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),  # Outlook (older)
    re.compile(r"^_{10,}\s*$"),  # Outlook: a rule, then From:/Sent:
    re.compile(r"^From: .+$"),
)
_AUTO_PRECEDENCE = ("bulk", "junk", "list", "auto_reply")
_MAILER_DAEMONS = ("mailer-daemon", "postmaster")


def parse_bytes(raw: bytes) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def raw_header(message: Message, name: str) -> str | None:
    """The header's text (first occurrence), unfolded, with encoded words decoded; None if absent
    or unreadable."""
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            text = str(value)
            with contextlib.suppress(ValueError, LookupError, UnicodeError):
                text = str(make_header(decode_header(text)))
            return clean(re.sub(r"\r?\n[ \t]+", " ", text)).strip()
    return None


def message_ids(value: str | None) -> list[str]:
    """Every `<id>` in a header value, in order, without repeats (ids too long to be anyone's
    are left out)."""
    if not value:
        return []
    return list(dict.fromkeys(f"<{m}>" for m in _MSG_ID.findall(value) if len(m) <= MAX_ID_CHARS))


def clean(text: str) -> str:
    """Storable text: undecodable bytes (kept by the parser as lone surrogates, which no
    database encoding accepts) become U+FFFD, and NUL goes."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "")


def first_address(value: str | None) -> tuple[str | None, str | None]:
    """(normalised address, display name) of the first mailbox in an address header."""
    if not value:
        return None, None
    for name, address in getaddresses([value]):
        normalised = normalise_email(address) if address else None
        if normalised:
            return normalised, (name.strip() or None)
    return None, None


def part_text(part: Message) -> str | None:
    """A text part's content as str, whatever its declared charset says."""
    try:
        content: Any = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError, UnicodeError, AssertionError, KeyError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else None
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    return clean(content).replace("\r\n", "\n") if isinstance(content, str) else None


class _TextOfHtml(HTMLParser):
    _BLOCKS = frozenset(
        ("p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "hr", "pre")
    )
    _SKIP = frozenset(("script", "style", "head", "title"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.out.append(data)


def text_of_html(html: str) -> str:
    parser = _TextOfHtml()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # HTMLParser on hopeless input
        pass
    lines = (re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in "".join(parser.out).splitlines())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def reply_part(text: str) -> str:
    """The new part of a reply: the text above the quoted original (the whole text if no quote
    is recognised)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if index > 0 and any(p.match(stripped) for p in _QUOTE_STARTS):
            lines = lines[:index]
            break
    # Trailing "> quoted" lines (replies that quote below without a header line).
    while lines and (lines[-1].startswith(">") or not lines[-1].strip()):
        lines.pop()
    return "\n".join(lines).strip()


@dataclass(slots=True)
class InboundMail:
    message: EmailMessage
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    from_address: str | None
    from_name: str | None
    subject: str | None
    text: str | None
    html: str | None
    auto_submitted: bool

    @property
    def report_type(self) -> str | None:
        """`delivery-status` (a DSN), `feedback-report` (an ARF complaint), or None."""
        if self.message.get_content_type() != "multipart/report":
            return None
        value = self.message.get_param("report-type")
        return value.lower() if isinstance(value, str) else None

    @property
    def from_mailer_daemon(self) -> bool:
        local = (self.from_address or "").partition("@")[0]
        return local in _MAILER_DAEMONS

    @property
    def thread_ids(self) -> list[str]:
        """What this message answers, nearest first: In-Reply-To, then References newest first."""
        return list(dict.fromkeys([*self.in_reply_to, *reversed(self.references)]))


def _body(message: EmailMessage, subtype: str) -> str | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except (LookupError, ValueError, AttributeError, TypeError):  # a broken multipart's payload is a str
        part = None
    if part is None or part.get_content_type() != f"text/{subtype}":
        return None
    text = part_text(part)
    return text[:MAX_PART_CHARS] if text is not None else None


def _auto_submitted(message: EmailMessage) -> bool:
    """RFC 3834 Auto-Submitted, and the headers older autoresponders set instead."""
    auto = (raw_header(message, "Auto-Submitted") or "no").lower()
    precedence = (raw_header(message, "Precedence") or "").lower()
    return (
        not auto.startswith("no")
        or precedence in _AUTO_PRECEDENCE
        or raw_header(message, "X-Autoreply") is not None
        or raw_header(message, "X-Autorespond") is not None
    )


def read(raw: bytes) -> InboundMail:
    message = parse_bytes(raw)
    from_address, from_name = first_address(raw_header(message, "From"))
    html = _body(message, "html")
    text = _body(message, "plain")
    if text is None and html is not None:
        text = text_of_html(html)
    own_ids = message_ids(raw_header(message, "Message-ID"))
    subject = raw_header(message, "Subject")
    return InboundMail(
        message=message,
        message_id=own_ids[0] if own_ids else None,
        in_reply_to=message_ids(raw_header(message, "In-Reply-To")),
        references=message_ids(raw_header(message, "References")),
        from_address=from_address,
        from_name=from_name,
        subject=subject[:1000] if subject is not None else None,
        text=text,
        html=html,
        auto_submitted=_auto_submitted(message),
    )
