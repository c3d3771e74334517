"""An inbound email from a customer: matched to a customer by its From address, threaded onto
the message it answers, stored as an inbound interaction, and the answered send marked `replied`.

The sender is resolved like any identifier in an event (`customers.resolution`): a known
address finds its customer, an unknown one creates a customer holding it. A reply joins the
conversation of the message it answers (see threads.py), whoever sends it; when the sender is
not the customer that message went to (a forward answered by someone else), the interaction
says so in `data["thread_customer_id"]`. Auto-replies (out-of-office, RFC 3834) are stored but
do not count as a reply to the send.

A message is stored once per workspace: a retried delivery (the sender never saw our 250) is
recognised by its Message-ID. Callbacks registered with `on_inbound_email` run inside the same
transaction once the interaction is written, with what only email knows (the thread, the
parsed mail); then the message is announced to every channel's listeners
(`messaging.inbound.on_inbound`), where the inbox turns it into a conversation. Like the double
opt-in callbacks they must do no network I/O.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from shopkeeper.channels.email.parse import InboundMail, reply_part
from shopkeeper.channels.email.routing import Recipient
from shopkeeper.channels.email.threads import Thread, find_thread
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.customers.normalize import normalise_email
from shopkeeper.customers.resolution import ResolutionUnit
from shopkeeper.customers.service import canonical
from shopkeeper.db.scoping import scoped
from shopkeeper.errors import NotFound
from shopkeeper.ids import new_id
from shopkeeper.messaging.inbound import InboundMessage, announce
from shopkeeper.messaging.models import Interaction
from shopkeeper.messaging.status import record

PROVIDER = "inbound-smtp"


@dataclass(frozen=True, slots=True)
class InboundEmail:
    """What the inbox hook is given: the stored interaction and how it was matched."""

    workspace_id: str
    interaction: Interaction
    customer_id: str
    customer_created: bool
    thread: Thread
    mail: InboundMail
    recipient: Recipient


InboundCallback = Callable[[Session, InboundEmail], None]
_callbacks: list[InboundCallback] = []
_callbacks_lock = threading.Lock()


def on_inbound_email(callback: InboundCallback) -> Callable[[], None]:
    """Call `callback(session, inbound)` for every inbound email stored (not for bounces,
    complaints or duplicates); returns a function that removes it again. The callback may set
    `inbound.interaction.conversation_id`."""
    with _callbacks_lock:
        _callbacks.append(callback)

    def remove() -> None:
        with _callbacks_lock:
            if callback in _callbacks:
                _callbacks.remove(callback)

    return remove


@dataclass(frozen=True, slots=True)
class Stored:
    outcome: str  # "reply", "auto_reply", "duplicate", "ignored"
    detail: str
    interaction_id: str | None = None
    send_id: str | None = None
    customer_id: str | None = None


def stand_in_id(raw: bytes) -> str:
    """A Message-ID for mail that has none: the same bytes give the same id, so a retried
    delivery is still recognised."""
    return f"<{hashlib.sha256(raw).hexdigest()[:40]}@no-message-id.invalid>"


def _resolve(
    session: Session, workspace_id: str, address: str, name: str | None, trigger: str, now: datetime
) -> tuple[str, bool]:
    """The customer holding `address`, created (with the display name as `name`) if none does."""
    unit = ResolutionUnit(session, workspace_id, IdentityCache(0), now)
    key = ("email", address)
    unit.prefetch([key])
    customer_id = unit.resolve([key], None, trigger[:200])
    created = unit.customers_created > 0
    if created and name:
        unit.patch_traits(customer_id, {"name": name[:200]})
    unit.flush()
    return canonical(session, workspace_id, customer_id).id, created


def _live_id(session: Session, workspace_id: str, customer_id: str) -> str | None:
    try:
        return canonical(session, workspace_id, customer_id).id
    except NotFound:  # erased since
        return None


def store_reply(
    session: Session,
    recipient: Recipient,
    mail: InboundMail,
    *,
    envelope_from: str | None,
    raw: bytes,
    now: datetime,
) -> Stored:
    workspace_id = recipient.workspace_id
    sender = mail.from_address or (normalise_email(envelope_from) if envelope_from else None)
    if sender is None:
        return Stored("ignored", "no sender address to answer")
    if mail.from_mailer_daemon:
        return Stored("ignored", f"from {sender}: a delivery report we could not read")
    message_id = mail.message_id or stand_in_id(raw)

    # Hold the sender's identifier lock (PostgreSQL with several writers) before looking for a
    # copy, so that two deliveries of one message cannot both miss the other.
    ResolutionUnit(session, workspace_id, IdentityCache(0), now).lock([("email", sender)])
    duplicate = session.scalar(
        scoped(Interaction, workspace_id)
        .where(Interaction.message_id == message_id[:300], Interaction.direction == "in")
        .limit(1)
    )
    if duplicate is not None:
        return Stored("duplicate", f"{message_id} was received before", duplicate.id, None, duplicate.customer_id)

    customer_id, created = _resolve(session, workspace_id, sender, mail.from_name, f"email:{message_id}", now)
    thread = find_thread(session, workspace_id, mail.thread_ids)

    data: dict[str, object] = {"to": recipient.address, "from_name": mail.from_name, "size": len(raw)}
    if mail.text:
        data["reply_text"] = reply_part(mail.text)[:20_000]
    if mail.references:
        data["references"] = mail.references[-20:]
    if mail.auto_submitted:
        data["auto_reply"] = True
    if thread.parent is not None:
        data["answers_interaction_id"] = thread.parent.id
    if thread.send is not None:
        data["answers_send_id"] = thread.send.id
    thread_customer = thread.send.customer_id if thread.send is not None else None
    if thread_customer is None and thread.parent is not None:
        thread_customer = thread.parent.customer_id
    if thread_customer is not None and _live_id(session, workspace_id, thread_customer) != customer_id:
        data["thread_customer_id"] = thread_customer

    interaction = Interaction(
        id=new_id("int"),
        workspace_id=workspace_id,
        customer_id=customer_id,
        channel="email",
        direction="in",
        conversation_id=thread.conversation_id,
        send_id=None,
        status="received",
        provider=PROVIDER,
        address=sender,
        message_id=message_id[:300],
        in_reply_to=(mail.in_reply_to[0] if mail.in_reply_to else None),
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        data=data,
        created_at=now,
    )
    session.add(interaction)
    session.flush()
    if thread.send is not None and not mail.auto_submitted:
        record(session, thread.send, "replied", now, f"reply from {sender}", interaction_id=interaction.id)

    inbound = InboundEmail(workspace_id, interaction, customer_id, created, thread, mail, recipient)
    with _callbacks_lock:
        callbacks = list(_callbacks)
    for callback in callbacks:
        callback(session, inbound)
    announce(
        session,
        InboundMessage(
            workspace_id=workspace_id,
            customer_id=customer_id,
            interaction_id=interaction.id,
            channel="email",
            address=sender,
            text=str(data.get("reply_text") or mail.text or ""),
            provider=PROVIDER,
            provider_message_id=interaction.message_id,
            customer_created=created,
            at=now,
            data=data,
        ),
    )
    return Stored(
        "auto_reply" if mail.auto_submitted else "reply",
        f"from {sender}" + (f" answering {thread.send.id}" if thread.send is not None else ""),
        interaction.id,
        thread.send.id if thread.send is not None else None,
        customer_id,
    )
