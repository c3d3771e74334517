"""The trigger feed's sweep re-reads the last minute of events every few seconds, nearly all of
them already handled by the fast path: re-reading them must cost a query, not a query per event,
and must change nothing — while an event a run inside does react to (an exit) still reaches it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.db.session import Database
from shopkeeper.journeys import feed
from shopkeeper.journeys.worker import JourneyWorker
from tests.conftest import WorkspaceKeys
from tests.helpers import ingest, message
from tests.journeys.factories import make_journey, runs

JOURNEY = {
    "trigger": {"type": "event", "event": "Signed Up"},
    "exit": [{"event": "Unsubscribed"}],
    "steps": [{"id": "later", "type": "wait", "duration": "1d"}],
}
PEOPLE = 30


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


def signed_up(db: Database, workspace_id: str) -> str:
    journey = make_journey(db, workspace_id, JOURNEY)
    ingest(db, workspace_id, [message("identify", userId=f"c{n}") for n in range(PEOPLE)])
    ingest(db, workspace_id, [message("track", userId=f"c{n}", event="Signed Up") for n in range(PEOPLE)])
    JourneyWorker(db).drain(clock.now())
    assert len(runs(db, journey)) == PEOPLE
    return journey


def test_re_reading_entered_events_costs_one_query_and_enters_nobody_again(
    db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    journey = signed_up(db, workspace.id)
    now = clock.now()
    with db.session(write=True) as s:
        watch = feed.build_watch(s, workspace.id)
        events = feed.sweep_events(s, workspace.id, watch, now - feed.OVERLAP, now)
        assert len(events) == PEOPLE
        with statements(db) as seen:
            report = feed.apply(s, watch, events, now)
    assert report.entered == 0 and report.exited == 0
    assert len(seen) == 1, seen  # which of these entries exist: one query for the lot
    assert len(runs(db, journey)) == PEOPLE


def test_an_exit_event_still_reaches_the_run_it_ends(
    db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    journey = signed_up(db, workspace.id)
    ingest(db, workspace.id, [message("track", userId="c0", event="Unsubscribed")])
    JourneyWorker(db).drain(clock.now())
    states = {r.customer_id: r.state for r in runs(db, journey)}
    assert sorted(states.values()).count("exited") == 1
    assert sorted(states.values()).count("active") == PEOPLE - 1
