"""Quiet hours in the customer's own time zone, correct on daylight-saving days.

A quiet window is a pair of local wall-clock times; it may wrap midnight (21:00–08:00). A message
due inside it is delayed to the first instant after it — which, on a spring-forward night when the
end time does not exist, is the moment the clocks jump.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shopkeeper.errors import Invalid


@dataclass(frozen=True, slots=True)
class QuietWindow:
    start: time
    end: time

    @classmethod
    def parse(cls, start: str, end: str, field: str = "quiet_hours") -> QuietWindow:
        return cls(parse_clock(start, f"{field}.start"), parse_clock(end, f"{field}.end"))

    def covers(self, local: datetime) -> bool:
        """Is this local wall-clock time inside the window? (start inclusive, end exclusive)"""
        if self.start == self.end:
            return False
        t = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def next_allowed(self, at: datetime, zone: ZoneInfo) -> datetime:
        """`at` itself when it is outside the window, else the first instant after the window."""
        if not self.covers(at.astimezone(zone)):
            return at
        local = at.astimezone(zone)
        for days in range(3):
            wall = datetime.combine(local.date() + timedelta(days=days), self.end)
            candidate = _first_instant_at_or_after(wall, zone)
            if candidate > at and not self.covers(candidate.astimezone(zone)):
                return candidate
        raise AssertionError("a quiet window shorter than a day always ends within two days")  # pragma: no cover


def parse_clock(value: str, field: str) -> time:
    try:
        parsed = time.fromisoformat(value)
    except (TypeError, ValueError):
        raise Invalid(f"{field}: {value!r} is not a time of day such as 21:00", field=field) from None
    if parsed.tzinfo is not None:
        raise Invalid(f"{field}: a local time of day, without a zone", field=field)
    return parsed


def _first_instant_at_or_after(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first UTC instant whose local time in `zone` is at or after the naive `wall` time.

    For an existing wall time that is simply its (first, if repeated) instant. For a wall time
    skipped by a spring-forward jump it is the instant of the jump.
    """
    early = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if early.astimezone(zone).replace(tzinfo=None) == wall:
        return early
    # Inside a gap: fold=1 reads the wall time with the offset after the jump (an earlier UTC
    # instant), fold=0 with the one before (a later instant); the jump lies between them, on a
    # whole second, so a search over whole seconds finds it exactly.
    other = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = sorted((int(other.timestamp()), int(early.timestamp())))

    def reached(second: int) -> bool:
        return datetime.fromtimestamp(second, UTC).astimezone(zone).replace(tzinfo=None) >= wall

    while high - low > 1:
        middle = (low + high) // 2
        if reached(middle):
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(low if reached(low) else high, UTC)
