"""One timeline per customer, newest first, gathered from every domain that has something to say.

Each source returns its own newest items before the cursor, already ordered; the timeline merges
them. Later domains (messages, consent, notes) add a source with `register_source` and the 360°
view shows them with no change here.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from shopkeeper.customers.models import IdentityConflict, Merge
from shopkeeper.events.models import Event


@dataclass(slots=True)
class TimelineItem:
    at: datetime
    id: str
    kind: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)


Before = tuple[datetime, str] | None
Source = Callable[[Session, str, Sequence[str], Before, int], list[TimelineItem]]
_sources: list[Source] = []


def register_source(source: Source) -> Source:
    _sources.append(source)
    return source


def before_cursor(at_col: Any, id_col: Any, before: Before) -> Any:
    if before is None:
        return True
    at, id_ = before
    return or_(at_col < at, and_(at_col == at, id_col < id_))


def describe_event(event: Event) -> str:
    if event.type == "track":
        return event.name or "track"
    if event.type in ("page", "screen"):
        url = (event.properties or {}).get("url") or (event.properties or {}).get("path")
        label = event.name or url or ""
        return f"Viewed {event.type} {label}".rstrip()
    if event.type == "identify":
        keys = ", ".join(sorted(event.traits or {})[:6])
        return f"Identified ({keys})" if keys else "Identified"
    if event.type == "group":
        return f"Joined group {event.group_id}"
    if event.type == "alias":
        return f"Aliased {event.previous_id} → {event.user_id}"
    return event.type


def event_data(event: Event) -> dict[str, Any]:
    return {
        "type": event.type,
        "name": event.name,
        "message_id": event.message_id,
        "user_id": event.user_id,
        "anonymous_id": event.anonymous_id,
        "timestamp": event.timestamp,
        "received_at": event.received_at,
        "properties": event.properties,
        "traits": event.traits,
        "context": event.context,
    }


@register_source
def _events(session: Session, ws: str, ids: Sequence[str], before: Before, limit: int) -> list[TimelineItem]:
    rows = session.scalars(
        select(Event)
        .where(Event.workspace_id == ws, Event.customer_id.in_(ids), before_cursor(Event.timestamp, Event.id, before))
        .order_by(Event.timestamp.desc(), Event.id.desc())
        .limit(limit)
    )
    return [TimelineItem(e.timestamp, e.id, "event", describe_event(e), event_data(e)) for e in rows]


@register_source
def _merges(session: Session, ws: str, ids: Sequence[str], before: Before, limit: int) -> list[TimelineItem]:
    rows = session.scalars(
        select(Merge).where(
            Merge.workspace_id == ws,
            or_(Merge.target_customer_id.in_(ids), Merge.source_customer_id.in_(ids)),
        )
    )
    items: list[TimelineItem] = []
    for m in rows:
        data = {
            "merge_id": m.id,
            "source_customer_id": m.source_customer_id,
            "target_customer_id": m.target_customer_id,
            "reason": m.reason,
            "trigger": m.trigger,
        }
        items.append(TimelineItem(m.created_at, m.id, "merge", f"Merged {m.source_customer_id} ({m.reason})", data))
        if m.undone_at is not None:
            items.append(
                TimelineItem(
                    m.undone_at, f"{m.id}~undo", "unmerge", f"Unmerged {m.source_customer_id} by {m.undone_by}", data
                )
            )
    keep = [i for i in items if before is None or (i.at, i.id) < before]
    keep.sort(key=lambda i: (i.at, i.id), reverse=True)
    return keep[:limit]


@register_source
def _conflicts(session: Session, ws: str, ids: Sequence[str], before: Before, limit: int) -> list[TimelineItem]:
    rows = session.scalars(
        select(IdentityConflict)
        .where(
            IdentityConflict.workspace_id == ws,
            or_(IdentityConflict.customer_id.in_(ids), IdentityConflict.other_customer_id.in_(ids)),
            before_cursor(IdentityConflict.created_at, IdentityConflict.id, before),
        )
        .order_by(IdentityConflict.created_at.desc(), IdentityConflict.id.desc())
        .limit(limit)
    )
    return [
        TimelineItem(
            c.created_at,
            c.id,
            "identity_conflict",
            f"Not merged with {c.other_customer_id if c.customer_id in ids else c.customer_id}: "
            f"different user ids share {c.kind} {c.value}",
            {
                "customer_id": c.customer_id,
                "other_customer_id": c.other_customer_id,
                "kind": c.kind,
                "value": c.value,
                "trigger": c.trigger,
            },
        )
        for c in rows
    ]


def timeline(
    session: Session, workspace_id: str, customer_ids: Sequence[str], before: Before, limit: int
) -> tuple[list[TimelineItem], bool]:
    """The newest `limit` items before the cursor, and whether more remain."""
    streams = [source(session, workspace_id, customer_ids, before, limit + 1) for source in _sources]
    merged = heapq.merge(*streams, key=lambda i: (i.at, i.id), reverse=True)
    items = []
    for item in merged:
        items.append(item)
        if len(items) > limit:
            break
    return items[:limit], len(items) > limit
