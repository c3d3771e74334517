"""Admin API for segments (/api/v1/segments) and scores (/api/v1/scores).

Marketers create and change segments; viewers read them. Every change is validated in full
before anything is written (errors name the bad node: `conditions.and[2].event.within_days`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from shopkeeper import clock
from shopkeeper.auth.service import audit
from shopkeeper.customers.sections import register_section
from shopkeeper.db.scoping import scoped
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from shopkeeper.segments import service
from shopkeeper.segments.models import ScoreRun, Segment
from shopkeeper.segments.schemas import (
    MemberOut,
    MemberPage,
    PreviewCustomer,
    PreviewIn,
    PreviewOut,
    RefreshOut,
    ScoreRunOut,
    ScoresOut,
    SegmentIn,
    SegmentOut,
    SegmentPage,
    SegmentPatch,
    UnderstandingOut,
    VersionOut,
)
from shopkeeper.segments.understanding import customer_understanding, section

router = APIRouter(prefix="/api/v1", tags=["segments"])
# The 360° view (GET /customers/{id}) shows current segments and scores as sections.segments.
register_section("segments", section)
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    value = decode_cursor(cursor, 1)[0]
    return value if isinstance(value, str) else None


@router.post("/segments", status_code=201, summary="Create a segment (validated, versioned)")
def create_segment(runtime: RuntimeDep, caller: Caller, body: SegmentIn) -> SegmentOut:
    caller.require("marketer")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        segment = service.create(
            session,
            caller.workspace_id,
            key=body.key,
            name=body.name,
            description=body.description,
            purpose=body.purpose,
            conditions=body.conditions,
            actor=caller.actor,
            now=now,
        )
        audit(
            session,
            caller,
            "segment.create",
            subject_type="segment",
            subject_id=segment.id,
            now=now,
            details={"key": segment.key, "version": segment.version, "purpose": segment.purpose},
        )
        return SegmentOut.model_validate(segment)


@router.get("/segments", summary="List segments")
def list_segments(
    runtime: RuntimeDep,
    caller: Caller,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    archived: bool = False,
) -> SegmentPage:
    caller.require("viewer")
    after = _after(cursor)
    with runtime.db.session() as session:
        query = scoped(Segment, caller.workspace_id)
        if not archived:
            query = query.where(Segment.archived_at.is_(None))
        if after is not None:
            query = query.where(Segment.id > after)
        rows = list(session.scalars(query.order_by(Segment.id).limit(limit + 1)))
    page = rows[:limit]
    return SegmentPage(
        data=[SegmentOut.model_validate(s) for s in page],
        next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None,
    )


@router.post("/segments/preview", summary="Live size and first members of an unsaved definition")
def preview_segment(runtime: RuntimeDep, caller: Caller, body: PreviewIn) -> PreviewOut:
    caller.require("viewer")
    with runtime.db.session() as session:
        result = service.preview(
            session, caller.workspace_id, body.conditions, body.purpose, limit=body.limit, now=clock.now()
        )
        return PreviewOut(
            count=result.count,
            customers=[PreviewCustomer(id=c.id, traits=c.traits) for c in result.customers],
            milliseconds=round(result.milliseconds, 2),
        )


@router.get("/segments/{segment_id}", summary="One segment")
def get_segment(runtime: RuntimeDep, caller: Caller, segment_id: str) -> SegmentOut:
    caller.require("viewer")
    with runtime.db.session() as session:
        return SegmentOut.model_validate(service.get(session, caller.workspace_id, segment_id))


@router.patch("/segments/{segment_id}", summary="Rename, or change the definition (a new version)")
def patch_segment(runtime: RuntimeDep, caller: Caller, segment_id: str, body: SegmentPatch) -> SegmentOut:
    caller.require("marketer")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        segment = service.update(
            session,
            caller.workspace_id,
            segment_id,
            name=body.name,
            description=body.description,
            conditions=body.conditions,
            purpose=body.purpose,
            actor=caller.actor,
            now=now,
        )
        audit(
            session,
            caller,
            "segment.update",
            subject_type="segment",
            subject_id=segment.id,
            now=now,
            details={"version": segment.version},
        )
        return SegmentOut.model_validate(segment)


@router.delete("/segments/{segment_id}", summary="Archive a segment (its history stays)")
def archive_segment(runtime: RuntimeDep, caller: Caller, segment_id: str) -> SegmentOut:
    caller.require("marketer")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        segment = service.archive(session, caller.workspace_id, segment_id, actor=caller.actor, now=now)
        audit(session, caller, "segment.archive", subject_type="segment", subject_id=segment.id, now=now)
        return SegmentOut.model_validate(segment)


@router.get("/segments/{segment_id}/versions", summary="Every saved version of a segment, newest first")
def segment_versions(runtime: RuntimeDep, caller: Caller, segment_id: str) -> list[VersionOut]:
    caller.require("viewer")
    with runtime.db.session() as session:
        return [VersionOut.model_validate(v) for v in service.versions(session, caller.workspace_id, segment_id)]


@router.get("/segments/{segment_id}/members", summary="Current members, by customer id")
def segment_members(
    runtime: RuntimeDep, caller: Caller, segment_id: str, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> MemberPage:
    caller.require("viewer")
    with runtime.db.session() as session:
        rows = service.members_page(session, caller.workspace_id, segment_id, after=_after(cursor), limit=limit + 1)
    page = rows[:limit]
    return MemberPage(
        data=[MemberOut.model_validate(m) for m in page],
        next_cursor=encode_cursor(page[-1].customer_id) if len(rows) > limit else None,
    )


@router.post("/segments/{segment_id}/refresh", summary="Re-evaluate a segment now")
def refresh_segment(runtime: RuntimeDep, caller: Caller, segment_id: str) -> RefreshOut:
    caller.require("marketer")
    with runtime.db.session(write=True) as session:
        segment = service.get(session, caller.workspace_id, segment_id)
        if segment.archived_at is not None:
            from shopkeeper.errors import Conflict

            raise Conflict(f"segment {segment.key!r} is archived", field="id")
        result = service.refresh(session, segment, clock.now())
    return RefreshOut(members=result.members, entered=result.entered, exited=result.exited, seconds=result.seconds)


@router.post("/scores/refresh", summary="Compute RFM, CLV, churn risk, NPS and CSAT now")
def refresh_scores(runtime: RuntimeDep, caller: Caller) -> ScoresOut:
    caller.require("marketer")
    # numpy/scipy load on first use: a server that never fits a model does not carry them.
    from shopkeeper.segments.scores import run as scores_run

    scores_run.compute_all(runtime.db, caller.workspace_id, clock.now())
    return score_models(runtime, caller)


@router.get("/scores/models", summary="The latest fitted models and workspace figures (NPS, CSAT)")
def score_models(runtime: RuntimeDep, caller: Caller) -> ScoresOut:
    caller.require("viewer")
    with runtime.db.session() as session:
        latest = {}
        for run in session.scalars(scoped(ScoreRun, caller.workspace_id).order_by(ScoreRun.computed_at, ScoreRun.id)):
            latest[run.kind] = run
    return ScoresOut(runs=[ScoreRunOut.model_validate(r) for _, r in sorted(latest.items())])


@router.get("/scores/customers/{customer_id}", summary="A customer's scores and current segments")
def customer_scores(runtime: RuntimeDep, caller: Caller, customer_id: str) -> UnderstandingOut:
    caller.require("viewer")
    with runtime.db.session() as session:
        return UnderstandingOut.model_validate(customer_understanding(session, caller.workspace_id, customer_id))
