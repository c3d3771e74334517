"""Event subscriptions: `publish` plans one webhook send per enabled endpoint that wants the
event, in the caller's transaction (the outbox: the event goes out if and only if what caused it
commits), idempotent per (endpoint, event id).

Every status move of a send is published as `send.status_changed` (except the moves of webhook
sends themselves, which would feed on each other). What a receiver gets:

    {"id": "evt_…", "type": "send.status_changed", "created_at": "2026-03-01T12:00:00+00:00",
     "workspace_id": "ws_…", "data": {…}}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from shopkeeper.channels.webhook.endpoints import EVENT_TYPES, subscribed
from shopkeeper.db.scoping import scoped
from shopkeeper.errors import Invalid
from shopkeeper.ids import new_id
from shopkeeper.messaging.models import Send
from shopkeeper.messaging.send_service import enqueue
from shopkeeper.messaging.status import on_status_change

log = logging.getLogger(__name__)
# The body of an event delivery: the envelope as JSON, rendered like any webhook template.
EVENT_CONTENT = {"webhook": {"body": "{{ event | json }}"}}


def publish(
    session: Session,
    workspace_id: str,
    event_type: str,
    payload: Mapping[str, Any],
    *,
    customer_id: str,
    now: datetime,
    event_id: str | None = None,
) -> list[Send]:
    """Plan the event's delivery to every endpoint subscribed to `event_type`; returns the sends
    planned now (an endpoint that has this event id already is not sent it again).

    Every send is about a customer (the outbox row names one, and the consent gate asks about
    them), so an event names the customer it concerns."""
    if event_type not in EVENT_TYPES:
        raise Invalid(f"event_type: {event_type!r} is not an event type", field="event_type")
    endpoints = subscribed(session, workspace_id, event_type)
    if not endpoints:
        return []
    event_id = event_id or new_id("evt")
    envelope = {
        "id": event_id,
        "type": event_type,
        "created_at": now.isoformat(),
        "workspace_id": workspace_id,
        "data": dict(payload),
    }
    planned: list[Send] = []
    for endpoint_id in endpoints:
        key = f"webhook:{endpoint_id}:{event_id}"
        if session.scalar(scoped(Send, workspace_id).where(Send.idempotency_key == key)) is not None:
            continue
        send, created = enqueue(
            session,
            workspace_id,
            customer_id=customer_id,
            channel="webhook",
            content=EVENT_CONTENT,
            data={"endpoint_id": endpoint_id, "event": envelope},
            kind="transactional",
            idempotency_key=key,
            source="system",
            source_ref=f"{event_type}:{event_id}"[:200],
            now=now,
        )
        if created:
            planned.append(send)
    return planned


def status_payload(send: Send, previous: str, at: datetime, reason: str | None) -> dict[str, Any]:
    return {
        "send_id": send.id,
        "customer_id": send.customer_id,
        "channel": send.channel,
        "kind": send.kind,
        "topic": send.topic,
        "template_id": send.template_id,
        "template_version": send.template_version,
        "source": send.source,
        "source_ref": send.source_ref,
        "status": send.status,
        "previous_status": previous,
        "reason": reason,
        "at": at.isoformat(),
        "provider": send.provider,
        "provider_message_id": send.provider_message_id,
        "idempotency_key": send.idempotency_key,
    }


@on_status_change
def _publish_status_change(session: Session, send: Send, previous: str, at: datetime, reason: str | None) -> None:
    if send.channel == "webhook" or not subscribed(session, send.workspace_id, "send.status_changed"):
        return
    try:
        # A savepoint: whatever goes wrong here must not undo the status change that caused it.
        with session.begin_nested():
            publish(
                session,
                send.workspace_id,
                "send.status_changed",
                status_payload(send, previous, at, reason),
                customer_id=send.customer_id,
                now=at,
            )
    except Exception:
        log.exception("webhooks: could not publish the status change of send %s", send.id)
