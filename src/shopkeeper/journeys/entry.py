"""Entering a customer into a journey: once per trigger, as the re-entry policy allows.

Every entry carries an `entry_key` that names its trigger (the event id, the API request's
idempotency key, the broadcast occurrence), unique per journey, so the same trigger seen twice
(a retried request, the feed re-reading an overlap, two workers) enters the customer once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shopkeeper.consent.policy import lock_customer
from shopkeeper.ids import new_id
from shopkeeper.journeys import definition as d
from shopkeeper.journeys.models import LIVE_STATES, Journey, JourneyRun, JourneyVersion
from shopkeeper.journeys.steps import log_step

_definitions: dict[tuple[str, int], d.Definition] = {}


def definition_of(session: Session, journey_id: str, version: int) -> d.Definition:
    """A version's parsed definition; versions never change, so each is read once per process."""
    key = (journey_id, version)
    found = _definitions.get(key)
    if found is None:
        raw = session.scalar(
            select(JourneyVersion.definition).where(
                JourneyVersion.journey_id == journey_id, JourneyVersion.version == version
            )
        )
        if raw is None:
            raise LookupError(f"journey {journey_id} has no version {version}")
        found = _definitions[key] = d.parse(raw)
        if len(_definitions) > 2048:
            _definitions.pop(next(iter(_definitions)))
    return found


@dataclass(frozen=True, slots=True)
class Entered:
    run: JourneyRun | None
    reason: str  # entered | duplicate | already_inside | not_again | cooling_down | not_active


def enter(
    session: Session,
    journey: Journey,
    customer_id: str,
    *,
    entry_key: str,
    now: datetime,
    trigger: dict[str, Any] | None = None,
    start_at: datetime | None = None,
) -> Entered:
    if journey.status != "active" or journey.live_version is None:
        return Entered(None, "not_active")
    definition = definition_of(session, journey.id, journey.live_version)
    existing = session.scalar(
        select(JourneyRun).where(JourneyRun.journey_id == journey.id, JourneyRun.entry_key == entry_key)
    )
    if existing is not None:
        return Entered(existing, "duplicate")
    policy = definition.reentry
    if policy.policy != "always":
        lock_customer(session, journey.workspace_id, customer_id)
        previous = session.execute(
            select(JourneyRun.state, JourneyRun.finished_at)
            .where(
                JourneyRun.workspace_id == journey.workspace_id,
                JourneyRun.customer_id == customer_id,
                JourneyRun.journey_id == journey.id,
            )
            .order_by(JourneyRun.entered_at.desc())
            .limit(1)
        ).first()
        if previous is not None:
            state, finished_at = previous
            if policy.policy == "never":
                return Entered(None, "not_again")
            if state in LIVE_STATES:
                return Entered(None, "already_inside")
            if policy.cooldown is not None and finished_at is not None and now - finished_at < policy.cooldown:
                return Entered(None, "cooling_down")
    run = JourneyRun(
        id=new_id("run"),
        workspace_id=journey.workspace_id,
        journey_id=journey.id,
        version=journey.live_version,
        customer_id=customer_id,
        entry_key=entry_key,
        state="active",
        step_id=definition.first,
        next_run_at=start_at or now,
        wait_event=None,
        holdout=False,
        context={"journey_key": journey.key, "trigger": dict(trigger or {})},
        steps_taken=0,
        entered_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:  # the same trigger, entered by another worker meanwhile
        return Entered(None, "duplicate")
    log_step(session, run, "entry", "entered", now, key=entry_key)
    return Entered(run, "entered")
