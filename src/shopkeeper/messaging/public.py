"""Public tracking endpoints: the open pixel and the click redirect. No login (a mail client
fetches them), so everything rests on the signed token; a bad token still gets the pixel or a
plain 404 page, never an error trace, and never a redirect to an unsigned address."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.messaging.models import Send
from shopkeeper.messaging.status import record
from shopkeeper.messaging.tracking import Tracked, verify, workspace_of
from shopkeeper.runtime import get_runtime

router = APIRouter(tags=["tracking"])
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_CACHE = {"Cache-Control": "no-store, private", "Pragma": "no-cache"}


def _check(request: Request, token: str) -> Tracked | None:
    workspace_id = workspace_of(token)
    if workspace_id is None:
        return None
    db = get_runtime(request).db
    with db.session() as session:
        secret = session.scalar(select(Workspace.signing_secret).where(Workspace.id == workspace_id))
    return verify(token, secret) if secret else None


def _record(request: Request, tracked: Tracked, status: str) -> None:
    now = clock.now()
    agent = request.headers.get("user-agent", "")[:300]
    with get_runtime(request).db.session(write=True) as session:
        send = session.scalar(select(Send).where(Send.workspace_id == tracked.workspace_id, Send.id == tracked.send_id))
        if send is None:
            return
        extra: dict[str, Any] = {"url": tracked.url} if tracked.url else {}
        record(session, send, status, now, None, user_agent=agent, **extra)


@router.get("/t/o/{token}", include_in_schema=False)
def open_pixel(request: Request, token: str) -> Response:
    tracked = _check(request, token.removesuffix(".gif"))
    if tracked is not None and tracked.url is None:
        _record(request, tracked, "opened")
    return Response(PIXEL, media_type="image/gif", headers=_NO_CACHE)


@router.get("/t/c/{token}", include_in_schema=False, response_model=None)
def click(request: Request, token: str) -> Response:
    tracked = _check(request, token)
    if tracked is None or tracked.url is None:
        return HTMLResponse(
            "<!doctype html><title>Link not found</title><h1>This link does not work</h1>"
            "<p>Open it again from the message, making sure the whole address was copied.</p>",
            status_code=404,
        )
    _record(request, tracked, "clicked")
    return RedirectResponse(tracked.url, status_code=302, headers=_NO_CACHE)
