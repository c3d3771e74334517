"""`channel: auto` on the database (SPEC §8): the customer's preference first, never a channel they
cannot be reached or are not consented on, every decision explained; learning from each send's
outcome exactly once; send time at the customer's usual local hour."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.principal import Principal
from shopkeeper.clock import FrozenClock
from shopkeeper.consent import service as consent
from shopkeeper.db.session import Database
from shopkeeper.journeys import optimiser
from shopkeeper.journeys.bandit import Counts
from shopkeeper.journeys.optimiser import (
    ChannelChoice,
    best_send_time,
    choose_channel,
    record_conversion,
    record_decision,
)
from shopkeeper.journeys.optimiser_models import ChannelDecision, ChannelStats, CustomerChannelStats
from shopkeeper.messaging import send_service, status
from shopkeeper.messaging.models import Send
from shopkeeper.privacy import erasure, export
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, make_topic, set_settings, set_status
from tests.helpers import ingest, message
from tests.messaging.factories import add_provider, make_template

pytestmark = pytest.mark.usefixtures("frozen_clock")


def choose(db: Database, ws: str, customer_id: str, seed: int = 1, **kw: Any) -> ChannelChoice:
    kw.setdefault("candidates", None)
    kw.setdefault("kind", "marketing")
    kw.setdefault("topic", "offers")
    kw.setdefault("value", 1.0)
    with db.session() as s:
        return choose_channel(s, ws, customer_id, now=clock.now(), rng=random.Random(seed), **kw)


def shopper(db: Database, ws: str, name: str = "ann", **kw: Any) -> str:
    kw.setdefault("email", f"{name}@example.com")
    kw.setdefault("phone", "+14155550100")
    return make_customer(db, ws, name, **kw)


def opted_in(db: Database, ws: str, customer_id: str, *channels: str) -> None:
    for channel in channels:
        set_status(db, ws, customer_id, channel, "offers", "opted_in")


def prefer(db: Database, ws: str, customer_id: str, channel: str) -> None:
    with db.session(write=True) as s:
        consent.set_preference(
            s, ws, customer_id, preferred_channel=channel, frequency="any", quiet_start=None, quiet_end=None,
            now=clock.now(),
        )  # fmt: skip


def seed_population(db: Database, ws: str, **counts: tuple[int, int]) -> None:
    """The workspace's history per channel: (trials, successes)."""
    with db.session(write=True) as s:
        for channel, (trials, successes) in counts.items():
            s.add(
                ChannelStats(
                    workspace_id=ws,
                    channel=channel,
                    shard=0,
                    trials=trials,
                    successes=successes,
                    failures=0,
                    updated_at=clock.now(),
                )
            )


# -- choosing ---------------------------------------------------------------------------------


def test_the_customers_preferred_channel_wins(db: Database, workspace: WorkspaceKeys) -> None:
    make_topic(db, workspace.id)
    ann = shopper(db, workspace.id)
    opted_in(db, workspace.id, ann, "email", "sms")
    # Email would win on expected value by far; her word wins over it.
    seed_population(db, workspace.id, email=(1000, 600), sms=(1000, 10))
    prefer(db, workspace.id, ann, "sms")

    choice = choose(db, workspace.id, ann, candidates=["email", "sms"])

    assert choice.channel == "sms"
    assert choice.by == "preference"
    assert choice.reason == "preferred channel sms"
    # The figures are there to explain it all the same.
    assert {f.channel: f.consent for f in choice.figures} == {"email": "allow", "sms": "allow"}
    email = choice.figure("email")
    assert email is not None and email.estimate is not None
    assert email.estimate.expected_value > 0.5


def test_a_preferred_channel_that_is_refused_gives_way_to_expected_value(
    db: Database, workspace: WorkspaceKeys
) -> None:
    make_topic(db, workspace.id)
    ann = shopper(db, workspace.id)
    opted_in(db, workspace.id, ann, "email")
    set_status(db, workspace.id, ann, "sms", "offers", "opted_out")
    prefer(db, workspace.id, ann, "sms")

    choice = choose(db, workspace.id, ann, candidates=["email", "sms"])

    assert choice.channel == "email"
    assert choice.by == "expected_value"
    assert choice.reason.startswith("preferred channel sms is denied (opted_out); only channel available email")
    assert choice.reason.endswith("; sms denied opted_out")


def test_unreachable_and_unconsented_channels_are_never_chosen(db: Database, workspace: WorkspaceKeys) -> None:
    make_topic(db, workspace.id, channels=("email", "sms", "push", "whatsapp"))
    ann = shopper(db, workspace.id, phone=None)  # no phone: no SMS, no WhatsApp; no device: no push
    opted_in(db, workspace.id, ann, "email")
    # The other channels look far better, were they allowed.
    seed_population(
        db, workspace.id, email=(1000, 10), sms=(1000, 900), push=(1000, 900), whatsapp=(1000, 900), chat=(1000, 900)
    )

    choices = [choose(db, workspace.id, ann, seed=seed) for seed in range(30)]

    assert {c.channel for c in choices} == {"email"}
    figures = {f.channel: f for f in choices[0].figures}
    assert [f.channel for f in choices[0].figures] == ["email", "sms", "push", "whatsapp", "chat"]
    assert {c: (f.consent, f.consent_reason) for c, f in figures.items()} == {
        "email": ("allow", "ok"),
        "sms": ("deny", "no_address"),
        "push": ("deny", "no_address"),
        "whatsapp": ("deny", "no_address"),
        "chat": ("deny", "topic_not_on_channel"),
    }
    assert all(f.estimate is None for c, f in figures.items() if c != "email")
    assert choices[0].reason.endswith(
        "; sms unreachable; push unreachable; whatsapp unreachable; chat denied topic_not_on_channel"
    )


def test_no_channel_when_none_is_reachable_and_consented(db: Database, workspace: WorkspaceKeys) -> None:
    make_topic(db, workspace.id)
    ann = shopper(db, workspace.id, phone=None)

    choice = choose(db, workspace.id, ann, candidates=["email", "sms"])

    assert choice.channel is None
    assert choice.by == "none"
    assert choice.reason == "no channel: email denied not_opted_in; sms unreachable"
    assert choice.as_dict()["figures"][0]["consent_reason"] == "not_opted_in"


def test_a_delayed_channel_is_still_reachable(
    db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    make_topic(db, workspace.id)
    ann = shopper(db, workspace.id, timezone="UTC")
    opted_in(db, workspace.id, ann, "email")
    frozen_clock.set(datetime(2026, 3, 1, 23, 0, tzinfo=UTC))  # quiet hours: 21:00-08:00

    choice = choose(db, workspace.id, ann, candidates=["email"])

    assert choice.channel == "email"
    figure = choice.figure()
    assert figure is not None and figure.consent == "delay"
    assert figure.until == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_learnt_engagement_decides_by_expected_value(db: Database, workspace: WorkspaceKeys) -> None:
    make_topic(db, workspace.id)
    ann = shopper(db, workspace.id)
    opted_in(db, workspace.id, ann, "email", "sms")
    seed_population(db, workspace.id, email=(2000, 100), sms=(2000, 1000))

    choice = choose(db, workspace.id, ann, candidates=["email", "sms"], value=2.0)

    assert choice.channel == "sms"
    sms, email = choice.figure("sms"), choice.figure("email")
    assert sms is not None and sms.estimate is not None and email is not None and email.estimate is not None
    assert sms.estimate.p == pytest.approx(0.5, abs=0.05)
    assert sms.estimate.cost == optimiser.DEFAULT_COSTS["sms"]
    assert sms.estimate.expected_value == pytest.approx(sms.estimate.p * 2.0 - 0.05)
    assert sms.population == Counts(2000, 1000, 0)
    assert choice.reason.startswith(f"expected value sms {sms.estimate.expected_value:.2f} > email ")
    assert "(sms: p 0.5" in choice.reason


def test_a_cheap_channel_beats_a_dear_one_that_engages_a_little_more(db: Database, workspace: WorkspaceKeys) -> None:
    make_topic(db, workspace.id)
    ann = shopper(db, workspace.id)
    opted_in(db, workspace.id, ann, "email", "sms")
    seed_population(db, workspace.id, email=(5000, 1500), sms=(5000, 1600))
    set_settings(db, workspace.id, channel_optimiser={"costs": {"sms": 0.5}})

    assert choose(db, workspace.id, ann, candidates=["email", "sms"]).channel == "email"
    assert choose(db, workspace.id, ann, candidates=["email", "sms"], value=100.0).channel == "sms"


def test_costs_come_from_the_first_enabled_provider_else_settings_else_defaults(
    db: Database, workspace: WorkspaceKeys
) -> None:
    add_provider(db, workspace.id, channel="sms", name="cheap-but-off", type="dev", priority=0, cost_per_unit=0.001)
    with db.session(write=True) as s:
        s.execute(text("UPDATE channel_providers SET enabled = false WHERE name = 'cheap-but-off'"))
    add_provider(db, workspace.id, channel="sms", name="primary", type="dev", priority=1, cost_per_unit=0.07)
    add_provider(db, workspace.id, channel="sms", name="backup", type="dev", priority=2, cost_per_unit=0.01)
    add_provider(db, workspace.id, channel="email", name="no-price", type="dev", priority=0)
    set_settings(db, workspace.id, channel_optimiser={"costs": {"email": 0.002}})
    with db.session() as s:
        costs = optimiser.channel_costs(s, workspace.id, ["sms", "email", "push"])
    assert costs == {"sms": 0.07, "email": 0.002, "push": optimiser.DEFAULT_COSTS["push"]}
    assert optimiser.DEFAULT_COSTS["email"] == min(optimiser.DEFAULT_COSTS.values())
    assert optimiser.DEFAULT_COSTS["sms"] == max(optimiser.DEFAULT_COSTS.values())


def test_bad_settings_and_candidates_are_refused_with_the_field(db: Database, workspace: WorkspaceKeys) -> None:
    from shopkeeper.errors import Invalid

    ann = shopper(db, workspace.id)
    with pytest.raises(Invalid) as bad_channel:
        choose(db, workspace.id, ann, candidates=["email", "pigeon"])
    assert bad_channel.value.field == "channels"
    set_settings(db, workspace.id, channel_optimiser={"costs": {"sms": -1}})
    with pytest.raises(Invalid) as bad_cost:
        choose(db, workspace.id, ann, candidates=["email"], kind="transactional", topic=None)
    assert bad_cost.value.field is not None and bad_cost.value.field.startswith("channel_optimiser.costs")


# -- learning ---------------------------------------------------------------------------------


def send_auto(db: Database, ws: str, customer_id: str, key: str, seed: int = 1) -> str:
    """What the executor does: choose, enqueue on the channel chosen, record the decision."""
    with db.session(write=True) as s:
        choice = choose_channel(
            s,
            ws,
            customer_id,
            candidates=["email", "sms"],
            kind="transactional",
            topic=None,
            now=clock.now(),
            value=1.0,
            rng=random.Random(seed),
        )
        assert choice.channel is not None
        send, _ = send_service.enqueue(
            s,
            ws,
            customer_id=customer_id,
            channel=choice.channel,
            now=clock.now(),
            template="welcome",
            idempotency_key=key,
            source="journey",
        )
        assert record_decision(s, choice, send)
        assert not record_decision(s, choice, send)  # a retry counts nothing more
        return send.id


def move(db: Database, send_id: str, new_status: str, at: datetime | None = None) -> bool:
    with db.session(write=True) as s:
        send = s.get(Send, send_id)
        assert send is not None
        return status.record(s, send, new_status, at or clock.now(), "test")


def customer_stats(db: Database, ws: str, customer_id: str) -> dict[str, tuple[int, int, int]]:
    with db.session() as s:
        rows = s.scalars(
            select(CustomerChannelStats).where(
                CustomerChannelStats.workspace_id == ws, CustomerChannelStats.customer_id == customer_id
            )
        )
        return {r.channel: (r.trials, r.successes, r.failures) for r in rows}


def workspace_stats(db: Database, ws: str) -> dict[str, tuple[int, int, int]]:
    with db.session() as s:
        counts = optimiser.population_counts(s, ws, optimiser.JOURNEY_CHANNELS)
    return {c: (n.trials, n.successes, n.failures) for c, n in counts.items()}


def decision(db: Database, send_id: str) -> ChannelDecision:
    with db.session() as s:
        row = s.get(ChannelDecision, send_id)
        assert row is not None
        return row


@pytest.fixture
def emailable(db: Database, workspace: WorkspaceKeys) -> str:
    """A customer only email reaches, and the template the sends use."""
    make_template(db, workspace.id)
    return shopper(db, workspace.id, phone=None)


def test_a_move_to_opened_counts_once_however_often_it_is_reported(
    db: Database, workspace: WorkspaceKeys, emailable: str
) -> None:
    send_id = send_auto(db, workspace.id, emailable, "k1")
    assert customer_stats(db, workspace.id, emailable) == {"email": (1, 0, 0)}
    assert workspace_stats(db, workspace.id) == {"email": (1, 0, 0)}

    assert move(db, send_id, "delivered")
    assert move(db, send_id, "opened")
    assert not move(db, send_id, "opened")  # a second open: history only
    assert move(db, send_id, "clicked")  # further along, but the same engagement

    assert customer_stats(db, workspace.id, emailable) == {"email": (1, 1, 0)}
    assert workspace_stats(db, workspace.id) == {"email": (1, 1, 0)}
    row = decision(db, send_id)
    assert row.engaged_at == clock.now() and row.failed_at is None
    assert row.channel == "email" and row.reason.startswith("only channel available email")
    assert [f["channel"] for f in row.figures] == ["email", "sms"]


def test_a_bounce_counts_as_a_failure(db: Database, workspace: WorkspaceKeys, emailable: str) -> None:
    send_id = send_auto(db, workspace.id, emailable, "k1")
    assert move(db, send_id, "sent")
    assert move(db, send_id, "bounced")
    assert not move(db, send_id, "opened")  # a bounce is final
    assert customer_stats(db, workspace.id, emailable) == {"email": (1, 0, 1)}
    assert workspace_stats(db, workspace.id) == {"email": (1, 0, 1)}
    assert decision(db, send_id).failed_at == clock.now()


def test_a_complaint_takes_back_the_engagement_before_it(
    db: Database, workspace: WorkspaceKeys, emailable: str
) -> None:
    send_id = send_auto(db, workspace.id, emailable, "k1")
    assert move(db, send_id, "opened")
    assert customer_stats(db, workspace.id, emailable) == {"email": (1, 1, 0)}
    assert move(db, send_id, "complained")
    assert customer_stats(db, workspace.id, emailable) == {"email": (1, 0, 1)}
    assert workspace_stats(db, workspace.id) == {"email": (1, 0, 1)}


def test_a_conversion_counts_as_engagement_unless_counted_already(
    db: Database, workspace: WorkspaceKeys, emailable: str
) -> None:
    first = send_auto(db, workspace.id, emailable, "k1")
    second = send_auto(db, workspace.id, emailable, "k2")
    with db.session(write=True) as s:
        assert record_conversion(s, workspace.id, first, clock.now())
        assert not record_conversion(s, workspace.id, first, clock.now())
    assert customer_stats(db, workspace.id, emailable) == {"email": (2, 1, 0)}
    assert move(db, first, "opened")  # engaged already: not counted again
    assert move(db, second, "opened")
    with db.session(write=True) as s:
        assert record_conversion(s, workspace.id, second, clock.now())
        assert not record_conversion(s, workspace.id, "snd_not_logged", clock.now())
    assert customer_stats(db, workspace.id, emailable) == {"email": (2, 2, 0)}
    assert decision(db, second).converted_at == clock.now()


def test_sends_not_chosen_by_the_optimiser_teach_it_nothing(
    db: Database, workspace: WorkspaceKeys, emailable: str
) -> None:
    with db.session(write=True) as s:
        send, _ = send_service.enqueue(
            s, workspace.id, customer_id=emailable, channel="email", now=clock.now(), template="welcome"
        )
        send_id = send.id
    assert move(db, send_id, "opened")
    assert customer_stats(db, workspace.id, emailable) == {}
    assert workspace_stats(db, workspace.id) == {}


def test_the_customers_own_history_moves_their_estimate(db: Database, workspace: WorkspaceKeys, emailable: str) -> None:
    seed_population(db, workspace.id, email=(10_000, 3_000))
    for i in range(10):
        send_auto(db, workspace.id, emailable, f"k{i}")  # ten sends, none opened
    with db.session() as s:
        own = optimiser.customer_counts(s, workspace.id, emailable, ["email"])
    assert own == {"email": Counts(10, 0, 0)}
    figure = choose(db, workspace.id, emailable, candidates=["email"], kind="transactional", topic=None).figure()
    assert figure is not None and figure.estimate is not None
    assert figure.estimate.mean == pytest.approx(0.15, abs=0.01)  # half the population's 0.30


def test_concurrent_writers_take_separate_shards_without_waiting(db: Database, workspace: WorkspaceKeys) -> None:
    """On PostgreSQL, a transaction holding the workspace's email counts does not make another wait."""
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time")
    make_template(db, workspace.id)
    ann, bob = shopper(db, workspace.id, "ann", phone=None), shopper(db, workspace.id, "bob", phone=None)
    seed_population(db, workspace.id, email=(0, 0))  # one shard, which the first transaction takes
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with db.session(write=True) as s:
                _auto_in(s, workspace.id, ann, "a")
                holding.set()
                release.wait(10)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            holding.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert holding.wait(10)
    try:
        with db.session(write=True) as s:
            s.execute(text("SET LOCAL lock_timeout = '2s'"))
            _auto_in(s, workspace.id, bob, "b")
    finally:
        release.set()
        thread.join(10)
    assert not errors
    assert workspace_stats(db, workspace.id) == {"email": (2, 0, 0)}
    with db.session() as s:
        shards = s.scalars(select(ChannelStats.shard).where(ChannelStats.workspace_id == workspace.id)).all()
    assert len(shards) == 2


def _auto_in(s: Session, ws: str, customer_id: str, key: str) -> None:
    choice = choose_channel(
        s, ws, customer_id, candidates=["email"], kind="transactional", topic=None, now=clock.now(), value=1.0,
        rng=random.Random(1),
    )  # fmt: skip
    send, _ = send_service.enqueue(
        s, ws, customer_id=customer_id, channel="email", now=clock.now(), template="welcome", idempotency_key=key
    )
    record_decision(s, choice, send)


def test_a_journeys_auto_send_goes_by_the_chosen_channel_and_learns_from_it(
    db: Database, workspace: WorkspaceKeys, emailable: str
) -> None:
    """Through the executor: choose, enqueue, log; the step's trace says why; the open counts."""
    from shopkeeper.journeys.models import JourneyStep
    from shopkeeper.journeys.worker import JourneyWorker
    from tests.journeys.factories import make_journey, sends, track

    journey = make_journey(
        db,
        workspace.id,
        {
            "trigger": {"type": "event", "event": "Signed Up"},
            "steps": [
                {
                    "id": "hello",
                    "type": "send",
                    "channel": "auto",
                    "channels": ["sms", "email"],
                    "template": "welcome",
                    "kind": "transactional",
                    "value": 3,
                }
            ],
        },
    )
    track(db, workspace.id, "ann", "Signed Up")
    JourneyWorker(db).drain(clock.now())

    [send] = sends(db, journey)
    assert send.channel == "email"  # she has no phone
    row = decision(db, send.id)
    assert (row.customer_id, row.channel, row.value) == (emailable, "email", 3.0)
    with db.session() as s:
        detail = s.scalars(
            select(JourneyStep.detail).where(JourneyStep.journey_id == journey, JourneyStep.outcome == "sent")
        ).one()
    assert detail["why"] == row.reason
    assert row.reason.startswith("only channel available email") and row.reason.endswith("; sms unreachable")

    assert move(db, send.id, "opened")
    assert customer_stats(db, workspace.id, emailable) == {"email": (1, 1, 0)}


def test_the_server_process_learns_from_outcomes() -> None:
    """Opens and clicks arrive at the server (tracking links, status webhooks), which may never have
    chosen a channel itself: its listener must be there from the start."""
    probe = (
        "import shopkeeper.app\n"
        "from shopkeeper.messaging import status\n"
        "print(sorted({l.__module__ for l in status._listeners}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert "shopkeeper.journeys.optimiser" in out.stdout


# -- privacy ----------------------------------------------------------------------------------


def test_export_holds_and_erasure_removes_the_customers_decisions(
    db: Database, workspace: WorkspaceKeys, emailable: str
) -> None:
    send_id = send_auto(db, workspace.id, emailable, "k1")
    move(db, send_id, "opened")
    owner = Principal(workspace.id, "test", "owner")
    with db.session(write=True) as s:
        plan = export.plan_export(s, owner, emailable, now=clock.now())
    with db.session() as s:
        document = b"".join(export.export_chunks(s, plan, now=clock.now())).decode()
    exported = json.loads(document)
    assert [d["send_id"] for d in exported["channel_decisions"]] == [send_id]
    assert [(c["channel"], c["trials"], c["successes"]) for c in exported["channel_stats"]] == [("email", 1, 1)]

    with db.session(write=True) as s:
        erasure.erase_customer(s, owner, emailable, now=clock.now())
    assert customer_stats(db, workspace.id, emailable) == {}
    with db.session() as s:
        assert s.get(ChannelDecision, send_id) is None
    assert workspace_stats(db, workspace.id) == {"email": (1, 1, 0)}  # anonymous totals stay


# -- send time --------------------------------------------------------------------------------


def engaged_at(db: Database, ws: str, customer_id: str, *moments: datetime, key: str = "t") -> None:
    """One send per moment, opened at that moment."""
    for i, at in enumerate(moments):
        with db.session(write=True) as s:
            send, _ = send_service.enqueue(
                s,
                ws,
                customer_id=customer_id,
                channel="email",
                now=at - timedelta(minutes=30),
                template="welcome",
                idempotency_key=f"{key}-{i}",
            )
            status.record(s, send, "opened", at, "pixel")


def send_time(db: Database, ws: str, customer_id: str, now: datetime, **kw: Any) -> optimiser.SendTime:
    with db.session() as s:
        return best_send_time(s, ws, customer_id, now, **kw)


def test_send_time_is_the_customers_usual_local_hour_across_a_dst_change(
    db: Database, workspace: WorkspaceKeys, emailable: str
) -> None:
    with db.session(write=True) as s:
        s.execute(
            text("UPDATE customers SET timezone = 'Europe/Berlin' WHERE id = :id"), {"id": emailable}
        )  # fmt: skip
    # 19:xx in Berlin on five evenings of winter time (UTC+1): 18:xx UTC.
    evenings = [datetime(2026, 3, day, 18, 10 + day, tzinfo=UTC) for day in (20, 22, 23, 25, 27)]
    # One morning coffee at 07:30, and a second open the same evening (the same habit, counted once).
    engaged_at(db, workspace.id, emailable, *evenings, datetime(2026, 3, 26, 6, 30, tzinfo=UTC), evenings[0])

    # Summer time from 29 March (UTC+2): 19:00 in Berlin is 17:00 UTC.
    now = datetime(2026, 3, 30, 9, 0, tzinfo=UTC)
    chosen = send_time(db, workspace.id, emailable, now)

    assert chosen.at == datetime(2026, 3, 30, 17, 0, tzinfo=UTC)
    assert (chosen.hour, chosen.zone, chosen.source, chosen.samples) == (19, "Europe/Berlin", "customer", 5)
    assert chosen.reason == (
        "the customer usually engages at 19:00 Europe/Berlin (5 of 6 active hours in 90 days); "
        "next at 2026-03-30 19:00 local (17:00 UTC)"
    )
    # During that hour it is now; just after it, tomorrow's.
    in_the_hour = datetime(2026, 3, 30, 17, 40, tzinfo=UTC)
    assert send_time(db, workspace.id, emailable, in_the_hour).at == in_the_hour
    after = datetime(2026, 3, 30, 18, 0, tzinfo=UTC)
    assert send_time(db, workspace.id, emailable, after).at == datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    # A horizon that does not reach 19:00 takes the usual hour it does reach.
    assert send_time(db, workspace.id, emailable, after, horizon=timedelta(hours=14)).at == datetime(
        2026, 3, 31, 5, 0, tzinfo=UTC
    )


def test_tracked_activity_counts_towards_the_usual_hour(db: Database, workspace: WorkspaceKeys, emailable: str) -> None:
    moments = [datetime(2026, 2, day, 12, 15, tzinfo=UTC) for day in (3, 10, 17)]
    ingest(
        db,
        workspace.id,
        [message("track", userId="ann", event="Viewed Product", timestamp=m.isoformat()) for m in moments],
    )
    chosen = send_time(db, workspace.id, emailable, datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    assert (chosen.source, chosen.hour, chosen.at) == ("customer", 12, datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


def test_send_time_falls_back_to_the_workspaces_hour_then_to_now(
    db: Database, workspace: WorkspaceKeys, emailable: str
) -> None:
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    nothing = send_time(db, workspace.id, emailable, now)
    assert (nothing.at, nothing.source, nothing.hour) == (now, "none", None)
    assert nothing.reason == "no engagement history to time by: send now"

    # Others, in New York, engage with auto-chosen sends at 20:xx their time (01:xx UTC in winter).
    with db.session(write=True) as s:
        for i in range(12):
            at = datetime(2026, 2, 1 + i, 1, 20, tzinfo=UTC)
            s.add(
                ChannelDecision(
                    send_id=f"snd_other_{i}",
                    workspace_id=workspace.id,
                    customer_id=f"cus_other_{i}",
                    channel="email",
                    reason="test",
                    value=1.0,
                    cost=0.0,
                    probability=0.3,
                    figures=[],
                    decided_at=at - timedelta(hours=1),
                    engaged_at=at,
                )
            )
    set_settings(db, workspace.id, contact_policy={"default_timezone": "America/New_York"})
    with db.session(write=True) as s:
        s.execute(text("UPDATE customers SET timezone = 'Asia/Tokyo' WHERE id = :id"), {"id": emailable})

    chosen = send_time(db, workspace.id, emailable, now)
    # 20:00 in Tokyo (UTC+9) is 11:00 UTC.
    assert (chosen.source, chosen.hour, chosen.zone, chosen.samples) == ("workspace", 20, "Asia/Tokyo", 12)
    assert chosen.at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert chosen.reason.startswith("too little history for the customer; the workspace's customers usually engage")
