"""Builders for consent tests: a customer with addresses, topics, a policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.consent import service
from shopkeeper.consent.models import ConsentEvent, Subscription
from shopkeeper.consent.service import Proof
from shopkeeper.customers.models import Identity
from shopkeeper.db.session import Database
from tests.helpers import ingest, message


def make_customer(
    db: Database,
    workspace_id: str,
    user_id: str,
    *,
    email: str | None = None,
    phone: str | None = None,
    timezone: str | None = None,
) -> str:
    traits: dict[str, Any] = {}
    if email:
        traits["email"] = email
    if phone:
        traits["phone"] = phone
    if timezone:
        traits["timezone"] = timezone
    ingest(db, workspace_id, [message("identify", userId=user_id, traits=traits)])
    with db.session() as s:
        customer_id = s.scalar(
            select(Identity.customer_id).where(
                Identity.workspace_id == workspace_id, Identity.kind == "user_id", Identity.value == user_id
            )
        )
    assert customer_id is not None
    return customer_id


def make_topic(
    db: Database,
    workspace_id: str,
    key: str = "offers",
    *,
    lawful_basis: str = "consent",
    channels: tuple[str, ...] = ("email", "sms", "push"),
    double_opt_in: bool = False,
) -> None:
    with db.session(write=True) as s:
        service.create_topic(
            s,
            workspace_id,
            key=key,
            name=key.title(),
            purpose=f"{key} we think you will like",
            lawful_basis=lawful_basis,
            channels=channels,
            double_opt_in=double_opt_in,
            now=clock.now(),
        )


def set_status(
    db: Database, workspace_id: str, customer_id: str, channel: str, topic: str, status: str, source: str = "api"
) -> None:
    with db.session(write=True) as s:
        service.set_status(s, workspace_id, customer_id, channel, topic, status, Proof(source=source), clock.now())


def set_policy(db: Database, workspace_id: str, policy: dict[str, Any]) -> None:
    with db.session(write=True) as s:
        ws = s.get(Workspace, workspace_id)
        assert ws is not None
        ws.settings = {**(ws.settings or {}), "contact_policy": policy}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def workspace_row(db: Database, workspace_id: str) -> Workspace:
    """The Workspace row (with its signing secret), usable after its session has closed."""
    with db.session() as s:
        ws = s.get(Workspace, workspace_id)
        assert ws is not None
        return ws


def set_settings(db: Database, workspace_id: str, **settings: Any) -> None:
    with db.session(write=True) as s:
        ws = s.get(Workspace, workspace_id)
        assert ws is not None
        ws.settings = {**(ws.settings or {}), **settings}


def consent_log(db: Database, workspace_id: str, customer_id: str | None = None) -> list[ConsentEvent]:
    """The workspace's consent events (one customer's if given), oldest first."""
    query = select(ConsentEvent).where(ConsentEvent.workspace_id == workspace_id)
    if customer_id is not None:
        query = query.where(ConsentEvent.customer_id == customer_id)
    with db.session() as s:
        return list(s.scalars(query.order_by(ConsentEvent.created_at, ConsentEvent.id)))


def status_of(db: Database, workspace_id: str, customer_id: str, channel: str, topic: str) -> str:
    """The stored status of one (customer, channel, topic); "unknown" when there is no row."""
    with db.session() as s:
        status = s.scalar(
            select(Subscription.status).where(
                Subscription.workspace_id == workspace_id,
                Subscription.customer_id == customer_id,
                Subscription.channel == channel,
                Subscription.topic == topic,
            )
        )
    return status or "unknown"
