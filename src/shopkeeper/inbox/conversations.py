"""Conversations: every inbound message joins one (threading across channels), and what agents
do to them — reply, note, tag, assign, snooze, resolve, reopen.

Threading: an email answering one of ours joins that message's conversation (Message-ID /
In-Reply-To, found by the email channel); any other message joins the customer's latest
conversation that is not resolved, whatever the channel — a customer who wrote by email and
follows up by chat is one conversation — or reopens the latest one resolved less than
`reopen_within_days` ago; otherwise it starts a new one.

Everything here runs in the caller's transaction: an inbound message and its conversation (and
its triage task) commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopkeeper.auth.models import User, Workspace
from shopkeeper.channels.chat.service import literal
from shopkeeper.consent import holds
from shopkeeper.customers.service import canonical
from shopkeeper.db.scoping import by_key, get_scoped, scoped
from shopkeeper.errors import Conflict, Invalid, NotFound
from shopkeeper.ids import new_id
from shopkeeper.inbox import live, sla
from shopkeeper.inbox.models import PRIORITIES, Conversation, Team, TriageTask
from shopkeeper.inbox.settings import CONVERSATION_CHANNELS, InboxSettings
from shopkeeper.messaging import send_service
from shopkeeper.messaging.inbound import InboundMessage
from shopkeeper.messaging.models import Interaction, Send

MAX_NOTE = 10_000
MAX_TAGS = 50
OPEN_STATES = ("open", "pending", "snoozed")


def get(session: Session, workspace_id: str, conversation_id: str) -> Conversation:
    return get_scoped(session, Conversation, workspace_id, conversation_id, "conversation")


def preview(interaction: Interaction) -> str:
    """The text an agent (and the classifier) reads: for an email, the reply without the quote."""
    data = interaction.data or {}
    text = data.get("reply_text") or interaction.text or ""
    if not text and interaction.subject:
        text = interaction.subject
    return str(text)


def _latest(session: Session, workspace_id: str, customer_id: str) -> Conversation | None:
    return session.scalar(
        scoped(Conversation, workspace_id)
        .where(Conversation.customer_id == customer_id)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(1)
    )


def _new(
    session: Session, workspace_id: str, customer_id: str, channel: str, now: datetime, **extra: Any
) -> Conversation:
    values: dict[str, Any] = {
        "status": "open",
        "priority": "normal",
        "tags": [],
        "sla_breached": [],
        "data": {},
        "source": "message",
        **extra,
    }
    conversation = Conversation(
        id=new_id("cnv"),
        workspace_id=workspace_id,
        customer_id=customer_id,
        channel=channel,
        last_message_at=now,
        created_at=now,
        updated_at=now,
        **values,
    )
    session.add(conversation)
    return conversation


def _may_reopen(session: Session, resolved: Conversation, now: datetime) -> bool:
    """A resolved conversation is reopened by a message within the workspace's window."""
    if resolved.resolved_at is None:
        return False
    workspace = session.get(Workspace, resolved.workspace_id)
    settings = InboxSettings.of(workspace) if workspace is not None else InboxSettings()
    return now - resolved.resolved_at <= timedelta(days=settings.reopen_within_days)


def _record_message(
    session: Session, conversation: Conversation, interaction: Interaction, now: datetime, **extra: Any
) -> None:
    live.record(
        session,
        conversation,
        "message",
        "customer",
        now,
        {
            "interaction_id": interaction.id,
            "direction": "in",
            "channel": interaction.channel,
            "text": preview(interaction)[:500],
            **extra,
        },
    )


def _queue_triage(
    session: Session, conversation: Conversation, interaction: Interaction, route: bool, now: datetime
) -> None:
    """The message waits for the inbox worker (classify, and route when `route`)."""
    session.add(
        TriageTask(
            id=new_id("tri"),
            workspace_id=conversation.workspace_id,
            conversation_id=conversation.id,
            interaction_id=interaction.id,
            route=route,
            attempts=0,
            due_at=now,
            created_at=now,
        )
    )


def attach_inbound(session: Session, message: InboundMessage) -> Conversation | None:
    """Put an inbound message on its conversation and queue its triage. None for channels that
    are not conversations (a call record) or for a message already attached."""
    if message.channel not in CONVERSATION_CHANNELS:
        return None
    interaction = session.get(Interaction, message.interaction_id)
    if interaction is None:
        return None
    now = message.at
    auto_reply = bool((interaction.data or {}).get("auto_reply"))
    customer_id = canonical(session, message.workspace_id, message.customer_id).id

    conversation: Conversation | None = None
    if interaction.conversation_id:
        conversation = session.get(Conversation, interaction.conversation_id)
        if conversation is not None and conversation.workspace_id != message.workspace_id:
            conversation = None
    if conversation is None:
        latest = _latest(session, message.workspace_id, customer_id)
        if latest is not None and (latest.status != "resolved" or _may_reopen(session, latest, now)):
            conversation = latest
    created = conversation is None
    if conversation is None:
        if auto_reply:
            return None  # an out-of-office answer to a campaign opens no conversation
        conversation = _new(
            session, message.workspace_id, customer_id, message.channel, now, subject=(interaction.subject or None)
        )
        session.flush()
        live.record(session, conversation, "created", "customer", now, {"channel": message.channel})
    interaction.conversation_id = conversation.id
    _record_message(session, conversation, interaction, now, auto_reply=auto_reply or None)
    if auto_reply:
        return conversation

    reopened = not created and conversation.status != "open"
    if reopened:
        was = conversation.status
        conversation.status = "open"
        conversation.snoozed_until = None
        if was == "resolved":
            conversation.resolved_at = None
            conversation.first_response_at = None
            conversation.csat_sent_at = None
        live.record(session, conversation, "reopened", "customer", now, {"from": was})
    conversation.channel = message.channel
    conversation.last_inbound_at = conversation.last_message_at = conversation.updated_at = now
    if conversation.waiting_since is None:
        conversation.waiting_since = now
    if not created and conversation.status == "open" and not reopened:
        sla.customer_wrote(session, conversation, now)
    _queue_triage(session, conversation, interaction, created or reopened, now)
    return conversation


# -- agent actions ------------------------------------------------------------------------------
def active_user(session: Session, workspace_id: str, user_id: str, field: str) -> User:
    user = session.scalar(scoped(User, workspace_id).where(User.id == user_id))
    if user is None or user.disabled:
        raise NotFound(f"{field}: no active user {user_id!r} in this workspace", field=field)
    return user


def team_by_key(session: Session, workspace_id: str, key: str, field: str) -> Team:
    team = by_key(session, Team, workspace_id, key)
    if team is None:
        raise NotFound(f"{field}: no team {key!r}", field=field)
    return team


def _address_on(session: Session, conversation: Conversation, channel: str) -> Interaction | None:
    """The customer's latest message on `channel` in this conversation: where to answer."""
    return session.scalar(
        scoped(Interaction, conversation.workspace_id)
        .where(
            Interaction.conversation_id == conversation.id,
            Interaction.channel == channel,
            Interaction.direction == "in",
        )
        .order_by(Interaction.created_at.desc(), Interaction.id.desc())
        .limit(1)
    )


def outbound_content(channel: str, text: str, subject: str | None) -> dict[str, Any]:
    body = literal(text)
    if channel == "email":
        return {"email": {"subject": literal(subject or "Re: your message"), "text": body}}
    return {channel: {"text": body}}


def reply(
    session: Session,
    conversation: Conversation,
    *,
    text: str,
    actor: str,
    now: datetime,
    channel: str | None = None,
    subject: str | None = None,
    send_at: datetime | None = None,
    idempotency_key: str | None = None,
    source: str = "inbox",
    event_kind: str = "reply",
    template: str | None = None,
) -> Send:
    """Answer through the delivery pipeline (consent gate, retries, status history), on the
    customer's channel unless another is chosen; an email answer threads under their message.
    With `template`, the template's content for the channel is sent instead of `text`."""
    channel = channel or conversation.channel
    if channel not in CONVERSATION_CHANNELS:
        raise Invalid(f"channel: one of {', '.join(CONVERSATION_CHANNELS)}", field="channel")
    text = text.strip()
    if not text and template is None:
        raise Invalid("text: empty reply", field="text")
    last = _address_on(session, conversation, channel)
    data: dict[str, Any] = {"conversation_id": conversation.id}
    if last is not None and last.address:
        data["to"] = last.address
    if channel == "email":
        if last is not None and last.message_id:
            data["in_reply_to"] = last.message_id
        if subject is None:
            base = (last.subject if last is not None else None) or conversation.subject or "your message"
            subject = base if base.lower().startswith("re:") else f"Re: {base}"
    send, created = send_service.enqueue(
        session,
        conversation.workspace_id,
        customer_id=conversation.customer_id,
        channel=channel,
        now=now,
        content=None if template else outbound_content(channel, text, subject),
        template=template,
        data=data,
        kind=None if template else "transactional",
        idempotency_key=idempotency_key or f"inbox:{conversation.id}:{new_id('rep')}",
        send_at=send_at,
        source=source,
        source_ref=conversation.id,
    )
    if not created:
        return send  # the same request again (a retried POST): nothing more to record
    if source == "inbox":
        sla.agent_answered(conversation, now)
        conversation.waiting_since = None
        conversation.last_outbound_at = conversation.last_message_at = now
        if conversation.status == "snoozed":
            conversation.status = "open"
            conversation.snoozed_until = None
    conversation.updated_at = now
    live.record(
        session,
        conversation,
        event_kind,
        actor,
        now,
        {
            "send_id": send.id,
            "channel": channel,
            "text": text[:500],
            "send_at": send_at.isoformat() if send_at else None,
        },
    )
    return send


def note(session: Session, conversation: Conversation, text: str, actor: str, now: datetime) -> None:
    text = text.strip()
    if not text:
        raise Invalid("text: empty note", field="text")
    if len(text) > MAX_NOTE:
        raise Invalid(f"text: at most {MAX_NOTE} characters", field="text")
    conversation.updated_at = now
    live.record(session, conversation, "note", actor, now, {"text": text})


def retag(
    session: Session, conversation: Conversation, add: Sequence[str], remove: Sequence[str], actor: str, now: datetime
) -> None:
    for n, tag in enumerate([*add, *remove]):
        if not tag.strip() or len(tag) > 60:
            raise Invalid(f"tags[{n}]: 1 to 60 characters", field=f"tags[{n}]")
    tags = [t for t in conversation.tags or [] if t not in remove]
    tags += [t for t in dict.fromkeys(t.strip().lower() for t in add) if t not in tags]
    if len(tags) > MAX_TAGS:
        raise Invalid(f"tags: at most {MAX_TAGS} per conversation", field="tags")
    if tags != list(conversation.tags or []):
        conversation.tags = tags
        conversation.updated_at = now
        live.record(
            session, conversation, "tagged", actor, now, {"tags": tags, "added": list(add), "removed": list(remove)}
        )


def assign(
    session: Session,
    conversation: Conversation,
    *,
    assignee_id: str | None,
    team_key: str | None,
    actor: str,
    now: datetime,
    fields: set[str],
) -> None:
    """`fields` says which of assignee/team the caller gave (null unassigns)."""
    team: Team | None = None
    if "team" in fields:
        team = team_by_key(session, conversation.workspace_id, team_key, "team") if team_key else None
        conversation.team_id = team.id if team else None
    if "assignee_id" in fields:
        if assignee_id is not None:
            active_user(session, conversation.workspace_id, assignee_id, "assignee_id")
        conversation.assignee_id = assignee_id
    conversation.updated_at = now
    live.record(
        session,
        conversation,
        "assigned",
        actor,
        now,
        {"assignee_id": conversation.assignee_id, "team_id": conversation.team_id},
    )


def set_status(session: Session, conversation: Conversation, status: str, actor: str, now: datetime) -> None:
    """Open or pending (snooze and resolve have their own actions)."""
    if status not in ("open", "pending"):
        raise Invalid("status: open or pending (use snooze or resolve for the others)", field="status")
    if conversation.status == status:
        return
    was = conversation.status
    conversation.status = status
    conversation.snoozed_until = None
    if was == "resolved":
        conversation.resolved_at = None
        sla.start(conversation, sla.policy_for(session, conversation), now)
    conversation.updated_at = now
    live.record(session, conversation, "status", actor, now, {"from": was, "to": status})


def set_priority(session: Session, conversation: Conversation, priority: str, actor: str, now: datetime) -> None:
    if priority not in PRIORITIES:
        raise Invalid(f"priority: one of {', '.join(PRIORITIES)}", field="priority")
    if conversation.priority != priority:
        conversation.priority = priority
        conversation.updated_at = now
        live.record(session, conversation, "priority", actor, now, {"priority": priority})


def snooze(session: Session, conversation: Conversation, until: datetime, actor: str, now: datetime) -> None:
    if until <= now:
        raise Invalid("until: must be in the future", field="until")
    if conversation.status == "resolved":
        raise Conflict("the conversation is resolved; reopen it first", field="status")
    was = conversation.status
    conversation.status = "snoozed"
    conversation.snoozed_until = until
    conversation.updated_at = now
    live.record(session, conversation, "snoozed", actor, now, {"until": until.isoformat(), "from": was})


def wake_snoozed(session: Session, now: datetime, limit: int = 500) -> int:
    rows = session.scalars(
        select(Conversation)
        .where(Conversation.status == "snoozed", Conversation.snoozed_until <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    count = 0
    for conversation in rows:
        conversation.status = "open"
        conversation.snoozed_until = None
        conversation.updated_at = now
        live.record(session, conversation, "woke", "system", now, {})
        count += 1
    return count


def resolve(session: Session, conversation: Conversation, actor: str, now: datetime) -> bool:
    """False when it was resolved already. Lifts the marketing pause the conversation held."""
    if conversation.status == "resolved":
        return False
    was = conversation.status
    conversation.status = "resolved"
    conversation.resolved_at = conversation.updated_at = now
    conversation.snoozed_until = None
    conversation.waiting_since = None
    sla.recompute(conversation)
    lifted = holds.lift(session, conversation.workspace_id, conversation.id, now)
    live.record(session, conversation, "resolved", actor, now, {"from": was, "marketing_holds_lifted": lifted})
    return True


def open_counts(session: Session, workspace_id: str, user_ids: Sequence[str]) -> dict[str, int]:
    """Open (and pending) conversations per agent: for least-busy assignment and the agent list."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(Conversation.assignee_id, func.count())
        .where(
            Conversation.workspace_id == workspace_id,
            Conversation.assignee_id.in_(list(user_ids)),
            Conversation.status.in_(("open", "pending")),
        )
        .group_by(Conversation.assignee_id)
    )
    counts = {str(user_id): int(n) for user_id, n in rows}
    return {u: counts.get(u, 0) for u in user_ids}


def open_for_customer(
    session: Session,
    workspace_id: str,
    customer_id: str,
    *,
    channel: str,
    actor: str,
    now: datetime,
    subject: str | None = None,
    team_id: str | None = None,
    priority: str = "normal",
    tags: Sequence[str] = (),
    note_text: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> Conversation:
    """A conversation opened on our side (a journey handing a customer to an agent): it waits
    for an agent's first reply, with no customer message yet."""
    conversation = _new(
        session,
        workspace_id,
        customer_id,
        channel,
        now,
        source="agent",
        subject=subject,
        team_id=team_id,
        priority=priority,
        tags=sorted(set(tags)),
        data=dict(data or {}),
    )
    conversation.waiting_since = now
    session.flush()
    live.record(session, conversation, "created", actor, now, {"channel": channel, "subject": subject})
    if note_text:
        note(session, conversation, note_text, actor, now)
    return conversation


def create_for_review(
    session: Session,
    workspace_id: str,
    customer_id: str,
    interaction: Interaction,
    review: Mapping[str, Any],
    reply_channel: str,
    now: datetime,
) -> Conversation:
    """A public review becomes its own conversation tagged `review`, triaged like a message."""
    conversation = _new(
        session,
        workspace_id,
        customer_id,
        reply_channel,
        now,
        source="review",
        subject=interaction.subject,
        tags=["review"],
    )
    conversation.data = dict(review)
    conversation.last_inbound_at = now
    conversation.waiting_since = now
    session.flush()
    interaction.conversation_id = conversation.id
    live.record(session, conversation, "created", "customer", now, {"channel": interaction.channel, "review": True})
    _record_message(session, conversation, interaction, now)
    _queue_triage(session, conversation, interaction, True, now)
    return conversation
