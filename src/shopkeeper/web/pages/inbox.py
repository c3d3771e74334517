"""The inbox in the browser: the conversation list with its filters, a thread with the customer's
360° profile beside it, every agent action (reply on any channel, canned replies, notes, tags,
assignment, priority, snooze, resolve, reopen) through htmx, and a Server-Sent Events stream
that keeps the open list and thread current.

Each action is one transaction through the inbox services: it happens whole or not at all, and
a refusal comes back as a message beside the form that asked, leaving what was typed in place.
Without JavaScript the same forms post and redirect back to the thread.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from shopkeeper import clock
from shopkeeper.errors import Invalid, ShopkeeperError
from shopkeeper.ids import new_id
from shopkeeper.inbox import canned, conversations, csat, listing, sla
from shopkeeper.inbox.classify.labels import INTENTS, SENTIMENTS
from shopkeeper.inbox.models import PRIORITIES, STATUSES, Conversation
from shopkeeper.inbox.settings import CONVERSATION_CHANNELS
from shopkeeper.inbox.sla import STATES as SLA_STATES
from shopkeeper.inbox.stream import StreamFilter, events, poll_seconds, resume_after
from shopkeeper.runtime import get_runtime
from shopkeeper.web import inbox_view as view
from shopkeeper.web.models import WebSession
from shopkeeper.web.render import HEADERS, fragment, page
from shopkeeper.web.session import Viewer, Web

router = APIRouter(include_in_schema=False)

LIST_LIMIT = 50
FILTERS = ("status", "assignee", "team", "channel", "intent", "sentiment", "priority", "sla_state", "tag")
DEFAULT_STATUS = "open"
SESSION_RECHECK_SECONDS = 15.0
REPLY_KEY = re.compile(r"^[A-Za-z0-9_-]{1,60}$")
SNOOZE_PRESETS = {"1h": "In an hour", "4h": "In four hours", "tomorrow": "Tomorrow 09:00 UTC"}
Field = Annotated[str, Form()]


def _htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# -- the list -----------------------------------------------------------------------------------
def _chosen(request: Request) -> dict[str, str]:
    """The filters as asked (status defaults to open; `status=` asks for every status)."""
    query = request.query_params
    chosen = {name: query.get(name, "").strip()[:200] for name in FILTERS}
    if "status" not in query:
        chosen["status"] = DEFAULT_STATUS
    return chosen


def _filters(web: Web, chosen: dict[str, str]) -> listing.Filters:
    assignee = chosen["assignee"]
    return listing.Filters(
        status=(chosen["status"],) if chosen["status"] else (),
        channel=chosen["channel"] or None,
        team=chosen["team"] or None,
        assignee_id=web.user.id if assignee == "mine" else (assignee or None),
        intent=chosen["intent"] or None,
        sentiment=chosen["sentiment"] or None,
        priority=chosen["priority"] or None,
        sla_state=chosen["sla_state"] or None,
        tag=chosen["tag"].lower() or None,
    )


def _list_context(request: Request, web: Web, session: Session) -> dict[str, Any]:
    chosen = _chosen(request)
    now = clock.now()
    cursor = request.query_params.get("cursor") or None
    found, next_cursor = listing.page(
        session, web.workspace_id, _filters(web, chosen), cursor=cursor, limit=LIST_LIMIT, now=now
    )
    directory = view.Directory.of(session, web.workspace_id)
    query = {k: v for k, v in chosen.items() if v or k == "status"}
    return {
        "rows": view.rows(session, web.workspace_id, found, directory, now),
        "chosen": chosen,
        "query": urlencode({**query, **({"cursor": cursor} if cursor else {})}),
        "next_query": urlencode({**query, "cursor": next_cursor}) if next_cursor else None,
        "first_query": urlencode(query) if cursor else None,
        "directory": directory,
    }


@router.get("/inbox")
def inbox(request: Request, web: Viewer) -> HTMLResponse:
    with get_runtime(request).db.session() as session:
        context = _list_context(request, web, session)
        seq = view.newest_seq(session, web.workspace_id)
        return page(
            request,
            web,
            "app/inbox/list.html",
            section="inbox",
            seq=seq,
            statuses=STATUSES,
            channels=CONVERSATION_CHANNELS,
            intents=INTENTS,
            sentiments=SENTIMENTS,
            priorities=PRIORITIES,
            sla_states=SLA_STATES,
            **context,
        )


@router.get("/inbox/list")
def inbox_list(request: Request, web: Viewer) -> HTMLResponse:
    """The list alone: what the page fetches again when the live stream says something changed."""
    with get_runtime(request).db.session() as session:
        return fragment("app/inbox/_list.html", web=web, **_list_context(request, web, session))


# -- the live stream ----------------------------------------------------------------------------
def _still_logged_in(request: Request, session_id: str) -> bool:
    with get_runtime(request).db.session() as session:
        row = session.get(WebSession, session_id)
        return row is not None and row.revoked_at is None and row.expires_at > clock.now()


@router.get("/inbox/stream")
async def live(
    request: Request,
    web: Viewer,
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Every conversation event of the workspace as it is committed (one unnamed SSE event each,
    `id` = its seq), resuming after `Last-Event-ID` or `after`. It ends when the browser hangs up
    or the session ends (logged out elsewhere, expired)."""
    db = get_runtime(request).db
    checked = time.monotonic()

    async def gone() -> bool:
        nonlocal checked
        if await request.is_disconnected():
            return True
        if time.monotonic() - checked >= SESSION_RECHECK_SECONDS:
            checked = time.monotonic()
            return not await run_in_threadpool(_still_logged_in, request, web.session_id)
        return False

    body = events(
        db,
        web.workspace_id,
        resume_after(after, last_event_id),
        StreamFilter(),
        poll_seconds=poll_seconds(db),
        disconnected=gone,
        named=False,
    )
    return StreamingResponse(
        body, media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


# -- a thread -----------------------------------------------------------------------------------
def _thread_context(session: Session, web: Web, conversation: Conversation) -> dict[str, Any]:
    now = clock.now()
    directory = view.Directory.of(session, web.workspace_id)
    customer = view.customer_names(session, web.workspace_id, [conversation.customer_id]).get(
        conversation.customer_id, "Unknown customer"
    )
    items, _ = view.thread(session, conversation, directory, customer)
    return {
        "c": conversation,
        "customer": customer,
        "items": items,
        "sla_state": sla.state(conversation, now),
        "directory": directory,
        "may_act": _may_act(web),
    }


def _forms_context(session: Session, web: Web) -> dict[str, Any]:
    return {
        "channels": CONVERSATION_CHANNELS,
        "priorities": PRIORITIES,
        "canned": view.canned_replies(session, web.workspace_id),
        "snooze_presets": SNOOZE_PRESETS,
        "reply_key": new_id("rep"),
    }


def _may_act(web: Web) -> bool:
    try:
        web.principal.require("agent")
    except ShopkeeperError:
        return False
    return True


@router.get("/inbox/{conversation_id}")
def thread(request: Request, web: Viewer, conversation_id: str) -> HTMLResponse:
    with get_runtime(request).db.session() as session:
        conversation = conversations.get(session, web.workspace_id, conversation_id)
        context = _thread_context(session, web, conversation)
        return page(
            request,
            web,
            "app/inbox/thread.html",
            section="inbox",
            seq=view.newest_seq(session, web.workspace_id),
            profile=view.profile(session, web.workspace_id, conversation),
            oob=False,
            **_forms_context(session, web),
            **context,
        )


@router.get("/inbox/{conversation_id}/live")
def thread_live(request: Request, web: Viewer, conversation_id: str) -> HTMLResponse:
    """The thread's state and messages alone, fetched again when the live stream names it."""
    with get_runtime(request).db.session() as session:
        conversation = conversations.get(session, web.workspace_id, conversation_id)
        return fragment("app/inbox/_live.html", web=web, oob=False, **_thread_context(session, web, conversation))


@router.get("/inbox/{conversation_id}/canned")
def insert_canned(
    request: Request,
    web: Viewer,
    conversation_id: str,
    canned_key: Annotated[str, Query(alias="canned")] = "",
    text: str = "",
) -> Response:
    """The reply box with a canned reply, rendered for this customer, added to what is written."""
    try:
        if not canned_key:
            raise Invalid("canned: choose a canned reply", field="canned")
        with get_runtime(request).db.session() as session:
            conversation = conversations.get(session, web.workspace_id, conversation_id)
            rendered = canned.render(
                session, canned.get(session, web.workspace_id, canned_key), conversation, clock.now()
            )
    except ShopkeeperError as exc:
        return _refusal(exc, "#reply-form-error")
    text = text.rstrip()
    return fragment("app/inbox/_reply_text.html", text=f"{text}\n\n{rendered}" if text else rendered)


# -- actions ------------------------------------------------------------------------------------
Action = Callable[[Session, Conversation, datetime], None]


def _refusal(exc: ShopkeeperError, target: str) -> HTMLResponse:
    """A refused action: its message, placed beside the form that asked (inbox.js lets htmx
    swap a 4xx that names its target), the form itself left as it was."""
    return HTMLResponse(
        escape(exc.message),
        status_code=exc.status,
        headers={**HEADERS, "HX-Retarget": target, "HX-Reswap": "innerHTML"},
    )


def _act(
    request: Request, web: Web, conversation_id: str, form: str, action: Action, notice: str | Callable[[], str]
) -> Response:
    """Run one action in one transaction; answer htmx with the parts of the page it changed."""
    htmx = _htmx(request)
    runtime = get_runtime(request)
    try:
        web.principal.require("agent")
        with runtime.db.session(write=True) as session:
            conversation = conversations.get(session, web.workspace_id, conversation_id)
            action(session, conversation, clock.now())
    except ShopkeeperError as exc:
        if not htmx:
            raise  # the error page, in the layout
        return _refusal(exc, f"#{form}-error")
    if not htmx:
        return RedirectResponse(f"/inbox/{conversation_id}", status_code=303)
    with runtime.db.session() as session:
        conversation = conversations.get(session, web.workspace_id, conversation_id)
        return fragment(
            "app/inbox/_after_action.html",
            web=web,
            oob=True,
            form=form,
            notice=notice if isinstance(notice, str) else notice(),
            **_forms_context(session, web),
            **_thread_context(session, web, conversation),
        )


@router.post("/inbox/{conversation_id}/reply")
def reply(
    request: Request,
    web: Viewer,
    conversation_id: str,
    text: Field = "",
    channel: Field = "",
    subject: Field = "",
    key: Field = "",
) -> Response:
    used: list[str] = []

    def act(session: Session, conversation: Conversation, now: datetime) -> None:
        if len(text) > 20_000:
            raise Invalid("text: at most 20000 characters", field="text")
        if len(subject) > 500:
            raise Invalid("subject: at most 500 characters", field="subject")
        if key and not REPLY_KEY.match(key):
            raise Invalid("key: not a key this page gave", field="key")
        send = conversations.reply(
            session,
            conversation,
            text=text,
            actor=web.principal.actor,
            now=now,
            channel=channel or None,
            subject=subject.strip() or None,
            idempotency_key=f"inbox:{conversation.id}:web:{key}" if key else None,
        )
        used.append(send.channel)

    return _act(request, web, conversation_id, "reply-form", act, lambda: f"Reply queued on {used[0]}.")


@router.post("/inbox/{conversation_id}/note")
def note(request: Request, web: Viewer, conversation_id: str, text: Field = "") -> Response:
    def act(session: Session, conversation: Conversation, now: datetime) -> None:
        conversations.note(session, conversation, text, web.principal.actor, now)

    return _act(request, web, conversation_id, "note-form", act, "Note added.")


@router.post("/inbox/{conversation_id}/tags")
def tags(request: Request, web: Viewer, conversation_id: str, add: Field = "", remove: Field = "") -> Response:
    added = [t.strip() for t in add.split(",") if t.strip()]
    removed = [remove] if remove else []

    def act(session: Session, conversation: Conversation, now: datetime) -> None:
        if not added and not removed:
            raise Invalid("add: type a tag (several: separate them with commas)", field="add")
        conversations.retag(session, conversation, added, removed, web.principal.actor, now)

    return _act(request, web, conversation_id, "tags-form", act, "Tags saved.")


@router.post("/inbox/{conversation_id}/assign")
def assign(
    request: Request, web: Viewer, conversation_id: str, assignee_id: Field = "", team: Field = "", me: Field = ""
) -> Response:
    def act(session: Session, conversation: Conversation, now: datetime) -> None:
        if me:
            conversations.assign(
                session,
                conversation,
                assignee_id=web.user.id,
                team_key=None,
                actor=web.principal.actor,
                now=now,
                fields={"assignee_id"},
            )
            return
        conversations.assign(
            session,
            conversation,
            assignee_id=None if assignee_id in ("", "none") else assignee_id,
            team_key=team or None,
            actor=web.principal.actor,
            now=now,
            fields={"assignee_id", "team"},
        )

    return _act(request, web, conversation_id, "assign-form", act, "Assignment saved.")


@router.post("/inbox/{conversation_id}/priority")
def priority(request: Request, web: Viewer, conversation_id: str, priority: Field = "") -> Response:
    def act(session: Session, conversation: Conversation, now: datetime) -> None:
        conversations.set_priority(session, conversation, priority, web.principal.actor, now)

    return _act(request, web, conversation_id, "priority-form", act, f"Priority: {priority}.")


def _snooze_until(until: str, preset: str, now: datetime) -> datetime:
    if preset:
        if preset == "1h":
            return now + timedelta(hours=1)
        if preset == "4h":
            return now + timedelta(hours=4)
        if preset == "tomorrow":
            return (now + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
        raise Invalid(f"preset: one of {', '.join(SNOOZE_PRESETS)}", field="preset")
    if not until:
        raise Invalid("until: choose when the conversation comes back", field="until")
    try:
        when = datetime.fromisoformat(until)
    except ValueError:
        raise Invalid("until: a date and time, e.g. 2026-12-01T09:00", field="until") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when  # the form's times are UTC


@router.post("/inbox/{conversation_id}/snooze")
def snooze(request: Request, web: Viewer, conversation_id: str, until: Field = "", preset: Field = "") -> Response:
    chosen: list[datetime] = []

    def act(session: Session, conversation: Conversation, now: datetime) -> None:
        chosen.append(_snooze_until(until.strip(), preset, now))
        conversations.snooze(session, conversation, chosen[0], web.principal.actor, now)

    return _act(
        request,
        web,
        conversation_id,
        "snooze-form",
        act,
        lambda: f"Snoozed until {chosen[0].astimezone(UTC):%d %b %Y %H:%M} UTC.",
    )


@router.post("/inbox/{conversation_id}/status")
def status(request: Request, web: Viewer, conversation_id: str, to: Field = "") -> Response:
    public_url = get_runtime(request).settings.public_url

    def act(session: Session, conversation: Conversation, now: datetime) -> None:
        if to == "resolved":
            if conversations.resolve(session, conversation, web.principal.actor, now):
                csat.send_survey(session, conversation, public_url, now)
        else:
            conversations.set_status(session, conversation, to, web.principal.actor, now)

    said = {"resolved": "Resolved.", "open": "Reopened.", "pending": "Marked pending."}
    return _act(request, web, conversation_id, "status-form", act, said.get(to, "Saved."))
