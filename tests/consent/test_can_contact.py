"""SPEC §4: can_contact — consent, suppression, channel opt-out, caps, quiet hours, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shopkeeper.consent import service
from shopkeeper.consent.policy import can_contact, reserve_contact
from shopkeeper.db.session import Database
from shopkeeper.errors import Invalid
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, make_topic, set_policy, set_status

NOON = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # a Wednesday, outside any default quiet hours in UTC


def decide(
    db: Database,
    ws: str,
    customer: str,
    channel: str = "email",
    topic: str | None = "offers",
    kind: str = "marketing",
    when: datetime = NOON,
    expires_at: datetime | None = None,
):  # type: ignore[no-untyped-def]
    with db.session() as s:
        return can_contact(s, ws, customer, channel, topic, kind, when, expires_at=expires_at)


def reserve(db: Database, ws: str, customer: str, when: datetime, channel: str = "email", topic: str = "offers"):  # type: ignore[no-untyped-def]
    with db.session(write=True) as s:
        return reserve_contact(s, ws, customer, channel, topic, "marketing", when)


@pytest.fixture
def alice(db: Database, workspace: WorkspaceKeys) -> str:
    customer = make_customer(
        db, workspace.id, "alice", email="alice@example.com", phone="+14155550100", timezone="Europe/Paris"
    )
    make_topic(db, workspace.id, "offers")
    make_topic(db, workspace.id, "tips", lawful_basis="legitimate_interest", channels=("email",))
    return customer


def test_marketing_needs_an_opt_in_under_consent(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    assert decide(db, workspace.id, alice).reason == "not_opted_in"
    set_status(db, workspace.id, alice, "email", "offers", "opted_in")
    decision = decide(db, workspace.id, alice)
    assert decision.allowed and decision.evidence["lawful_basis"] == "consent"
    assert decision.evidence["consent_event_id"]
    set_status(db, workspace.id, alice, "email", "offers", "opted_out", source="unsubscribe-link")
    refused = decide(db, workspace.id, alice)
    assert (refused.outcome, refused.reason) == ("deny", "opted_out")
    assert "unsubscribe-link" in " ".join(refused.explanation)


def test_legitimate_interest_allows_until_an_opt_out(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    assert decide(db, workspace.id, alice, topic="tips").allowed
    set_status(db, workspace.id, alice, "email", "tips", "opted_out")
    assert decide(db, workspace.id, alice, topic="tips").reason == "opted_out"


def test_pending_double_opt_in_is_not_consent(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    set_status(db, workspace.id, alice, "email", "offers", "pending")
    assert decide(db, workspace.id, alice).reason == "pending_confirmation"


def test_transactional_passes_without_topic_consent_but_not_a_channel_opt_out(
    db: Database, workspace: WorkspaceKeys, alice: str
) -> None:
    assert decide(db, workspace.id, alice, topic=None, kind="transactional").allowed
    set_status(db, workspace.id, alice, "email", "*", "opted_out")
    assert decide(db, workspace.id, alice, topic=None, kind="transactional").reason == "channel_opted_out"
    set_status(db, workspace.id, alice, "email", "offers", "opted_in")
    assert decide(db, workspace.id, alice).reason == "channel_opted_out"


def test_a_suppressed_address_stops_even_transactional_mail(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    set_status(db, workspace.id, alice, "email", "offers", "opted_in")
    with db.session(write=True) as s:
        service.suppress(s, workspace.id, "email", " ALICE@example.com", "hard_bounce", NOON)
    for kind, topic in (("marketing", "offers"), ("transactional", None)):
        decision = decide(db, workspace.id, alice, topic=topic, kind=kind)
        assert (decision.reason, decision.evidence["suppression_reason"]) == ("suppressed", "hard_bounce")
    assert decide(db, workspace.id, alice, channel="sms", topic=None, kind="transactional").allowed


def test_no_address_no_contact(db: Database, workspace: WorkspaceKeys) -> None:
    bob = make_customer(db, workspace.id, "bob", email="bob@example.com")
    assert decide(db, workspace.id, bob, channel="sms", topic=None, kind="transactional").reason == "no_address"
    assert decide(db, workspace.id, "cus_nobody", topic=None, kind="transactional").reason == "unknown_customer"


def test_unknown_topic_and_topic_not_on_channel(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    assert decide(db, workspace.id, alice, topic="nope").reason == "unknown_topic"
    assert decide(db, workspace.id, alice, channel="sms", topic="tips").reason == "topic_not_on_channel"


def test_quiet_hours_delay_marketing_to_the_customers_morning(
    db: Database, workspace: WorkspaceKeys, alice: str
) -> None:
    set_status(db, workspace.id, alice, "email", "offers", "opted_in")
    late = datetime(2026, 6, 10, 21, 30, tzinfo=UTC)  # 23:30 in Paris (UTC+2 in June)
    decision = decide(db, workspace.id, alice, when=late)
    assert (decision.outcome, decision.reason) == ("delay", "quiet_hours")
    assert decision.until == datetime(2026, 6, 11, 6, 0, tzinfo=UTC)  # 08:00 in Paris
    assert decide(db, workspace.id, alice, topic=None, kind="transactional", when=late).allowed
    expired = decide(db, workspace.id, alice, when=late, expires_at=late + timedelta(hours=2))
    assert (expired.outcome, expired.reason) == ("deny", "expired")


def test_caps_delay_until_a_slot_frees(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    set_policy(db, workspace.id, {"caps": {"email": {"day": 2}}, "quiet_hours": None})
    set_status(db, workspace.id, alice, "email", "offers", "opted_in")
    first, second = NOON, NOON + timedelta(hours=1)
    assert reserve(db, workspace.id, alice, first).allowed
    assert reserve(db, workspace.id, alice, second).allowed
    third = reserve(db, workspace.id, alice, NOON + timedelta(hours=2))
    assert (third.outcome, third.reason, third.until) == ("delay", "frequency_cap", first + timedelta(days=1))
    assert third.contact_id is None
    # Another channel has its own cap; the workspace has no overall cap here.
    set_status(db, workspace.id, alice, "sms", "offers", "opted_in")
    assert decide(db, workspace.id, alice, channel="sms", when=NOON + timedelta(hours=2)).allowed


def test_the_customers_own_pace_is_a_cap(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    set_policy(db, workspace.id, {"caps": {}, "quiet_hours": None})
    set_status(db, workspace.id, alice, "email", "offers", "opted_in")
    with db.session(write=True) as s:
        service.set_preference(
            s,
            workspace.id,
            alice,
            preferred_channel="email",
            frequency="weekly",
            quiet_start=None,
            quiet_end=None,
            now=NOON,
        )
    assert reserve(db, workspace.id, alice, NOON).allowed
    later = decide(db, workspace.id, alice, when=NOON + timedelta(days=3))
    assert (later.outcome, later.until) == ("delay", NOON + timedelta(days=7))


def test_bad_arguments_are_refused(db: Database, workspace: WorkspaceKeys, alice: str) -> None:
    with pytest.raises(Invalid):
        decide(db, workspace.id, alice, channel="pigeon")
    with pytest.raises(Invalid):
        decide(db, workspace.id, alice, kind="spam")
    with pytest.raises(Invalid):
        decide(db, workspace.id, alice, topic=None)


def test_after_a_merge_the_latest_choice_wins_and_an_opt_out_wins_a_tie(db: Database, workspace: WorkspaceKeys) -> None:
    from datetime import timedelta as td

    from shopkeeper import clock
    from shopkeeper.clock import FrozenClock
    from shopkeeper.consent.service import standing

    make_topic(db, workspace.id, "offers")
    fake = FrozenClock(NOON)
    previous = clock.use(fake)
    try:
        old = make_customer(db, workspace.id, "merged-away", email="m1@example.com")
        survivor = make_customer(db, workspace.id, "survivor", email="m2@example.com")
        set_status(db, workspace.id, old, "email", "offers", "opted_out")
        set_status(db, workspace.id, survivor, "email", "offers", "opted_in")  # same instant: the opt-out wins
        with db.session() as s:
            assert standing(s, workspace.id, [survivor, old], "email", "offers").status == "opted_out"
        fake.advance(td(days=1))
        set_status(db, workspace.id, survivor, "email", "offers", "opted_out")
        fake.advance(td(days=1))
        set_status(db, workspace.id, survivor, "email", "offers", "opted_in")  # a fresh, explicit consent
        with db.session() as s:
            assert standing(s, workspace.id, [survivor, old], "email", "offers").status == "opted_in"
    finally:
        clock.use(previous)
