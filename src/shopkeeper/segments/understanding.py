"""What the 360° view shows of a customer's understanding: their scores and segment memberships.

`customer_understanding` is the one function the customer view calls (it follows merges: the
id of a merged-away profile shows its survivor's scores and segments).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.customers.service import canonical
from shopkeeper.segments.models import CustomerScore, Segment, SegmentMembership


def customer_understanding(session: Session, workspace_id: str, customer_id: str) -> dict[str, Any]:
    """`{"customer_id", "scores": {name: {"value", "label", "computed_at"}}, "segments": [{"id",
    "key", "name", "entered_at", "version"}]}` — raises NotFound for an unknown customer."""
    customer = canonical(session, workspace_id, customer_id)
    scores: dict[str, dict[str, float | str | datetime | None]] = {}
    for score in session.scalars(
        select(CustomerScore)
        .where(CustomerScore.workspace_id == workspace_id, CustomerScore.customer_id == customer.id)
        .order_by(CustomerScore.name)
    ):
        scores[score.name] = {"value": score.value, "label": score.label, "computed_at": score.computed_at}
    rows = session.execute(
        select(Segment.id, Segment.key, Segment.name, SegmentMembership.entered_at, SegmentMembership.version)
        .join(SegmentMembership, SegmentMembership.segment_id == Segment.id)
        .where(
            SegmentMembership.workspace_id == workspace_id,
            SegmentMembership.customer_id == customer.id,
            SegmentMembership.exited_at.is_(None),
            Segment.workspace_id == workspace_id,
            Segment.archived_at.is_(None),
        )
        .order_by(Segment.key)
    )
    segments = [
        {"id": sid, "key": key, "name": name, "entered_at": entered_at, "version": version}
        for sid, key, name, entered_at, version in rows
    ]
    return {"customer_id": customer.id, "scores": scores, "segments": segments}
