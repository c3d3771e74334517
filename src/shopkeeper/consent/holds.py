"""Pausing marketing while a customer's trouble is open (SPEC §6: inbound and outbound are one
loop). The inbox places a hold when a conversation turns out to be a complaint or gets a poor
CSAT answer or review, and lifts it when the conversation is resolved; `can_contact` reads it.
One hold per (customer, source): placing it again is a no-op."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shopkeeper.consent.models import MarketingHold
from shopkeeper.ids import new_id

HOLD_REASONS = ("complaint", "poor_csat", "poor_review")


def place(session: Session, workspace_id: str, customer_id: str, reason: str, source_ref: str, now: datetime) -> bool:
    """True when a new hold was placed."""
    existing = session.scalar(
        select(MarketingHold.id).where(
            MarketingHold.workspace_id == workspace_id,
            MarketingHold.customer_id == customer_id,
            MarketingHold.source_ref == source_ref,
            MarketingHold.lifted_at.is_(None),
        )
    )
    if existing is not None:
        return False
    session.add(
        MarketingHold(
            id=new_id("hld"),
            workspace_id=workspace_id,
            customer_id=customer_id,
            reason=reason,
            source_ref=source_ref,
            created_at=now,
        )
    )
    return True


def lift(session: Session, workspace_id: str, source_ref: str, now: datetime) -> int:
    result = session.execute(
        update(MarketingHold)
        .where(
            MarketingHold.workspace_id == workspace_id,
            MarketingHold.source_ref == source_ref,
            MarketingHold.lifted_at.is_(None),
        )
        .values(lifted_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def active(session: Session, workspace_id: str, profile_ids: Sequence[str]) -> MarketingHold | None:
    return session.scalar(
        select(MarketingHold)
        .where(
            MarketingHold.workspace_id == workspace_id,
            MarketingHold.customer_id.in_(list(profile_ids)),
            MarketingHold.lifted_at.is_(None),
        )
        .order_by(MarketingHold.created_at)
        .limit(1)
    )
