"""Consent changes on the customer's timeline (opt-ins, opt-outs, who and through which door)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.consent.models import ConsentEvent
from shopkeeper.customers.timeline import Before, TimelineItem, before_cursor, register_source


@register_source
def consent_changes(session: Session, ws: str, ids: Sequence[str], before: Before, limit: int) -> list[TimelineItem]:
    rows = session.scalars(
        select(ConsentEvent)
        .where(
            ConsentEvent.workspace_id == ws,
            ConsentEvent.customer_id.in_(ids),
            before_cursor(ConsentEvent.created_at, ConsentEvent.id, before),
        )
        .order_by(ConsentEvent.created_at.desc(), ConsentEvent.id.desc())
        .limit(limit)
    )
    items = []
    for e in rows:
        scope = "all messages" if e.topic == "*" else e.topic
        summary = f"{e.status.replace('_', ' ')} for {scope} on {e.channel} (via {e.source})"
        data = {
            "channel": e.channel,
            "topic": e.topic,
            "status": e.status,
            "previous_status": e.previous_status,
            "source": e.source,
            "lawful_basis": e.lawful_basis,
            "wording": e.wording,
            "actor": e.actor,
        }
        items.append(TimelineItem(e.created_at, e.id, "consent", summary, data))
    return items
