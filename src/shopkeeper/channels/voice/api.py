"""Call records in: POST /api/v1/calls (one call) and /api/v1/calls/batch (up to 500, each
checked and stored on its own, as /v1/batch does with events)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from shopkeeper import clock
from shopkeeper.channels.voice import calls
from shopkeeper.channels.voice.schemas import CallBatchIn, CallBatchOut, CallError, CallIn, CallOut
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.errors import Invalid, ShopkeeperError
from shopkeeper.messaging.models import Interaction

router = APIRouter(prefix="/api/v1", tags=["calls"])


def _out(stored: calls.StoredCall) -> CallOut:
    row: Interaction = stored.interaction
    data = row.data or {}
    return CallOut(
        id=row.id,
        customer_id=row.customer_id,
        external_id=str(data.get("external_id", row.provider_message_id)),
        direction=row.direction,
        disposition=row.status,
        started_at=row.created_at,
        duration_seconds=float(data.get("duration_seconds", 0)),
        subject=row.subject or "",
        created=stored.created,
    )


@router.post(
    "/calls",
    status_code=201,
    summary="Record a call; it joins the customer's timeline (idempotent on external_id)",
)
def record_call(runtime: RuntimeDep, caller: Caller, body: CallIn, response: Response) -> CallOut:
    caller.require("agent")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        workspace = calls.workspace_of(session, caller.workspace_id)
        checked = calls.check(session, workspace, body, now)
        calls.lock(session, workspace.id, [checked], now)
        stored = calls.record_call(session, workspace, checked, now=now, actor=caller.actor)
        out = _out(stored)
    if not stored.created:
        response.status_code = 200
    runtime.delivery.wake()  # a call.recorded webhook may be due
    return out


def _invalid(exc: ValidationError) -> Invalid:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or None
    message = "is required" if first.get("type") == "missing" else first.get("msg", "invalid")
    return Invalid(f"{field}: {message}" if field else message, field=field)


@router.post(
    "/calls/batch",
    summary="Record many calls; each is checked on its own and the answer lists what was refused",
    response_model=CallBatchOut,
    responses={400: {"description": "some calls were refused (the others are stored): `rejected` lists them"}},
)
def record_calls(runtime: RuntimeDep, caller: Caller, body: CallBatchIn) -> Any:
    caller.require("agent")
    now = clock.now()
    stored: list[CallOut] = []
    rejected: list[CallError] = []
    with runtime.db.session(write=True) as session:
        workspace = calls.workspace_of(session, caller.workspace_id)
        checked: list[tuple[int, calls.Checked]] = []
        for index, item in enumerate(body.calls):
            try:
                try:
                    call = CallIn.model_validate(item)
                except ValidationError as exc:
                    raise _invalid(exc) from None
                checked.append((index, calls.check(session, workspace, call, now)))
            except ShopkeeperError as exc:
                external_id = item.get("external_id")
                rejected.append(
                    CallError(
                        index=index,
                        external_id=external_id if isinstance(external_id, str) else None,
                        code=exc.code,
                        message=exc.message,
                        field=f"calls[{index}].{exc.field}" if exc.field else f"calls[{index}]",
                    )
                )
        calls.lock(session, workspace.id, [c for _, c in checked], now)
        for index, item_checked in checked:
            try:
                with session.begin_nested():
                    result = calls.record_call(session, workspace, item_checked, now=now, actor=caller.actor)
                stored.append(_out(result))
            except ShopkeeperError as exc:
                rejected.append(
                    CallError(
                        index=index,
                        external_id=item_checked.call.external_id,
                        code=exc.code,
                        message=exc.message,
                        field=f"calls[{index}].{exc.field}" if exc.field else f"calls[{index}]",
                    )
                )
    runtime.delivery.wake()
    rejected.sort(key=lambda e: e.index)
    created = sum(1 for s in stored if s.created)
    out = CallBatchOut(stored=stored, created=created, duplicates=len(stored) - created, rejected=rejected)
    if not rejected:
        return out
    first = rejected[0]
    return JSONResponse(
        status_code=400,
        content={
            "error": {
                "code": first.code,
                "message": f"{len(rejected)} of {len(body.calls)} calls were refused; "
                f"the first, at index {first.index}: {first.message}",
                "field": first.field,
            },
            **out.model_dump(mode="json"),
        },
    )
