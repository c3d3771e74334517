"""What the 360° view shows of a customer's understanding: their scores and segment memberships.

`customer_understanding` is the one function the customer view calls (it follows merges: the
id of a merged-away profile shows its survivor's scores and segments). `section` is the same,
shaped as the 360° view's "segments" section; segments/api.py registers it with the customer
domain (which knows nothing of segments).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.customers.service import canonical
from shopkeeper.segments.models import CustomerScore, Segment, SegmentMembership
from shopkeeper.segments.schemas import SegmentsSection


def customer_understanding(session: Session, workspace_id: str, customer_id: str) -> dict[str, Any]:
    """`{"customer_id", "scores": {name: {"value", "label", "computed_at"}}, "segments": [{"id",
    "key", "name", "entered_at", "version"}]}` — raises NotFound for an unknown customer."""
    customer = canonical(session, workspace_id, customer_id)
    return {
        "customer_id": customer.id,
        "scores": _scores(session, workspace_id, customer.id),
        "segments": _segments(session, workspace_id, customer.id),
    }


def section(session: Session, workspace_id: str, ids: Sequence[str]) -> dict[str, Any]:
    """The 360° view's "segments" section for a live profile (`ids[0]`; the others are merged
    into it): `{"memberships": [{"id", "key", "name", "entered_at", "version"}], "scores": {name:
    {"value", "label", "computed_at"}}}`, JSON-ready. Memberships and scores are those of the
    live profile only: a merged-away profile's rows are what it was before the merge, and the
    next refresh or score run drops them."""
    customer_id = ids[0]
    return SegmentsSection.model_validate(
        {
            "memberships": _segments(session, workspace_id, customer_id),
            "scores": _scores(session, workspace_id, customer_id),
        }
    ).model_dump(mode="json")


def _scores(session: Session, workspace_id: str, customer_id: str) -> dict[str, dict[str, Any]]:
    """Every score stored for the customer (RFM, CLV, churn risk and P(alive), NPS and CSAT
    where they answered a survey), by name."""
    return {
        score.name: {"value": score.value, "label": score.label, "computed_at": score.computed_at}
        for score in session.scalars(
            select(CustomerScore)
            .where(CustomerScore.workspace_id == workspace_id, CustomerScore.customer_id == customer_id)
            .order_by(CustomerScore.name)
        )
    }


def _segments(session: Session, workspace_id: str, customer_id: str) -> list[dict[str, Any]]:
    """The segments the customer is in now (not archived ones), by key."""
    rows = session.execute(
        select(Segment.id, Segment.key, Segment.name, SegmentMembership.entered_at, SegmentMembership.version)
        .join(SegmentMembership, SegmentMembership.segment_id == Segment.id)
        .where(
            SegmentMembership.workspace_id == workspace_id,
            SegmentMembership.customer_id == customer_id,
            SegmentMembership.exited_at.is_(None),
            Segment.workspace_id == workspace_id,
            Segment.archived_at.is_(None),
        )
        .order_by(Segment.key)
    )
    return [
        {"id": sid, "key": key, "name": name, "entered_at": entered_at, "version": version}
        for sid, key, name, entered_at, version in rows
    ]
