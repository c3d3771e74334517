"""Analytics: where messages go and what they cost, how customers engage over time, how
satisfied they are (CSAT and NPS by week), and how customer value is spread (CLV).

Every figure is one grouped query over the rows the work already writes (sends, survey events,
computed scores), bounded by the period asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.events.models import Event
from shopkeeper.messaging.models import ENGAGEMENT_ORDER, Send
from shopkeeper.runtime import get_runtime
from shopkeeper.segments.models import CustomerScore
from shopkeeper.segments.scores.satisfaction import SURVEY_EVENT
from shopkeeper.web.charts import bar_chart, line_chart
from shopkeeper.web.render import page
from shopkeeper.web.session import Viewer

router = APIRouter(include_in_schema=False)
PERIODS = {"7d": 7, "30d": 30, "90d": 90}
ENGAGEMENT = ("sent", "delivered", "opened", "clicked", "replied")


def _days(now: datetime, days: int) -> list[datetime]:
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return [start + timedelta(days=i) for i in range(days)]


def channel_mix(s: Session, ws: str, since: datetime) -> dict[str, dict[str, float]]:
    rows = s.execute(
        select(Send.channel, func.count(), func.coalesce(func.sum(Send.cost), 0.0), func.count(Send.sent_at))
        .where(Send.workspace_id == ws, Send.created_at >= since)
        .group_by(Send.channel)
    )
    return {c: {"messages": int(n), "cost": round(float(cost or 0), 4), "sent": int(sent)} for c, n, cost, sent in rows}


def engagement_by_day(s: Session, ws: str, days: Sequence[datetime]) -> dict[str, list[int]]:
    """Per day a message was planned: how many reached each engagement level (an open counts as
    delivered and sent too)."""
    index = {d.strftime("%Y-%m-%d"): i for i, d in enumerate(days)}
    out = {level: [0] * len(days) for level in ENGAGEMENT}
    rows = s.execute(
        select(Send.created_at, Send.status)
        .where(Send.workspace_id == ws, Send.created_at >= days[0], Send.status.in_(ENGAGEMENT))
        .limit(500_000)
    )
    for created, status in rows:
        i = index.get(created.strftime("%Y-%m-%d"))
        if i is None:
            continue
        for level in ENGAGEMENT:
            if ENGAGEMENT_ORDER[level] <= ENGAGEMENT_ORDER[status]:
                out[level][i] += 1
    return out


def satisfaction_by_week(s: Session, ws: str, since: datetime) -> tuple[list[str], dict[str, list[float | None]]]:
    """CSAT (% of answers 4–5 of 5) and NPS (% promoters − % detractors) per ISO week."""
    weeks: dict[str, dict[str, list[float]]] = {}
    rows = s.execute(
        select(Event.timestamp, Event.properties)
        .where(Event.workspace_id == ws, Event.name == SURVEY_EVENT, Event.timestamp >= since)
        .limit(200_000)
    )
    for at, properties in rows:
        props = properties or {}
        survey, score = props.get("survey"), props.get("score")
        if survey not in ("csat", "nps") or isinstance(score, bool) or not isinstance(score, int | float):
            continue
        year, week, _ = at.isocalendar()
        weeks.setdefault(f"{year}-W{week:02d}", {"csat": [], "nps": []})[survey].append(float(score))
    labels = sorted(weeks)
    csat: list[float | None] = []
    nps: list[float | None] = []
    for label in labels:
        c, n = weeks[label]["csat"], weeks[label]["nps"]
        csat.append(round(100 * sum(1 for v in c if v >= 4) / len(c), 1) if c else None)
        nps.append(round(100 * (sum(1 for v in n if v >= 9) - sum(1 for v in n if v <= 6)) / len(n), 1) if n else None)
    return labels, {"CSAT %": csat, "NPS": nps}


def clv_histogram(s: Session, ws: str, bins: int = 10) -> tuple[list[str], list[int], dict[str, float]]:
    """Customers by predicted lifetime value, in equal-width bins up to the 99th percentile (the
    last bin holds the tail, so one whale does not flatten the chart)."""
    values = sorted(
        v
        for (v,) in s.execute(
            select(CustomerScore.value).where(
                CustomerScore.workspace_id == ws, CustomerScore.name == "clv", CustomerScore.value.is_not(None)
            )
        )
        if v is not None and math.isfinite(v)
    )
    if not values:
        return [], [], {}
    top = values[min(len(values) - 1, int(len(values) * 0.99))] or values[-1] or 1.0
    width = top / bins if top > 0 else 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(v / width)))] += 1
    labels = [f"{i * width:,.0f}–{(i + 1) * width:,.0f}" for i in range(bins - 1)] + [f"{(bins - 1) * width:,.0f}+"]
    summary = {
        "customers": len(values),
        "median": round(values[len(values) // 2], 2),
        "mean": round(sum(values) / len(values), 2),
        "total": round(sum(values), 2),
    }
    return labels, counts, summary


@router.get("/analytics")
def analytics(
    request: Request,
    web: Viewer,
    period: Annotated[str, Query(pattern="^(7d|30d|90d)$")] = "30d",
) -> HTMLResponse:
    web.principal.require("viewer")
    ws = web.workspace_id
    now = clock.now()
    days = _days(now, PERIODS[period])
    with get_runtime(request).db.session() as s:
        mix = channel_mix(s, ws, days[0])
        engagement = engagement_by_day(s, ws, days)
        weeks, satisfaction = satisfaction_by_week(s, ws, now - timedelta(days=max(PERIODS[period], 84)))
        clv_labels, clv_counts, clv_summary = clv_histogram(s, ws)
    channels = sorted(mix)
    charts: dict[str, Any] = {
        "mix": bar_chart(
            "Messages per channel", "Channel", channels, {"messages": [mix[c]["messages"] for c in channels]}
        ),
        "cost": bar_chart("Cost per channel", "Channel", channels, {"cost": [mix[c]["cost"] for c in channels]}),
        "engagement": line_chart(
            "Messages by engagement level per day", "Day", [d.strftime("%d %b") for d in days], engagement
        ),
        "satisfaction": line_chart("CSAT and NPS per week", "Week", weeks, satisfaction),
        "clv": bar_chart("Customers by predicted lifetime value", "CLV", clv_labels, {"customers": clv_counts}),
    }
    return page(
        request,
        web,
        "app/analytics.html",
        section="analytics",
        period=period,
        periods=list(PERIODS),
        mix=mix,
        charts=charts,
        clv_summary=clv_summary,
        has_satisfaction=bool(weeks),
    )
