"""A send's status: only forward along engagement, every change (and every open and click) kept
in its history with the time and the reason."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shopkeeper.ids import new_id
from shopkeeper.messaging.models import ENGAGEMENT_ORDER, Interaction, Send, SendEvent

# Told (session, send, previous status, time, reason) after each status move, in the transaction
# that made it, so what they write (an outbound webhook's send) commits with it or not at all.
StatusListener = Callable[[Session, Send, str, datetime, str | None], None]
_listeners: list[StatusListener] = []


def on_status_change(listener: StatusListener) -> StatusListener:
    _listeners.append(listener)
    return listener


def moves_forward(current: str, new: str) -> bool:
    if new == current:
        return False
    if new in ENGAGEMENT_ORDER:
        if current == "queued":
            return True
        return current in ENGAGEMENT_ORDER and ENGAGEMENT_ORDER[new] > ENGAGEMENT_ORDER[current]
    if new == "bounced":
        return current in ENGAGEMENT_ORDER
    if new == "complained":
        return current in ENGAGEMENT_ORDER or current == "bounced"
    if new == "failed":
        # The pipeline's own outcome, or a provider reporting later that it could not deliver.
        return current in ("queued", "sent")
    return current == "queued"  # suppressed, skipped: outcomes of the pipeline itself


def history(session: Session, send: Send, status: str, at: datetime, reason: str | None, **data: Any) -> None:
    session.add(
        SendEvent(
            id=new_id("sev"),
            workspace_id=send.workspace_id,
            send_id=send.id,
            status=status,
            reason=reason,
            data=data,
            at=at,
        )
    )


def record(
    session: Session,
    send: Send,
    status: str,
    at: datetime,
    reason: str | None = None,
    *,
    interaction: Mapping[str, Any] | None = None,
    **data: Any,
) -> bool:
    """Append the event; move the status if `status` is further along. True when it moved.
    `interaction`: more columns for the send's interaction row, written in the same UPDATE."""
    history(session, send, status, at, reason, **data)
    if not moves_forward(send.status, status):
        if interaction and send.interaction_id is not None:
            session.execute(
                update(Interaction)
                .where(Interaction.workspace_id == send.workspace_id, Interaction.id == send.interaction_id)
                .values(**interaction)
            )
        return False
    previous = send.status
    send.status = status
    send.reason = reason
    send.updated_at = at
    if send.interaction_id is not None:
        session.execute(
            update(Interaction)
            .where(Interaction.workspace_id == send.workspace_id, Interaction.id == send.interaction_id)
            .values(status=status, **(interaction or {}))
        )
    for listener in _listeners:
        listener(session, send, previous, at, reason)
    return True


def find_by_provider_id(session: Session, provider_message_id: str, workspace_id: str | None = None) -> Send | None:
    query = select(Send).where(Send.provider_message_id == provider_message_id)
    if workspace_id is not None:
        query = query.where(Send.workspace_id == workspace_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # against a worker's finish() recording "sent" meanwhile
    return session.scalars(query.limit(1)).first()
