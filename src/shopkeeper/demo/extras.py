"""What makes the demo shop a working business and not only a history: topics, templates,
segments and computed scores, journeys and a weekly campaign, and customers writing in.

Everything goes through the same services the API uses, and every step is idempotent by key, so
running the demo again adds nothing twice. The inbound messages wait for the inbox worker of
`shopkeeper serve` to classify and route them, as real mail would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from shopkeeper.consent.models import Topic
from shopkeeper.consent.service import create_topic
from shopkeeper.customers.models import Identity
from shopkeeper.db.scoping import by_key, scoped
from shopkeeper.db.session import Database
from shopkeeper.inbox import hooks as _inbox_hooks  # noqa: F401 - inbound messages join conversations
from shopkeeper.journeys import service as journeys
from shopkeeper.journeys.models import Journey
from shopkeeper.messaging import inbound
from shopkeeper.messaging.models import Interaction, Template
from shopkeeper.messaging.template_service import create_template
from shopkeeper.segments import service as segments
from shopkeeper.segments.models import Segment
from shopkeeper.segments.scores.run import compute_all

ACTOR = "demo"
TOPICS = (
    ("offers", "Offers", "Discounts and new arrivals", ("email", "sms", "push")),
    ("newsletter", "Weekly letter", "The weekly letter from the shop", ("email",)),
)
TEMPLATES: tuple[tuple[str, str, str, str | None, dict[str, Any]], ...] = (
    (
        "welcome",
        "Welcome",
        "transactional",
        None,
        {
            "email": {
                "subject": "Welcome to the shop, {{ customer.first_name | default: 'friend' }}",
                "text": "Hello {{ customer.first_name | default: 'there' }},\n\nThanks for signing up. "
                "Our best sellers are one click away.\n",
            },
            "sms": {"text": "Welcome {{ customer.first_name }}! Reply STOP to opt out."},
        },
    ),
    (
        "order-thanks",
        "Order thanks",
        "transactional",
        None,
        {
            "email": {
                "subject": "Thank you for your order",
                "text": "Hi {{ customer.first_name }}, your order {{ trigger.properties.order_id }} is on its way.",
            }
        },
    ),
    (
        "win-back",
        "We miss you",
        "marketing",
        "offers",
        {
            "email": {
                "subject": "We miss you, {{ customer.first_name }} — 15% off your next order",
                "text": "It has been a while. Here is 15% off: WELCOME-BACK.\n\n{{ unsubscribe_url }}",
            },
            "sms": {"text": "{{ customer.first_name }}, 15% off your next order: WELCOME-BACK"},
            "push": {"title": "We miss you", "body": "15% off your next order"},
        },
    ),
    (
        "weekly-letter",
        "Weekly letter",
        "marketing",
        "newsletter",
        {
            "email": {
                "subject": "This week at the shop",
                "text": "New beans, a brewing guide and this week's offers.\n\n{{ unsubscribe_url }}",
            }
        },
    ),
)
SEGMENTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("buyers", "Buyers", {"event": {"name": "Order Completed"}}),
    (
        "vip",
        "VIP (3+ orders in 90 days)",
        {"event": {"name": "Order Completed", "op": "gte", "count": 3, "within_days": 90}},
    ),
    (
        "lapsed",
        "Lapsed buyers (no order in 60 days)",
        {
            "and": [
                {"event": {"name": "Order Completed"}},
                {"not_performed": {"name": "Order Completed", "within_days": 60}},
            ]
        },
    ),
)
JOURNEYS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "welcome-series",
        "Welcome series",
        {
            "trigger": {"type": "event", "event": "Signed Up"},
            "goal": {"event": "Order Completed", "within": "14d"},
            "steps": [
                {"id": "hello", "type": "send", "channel": "email", "template": "welcome"},
                {"id": "two-days", "type": "wait", "duration": "2d"},
                {
                    "id": "bought",
                    "type": "branch",
                    "cases": [{"condition": {"event": {"name": "Order Completed"}}, "next": "end"}],
                    "else": "nudge",
                },
                {"id": "nudge", "type": "send", "channel": "auto", "channels": ["email", "sms"], "template": "welcome"},
            ],
        },
    ),
    (
        "order-thanks",
        "Order thanks",
        {
            "trigger": {"type": "event", "event": "Order Completed"},
            "reentry": {"policy": "always"},
            "steps": [{"id": "thanks", "type": "send", "channel": "email", "template": "order-thanks"}],
        },
    ),
    (
        "win-back",
        "Win back lapsed buyers",
        {
            "trigger": {"type": "segment_entered", "segment": "lapsed"},
            "goal": {"event": "Order Completed", "within": "30d"},
            "steps": [
                {"id": "control", "type": "holdout", "percent": 10},
                {"id": "offer", "type": "send", "channel": "auto", "template": "win-back", "value": 20},
                {"id": "week", "type": "wait", "duration": "7d"},
                {"id": "done", "type": "goal"},
            ],
        },
    ),
    (
        "weekly-letter",
        "Weekly letter (campaign)",
        {
            "trigger": {
                "type": "schedule",
                "cron": "0 9 * * 4",
                "timezone": "Europe/London",
                "segment": "buyers",
                "local_time": "09:00",
                "per_minute": 600,
            },
            "steps": [{"id": "letter", "type": "send", "channel": "email", "template": "weekly-letter"}],
        },
    ),
)
# Customers writing in: (channel, text). The model decides intent and sentiment when served.
INBOUND = (
    ("email", "Hi, where is my order? It was supposed to arrive on Monday and the tracking has not moved."),
    ("email", "The grinder arrived broken and nobody answers my emails. This is the worst service ever."),
    ("chat", "Do you ship to Ireland? And how long does it take?"),
    ("email", "Please cancel my subscription to the monthly beans, thank you."),
    ("sms", "Love the Colombia Huila, best coffee I've had all year!"),
    ("email", "I was charged twice for order 10412, can you refund one of them?"),
    ("chat", "Is the burr grinder back in stock soon?"),
    ("email", "Thanks for the quick replacement, the new kettle works perfectly."),
)


@dataclass
class ExtrasReport:
    topics: int = 0
    templates: int = 0
    segments: list[str] = field(default_factory=list)
    scored: int = 0
    journeys: list[str] = field(default_factory=list)
    messages: int = 0


def add_extras(db: Database, workspace_id: str, now: datetime, *, seed: int = 7) -> ExtrasReport:
    report = ExtrasReport()
    with db.session(write=True) as s:
        for key, name, purpose, channels in TOPICS:
            if s.scalar(scoped(Topic, workspace_id).where(Topic.key == key)) is None:
                create_topic(
                    s,
                    workspace_id,
                    key=key,
                    name=name,
                    purpose=purpose,
                    lawful_basis="legitimate_interest",
                    channels=channels,
                    now=now,
                )
                report.topics += 1
        for key, name, kind, topic, content in TEMPLATES:
            if by_key(s, Template, workspace_id, key) is None:
                create_template(
                    s, workspace_id, key=key, name=name, kind=kind, topic=topic, content=content, actor=ACTOR, now=now
                )
                report.templates += 1
        for key, name, conditions in SEGMENTS:
            if by_key(s, Segment, workspace_id, key) is None:
                segments.create(
                    s,
                    workspace_id,
                    key=key,
                    name=name,
                    description="",
                    purpose="marketing",
                    conditions=conditions,
                    actor=ACTOR,
                    now=now,
                )
    with db.session(write=True) as s:
        for segment in segments.active_segments(s, workspace_id):
            result = segments.refresh(s, segment, now)
            report.segments.append(f"{result.key} {result.members}")
    report.scored = compute_all(db, workspace_id, now).rfm_customers
    with db.session(write=True) as s:
        for key, name, definition in JOURNEYS:
            if by_key(s, Journey, workspace_id, key) is None:
                journey = journeys.create(s, workspace_id, key=key, name=name, raw=definition, actor=ACTOR, now=now)
                journeys.activate(s, journey, ACTOR, now)
                report.journeys.append(key)
    report.messages = _write_in(db, workspace_id, now, seed)
    return report


def _write_in(db: Database, workspace_id: str, now: datetime, seed: int) -> int:
    rng = random.Random(seed)
    written = 0
    with db.session(write=True) as s:
        if s.scalar(scoped(Interaction, workspace_id).where(Interaction.direction == "in").limit(1)) is not None:
            return 0
        people = list(
            s.execute(
                select(Identity.customer_id, Identity.value)
                .where(Identity.workspace_id == workspace_id, Identity.kind == "email")
                .order_by(Identity.customer_id)
                .limit(200)
            )
        )
        if not people:
            return 0
        for i, (channel, text) in enumerate(INBOUND):
            customer_id, email = people[rng.randrange(len(people))]
            at = now - timedelta(hours=rng.uniform(0.2, 30))
            inbound.receive(
                s,
                workspace_id,
                channel=channel,
                kind="email" if channel == "email" else "chat" if channel == "chat" else "phone",
                address=email if channel == "email" else f"demo-{i}",
                text=text,
                now=at,
                provider="demo",
                provider_message_id=f"demo-inbound-{i}",
                customer_id=customer_id,
            )
            written += 1
    return written
