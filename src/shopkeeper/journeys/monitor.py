"""Monitoring: each journey's funnel, per step, with cost and lift against its holdout; and the
circuit breaker that pauses a journey whose sends bounce, draw complaints or fail too often.

Counts come from the rows the work already writes (runs, their step log, sends), found
through the sends' `source_ref` ("<journey id>:<step id>") — no second bookkeeping to drift
from the truth. A pause by the breaker is an alert and stays until a person resumes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopkeeper.ids import new_id
from shopkeeper.journeys.entry import definition_of
from shopkeeper.journeys.models import Alert, Journey, JourneyRun, JourneyStep
from shopkeeper.messaging.models import ENGAGEMENT_ORDER, Send

MONITOR_ACTOR = "monitor"
# A status counts towards every engagement level at or below it: an opened email was delivered.
FUNNEL = ("sent", "delivered", "opened", "clicked", "replied")
FAILURES = ("bounced", "complained", "failed")
Z95 = 1.959963984540054


def _refs(journey_id: str) -> tuple[str, str]:
    """The range of `source_ref` values of this journey's sends ("<id>:" up to "<id>;")."""
    return f"{journey_id}:", f"{journey_id};"


def _funnel(counts: dict[str, int]) -> dict[str, int]:
    out = dict.fromkeys(FUNNEL + FAILURES + ("queued", "suppressed", "skipped"), 0)
    for status, n in counts.items():
        level = ENGAGEMENT_ORDER.get(status)
        if level is not None:
            for name in FUNNEL:
                if ENGAGEMENT_ORDER[name] <= level:
                    out[name] += n
        else:
            out[status] = out.get(status, 0) + n
    # A bounce or a complaint was sent first (and a complaint was delivered).
    out["sent"] += out["bounced"] + out["complained"]
    out["delivered"] += out["complained"]
    return out


@dataclass
class Lift:
    treatment: int
    treatment_converted: int
    control: int
    control_converted: int
    difference: float | None
    low: float | None
    high: float | None
    relative: float | None


def lift(treatment: int, t_conv: int, control: int, c_conv: int) -> Lift:
    """Conversion rate of the treated minus the holdout's, with a 95 % confidence interval
    (normal approximation of the difference of two proportions)."""
    if treatment == 0 or control == 0:
        return Lift(treatment, t_conv, control, c_conv, None, None, None, None)
    pt, pc = t_conv / treatment, c_conv / control
    diff = pt - pc
    se = math.sqrt(pt * (1 - pt) / treatment + pc * (1 - pc) / control)
    relative = diff / pc if pc > 0 else None
    return Lift(treatment, t_conv, control, c_conv, diff, diff - Z95 * se, diff + Z95 * se, relative)


@dataclass
class Stats:
    entered: int
    states: dict[str, int]
    converted: int
    sends: dict[str, int]
    cost: float
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    lift: Lift | None = None


def stats(session: Session, journey: Journey) -> Stats:
    states = dict(
        session.execute(
            select(JourneyRun.state, func.count()).where(JourneyRun.journey_id == journey.id).group_by(JourneyRun.state)
        ).all()
    )
    converted = session.scalar(
        select(func.count()).where(JourneyRun.journey_id == journey.id, JourneyRun.converted_at.is_not(None))
    )
    low, high = _refs(journey.id)
    per_step_status: dict[str, dict[str, int]] = {}
    cost_by_step: dict[str, float] = {}
    for ref, status, n, cost in session.execute(
        select(Send.source_ref, Send.status, func.count(), func.coalesce(func.sum(Send.cost), 0.0))
        .where(Send.workspace_id == journey.workspace_id, Send.source_ref >= low, Send.source_ref < high)
        .group_by(Send.source_ref, Send.status)
    ):
        step_id = str(ref).split(":", 1)[1]
        per_step_status.setdefault(step_id, {})[status] = int(n)
        cost_by_step[step_id] = cost_by_step.get(step_id, 0.0) + float(cost or 0.0)
    steps: dict[str, dict[str, Any]] = {}
    for step_id, outcome, n in session.execute(
        select(JourneyStep.step_id, JourneyStep.outcome, func.count())
        .where(JourneyStep.journey_id == journey.id)
        .group_by(JourneyStep.step_id, JourneyStep.outcome)
    ):
        steps.setdefault(step_id, {"outcomes": {}})["outcomes"][outcome] = int(n)
    for step_id, counts in per_step_status.items():
        entry = steps.setdefault(step_id, {"outcomes": {}})
        entry["messages"] = _funnel(counts)
        entry["cost"] = round(cost_by_step.get(step_id, 0.0), 6)
    total: dict[str, int] = {}
    for counts in per_step_status.values():
        for status, n in counts.items():
            total[status] = total.get(status, 0) + n
    entered = sum(states.values())
    result = Stats(
        entered=entered,
        states={k: int(v) for k, v in states.items()},
        converted=int(converted or 0),
        sends=_funnel(total),
        cost=round(sum(cost_by_step.values()), 6),
        steps=steps,
    )
    result.lift = _holdout_lift(session, journey)
    return result


def _holdout_lift(session: Session, journey: Journey) -> Lift | None:
    """Treated: runs past the holdout step on the treatment side; control: the held-out runs."""
    treated_ids = (
        select(JourneyStep.run_id)
        .where(JourneyStep.journey_id == journey.id, JourneyStep.outcome == "treatment")
        .scalar_subquery()
    )
    control, c_conv = session.execute(
        select(func.count(), func.count(JourneyRun.converted_at)).where(
            JourneyRun.journey_id == journey.id, JourneyRun.holdout.is_(True)
        )
    ).one()
    if not control:
        return None
    treatment, t_conv = session.execute(
        select(func.count(), func.count(JourneyRun.converted_at)).where(
            JourneyRun.journey_id == journey.id, JourneyRun.id.in_(treated_ids)
        )
    ).one()
    return lift(int(treatment), int(t_conv), int(control), int(c_conv))


@dataclass(frozen=True, slots=True)
class Breach:
    kind: str
    value: float
    threshold: float
    sends: int


def rates(session: Session, journey: Journey, now: datetime) -> tuple[int, dict[str, float]]:
    """Over the sends of the monitoring window that have an outcome: (how many, rate per kind)."""
    definition = definition_of(session, journey.id, journey.live_version or journey.latest_version)
    since = now - definition.monitor.window
    if journey.watch_from is not None and journey.watch_from > since:
        since = journey.watch_from
    low, high = _refs(journey.id)
    counts = dict(
        session.execute(
            select(Send.status, func.count())
            .where(
                Send.workspace_id == journey.workspace_id,
                Send.source_ref >= low,
                Send.source_ref < high,
                Send.created_at >= since,
                Send.status.not_in(("queued", "suppressed", "skipped")),
            )
            .group_by(Send.status)
        ).all()
    )
    outcomes = sum(int(n) for n in counts.values())
    if outcomes == 0:
        return 0, {}
    return outcomes, {
        "bounce_rate": counts.get("bounced", 0) / outcomes,
        "complaint_rate": counts.get("complained", 0) / outcomes,
        "failure_rate": counts.get("failed", 0) / outcomes,
    }


def breaches(session: Session, journey: Journey, now: datetime) -> list[Breach]:
    definition = definition_of(session, journey.id, journey.live_version or journey.latest_version)
    monitor = definition.monitor
    outcomes, measured = rates(session, journey, now)
    if outcomes < monitor.min_sends:
        return []
    thresholds = {
        "bounce_rate": monitor.bounce_rate,
        "complaint_rate": monitor.complaint_rate,
        "failure_rate": monitor.failure_rate,
    }
    return [
        Breach(kind, measured[kind], limit, outcomes)
        for kind, limit in thresholds.items()
        if measured.get(kind, 0.0) > limit
    ]


def check(session: Session, now: datetime, workspace_id: str | None = None) -> list[Alert]:
    """The circuit breaker: pause every active journey over a threshold, with an alert each."""
    query = select(Journey).where(Journey.status == "active", Journey.live_version.is_not(None))
    if workspace_id is not None:
        query = query.where(Journey.workspace_id == workspace_id)
    alerts: list[Alert] = []
    for journey in session.scalars(query):
        found = breaches(session, journey, now)
        if not found:
            continue
        words = "; ".join(f"{b.kind.replace('_', ' ')} {b.value:.1%} over {b.threshold:.1%}" for b in found)
        journey.status = "paused"
        journey.paused_by = MONITOR_ACTOR
        journey.paused_reason = f"paused automatically: {words} (of {found[0].sends} sends)"
        journey.updated_at = now
        for b in found:
            alert = Alert(
                id=new_id("alr"),
                workspace_id=journey.workspace_id,
                subject_type=journey.kind,
                subject_id=journey.id,
                kind=b.kind,
                message=f"{journey.name}: {b.kind.replace('_', ' ')} {b.value:.1%} is over {b.threshold:.1%} "
                f"({b.sends} sends); paused until someone resumes it",
                value=b.value,
                threshold=b.threshold,
                sends=b.sends,
                action="paused",
                created_at=now,
            )
            session.add(alert)
            alerts.append(alert)
    session.flush()
    return alerts
