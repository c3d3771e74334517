"""The segment definition language: a tree of conditions, as immutable values.

`validate.parse` turns the JSON a user sends into these; the SQL compiler and the plain-Python
reference evaluator both read them, so the two can be checked against each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Operators on a trait or an event property.
VALUE_OPS = ("eq", "neq", "in", "contains", "gt", "gte", "lt", "lte", "exists", "between")
RELATIVE_DATE_OPS = ("within_last_days", "more_than_days_ago")
FILTER_OPS = VALUE_OPS + RELATIVE_DATE_OPS
# How an event count compares with `count`.
COUNT_OPS = ("eq", "gt", "gte", "lt", "lte")
# Scores kept per customer (see scores/): numbers, or labels for the tiers and groups.
NUMBER_SCORES = (
    "rfm",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "clv",
    "p_alive",
    "churn_risk",
    "expected_purchases_90d",
    "nps",
    "csat",
)
LABEL_SCORES = ("rfm_segment", "clv_tier", "nps_group")
NUMBER_SCORE_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "between", "exists")
LABEL_SCORE_OPS = ("eq", "neq", "in", "exists")
PURPOSES = ("marketing", "transactional")

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Filter:
    """`key op value` on a JSON object (a customer's traits or an event's properties).

    Types are strict, as in JSON: the string "1" never equals the number 1, and a boolean is
    not a number. Strings compare by code point (dates as ISO 8601 text, UTC).
    """

    key: str
    op: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class TraitCondition:
    filter: Filter


@dataclass(frozen=True, slots=True)
class EventCondition:
    """Performed `name` (count `op` `count`) times, in the window, matching every `where`.

    The window is `within_days` before now, or since an absolute time, or all time. "Has not
    performed X since Y" is the count `eq 0` since Y.
    """

    name: str
    op: str = "gte"
    count: int = 1
    within_days: int | None = None
    since: datetime | None = None
    where: tuple[Filter, ...] = ()


@dataclass(frozen=True, slots=True)
class ConsentCondition:
    """The customer's effective status for a channel and topic (None: the channel as a whole).

    As `consent.service.standing` reads it: the rows of profiles merged into the customer count
    as theirs, and of several rows for one topic the latest change wins (at the same instant an
    opt-out). An opt-out of the whole channel wins over every topic.
    """

    channel: str
    topic: str | None
    status: str


@dataclass(frozen=True, slots=True)
class SegmentCondition:
    """Currently a member of another segment (its stored membership)."""

    key: str


@dataclass(frozen=True, slots=True)
class ScoreCondition:
    name: str
    op: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = TraitCondition | EventCondition | ConsentCondition | SegmentCondition | ScoreCondition | AllOf | AnyOf | Not


def walk(node: Node) -> list[Node]:
    """Every node of the tree, parents before children."""
    out: list[Node] = [node]
    if isinstance(node, AllOf | AnyOf):
        for item in node.items:
            out.extend(walk(item))
    elif isinstance(node, Not):
        out.extend(walk(node.item))
    return out


@dataclass(frozen=True, slots=True)
class Dependencies:
    """What can change a segment's membership: which events, traits, segments, scores, and
    whether time alone can (a window, or a relative date)."""

    event_names: frozenset[str]
    trait_keys: frozenset[str]
    segment_keys: frozenset[str]
    score_names: frozenset[str]
    consent: bool
    windowed: bool


def dependencies(node: Node) -> Dependencies:
    events: set[str] = set()
    traits: set[str] = set()
    segments: set[str] = set()
    scores: set[str] = set()
    consent = windowed = False
    for n in walk(node):
        if isinstance(n, TraitCondition):
            traits.add(n.filter.key)
            windowed |= n.filter.op in RELATIVE_DATE_OPS
        elif isinstance(n, EventCondition):
            events.add(n.name)
            windowed |= n.within_days is not None or any(f.op in RELATIVE_DATE_OPS for f in n.where)
        elif isinstance(n, SegmentCondition):
            segments.add(n.key)
        elif isinstance(n, ScoreCondition):
            scores.add(n.name)
        elif isinstance(n, ConsentCondition):
            consent = True
    return Dependencies(frozenset(events), frozenset(traits), frozenset(segments), frozenset(scores), consent, windowed)
