"""The Segment-compatible HTTP Tracking API: /v1/identify, track, page, screen, group, alias, batch.

Authenticated by a write key (basic-auth user name, or `writeKey` in the body as Segment allows).
A response of 200 means every accepted event is committed. In a batch, invalid events are reported
one by one with their index while the valid ones are stored: the answer is then a 400 carrying
both the errors and the count accepted.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from shopkeeper import clock
from shopkeeper.auth.http import credential_from_header
from shopkeeper.errors import Invalid, ShopkeeperError, TooLarge
from shopkeeper.events.limits import MAX_BATCH_BYTES, MAX_EVENT_BYTES, read_body
from shopkeeper.events.schemas import InboundEvent, parse_time, to_inbound
from shopkeeper.guard_middleware import has_nul
from shopkeeper.runtime import get_runtime

router = APIRouter(prefix="/v1", tags=["tracking"])
_OK = b'{"success":true}'
_MAX_BATCH_EVENTS = 10_000


def _refuse_nul(value: Any, field: str) -> None:
    if has_nul(orjson.dumps(value)):
        raise Invalid(f"{field}: contains a NUL character (\\u0000), which cannot be stored", field=field)


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        raise Invalid("body: empty; send a JSON object", field="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"body: malformed JSON ({exc.msg} at position {exc.pos})", field="body") from None


def _write_key(request: Request, payload: Any) -> str | None:
    key = credential_from_header(request.headers.get("authorization"))
    if key is None and isinstance(payload, dict) and isinstance(payload.get("writeKey"), str):
        key = payload["writeKey"]
    return key


def _ok() -> Response:
    return Response(content=_OK, media_type="application/json")


async def _single(request: Request, kind: str) -> Response:
    runtime = get_runtime(request)
    body = await read_body(request, MAX_EVENT_BYTES, "the event")
    payload = _parse_json(body)
    principal = runtime.keys.require(_write_key(request, payload), "write")
    if has_nul(body):
        _refuse_nul(payload, "body")
    event = to_inbound(payload, received_at=clock.now(), forced_type=kind)
    await runtime.writer.submit(principal.workspace_id, [event])
    return _ok()


@router.post("/identify", summary="Identify a user and record traits")
async def identify(request: Request) -> Response:
    return await _single(request, "identify")


@router.post("/track", summary="Record an action")
async def track(request: Request) -> Response:
    return await _single(request, "track")


@router.post("/page", summary="Record a page view")
async def page(request: Request) -> Response:
    return await _single(request, "page")


@router.post("/screen", summary="Record a screen view")
async def screen(request: Request) -> Response:
    return await _single(request, "screen")


@router.post("/group", summary="Associate a user with a group")
async def group(request: Request) -> Response:
    return await _single(request, "group")


@router.post("/alias", summary="Link a previous id to a user id")
async def alias(request: Request) -> Response:
    return await _single(request, "alias")


@router.post("/batch", summary="Send many events at once (up to 500 KB)")
async def batch(request: Request) -> Response:
    runtime = get_runtime(request)
    body = await read_body(request, MAX_BATCH_BYTES, "the batch")
    payload = _parse_json(body)
    principal = runtime.keys.require(_write_key(request, payload), "write")
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        raise Invalid("batch: must be a JSON array of events", field="batch")
    items: list[Any] = payload["batch"]
    if len(items) > _MAX_BATCH_EVENTS:
        raise TooLarge(f"batch: at most {_MAX_BATCH_EVENTS} events per request", field="batch")
    received_at = clock.now()
    batch_context = payload.get("context") if isinstance(payload.get("context"), dict) else None
    batch_sent_at = parse_time(payload.get("sentAt"), "sentAt")

    accepted: list[InboundEvent] = []
    errors: list[dict[str, Any]] = []
    nul_somewhere = has_nul(body)
    if nul_somewhere and batch_context is not None:
        _refuse_nul(batch_context, "context")
    for index, item in enumerate(items):
        try:
            encoded = orjson.dumps(item)
            if len(encoded) > MAX_EVENT_BYTES:
                raise TooLarge(f"event is over the {MAX_EVENT_BYTES // 1024} KB limit", field="body")
            if nul_somewhere and has_nul(encoded):
                raise Invalid("event contains a NUL character (\\u0000), which cannot be stored", field="body")
            accepted.append(
                to_inbound(item, received_at=received_at, batch_sent_at=batch_sent_at, batch_context=batch_context)
            )
        except ShopkeeperError as exc:
            message_id = item.get("messageId") if isinstance(item, dict) else None
            errors.append({"index": index, "messageId": message_id, **exc.as_dict()})

    await runtime.writer.submit(principal.workspace_id, accepted)
    if not errors:
        return _ok()
    first = errors[0]
    return JSONResponse(
        status_code=400,
        content={
            "error": {
                "code": first["code"],
                "message": f"{len(errors)} of {len(items)} events were rejected; "
                f"the first, at index {first['index']}: {first['message']}",
                "field": f"batch[{first['index']}].{first['field']}" if first["field"] else f"batch[{first['index']}]",
            },
            "accepted": len(accepted),
            "rejected": errors,
        },
    )
