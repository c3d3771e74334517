"""Bounces and complaints about mail we sent → the send's status, suppression and consent.

- A DSN whose recipient `failed` with a permanent 5.x.x status is a hard bounce: the send is
  `bounced` and the address is suppressed (reason `hard_bounce`), so nothing is sent to it
  again. A failure with a 4.x.x status (the remote side gave up retrying) is a soft bounce:
  `bounced`, no suppression. A `delayed` report is only written into the send's history; a
  `delivered`/`relayed` one (a success notice) records `delivered`.
- An ARF report of abuse, fraud or virus is a complaint: the send is `complained`, the address
  suppressed (reason `complaint`), and the customer opted out of every email topic (source
  `complaint`), so that marketing stops on any other address they have too. Other feedback
  types are kept in the history and change nothing.

The send is found by the VERP tag of the address the report came to (`bounces+<send id>@…`),
our X-Shopkeeper-Send header, or the Message-ID of the returned message (each is unguessable:
a forged report cannot suppress an address it has not seen mail for). A report is applied once:
its own Message-ID is kept with the history entry, and a repeat is recognised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.channels.email.arf import FeedbackReport
from shopkeeper.channels.email.dsn import DeliveryReport, RecipientReport, ReturnedMessage
from shopkeeper.channels.email.threads import find_thread, send_by_id
from shopkeeper.consent.models import Topic
from shopkeeper.consent.service import Proof, set_status, suppress
from shopkeeper.customers.service import canonical
from shopkeeper.db.scoping import scoped
from shopkeeper.errors import Invalid, NotFound
from shopkeeper.messaging.models import Send, SendEvent
from shopkeeper.messaging.status import find_by_provider_id, history, record


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: str  # hard_bounce, soft_bounce, delayed, delivered, complaint, feedback, duplicate, unmatched
    detail: str
    send_id: str | None = None
    suppressed: str | None = None  # the address suppressed


def find_send(session: Session, workspace_id: str, original: ReturnedMessage, tag: str | None) -> Send | None:
    for candidate in (tag, original.send_header):
        send = send_by_id(session, workspace_id, candidate.strip() if candidate else None)
        if send is not None:
            return send
    thread = find_thread(session, workspace_id, original.message_ids)
    if thread.send is not None:
        return thread.send
    for message_id in original.message_ids:  # a provider that chose its own Message-ID
        send = find_by_provider_id(session, message_id, workspace_id)
        if send is not None:
            return send
    return None


def _seen(session: Session, send: Send, report_id: str) -> bool:
    rows = session.scalars(
        select(SendEvent.data).where(SendEvent.workspace_id == send.workspace_id, SendEvent.send_id == send.id)
    )
    return any(isinstance(data, dict) and data.get("report") == report_id for data in rows)


def _recipient_for(report: DeliveryReport, send: Send) -> RecipientReport:
    address = (send.to_address or "").lower()
    for recipient in report.recipients:
        if address and address in recipient.addresses():
            return recipient
    failed = [r for r in report.recipients if r.failed]
    return (failed or report.recipients)[0]


def apply_dsn(
    session: Session, workspace_id: str, report: DeliveryReport, *, tag: str | None, report_id: str, now: datetime
) -> Applied:
    send = find_send(session, workspace_id, report.original, tag)
    if send is None:
        return Applied("unmatched", "a delivery report about no send of this workspace")
    if _seen(session, send, report_id):
        return Applied("duplicate", f"report {report_id} was applied before", send.id)
    recipient = _recipient_for(report, send)
    reason = recipient.describe()
    data: dict[str, Any] = {"report": report_id, "dsn_status": recipient.status, "action": recipient.action}
    if recipient.remote_mta:
        data["remote_mta"] = recipient.remote_mta[:200]
    if recipient.action == "delayed":
        history(session, send, send.status, now, reason, **data)
        return Applied("delayed", reason, send.id)
    if not recipient.failed:
        record(session, send, "delivered", now, reason, **data)
        return Applied("delivered", reason, send.id)
    kind = "hard" if recipient.permanent else "soft"
    record(session, send, "bounced", now, f"{kind} bounce: {reason}"[:500], bounce=kind, **data)
    if kind == "soft":
        return Applied("soft_bounce", reason, send.id)
    address = _suppress(
        session,
        workspace_id,
        send.to_address or recipient.original_recipient or recipient.final_recipient,
        "hard_bounce",
        f"{recipient.status} (send {send.id})",
        now,
    )
    return Applied("hard_bounce", reason, send.id, address)


def _suppress(
    session: Session, workspace_id: str, address: str | None, reason: str, note: str, now: datetime
) -> str | None:
    """Suppress the address we sent to; None when there is no usable address."""
    if not address:
        return None
    try:
        return suppress(session, workspace_id, "email", address, reason, now, note=note[:500]).address or address
    except Invalid:
        return None


def opt_out_of_email(session: Session, workspace_id: str, customer_id: str, wording: str, now: datetime) -> int:
    """Every email topic to `opted_out`, from a complaint; returns how many changed."""
    try:
        customer = canonical(session, workspace_id, customer_id)
    except NotFound:  # erased since the send
        return 0
    proof = Proof(source="complaint", wording=wording[:500])
    changed = 0
    for topic in session.scalars(scoped(Topic, workspace_id).where(Topic.archived_at.is_(None)).order_by(Topic.key)):
        if "email" in (topic.channels or []) and set_status(
            session, workspace_id, customer.id, "email", topic.key, "opted_out", proof, now
        ):
            changed += 1
    return changed


def apply_arf(
    session: Session, workspace_id: str, report: FeedbackReport, *, tag: str | None, report_id: str, now: datetime
) -> Applied:
    send = find_send(session, workspace_id, report.original, tag)
    if send is None:
        return Applied("unmatched", "a feedback report about no send of this workspace")
    if _seen(session, send, report_id):
        return Applied("duplicate", f"report {report_id} was applied before", send.id)
    reason = report.describe()
    data: dict[str, Any] = {"report": report_id, "feedback_type": report.feedback_type}
    if report.user_agent:
        data["user_agent"] = report.user_agent[:200]
    if not report.is_complaint:
        history(session, send, send.status, now, f"feedback report ({report.feedback_type})", **data)
        return Applied("feedback", reason, send.id)
    record(session, send, "complained", now, reason, **data)
    note = f"{reason} (send {send.id})"
    address = _suppress(session, workspace_id, send.to_address or report.original_rcpt_to, "complaint", note, now)
    opt_out_of_email(session, workspace_id, send.customer_id, f"marked our email as spam: {reason}", now)
    return Applied("complaint", reason, send.id, address)
