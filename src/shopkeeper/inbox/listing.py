"""Listing conversations for agents: the filters (status, channel, team, assignee, intent,
sentiment, priority, SLA state, tag, customer), newest activity first, in keyset pages; and the
last words of each, for a list row. The API and the web inbox both list through here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shopkeeper.db.scoping import scoped
from shopkeeper.errors import Invalid
from shopkeeper.inbox import conversations, sla
from shopkeeper.inbox.models import PRIORITIES, STATUSES, Conversation, ConversationEvent
from shopkeeper.pagination import MAX_LIMIT, decode_time_cursor, encode_cursor


@dataclass(frozen=True, slots=True)
class Filters:
    status: Sequence[str] = ()
    channel: str | None = None
    team: str | None = None  # a team key
    assignee_id: str | None = None  # a user id, or "none" for unassigned
    intent: str | None = None
    sentiment: str | None = None
    priority: str | None = None
    sla_state: str | None = None
    tag: str | None = None
    customer_id: str | None = None

    def check(self) -> None:
        for value in self.status:
            if value not in STATUSES:
                raise Invalid(f"status: one of {', '.join(STATUSES)}", field="status")
        if self.sla_state is not None and self.sla_state not in sla.STATES:
            raise Invalid(f"sla_state: one of {', '.join(sla.STATES)}", field="sla_state")
        if self.priority is not None and self.priority not in PRIORITIES:
            raise Invalid(f"priority: one of {', '.join(PRIORITIES)}", field="priority")


def page(
    session: Session, workspace_id: str, filters: Filters, *, cursor: str | None, limit: int, now: datetime
) -> tuple[list[Conversation], str | None]:
    """One page of conversations and the cursor of the next (None on the last)."""
    filters.check()
    query = scoped(Conversation, workspace_id)
    if filters.status:
        query = query.where(Conversation.status.in_(list(filters.status)))
    if filters.channel:
        query = query.where(Conversation.channel == filters.channel)
    if filters.team:
        query = query.where(
            Conversation.team_id == conversations.team_by_key(session, workspace_id, filters.team, "team").id
        )
    if filters.assignee_id == "none":
        query = query.where(Conversation.assignee_id.is_(None))
    elif filters.assignee_id:
        query = query.where(Conversation.assignee_id == filters.assignee_id)
    if filters.intent:
        query = query.where(Conversation.intent == filters.intent)
    if filters.sentiment:
        query = query.where(Conversation.sentiment == filters.sentiment)
    if filters.priority:
        query = query.where(Conversation.priority == filters.priority)
    if filters.customer_id:
        query = query.where(Conversation.customer_id == filters.customer_id)
    if filters.sla_state == "breached":
        query = query.where(Conversation.status != "resolved", Conversation.sla_breached != [])
    elif filters.sla_state == "due_soon":
        query = query.where(Conversation.next_due_at <= now + sla.DUE_SOON, Conversation.next_due_at > now)
    elif filters.sla_state == "ok":
        query = query.where(Conversation.next_due_at > now + sla.DUE_SOON)
    elif filters.sla_state == "none":
        query = query.where(Conversation.next_due_at.is_(None))
    if cursor:
        at, id_ = decode_time_cursor(cursor)
        query = query.where(
            or_(Conversation.last_message_at < at, (Conversation.last_message_at == at) & (Conversation.id < id_))
        )
    query = query.order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
    # Tags live in a JSON list: filtered here, on a page fetched generously.
    rows = list(session.scalars(query.limit(limit + 1 if not filters.tag else MAX_LIMIT * 4)))
    if filters.tag:
        rows = [r for r in rows if filters.tag in (r.tags or [])][: limit + 1]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].last_message_at, rows[-1].id) if more and rows else None
    return rows, next_cursor


def last_words(session: Session, workspace_id: str, conversation_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The latest message or reply of each conversation (its event: written with the message,
    before any delivery), as `{"kind", "text", "channel", "at"}`."""
    if not conversation_ids:
        return {}
    ranked = (
        select(
            ConversationEvent.conversation_id,
            ConversationEvent.kind,
            ConversationEvent.data,
            ConversationEvent.created_at,
            func.row_number()
            .over(partition_by=ConversationEvent.conversation_id, order_by=ConversationEvent.seq.desc())
            .label("n"),
        )
        .where(
            ConversationEvent.workspace_id == workspace_id,
            ConversationEvent.conversation_id.in_(list(conversation_ids)),
            ConversationEvent.kind.in_(("message", "reply", "auto_reply")),
        )
        .subquery()
    )
    found: dict[str, dict[str, Any]] = {}
    for conversation_id, kind, data, at in session.execute(
        select(ranked.c.conversation_id, ranked.c.kind, ranked.c.data, ranked.c.created_at).where(ranked.c.n == 1)
    ):
        data = data or {}
        found[conversation_id] = {
            "kind": kind,
            "text": str(data.get("text") or ""),
            "channel": data.get("channel"),
            "at": at,
        }
    return found
