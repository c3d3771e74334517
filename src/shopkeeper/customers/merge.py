"""Merging two profiles into one, and undoing it: the reversible half of identity resolution.

A merge moves the source's identities and events to the target and remembers exactly which
identities moved and both trait sets, so `unmerge` can split them again and hand each event back
to whichever profile now owns its identifiers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.customers.models import Customer, Identity, Merge
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.errors import Conflict
from shopkeeper.events.models import Event
from shopkeeper.ids import new_id


def bump_identity_epoch(session: Session, workspace_id: str) -> None:
    """Tell identity caches in every process that this workspace's identities moved."""
    session.execute(
        update(Workspace).where(Workspace.id == workspace_id).values(identity_epoch=Workspace.identity_epoch + 1)
    )


def _combined_traits(source: Customer, target: Customer) -> dict[str, Any]:
    """Keys from both; where both have a key, the profile updated last wins."""
    if source.updated_at > target.updated_at:
        return {**target.traits, **source.traits}
    return {**source.traits, **target.traits}


def merge_customers(
    session: Session,
    workspace_id: str,
    source_id: str,
    target_id: str,
    *,
    reason: str,
    trigger: str | None,
    now: datetime,
) -> tuple[Merge, list[tuple[str, str]]]:
    """Returns the merge record and the (kind, value) of every identifier that moved."""
    source = get_scoped(session, Customer, workspace_id, source_id, "customer")
    target = get_scoped(session, Customer, workspace_id, target_id, "customer")
    if source.merged_into or target.merged_into or source.id == target.id:
        raise Conflict(f"cannot merge {source_id} into {target_id}: one was merged already")

    moved = session.execute(
        select(Identity.id, Identity.kind, Identity.value).where(
            Identity.workspace_id == workspace_id, Identity.customer_id == source.id
        )
    ).all()
    identity_ids = [row.id for row in moved]
    absorbed = list(
        session.scalars(
            select(Customer.id).where(Customer.workspace_id == workspace_id, Customer.merged_into == source.id)
        )
    )
    record = Merge(
        id=new_id("mrg"),
        workspace_id=workspace_id,
        source_customer_id=source.id,
        target_customer_id=target.id,
        reason=reason[:500],
        trigger=trigger,
        identity_ids=identity_ids,
        absorbed_customer_ids=absorbed,
        source_traits=dict(source.traits),
        target_traits=dict(target.traits),
        created_at=now,
    )
    session.add(record)
    session.execute(
        update(Identity)
        .where(Identity.workspace_id == workspace_id, Identity.customer_id == source.id)
        .values(customer_id=target.id)
    )
    session.execute(
        update(Event)
        .where(Event.workspace_id == workspace_id, Event.customer_id == source.id)
        .values(customer_id=target.id)
    )
    if absorbed:
        session.execute(
            update(Customer)
            .where(Customer.workspace_id == workspace_id, Customer.id.in_(absorbed))
            .values(merged_into=target.id)
        )
    target.traits = _combined_traits(source, target)
    target.timezone = target.timezone or source.timezone
    target.locale = target.locale or source.locale
    target.updated_at = now
    source.merged_into = target.id
    source.updated_at = now
    bump_identity_epoch(session, workspace_id)
    session.flush()
    return record, [(row.kind, row.value) for row in moved]


def unmerge(session: Session, workspace_id: str, merge_id: str, *, actor: str, now: datetime) -> Merge:
    """Split a merge: identities it moved go back, events follow their identifiers."""
    record = get_scoped(session, Merge, workspace_id, merge_id, "merge")
    if record.undone_at is not None:
        raise Conflict(f"merge {merge_id} was already undone")
    target = get_scoped(session, Customer, workspace_id, record.target_customer_id, "customer")
    source = get_scoped(session, Customer, workspace_id, record.source_customer_id, "customer")
    if target.merged_into is not None:
        raise Conflict(
            f"customer {target.id} was merged into {target.merged_into} later; undo that merge first",
            field="merge_id",
        )

    moved_back = list(
        session.scalars(
            scoped(Identity, workspace_id).where(
                Identity.id.in_(record.identity_ids), Identity.customer_id == target.id
            )
        )
    )
    for identity in moved_back:
        identity.customer_id = source.id
    session.flush()

    def values_of(customer_id: str, kind: str) -> list[str]:
        return list(
            session.scalars(
                select(Identity.value).where(
                    Identity.workspace_id == workspace_id,
                    Identity.customer_id == customer_id,
                    Identity.kind == kind,
                )
            )
        )

    source_users = values_of(source.id, "user_id")
    source_anons = values_of(source.id, "anonymous_id")
    target_users = values_of(target.id, "user_id")
    # An event belongs to the profile holding its userId; failing that, its anonymousId.
    belongs_to_source = or_(
        Event.user_id.in_(source_users),
        and_(
            Event.anonymous_id.in_(source_anons),
            or_(Event.user_id.is_(None), Event.user_id.not_in(target_users)),
        ),
    )
    session.execute(
        update(Event)
        .where(Event.workspace_id == workspace_id, Event.customer_id == target.id, belongs_to_source)
        .values(customer_id=source.id)
    )
    if record.absorbed_customer_ids:
        session.execute(
            update(Customer)
            .where(
                Customer.workspace_id == workspace_id,
                Customer.id.in_(record.absorbed_customer_ids),
                Customer.merged_into == target.id,
            )
            .values(merged_into=source.id)
        )
    source.merged_into = None
    source.traits = dict(record.source_traits)
    source.updated_at = now
    record.undone_at = now
    record.undone_by = actor
    bump_identity_epoch(session, workspace_id)
    session.flush()
    return record
