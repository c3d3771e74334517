"""Send-time optimisation (SPEC §8): the next time, within a horizon, at the local hour the customer
usually engages — else the hour the workspace's customers usually engage — else now.

"Usually" counts distinct (local day, hour) pairs, so a customer who opened ten messages in one
evening weighs as much as one who opened one: how often they are there at that hour, not how
much they did. Hours are read in the customer's time zone at the time of each engagement, so a
habit of 19:00 stays 19:00 across a daylight-saving change. Every query is bounded: a recent
window and a LIMIT, along existing indexes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.consent.policy import ContactPolicy
from shopkeeper.customers.models import Customer
from shopkeeper.customers.service import profile_ids
from shopkeeper.errors import Invalid
from shopkeeper.events.models import Event
from shopkeeper.journeys.optimiser_models import ChannelDecision
from shopkeeper.messaging.models import Send, SendEvent

ENGAGEMENT_STATUSES = ("opened", "clicked", "replied")
# The customer's own activity: messages they engaged with, and what they did on the site or app.
ACTIVITY_EVENT_TYPES = ("track", "page", "screen")
WINDOW = timedelta(days=90)
MAX_SENDS = 200
MAX_SEND_EVENTS = 2000
MAX_EVENTS = 500
MAX_WORKSPACE_DECISIONS = 5000
# Fewer observations than this is chance, not a habit.
MIN_CUSTOMER_SAMPLES = 2
MIN_WORKSPACE_SAMPLES = 10


@dataclass(frozen=True, slots=True)
class SendTime:
    at: datetime  # UTC, >= now
    hour: int | None  # the local hour aimed at; None when sending now for want of history
    zone: str
    source: str  # customer | workspace | none
    samples: int  # observations behind the hour (0 for none)
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "hour": self.hour,
            "zone": self.zone,
            "source": self.source,
            "samples": self.samples,
            "reason": self.reason,
        }


def best_send_time(
    session: Session,
    workspace_id: str,
    customer_id: str,
    now: datetime,
    *,
    horizon: timedelta = timedelta(hours=24),
) -> SendTime:
    if now.tzinfo is None:
        raise Invalid("now: a timezone-aware time", field="now")
    if horizon <= timedelta(0):
        raise Invalid("horizon: a positive duration", field="horizon")
    workspace = session.get(Workspace, workspace_id)
    default_zone = ContactPolicy.of(workspace).default_timezone if workspace is not None else "UTC"
    customer, ids = profile_ids(session, workspace_id, customer_id)
    zone = zone_of(customer.timezone, default_zone)
    since = now - WINDOW

    own = customer_hours(session, workspace_id, ids, zone, since)
    if own.total() >= MIN_CUSTOMER_SAMPLES:
        found = _pick(own, now, zone, horizon)
        if found is not None:
            hour, at = found
            return SendTime(
                at,
                hour,
                zone.key,
                "customer",
                own[hour],
                f"the customer usually engages at {hour:02d}:00 {zone.key} "
                f"({own[hour]} of {own.total()} active hours in {WINDOW.days} days); {_when(at, now, zone)}",
            )
    population = workspace_hours(session, workspace_id, default_zone, since)
    if population.total() >= MIN_WORKSPACE_SAMPLES:
        found = _pick(population, now, zone, horizon)
        if found is not None:
            hour, at = found
            lead = (
                "too little history for the customer"
                if own.total() < MIN_CUSTOMER_SAMPLES
                else "the customer's usual hours are beyond the horizon"
            )
            return SendTime(
                at,
                hour,
                zone.key,
                "workspace",
                population[hour],
                f"{lead}; the workspace's customers usually engage at {hour:02d}:00 local time "
                f"({population[hour]} of {population.total()} engagements); {_when(at, now, zone)}",
            )
    return SendTime(now, None, zone.key, "none", 0, "no engagement history to time by: send now")


def zone_of(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def customer_hours(
    session: Session, workspace_id: str, customer_ids: list[str], zone: ZoneInfo, since: datetime
) -> Counter[int]:
    """Local hours of the customer's engagement with their recent sends and of their recent
    activity, one count per (local day, hour)."""
    recent_sends = (
        select(Send.id)
        .where(Send.workspace_id == workspace_id, Send.customer_id.in_(customer_ids), Send.created_at >= since)
        .order_by(Send.created_at.desc())
        .limit(MAX_SENDS)
    )
    engaged = session.scalars(
        select(SendEvent.at)
        .where(
            SendEvent.workspace_id == workspace_id,
            SendEvent.send_id.in_(recent_sends.scalar_subquery()),
            SendEvent.status.in_(ENGAGEMENT_STATUSES),
            SendEvent.at >= since,
        )
        .limit(MAX_SEND_EVENTS)
    )
    activity = session.scalars(
        select(Event.timestamp)
        .where(
            Event.workspace_id == workspace_id,
            Event.customer_id.in_(customer_ids),
            Event.timestamp >= since,
            Event.type.in_(ACTIVITY_EVENT_TYPES),
        )
        .order_by(Event.timestamp.desc())
        .limit(MAX_EVENTS)
    )
    return _hours((at, zone) for at in [*engaged, *activity])


def workspace_hours(session: Session, workspace_id: str, default_zone: str, since: datetime) -> Counter[int]:
    """Local hours (each customer's own zone) at which the workspace's customers engaged with its
    latest auto-chosen sends."""
    recent = (
        select(ChannelDecision.customer_id, ChannelDecision.engaged_at)
        .where(ChannelDecision.workspace_id == workspace_id, ChannelDecision.decided_at >= since)
        .order_by(ChannelDecision.decided_at.desc())
        .limit(MAX_WORKSPACE_DECISIONS)
        .subquery()
    )
    rows = session.execute(
        select(recent.c.engaged_at, Customer.timezone)
        .select_from(recent)
        .join(
            Customer,
            and_(Customer.workspace_id == workspace_id, Customer.id == recent.c.customer_id),
            isouter=True,
        )
        .where(recent.c.engaged_at.is_not(None))
    )
    zones: dict[str | None, ZoneInfo] = {}
    pairs: list[tuple[datetime, ZoneInfo]] = []
    for at, name in rows:
        if name not in zones:
            zones[name] = zone_of(name, default_zone)
        pairs.append((at, zones[name]))
    return _hours(pairs, distinct=False)


def _hours(moments: Iterable[tuple[datetime, ZoneInfo]], *, distinct: bool = True) -> Counter[int]:
    seen: set[tuple[date, int]] = set()
    counts: Counter[int] = Counter()
    for at, zone in moments:
        local = at.astimezone(zone)
        key = (local.date(), local.hour)
        if distinct:
            if key in seen:
                continue
            seen.add(key)
        counts[local.hour] += 1
    return counts


def next_at_hour(now: datetime, zone: ZoneInfo, hour: int) -> datetime:
    """The first instant >= now whose local hour in `zone` is `hour` (now itself during that hour).
    An hour that a spring-forward change skips on that day becomes the first instant after the gap."""
    local = now.astimezone(zone)
    if local.hour == hour:
        return now
    for days in range(3):
        candidate = datetime.combine(local.date() + timedelta(days=days), time(hour), tzinfo=zone).astimezone(UTC)
        if candidate > now:
            return candidate
    raise AssertionError("unreachable: an hour of the day comes round within three days")  # pragma: no cover


def _pick(counts: Counter[int], now: datetime, zone: ZoneInfo, horizon: timedelta) -> tuple[int, datetime] | None:
    """The most frequent hour reachable within the horizon; of equals, the soonest."""
    options = [(hour, next_at_hour(now, zone, hour)) for hour in counts]
    options = [(hour, at) for hour, at in options if at - now <= horizon]
    if not options:
        return None
    return min(options, key=lambda o: (-counts[o[0]], o[1]))


def _when(at: datetime, now: datetime, zone: ZoneInfo) -> str:
    if at == now:
        return "that is now"
    return f"next at {at.astimezone(zone):%Y-%m-%d %H:%M} local ({at:%H:%M} UTC)"
