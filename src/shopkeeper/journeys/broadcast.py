"""Broadcast campaigns: at each occurrence of a schedule, the segment's members enter at once.

The whole audience enters in the transaction that moves the schedule to its next occurrence,
so an occurrence is delivered once even if the worker dies mid-way (it rolls back and the next
worker fires it again, with the same entry keys). Throttling and local delivery time are in
the runs' start times: run *i* of a start time starts `i // per_minute` minutes later, and with
`local_time` each customer starts at that time of their own day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from shopkeeper.customers.models import Customer
from shopkeeper.db.bulk import insert_rows
from shopkeeper.ids import new_id
from shopkeeper.journeys import definition as d
from shopkeeper.journeys.entry import definition_of
from shopkeeper.journeys.models import Journey, JourneyRun, JourneyStep
from shopkeeper.journeys.steps import next_local_time
from shopkeeper.segments.models import Segment, SegmentMembership

_CHUNK = 5000
_runs: Table = JourneyRun.__table__  # type: ignore[assignment]
_steps: Table = JourneyStep.__table__  # type: ignore[assignment]


def next_occurrence(trigger: d.Trigger, after: datetime) -> datetime | None:
    """The first occurrence strictly after `after` (a one-off `at` has one occurrence)."""
    if trigger.at is not None:
        return trigger.at if trigger.at > after else None
    assert trigger.cron is not None
    local = after.astimezone(ZoneInfo(trigger.timezone))
    result: datetime = croniter(trigger.cron, local).get_next(datetime)
    return result.astimezone(after.tzinfo)


def first_occurrence(trigger: d.Trigger, now: datetime) -> datetime | None:
    if trigger.at is not None:
        return trigger.at  # a time already past fires at once
    return next_occurrence(trigger, now)


def due(session: Session, now: datetime) -> list[Journey]:
    query = (
        select(Journey)
        .where(Journey.status == "active", Journey.trigger_kind == "schedule", Journey.next_fire_at <= now)
        .order_by(Journey.next_fire_at)
        .limit(10)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def any_due(session: Session, now: datetime) -> bool:
    return (
        session.scalar(
            select(Journey.id)
            .where(Journey.status == "active", Journey.trigger_kind == "schedule", Journey.next_fire_at <= now)
            .limit(1)
        )
        is not None
    )


def fire(session: Session, journey: Journey, now: datetime) -> int:
    """Enter the audience for the due occurrence; the number of customers entered."""
    assert journey.live_version is not None and journey.next_fire_at is not None
    occurrence = journey.next_fire_at
    definition = definition_of(session, journey.id, journey.live_version)
    trigger = definition.trigger
    segment = session.scalar(
        select(Segment).where(Segment.workspace_id == journey.workspace_id, Segment.key == trigger.segment)
    )
    entered = 0
    if segment is not None:
        members = session.execute(
            select(SegmentMembership.customer_id, Customer.timezone)
            .join(Customer, Customer.id == SegmentMembership.customer_id)
            .where(
                SegmentMembership.workspace_id == journey.workspace_id,
                SegmentMembership.segment_id == segment.id,
                SegmentMembership.exited_at.is_(None),
                Customer.merged_into.is_(None),
            )
            .order_by(SegmentMembership.customer_id)
        ).all()
        entered = _enter_all(session, journey, definition, occurrence, members, now)
    journey.next_fire_at = next_occurrence(trigger, occurrence)
    journey.updated_at = now
    return entered


def _start(trigger: d.Trigger, occurrence: datetime, zone_name: str | None) -> datetime:
    if trigger.local_time is None:
        return occurrence
    try:
        zone = ZoneInfo(zone_name or trigger.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(trigger.timezone)
    # The customer's next `local_time` at or after the occurrence (an instant one second
    # earlier, so a customer already at that time starts now rather than tomorrow).
    return next_local_time(occurrence - timedelta(seconds=1), trigger.local_time, (), zone)


def _enter_all(
    session: Session,
    journey: Journey,
    definition: d.Definition,
    occurrence: datetime,
    members: Sequence[Any],
    now: datetime,
) -> int:
    trigger = definition.trigger
    stamp = occurrence.isoformat()
    per_start: dict[datetime, int] = {}
    runs: list[dict[str, Any]] = []
    for customer_id, zone_name in members:
        start = _start(trigger, occurrence, zone_name)
        if trigger.per_minute:
            index = per_start.get(start, 0)
            per_start[start] = index + 1
            start += timedelta(minutes=index // trigger.per_minute)
        runs.append(
            {
                "id": new_id("run"),
                "workspace_id": journey.workspace_id,
                "journey_id": journey.id,
                "version": journey.live_version,
                "customer_id": customer_id,
                "entry_key": f"schedule:{stamp}:{customer_id}",
                "state": "active",
                "step_id": definition.first,
                "next_run_at": start,
                "wait_event": None,
                "holdout": False,
                "context": {"journey_key": journey.key, "trigger": {"occurrence": stamp}},
                "steps_taken": 0,
                "entered_at": now,
                "updated_at": now,
                "finished_at": None,
                "exit_reason": None,
                "converted_at": None,
            }
        )
    for start_index in range(0, len(runs), _CHUNK):
        chunk = runs[start_index : start_index + _CHUNK]
        insert_rows(session, _runs, chunk, ("journey_id", "entry_key"))
        insert_rows(
            session,
            _steps,
            [
                {
                    "id": new_id("jst"),
                    "workspace_id": journey.workspace_id,
                    "journey_id": journey.id,
                    "run_id": r["id"],
                    "customer_id": r["customer_id"],
                    "step_id": "entry",
                    "outcome": "entered",
                    "detail": {"key": r["entry_key"]},
                    "at": now,
                }
                for r in chunk
            ],
        )
    return len(runs)


def fire_due(session: Session, now: datetime) -> int:
    total = 0
    for journey in due(session, now):
        total += fire(session, journey, now)
    session.flush()
    return total


def stop_schedule(session: Session, journey_id: str) -> None:
    session.execute(update(Journey).where(Journey.id == journey_id).values(next_fire_at=None))
