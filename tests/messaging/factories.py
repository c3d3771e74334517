"""Builders for messaging tests: templates, provider accounts and planned sends, through the
services the API uses."""

from __future__ import annotations

from typing import Any

from shopkeeper import clock
from shopkeeper.db.session import Database
from shopkeeper.messaging import provider_service, send_service, template_service
from shopkeeper.messaging.models import Send, SendEvent

WELCOME = {
    "email": {
        "subject": "Welcome, {{ customer.first_name | default: 'friend' }}",
        "html": '<html><body><p>Hi {{ customer.first_name }}</p><a href="https://acme.test/shop?a=1&amp;b=2">Shop</a>'
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>',
        "text": "Hi {{ customer.first_name }}, see https://acme.test/shop",
    },
    "sms": {"text": "Hi {{ customer.first_name }}: 10% off today"},
}


def make_template(
    db: Database,
    workspace_id: str,
    key: str = "welcome",
    *,
    kind: str = "transactional",
    topic: str | None = None,
    content: dict[str, Any] | None = None,
) -> str:
    with db.session(write=True) as s:
        template, _ = template_service.create_template(
            s,
            workspace_id,
            key=key,
            name=key.title(),
            kind=kind,
            topic=topic,
            content=content or WELCOME,
            actor="test",
            now=clock.now(),
        )
        return template.id


def add_provider(db: Database, workspace_id: str, **values: Any) -> str:
    row = {"channel": "email", "type": "smtp", "priority": 0, "settings": {}, "enabled": True, **values}
    row.setdefault("rate_per_second", None)
    row.setdefault("cost_per_unit", None)
    row.setdefault("currency", None)
    with db.session(write=True) as s:
        return provider_service.create_provider(s, workspace_id, row, clock.now()).id


def plan(db: Database, workspace_id: str, customer_id: str, **values: Any) -> str:
    values.setdefault("channel", "email")
    if "content" not in values:
        values.setdefault("template", "welcome")
    with db.session(write=True) as s:
        send, _ = send_service.enqueue(s, workspace_id, customer_id=customer_id, now=clock.now(), **values)
        return send.id


def load(db: Database, send_id: str) -> tuple[Send, list[SendEvent]]:
    with db.session() as s:
        send = s.get(Send, send_id)
        assert send is not None
        from sqlalchemy import select

        events = list(
            s.scalars(select(SendEvent).where(SendEvent.send_id == send_id).order_by(SendEvent.at, SendEvent.id))
        )
        return send, events
