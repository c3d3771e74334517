"""NPS and CSAT from survey answers.

The convention (documented in docs/segments.md): a survey answer is a track event named
"Survey Answered" with properties `{"survey": "nps" | "csat", "score": <number>}` — NPS scores
0–10 ("how likely are you to recommend us"), CSAT 1–5 ("how satisfied were you"). The inbox
sends it for its CSAT survey on resolution; any client can send it through /v1/track.

Per customer: `nps` (their latest NPS answer), `nps_group` (promoter 9–10, passive 7–8,
detractor 0–6) and `csat` (the mean of their CSAT answers). For the workspace, over the answers
of the last `window_days`: NPS = % promoters − % detractors (each respondent's latest answer),
CSAT = % of answers that are 4 or 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Float, String, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session

from shopkeeper.segments.compiler import customers, events
from shopkeeper.segments.dialect import json_number, json_string
from shopkeeper.segments.scores import store

SURVEY_EVENT = "Survey Answered"
NAMES = ("nps", "nps_group", "csat")


@dataclass(frozen=True, slots=True)
class Satisfaction:
    nps: float | None
    nps_respondents: int
    csat: float | None
    csat_answers: int
    window_days: int


def _answers(workspace_id: str, survey: str, low: float, high: float) -> object:
    score = json_number(events.c.properties, "score")
    return (
        select(events.c.customer_id, events.c.timestamp, events.c.id, score.label("score"))
        .where(
            events.c.workspace_id == workspace_id,
            events.c.name == SURVEY_EVENT,
            json_string(events.c.properties, "survey") == survey,
            score >= low,
            score <= high,
            events.c.customer_id.in_(
                select(customers.c.id).where(
                    customers.c.workspace_id == workspace_id, customers.c.merged_into.is_(None)
                )
            ),
        )
        .subquery(f"{survey}_answers")
    )


def compute(session: Session, workspace_id: str, now: datetime, *, window_days: int = 90) -> Satisfaction:
    """Replace the per-customer NPS/CSAT scores and return the workspace's figures."""
    store.replace(session, workspace_id, NAMES)
    ws = literal(workspace_id, String())
    at = literal(now, events.c.timestamp.type)
    nps = _answers(workspace_id, "nps", 0, 10)
    latest = select(
        nps.c.customer_id,  # type: ignore[attr-defined]
        nps.c.score,  # type: ignore[attr-defined]
        nps.c.timestamp,  # type: ignore[attr-defined]
        func.row_number()
        .over(partition_by=nps.c.customer_id, order_by=(nps.c.timestamp.desc(), nps.c.id.desc()))  # type: ignore[attr-defined]
        .label("n"),
    ).subquery("latest_nps")
    last = select(latest.c.customer_id, latest.c.score, latest.c.timestamp).where(latest.c.n == 1).subquery("last_nps")
    group = case((last.c.score >= 9, "promoter"), (last.c.score >= 7, "passive"), else_="detractor")
    store.insert_from(
        session,
        select(
            last.c.customer_id, literal("nps", String()), ws, cast(last.c.score, Float), literal(None, String()), at
        ),
    )
    store.insert_from(
        session, select(last.c.customer_id, literal("nps_group", String()), ws, literal(None, Float()), group, at)
    )
    csat = _answers(workspace_id, "csat", 1, 5)
    store.insert_from(
        session,
        select(
            csat.c.customer_id,  # type: ignore[attr-defined]
            literal("csat", String()),
            ws,
            cast(func.avg(csat.c.score), Float),  # type: ignore[attr-defined]
            literal(None, String()),
            at,
        ).group_by(csat.c.customer_id),  # type: ignore[attr-defined]
    )
    since = now - timedelta(days=window_days)
    promoters, detractors, respondents = session.execute(
        select(
            func.coalesce(func.sum(case((last.c.score >= 9, 1), else_=0)), 0),
            func.coalesce(func.sum(case((last.c.score <= 6, 1), else_=0)), 0),
            func.count(),
        ).where(last.c.timestamp >= since)
    ).one()
    satisfied, answers = session.execute(
        select(
            func.coalesce(func.sum(case((csat.c.score >= 4, 1), else_=0)), 0),  # type: ignore[attr-defined]
            func.count(),
        ).where(and_(csat.c.timestamp >= since))  # type: ignore[attr-defined]
    ).one()
    result = Satisfaction(
        nps=round(100.0 * (int(promoters) - int(detractors)) / int(respondents), 1) if respondents else None,
        nps_respondents=int(respondents),
        csat=round(100.0 * int(satisfied) / int(answers), 1) if answers else None,
        csat_answers=int(answers),
        window_days=window_days,
    )
    store.record_run(
        session,
        workspace_id,
        "satisfaction",
        {"window_days": window_days},
        {
            "nps": result.nps,
            "nps_respondents": result.nps_respondents,
            "csat": result.csat,
            "csat_answers": result.csat_answers,
        },
        int(respondents),
        now,
    )
    return result
