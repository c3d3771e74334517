"""Abuse feedback reports (ARF, RFC 5965): a recipient pressed "this is spam".

Mailbox providers (Yahoo, AOL, Outlook.com's JMRP, …) send them to the address registered for
their feedback loop: `multipart/report; report-type=feedback-report` with a human part, a
`message/feedback-report` part (Feedback-Type, User-Agent, Version, Original-Mail-From,
Original-Rcpt-To, Arrival-Date, Source-IP, Reported-Domain …) and the reported message or its
headers. Providers often redact the recipient in the returned copy, so the send is found by the
Message-ID (or our X-Shopkeeper-Send header), not by the To address.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage, Message

from shopkeeper.channels.email.dsn import ReturnedMessage, returned_message
from shopkeeper.channels.email.parse import raw_header

# Feedback types (RFC 5965 and its IANA registry) that mean "do not mail me this": abuse is the
# spam button; fraud and virus are reports against the message too. `not-spam` (RFC 6650) and
# `other` are kept in the history but change nothing.
COMPLAINTS = ("abuse", "fraud", "virus")


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    feedback_type: str
    user_agent: str | None
    original_rcpt_to: str | None
    original_mail_from: str | None
    arrival_date: str | None
    source_ip: str | None
    original: ReturnedMessage

    @property
    def is_complaint(self) -> bool:
        return self.feedback_type in COMPLAINTS

    def describe(self) -> str:
        who = f" via {self.user_agent}" if self.user_agent else ""
        return f"complaint ({self.feedback_type}){who}"[:480]


def _address(value: str | None) -> str | None:
    if not value:
        return None
    return value.strip().strip("<>").strip().lower() or None


def _fields(report: EmailMessage) -> Message | None:
    for part in report.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            if isinstance(payload, Message):
                return payload
    return None


def parse_arf(report: EmailMessage) -> FeedbackReport | None:
    fields = _fields(report)
    if fields is None:
        return None
    kind = (raw_header(fields, "Feedback-Type") or "").strip().lower()
    if not kind:
        return None
    return FeedbackReport(
        feedback_type=kind[:40],
        user_agent=(raw_header(fields, "User-Agent") or None),
        original_rcpt_to=_address(raw_header(fields, "Original-Rcpt-To")),
        original_mail_from=_address(raw_header(fields, "Original-Mail-From")),
        arrival_date=raw_header(fields, "Arrival-Date") or raw_header(fields, "Received-Date"),
        source_ip=raw_header(fields, "Source-IP"),
        original=returned_message(report),
    )
