"""Admin API for customers: search, the 360° view, timeline, events, edits, unmerge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.auth.service import audit
from shopkeeper.customers import merge as merging
from shopkeeper.customers import search, service
from shopkeeper.customers.schemas import (
    ConflictOut,
    CustomerPage,
    CustomerPatch,
    CustomerSummary,
    CustomerView,
    EventOut,
    EventPage,
    IdentityIn,
    IdentityOut,
    MergeOut,
    TimelineItemOut,
    TimelinePage,
)
from shopkeeper.customers.sections import sections_for
from shopkeeper.customers.timeline import timeline
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, decode_time_cursor, encode_cursor

router = APIRouter(prefix="/api/v1", tags=["customers"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _region(session: Session, workspace_id: str) -> str | None:
    ws = session.get(Workspace, workspace_id)
    return (ws.settings or {}).get("default_phone_region") if ws else None


def _timeline_page(session: Session, ws: str, ids: list[str], cursor: str | None, limit: int) -> TimelinePage:
    before = decode_time_cursor(cursor) if cursor else None
    items, more = timeline(session, ws, ids, before, limit)
    return TimelinePage(
        data=[TimelineItemOut(at=i.at, id=i.id, kind=i.kind, summary=i.summary, data=i.data) for i in items],
        next_cursor=encode_cursor(items[-1].at, items[-1].id) if more and items else None,
    )


@router.get("/customers", summary="List or search customers")
def list_customers(
    runtime: RuntimeDep,
    caller: Caller,
    q: Annotated[
        str | None, Query(max_length=512, description="any identifier (exact or prefix) or a customer id")
    ] = None,
    trait: Annotated[list[str] | None, Query(description="name:value, repeatable; all must match")] = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> CustomerPage:
    filters = [search.parse_trait_filter(t) for t in trait or []]
    after = decode_cursor(cursor, 1)[0] if cursor else None
    if after is not None and not isinstance(after, str):
        after = None
    with runtime.db.session() as session:
        rows = search.search_customers(
            session,
            caller.workspace_id,
            q=q,
            traits=filters,
            after_id=after,
            limit=limit + 1,
            default_region=_region(session, caller.workspace_id),
        )
        page = rows[:limit]
        idents = service.identities_of(session, caller.workspace_id, [c.id for c in page])
        data = []
        for c in page:
            by_kind: dict[str, list[str]] = {}
            for identity in idents.get(c.id, []):
                by_kind.setdefault(identity.kind, []).append(identity.value)
            data.append(
                CustomerSummary(
                    id=c.id,
                    traits=c.traits,
                    timezone=c.timezone,
                    locale=c.locale,
                    created_at=c.created_at,
                    updated_at=c.updated_at,
                    identities=by_kind,
                )
            )
    return CustomerPage(data=data, next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None)


def customer_view(session: Session, ws: str, customer_id: str, limit: int) -> CustomerView:
    customer, ids = service.profile_ids(session, ws, customer_id)
    return CustomerView(
        id=customer.id,
        requested_id=customer_id,
        traits=customer.traits,
        timezone=customer.timezone,
        locale=customer.locale,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
        identities=[
            IdentityOut.model_validate(i) for i in service.identities_of(session, ws, [customer.id])[customer.id]
        ],
        merged_ids=ids[1:],
        merges=[MergeOut.model_validate(m) for m in service.merges_of(session, ws, customer.id)],
        conflicts=[ConflictOut.model_validate(c) for c in service.conflicts_of(session, ws, customer.id)],
        stats=service.event_stats(session, ws, ids),
        sections=sections_for(session, ws, ids),
        timeline=_timeline_page(session, ws, ids, None, limit),
    )


@router.get("/customers/{customer_id}", summary="The 360° view of one customer")
def get_customer(runtime: RuntimeDep, caller: Caller, customer_id: str, limit: Limit = DEFAULT_LIMIT) -> CustomerView:
    with runtime.db.session() as session:
        return customer_view(session, caller.workspace_id, customer_id, limit)


@router.get("/customers/{customer_id}/timeline", summary="A customer's timeline, newest first")
def get_timeline(
    runtime: RuntimeDep, caller: Caller, customer_id: str, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> TimelinePage:
    with runtime.db.session() as session:
        _, ids = service.profile_ids(session, caller.workspace_id, customer_id)
        return _timeline_page(session, caller.workspace_id, ids, cursor, limit)


@router.get("/customers/{customer_id}/events", summary="A customer's events, newest first")
def get_events(
    runtime: RuntimeDep,
    caller: Caller,
    customer_id: str,
    type: Annotated[str | None, Query(pattern="^(identify|track|page|screen|group|alias)$")] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> EventPage:
    before = decode_time_cursor(cursor) if cursor else None
    with runtime.db.session() as session:
        _, ids = service.profile_ids(session, caller.workspace_id, customer_id)
        rows = service.list_events(
            session, caller.workspace_id, ids, type_=type, name=name, before=before, limit=limit + 1
        )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].timestamp, page[-1].id) if len(rows) > limit else None
    return EventPage(data=[EventOut.model_validate(e) for e in page], next_cursor=next_cursor)


@router.patch("/customers/{customer_id}", summary="Change traits, time zone or locale")
def patch_customer(runtime: RuntimeDep, caller: Caller, customer_id: str, body: CustomerPatch) -> CustomerView:
    caller.require("agent")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        customer = service.canonical(session, caller.workspace_id, customer_id)
        changes = service.update_profile(
            session,
            caller.workspace_id,
            customer,
            traits=body.traits,
            timezone=body.timezone,
            locale=body.locale,
            actor=caller.actor,
            now=now,
            default_region=_region(session, caller.workspace_id),
        )
        audit(
            session,
            caller,
            "customer.update",
            subject_type="customer",
            subject_id=customer.id,
            customer_id=customer.id,
            details=changes,
            now=now,
        )
        return customer_view(session, caller.workspace_id, customer.id, DEFAULT_LIMIT)


@router.post("/customers/{customer_id}/identities", status_code=201, summary="Link an identifier")
def add_identity(runtime: RuntimeDep, caller: Caller, customer_id: str, body: IdentityIn) -> IdentityOut:
    caller.require("agent")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        customer = service.canonical(session, caller.workspace_id, customer_id)
        identity = service.add_identity(
            session,
            caller.workspace_id,
            customer,
            body.kind,
            body.value,
            actor=caller.actor,
            now=now,
            default_region=_region(session, caller.workspace_id),
        )
        audit(
            session,
            caller,
            "identity.link",
            subject_type="identity",
            subject_id=identity.id,
            customer_id=customer.id,
            details={"kind": identity.kind, "value": identity.value},
            now=now,
        )
        return IdentityOut.model_validate(identity)


@router.post("/merges/{merge_id}/undo", summary="Undo a merge (unmerge)")
def undo_merge(runtime: RuntimeDep, caller: Caller, merge_id: str) -> MergeOut:
    caller.require("admin")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        record = merging.unmerge(session, caller.workspace_id, merge_id, actor=caller.actor, now=now)
        audit(
            session,
            caller,
            "customer.unmerge",
            subject_type="merge",
            subject_id=record.id,
            customer_id=record.target_customer_id,
            details={"source": record.source_customer_id, "target": record.target_customer_id},
            now=now,
        )
        out = MergeOut.model_validate(record)
    runtime.identity_cache.clear()
    return out
