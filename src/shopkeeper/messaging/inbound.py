"""Inbound messages from any channel: find (or create) the customer by the sender's identifier,
keep the message as an inbound interaction, and tell whoever listens (the inbox).

Webhooks deliver at least once, so a message already stored (same channel and provider message
id) is recognised and not stored or announced again. Listeners registered with `on_inbound` run
inside the caller's transaction with its session, after the interaction is written, so that they
can write their own rows (a conversation, a routing job) in the same unit of work: both commit,
or neither. They must not do network I/O; an exception raised by one undoes the message, and the
webhook answers with an error so that the provider tries again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.customers.resolution import ResolutionUnit
from shopkeeper.ids import new_id
from shopkeeper.messaging.models import Interaction


@dataclass(frozen=True, slots=True)
class InboundMessage:
    workspace_id: str
    customer_id: str
    interaction_id: str
    channel: str
    address: str  # the sender's identifier on the channel (E.164 phone, PSID, chat id)
    text: str | None
    provider: str | None
    provider_message_id: str | None
    customer_created: bool
    at: datetime
    data: Mapping[str, Any]


InboundCallback = Callable[[Session, InboundMessage], None]
_callbacks: list[InboundCallback] = []
_lock = threading.Lock()


def on_inbound(callback: InboundCallback) -> Callable[[], None]:
    """Call `callback(session, message)` for every new inbound message; returns the remover."""
    with _lock:
        _callbacks.append(callback)

    def remove() -> None:
        with _lock:
            if callback in _callbacks:
                _callbacks.remove(callback)

    return remove


def resolve_sender(
    session: Session,
    workspace_id: str,
    kind: str,
    value: str,
    now: datetime,
    *,
    trigger: str,
    traits: Mapping[str, Any] | None = None,
) -> tuple[str, bool]:
    """The customer holding the (already normalised) identifier, created when nobody does;
    `traits` are given only to a profile created here. Returns (customer id, created)."""
    # No shared cache: one identifier per message, and the ingest writer's cache must not learn
    # of a profile from a transaction that might still roll back.
    unit = ResolutionUnit(session, workspace_id, IdentityCache(0), now)
    key = (kind, value)
    unit.lock([key])  # PostgreSQL: the same per-identifier lock ingestion takes
    unit.prefetch([key])
    created = not unit.knows(key)
    customer_id = unit.resolve([key], None, trigger[:200])
    if created and traits:
        unit.patch_traits(customer_id, dict(traits))
    unit.flush()
    return customer_id, created


def already_received(
    session: Session, workspace_id: str, channel: str, provider_message_id: str | None
) -> Interaction | None:
    """The inbound interaction a repeated webhook delivery already stored, if any. Inbound rows
    keep the provider's message id as their `message_id` too, so this uses that index."""
    if not provider_message_id:
        return None
    return session.scalars(
        select(Interaction).where(
            Interaction.workspace_id == workspace_id,
            Interaction.message_id == provider_message_id,
            Interaction.channel == channel,
            Interaction.direction == "in",
        )
    ).first()


def receive(
    session: Session,
    workspace_id: str,
    *,
    channel: str,
    kind: str,
    address: str,
    text: str | None,
    now: datetime,
    provider: str | None = None,
    provider_message_id: str | None = None,
    data: Mapping[str, Any] | None = None,
    traits: Mapping[str, Any] | None = None,
    customer_id: str | None = None,
    customer_created: bool = False,
    notify: bool = True,
) -> InboundMessage | None:
    """Store one inbound message and announce it (unless `notify` is off: a keyword such as STOP
    is recorded on the timeline but is no conversation). None when it was stored before.
    `customer_id` (and `customer_created`) skip resolution when the caller has resolved the
    sender already."""
    if already_received(session, workspace_id, channel, provider_message_id) is not None:
        return None
    created = customer_created
    if customer_id is None:
        customer_id, created = resolve_sender(
            session,
            workspace_id,
            kind,
            address,
            now,
            trigger=f"inbound {channel} {provider_message_id or ''}".strip(),
            traits=traits,
        )
    interaction = Interaction(
        id=new_id("int"),
        workspace_id=workspace_id,
        customer_id=customer_id,
        channel=channel,
        direction="in",
        status="received",
        provider=provider,
        provider_message_id=provider_message_id,
        message_id=provider_message_id,
        address=address,
        text=text,
        data=dict(data or {}),
        created_at=now,
    )
    session.add(interaction)
    session.flush()
    message = InboundMessage(
        workspace_id=workspace_id,
        customer_id=customer_id,
        interaction_id=interaction.id,
        channel=channel,
        address=address,
        text=text,
        provider=provider,
        provider_message_id=provider_message_id,
        customer_created=created,
        at=now,
        data=interaction.data,
    )
    if notify:
        announce(session, message)
    return message


def announce(session: Session, message: InboundMessage) -> None:
    """Tell every listener of an inbound message stored in this transaction (channels that
    store their own rows, such as email with its threading, call this themselves)."""
    with _lock:
        listeners = list(_callbacks)
    for callback in listeners:
        callback(session, message)


def record_reply(
    session: Session,
    workspace_id: str,
    *,
    customer_id: str,
    channel: str,
    address: str,
    text: str,
    now: datetime,
    provider: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> Interaction:
    """An automatic answer given in the webhook's own response (an SMS keyword reply): it crossed
    to the customer, so it belongs on the timeline, but it never went through the outbox."""
    interaction = Interaction(
        id=new_id("int"),
        workspace_id=workspace_id,
        customer_id=customer_id,
        channel=channel,
        direction="out",
        status="sent",
        provider=provider,
        address=address,
        text=text,
        data=dict(data or {}),
        created_at=now,
    )
    session.add(interaction)
    return interaction
