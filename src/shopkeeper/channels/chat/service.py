"""Chat messages as interactions: a visitor's message stored (and acknowledged only once it is
committed), the history a reconnecting widget replays, read receipts as send statuses, and the
inbox's hooks (`messaging.inbound.on_inbound`) told of every inbound chat message."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shopkeeper.channels.chat.visitors import Visitor
from shopkeeper.customers.service import profile_ids
from shopkeeper.errors import Invalid
from shopkeeper.messaging import inbound, send_service
from shopkeeper.messaging.models import Interaction, Send
from shopkeeper.messaging.status import record

MAX_TEXT = 4000
HISTORY_LIMIT = 50
# The pipeline writes an outbound interaction only once the send passed the consent gate and is
# about to be handed off; it is shown unless the send then failed.
HIDDEN_OUT = ("failed", "skipped", "suppressed")
RECEIPTS = ("delivered", "opened")


def check_text(text: object) -> str:
    if not isinstance(text, str):
        raise Invalid("text: must be a string", field="text")
    text = text.strip()
    if not text:
        raise Invalid("text: empty message", field="text")
    if len(text) > MAX_TEXT:
        raise Invalid(f"text: at most {MAX_TEXT} characters", field="text")
    if "\x00" in text:
        raise Invalid("text: contains a NUL character", field="text")
    return text


def literal(text: str) -> str:
    """Typed text goes out as typed: content is Liquid, so braces are kept from rendering."""
    if "{{" not in text and "{%" not in text:
        return text
    if "endraw" in text:
        raise Invalid("text: cannot contain 'endraw' together with Liquid braces", field="text")
    return "{% raw %}" + text + "{% endraw %}"


def message_json(interaction: Interaction) -> dict[str, Any]:
    """What the widget is sent for one message (never the customer id or provider details)."""
    return {
        "id": interaction.id,
        "direction": interaction.direction,
        "text": interaction.text or "",
        "created_at": interaction.created_at.isoformat(),
        "status": interaction.status,
    }


def store_inbound(
    session: Session,
    visitor: Visitor,
    customer_id: str,
    text: str,
    now: datetime,
    *,
    client_id: str | None = None,
    page_url: str | None = None,
    user_agent: str | None = None,
) -> tuple[Interaction, bool]:
    """The visitor's message as an inbound interaction, announced to the inbox's listeners
    (`messaging.inbound.on_inbound`) in this transaction: (row, created). A `client_id` sent
    before (the widget retrying after a lost acknowledgement) returns the stored row instead."""
    text = check_text(text)
    message_id = None
    if client_id is not None:
        if not isinstance(client_id, str) or not 0 < len(client_id) <= 100 or "\x00" in client_id:
            raise Invalid("client_id: 1 to 100 characters", field="client_id")
        message_id = f"chat:{client_id}"
    data: dict[str, Any] = {"verified": visitor.verified}
    if page_url:
        data["page_url"] = str(page_url)[:2000]
    if user_agent:
        data["user_agent"] = user_agent[:300]
    stored = inbound.receive(
        session,
        visitor.workspace_id,
        channel="chat",
        kind="user_id" if visitor.verified else "anonymous_id",
        address=visitor.address,
        text=text,
        now=now,
        provider="websocket",
        provider_message_id=message_id,
        data=data,
        customer_id=customer_id,
    )
    if stored is not None:
        interaction = session.get(Interaction, stored.interaction_id)
        assert interaction is not None
        return interaction, True
    existing = inbound.already_received(session, visitor.workspace_id, "chat", message_id)
    _, ids = profile_ids(session, visitor.workspace_id, customer_id)
    if existing is None or existing.customer_id not in ids:
        raise Invalid("client_id: already used; send a new one", field="client_id")
    return existing, False


def _visible() -> Any:
    return or_(Interaction.direction == "in", Interaction.status.not_in(HIDDEN_OUT))


def history(session: Session, workspace_id: str, customer_id: str, limit: int = HISTORY_LIMIT) -> list[Interaction]:
    """The latest chat messages of the customer's profile, oldest first."""
    _, ids = profile_ids(session, workspace_id, customer_id)
    rows = session.scalars(
        select(Interaction)
        .where(
            Interaction.workspace_id == workspace_id,
            Interaction.customer_id.in_(ids),
            Interaction.channel == "chat",
            _visible(),
        )
        .order_by(Interaction.created_at.desc(), Interaction.id.desc())
        .limit(limit)
    ).all()
    return list(reversed(rows))


def recent(session: Session, workspace_id: str, customer_ids: Sequence[str], since: datetime) -> list[Interaction]:
    """Chat messages of these customers since a time (what the relay's poll looks for)."""
    if not customer_ids:
        return []
    return list(
        session.scalars(
            select(Interaction)
            .where(
                Interaction.workspace_id == workspace_id,
                Interaction.customer_id.in_(customer_ids),
                Interaction.channel == "chat",
                Interaction.created_at >= since,
                _visible(),
            )
            .order_by(Interaction.created_at, Interaction.id)
        )
    )


def interaction_for(session: Session, workspace_id: str, interaction_id: str) -> Interaction | None:
    return session.scalar(
        select(Interaction).where(
            Interaction.workspace_id == workspace_id,
            Interaction.id == interaction_id,
            Interaction.channel == "chat",
        )
    )


def receipt(
    session: Session, workspace_id: str, customer_id: str, interaction_ids: Sequence[str], status: str, now: datetime
) -> int:
    """The widget showed (delivered) or the visitor saw (opened) these outbound messages: the
    sends' statuses move forward. Ids of other customers' messages are ignored."""
    if status not in RECEIPTS:
        raise Invalid(f"type: one of {', '.join(RECEIPTS)}", field="type")
    wanted = [i for i in interaction_ids if isinstance(i, str)][:100]
    if not wanted:
        return 0
    _, ids = profile_ids(session, workspace_id, customer_id)
    sends = session.scalars(
        select(Send)
        .join(Interaction, Interaction.send_id == Send.id)
        .where(
            Interaction.workspace_id == workspace_id,
            Interaction.id.in_(wanted),
            Interaction.customer_id.in_(ids),
            Interaction.channel == "chat",
            Interaction.direction == "out",
            Send.workspace_id == workspace_id,
        )
    ).all()
    moved = 0
    for send in sends:
        if status == "opened" and send.status in ("sent", "queued"):
            record(session, send, "delivered", now, "shown by the chat widget")
        moved += record(session, send, status, now, "read in the chat widget" if status == "opened" else None)
    return moved


def send_chat(
    session: Session,
    workspace_id: str,
    customer_id: str,
    text: str,
    now: datetime,
    *,
    source: str = "inbox",
    source_ref: str | None = None,
    idempotency_key: str | None = None,
    conversation_id: str | None = None,
    expires_in: timedelta | None = None,
) -> Send:
    """An agent's (or a rule's) chat reply: a transactional send with inline content, delivered
    by the worker through the chat provider to the visitor's open sockets (or replayed later)."""
    data: dict[str, Any] = {"conversation_id": conversation_id} if conversation_id else {}
    send, _ = send_service.enqueue(
        session,
        workspace_id,
        customer_id=customer_id,
        channel="chat",
        now=now,
        content={"chat": {"text": literal(check_text(text))}},
        data=data,
        kind="transactional",
        idempotency_key=idempotency_key,
        expires_at=now + expires_in if expires_in else None,
        source=source,
        source_ref=source_ref,
    )
    return send
