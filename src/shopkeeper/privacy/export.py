"""GDPR export (SPEC §4): everything stored about one person, as one JSON document, streamed.

`plan_export` resolves the person first (so an unknown id is a 404 before a byte is sent) and
audits the export, in a short write transaction of its own; `export_chunks` then yields the
document piece by piece from a read transaction. Histories that grow without bound
(events, the consent log, the contact ledger) are read a page at a time by keyset on
(time, id) per profile, along the indexes those tables already have, so memory stays flat
whatever the number of events. What the segments domain derived about the person — segment
memberships with their entry and exit times, and computed scores — is in the header (a row per
segment or score: bounded). The shape is documented in docs/privacy.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_, select
from sqlalchemy.orm import Session

from shopkeeper import jsonutil
from shopkeeper.auth.models import AuditEntry
from shopkeeper.auth.principal import Principal
from shopkeeper.auth.service import audit
from shopkeeper.consent.models import ConsentEvent, Contact, ContactPreference, Subscription
from shopkeeper.customers.models import Customer, Identity, IdentityConflict, Merge
from shopkeeper.customers.service import profile_ids
from shopkeeper.events.models import Event
from shopkeeper.inbox.models import Conversation, ConversationEvent
from shopkeeper.journeys.optimiser_models import ChannelDecision, CustomerChannelStats
from shopkeeper.messaging.models import Interaction, Send
from shopkeeper.privacy.suppressions import addresses_of_profiles, matching
from shopkeeper.segments.models import CustomerScore, Segment, SegmentMembership

FORMAT = "shopkeeper.customer-export.v1"
PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class ExportPlan:
    workspace_id: str
    requested_id: str
    customer_id: str
    customer_ids: list[str]  # the live profile first, then the profiles merged into it


def plan_export(session: Session, principal: Principal, customer_id: str, *, now: datetime) -> ExportPlan:
    """Find the person (NotFound for an id that is not a customer of this workspace) and audit
    the export: handing someone's whole record out is an act worth a line in the log."""
    customer, ids = profile_ids(session, principal.workspace_id, customer_id)
    audit(
        session,
        principal,
        "customer.export",
        subject_type="customer",
        subject_id=customer.id,
        customer_id=customer.id,
        details={"requested_id": customer_id},
        now=now,
    )
    return ExportPlan(principal.workspace_id, customer_id, customer.id, ids)


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


def _paged(
    session: Session, plan: ExportPlan, model: type[Any], customer_col: str, time_col: str, page_size: int
) -> Iterator[list[dict[str, Any]]]:
    """Pages of a profile's history in time order, by keyset on (time, id): each page is one
    indexed range scan, however deep into the history it is."""
    table = _table(model)
    columns = [c for c in table.c if c.name != "workspace_id"]
    at_col, id_col, owner = table.c[time_col], table.c.id, table.c[customer_col]
    for customer_id in plan.customer_ids:
        after: tuple[datetime, str] | None = None
        while True:
            query = select(*columns).where(table.c.workspace_id == plan.workspace_id, owner == customer_id)
            if after is not None:
                at, id_ = after
                query = query.where(at_col >= at, or_(at_col > at, and_(at_col == at, id_col > id_)))
            rows = [dict(r) for r in session.execute(query.order_by(at_col, id_col).limit(page_size)).mappings()]
            if rows:
                yield rows
            if len(rows) < page_size:
                break
            after = (rows[-1][time_col], rows[-1]["id"])


def _segment_memberships(session: Session, workspace_id: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every membership row of the person's profiles — current (`exited_at` null) and past, in
    archived segments too — with the segment's key and name: what a row id alone would not tell
    them. Each entry and exit is also in their events ("Segment Entered" / "Segment Exited")."""
    m, s = SegmentMembership, Segment
    query = (
        select(
            m.segment_id,
            s.key.label("segment_key"),
            s.name.label("segment_name"),
            s.archived_at.label("segment_archived_at"),
            m.customer_id,
            m.entered_at,
            m.exited_at,
            m.version,
        )
        .join(s, s.id == m.segment_id)
        .where(m.workspace_id == workspace_id, s.workspace_id == workspace_id, m.customer_id.in_(ids))
        .order_by(m.entered_at, s.key, m.customer_id)
    )
    return [dict(r) for r in session.execute(query).mappings()]


def export_chunks(session: Session, plan: ExportPlan, *, now: datetime, page_size: int = PAGE_SIZE) -> Iterator[bytes]:
    """The export document, as UTF-8 JSON in pieces of at most about one page each."""
    ws, ids = plan.workspace_id, plan.customer_ids

    def rows(model: type[Any], *where: ColumnElement[bool], order: Sequence[Any]) -> list[dict[str, Any]]:
        table = _table(model)
        columns = [c for c in table.c if c.name != "workspace_id"]
        query = select(*columns).where(table.c.workspace_id == ws, *where).order_by(*order)
        return [dict(r) for r in session.execute(query).mappings()]

    profiles = rows(Customer, Customer.id.in_(ids), order=[Customer.created_at, Customer.id])
    by_id = {p["id"]: p for p in profiles}
    suppressions = matching(session, ws, addresses_of_profiles(session, ws, ids))
    header = {
        "format": FORMAT,
        "exported_at": now,
        "workspace_id": ws,
        "requested_id": plan.requested_id,
        "customer": by_id[plan.customer_id],
        "merged_ids": ids[1:],
        "merged_profiles": [by_id[i] for i in ids[1:] if i in by_id],
        "identities": rows(Identity, Identity.customer_id.in_(ids), order=[Identity.created_at, Identity.id]),
        "merges": rows(
            Merge,
            or_(Merge.source_customer_id.in_(ids), Merge.target_customer_id.in_(ids)),
            order=[Merge.created_at, Merge.id],
        ),
        "identity_conflicts": rows(
            IdentityConflict,
            or_(IdentityConflict.customer_id.in_(ids), IdentityConflict.other_customer_id.in_(ids)),
            order=[IdentityConflict.created_at, IdentityConflict.id],
        ),
        "subscriptions": rows(
            Subscription,
            Subscription.customer_id.in_(ids),
            order=[Subscription.channel, Subscription.topic, Subscription.customer_id],
        ),
        "preferences": rows(ContactPreference, ContactPreference.customer_id.in_(ids), order=[ContactPreference.id]),
        "segment_memberships": _segment_memberships(session, ws, ids),
        # RFM, CLV and its tier, P(alive) and churn risk, expected purchases, NPS and CSAT.
        "scores": rows(
            CustomerScore,
            CustomerScore.customer_id.in_(ids),
            order=[CustomerScore.customer_id, CustomerScore.name],
        ),
        "channel_stats": rows(
            CustomerChannelStats,
            CustomerChannelStats.customer_id.in_(ids),
            order=[CustomerChannelStats.customer_id, CustomerChannelStats.channel],
        ),
        # One row per message whose channel was chosen for them: as many as those sends.
        "channel_decisions": rows(
            ChannelDecision,
            ChannelDecision.customer_id.in_(ids),
            order=[ChannelDecision.decided_at, ChannelDecision.send_id],
        ),
        "suppressions": [
            {
                "id": s.id,
                "channel": s.channel,
                "address": s.address,
                "reason": s.reason,
                "note": s.note,
                "created_at": s.created_at,
            }
            for s in suppressions
        ],
        "audit": rows(
            AuditEntry,
            or_(
                AuditEntry.customer_id.in_(ids),
                AuditEntry.subject_id.in_([*ids, *(s.id for s in suppressions)]),
            ),
            order=[AuditEntry.created_at, AuditEntry.id],
        ),
    }
    # The header's closing brace is dropped: the paged sections follow it in the same object.
    yield jsonutil.dumps(header)[:-1].encode()
    for name, model, time_col in (
        ("consent_events", ConsentEvent, "created_at"),
        ("contacts", Contact, "at"),
        ("events", Event, "timestamp"),
        ("sends", Send, "created_at"),
        ("interactions", Interaction, "created_at"),
        ("conversations", Conversation, "created_at"),
        ("conversation_events", ConversationEvent, "created_at"),
    ):
        yield f',"{name}":['.encode()
        first = True
        for page in _paged(session, plan, model, "customer_id", time_col, page_size):
            text = ",".join(jsonutil.dumps(row) for row in page)
            yield (text if first else "," + text).encode()
            first = False
        yield b"]"
    yield b"}"
