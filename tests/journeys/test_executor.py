"""The executor's round: which runs it claims, and the step log it writes with the round.

The claim reads each live state in its index order and merges them by due time; the step log's
rows are gathered and written together at the end of the round, and those of a run whose
savepoint rolled back go with it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.db.session import Database
from shopkeeper.journeys import executor, service, steps
from shopkeeper.journeys.models import Journey, JourneyRun, JourneyStep
from shopkeeper.messaging.models import Template
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer
from tests.journeys.factories import make_journey, runs, sends, trace
from tests.journeys.test_feed_sweep import statements
from tests.messaging.factories import make_template

API = {"type": "api"}
WAIT_A_DAY = {
    "trigger": API,
    "reentry": {"policy": "always"},
    "steps": [{"id": "later", "type": "wait", "duration": "1d"}],
}


@pytest.fixture
def shop(db: Database, frozen_clock: FrozenClock, workspace: WorkspaceKeys) -> WorkspaceKeys:
    make_template(db, workspace.id)
    return workspace


def enter(db: Database, journey_id: str, customer_id: str, key: str) -> str:
    with db.session(write=True) as s:
        journey = s.get(Journey, journey_id)
        assert journey is not None
        entered = service.enter_by_api(s, journey, customer_id, idempotency_key=key, data={}, now=clock.now())
        assert entered.run is not None
        return entered.run.id


def round_(db: Database, limit: int = 200) -> executor.RoundReport:
    with db.session(write=True) as s:
        return executor.run_due(s, clock.now(), limit=limit)


def set_run(db: Database, run_id: str, **values: Any) -> None:
    with db.session(write=True) as s:
        run = s.get(JourneyRun, run_id)
        assert run is not None
        for name, value in values.items():
            setattr(run, name, value)


def test_claim_takes_the_runs_due_first_across_active_and_waiting(
    db: Database, shop: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    journey = make_journey(db, shop.id, WAIT_A_DAY)
    paused = make_journey(db, shop.id, WAIT_A_DAY, key="paused")
    customer = make_customer(db, shop.id, "ann", email="ann@example.com")
    now = clock.now()
    ids = {}
    # Due at now - 5 … now - 1 minutes, alternately active and waiting; one due later; one of a paused journey.
    for n, state in enumerate(["active", "waiting", "active", "waiting", "active"]):
        run_id = enter(db, journey, customer, f"k{n}")
        set_run(db, run_id, state=state, next_run_at=now - timedelta(minutes=5 - n))
        ids[n] = run_id
    later = enter(db, journey, customer, "later")
    set_run(db, later, next_run_at=now + timedelta(minutes=1))
    elsewhere = enter(db, paused, customer, "paused")
    set_run(db, elsewhere, next_run_at=now - timedelta(hours=1))
    with db.session(write=True) as s:
        row = s.get(Journey, paused)
        assert row is not None
        service.pause(s, row, reason="test", actor="test", now=now)

    with db.session(write=True) as s:
        assert [r.id for r in executor.claim(s, now, 3)] == [ids[0], ids[1], ids[2]]
        assert [r.id for r in executor.claim(s, now, 10)] == [ids[n] for n in range(5)]
        assert [r.id for r in executor.claim(s, now, 1)] == [ids[0]]


def test_the_step_log_is_written_with_the_round(db: Database, shop: WorkspaceKeys) -> None:
    definition = {
        "trigger": API,
        "steps": [
            {"id": "split", "type": "split", "variants": [{"name": "a", "next": "tag"}, {"name": "b", "next": "tag"}]},
            {"id": "tag", "type": "update_trait", "traits": {"stage": "welcomed"}},
            {"id": "hello", "type": "send", "channel": "email", "template": "welcome"},
            {"id": "later", "type": "wait", "duration": "1h"},
        ],
    }
    journey = make_journey(db, shop.id, definition)
    run_ids = [
        enter(db, journey, make_customer(db, shop.id, f"c{n}", email=f"c{n}@example.com"), f"k{n}") for n in range(3)
    ]
    report = round_(db)
    assert report.runs == 3 and report.steps == 12
    for run_id in run_ids:
        logged = trace(db, run_id)
        assert logged[0] == ("entry", "entered")
        assert {step for step, _ in logged[1:]} == {"split", "tag", "hello", "later"} and len(logged) == 5
        assert {("tag", "updated"), ("hello", "sent"), ("later", "waiting")} < set(logged)
    assert len(sends(db, journey)) == 3
    # Nothing is left in the session's buffer after the round: a later write logs directly.
    with db.session(write=True) as s:
        assert steps.LOG_BUFFER not in s.info


def test_a_failed_run_keeps_only_its_failure_in_the_log_and_the_others_keep_theirs(
    db: Database, shop: WorkspaceKeys
) -> None:
    definition = {
        "trigger": API,
        "steps": [
            {"id": "tag", "type": "update_trait", "traits": {"stage": "welcomed"}},
            {"id": "hello", "type": "send", "channel": "email", "template": "welcome"},
        ],
    }
    journey = make_journey(db, shop.id, definition)
    ann = enter(db, journey, make_customer(db, shop.id, "ann", email="ann@example.com"), "ann")
    bob = enter(db, journey, make_customer(db, shop.id, "bob", email="bob@example.com"), "bob")
    with db.session(write=True) as s:  # the template goes away: the send step cannot be done
        template = s.scalar(select(Template).where(Template.workspace_id == shop.id))
        assert template is not None
        template.archived_at = clock.now()
    report = round_(db)
    assert report.failed == 2
    for run_id in (ann, bob):
        # The trait step ran in the savepoint that rolled back: neither it nor its row remains.
        assert trace(db, run_id) == [("entry", "entered"), ("hello", "failed")]
    with db.session() as s:
        rows = list(s.scalars(select(JourneyStep).where(JourneyStep.run_id == ann, JourneyStep.outcome == "failed")))
    assert "archived" in rows[0].detail["reason"]
    assert {r.state for r in runs(db, journey)} == {"failed"}


def test_an_unexpected_error_drops_that_runs_rows_and_retries_it_later(
    db: Database, shop: WorkspaceKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    definition = {
        "trigger": API,
        "steps": [
            {
                "id": "split",
                "type": "split",
                "variants": [{"name": "a", "next": "hello"}, {"name": "b", "next": "hello"}],
            },
            {"id": "hello", "type": "send", "channel": "email", "template": "welcome"},
        ],
    }
    journey = make_journey(db, shop.id, definition)
    ann_id = make_customer(db, shop.id, "ann", email="ann@example.com")
    ann = enter(db, journey, ann_id, "ann")
    bob = enter(db, journey, make_customer(db, shop.id, "bob", email="bob@example.com"), "bob")
    real = steps.send_service.enqueue

    def flaky(session: Any, workspace_id: str, **kwargs: Any) -> Any:
        if kwargs["customer_id"] == ann_id:
            raise RuntimeError("connection lost")
        return real(session, workspace_id, **kwargs)

    monkeypatch.setattr(steps.send_service, "enqueue", flaky)
    report = round_(db)
    assert report.retried == 1 and report.runs == 2
    assert trace(db, ann) == [("entry", "entered")]  # the split's row went with the savepoint
    assert sorted(step for step, _ in trace(db, bob)) == ["end", "entry", "hello", "split"]
    (row,) = [r for r in runs(db, journey) if r.id == ann]
    assert row.state == "active" and row.step_id == "split" and row.context["errors"] == 1
    assert "variants" not in row.context and row.steps_taken == 0  # the split went with the savepoint

    monkeypatch.setattr(steps.send_service, "enqueue", real)
    with db.session(write=True) as s:
        assert executor.run_due(s, clock.now() + timedelta(minutes=5)).runs == 1
    assert sorted(step for step, _ in trace(db, ann)) == ["end", "entry", "hello", "split"]
    assert len(sends(db, journey)) == 2


def test_a_run_is_written_once_a_round_however_many_steps_it_takes(db: Database, shop: WorkspaceKeys) -> None:
    definition = {
        "trigger": API,
        "steps": [
            {"id": "split", "type": "split", "variants": [{"name": "a", "next": "tag"}, {"name": "b", "next": "tag"}]},
            {"id": "tag", "type": "update_trait", "traits": {"stage": "welcomed"}},
            {
                "id": "check",
                "type": "branch",
                "cases": [{"condition": {"trait": {"key": "stage", "op": "eq", "value": "welcomed"}}, "next": "hello"}],
                "else": "end",
            },
            {"id": "hello", "type": "send", "channel": "email", "template": "welcome"},
            {"id": "later", "type": "wait", "duration": "1h"},
        ],
    }
    journey = make_journey(db, shop.id, definition)
    run_ids = [
        enter(db, journey, make_customer(db, shop.id, f"c{n}", email=f"c{n}@example.com"), f"k{n}") for n in range(3)
    ]
    with statements(db) as seen:
        report = round_(db)
    assert report.steps == 15
    assert len([sql for sql in seen if sql.startswith("UPDATE journey_runs")]) == 3
    # And what was written is the whole of each run's new position.
    for run in runs(db, journey):
        assert run.id in run_ids
        assert run.step_id == "later" and run.steps_taken == 5 and run.state == "active"
        assert run.context["wait"] == "later" and run.context["variants"]["split"] in ("a", "b")
        assert set(run.context["sends"]) == {"hello"}
        assert run.next_run_at is not None and run.next_run_at > clock.now()
    # The branch saw the trait the step before it set (its customer flushed, not held back).
    assert {step for run_id in run_ids for step, outcome in trace(db, run_id) if outcome == "case:0"} == {"check"}
