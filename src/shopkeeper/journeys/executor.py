"""The durable executor: claim due runs, take each as far as it goes, commit.

Claiming and executing happen in one transaction. On PostgreSQL the due runs are selected
`FOR UPDATE SKIP LOCKED`, so any number of workers share the work without waiting on each
other, and a run's row stays locked until its new state and its step's effects (a send with
its unique idempotency key, a trait, a conversation) commit together — or, if the worker dies,
roll back together and are taken again by the next worker. On SQLite the write transaction is
the one writer. Either way each step happens exactly once.

Each run is executed inside a savepoint: a run whose step cannot be done (a template archived)
fails alone with its reason, and an unexpected error backs that run off and retries it, without
undoing the rest of the batch.

The step log is the one write every step makes, so its rows are gathered for the round and
written by one multi-row insert at its end (still in the same transaction); the rows of a run
whose savepoint rolls back are dropped with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from shopkeeper.journeys.definition import kind_of
from shopkeeper.journeys.entry import definition_of
from shopkeeper.journeys.models import LIVE_STATES, Journey, JourneyRun, JourneyStep
from shopkeeper.journeys.steps import LOG_BUFFER, Context, StepFailed, advance, finish, log_step
from shopkeeper.segments.compiler import SegmentQuery

log = logging.getLogger(__name__)
MAX_ERRORS = 5


@dataclass
class RoundReport:
    runs: int = 0
    steps: int = 0
    failed: int = 0
    retried: int = 0
    journeys: set[str] = field(default_factory=set)


def claim(session: Session, now: datetime, limit: int) -> list[JourneyRun]:
    """The `limit` runs due first, of active journeys.

    Each live state is read on its own, in the order of the index on (state, next_run_at), so the
    database walks the index and stops at `limit`. Asking for both states at once made it gather
    and sort every due run each round — 0.1 s on SQLite, 0.25 s on PostgreSQL (a sort spilled
    to disk) with 100,000 runs due. On PostgreSQL a run of the second list that falls past
    `limit` stays locked, untouched, until this round commits.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    found: list[JourneyRun] = []
    for state in LIVE_STATES:
        query = (
            select(JourneyRun)
            .join(Journey, Journey.id == JourneyRun.journey_id)
            .where(JourneyRun.state == state, JourneyRun.next_run_at <= now, Journey.status == "active")
            .order_by(JourneyRun.next_run_at)
            .limit(limit)
        )
        if postgres:
            query = query.with_for_update(skip_locked=True, of=JourneyRun)
        found += session.scalars(query)
    found.sort(key=lambda run: (run.next_run_at, run.id))
    return found[:limit]


def any_due(session: Session, now: datetime) -> bool:
    """Whether a round has work: read first, so an idle worker takes no write lock (on SQLite the
    one the ingest writer needs)."""
    for state in LIVE_STATES:
        found = session.scalar(
            select(JourneyRun.id)
            .join(Journey, Journey.id == JourneyRun.journey_id)
            .where(JourneyRun.state == state, JourneyRun.next_run_at <= now, Journey.status == "active")
            .limit(1)
        )
        if found is not None:
            return True
    return False


def run_due(session: Session, now: datetime, *, limit: int = 200) -> RoundReport:
    """One round in the caller's write transaction (commit is the caller's)."""
    report = RoundReport()
    runs = claim(session, now, limit)
    if not runs:
        return report
    journeys = {j.id: j for j in session.scalars(select(Journey).where(Journey.id.in_({r.journey_id for r in runs})))}
    queries: dict[tuple[str, int], SegmentQuery] = {}
    rows: list[dict[str, Any]] = []
    session.info[LOG_BUFFER] = rows
    try:
        for run in runs:
            journey = journeys[run.journey_id]
            definition = definition_of(session, run.journey_id, run.version)
            ctx = Context(session, journey, definition, now, kind_of(definition), queries)
            report.runs += 1
            report.journeys.add(journey.id)
            mark = len(rows)
            try:
                with session.begin_nested():
                    report.steps += advance(ctx, run)
            except StepFailed as exc:
                del rows[mark:]  # rolled back with the savepoint
                session.expire(run)  # and so is the run: read it again as the round found it
                step_id = exc.step_id or run.step_id or "?"
                log_step(session, run, step_id, "failed", now, reason=str(exc))
                finish(run, "failed", now, str(exc)[:300])
                report.failed += 1
            except Exception as exc:  # a bug or a lost connection: this run only, retried later
                del rows[mark:]
                session.expire(run)
                log.exception("journeys: run %s failed at step %s", run.id, run.step_id)
                errors = int(run.context.get("errors", 0)) + 1
                run.context = {**run.context, "errors": errors}
                if errors >= MAX_ERRORS:
                    finish(run, "failed", now, f"gave up after {errors} errors: {type(exc).__name__}")
                    report.failed += 1
                else:
                    run.next_run_at = now + timedelta(seconds=30 * 2**errors)
                    report.retried += 1
    finally:
        session.info.pop(LOG_BUFFER, None)
    if rows:
        session.execute(insert(JourneyStep), rows)
    session.flush()
    return report
