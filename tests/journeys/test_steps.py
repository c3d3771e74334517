"""Every step kind, driven by a simulated clock (no sleeps): the executor takes each run as far
as it goes, and waits, branches and goals behave as the definition says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.customers.models import Customer
from shopkeeper.db.session import Database
from shopkeeper.errors import Invalid
from shopkeeper.inbox.models import Conversation
from shopkeeper.journeys import monitor, service
from shopkeeper.journeys.models import Alert
from shopkeeper.journeys.worker import JourneyWorker
from shopkeeper.messaging.models import Send
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer
from tests.journeys.factories import journey_row, make_journey, runs, sends, trace, track
from tests.messaging.factories import make_template


@pytest.fixture
def shop(db: Database, frozen_clock: FrozenClock, workspace: WorkspaceKeys) -> WorkspaceKeys:
    make_template(db, workspace.id)
    return workspace


def drain(db: Database) -> None:
    JourneyWorker(db).drain(clock.now())


def send_then(*steps: dict[str, Any], trigger: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "trigger": trigger or {"type": "event", "event": "Signed Up"},
        "steps": [{"id": "hello", "type": "send", "channel": "email", "template": "welcome"}, *steps],
        **extra,
    }


def test_an_event_enters_once_with_its_filter_and_a_retried_event_changes_nothing(
    db: Database, shop: WorkspaceKeys
) -> None:
    make_customer(db, shop.id, "ann", email="ann@example.com")
    journey = make_journey(
        db,
        shop.id,
        send_then(
            trigger={
                "type": "event",
                "event": "Order Completed",
                "where": [{"property": "total", "op": "gt", "value": 50}],
            }
        ),
    )
    track(db, shop.id, "ann", "Order Completed", total=20)
    drain(db)
    assert runs(db, journey) == []
    track(db, shop.id, "ann", "Order Completed", total=80)
    drain(db)
    drain(db)  # the sweep re-reads the same events: no second entry, no second send
    (run,) = runs(db, journey)
    assert run.state == "completed"
    assert run.context["trigger"]["properties"] == {"total": 80}
    (send,) = sends(db, journey)
    assert send.idempotency_key == f"journey:{run.id}:hello:0"
    assert send.source == "journey" and send.data["trigger"]["properties"] == {"total": 80}
    track(db, shop.id, "ann", "Order Completed", total=90)
    drain(db)
    assert len(runs(db, journey)) == 1  # re-entry "never" is the default


def test_reentry_after_exit_with_a_cooldown(db: Database, shop: WorkspaceKeys, frozen_clock: FrozenClock) -> None:
    make_customer(db, shop.id, "ann", email="ann@example.com")
    journey = make_journey(db, shop.id, send_then(reentry={"policy": "after_exit", "cooldown": "1d"}))
    track(db, shop.id, "ann", "Signed Up")
    drain(db)
    frozen_clock.advance(timedelta(hours=2))
    track(db, shop.id, "ann", "Signed Up")
    drain(db)
    assert len(runs(db, journey)) == 1
    frozen_clock.advance(timedelta(days=1))
    track(db, shop.id, "ann", "Signed Up")
    drain(db)
    assert len(runs(db, journey)) == 2


def test_wait_for_a_duration_then_branch_on_engagement(
    db: Database, shop: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    make_customer(db, shop.id, "ann", email="ann@example.com")
    make_customer(db, shop.id, "bob", email="bob@example.com")
    journey = make_journey(
        db,
        shop.id,
        send_then(
            {"id": "pause", "type": "wait", "duration": "1d"},
            {
                "id": "check",
                "type": "branch",
                "cases": [{"engaged": {"step": "hello", "status": "opened"}, "next": "end"}],
                "else": "again",
            },
            {"id": "again", "type": "send", "channel": "email", "template": "welcome"},
        ),
    )
    track(db, shop.id, "ann", "Signed Up")
    track(db, shop.id, "bob", "Signed Up")
    drain(db)
    first = {s.customer_id: s for s in sends(db, journey)}
    assert len(first) == 2 and all(r.step_id == "pause" for r in runs(db, journey))
    ann = make_customer(db, shop.id, "ann")
    with db.session(write=True) as s:
        opened = s.get(Send, first[ann].id)
        assert opened is not None
        opened.status = "opened"
    frozen_clock.advance(timedelta(hours=23))
    drain(db)
    assert len(sends(db, journey)) == 2  # not yet a day
    frozen_clock.advance(timedelta(hours=1))
    drain(db)
    by_customer: dict[str, int] = {}
    for send in sends(db, journey):
        by_customer[send.customer_id] = by_customer.get(send.customer_id, 0) + 1
    assert by_customer[ann] == 1 and sorted(by_customer.values()) == [1, 2]
    ann_run = next(r for r in runs(db, journey) if r.customer_id == ann)
    # The trace reads in the order the steps were taken, also within one instant.
    assert trace(db, ann_run.id) == [
        ("entry", "entered"),
        ("hello", "sent"),
        ("pause", "waiting"),
        ("pause", "waited"),
        ("check", "case:0"),
        ("end", "completed"),
    ]


def test_wait_until_local_time_of_day_in_the_customers_zone(
    db: Database, shop: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    make_customer(db, shop.id, "ann", email="ann@example.com", timezone="America/New_York")
    journey = make_journey(
        db,
        shop.id,
        send_then(trigger={"type": "event", "event": "Signed Up"})
        | {
            "steps": [
                {"id": "morning", "type": "wait", "until_time": "09:00"},
                {"id": "hello", "type": "send", "channel": "email", "template": "welcome"},
            ]
        },
    )
    frozen_clock.set(datetime(2026, 3, 7, 20, 0, tzinfo=UTC))  # 15:00 in New York
    track(db, shop.id, "ann", "Signed Up")
    drain(db)
    (run,) = runs(db, journey)
    # 09:00 New York on 8 March 2026 is already daylight time (the clocks went forward at 02:00).
    assert run.next_run_at == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_wait_for_an_event_or_time_out(db: Database, shop: WorkspaceKeys, frozen_clock: FrozenClock) -> None:
    make_customer(db, shop.id, "ann", email="ann@example.com")
    make_customer(db, shop.id, "bob", email="bob@example.com")
    journey = make_journey(
        db,
        shop.id,
        {
            "trigger": {"type": "event", "event": "Cart Abandoned"},
            "steps": [
                {
                    "id": "paid",
                    "type": "wait",
                    "until_event": {"event": "Order Completed"},
                    "timeout": "1h",
                    "on_timeout": "remind",
                },
                {"id": "thanks", "type": "update_trait", "traits": {"came_back": True}, "next": "end"},
                {"id": "remind", "type": "send", "channel": "email", "template": "welcome"},
            ],
        },
    )
    track(db, shop.id, "ann", "Cart Abandoned")
    track(db, shop.id, "bob", "Cart Abandoned")
    drain(db)
    assert {r.state for r in runs(db, journey)} == {"waiting"}
    frozen_clock.advance(timedelta(minutes=10))
    track(db, shop.id, "ann", "Order Completed")
    drain(db)
    frozen_clock.advance(timedelta(hours=1))
    drain(db)
    states = {r.customer_id: r for r in runs(db, journey)}
    ann, bob = make_customer(db, shop.id, "ann"), make_customer(db, shop.id, "bob")
    assert ("paid", "event") in trace(db, states[ann].id)
    assert ("paid", "timeout") in trace(db, states[bob].id)
    with db.session() as s:
        ann_row = s.get(Customer, ann)
        assert ann_row is not None and ann_row.traits.get("came_back") is True
    assert [s.customer_id for s in sends(db, journey)] == [bob]


def test_split_is_deterministic_per_customer_and_holdout_keeps_a_control_group(
    db: Database, shop: WorkspaceKeys
) -> None:
    for i in range(60):
        make_customer(db, shop.id, f"u{i}", email=f"u{i}@example.com")
    definition = {
        "trigger": {"type": "event", "event": "Signed Up"},
        "steps": [
            {"id": "control", "type": "holdout", "percent": 20},
            {
                "id": "ab",
                "type": "split",
                "variants": [{"name": "a", "next": "send-a"}, {"name": "b", "next": "send-b"}],
            },
            {"id": "send-a", "type": "send", "channel": "email", "template": "welcome", "next": "end"},
            {"id": "send-b", "type": "send", "channel": "sms", "template": "welcome", "next": "end"},
        ],
    }
    journey = make_journey(db, shop.id, definition)
    for i in range(60):
        track(db, shop.id, f"u{i}", "Signed Up")
    drain(db)
    all_runs = runs(db, journey)
    held = [r for r in all_runs if r.holdout]
    assert 4 <= len(held) <= 22 and all(r.exit_reason == "holdout" for r in held)
    treated = [r for r in all_runs if not r.holdout]
    variants = [r.context["variants"]["ab"] for r in treated]
    assert set(variants) == {"a", "b"}
    held_customers = {r.customer_id for r in held}
    assert not held_customers & {s.customer_id for s in sends(db, journey)}
    # The same customers land in the same places in another journey of the same definition? No:
    # the bucket includes the journey, but within one journey it never changes.
    from shopkeeper.journeys.steps import bucket

    assert all(bucket(journey, "holdout", r.customer_id) < 20 for r in held)


def test_a_customer_inside_finishes_on_the_version_they_entered(
    db: Database, shop: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    make_customer(db, shop.id, "ann", email="ann@example.com")
    make_customer(db, shop.id, "bob", email="bob@example.com")
    journey = make_journey(
        db,
        shop.id,
        send_then(
            {"id": "pause", "type": "wait", "duration": "1d"},
            {"id": "v1-only", "type": "update_trait", "traits": {"version": 1}},
        ),
    )
    track(db, shop.id, "ann", "Signed Up")
    drain(db)
    with db.session(write=True) as s:
        row = service.get(s, shop.id, "welcome")
        service.change(
            s, row, send_then({"id": "v2-only", "type": "update_trait", "traits": {"version": 2}}), "test", clock.now()
        )
    track(db, shop.id, "bob", "Signed Up")
    frozen_clock.advance(timedelta(days=1))
    drain(db)
    versions = {r.customer_id: r.version for r in runs(db, journey)}
    assert sorted(versions.values()) == [1, 2]
    with db.session() as s:
        traits = {
            c.id: c.traits.get("version") for c in s.scalars(select(Customer).where(Customer.workspace_id == shop.id))
        }
    assert {traits[c] for c in versions} == {1, 2}
    assert all(traits[c] == v for c, v in versions.items())


def test_exit_event_and_goal_conversion(db: Database, shop: WorkspaceKeys, frozen_clock: FrozenClock) -> None:
    for name in ("ann", "bob", "cat"):
        make_customer(db, shop.id, name, email=f"{name}@example.com")
    journey = make_journey(
        db,
        shop.id,
        send_then(
            {"id": "pause", "type": "wait", "duration": "3d"},
            {"id": "again", "type": "send", "channel": "email", "template": "welcome"},
            exit=[{"event": "Unsubscribed"}],
            goal={"event": "Order Completed", "within": "7d"},
        ),
    )
    for name in ("ann", "bob", "cat"):
        track(db, shop.id, name, "Signed Up")
    drain(db)
    frozen_clock.advance(timedelta(hours=1))
    track(db, shop.id, "ann", "Order Completed", total=10)
    track(db, shop.id, "bob", "Unsubscribed")
    drain(db)
    frozen_clock.advance(timedelta(days=3))
    drain(db)
    result = {r.customer_id: r for r in runs(db, journey)}
    ann, bob, cat = (make_customer(db, shop.id, n) for n in ("ann", "bob", "cat"))
    assert result[ann].exit_reason == "goal" and result[ann].converted_at is not None
    assert result[bob].exit_reason == "exit event Unsubscribed"
    assert result[cat].state == "completed" and result[cat].converted_at is None
    assert sorted(s.customer_id for s in sends(db, journey)).count(cat) == 2
    with db.session() as s:
        stats = monitor.stats(s, journey_row(db, journey))
    assert stats.entered == 3 and stats.converted == 1
    assert stats.steps["hello"]["messages"]["sent"] + stats.steps["hello"]["messages"]["queued"] == 3


def test_create_conversation_hands_the_customer_to_an_agent(db: Database, shop: WorkspaceKeys) -> None:
    customer = make_customer(db, shop.id, "ann", email="ann@example.com")
    journey = make_journey(
        db,
        shop.id,
        {
            "trigger": {"type": "event", "event": "Complaint Escalated"},
            "steps": [{"type": "create_conversation", "priority": "high", "tags": ["vip"], "note": "Call her back"}],
        },
    )
    track(db, shop.id, "ann", "Complaint Escalated")
    drain(db)
    with db.session() as s:
        (conversation,) = s.scalars(select(Conversation).where(Conversation.workspace_id == shop.id))
    assert conversation.customer_id == customer and conversation.priority == "high" and conversation.tags == ["vip"]
    assert conversation.data["journey_id"] == journey


def test_a_step_that_cannot_be_done_fails_its_run_alone(db: Database, shop: WorkspaceKeys) -> None:
    make_customer(db, shop.id, "ann", email="ann@example.com")
    make_customer(db, shop.id, "bob", phone="+447911123401")
    journey = make_journey(db, shop.id, send_then())
    track(db, shop.id, "ann", "Signed Up")
    track(db, shop.id, "bob", "Signed Up")
    drain(db)
    # Bob has no email address: the pipeline skips his message later; the run itself completes.
    assert {r.state for r in runs(db, journey)} == {"completed"}


def test_definitions_are_checked_against_the_workspace(db: Database, shop: WorkspaceKeys) -> None:
    with db.session() as s, pytest.raises(Invalid) as info:
        service.check(
            s,
            shop.id,
            {"trigger": {"type": "api"}, "steps": [{"type": "send", "channel": "push", "template": "welcome"}]},
        )
    assert info.value.field == "steps[0] (step-1).template"
    with db.session() as s, pytest.raises(Invalid) as info:
        service.check(
            s,
            shop.id,
            {"trigger": {"type": "segment_entered", "segment": "nobody"}, "steps": [{"type": "wait", "duration": 5}]},
        )
    assert info.value.field == "trigger.segment"


def test_circuit_breaker_pauses_on_bounces_and_a_person_resumes(
    db: Database, shop: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    for i in range(12):
        make_customer(db, shop.id, f"u{i}", email=f"u{i}@example.com")
    journey = make_journey(db, shop.id, send_then(monitor={"bounce_rate": 0.2, "min_sends": 10}))
    for i in range(12):
        track(db, shop.id, f"u{i}", "Signed Up")
    drain(db)
    with db.session(write=True) as s:
        for n, send in enumerate(s.scalars(select(Send).where(Send.source == "journey"))):
            send.status = "bounced" if n < 4 else "delivered"
    drain(db)
    row = journey_row(db, journey)
    assert row.status == "paused" and row.paused_by == "monitor" and "bounce rate 33.3%" in (row.paused_reason or "")
    with db.session() as s:
        (alert,) = s.scalars(select(Alert).where(Alert.subject_id == journey))
    assert alert.kind == "bounce_rate" and alert.action == "paused"
    make_customer(db, shop.id, "late", email="late@example.com")
    track(db, shop.id, "late", "Signed Up")
    drain(db)
    assert len(runs(db, journey)) == 12  # paused: nobody enters
    frozen_clock.advance(timedelta(minutes=1))
    with db.session(write=True) as s:
        service.resume(s, service.get(s, shop.id, "welcome"), "user:marketer", clock.now())
    drain(db)
    assert journey_row(db, journey).status == "active"  # a fresh window: the old bounces do not count
    with db.session() as s:
        (alert,) = s.scalars(select(Alert).where(Alert.subject_id == journey))
    assert alert.resolved_by == "user:marketer"


def test_an_auto_send_takes_kind_and_topic_from_its_template(db: Database, shop: WorkspaceKeys) -> None:
    """Neither step says kind or topic: the consent check asks about what the template sends."""
    from tests.consent.factories import make_topic, set_status

    make_topic(db, shop.id, "offers", channels=("email", "sms"))
    make_template(db, shop.id, "promo", kind="marketing", topic="offers")
    ann = make_customer(db, shop.id, "ann", email="ann@example.com")
    set_status(db, shop.id, ann, "email", "offers", "opted_in")
    journey = make_journey(
        db,
        shop.id,
        {
            "trigger": {"type": "event", "event": "Signed Up"},
            "steps": [
                {"id": "hello", "type": "send", "channel": "auto", "template": "welcome"},
                {"id": "promo", "type": "send", "channel": "auto", "channels": ["email", "sms"], "template": "promo"},
            ],
        },
    )
    track(db, shop.id, "ann", "Signed Up")
    drain(db)
    (run,) = runs(db, journey)
    assert run.state == "completed", run.exit_reason
    assert [(s.channel, s.kind, s.topic) for s in sends(db, journey)] == [
        ("email", "transactional", None),
        ("email", "marketing", "offers"),
    ]
