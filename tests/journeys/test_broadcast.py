"""Broadcast campaigns: a schedule over a segment, throttled, delivered at each customer's local
time, each occurrence once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.db.session import Database
from shopkeeper.journeys.worker import JourneyWorker
from shopkeeper.segments import service as segments
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer
from tests.journeys.factories import journey_row, make_journey, runs, sends, track
from tests.messaging.factories import make_template


def vip_segment(db: Database, workspace_id: str) -> None:
    with db.session(write=True) as s:
        segment = segments.create(
            s,
            workspace_id,
            key="buyers",
            name="Buyers",
            description=None,
            purpose="transactional",
            conditions={"event": {"name": "Order Completed"}},
            actor="test",
            now=clock.now(),
        )
        segments.refresh(s, segment, clock.now())


def test_a_throttled_broadcast_reaches_each_member_once_at_the_pace_asked(
    db: Database, frozen_clock: FrozenClock, workspace: WorkspaceKeys
) -> None:
    make_template(db, workspace.id)
    for i in range(7):
        make_customer(db, workspace.id, f"u{i}", email=f"u{i}@example.com")
        if i < 5:
            track(db, workspace.id, f"u{i}", "Order Completed")
    vip_segment(db, workspace.id)
    start = clock.now() + timedelta(hours=1)
    journey = make_journey(
        db,
        workspace.id,
        {
            "trigger": {"type": "schedule", "at": start.isoformat(), "segment": "buyers", "per_minute": 2},
            "steps": [{"type": "send", "channel": "email", "template": "welcome"}],
        },
        key="news",
    )
    assert journey_row(db, journey).next_fire_at == start
    worker = JourneyWorker(db)
    worker.drain(clock.now())
    assert runs(db, journey) == []
    frozen_clock.set(start)
    worker.drain(clock.now())
    worker.drain(clock.now())
    starts = sorted(r.next_run_at or r.entered_at for r in runs(db, journey) if r.state == "active")
    assert len(runs(db, journey)) == 5
    assert len(sends(db, journey)) == 2  # two a minute
    assert journey_row(db, journey).next_fire_at is None  # a one-off
    for _ in (1, 2):
        frozen_clock.advance(timedelta(minutes=1))
        worker.drain(clock.now())
    assert len(sends(db, journey)) == 5
    assert len({s.customer_id for s in sends(db, journey)}) == 5
    assert starts == sorted(starts)


def test_local_time_delivery_starts_each_customer_at_their_own_morning(
    db: Database, frozen_clock: FrozenClock, workspace: WorkspaceKeys
) -> None:
    make_template(db, workspace.id)
    make_customer(db, workspace.id, "paris", email="p@example.com", timezone="Europe/Paris")
    make_customer(db, workspace.id, "tokyo", email="t@example.com", timezone="Asia/Tokyo")
    for name in ("paris", "tokyo"):
        track(db, workspace.id, name, "Order Completed")
    vip_segment(db, workspace.id)
    frozen_clock.set(datetime(2026, 6, 1, 0, 0, tzinfo=UTC))
    journey = make_journey(
        db,
        workspace.id,
        {
            "trigger": {
                "type": "schedule",
                "cron": "0 6 * * *",
                "timezone": "UTC",
                "segment": "buyers",
                "local_time": "10:00",
            },
            "steps": [{"type": "send", "channel": "email", "template": "welcome"}],
        },
        key="daily",
    )
    frozen_clock.set(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))
    JourneyWorker(db).drain(clock.now())
    by_customer = {r.customer_id: r.next_run_at for r in runs(db, journey)}
    paris, tokyo = make_customer(db, workspace.id, "paris"), make_customer(db, workspace.id, "tokyo")
    assert by_customer[paris] == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # 10:00 CEST
    assert by_customer[tokyo] == datetime(2026, 6, 2, 1, 0, tzinfo=UTC)  # Tokyo's 10:00 had passed
    assert journey_row(db, journey).next_fire_at == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)
