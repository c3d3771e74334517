"""One received email, start to finish, in one transaction: route each recipient to its
workspace, then handle it as a delivery report (DSN), a complaint (ARF) or a customer's message.

The SMTP server answers 250 only after this returns, that is after the commit: an accepted
message is a stored message. Anything that fails here rolls the whole message back and the
server answers 451, so the sending side tries again later (and the retry is recognised).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shopkeeper.channels.email.arf import parse_arf
from shopkeeper.channels.email.dsn import parse_dsn
from shopkeeper.channels.email.feedback import apply_arf, apply_dsn
from shopkeeper.channels.email.parse import read
from shopkeeper.channels.email.replies import stand_in_id, store_reply
from shopkeeper.channels.email.routing import Recipient, route
from shopkeeper.db.session import Database


@dataclass(frozen=True, slots=True)
class Handled:
    workspace_id: str
    outcome: str  # reply, auto_reply, duplicate, ignored, hard_bounce, soft_bounce, delayed, …
    detail: str
    interaction_id: str | None = None
    send_id: str | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    handled: list[Handled] = field(default_factory=list)

    def summary(self) -> str:
        return ", ".join(sorted({h.outcome for h in self.handled})) or "nothing to do"


def receive(db: Database, envelope_from: str | None, rcpt_tos: list[str], raw: bytes, now: datetime) -> Receipt:
    mail = read(raw)
    report_id = mail.message_id or stand_in_id(raw)
    handled: list[Handled] = []
    with db.session(write=True) as session:
        first: dict[str, Recipient] = {}
        for address in rcpt_tos:
            recipient = route(session, address)
            if recipient is not None:
                first.setdefault(recipient.workspace_id, recipient)
        for workspace_id, recipient in first.items():
            kind = mail.report_type
            if kind == "delivery-status" and (dsn := parse_dsn(mail.message)) is not None:
                applied = apply_dsn(session, workspace_id, dsn, tag=recipient.tag, report_id=report_id, now=now)
                handled.append(Handled(workspace_id, applied.outcome, applied.detail, None, applied.send_id))
                continue
            if kind == "feedback-report" and (arf := parse_arf(mail.message)) is not None:
                applied = apply_arf(session, workspace_id, arf, tag=recipient.tag, report_id=report_id, now=now)
                handled.append(Handled(workspace_id, applied.outcome, applied.detail, None, applied.send_id))
                continue
            stored = store_reply(session, recipient, mail, envelope_from=envelope_from, raw=raw, now=now)
            handled.append(Handled(workspace_id, stored.outcome, stored.detail, stored.interaction_id, stored.send_id))
    return Receipt(handled)
