"""What the inbox pages show, gathered from the inbox and customer services: list rows, a thread
(messages both ways, notes, events) in time order, and the compact 360° profile beside it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopkeeper.auth.models import User
from shopkeeper.customers import service as customers
from shopkeeper.customers.api import customer_view
from shopkeeper.customers.models import Customer, Identity
from shopkeeper.customers.schemas import IdentityOut
from shopkeeper.db.scoping import scoped
from shopkeeper.errors import NotFound
from shopkeeper.inbox import conversations, listing, sla
from shopkeeper.inbox.models import CannedReply, Conversation, ConversationEvent, Team
from shopkeeper.messaging.models import Interaction
from shopkeeper.segments.scores.store import AMOUNT_PROPERTY, PURCHASE_EVENT
from shopkeeper.web.render import when

IDENTITY_ORDER = ("email", "phone", "user_id", "anonymous_id")


@dataclass(slots=True)
class Directory:
    """The workspace's people and teams, for names on the page and the assignment pickers."""

    users: dict[str, User]
    teams: dict[str, Team]  # by id

    @classmethod
    def of(cls, session: Session, workspace_id: str) -> Directory:
        users = {u.id: u for u in session.scalars(scoped(User, workspace_id).order_by(User.name, User.email))}
        teams = {t.id: t for t in session.scalars(scoped(Team, workspace_id).order_by(Team.name))}
        return cls(users, teams)

    def user_name(self, user_id: str | None) -> str:
        if user_id is None:
            return "nobody"
        user = self.users.get(user_id)
        return (user.name or user.email) if user is not None else "a former user"

    def team_name(self, team_id: str | None) -> str | None:
        team = self.teams.get(team_id) if team_id else None
        return team.name if team is not None else None

    def agents(self) -> list[User]:
        """Who a conversation can be given to: active users who may answer."""
        return [u for u in self.users.values() if not u.disabled and u.role != "viewer"]

    def actor(self, actor: str, customer: str) -> str:
        if actor.startswith("user:"):
            return self.user_name(actor[5:])
        if actor == "customer":
            return customer
        if actor.startswith("key:"):
            return "an API key"
        return "Shopkeeper"


def display_name(customer: Customer | None, identities: Sequence[Identity | IdentityOut]) -> str:
    """A person's name for an agent: their name if known, else an address, else the visitor id."""
    traits = (customer.traits or {}) if customer is not None else {}
    name = traits.get("name") or " ".join(
        str(traits[k]) for k in ("first_name", "last_name") if isinstance(traits.get(k), str) and traits[k]
    )
    if isinstance(name, str) and name.strip():
        return name.strip()
    by_kind = {i.kind: i.value for i in identities}
    for kind in ("email", "phone", "user_id"):
        if kind in by_kind:
            return by_kind[kind]
    anonymous = by_kind.get("anonymous_id")
    return f"Visitor {anonymous[:12]}" if anonymous else "Unknown customer"


def customer_names(session: Session, workspace_id: str, customer_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    people = {c.id: c for c in session.scalars(scoped(Customer, workspace_id).where(Customer.id.in_(ids)))}
    identities = customers.identities_of(session, workspace_id, ids)
    return {i: display_name(people.get(i), identities.get(i, [])) for i in ids}


@dataclass(slots=True)
class Row:
    conversation: Conversation
    customer: str
    preview: str
    preview_out: bool
    sla_state: str
    assignee: str | None
    team: str | None


def rows(
    session: Session, workspace_id: str, found: Sequence[Conversation], directory: Directory, now: datetime
) -> list[Row]:
    names = customer_names(session, workspace_id, [c.customer_id for c in found])
    words = listing.last_words(session, workspace_id, [c.id for c in found])
    out = []
    for c in found:
        last = words.get(c.id, {})
        out.append(
            Row(
                conversation=c,
                customer=names.get(c.customer_id, "Unknown customer"),
                preview=" ".join(str(last.get("text") or c.subject or "").split())[:160],
                preview_out=last.get("kind") in ("reply", "auto_reply"),
                sla_state=sla.state(c, now),
                assignee=directory.user_name(c.assignee_id) if c.assignee_id else None,
                team=directory.team_name(c.team_id),
            )
        )
    return out


# -- the thread ---------------------------------------------------------------------------------
@dataclass(slots=True)
class Item:
    """One line of a thread: `in` (the customer), `out` (us), `note` (agents only) or `event`."""

    kind: str
    at: datetime
    author: str
    text: str = ""
    channel: str | None = None
    subject: str | None = None
    status: str | None = None
    warn: bool = False
    seq: int = 0
    rank: int = 0  # among lines of the same instant: the start, then messages, then what followed


def _describe(event: ConversationEvent, directory: Directory, customer: str) -> tuple[str, bool]:
    d = event.data or {}
    by = directory.actor(event.actor, customer)
    kind = event.kind
    if kind == "created":
        return f"Conversation started on {d.get('channel', 'a channel')}", False
    if kind == "classified":
        confidence = d.get("intent_confidence")
        sure = f" ({round(float(confidence) * 100)}%)" if isinstance(confidence, (int, float)) else ""
        intent = str(d.get("intent") or "?").replace("_", " ")
        return f"Classified: {intent}{sure}, {d.get('sentiment')} sentiment", False
    if kind == "routed":
        parts = []
        if d.get("team_id"):
            parts.append(f"team {directory.team_name(d['team_id']) or d['team_id']}")
        if d.get("assignee_id"):
            parts.append(f"assigned to {directory.user_name(d['assignee_id'])}")
        if d.get("priority"):
            parts.append(f"priority {d['priority']}")
        return "Routed" + (": " + ", ".join(parts) if parts else ""), False
    if kind == "assigned":
        who = directory.user_name(d.get("assignee_id"))
        team = directory.team_name(d.get("team_id"))
        return f"Assigned to {who}" + (f" (team {team})" if team else "") + f" by {by}", False
    if kind == "tagged":
        tags = ", ".join(d.get("tags") or []) or "none"
        return f"Tags now {tags} (by {by})", False
    if kind == "status":
        return f"Marked {d.get('to')} by {by}", False
    if kind == "priority":
        return f"Priority set to {d.get('priority')} by {by}", False
    if kind == "snoozed":
        return f"Snoozed until {_iso_when(d.get('until'))} by {by}", False
    if kind == "woke":
        return "Back from snooze", False
    if kind == "resolved":
        return f"Resolved by {by}", False
    if kind == "reopened":
        reason = f" ({d['reason']})" if d.get("reason") else ""
        return f"Reopened by {by}{reason}", False
    if kind == "sla_breached":
        return f"SLA breached: {str(d.get('clock', '')).replace('_', ' ')} was due {_iso_when(d.get('due_at'))}", True
    if kind == "csat":
        comment = f" — “{d['comment']}”" if d.get("comment") else ""
        return f"CSAT answer: {d.get('score')} of 5{comment}", (d.get("score") or 5) <= 2
    if kind == "marketing_paused":
        return f"Marketing paused for this customer ({str(d.get('reason', '')).replace('_', ' ')})", True
    if kind == "auto_reply_failed":
        return f"Automatic acknowledgement not sent: {d.get('reason')}", True
    return kind.replace("_", " ").capitalize(), False


def _iso_when(value: Any) -> str:
    if isinstance(value, str):
        try:
            return when(datetime.fromisoformat(value))
        except ValueError:
            return value
    return "—"


def thread(session: Session, conversation: Conversation, directory: Directory, customer: str) -> tuple[list[Item], int]:
    """The thread in time order, and the newest event's seq."""
    ws = conversation.workspace_id
    messages = list(
        session.scalars(
            scoped(Interaction, ws)
            .where(Interaction.conversation_id == conversation.id)
            .order_by(Interaction.created_at, Interaction.id)
        )
    )
    events = list(
        session.scalars(
            scoped(ConversationEvent, ws)
            .where(ConversationEvent.conversation_id == conversation.id)
            .order_by(ConversationEvent.seq)
        )
    )
    delivered = {m.send_id for m in messages if m.send_id}
    sent_by = {str(e.data.get("send_id")): e for e in events if e.data and e.data.get("send_id")}
    items: list[Item] = []
    for m in messages:
        if m.direction == "in":
            text = conversations.preview(m)
            items.append(Item("in", m.created_at, customer, text, m.channel, m.subject, m.status, rank=1))
        else:
            event = sent_by.get(m.send_id or "")
            author = directory.actor(event.actor, customer) if event is not None else "Shopkeeper"
            if event is not None and event.kind == "auto_reply":
                author = "Automatic answer"
            items.append(Item("out", m.created_at, author, m.text or "", m.channel, m.subject, m.status, rank=2))
    for e in events:
        d = e.data or {}
        if e.kind == "message":
            continue
        if e.kind in ("reply", "auto_reply", "csat_sent"):
            if d.get("send_id") in delivered:
                continue
            status = "scheduled " + _iso_when(d["send_at"]) if d.get("send_at") else "queued"
            author = "Automatic answer" if e.kind == "auto_reply" else directory.actor(e.actor, customer)
            text = str(d.get("text") or ("CSAT survey" if e.kind == "csat_sent" else ""))
            items.append(Item("out", e.created_at, author, text, d.get("channel"), None, status, seq=e.seq, rank=2))
        elif e.kind == "note":
            by = directory.actor(e.actor, customer)
            items.append(Item("note", e.created_at, by, str(d.get("text", "")), seq=e.seq, rank=3))
        else:
            text, warn = _describe(e, directory, customer)
            by = directory.actor(e.actor, customer)
            rank = 0 if e.kind == "created" else 4
            items.append(Item("event", e.created_at, by, text, warn=warn, seq=e.seq, rank=rank))
    items.sort(key=lambda i: (i.at, i.rank, i.seq))
    return items, max((e.seq for e in events), default=0)


# -- the customer beside it ---------------------------------------------------------------------
@dataclass(slots=True)
class Profile:
    id: str
    name: str
    identities: list[tuple[str, str]]
    traits: list[tuple[str, Any]]
    subscriptions: list[dict[str, Any]]
    preferred_channel: str | None
    contacts_last_7_days: int | None
    segments: list[dict[str, Any]]
    scores: list[tuple[str, Any, Any]]
    orders: list[dict[str, Any]]
    recent: list[dict[str, Any]]
    other_conversations: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)


SHOWN_TRAITS = ("plan", "tier", "city", "country", "company", "locale")


def profile(session: Session, workspace_id: str, conversation: Conversation) -> Profile | None:
    """The 360° view in brief (None when the customer has been erased)."""
    try:
        view = customer_view(session, workspace_id, conversation.customer_id, 8)
    except NotFound:
        return None
    person = session.get(Customer, view.id)
    idents = sorted(
        ((i.kind, i.value) for i in view.identities),
        key=lambda kv: (IDENTITY_ORDER.index(kv[0]) if kv[0] in IDENTITY_ORDER else 9, kv[1]),
    )
    consent = view.sections.get("consent") or {}
    understanding = view.sections.get("segments") or {}
    others = (view.sections.get("conversations") or {}).get("recent", [])
    ids = [view.id, *view.merged_ids]
    orders = []
    for event in customers.list_events(
        session, workspace_id, ids, type_="track", name=PURCHASE_EVENT, before=None, limit=5
    ):
        props = event.properties or {}
        orders.append(
            {
                "at": event.timestamp,
                "order_id": props.get("order_id"),
                "total": props.get(AMOUNT_PROPERTY, props.get("revenue")),
                "currency": props.get("currency") or "",
                "products": len(props.get("products") or []),
            }
        )
    return Profile(
        id=view.id,
        name=display_name(person, view.identities),
        identities=idents,
        traits=[(k, view.traits[k]) for k in SHOWN_TRAITS if k in view.traits],
        subscriptions=list(consent.get("subscriptions") or []),
        preferred_channel=(consent.get("preference") or {}).get("preferred_channel"),
        contacts_last_7_days=consent.get("contacts_last_7_days"),
        segments=list(understanding.get("memberships") or []),
        scores=[
            (name, score.get("label"), score.get("value"))
            for name, score in (understanding.get("scores") or {}).items()
        ],
        orders=orders,
        recent=[{"at": i.at, "kind": i.kind, "summary": i.summary} for i in view.timeline.data],
        other_conversations=[c for c in others if c.get("id") != conversation.id][:5],
        stats=view.stats.model_dump(),
    )


def canned_replies(session: Session, workspace_id: str) -> list[CannedReply]:
    return list(session.scalars(scoped(CannedReply, workspace_id).order_by(CannedReply.name)))


def newest_seq(session: Session, workspace_id: str) -> int:
    return int(
        session.scalar(select(func.max(ConversationEvent.seq)).where(ConversationEvent.workspace_id == workspace_id))
        or 0
    )
