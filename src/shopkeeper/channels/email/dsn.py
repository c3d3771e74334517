"""Delivery status notifications (RFC 3464): what happened to each recipient of a message we sent.

A DSN is `multipart/report; report-type=delivery-status` with a human part, a
`message/delivery-status` part (one block of per-message fields, then one block per recipient:
Final-Recipient, Action, Status, Diagnostic-Code …) and, usually, the returned message or its
headers (`message/rfc822` or `text/rfc822-headers`), whose Message-ID names our send.

Real-world reports bend the format: Exchange writes five-digit statuses such as 5.1.10,
some MTAs leave Status out and put the SMTP reply only in Diagnostic-Code. Both are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.policy import default as default_policy

from shopkeeper.channels.email.parse import clean, message_ids, part_text, raw_header

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY_CODE = re.compile(r"\b([245])\d\d\b")
ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")


@dataclass(frozen=True, slots=True)
class RecipientReport:
    final_recipient: str | None
    original_recipient: str | None
    action: str
    status: str  # class.subject.detail, e.g. 5.1.1
    diagnostic: str | None
    remote_mta: str | None

    @property
    def permanent(self) -> bool:
        return self.status.startswith("5")

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    def addresses(self) -> list[str]:
        return [a for a in (self.original_recipient, self.final_recipient) if a]

    def describe(self) -> str:
        what = {"failed": "bounced", "delayed": "delayed"}.get(self.action, self.action)
        text = f"{what} {self.status}"
        if self.diagnostic:
            text += f": {self.diagnostic}"
        return text[:480]


@dataclass(frozen=True, slots=True)
class ReturnedMessage:
    """What a report says about the message it is about: its ids and our own marker header."""

    message_ids: list[str] = field(default_factory=list)
    send_header: str | None = None  # X-Shopkeeper-Send
    to: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    reporting_mta: str | None
    recipients: list[RecipientReport]
    original: ReturnedMessage


def _typed_address(value: str | None) -> str | None:
    """`rfc822; ann@example.com` → `ann@example.com` (lower-cased)."""
    if not value:
        return None
    kind, sep, address = value.partition(";")
    address = (address if sep else kind).strip().strip("<>").strip().lower()
    return address or None


def _after_type(value: str | None) -> str | None:
    if not value:
        return None
    _, sep, rest = value.partition(";")
    return (rest if sep else value).strip() or None


def _status(status: str | None, diagnostic: str | None, action: str) -> str:
    for text in (status, diagnostic):
        match = _STATUS.search(text or "")
        if match:
            return ".".join(match.groups())
    code = _REPLY_CODE.search(diagnostic or "")
    if code:
        return f"{code.group(1)}.0.0"
    return {"failed": "5.0.0", "delayed": "4.0.0"}.get(action, "2.0.0")


def returned_message(report: Message) -> ReturnedMessage:
    """The Message-ID (and our X-Shopkeeper-Send header) of the message a report returns."""
    for part in report.walk():
        kind = part.get_content_type()
        headers: Message | None = None
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                headers = payload[0]
        elif kind in ("text/rfc822-headers", "message/rfc822-headers", "text/global-headers"):
            text = part_text(part)
            if text:
                headers = HeaderParser(policy=default_policy).parsestr(text.lstrip())
        if headers is None:
            continue
        ids = message_ids(raw_header(headers, "Message-ID"))
        marker = raw_header(headers, "X-Shopkeeper-Send")
        if ids or marker:
            return ReturnedMessage(ids, marker, raw_header(headers, "To"))
    return ReturnedMessage()


def _blocks(report: EmailMessage, content_type: str) -> list[Message]:
    for part in report.walk():
        if part.get_content_type() == content_type:
            payload = part.get_payload()
            if isinstance(payload, list):
                return [b for b in payload if isinstance(b, Message)]
            if isinstance(payload, Message):
                return [payload]
    return []


def parse_dsn(report: EmailMessage) -> DeliveryReport | None:
    """The report's recipients and returned message; None if it holds no delivery status."""
    blocks = _blocks(report, "message/delivery-status") or _blocks(report, "message/global-delivery-status")
    if not blocks:
        return None
    per_message, per_recipient = blocks[0], blocks[1:]
    if raw_header(per_message, "Final-Recipient") or raw_header(per_message, "Action"):
        per_recipient = blocks  # no per-message block (seen in the wild)
    recipients = []
    for block in per_recipient:
        if not any(raw_header(block, name) for name in ("Final-Recipient", "Original-Recipient", "Action", "Status")):
            continue  # an empty block: Exchange ends the report with an extra blank line
        action = (raw_header(block, "Action") or "").lower().split()[0:1]
        act = action[0] if action and action[0] in ACTIONS else "failed"
        diagnostic = _after_type(raw_header(block, "Diagnostic-Code"))
        recipients.append(
            RecipientReport(
                final_recipient=_typed_address(raw_header(block, "Final-Recipient")),
                original_recipient=_typed_address(raw_header(block, "Original-Recipient")),
                action=act,
                status=_status(raw_header(block, "Status"), diagnostic, act),
                diagnostic=clean(diagnostic)[:400] if diagnostic else None,
                remote_mta=_after_type(raw_header(block, "Remote-MTA")),
            )
        )
    if not recipients:
        return None
    return DeliveryReport(_after_type(raw_header(per_message, "Reporting-MTA")), recipients, returned_message(report))
