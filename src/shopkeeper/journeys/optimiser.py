"""`channel: auto` (SPEC §8): choose among the channels the customer is reachable and consented on —
their stated preference first, else by expected value p × value − cost with p learnt online by
Thompson sampling (journeys.bandit) — and learn from what each chosen send became.

The journey executor, inside its transaction: `choose_channel`, then `messaging.send_service.enqueue`
on the chosen channel, then `record_decision(session, choice, send)` — which logs the decision and
counts the trial. A status listener counts the outcome in the transaction that records it: the
first open, click or reply is a success, a bounce, complaint or failure a failure, each at most
once per send (a guarded UPDATE on the decision row decides which transaction counts it).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.consent.policy import can_contact
from shopkeeper.consent.service import check_channel, preference_of
from shopkeeper.errors import Invalid
from shopkeeper.journeys import bandit
from shopkeeper.journeys.optimiser_models import ChannelDecision, ChannelStats, CustomerChannelStats
from shopkeeper.journeys.send_time import SendTime, best_send_time
from shopkeeper.messaging.models import ChannelProvider, Send
from shopkeeper.messaging.status import on_status_change

# The sending channels a journey's `channel: auto` picks among unless the step names its own.
JOURNEY_CHANNELS = ("email", "sms", "push", "whatsapp", "chat")
# Cost of one message when no provider of the channel states one (same currency as step values).
DEFAULT_COSTS: dict[str, float] = {
    "email": 0.0005,
    "push": 0.001,
    "chat": 0.001,
    "webhook": 0.001,
    "telegram": 0.001,
    "messenger": 0.001,
    "whatsapp": 0.02,
    "voice": 0.04,
    "sms": 0.05,
}
ENGAGED = frozenset({"opened", "clicked", "replied"})
FAILED = frozenset({"bounced", "complained", "failed"})
_MAX_SHARD_ATTEMPTS = 5
# Send-time optimisation lives in journeys.send_time; the executor finds both decisions here.
__all__ = [
    "ChannelChoice",
    "ChannelFigures",
    "SendTime",
    "best_send_time",
    "choose_channel",
    "record_conversion",
    "record_decision",
]
_shard_numbers = random.SystemRandom()


class OptimiserSettings(BaseModel):
    """A workspace's overrides (`workspaces.settings["channel_optimiser"]`)."""

    model_config = ConfigDict(extra="forbid")

    # Cost per message by channel, used when the channel's provider states none.
    costs: dict[str, float] = Field(default_factory=dict)
    # How many of a customer's own sends the population's estimate is worth.
    customer_weight: float = Field(default=bandit.CUSTOMER_WEIGHT, gt=0, le=10_000)

    @field_validator("costs")
    @classmethod
    def _costs(cls, value: dict[str, float]) -> dict[str, float]:
        for channel, cost in value.items():
            check_channel(channel, f"costs.{channel}")
            if not 0 <= cost < 1_000_000:
                raise ValueError(f"costs.{channel}: a cost of 0 or more")
        return value

    @classmethod
    def of(cls, workspace: Workspace | None) -> OptimiserSettings:
        return cls.parse((workspace.settings or {}).get("channel_optimiser", {}) if workspace else {})

    @classmethod
    def parse(cls, raw: Any) -> OptimiserSettings:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "channel_optimiser"
            raise Invalid(f"channel_optimiser.{where}: {err['msg']}", field=f"channel_optimiser.{where}") from None


@dataclass(frozen=True, slots=True)
class ChannelFigures:
    """One candidate: what consent said, and (when reachable) the figures it was weighed by."""

    channel: str
    consent: str  # allow | delay | deny
    consent_reason: str
    until: datetime | None = None
    estimate: bandit.Estimate | None = None
    population: bandit.Counts | None = None
    customer: bandit.Counts | None = None

    @property
    def reachable(self) -> bool:
        return self.consent != "deny"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "channel": self.channel,
            "consent": self.consent,
            "consent_reason": self.consent_reason,
            "until": self.until.isoformat() if self.until else None,
        }
        if self.estimate is not None:
            out.update(self.estimate.as_dict())
        if self.population is not None and self.customer is not None:
            out["workspace_counts"] = _counts_dict(self.population)
            out["customer_counts"] = _counts_dict(self.customer)
        return out


@dataclass(frozen=True, slots=True)
class ChannelChoice:
    workspace_id: str
    customer_id: str
    channel: str | None  # None: no candidate is reachable and consented
    reason: str
    by: str  # preference | expected_value | none
    value: float
    decided_at: datetime
    figures: list[ChannelFigures] = field(default_factory=list)

    def figure(self, channel: str | None = None) -> ChannelFigures | None:
        wanted = channel or self.channel
        return next((f for f in self.figures if f.channel == wanted), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "reason": self.reason,
            "by": self.by,
            "value": self.value,
            "decided_at": self.decided_at.isoformat(),
            "figures": [f.as_dict() for f in self.figures],
        }


def _counts_dict(counts: bandit.Counts) -> dict[str, int]:
    return {"trials": counts.trials, "successes": counts.successes, "failures": counts.failures}


# -- choosing ---------------------------------------------------------------------------------


def choose_channel(
    session: Session,
    workspace_id: str,
    customer_id: str,
    *,
    candidates: Sequence[str] | None,
    kind: str,
    topic: str | None,
    now: datetime,
    value: float,
    rng: bandit.Rng | None = None,
) -> ChannelChoice:
    """The channel for one message to one customer, with every candidate's figures. Records
    nothing: call `record_decision` once the send is enqueued."""
    channels = _candidates(candidates)
    if not 0 <= value <= 1e9:
        raise Invalid("value: a value of 0 or more", field="value")
    rng = rng if rng is not None else random.Random()
    decisions = {
        channel: can_contact(session, workspace_id, customer_id, channel, topic, kind, now) for channel in channels
    }
    reachable = [c for c in channels if decisions[c].outcome != "deny"]
    refused = "; ".join(_refusal(c, decisions[c].reason) for c in channels if c not in reachable)

    def consent_only(channel: str) -> ChannelFigures:
        d = decisions[channel]
        return ChannelFigures(channel, d.outcome, d.reason, d.until)

    if not reachable:
        return ChannelChoice(
            workspace_id,
            customer_id,
            None,
            f"no channel: {refused}",
            "none",
            value,
            now,
            [consent_only(c) for c in channels],
        )

    settings = OptimiserSettings.of(session.get(Workspace, workspace_id))
    costs = channel_costs(session, workspace_id, reachable, settings)
    population = population_counts(session, workspace_id, reachable)
    own = customer_counts(session, workspace_id, customer_id, reachable)
    arms = [
        bandit.Arm(c, value, costs[c], population.get(c, bandit.Counts()), own.get(c, bandit.Counts()))
        for c in reachable
    ]
    best, estimates = bandit.choose(arms, rng, customer_weight=settings.customer_weight)
    by_channel = {e.channel: e for e in estimates}
    figures = [
        ChannelFigures(
            c,
            decisions[c].outcome,
            decisions[c].reason,
            decisions[c].until,
            by_channel[c],
            population.get(c, bandit.Counts()),
            own.get(c, bandit.Counts()),
        )
        if c in by_channel
        else consent_only(c)
        for c in channels
    ]

    preference = preference_of(session, workspace_id, customer_id)
    preferred = preference.preferred_channel if preference is not None else None
    if preferred is not None and preferred in reachable:
        reason, by, chosen = f"preferred channel {preferred}", "preference", preferred
    else:
        ranked = sorted(estimates, key=lambda e: -e.expected_value)
        comparison = " > ".join(f"{e.channel} {e.expected_value:.2f}" for e in ranked)
        reason = (
            f"expected value {comparison} ({best.channel}: p {best.p:.2f} × value {best.value:g} − cost {best.cost:g})"
            if len(ranked) > 1
            else f"only channel available {best.channel} (expected value {best.expected_value:.2f})"
        )
        if preferred is not None:
            reason = f"preferred channel {preferred} {_refusal_words(preferred, decisions)}; {reason}"
        by, chosen = "expected_value", best.channel
    if refused:
        reason = f"{reason}; {refused}"
    return ChannelChoice(workspace_id, customer_id, chosen, reason, by, value, now, figures)


def _candidates(candidates: Sequence[str] | None) -> list[str]:
    if candidates is None:
        return list(JOURNEY_CHANNELS)
    if isinstance(candidates, str):
        raise Invalid("channels: a list of channels", field="channels")
    out: list[str] = []
    for channel in candidates:
        check_channel(channel, "channels")
        if channel not in out:
            out.append(channel)
    if not out:
        raise Invalid("channels: at least one channel", field="channels")
    return out


def _refusal(channel: str, reason: str) -> str:
    return f"{channel} unreachable" if reason == "no_address" else f"{channel} denied {reason}"


def _refusal_words(channel: str, decisions: Mapping[str, Any]) -> str:
    decision = decisions.get(channel)
    if decision is None:
        return "is not a candidate"
    return "is unreachable" if decision.reason == "no_address" else f"is denied ({decision.reason})"


def channel_costs(
    session: Session, workspace_id: str, channels: Sequence[str], settings: OptimiserSettings | None = None
) -> dict[str, float]:
    """Per channel: the cost stated by its first provider (the lowest priority that is enabled),
    else the workspace's `channel_optimiser.costs`, else DEFAULT_COSTS."""
    if settings is None:
        settings = OptimiserSettings.of(session.get(Workspace, workspace_id))
    stated: dict[str, float | None] = {}
    rows = session.execute(
        select(ChannelProvider.channel, ChannelProvider.cost_per_unit)
        .where(
            ChannelProvider.workspace_id == workspace_id,
            ChannelProvider.channel.in_(channels),
            ChannelProvider.enabled.is_(True),
        )
        .order_by(ChannelProvider.channel, ChannelProvider.priority, ChannelProvider.name)
    )
    for channel, cost in rows:
        stated.setdefault(channel, cost)
    costs: dict[str, float] = {}
    for channel in channels:
        cost = stated.get(channel)
        if cost is None:
            cost = settings.costs.get(channel, DEFAULT_COSTS.get(channel, 0.0))
        costs[channel] = float(cost)
    return costs


def population_counts(session: Session, workspace_id: str, channels: Iterable[str]) -> dict[str, bandit.Counts]:
    rows = session.execute(
        select(
            ChannelStats.channel,
            func.sum(ChannelStats.trials),
            func.sum(ChannelStats.successes),
            func.sum(ChannelStats.failures),
        )
        .where(ChannelStats.workspace_id == workspace_id, ChannelStats.channel.in_(list(channels)))
        .group_by(ChannelStats.channel)
    )
    return {c: bandit.Counts(int(t or 0), int(s or 0), int(f or 0)) for c, t, s, f in rows}


def customer_counts(
    session: Session, workspace_id: str, customer_id: str, channels: Iterable[str]
) -> dict[str, bandit.Counts]:
    rows = session.execute(
        select(
            CustomerChannelStats.channel,
            CustomerChannelStats.trials,
            CustomerChannelStats.successes,
            CustomerChannelStats.failures,
        ).where(
            CustomerChannelStats.workspace_id == workspace_id,
            CustomerChannelStats.customer_id == customer_id,
            CustomerChannelStats.channel.in_(list(channels)),
        )
    )
    return {c: bandit.Counts(t, s, f) for c, t, s, f in rows}


# -- learning ---------------------------------------------------------------------------------


def record_decision(session: Session, choice: ChannelChoice, send: Send) -> bool:
    """Log the choice for this send and count the trial. True the first time; a send already
    logged (the executor retrying an enqueue that found its send) counts nothing more."""
    if choice.channel is None:
        raise Invalid("no channel was chosen; there is no send to record", field="channel")
    if session.get(ChannelDecision, send.id) is not None:
        return False
    if send.channel != choice.channel or send.workspace_id != choice.workspace_id:
        raise Invalid(f"the send goes by {send.channel}, the choice was {choice.channel}", field="channel")
    chosen = choice.figure()
    estimate = chosen.estimate if chosen is not None else None
    row = {
        "send_id": send.id,
        "workspace_id": send.workspace_id,
        "customer_id": choice.customer_id,
        "channel": choice.channel,
        "reason": choice.reason[:500],
        "value": choice.value,
        "cost": estimate.cost if estimate else 0.0,
        "probability": estimate.p if estimate else 0.0,
        "figures": [f.as_dict() for f in choice.figures],
        "decided_at": choice.decided_at,
        "engaged_at": None,
        "failed_at": None,
        "converted_at": None,
    }
    if not _insert_new(session, ChannelDecision, row, ["send_id"]):
        return False
    _count(session, send.workspace_id, choice.customer_id, choice.channel, choice.decided_at, trials=1)
    return True


def record_conversion(session: Session, workspace_id: str, send_id: str, at: datetime) -> bool:
    """The journey's goal was reached after this send: note the conversion, and count it as
    engagement unless the send's outcome was counted already. True if the send was logged and
    not converted before."""
    converted = _guarded_update(session, workspace_id, send_id, ChannelDecision.converted_at.is_(None), converted_at=at)
    if converted is None:
        return False
    _engaged(session, workspace_id, send_id, at)
    return True


@on_status_change
def _learn(session: Session, send: Send, previous: str, at: datetime, reason: str | None) -> None:
    if send.status in ENGAGED:
        _engaged(session, send.workspace_id, send.id, at)
    elif send.status in FAILED:
        _failed(session, send.workspace_id, send.id, at, revoke=send.status == "complained")


def _engaged(session: Session, workspace_id: str, send_id: str, at: datetime) -> None:
    row = _guarded_update(
        session,
        workspace_id,
        send_id,
        ChannelDecision.engaged_at.is_(None),
        ChannelDecision.failed_at.is_(None),
        engaged_at=at,
    )
    if row is not None:
        _count(session, workspace_id, row.customer_id, row.channel, at, successes=1)


def _failed(session: Session, workspace_id: str, send_id: str, at: datetime, *, revoke: bool) -> None:
    """A failure counts once. A complaint also takes back an engagement counted before it: the
    customer who opened a message and then marked it as spam did not welcome it."""
    row = _guarded_update(session, workspace_id, send_id, ChannelDecision.failed_at.is_(None), failed_at=at)
    if row is None:
        return
    taken_back = -1 if revoke and row.engaged_at is not None else 0
    _count(session, workspace_id, row.customer_id, row.channel, at, successes=taken_back, failures=1)


@dataclass(frozen=True, slots=True)
class _Logged:
    customer_id: str
    channel: str
    engaged_at: datetime | None


def _guarded_update(session: Session, workspace_id: str, send_id: str, *guards: Any, **values: Any) -> _Logged | None:
    """Set `values` on the send's decision row if the guards still hold, atomically: of two
    transactions recording the same outcome, the second waits for the first's row lock and then
    finds the guard false. The row as updated, or None when nothing changed (or nothing logged)."""
    result = session.execute(
        update(ChannelDecision)
        .where(ChannelDecision.workspace_id == workspace_id, ChannelDecision.send_id == send_id, *guards)
        .values(**values)
        .returning(ChannelDecision.customer_id, ChannelDecision.channel, ChannelDecision.engaged_at)
        .execution_options(synchronize_session=False)
    ).first()
    return _Logged(*result) if result is not None else None


def _count(
    session: Session,
    workspace_id: str,
    customer_id: str,
    channel: str,
    at: datetime,
    *,
    trials: int = 0,
    successes: int = 0,
    failures: int = 0,
) -> None:
    deltas = {"trials": trials, "successes": successes, "failures": failures}
    _upsert_add(
        session,
        CustomerChannelStats,
        {"workspace_id": workspace_id, "customer_id": customer_id, "channel": channel},
        deltas,
        at,
    )
    _bump_workspace(session, workspace_id, channel, deltas, at)


def _bump_workspace(session: Session, workspace_id: str, channel: str, deltas: Mapping[str, int], at: datetime) -> None:
    """Add to one of the workspace's shards for the channel. On PostgreSQL, one no other
    transaction holds (FOR UPDATE SKIP LOCKED), or a new one when all are held: a busy workspace's
    executors and status webhooks never wait on each other here, so they cannot deadlock either.
    SQLite has one writer at a time: one shard."""
    if session.get_bind().dialect.name != "postgresql":
        _upsert_add(session, ChannelStats, {"workspace_id": workspace_id, "channel": channel, "shard": 0}, deltas, at)
        return
    for _ in range(_MAX_SHARD_ATTEMPTS):
        shard = session.scalar(
            select(ChannelStats.shard)
            .where(ChannelStats.workspace_id == workspace_id, ChannelStats.channel == channel)
            .order_by(ChannelStats.shard)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if shard is not None:
            session.execute(
                update(ChannelStats)
                .where(
                    ChannelStats.workspace_id == workspace_id,
                    ChannelStats.channel == channel,
                    ChannelStats.shard == shard,
                )
                .values(updated_at=at, **{k: getattr(ChannelStats, k) + v for k, v in deltas.items()})
                .execution_options(synchronize_session=False)
            )
            return
        # Every shard is held (or there is none yet): open another, ours alone until we commit.
        # A random number, not the next one: two transactions inserting the same key would wait
        # on each other, which is what shards are here to avoid.
        number = _shard_numbers.randrange(2**31)
        row = {"workspace_id": workspace_id, "channel": channel, "shard": number, "updated_at": at, **deltas}
        if _insert_new(session, ChannelStats, row, ["workspace_id", "channel", "shard"]):
            return
    raise RuntimeError(f"no channel_stats shard for {channel} after {_MAX_SHARD_ATTEMPTS} attempts")


def _insert(session: Session, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(dialect)  # pragma: no cover


def _insert_new(session: Session, model: type[Any], row: Mapping[str, Any], key: list[str]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True if the row was new (RETURNING: psycopg reports no
    row count for it)."""
    statement = _insert(session, model).values(**row).on_conflict_do_nothing(index_elements=key)
    return session.execute(statement.returning(literal(1))).first() is not None


def _upsert_add(
    session: Session, model: type[Any], key: Mapping[str, Any], deltas: Mapping[str, int], at: datetime
) -> None:
    statement = _insert(session, model).values(**key, **deltas, updated_at=at)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=list(key),
            set_={"updated_at": at, **{k: getattr(model, k) + v for k, v in deltas.items()}},
        )
    )


# -- explaining -------------------------------------------------------------------------------


def decisions_of(session: Session, workspace_id: str, customer_id: str, *, limit: int = 20) -> list[ChannelDecision]:
    """The customer's latest auto-chosen sends, newest first, with the figures behind each."""
    return list(
        session.scalars(
            select(ChannelDecision)
            .where(ChannelDecision.workspace_id == workspace_id, ChannelDecision.customer_id == customer_id)
            .order_by(ChannelDecision.decided_at.desc(), ChannelDecision.send_id.desc())
            .limit(max(1, min(limit, 200)))
        )
    )
