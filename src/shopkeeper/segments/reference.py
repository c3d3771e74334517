"""A plain-Python evaluator of segment definitions: the specification the SQL compiler is
tested against (tests give both the same random definitions and data and compare members).

Deliberately naive — a loop over every customer — and written from the definition's
documented meaning, not from the SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shopkeeper.consent.models import ALL_TOPICS
from shopkeeper.segments.compiler import iso_text
from shopkeeper.segments.definition import (
    AllOf,
    AnyOf,
    ConsentCondition,
    EventCondition,
    Filter,
    Node,
    Not,
    ScoreCondition,
    SegmentCondition,
    TraitCondition,
)


@dataclass(frozen=True, slots=True)
class RefCustomer:
    id: str
    traits: dict[str, Any] | None
    merged_into: str | None = None


@dataclass(frozen=True, slots=True)
class RefEvent:
    customer_id: str
    name: str | None
    timestamp: datetime
    properties: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RefSubscription:
    customer_id: str
    channel: str
    topic: str
    status: str
    updated_at: datetime
    id: str


@dataclass
class RefData:
    customers: list[RefCustomer]
    events: list[RefEvent] = field(default_factory=list)
    subscriptions: list[RefSubscription] = field(default_factory=list)
    # segment id → ids of its current members
    members: dict[str, set[str]] = field(default_factory=dict)
    # (customer id, score name) → (value, label)
    scores: dict[tuple[str, str], tuple[float | None, str | None]] = field(default_factory=dict)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual == expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    return _is_number(actual) and float(actual) == float(expected)


def _ordered(actual: Any, like: Any) -> Any:
    """`actual` if it has the type `like` is compared as (string or number), else None."""
    if isinstance(like, str):
        return actual if isinstance(actual, str) else None
    return float(actual) if _is_number(actual) else None


def matches(obj: dict[str, Any] | None, f: Filter, now: datetime) -> bool:
    present = isinstance(obj, dict) and f.key in obj
    actual = obj[f.key] if present else None  # type: ignore[index]
    op, value = f.op, f.value
    if op == "exists":
        return present and actual is not None
    if op == "eq":
        return present and _same(actual, value)
    if op == "neq":
        return not (present and _same(actual, value))
    if op == "in":
        return present and any(_same(actual, v) for v in value)
    if op == "contains":
        if isinstance(actual, str):
            return value in actual
        return isinstance(actual, list) and any(isinstance(e, str) and e == value for e in actual)
    if op in ("gt", "gte", "lt", "lte", "between"):
        like = value[0] if op == "between" else value
        x = _ordered(actual, like)
        if x is None:
            return False
        if op == "between":
            low, high = (v if isinstance(v, str) else float(v) for v in value)
            return bool(low <= x <= high)
        y = value if isinstance(value, str) else float(value)
        return bool({"gt": x > y, "gte": x >= y, "lt": x < y, "lte": x <= y}[op])
    if not isinstance(actual, str):
        return False
    cut = iso_text(now - timedelta(days=value))
    if op == "within_last_days":
        return cut <= actual <= iso_text(now)
    assert op == "more_than_days_ago"
    return actual < cut


def _count_ok(count: int, op: str, n: int) -> bool:
    return {"eq": count == n, "gt": count > n, "gte": count >= n, "lt": count < n, "lte": count <= n}[op]


class Reference:
    def __init__(self, data: RefData, now: datetime, segment_ids: Mapping[str, str] | None = None) -> None:
        self.data = data
        self.now = now
        self.segment_ids = dict(segment_ids or {})
        self.events_of: dict[str, list[RefEvent]] = {}
        for e in data.events:
            self.events_of.setdefault(e.customer_id, []).append(e)
        # Subscriptions count for the profile they were merged into.
        owner = {c.id: c.merged_into or c.id for c in data.customers}
        self.subs_of: dict[str, list[RefSubscription]] = {}
        for s in data.subscriptions:
            if s.customer_id in owner:
                self.subs_of.setdefault(owner[s.customer_id], []).append(s)

    def members(self, node: Node) -> set[str]:
        return {c.id for c in self.data.customers if c.merged_into is None and self.holds(node, c)}

    def holds(self, node: Node, c: RefCustomer) -> bool:
        if isinstance(node, AllOf):
            return all(self.holds(n, c) for n in node.items)
        if isinstance(node, AnyOf):
            return any(self.holds(n, c) for n in node.items)
        if isinstance(node, Not):
            return not self.holds(node.item, c)
        if isinstance(node, TraitCondition):
            return matches(c.traits, node.filter, self.now)
        if isinstance(node, EventCondition):
            return self._event(node, c)
        if isinstance(node, ConsentCondition):
            return self._consent(node, c) == node.status
        if isinstance(node, SegmentCondition):
            segment_id = self.segment_ids.get(node.key)
            return segment_id is not None and c.id in self.data.members.get(segment_id, set())
        if isinstance(node, ScoreCondition):
            return self._score(node, c)
        raise TypeError(node)  # pragma: no cover

    def _event(self, node: EventCondition, c: RefCustomer) -> bool:
        since = node.since
        if node.within_days is not None:
            since = self.now - timedelta(days=node.within_days)
        count = sum(
            1
            for e in self.events_of.get(c.id, [])
            if e.name == node.name
            and (since is None or e.timestamp >= since)
            and all(matches(e.properties, f, self.now) for f in node.where)
        )
        return _count_ok(count, node.op, node.count)

    def _consent(self, node: ConsentCondition, c: RefCustomer) -> str:
        rows = [s for s in self.subs_of.get(c.id, []) if s.channel == node.channel]

        def latest(topic: str) -> str | None:
            candidates = [s for s in rows if s.topic == topic]
            if not candidates:
                return None
            return max(candidates, key=lambda s: (s.updated_at, s.status == "opted_out", s.id)).status

        if latest(ALL_TOPICS) == "opted_out":
            return "opted_out"
        if node.topic is None:
            return "unknown"
        return latest(node.topic) or "unknown"

    def _score(self, node: ScoreCondition, c: RefCustomer) -> bool:
        stored = self.data.scores.get((c.id, node.name))
        value, label = stored if stored else (None, None)
        op, want = node.op, node.value
        if op == "exists":
            return value is not None or label is not None
        if op == "in":
            return label in want
        if isinstance(want, str):
            hit = label == want
            return not hit if op == "neq" else hit
        if op == "neq":
            return not (value is not None and value == want)
        if value is None:
            return False
        if op == "between":
            return bool(want[0] <= value <= want[1])
        return bool(
            {"eq": value == want, "gt": value > want, "gte": value >= want, "lt": value < want, "lte": value <= want}[
                op
            ]
        )


def evaluate(node: Node, data: RefData, now: datetime, segment_ids: Mapping[str, str] | None = None) -> set[str]:
    """The ids of the live customers of `data` that satisfy `node` at `now`."""
    return Reference(data, now, segment_ids).members(node)
