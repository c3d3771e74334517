"""What a template sees: the customer (traits, addresses), the triggering event, computed values,
and the links every marketing message carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.consent.tokens import preferences_url, unsubscribe_url
from shopkeeper.customers.models import Customer, Identity


def render_context(
    session: Session,
    workspace: Workspace,
    customer: Customer,
    ids: Sequence[str],
    *,
    channel: str,
    topic: str | None,
    data: Mapping[str, Any],
    now: datetime,
    base_url: str | None = None,
) -> dict[str, Any]:
    identities: dict[str, str] = {}
    for kind, value in session.execute(
        select(Identity.kind, Identity.value)
        .where(Identity.workspace_id == workspace.id, Identity.customer_id.in_(ids))
        .order_by(Identity.created_at)
    ):
        identities.setdefault(kind, value)
    traits = dict(customer.traits or {})
    person = {
        **traits,
        "id": customer.id,
        "traits": traits,
        "email": identities.get("email", traits.get("email")),
        "phone": identities.get("phone", traits.get("phone")),
        "user_id": identities.get("user_id"),
        "timezone": customer.timezone,
        "locale": customer.locale,
    }
    return {
        "customer": person,
        "traits": traits,
        "event": dict(data.get("event") or {}),
        "data": dict(data),
        "workspace": {"id": workspace.id, "name": workspace.name},
        "unsubscribe_url": unsubscribe_url(workspace, customer.id, channel, topic, now, base_url=base_url),
        "preferences_url": preferences_url(workspace, customer.id, now, base_url=base_url),
        "now": now.isoformat(),
    }
