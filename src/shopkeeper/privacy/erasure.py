"""GDPR erasure (SPEC §4): delete everything about a person and keep only hashed suppressions.

Everything happens in the caller's transaction, so an erasure is all or nothing: the API and the
CLI commit once `erase_customer` returns, and any failure on the way leaves every row in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Text, case, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session

from shopkeeper import jsonutil
from shopkeeper.auth.models import AuditEntry
from shopkeeper.auth.principal import Principal
from shopkeeper.auth.service import audit
from shopkeeper.consent.addresses import CHANNELS_OF_KIND, SUPPRESSIBLE_CHANNELS
from shopkeeper.consent.models import ConsentEvent, Contact, ContactPreference, MarketingHold, Subscription
from shopkeeper.consent.service import suppress_everywhere
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.customers.merge import bump_identity_epoch
from shopkeeper.customers.models import Customer, Identity, IdentityConflict, Merge
from shopkeeper.customers.resolution import ResolutionUnit
from shopkeeper.customers.service import canonical
from shopkeeper.events.models import Event
from shopkeeper.inbox.models import Conversation, ConversationEvent, TriageTask
from shopkeeper.journeys.models import JourneyRun, JourneyStep
from shopkeeper.journeys.optimiser_models import ChannelDecision, CustomerChannelStats
from shopkeeper.messaging.models import Interaction, Send, SendEvent
from shopkeeper.privacy.suppressions import addresses_of_profiles, matching
from shopkeeper.segments.models import CustomerScore, Segment, SegmentMembership

# What audit entries keep of their details once the person they were about is erased.
SCRUBBED = {"scrubbed": "customer erased"}


@dataclass(slots=True)
class Erasure:
    """What was erased: ids and counts only, never a value that identified the person."""

    workspace_id: str
    customer_id: str
    customer_ids: list[str]
    identity_ids: list[str] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)
    suppressed_addresses: int = 0
    audit_scrubbed: int = 0


def erase_customer(session: Session, principal: Principal, customer_id: str, *, now: datetime) -> Erasure:
    """Erase a customer: the live profile behind `customer_id` and every profile merged into it.

    1. every email, phone and device token they had is suppressed on every channel it reaches,
       with reason `erased` and no readable address (only the keyed hash), so the address is
       refused even if it comes back through ingestion; entries that existed already lose their
       address and become `erased` too (they can then never be lifted);
    2. their identities, events, subscriptions, consent log, preferences, contacts, segment
       memberships and scores, and the merges and identity conflicts that mention them are
       deleted, then the profiles (no "Segment Exited" event is written: it would be a new trace;
       the member counts of the segments they were in go down instead);
    3. audit entries about them keep their row (who did what, when) but lose their details;
    4. the identity epoch moves on, so no identity cache in any process keeps pointing an
       identifier at an erased id (the API also clears its own cache after the commit);
    5. the erasure itself is audited, with counts only.

    EXTEND THIS when a domain starts storing personal data about a customer: message bodies
    (interactions, conversations, notes), journey runs and sends must be
    deleted in `_delete_rows`, before the profiles. The privacy test that searches every table
    for the erased person's identifiers will fail until they are.
    """
    workspace_id = principal.workspace_id
    survivor = canonical(session, workspace_id, customer_id)
    erasure = Erasure(workspace_id, survivor.id, _profile_ids(session, workspace_id, survivor.id))
    keys = _lock(session, erasure, now)
    erasure.suppressed_addresses = _suppress_addresses(session, erasure, keys, now)
    erasure.audit_scrubbed = _scrub_audit(session, erasure, keys)
    _delete_rows(session, erasure)
    bump_identity_epoch(session, workspace_id)
    audit(
        session,
        principal,
        "customer.erase",
        subject_type="customer",
        subject_id=erasure.customer_id,
        customer_id=erasure.customer_id,
        details={
            "requested_id": customer_id,
            "customer_ids": erasure.customer_ids,
            "deleted": erasure.deleted,
            "suppressed_addresses": erasure.suppressed_addresses,
            "audit_entries_scrubbed": erasure.audit_scrubbed,
        },
        now=now,
    )
    session.flush()
    return erasure


def _profile_ids(session: Session, workspace_id: str, customer_id: str) -> list[str]:
    """The profile and everything merged into it, following chains should any exist."""
    ids, frontier = [customer_id], [customer_id]
    while frontier:
        children = [
            c
            for c in session.scalars(
                select(Customer.id).where(Customer.workspace_id == workspace_id, Customer.merged_into.in_(frontier))
            )
            if c not in ids
        ]
        ids += children
        frontier = children
    return ids


def _identities(session: Session, erasure: Erasure) -> list[tuple[str, str, str]]:
    rows = session.execute(
        select(Identity.id, Identity.kind, Identity.value).where(
            Identity.workspace_id == erasure.workspace_id, Identity.customer_id.in_(erasure.customer_ids)
        )
    )
    return [(row.id, row.kind, row.value) for row in rows]


def _lock(session: Session, erasure: Erasure, now: datetime) -> list[tuple[str, str]]:
    """On PostgreSQL, first the workspace's segment rows, in id order as every membership change
    takes them (so a real-time evaluation or a refresh that read the person before the erasure
    cannot write a membership after it: it waits, then finds no customer); then the identifier
    locks ingestion takes (so a concurrent batch with one of these identifiers waits for the
    erasure, then finds nothing) and then the profile rows (so a concurrent `reserve_contact`
    waits, then finds no customer). Same order as ingestion: no deadlock. Returns the identities
    as they are once locked."""
    session.execute(
        select(Segment.id).where(Segment.workspace_id == erasure.workspace_id).order_by(Segment.id).with_for_update()
    )
    before = _identities(session, erasure)
    ResolutionUnit(session, erasure.workspace_id, IdentityCache(0), now).lock([(k, v) for _, k, v in before])
    session.execute(
        select(Customer.id)
        .where(Customer.workspace_id == erasure.workspace_id, Customer.id.in_(erasure.customer_ids))
        .with_for_update()
    )
    locked = _identities(session, erasure)
    erasure.identity_ids = [id_ for id_, _, _ in locked]
    return [(kind, value) for _, kind, value in locked]


def _suppress_addresses(session: Session, erasure: Erasure, keys: Sequence[tuple[str, str]], now: datetime) -> int:
    ws = erasure.workspace_id
    for kind, value in keys:
        if kind in CHANNELS_OF_KIND:
            suppress_everywhere(session, ws, kind, value, "erased", now, keep_address=False)
    # Entries that existed before (a bounce, a STOP, or a chat entry by user id) lose their
    # readable address and their note, and become permanent.
    entries = matching(session, ws, addresses_of_profiles(session, ws, erasure.customer_ids))
    for entry in entries:
        if entry.reason != "erased":
            entry.note = f"customer erased; was {entry.reason}"
            entry.reason = "erased"
        entry.address = None
    session.flush()
    return sum(1 for entry in entries if entry.channel in SUPPRESSIBLE_CHANNELS)


def _needles(erasure: Erasure, keys: Sequence[tuple[str, str]]) -> list[str]:
    """What to look for in audit details. Emails, phones and profile ids are distinctive enough
    to find inside any text; short user ids and tokens only as a whole JSON string, so that
    erasing user "u1" does not blank every entry that happens to contain those two letters."""
    needles = set(erasure.customer_ids)
    for kind, value in keys:
        if kind in ("email", "phone"):
            needles.add(value)
            needles.add(jsonutil.dumps(value)[1:-1])  # as escaped inside JSON text
        else:
            needles.add(jsonutil.dumps(value))
    return sorted(needles)


def _scrub_audit(session: Session, erasure: Erasure, keys: Sequence[tuple[str, str]]) -> int:
    """Audit rows about the person keep who, what and when, and lose their details. Found by
    profile id, by subject, and by the person's identifiers inside the details (entries such as
    a suppression added for their address name no customer)."""
    details_text = cast(AuditEntry.details, Text)
    subjects = [*erasure.customer_ids, *erasure.identity_ids]
    conditions: list[Any] = [AuditEntry.customer_id.in_(erasure.customer_ids), AuditEntry.subject_id.in_(subjects)]
    conditions += [details_text.contains(needle, autoescape=True) for needle in _needles(erasure, keys)]
    result = session.execute(
        update(AuditEntry)
        .where(AuditEntry.workspace_id == erasure.workspace_id, or_(*conditions))
        .values(details=SCRUBBED)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _delete_rows(session: Session, erasure: Erasure) -> None:
    """Every row that belongs to the person, children before the profiles they point at."""
    ws, ids = erasure.workspace_id, erasure.customer_ids

    def gone(kind: str, model: type[Any], *where: Any) -> None:
        result = session.execute(
            delete(model).where(model.workspace_id == ws, *where).execution_options(synchronize_session=False)
        )
        erasure.deleted[kind] = int(result.rowcount or 0)  # type: ignore[attr-defined]

    if session.get_bind().dialect.name == "postgresql":
        # A journeys worker holds its claimed runs until its round commits; wait for it here,
        # so the sends and step rows that round writes are committed before they are deleted.
        session.execute(
            select(JourneyRun.id)
            .where(JourneyRun.workspace_id == ws, JourneyRun.customer_id.in_(ids))
            .with_for_update()
        )
    gone("events", Event, Event.customer_id.in_(ids))
    gone("consent_events", ConsentEvent, ConsentEvent.customer_id.in_(ids))
    gone("subscriptions", Subscription, Subscription.customer_id.in_(ids))
    gone("preferences", ContactPreference, ContactPreference.customer_id.in_(ids))
    gone("contacts", Contact, Contact.customer_id.in_(ids))
    # Messages both ways, with their bodies; a send's history by its send ids.
    sends = select(Send.id).where(Send.workspace_id == ws, Send.customer_id.in_(ids)).scalar_subquery()
    gone("send_events", SendEvent, SendEvent.send_id.in_(sends))
    gone("sends", Send, Send.customer_id.in_(ids))
    gone("interactions", Interaction, Interaction.customer_id.in_(ids))
    # Conversations with their event log (notes quote the customer), triage queue and holds.
    conversations = (
        select(Conversation.id)
        .where(Conversation.workspace_id == ws, Conversation.customer_id.in_(ids))
        .scalar_subquery()
    )
    gone("inbox_triage", TriageTask, TriageTask.conversation_id.in_(conversations))
    gone("conversation_events", ConversationEvent, ConversationEvent.customer_id.in_(ids))
    gone("conversations", Conversation, Conversation.customer_id.in_(ids))
    gone("marketing_holds", MarketingHold, MarketingHold.customer_id.in_(ids))
    # The channels chosen for them and their own engagement counts (the workspace's totals are
    # anonymous and stay).
    gone("channel_decisions", ChannelDecision, ChannelDecision.customer_id.in_(ids))
    gone("customer_channel_stats", CustomerChannelStats, CustomerChannelStats.customer_id.in_(ids))
    # Journey runs keep the trigger's properties; their step log says what was done to whom.
    gone("journey_steps", JourneyStep, JourneyStep.customer_id.in_(ids))
    gone("journey_runs", JourneyRun, JourneyRun.customer_id.in_(ids))
    _leave_segments(session, ws, ids)
    gone("segment_memberships", SegmentMembership, SegmentMembership.customer_id.in_(ids))
    gone("scores", CustomerScore, CustomerScore.customer_id.in_(ids))
    gone(
        "identity_conflicts",
        IdentityConflict,
        or_(IdentityConflict.customer_id.in_(ids), IdentityConflict.other_customer_id.in_(ids)),
    )
    gone("merges", Merge, or_(Merge.source_customer_id.in_(ids), Merge.target_customer_id.in_(ids)))
    gone("identities", Identity, Identity.customer_id.in_(ids))
    gone("customers", Customer, Customer.id.in_(ids))


def _leave_segments(session: Session, workspace_id: str, ids: Sequence[str]) -> None:
    """The segments the person is in now count one member fewer (a merged-away profile whose
    row is still open was counted too, until the next refresh closed it)."""
    current = session.execute(
        select(SegmentMembership.segment_id, func.count())
        .where(
            SegmentMembership.workspace_id == workspace_id,
            SegmentMembership.customer_id.in_(ids),
            SegmentMembership.exited_at.is_(None),
        )
        .group_by(SegmentMembership.segment_id)
    ).all()
    for segment_id, count in current:
        session.execute(
            update(Segment)
            .where(Segment.workspace_id == workspace_id, Segment.id == segment_id)
            .values(member_count=case((Segment.member_count > count, Segment.member_count - count), else_=0))
            .execution_options(synchronize_session=False)
        )
