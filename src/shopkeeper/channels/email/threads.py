"""What an inbound email answers: the interaction (and send) its In-Reply-To or References name.

Each outbound email's Message-ID is stored on its interaction, and is built from the send id
(`<snd_…@sending-domain>`, see message.py), so an answer is found by the interaction's
message_id first and, failing that (a row written before the id was recorded), by the send id
inside the Message-ID. The nearest reference wins: In-Reply-To, then References from newest to
oldest. A reply joins the conversation of the message it answers, or of the nearest earlier
message in the thread that has one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from shopkeeper.db.scoping import scoped
from shopkeeper.messaging.models import Interaction, Send

_SEND_ID = re.compile(r"^<(snd_[0-9a-f]{32})@[^<>@\s]+>$")
SEND_ID = re.compile(r"^snd_[0-9a-f]{32}$")
MAX_REFERENCES = 50  # a References header can list a whole thread; the newest ones matter


@dataclass(frozen=True, slots=True)
class Thread:
    parent: Interaction | None  # the message answered
    send: Send | None  # the send behind it, when it was one of ours
    conversation_id: str | None


NO_THREAD = Thread(None, None, None)


def send_id_in(message_id: str) -> str | None:
    match = _SEND_ID.match(message_id)
    return match.group(1) if match else None


def send_by_id(session: Session, workspace_id: str, send_id: str | None) -> Send | None:
    if send_id is None or not SEND_ID.match(send_id):
        return None
    return session.scalar(scoped(Send, workspace_id).where(Send.id == send_id))


def find_thread(session: Session, workspace_id: str, message_ids: Sequence[str]) -> Thread:
    wanted = [m for m in message_ids if len(m) <= 300][:MAX_REFERENCES]
    if not wanted:
        return NO_THREAD
    found: dict[str, Interaction] = {}
    for row in session.scalars(
        scoped(Interaction, workspace_id)
        .where(Interaction.message_id.in_(wanted))
        .order_by(Interaction.created_at, Interaction.id)
    ):
        assert row.message_id is not None
        # Ours (outbound) before a copy of the same id that came back in.
        if row.message_id not in found or (row.direction == "out" and found[row.message_id].direction != "out"):
            found[row.message_id] = row

    parent: Interaction | None = None
    send: Send | None = None
    conversation_id: str | None = None
    for message_id in wanted:
        interaction = found.get(message_id)
        their_send: Send | None = None
        if interaction is None:
            their_send = send_by_id(session, workspace_id, send_id_in(message_id))
            if their_send is not None and their_send.interaction_id is not None:
                interaction = session.scalar(
                    scoped(Interaction, workspace_id).where(Interaction.id == their_send.interaction_id)
                )
        elif interaction.send_id is not None:
            their_send = send_by_id(session, workspace_id, interaction.send_id)
        if interaction is None and their_send is None:
            continue
        if parent is None and send is None:
            parent, send = interaction, their_send
        if conversation_id is None and interaction is not None:
            conversation_id = interaction.conversation_id
        if conversation_id is not None:
            break
    return Thread(parent, send, conversation_id)
