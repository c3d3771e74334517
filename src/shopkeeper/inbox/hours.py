"""Business hours: when a team works, in its own time zone, so that an SLA of "4 hours" given
on Friday at 16:00 falls due on Monday at 11:00, not on Friday night.

`{"timezone": "Europe/Paris", "days": {"mon": [["09:00", "17:30"]], …}, "holidays": ["2026-12-25"]}`
— each day a list of [start, end) intervals in local wall-clock time; a day not listed is closed.
Local times are converted with the zone's rules for that date, so daylight-saving changes
shorten or lengthen no working day.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shopkeeper.errors import Invalid

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SEARCH_DAYS = 400  # a schedule open on no day of the coming year is refused when saved


def _clock(value: object, field: str) -> time:
    if not isinstance(value, str):
        raise Invalid(f"{field}: a time of day such as 09:00", field=field)
    try:
        hour, minute = value.split(":")
        if value == "24:00":
            return time.max
        return time(int(hour), int(minute))
    except ValueError:
        raise Invalid(f"{field}: {value!r} is not a time of day such as 09:00", field=field) from None


@dataclass(frozen=True, slots=True)
class BusinessHours:
    zone: ZoneInfo
    days: tuple[tuple[tuple[time, time], ...], ...]  # Monday first
    holidays: frozenset[date]

    @classmethod
    def parse(cls, raw: Mapping[str, Any], field: str = "business_hours") -> BusinessHours:
        if not isinstance(raw, Mapping):
            raise Invalid(f"{field}: an object with timezone and days", field=field)
        unknown = set(raw) - {"timezone", "days", "holidays"}
        if unknown:
            name = sorted(unknown)[0]
            raise Invalid(f"{field}.{name}: unknown field; give timezone, days, holidays", field=f"{field}.{name}")
        try:
            zone = ZoneInfo(str(raw.get("timezone", "UTC")))
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid(
                f"{field}.timezone: {raw.get('timezone')!r} is not an IANA time zone", field=f"{field}.timezone"
            ) from None
        days_raw = raw.get("days")
        if not isinstance(days_raw, Mapping) or not days_raw:
            raise Invalid(f'{field}.days: e.g. {{"mon": [["09:00", "17:00"]]}}', field=f"{field}.days")
        days: list[tuple[tuple[time, time], ...]] = []
        for name in days_raw:
            if name not in DAYS:
                raise Invalid(f"{field}.days.{name}: one of {', '.join(DAYS)}", field=f"{field}.days.{name}")
        for name in DAYS:
            intervals = days_raw.get(name) or []
            where = f"{field}.days.{name}"
            if not isinstance(intervals, list):
                raise Invalid(f"{where}: a list of [start, end] pairs", field=where)
            parsed: list[tuple[time, time]] = []
            for n, pair in enumerate(intervals):
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise Invalid(f"{where}[{n}]: a [start, end] pair", field=f"{where}[{n}]")
                start, end = _clock(pair[0], f"{where}[{n}][0]"), _clock(pair[1], f"{where}[{n}][1]")
                if end <= start:
                    raise Invalid(f"{where}[{n}]: the end must be after the start", field=f"{where}[{n}]")
                parsed.append((start, end))
            parsed.sort()
            for (_, end), (start, _) in pairwise(parsed):
                if start < end:
                    raise Invalid(f"{where}: intervals overlap", field=where)
            days.append(tuple(parsed))
        if not any(days):
            raise Invalid(f"{field}.days: open on at least one day", field=f"{field}.days")
        holidays: set[date] = set()
        for n, value in enumerate(raw.get("holidays") or []):
            try:
                holidays.add(date.fromisoformat(str(value)))
            except ValueError:
                raise Invalid(
                    f"{field}.holidays[{n}]: {value!r} is not a date such as 2026-12-25",
                    field=f"{field}.holidays[{n}]",
                ) from None
        return cls(zone, tuple(days), frozenset(holidays))

    def _local(self, day: date, clock: time) -> datetime:
        if clock == time.max:
            return datetime.combine(day + timedelta(days=1), time(0), self.zone).astimezone(UTC)
        return datetime.combine(day, clock, self.zone).astimezone(UTC)

    def intervals_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals in UTC, in order, that end after `at` (the first may have begun)."""
        day = at.astimezone(self.zone).date()
        for offset in range(_SEARCH_DAYS):
            current = day + timedelta(days=offset)
            if current in self.holidays:
                continue
            for start, end in self.days[current.weekday()]:
                opens, closes = self._local(current, start), self._local(current, end)
                if closes > at:
                    yield max(opens, at), closes

    def is_open(self, at: datetime) -> bool:
        for opens, _ in self.intervals_from(at):
            return opens <= at
        return False

    def add(self, start: datetime, minutes: float) -> datetime:
        """The moment `minutes` of working time after `start`."""
        left = timedelta(minutes=minutes)
        for opens, closes in self.intervals_from(start):
            span = closes - opens
            if left <= span:
                return opens + left
            left -= span
        raise Invalid("business_hours: no working time in the coming year", field="business_hours")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from `start` to `end` (zero when end is before start)."""
        total = timedelta()
        for opens, closes in self.intervals_from(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total


def add_minutes(hours: BusinessHours | None, start: datetime, minutes: float) -> datetime:
    """Around the clock when there are no business hours."""
    return start + timedelta(minutes=minutes) if hours is None else hours.add(start, minutes)
