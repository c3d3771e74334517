"""Routes for the suppression list: look up, add, lift (admin for changes, each audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from shopkeeper import clock
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.errors import Invalid
from shopkeeper.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from shopkeeper.privacy import suppressions
from shopkeeper.privacy.schemas import SuppressionIn, SuppressionOut, SuppressionPage

router = APIRouter()


@router.get("/suppressions", summary="The suppression list, newest first; look up an address by its keyed hash")
def list_suppressions(
    runtime: RuntimeDep,
    caller: Caller,
    channel: Annotated[str | None, Query(max_length=20)] = None,
    reason: Annotated[str | None, Query(max_length=20)] = None,
    address: Annotated[
        str | None, Query(max_length=512, description="finds erased entries too (they show no address)")
    ] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> SuppressionPage:
    caller.require("viewer")
    after = decode_cursor(cursor, 1)[0] if cursor else None
    if after is not None and not isinstance(after, str):
        raise Invalid("cursor: not a cursor this API returned", field="cursor")
    with runtime.db.session() as session:
        rows = suppressions.list_suppressions(
            session,
            caller.workspace_id,
            channel=channel,
            reason=reason,
            address=address,
            after_id=after,
            limit=limit + 1,
        )
        page = [SuppressionOut.model_validate(r) for r in rows[:limit]]
    return SuppressionPage(data=page, next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None)


@router.post(
    "/suppressions",
    status_code=201,
    summary="Suppress an address on a channel (200 with the existing entry if it is suppressed already)",
)
def add_suppression(runtime: RuntimeDep, caller: Caller, body: SuppressionIn, response: Response) -> SuppressionOut:
    caller.require("admin")
    with runtime.db.session(write=True) as session:
        row, created = suppressions.add_suppression(
            session,
            caller,
            channel=body.channel,
            address=body.address,
            reason=body.reason,
            note=body.note,
            now=clock.now(),
        )
        if not created:
            response.status_code = 200
        return SuppressionOut.model_validate(row)


@router.delete("/suppressions/{suppression_id}", summary="Lift a suppression (never one made by erasure: 409)")
def remove_suppression(runtime: RuntimeDep, caller: Caller, suppression_id: str) -> SuppressionOut:
    caller.require("admin")
    with runtime.db.session(write=True) as session:
        row = suppressions.remove_suppression(session, caller, suppression_id, clock.now())
        return SuppressionOut.model_validate(row)
