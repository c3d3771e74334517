"""Connects the inbox to every channel's inbound messages. Imported (for this side effect) by
each process that receives messages: `serve`, `worker` and `inbound-smtp`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shopkeeper.inbox.conversations import attach_inbound
from shopkeeper.messaging.inbound import InboundMessage, on_inbound


def _attach(session: Session, message: InboundMessage) -> None:
    attach_inbound(session, message)


remove = on_inbound(_attach)
