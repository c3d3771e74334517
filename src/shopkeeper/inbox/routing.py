"""Routing rules and assignment.

Rules are tried in order; the first whose conditions all hold applies its actions and stops
the search (unless it says `"continue": true`, when later rules may add tags, or set what it
left unset). Conditions: `channel`, `intent`, `sentiment` (lists: any of), `priority`,
`segment` / `not_segment` (a segment key), `traits` ([{path, op, value}]), `business_hours`
("open" or "closed", in the workspace's hours), `text_contains` (any of, case-insensitive),
`source` ("message" or "review"). Actions: `team`, `assignee_id`, `priority`, `tags`,
`sla_policy`, `auto_reply` ({"template": key} or {"text": …}; replaces the workspace's auto-ack).

Assignment inside a team goes to members marked available (and not disabled): `round_robin`
takes the next after the last one given a conversation; `least_open` the one with the fewest
open conversations (ties by id, so the choice is deterministic); `none` leaves it to the team.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.auth.models import User
from shopkeeper.db.scoping import by_key, scoped
from shopkeeper.errors import Invalid
from shopkeeper.inbox.hours import BusinessHours
from shopkeeper.inbox.models import Conversation, RoutingRule, SlaPolicy, Team
from shopkeeper.inbox.settings import CONVERSATION_CHANNELS
from shopkeeper.segments.models import SegmentMembership

STRATEGIES = ("round_robin", "least_open", "none")
SENTIMENTS = ("negative", "neutral", "positive")
MAX_RULES = 200


class TraitCondition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=200)
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists", "not_exists", "contains"] = "eq"
    value: Any = None


class Conditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: list[str] | None = None
    intent: list[str] | None = None
    sentiment: list[Literal["negative", "neutral", "positive"]] | None = None
    priority: list[Literal["low", "normal", "high", "urgent"]] | None = None
    segment: str | None = None
    not_segment: str | None = None
    traits: list[TraitCondition] | None = None
    business_hours: Literal["open", "closed"] | None = None
    text_contains: list[str] | None = None
    source: Literal["message", "review"] | None = None

    @field_validator("channel")
    @classmethod
    def _channels(cls, value: list[str] | None) -> list[str] | None:
        for channel in value or []:
            if channel not in CONVERSATION_CHANNELS:
                raise ValueError(f"{channel!r} is not a conversation channel")
        return value

    @field_validator("intent")
    @classmethod
    def _intents(cls, value: list[str] | None) -> list[str] | None:
        from shopkeeper.inbox.classify import INTENTS

        for intent in value or []:
            if intent not in INTENTS:
                raise ValueError(f"{intent!r} is not an intent ({', '.join(INTENTS)})")
        return value


class AutoReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str | None = None
    text: str | None = Field(default=None, max_length=2000)
    subject: str | None = Field(default=None, max_length=300)


class Actions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: str | None = None
    assignee_id: str | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)
    sla_policy: str | None = None
    auto_reply: AutoReply | None = None


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    conditions: Conditions = Field(default_factory=Conditions)
    actions: Actions
    continue_: bool = Field(default=False, alias="continue")


def parse_rules(raw: Any) -> list[RuleIn]:
    """Errors name the rule by its index and the field inside it: `rules[2].conditions.intent[0]`."""
    if not isinstance(raw, list):
        raise Invalid("rules: a list of rules", field="rules")
    if len(raw) > MAX_RULES:
        raise Invalid(f"rules: at most {MAX_RULES}", field="rules")
    rules = []
    for n, item in enumerate(raw):
        try:
            rules.append(RuleIn.model_validate(item))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = _path(n, err["loc"])
            message = str(err["msg"]).removeprefix("Value error, ")
            raise Invalid(f"{where}: {message}", field=where) from None
    return rules


def _path(n: int, loc: Sequence[Any]) -> str:
    out = f"rules[{n}]"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def check_references(session: Session, workspace_id: str, rules: Sequence[RuleIn]) -> None:
    """Teams, users, SLA policies and segments a rule names must exist now."""
    from shopkeeper.segments.models import Segment

    for n, rule in enumerate(rules):
        a, c = rule.actions, rule.conditions
        if a.team and by_key(session, Team, workspace_id, a.team) is None:
            raise Invalid(f"rules[{n}].actions.team: no team {a.team!r}", field=f"rules[{n}].actions.team")
        if a.assignee_id and session.scalar(scoped(User, workspace_id).where(User.id == a.assignee_id)) is None:
            raise Invalid(
                f"rules[{n}].actions.assignee_id: no user {a.assignee_id!r}", field=f"rules[{n}].actions.assignee_id"
            )
        if a.sla_policy and by_key(session, SlaPolicy, workspace_id, a.sla_policy) is None:
            raise Invalid(
                f"rules[{n}].actions.sla_policy: no SLA policy {a.sla_policy!r}",
                field=f"rules[{n}].actions.sla_policy",
            )
        if a.auto_reply is not None and not (a.auto_reply.template or a.auto_reply.text):
            raise Invalid(
                f"rules[{n}].actions.auto_reply: give a template or a text", field=f"rules[{n}].actions.auto_reply"
            )
        for name in ("segment", "not_segment"):
            key = getattr(c, name)
            if key and by_key(session, Segment, workspace_id, key) is None:
                raise Invalid(
                    f"rules[{n}].conditions.{name}: no segment {key!r}", field=f"rules[{n}].conditions.{name}"
                )


@dataclass
class Facts:
    """What the conditions look at for one conversation."""

    channel: str
    intent: str | None
    sentiment: str | None
    priority: str
    source: str
    text: str
    traits: Mapping[str, Any]
    segments: set[str]
    open_now: bool | None


@dataclass
class Decision:
    rule_ids: list[str] = field(default_factory=list)
    team: str | None = None
    assignee_id: str | None = None
    priority: str | None = None
    tags: list[str] = field(default_factory=list)
    sla_policy: str | None = None
    auto_reply: AutoReply | None = None


def _trait(traits: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = traits
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _compare(op: str, found: bool, actual: Any, expected: Any) -> bool:
    if op == "exists":
        return found and actual is not None
    if op == "not_exists":
        return not found or actual is None
    if not found:
        return op == "ne"
    try:
        if op == "eq":
            return bool(actual == expected)
        if op == "ne":
            return bool(actual != expected)
        if op == "in":
            return isinstance(expected, list) and actual in expected
        if op == "contains":
            return isinstance(actual, str | list) and expected in actual
        if op == "gt":
            return bool(actual > expected)
        if op == "gte":
            return bool(actual >= expected)
        if op == "lt":
            return bool(actual < expected)
        if op == "lte":
            return bool(actual <= expected)
    except TypeError:  # a trait of another type than the rule compares with
        return False
    return False


def matches(conditions: Conditions, facts: Facts) -> bool:
    c = conditions
    if c.channel and facts.channel not in c.channel:
        return False
    if c.intent and facts.intent not in c.intent:
        return False
    if c.sentiment and facts.sentiment not in c.sentiment:
        return False
    if c.priority and facts.priority not in c.priority:
        return False
    if c.source and facts.source != c.source:
        return False
    if c.segment and c.segment not in facts.segments:
        return False
    if c.not_segment and c.not_segment in facts.segments:
        return False
    if c.business_hours is not None and (facts.open_now is None or facts.open_now != (c.business_hours == "open")):
        return False
    if c.text_contains:
        lowered = facts.text.lower()
        if not any(word.lower() in lowered for word in c.text_contains):
            return False
    for trait in c.traits or []:
        found, actual = _trait(facts.traits, trait.path)
        if not _compare(trait.op, found, actual, trait.value):
            return False
    return True


def decide(rules: Sequence[RoutingRule], facts: Facts) -> Decision:
    decision = Decision()
    for row in rules:
        if not row.enabled:
            continue
        if not matches(Conditions.model_validate(row.conditions), facts):
            continue
        decision.rule_ids.append(row.id)
        a = Actions.model_validate(row.actions)
        decision.team = decision.team or a.team
        decision.assignee_id = decision.assignee_id or a.assignee_id
        decision.priority = decision.priority or a.priority
        decision.sla_policy = decision.sla_policy or a.sla_policy
        decision.auto_reply = decision.auto_reply or a.auto_reply
        decision.tags += [t for t in a.tags if t not in decision.tags]
        if not row.continue_matching:
            break
    return decision


def segments_of(session: Session, workspace_id: str, customer_id: str) -> set[str]:
    from shopkeeper.segments.models import Segment

    rows = session.scalars(
        select(Segment.key)
        .join(SegmentMembership, SegmentMembership.segment_id == Segment.id)
        .where(
            Segment.workspace_id == workspace_id,
            SegmentMembership.customer_id == customer_id,
            SegmentMembership.exited_at.is_(None),
        )
    )
    return set(rows)


def rules_of(session: Session, workspace_id: str) -> list[RoutingRule]:
    return list(session.scalars(scoped(RoutingRule, workspace_id).order_by(RoutingRule.position)))


def pick_agent(session: Session, team: Team, now: datetime) -> str | None:
    """The team member the next conversation goes to, or None (nobody available, or `none`)."""
    from shopkeeper.inbox.conversations import open_counts

    if team.strategy == "none" or not team.members:
        return None
    available = sorted(
        session.scalars(
            scoped(User, team.workspace_id).where(
                User.id.in_([str(m) for m in team.members]), User.available.is_(True), User.disabled.is_(False)
            )
        ),
        key=lambda u: u.id,
    )
    if not available:
        return None
    ids = [u.id for u in available]
    if team.strategy == "least_open":
        counts = open_counts(session, team.workspace_id, ids)
        chosen = min(ids, key=lambda u: (counts[u], u))
    else:
        after = [u for u in ids if team.last_assigned_id is not None and u > team.last_assigned_id]
        chosen = after[0] if after else ids[0]
    team.last_assigned_id = chosen
    team.updated_at = now
    return chosen


def facts_for(
    session: Session,
    conversation: Conversation,
    text: str,
    traits: Mapping[str, Any],
    hours: BusinessHours | None,
    now: datetime,
) -> Facts:
    return Facts(
        channel=conversation.channel,
        intent=conversation.intent,
        sentiment=conversation.sentiment,
        priority=conversation.priority,
        source=conversation.source,
        text=text,
        traits=traits,
        segments=segments_of(session, conversation.workspace_id, conversation.customer_id),
        open_now=hours.is_open(now) if hours is not None else None,
    )
