"""The trigger feed: events in, journey effects out — entries, exits, goals, waits that end.

Two paths read the same events and do the same idempotent work:

- the fast path: the ingest writer hands over each batch after its commit (in memory, like
  real-time segments), so an event reaches its journey within milliseconds;
- the sweep: a cursor over the event log (`journey_feed_cursors`), re-read with an overlap,
  which catches what the fast path never saw (a process that died after the commit, segment
  entries written by the segment workers, another server's events).

Doing an event twice changes nothing: an entry is unique per (journey, event id); an exit, a
goal or the end of a wait applies only to a run in the state it changes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.events.ingest import IngestBatch
from shopkeeper.events.models import Event
from shopkeeper.journeys import definition as d
from shopkeeper.journeys.entry import definition_of, enter
from shopkeeper.journeys.models import LIVE_STATES, FeedCursor, Journey, JourneyRun
from shopkeeper.journeys.steps import convert, finish, log_step
from shopkeeper.segments.membership import ENTERED, EXITED
from shopkeeper.segments.reference import matches

CURSOR = "events"
OVERLAP = timedelta(seconds=60)
# The sweep reads events by name and timestamp (the index the log already has); an event
# stamped more than this before it arrived is only seen by the fast path. Backfills and
# imports therefore never start journeys from the sweep.
LOOKBACK = timedelta(minutes=10)
GOAL_HORIZON = timedelta(days=90)
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class FeedEvent:
    id: str
    workspace_id: str
    customer_id: str
    name: str
    properties: dict[str, Any]
    timestamp: datetime


@dataclass
class Watch:
    """What one workspace's journeys react to, rebuilt every few seconds."""

    entries: dict[str, list[tuple[Journey, d.Definition]]] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    # journey id → every version a live run may still be on
    versions: dict[str, dict[int, d.Definition]] = field(default_factory=dict)
    # What a run already inside reacts to (exits, goals, waits for an event): only events of
    # these names look up the customer's runs.
    run_names: set[str] = field(default_factory=set)
    built: float = 0.0


def _entry_name(trigger: d.Trigger) -> str | None:
    if trigger.kind == "event" and trigger.event is not None:
        return trigger.event.name
    if trigger.kind == "segment_entered":
        return ENTERED
    if trigger.kind == "segment_exited":
        return EXITED
    return None


def build_watch(session: Session, workspace_id: str) -> Watch:
    watch = Watch(built=time.monotonic())
    journeys = list(
        session.scalars(
            select(Journey).where(Journey.workspace_id == workspace_id, Journey.status.in_(("active", "paused")))
        )
    )
    for journey in journeys:
        versions: dict[int, d.Definition] = {}
        if journey.live_version is not None:
            versions[journey.live_version] = definition_of(session, journey.id, journey.live_version)
        older = session.scalars(
            select(JourneyRun.version)
            .where(JourneyRun.journey_id == journey.id, JourneyRun.state.in_(LIVE_STATES))
            .distinct()
        )
        for version in older:
            if version not in versions:
                versions[version] = definition_of(session, journey.id, version)
        watch.versions[journey.id] = versions
        for definition in versions.values():
            watch.names |= definition.event_names()
            watch.run_names |= _run_names(definition)
        if journey.status == "active" and journey.live_version is not None:
            live = versions[journey.live_version]
            name = _entry_name(live.trigger)
            if name is not None:
                watch.entries.setdefault(name, []).append((journey, live))
                watch.names.add(name)
    return watch


def _run_names(definition: d.Definition) -> set[str]:
    names = {m.name for m in definition.exits}
    if definition.goal is not None:
        names.add(definition.goal.event.name)
    for step in definition.steps.values():
        if isinstance(step.config, d.Wait) and step.config.until_event is not None:
            names.add(step.config.until_event.name)
    return names


def _match(match: d.EventMatch, event: FeedEvent, now: datetime) -> bool:
    return match.name == event.name and all(matches(event.properties, f, now) for f in match.where)


def _enters(trigger: d.Trigger, event: FeedEvent, now: datetime) -> bool:
    if trigger.kind == "event":
        assert trigger.event is not None
        return _match(trigger.event, event, now)
    return event.properties.get("segment_key") == trigger.segment


@dataclass
class FeedReport:
    events: int = 0
    entered: int = 0
    exited: int = 0
    converted: int = 0
    resumed: int = 0


def apply(session: Session, watch: Watch, events: Sequence[FeedEvent], now: datetime) -> FeedReport:
    """Every journey effect of these events (one workspace), in the caller's transaction."""
    report = FeedReport(events=len(events))
    by_customer: dict[str, list[FeedEvent]] = {}
    for event in events:
        if event.name in watch.names:
            by_customer.setdefault(event.customer_id, []).append(event)
    known = _already_entered(session, watch, [e for mine in by_customer.values() for e in mine])
    for customer_id, mine in by_customer.items():
        mine.sort(key=lambda e: (e.timestamp, e.id))
        for event in mine:
            if event.name in watch.run_names:
                _existing_runs(session, watch, event, now, report)
            for journey, definition in watch.entries.get(event.name, []):
                if (journey.id, f"event:{event.id}") in known:
                    continue  # seen before (the sweep re-reads what the fast path did)
                if _enters(definition.trigger, event, now):
                    entered = enter(
                        session,
                        journey,
                        customer_id,
                        entry_key=f"event:{event.id}",
                        now=now,
                        trigger={"event": event.name, "event_id": event.id, "properties": event.properties},
                    )
                    if entered.reason == "entered":
                        report.entered += 1
    return report


def _already_entered(session: Session, watch: Watch, events: Sequence[FeedEvent]) -> set[tuple[str, str]]:
    """(journey, entry key) of these events' entries that exist already, in one query per chunk:
    the sweep re-reads a minute of events each time, nearly all of them entered already."""
    keys = [f"event:{e.id}" for e in events if e.name in watch.entries]
    if not keys:
        return set()
    journey_ids = {journey.id for pairs in watch.entries.values() for journey, _ in pairs}
    found: set[tuple[str, str]] = set()
    for start in range(0, len(keys), _CHUNK):
        rows = session.execute(
            select(JourneyRun.journey_id, JourneyRun.entry_key).where(
                JourneyRun.journey_id.in_(journey_ids), JourneyRun.entry_key.in_(keys[start : start + _CHUNK])
            )
        )
        found.update((journey_id, key) for journey_id, key in rows)
    return found


def _existing_runs(session: Session, watch: Watch, event: FeedEvent, now: datetime, report: FeedReport) -> None:
    runs = list(
        session.scalars(
            select(JourneyRun).where(
                JourneyRun.workspace_id == event.workspace_id,
                JourneyRun.customer_id == event.customer_id,
                JourneyRun.journey_id.in_(watch.versions),
                JourneyRun.entered_at >= now - GOAL_HORIZON,
            )
        )
    )
    for run in runs:
        definition = watch.versions.get(run.journey_id, {}).get(run.version)
        if definition is None or event.timestamp < run.entered_at:
            continue
        live = run.state in LIVE_STATES
        goal = definition.goal
        if (
            goal is not None
            and run.converted_at is None
            and event.timestamp <= run.entered_at + goal.within
            and _match(goal.event, event, now)
        ):
            convert(session, run, event.timestamp, now)
            report.converted += 1
            if live and goal.exit:
                log_step(session, run, run.step_id or "goal", "converted", now, event_id=event.id)
                finish(run, "completed", now, "goal")
                continue
        if not live:
            continue
        if any(_match(m, event, now) for m in definition.exits):
            log_step(session, run, run.step_id or "exit", "exited", now, event=event.name, event_id=event.id)
            finish(run, "exited", now, f"exit event {event.name}")
            report.exited += 1
            continue
        if run.state == "waiting" and run.wait_event == event.name and run.step_id is not None:
            step = definition.steps.get(run.step_id)
            if not isinstance(step.config if step else None, d.Wait):
                continue
            assert step is not None and isinstance(step.config, d.Wait) and step.config.until_event is not None
            since = run.context.get("wait_since")
            started = datetime.fromisoformat(since) if isinstance(since, str) else run.entered_at
            if event.timestamp >= started and _match(step.config.until_event, event, now):
                run.context = {**run.context, "wait_result": "event", "wait_event_id": event.id}
                run.next_run_at = now
                run.updated_at = now
                report.resumed += 1


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _rows(rows: Iterable[Any]) -> list[FeedEvent]:
    return [
        FeedEvent(r.id, r.workspace_id, r.customer_id, r.name, r.properties or {}, _utc(r.timestamp))
        for r in rows
        if r.name is not None
    ]


_COLUMNS = (Event.id, Event.workspace_id, Event.customer_id, Event.name, Event.properties, Event.timestamp)


def events_of_batches(session: Session, watch: Watch, batches: Sequence[IngestBatch]) -> list[FeedEvent]:
    """The fast path: the stored rows of the just-committed events that a journey watches."""
    if not batches:
        return []
    workspace_id = batches[0].workspace_id
    ids = [e.message_id for b in batches for e in b.events if e.name in watch.names and e.message_id is not None]
    out: list[FeedEvent] = []
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(*_COLUMNS).where(
                Event.workspace_id == workspace_id, Event.message_id.in_(ids[start : start + _CHUNK])
            )
        )
        out += _rows(rows)
    return out


def sweep_events(
    session: Session, workspace_id: str, watch: Watch, since: datetime, until: datetime
) -> list[FeedEvent]:
    if not watch.names:
        return []
    rows = session.execute(
        select(*_COLUMNS)
        .where(
            Event.workspace_id == workspace_id,
            Event.name.in_(sorted(watch.names)),
            Event.timestamp >= since - LOOKBACK,
            Event.received_at > since,
            Event.received_at <= until,
        )
        .order_by(Event.received_at)
        .limit(20_000)
    )
    return _rows(rows)


def read_cursor(session: Session, now: datetime) -> datetime:
    """Where the sweep starts; the row is locked on PostgreSQL, so one process sweeps at a time."""
    query = select(FeedCursor).where(FeedCursor.name == CURSOR)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        row = FeedCursor(name=CURSOR, received_at=now, updated_at=now)
        session.add(row)
        session.flush()
    return row.received_at


def move_cursor(session: Session, to: datetime, now: datetime) -> None:
    row = session.get(FeedCursor, CURSOR)
    if row is not None and to > row.received_at:
        row.received_at = to
        row.updated_at = now
