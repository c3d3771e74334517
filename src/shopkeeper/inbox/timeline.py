"""The inbox on the customer's timeline and 360° view: agents' notes, conversations opened and
resolved, CSAT answers; and a section listing the customer's conversations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.customers.sections import register_section
from shopkeeper.customers.timeline import Before, TimelineItem, before_cursor, register_source
from shopkeeper.inbox.models import Conversation, ConversationEvent

SHOWN = {
    "note": "note",
    "created": "conversation opened",
    "resolved": "conversation resolved",
    "csat": "CSAT answer",
    "marketing_paused": "marketing paused",
}


def _summary(event: ConversationEvent) -> str:
    if event.kind == "note":
        return f"note by {event.actor}: {str(event.data.get('text', ''))[:80]}"
    if event.kind == "csat":
        return f"CSAT answer: {event.data.get('score')} of 5"
    if event.kind == "marketing_paused":
        return f"marketing paused: {str(event.data.get('reason', '')).replace('_', ' ')}"
    return SHOWN[event.kind]


@register_source
def conversation_events(
    session: Session, ws: str, ids: Sequence[str], before: Before, limit: int
) -> list[TimelineItem]:
    rows = session.scalars(
        select(ConversationEvent)
        .where(
            ConversationEvent.workspace_id == ws,
            ConversationEvent.customer_id.in_(ids),
            ConversationEvent.kind.in_(list(SHOWN)),
            before_cursor(ConversationEvent.created_at, ConversationEvent.id, before),
        )
        .order_by(ConversationEvent.created_at.desc(), ConversationEvent.id.desc())
        .limit(limit)
    )
    return [
        TimelineItem(
            e.created_at,
            e.id,
            "note" if e.kind == "note" else "conversation",
            _summary(e),
            {"conversation_id": e.conversation_id, "kind": e.kind, "actor": e.actor, **e.data},
        )
        for e in rows
    ]


def _conversations(session: Session, ws: str, ids: Sequence[str]) -> dict[str, Any]:
    rows = list(
        session.scalars(
            select(Conversation)
            .where(Conversation.workspace_id == ws, Conversation.customer_id.in_(ids))
            .order_by(Conversation.last_message_at.desc())
            .limit(20)
        )
    )
    return {
        "open": sum(1 for r in rows if r.status != "resolved"),
        "recent": [
            {
                "id": r.id,
                "status": r.status,
                "channel": r.channel,
                "subject": r.subject,
                "intent": r.intent,
                "sentiment": r.sentiment,
                "csat_score": r.csat_score,
                "last_message_at": r.last_message_at.isoformat(),
            }
            for r in rows
        ],
    }


register_section("conversations", _conversations)
