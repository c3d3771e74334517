"""Business hours: SLA minutes count only working time, in the team's zone, across weekends,
holidays and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shopkeeper.errors import Invalid
from shopkeeper.inbox.hours import BusinessHours, add_minutes

WEEKDAYS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def paris(**extra: object) -> BusinessHours:
    return BusinessHours.parse({"timezone": "Europe/Paris", "days": WEEKDAYS, **extra})


def test_four_working_hours_from_friday_afternoon_fall_due_on_monday_at_noon() -> None:
    friday_4pm = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # 16:00 in Paris (UTC+1)
    due = paris().add(friday_4pm, 240)
    # One hour on Friday, three on Monday from 09:00: Monday 12:00 in Paris.
    assert due == datetime(2026, 11, 30, 11, 0, tzinfo=UTC)


def test_time_given_outside_hours_starts_counting_at_the_next_opening() -> None:
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert paris().add(saturday, 30) == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
    assert not paris().is_open(saturday)
    assert paris().is_open(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))  # Monday 09:00 Paris


def test_holidays_are_skipped_and_working_time_between_two_moments_is_counted() -> None:
    hours = paris(holidays=["2026-12-25"])
    thursday_eve = datetime(2026, 12, 24, 15, 0, tzinfo=UTC)  # 16:00 Paris, one hour left
    assert hours.add(thursday_eve, 120) == datetime(2026, 12, 28, 9, 0, tzinfo=UTC)  # Monday 10:00
    assert hours.between(thursday_eve, datetime(2026, 12, 28, 9, 0, tzinfo=UTC)) == timedelta(hours=2)


def test_a_working_day_keeps_its_length_across_the_daylight_saving_change() -> None:
    before_change = datetime(2026, 3, 27, 8, 0, tzinfo=UTC)  # Friday 09:00 CET
    due = paris().add(before_change, 8 * 60 + 60)  # a full day and one more hour
    assert due == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # Monday 10:00 CEST (UTC+2)


def test_around_the_clock_without_business_hours() -> None:
    start = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    assert add_minutes(None, start, 90) == start + timedelta(minutes=90)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"timezone": "Mars/Olympus", "days": WEEKDAYS}, "business_hours.timezone"),
        ({"days": {"funday": [["09:00", "17:00"]]}}, "business_hours.days.funday"),
        ({"days": {"mon": [["17:00", "09:00"]]}}, "business_hours.days.mon[0]"),
        ({"days": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "business_hours.days.mon"),
        ({"days": {"mon": [["9h", "17:00"]]}}, "business_hours.days.mon[0][0]"),
        ({"days": {"mon": []}}, "business_hours.days"),
        ({"days": WEEKDAYS, "holidays": ["christmas"]}, "business_hours.holidays[0]"),
        ({"days": WEEKDAYS, "weekends": True}, "business_hours.weekends"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(Invalid) as refused:
        BusinessHours.parse(raw)
    assert refused.value.field == field, refused.value.message
