"""Webhook endpoints: where a workspace's outbound webhooks go, which events each one wants, and
the secret each is signed with (generated here, shown once, rotated on request)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.channels.webhook.guard import check_url
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.errors import Invalid
from shopkeeper.ids import new_id
from shopkeeper.messaging.models import WebhookEndpoint

# The events an endpoint can subscribe to ("*": all of them, including ones added later).
EVENT_TYPES: dict[str, str] = {
    "send.status_changed": "a message moved to a new status: sent, delivered, opened, clicked, replied, "
    "bounced, complained, failed, suppressed or skipped",
    "call.recorded": "a call record was stored (POST /api/v1/calls)",
}
ALL_EVENTS = "*"
MAX_EVENTS = 50
SECRET_PREFIX = "whsec_"
_CACHE = "webhook_endpoints"  # session.info key: this transaction's subscriptions per workspace


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_hex(32)


def secret_hint(secret: str) -> str:
    """Enough to tell two secrets apart in a list, not enough to sign with."""
    return f"{SECRET_PREFIX}…{secret[-4:]}"


def check_events(events: Sequence[str]) -> list[str]:
    if not events:
        raise Invalid(f'events: name at least one event type, or "{ALL_EVENTS}" for all', field="events")
    if len(events) > MAX_EVENTS:
        raise Invalid(f"events: at most {MAX_EVENTS}", field="events")
    chosen: list[str] = []
    for index, name in enumerate(events):
        if name != ALL_EVENTS and name not in EVENT_TYPES:
            known = ", ".join(sorted(EVENT_TYPES))
            raise Invalid(f"events[{index}]: {name[:80]!r} is not an event type; one of {known} or *", field="events")
        if name not in chosen:
            chosen.append(name)
    return chosen


def _forget(session: Session, workspace_id: str) -> None:
    session.info.get(_CACHE, {}).pop(workspace_id, None)


def create_endpoint(
    session: Session,
    workspace_id: str,
    *,
    url: str,
    events: Sequence[str],
    enabled: bool,
    allow_private: bool,
    now: datetime,
) -> WebhookEndpoint:
    row = WebhookEndpoint(
        id=new_id("whe"),
        workspace_id=workspace_id,
        url=check_url(url, allow_private=allow_private),
        secret=new_secret(),
        events=check_events(events),
        enabled=enabled,
        created_at=now,
    )
    session.add(row)
    session.flush()
    _forget(session, workspace_id)
    return row


def get_endpoint(session: Session, workspace_id: str, endpoint_id: str) -> WebhookEndpoint:
    return get_scoped(session, WebhookEndpoint, workspace_id, endpoint_id, "webhook endpoint")


def list_endpoints(session: Session, workspace_id: str) -> list[WebhookEndpoint]:
    return list(session.scalars(scoped(WebhookEndpoint, workspace_id).order_by(WebhookEndpoint.created_at)))


def update_endpoint(
    session: Session, workspace_id: str, endpoint_id: str, changes: Mapping[str, Any], *, allow_private: bool
) -> WebhookEndpoint:
    row = get_endpoint(session, workspace_id, endpoint_id)
    if changes.get("url") is not None:
        row.url = check_url(changes["url"], allow_private=allow_private)
    if changes.get("events") is not None:
        row.events = check_events(changes["events"])
    if changes.get("enabled") is not None:
        row.enabled = bool(changes["enabled"])
    session.flush()
    _forget(session, workspace_id)
    return row


def rotate_secret(session: Session, workspace_id: str, endpoint_id: str) -> WebhookEndpoint:
    """A new secret at once (the old one stops signing): a receiver that accepts both while it
    switches (`verify([old, new], …)`) loses nothing."""
    row = get_endpoint(session, workspace_id, endpoint_id)
    row.secret = new_secret()
    session.flush()
    return row


def delete_endpoint(session: Session, workspace_id: str, endpoint_id: str) -> WebhookEndpoint:
    row = get_endpoint(session, workspace_id, endpoint_id)
    session.delete(row)
    session.flush()
    _forget(session, workspace_id)
    return row


def disable(session: Session, workspace_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    """Disabled by the system (the receiver answered 410 Gone); None if it is gone already."""
    row = session.scalar(
        scoped(WebhookEndpoint, workspace_id).where(WebhookEndpoint.id == endpoint_id).with_for_update()
    )
    if row is None or not row.enabled:
        return None
    row.enabled = False
    _forget(session, workspace_id)
    return row


def subscribed(session: Session, workspace_id: str, event_type: str) -> list[str]:
    """Ids of the enabled endpoints that want this event. Read once per transaction and
    workspace: status changes come in batches and most workspaces have no endpoint at all."""
    cache: dict[str, list[tuple[str, list[Any]]]] = session.info.setdefault(_CACHE, {})
    rows = cache.get(workspace_id)
    if rows is None:
        rows = cache[workspace_id] = [
            (endpoint_id, list(events or []))
            for endpoint_id, events in session.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.events)
                .where(WebhookEndpoint.workspace_id == workspace_id, WebhookEndpoint.enabled.is_(True))
                .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
            )
        ]
    return [endpoint_id for endpoint_id, events in rows if event_type in events or ALL_EVENTS in events]
