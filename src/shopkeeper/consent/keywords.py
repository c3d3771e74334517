"""SMS keywords on inbound messages: STOP silences a number, START undoes it, HELP explains.

`handle_sms_keyword` is what the inbound SMS channel calls with each message before treating it
as conversation. A keyword counts only when it is the whole message (case, surrounding spaces and
punctuation aside): "Stop." stops, "please stop calling" is a message for an agent.

- STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT: every customer holding the number is opted out
  of SMS as a whole (the channel-wide status, which also stops transactional texts), and the
  number itself is suppressed with reason `stop` — even when no customer holds it, because the
  address is what must not be texted again.
- START, YES, UNSTOP: the `stop` suppression is lifted and the channel-wide status goes back to
  `unknown`. Topic statuses are not touched by either keyword, so opt-ins to topics that existed
  before the STOP apply again after START; nothing is opted in that was not before.
- HELP, INFO: no change; the reply says how to stop and start.

Each result carries the reply to text back. Workspaces set their own wording in
`settings["sms_keywords"]` (`{"stop": ..., "start": ..., "help": ...}`, with `{workspace}`
standing for the workspace name); the defaults name the workspace, as carriers require.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.consent.models import ALL_TOPICS
from shopkeeper.consent.service import Proof, lift_suppression, set_status, suppress
from shopkeeper.customers.models import Identity
from shopkeeper.customers.normalize import normalise_phone
from shopkeeper.errors import Invalid

Action = Literal["stop", "start", "help"]
KEYWORDS: dict[str, Action] = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"), "stop"),
    **dict.fromkeys(("START", "YES", "UNSTOP"), "start"),
    **dict.fromkeys(("HELP", "INFO"), "help"),
}
DEFAULT_REPLIES: dict[Action, str] = {
    "stop": "{workspace}: you are unsubscribed and will receive no more text messages from us. "
    "Reply START to subscribe again.",
    "start": "{workspace}: you are subscribed to text messages again. Reply STOP to unsubscribe, HELP for help.",
    "help": "{workspace}: reply STOP to stop all text messages from us, START to receive them again.",
}
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")
_SOURCE = "inbound-keyword"


@dataclass(frozen=True, slots=True)
class KeywordResult:
    """What a message meant: `action` None means it is no keyword (treat it as a message)."""

    phone: str
    keyword: str | None = None
    action: Action | None = None
    reply: str | None = None
    customer_ids: list[str] = field(default_factory=list)
    consent_event_ids: list[str] = field(default_factory=list)


def keyword_of(text: str) -> str | None:
    """The keyword a whole message amounts to, or None."""
    word = _EDGES.sub("", text).upper()
    return word if word in KEYWORDS else None


def reply_text(ws: Workspace, action: Action) -> str:
    configured = (ws.settings or {}).get("sms_keywords")
    text = configured.get(action) if isinstance(configured, dict) else None
    if not isinstance(text, str) or not text.strip():
        text = DEFAULT_REPLIES[action]
    # A plain replacement, not str.format: the text is the workspace's, and format fields could
    # reach into objects.
    return text.replace("{workspace}", ws.name)


def handle_sms_keyword(
    session: Session, ws: Workspace, phone: str, text: str, now: datetime, *, ip: str | None = None
) -> KeywordResult:
    """Apply the keyword `text` sent from `phone` (any format the workspace's region reads)."""
    region = (ws.settings or {}).get("default_phone_region")
    number = normalise_phone(phone, region if isinstance(region, str) else None)
    if number is None:
        raise Invalid(f"phone: {phone!r} is not a phone number", field="phone")
    keyword = keyword_of(text)
    if keyword is None:
        return KeywordResult(phone=number)
    action = KEYWORDS[keyword]
    holders = list(
        session.scalars(
            select(Identity.customer_id)
            .where(Identity.workspace_id == ws.id, Identity.kind == "phone", Identity.value == number)
            .distinct()
        )
    )
    events: list[str] = []
    if action != "help":
        # The customer's own words are the wording of the change (without NUL, which PostgreSQL refuses).
        proof = Proof(source=_SOURCE, wording=text.replace("\x00", "").strip()[:500], ip=ip)
        status = "opted_out" if action == "stop" else "unknown"
        for customer_id in holders:
            event = set_status(session, ws.id, customer_id, "sms", ALL_TOPICS, status, proof, now)
            if event is not None:
                events.append(event.id)
        if action == "stop":
            suppress(session, ws.id, "sms", number, "stop", now, note=f"replied {keyword}")
        else:
            lift_suppression(session, ws.id, "sms", number, reasons=["stop"])
    return KeywordResult(
        phone=number,
        keyword=keyword,
        action=action,
        reply=reply_text(ws, action),
        customer_ids=holders,
        consent_event_ids=events,
    )
