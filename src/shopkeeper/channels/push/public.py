"""Public Web Push routes for the site's pages (authenticated like the chat: the write key, and a
verified user id or the browser's anonymous id):

- `GET  /push/vapid-public-key?write_key=…` → the applicationServerKey for `pushManager.subscribe`
- `POST /push/subscriptions` → keep the browser's PushSubscription for the visitor's customer
- `DELETE /push/subscriptions` → forget it (the page unsubscribed)

They are called from another origin (the shop's pages), so they answer CORS preflights; the
workspace's `allowed_origins`, when set, is enforced on the real request.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from shopkeeper import clock
from shopkeeper.auth.http import credential_from_header
from shopkeeper.channels.chat.visitors import Claims, identify, workspace_for_key
from shopkeeper.channels.push import subscriptions
from shopkeeper.channels.push.vapid import load as load_vapid
from shopkeeper.channels.push.vapid import public_key_of
from shopkeeper.errors import Invalid, NotFound, ShopkeeperError
from shopkeeper.messaging.models import ChannelProvider
from shopkeeper.runtime import Runtime, get_runtime

router = APIRouter(tags=["push"])
MAX_BODY = 8 * 1024


def _cors(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    headers = {"Vary": "Origin"}
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


def _answer(request: Request, status: int, content: dict[str, Any]) -> JSONResponse:
    return JSONResponse(content, status_code=status, headers=_cors(request))


def _error(request: Request, exc: ShopkeeperError) -> JSONResponse:
    return _answer(request, exc.status, {"error": exc.as_dict()})


@router.options("/push/subscriptions", include_in_schema=False)
@router.options("/push/vapid-public-key", include_in_schema=False)
def preflight(request: Request) -> Response:
    return Response(
        status_code=204,
        headers={
            **_cors(request),
            "Access-Control-Allow-Methods": "GET, POST, DELETE",
            "Access-Control-Allow-Headers": "Content-Type, Authorization",
            "Access-Control-Max-Age": "600",
        },
    )


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise Invalid(f"body: over {MAX_BODY // 1024} KB", field="body")
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise Invalid("body: malformed JSON", field="body") from None
    if not isinstance(body, dict):
        raise Invalid("body: a JSON object", field="body")
    return body


def _write_key(request: Request, body: dict[str, Any]) -> str | None:
    given = body.get("write_key")
    if isinstance(given, str) and given:
        return given
    return credential_from_header(request.headers.get("authorization"))


def _claims(request: Request, body: dict[str, Any]) -> Claims:
    def text(name: str) -> str | None:
        value = body.get(name)
        return value if isinstance(value, str) else None

    return Claims(
        write_key=_write_key(request, body),
        user_id=text("user_id"),
        user_token=text("user_token"),
        anonymous_id=text("anonymous_id"),
        origin=request.headers.get("origin"),
    )


def _public_key(runtime: Runtime, write_key: str | None) -> str:
    workspace_id = workspace_for_key(runtime.keys, write_key)
    with runtime.db.session() as session:
        settings = session.scalars(
            select(ChannelProvider.settings)
            .where(
                ChannelProvider.workspace_id == workspace_id,
                ChannelProvider.channel == "push",
                ChannelProvider.type == "webpush",
                ChannelProvider.enabled.is_(True),
            )
            .order_by(ChannelProvider.priority, ChannelProvider.name)
        ).first()
    if settings is None:
        raise NotFound("no web push provider is configured for this workspace")
    return public_key_of(load_vapid(settings.get("vapid_private_key")).private_key)


@router.get("/push/vapid-public-key", include_in_schema=False)
async def vapid_public_key(request: Request) -> JSONResponse:
    runtime = get_runtime(request)
    key = request.query_params.get("write_key") or credential_from_header(request.headers.get("authorization"))
    try:
        public_key = await run_in_threadpool(_public_key, runtime, key)
    except ShopkeeperError as exc:
        return _error(request, exc)
    return _answer(request, 200, {"public_key": public_key})


def _subscribe(runtime: Runtime, claims: Claims, raw: Any) -> dict[str, Any]:
    workspace_id = workspace_for_key(runtime.keys, claims.write_key)
    subscription = subscriptions.check(raw, allow_private=runtime.settings.push_allow_private)
    with runtime.db.session(write=True) as session:
        visitor = identify(session, workspace_id, claims)
        identity, _ = subscriptions.register(session, visitor, subscription, clock.now())
        return {"id": identity.id, "endpoint": subscription.endpoint, "status": "subscribed"}


@router.post("/push/subscriptions", include_in_schema=False)
async def subscribe(request: Request) -> JSONResponse:
    runtime = get_runtime(request)
    try:
        body = await _body(request)
        result = await run_in_threadpool(_subscribe, runtime, _claims(request, body), body.get("subscription"))
    except ShopkeeperError as exc:
        return _error(request, exc)
    return _answer(request, 201, result)


def _unsubscribe(runtime: Runtime, claims: Claims, endpoint: Any) -> int:
    workspace_id = workspace_for_key(runtime.keys, claims.write_key)
    if not isinstance(endpoint, str) or not endpoint:
        raise Invalid("endpoint: the subscription's endpoint URL", field="endpoint")
    with runtime.db.session(write=True) as session:
        return subscriptions.remove(session, workspace_id, endpoint.strip())


@router.delete("/push/subscriptions", include_in_schema=False)
async def unsubscribe(request: Request) -> JSONResponse:
    runtime = get_runtime(request)
    try:
        body = await _body(request)
        removed = await run_in_threadpool(_unsubscribe, runtime, _claims(request, body), body.get("endpoint"))
    except ShopkeeperError as exc:
        return _error(request, exc)
    return _answer(request, 200, {"removed": removed})
