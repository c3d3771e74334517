"""Conversation events, written in the caller's transaction, and the wake-ups that let agents'
live streams show them at once.

The database is the source of truth: a stream reads `conversation_events` after its cursor, so
a reconnecting agent (`Last-Event-ID`) misses nothing and no event exists only in memory. The
hub only says "look now": an event committed in this process wakes this process's streams as
soon as its transaction commits (SQLAlchemy's `after_commit`); one committed in another process
(an inbound SMTP server, a separate worker) is found by the stream's next short poll.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from shopkeeper.ids import new_id
from shopkeeper.inbox.models import Conversation, ConversationEvent

_WAKE_KEY = "inbox_wake"


class Hub:
    def __init__(self) -> None:
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(set)
        self._lock = threading.Lock()

    def subscribe(self, workspace_id: str) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters[workspace_id].add(waiter)
        return waiter

    def unsubscribe(self, workspace_id: str, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            found = self._waiters.get(workspace_id)
            if found is not None:
                found.discard(waiter)
                if not found:
                    del self._waiters[workspace_id]

    def wake(self, workspace_ids: set[str]) -> None:
        """Callable from any thread."""
        with self._lock:
            waiters = [w for ws in workspace_ids for w in self._waiters.get(ws, ())]
        for loop, flag in waiters:
            try:
                loop.call_soon_threadsafe(flag.set)
            except RuntimeError:  # that stream's loop has closed
                continue

    def count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._waiters.values())


hub = Hub()


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    workspaces = session.info.pop(_WAKE_KEY, None)
    if workspaces:
        hub.wake(workspaces)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_WAKE_KEY, None)


def record(
    session: Session,
    conversation: Conversation,
    kind: str,
    actor: str,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> ConversationEvent:
    row = ConversationEvent(
        id=new_id("cev"),
        workspace_id=conversation.workspace_id,
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        kind=kind,
        actor=actor,
        data=data or {},
        created_at=now,
    )
    session.add(row)
    session.info.setdefault(_WAKE_KEY, set()).add(conversation.workspace_id)
    return row
