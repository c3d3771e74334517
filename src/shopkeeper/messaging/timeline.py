"""Messages on the customer's timeline: every interaction, in or out, on any channel."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.customers.timeline import Before, TimelineItem, before_cursor, register_source
from shopkeeper.messaging.models import Interaction


@register_source
def interactions(session: Session, ws: str, ids: Sequence[str], before: Before, limit: int) -> list[TimelineItem]:
    rows = session.scalars(
        select(Interaction)
        .where(
            Interaction.workspace_id == ws,
            Interaction.customer_id.in_(ids),
            # Webhooks go to the company's systems, not to the customer (GET /api/v1/sends has them).
            Interaction.channel != "webhook",
            before_cursor(Interaction.created_at, Interaction.id, before),
        )
        .order_by(Interaction.created_at.desc(), Interaction.id.desc())
        .limit(limit)
    )
    items = []
    for i in rows:
        arrow = "received" if i.direction == "in" else "sent"
        what = i.subject or (i.text or "")[:80]
        items.append(
            TimelineItem(
                i.created_at,
                i.id,
                "message",
                f"{i.channel} {arrow}: {what}".rstrip(": "),
                {
                    "channel": i.channel,
                    "direction": i.direction,
                    "status": i.status,
                    "subject": i.subject,
                    "text": i.text,
                    "send_id": i.send_id,
                    "conversation_id": i.conversation_id,
                    "provider": i.provider,
                },
            )
        )
    return items
