"""The dashboard: the workspace at a glance — customers, today's events, messages by channel and
status, open conversations and SLA breaches, running journeys and open alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from shopkeeper import clock
from shopkeeper.customers.models import Customer
from shopkeeper.events.models import Event
from shopkeeper.inbox.models import Conversation
from shopkeeper.journeys.models import Alert, Journey
from shopkeeper.messaging.models import Send
from shopkeeper.runtime import get_runtime
from shopkeeper.web.charts import bar_chart, day_labels
from shopkeeper.web.render import page
from shopkeeper.web.session import Viewer

router = APIRouter(include_in_schema=False)
STATUSES = ("queued", "sent", "delivered", "opened", "clicked", "replied", "bounced", "failed", "skipped")


@router.get("/")
def dashboard(request: Request, web: Viewer) -> HTMLResponse:
    ws = web.workspace_id
    now = clock.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with get_runtime(request).db.session() as s:
        figures: dict[str, Any] = {
            "customers": s.scalar(
                select(func.count()).where(Customer.workspace_id == ws, Customer.merged_into.is_(None))
            ),
            "events_today": s.scalar(select(func.count()).where(Event.workspace_id == ws, Event.timestamp >= today)),
            "open_conversations": s.scalar(
                select(func.count()).where(
                    Conversation.workspace_id == ws, Conversation.status.in_(("open", "pending"))
                )
            ),
            "sla_breaches": s.scalar(
                select(func.count()).where(
                    Conversation.workspace_id == ws,
                    Conversation.status != "resolved",
                    Conversation.sla_breached != [],
                )
            ),
            "running_journeys": s.scalar(
                select(func.count()).where(Journey.workspace_id == ws, Journey.status == "active")
            ),
            "open_alerts": s.scalar(select(func.count()).where(Alert.workspace_id == ws, Alert.resolved_at.is_(None))),
        }
        days = [today - timedelta(days=13 - i) for i in range(14)]
        per_day: dict[str, int] = {}
        for (day,) in s.execute(
            select(Event.timestamp).where(Event.workspace_id == ws, Event.timestamp >= days[0]).limit(200_000)
        ):
            key = day.strftime("%Y-%m-%d")
            per_day[key] = per_day.get(key, 0) + 1
        messages: dict[str, dict[str, int]] = {}
        for channel, status, n in s.execute(
            select(Send.channel, Send.status, func.count())
            .where(Send.workspace_id == ws, Send.created_at >= now - timedelta(days=7))
            .group_by(Send.channel, Send.status)
        ):
            messages.setdefault(channel, {})[status] = int(n)
        alerts = list(
            s.scalars(
                select(Alert)
                .where(Alert.workspace_id == ws, Alert.resolved_at.is_(None))
                .order_by(Alert.created_at.desc())
                .limit(10)
            )
        )
    labels = day_labels(days)
    events_chart = bar_chart(
        "Events per day over the last 14 days",
        "Day",
        labels,
        {"events": [per_day.get(d.strftime("%Y-%m-%d"), 0) for d in days]},
    )
    channels = sorted(messages)
    messages_chart = bar_chart(
        "Messages by channel and status over the last 7 days",
        "Channel",
        channels,
        {
            status: [messages[c].get(status, 0) for c in channels]
            for status in ("sent", "delivered", "opened", "clicked", "bounced", "failed")
        },
        stacked=True,
    )
    return page(
        request,
        web,
        "app/dashboard.html",
        section="dashboard",
        figures=figures,
        messages=messages,
        statuses=STATUSES,
        alerts=alerts,
        events_chart=events_chart,
        messages_chart=messages_chart,
    )
