"""Builders for journey tests: journeys through the service, events through the ingest path,
and a worker driven by the test's clock."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.db.session import Database
from shopkeeper.journeys import service
from shopkeeper.journeys.models import Journey, JourneyRun, JourneyStep
from shopkeeper.messaging.models import Send
from tests.helpers import ingest, message


def make_journey(
    db: Database, workspace_id: str, definition: dict[str, Any] | str, *, key: str = "welcome", activate: bool = True
) -> str:
    now = clock.now()
    with db.session(write=True) as s:
        journey = service.create(s, workspace_id, key=key, name=key.title(), raw=definition, actor="test", now=now)
        if activate:
            service.activate(s, journey, "test", now)
        return journey.id


def track(db: Database, workspace_id: str, user_id: str, event: str, **properties: Any) -> None:
    ingest(db, workspace_id, [message("track", userId=user_id, event=event, properties=properties)])


def runs(db: Database, journey_id: str) -> list[JourneyRun]:
    with db.session() as s:
        return list(s.scalars(select(JourneyRun).where(JourneyRun.journey_id == journey_id).order_by(JourneyRun.id)))


def sends(db: Database, journey_id: str) -> list[Send]:
    with db.session() as s:
        return list(
            s.scalars(
                select(Send)
                .where(Send.source_ref >= f"{journey_id}:", Send.source_ref < f"{journey_id};")
                .order_by(Send.created_at, Send.id)
            )
        )


def trace(db: Database, run_id: str) -> list[tuple[str, str]]:
    with db.session() as s:
        rows = s.execute(
            select(JourneyStep.step_id, JourneyStep.outcome)
            .where(JourneyStep.run_id == run_id)
            .order_by(JourneyStep.at, JourneyStep.id)
        )
        return [(a, b) for a, b in rows]


def journey_row(db: Database, journey_id: str) -> Journey:
    with db.session() as s:
        row = s.get(Journey, journey_id)
        assert row is not None
        return row
