"""Hypothesis properties of the contact policy (SPEC §4): an opted-out or suppressed address is
never allowed marketing; no allowed send falls inside quiet hours in the customer's zone, DST days
included; frequency caps are never exceeded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shopkeeper import clock
from shopkeeper.auth.service import create_workspace
from shopkeeper.consent import service
from shopkeeper.consent.policy import can_contact, reserve_contact
from shopkeeper.consent.quiet_hours import QuietWindow
from shopkeeper.consent.service import Proof
from shopkeeper.db.session import Database
from tests.consent.factories import make_customer, make_topic, set_policy

# Zones with daylight saving on both hemispheres, a 30- and a 45-minute offset, and none at all.
ZONES = [
    "Europe/Paris",
    "America/New_York",
    "Australia/Sydney",
    "America/Santiago",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "Europe/London",
    "America/St_Johns",
    "UTC",
]
# Instants around the 2026 transitions of those zones, plus anywhere in the year.
TRANSITIONS = [
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 4, 5, 3, tzinfo=UTC),
    datetime(2026, 9, 6, 3, tzinfo=UTC),
    datetime(2026, 9, 27, 2, tzinfo=UTC),
    datetime(2026, 10, 4, 16, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
]

instants = st.one_of(
    st.builds(
        lambda base, minutes: base + timedelta(minutes=minutes),
        st.sampled_from(TRANSITIONS),
        st.integers(-36 * 60, 36 * 60),
    ),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)).map(lambda d: d.replace(tzinfo=UTC)),
)
clock_times = st.builds(lambda m: time(m // 60, m % 60), st.integers(0, 24 * 60 - 1))


@settings(max_examples=3000, deadline=None)
@given(at=instants, zone=st.sampled_from(ZONES), start=clock_times, end=clock_times)
def test_the_next_allowed_instant_is_outside_quiet_hours_and_the_earliest(
    at: datetime, zone: str, start: time, end: time
) -> None:
    window = QuietWindow(start, end)
    tz = ZoneInfo(zone)
    allowed = window.next_allowed(at, tz)
    assert allowed >= at
    assert not window.covers(allowed.astimezone(tz))
    if allowed > at:
        assert window.covers(at.astimezone(tz))
        # Earliest: one second before, it was still quiet.
        assert window.covers((allowed - timedelta(seconds=1)).astimezone(tz))
        # A window is shorter than a day, but its only open minute may not exist on a
        # spring-forward night (02:01–02:00 in New York), and then the next day's counts.
        assert allowed - at <= timedelta(hours=50)


def _workspace(db: Database) -> str:
    with db.session(write=True) as s:
        ws, _, _ = create_workspace(s, f"prop {uuid.uuid4().hex[:8]}", clock.now())
    return ws.id


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    at=instants,
    zone=st.sampled_from(ZONES),
    start=clock_times,
    end=clock_times,
    kind=st.sampled_from(["marketing", "transactional"]),
)
def test_no_allowed_marketing_send_falls_in_quiet_hours(
    db: Database, at: datetime, zone: str, start: time, end: time, kind: str
) -> None:
    ws = _workspace(db)
    customer = make_customer(db, ws, f"u-{uuid.uuid4().hex[:6]}", email="q@example.com", timezone=zone)
    make_topic(db, ws, "offers", lawful_basis="legitimate_interest")
    set_policy(db, ws, {"caps": {}, "quiet_hours": {"start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}})
    with db.session() as s:
        decision = can_contact(s, ws, customer, "email", "offers" if kind == "marketing" else None, kind, at)
    window = QuietWindow(time(start.hour, start.minute), time(end.hour, end.minute))
    local = ZoneInfo(zone)
    if kind == "transactional":
        assert decision.allowed  # quiet hours do not hold back transactional mail by default
    elif decision.allowed:
        assert not window.covers(at.astimezone(local))
    else:
        assert decision.outcome == "delay" and decision.until is not None
        assert not window.covers(decision.until.astimezone(local))


CHANNELS = ["email", "sms"]
TOPICS = ["offers", "news"]
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("status"),
            st.sampled_from(CHANNELS),
            st.sampled_from([*TOPICS, "*"]),
            st.sampled_from(["opted_in", "opted_out", "pending", "unknown"]),
        ),
        st.tuples(
            st.just("suppress"),
            st.sampled_from(CHANNELS),
            st.sampled_from(["hard_bounce", "stop", "complaint"]),
            st.none(),
        ),
        st.tuples(st.just("lift"), st.sampled_from(CHANNELS), st.none(), st.none()),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_an_opted_out_or_suppressed_address_is_never_allowed_marketing(
    db: Database, ops: list[tuple[Any, ...]]
) -> None:
    ws = _workspace(db)
    customer = make_customer(db, ws, f"u-{uuid.uuid4().hex[:6]}", email="p@example.com", phone="+14155550123")
    make_topic(db, ws, "offers", channels=("email", "sms"))
    make_topic(db, ws, "news", lawful_basis="legitimate_interest", channels=("email", "sms"))
    set_policy(db, ws, {"caps": {}, "quiet_hours": None})
    address = {"email": "p@example.com", "sms": "+14155550123"}
    now = clock.now()
    # The model: what the final state should be.
    status: dict[tuple[str, str], str] = {}
    suppressed: set[str] = set()
    with db.session(write=True) as s:
        for op, channel, arg, value in ops:
            if op == "status":
                if arg == "*" and value in ("opted_in", "pending"):
                    continue  # refused by design: a channel-wide status is opt-out only
                service.set_status(s, ws, customer, channel, arg, value, Proof(source="api"), now)
                status[(channel, arg)] = value
            elif op == "suppress":
                service.suppress(s, ws, channel, address[channel], arg, now)
                suppressed.add(channel)
            else:
                service.lift_suppression(s, ws, channel, address[channel])
                suppressed.discard(channel)
    with db.session() as s:
        for channel in CHANNELS:
            for topic in TOPICS:
                decision = can_contact(s, ws, customer, channel, topic, "marketing", now)
                opted_out = status.get((channel, "*")) == "opted_out" or status.get((channel, topic)) == "opted_out"
                if channel in suppressed or opted_out:
                    assert not decision.allowed, (channel, topic, decision)
                if decision.allowed and topic == "offers":
                    assert status.get((channel, "offers")) == "opted_in"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gaps=st.lists(st.integers(0, 36 * 60), min_size=1, max_size=25),
    day_cap=st.integers(0, 3),
    week_cap=st.integers(1, 6),
    channel_day_cap=st.integers(1, 3),
)
def test_caps_are_never_exceeded(
    db: Database, gaps: list[int], day_cap: int, week_cap: int, channel_day_cap: int
) -> None:
    assume(day_cap > 0)
    ws = _workspace(db)
    customer = make_customer(db, ws, f"u-{uuid.uuid4().hex[:6]}", email="c@example.com", phone="+14155550199")
    make_topic(db, ws, "offers", lawful_basis="legitimate_interest", channels=("email", "sms"))
    caps = {"all": {"day": day_cap, "week": week_cap}, "sms": {"day": channel_day_cap}}
    set_policy(db, ws, {"caps": caps, "quiet_hours": None})
    when = datetime(2026, 5, 1, tzinfo=UTC)
    sent: list[tuple[datetime, str]] = []
    for index, gap in enumerate(gaps):
        when += timedelta(minutes=gap)
        channel = "sms" if index % 3 == 0 else "email"
        with db.session(write=True) as s:
            decision = reserve_contact(s, ws, customer, channel, "offers", "marketing", when)
        if decision.allowed:
            sent.append((when, channel))
        else:
            assert decision.outcome == "delay" and decision.until is not None and decision.until > when
    for t, _ in sent:
        in_day = [c for u, c in sent if t - timedelta(days=1) < u <= t]
        in_week = [c for u, c in sent if t - timedelta(days=7) < u <= t]
        assert len(in_day) <= day_cap
        assert len(in_week) <= week_cap
        assert in_day.count("sms") <= channel_day_cap
