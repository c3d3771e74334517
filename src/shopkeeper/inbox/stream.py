"""Server-Sent Events for agents: every conversation event of the workspace (or of one
conversation, or one assignee's), as it is committed.

The stream reads `conversation_events` after its cursor: `Last-Event-ID` (sent by a browser's
EventSource when it reconnects) or `?after=`, else it starts at the newest event. It wakes at
once when this process commits an event (inbox.live.hub) and polls every `poll_seconds` for
events committed by other processes. On PostgreSQL a sequence value is taken before commit, so
a transaction can commit a smaller `seq` after a larger one was shown; the stream therefore
re-reads a short window behind its cursor and skips what it already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import orjson
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from shopkeeper.db.session import Database
from shopkeeper.errors import Invalid
from shopkeeper.inbox.live import hub
from shopkeeper.inbox.models import ConversationEvent
from shopkeeper.inbox.schemas import EventOut

HEARTBEAT_SECONDS = 15.0
LATE_COMMIT_SECONDS = 10.0  # how long a smaller seq may still appear behind the cursor


@dataclass(frozen=True, slots=True)
class StreamFilter:
    conversation_id: str | None = None
    assignee_id: str | None = None


def newest_seq(db: Database, workspace_id: str) -> int:
    with db.session() as session:
        return int(
            session.scalar(
                select(func.max(ConversationEvent.seq)).where(ConversationEvent.workspace_id == workspace_id)
            )
            or 0
        )


def _read(db: Database, workspace_id: str, floor: int, limit: int = 500) -> list[EventOut]:
    with db.session() as session:
        rows = session.scalars(
            select(ConversationEvent)
            .where(ConversationEvent.workspace_id == workspace_id, ConversationEvent.seq > floor)
            .order_by(ConversationEvent.seq)
            .limit(limit)
        )
        return [EventOut.model_validate(r) for r in rows]


def _wanted(event: EventOut, wanted: StreamFilter) -> bool:
    if wanted.conversation_id and event.conversation_id != wanted.conversation_id:
        return False
    if wanted.assignee_id:
        return event.data.get("assignee_id") == wanted.assignee_id or event.kind in ("message", "created")
    return True


def frame(event: EventOut, named: bool = True) -> bytes:
    """`named`: the event's kind as the SSE event name (API clients pick kinds); without it every
    event is a plain `message`, which one EventSource handler receives (the web inbox)."""
    data = orjson.dumps(event.model_dump(mode="json")).decode()
    name = f"event: {event.kind}\n" if named else ""
    return f"id: {event.seq}\n{name}data: {data}\n\n".encode()


def resume_after(after: int | None, last_event_id: str | None) -> int | None:
    """Where a stream starts: after `Last-Event-ID` (a reconnecting EventSource), else `after`."""
    if last_event_id is None:
        return after
    if not last_event_id.strip().isdigit():
        raise Invalid("Last-Event-ID: an event id from this stream", field="Last-Event-ID")
    return int(last_event_id)


def poll_seconds(db: Database) -> float:
    """How often a stream looks for events committed by other processes."""
    return 2.0 if db.dialect == "postgresql" else 0.5


async def events(
    db: Database,
    workspace_id: str,
    after: int | None,
    wanted: StreamFilter,
    *,
    poll_seconds: float,
    disconnected: Callable[[], Awaitable[bool]] | None = None,
    named: bool = True,
) -> AsyncIterator[bytes]:
    """`disconnected` is checked each round: the server writes only when there is something to
    say, so without it a client that hung up would hold its stream until the next heartbeat."""
    cursor = after if after is not None else await run_in_threadpool(newest_seq, db, workspace_id)
    waiter = hub.subscribe(workspace_id)
    sent: dict[int, float] = {}  # seq → when it was sent, for the window behind the cursor
    floor = cursor
    last_write = time.monotonic()
    try:
        yield f"retry: 2000\n: connected at {cursor}\n\n".encode()
        while True:
            waiter[1].clear()
            found = await run_in_threadpool(_read, db, workspace_id, floor)
            now = time.monotonic()
            for event in found:
                if event.seq in sent:
                    continue
                sent[event.seq] = now
                cursor = max(cursor, event.seq)
                if _wanted(event, wanted):
                    yield frame(event, named)
                    last_write = now
            # The floor trails the cursor by what was sent within the late-commit window.
            recent = [seq for seq, at in sent.items() if now - at < LATE_COMMIT_SECONDS]
            old = [seq for seq in sent if seq not in recent]
            for seq in old:
                del sent[seq]
            floor = max(floor, (min(recent) - 1) if recent else cursor)
            if len(found) >= 500:
                continue
            if now - last_write >= HEARTBEAT_SECONDS:
                yield b": keep-alive\n\n"
                last_write = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter[1].wait(), timeout=poll_seconds)
            if disconnected is not None and await disconnected():
                return
    finally:
        hub.unsubscribe(workspace_id, waiter)
