"""Canned replies: Liquid text checked when saved (line and column, like templates) and rendered
for the conversation's customer when used, so the agent sees and can edit the final words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.customers.service import profile_ids
from shopkeeper.db import scoping
from shopkeeper.errors import Conflict, Invalid, NotFound
from shopkeeper.ids import new_id
from shopkeeper.inbox.models import CannedReply, Conversation
from shopkeeper.messaging.context import render_context
from shopkeeper.messaging.templates import compile_content

MAX_BODY = 20_000


def _compiled(body: str) -> Any:
    if not body.strip():
        raise Invalid("body: empty", field="body")
    if len(body) > MAX_BODY:
        raise Invalid(f"body: at most {MAX_BODY} characters", field="body")
    compiled = compile_content({"chat": {"text": body}})
    return compiled


def _check(body: str) -> None:
    try:
        _compiled(body)
    except Invalid as exc:
        raise Invalid(exc.message.replace("content.chat.text", "body"), field="body") from None


def get(session: Session, workspace_id: str, key: str) -> CannedReply:
    row = scoping.by_key(session, CannedReply, workspace_id, key)
    if row is None:
        raise NotFound(f"no canned reply {key!r}", field="canned")
    return row


def create(session: Session, workspace_id: str, key: str, name: str, body: str, now: datetime) -> CannedReply:
    _check(body)
    if scoping.by_key(session, CannedReply, workspace_id, key) is not None:
        raise Conflict(f"key: a canned reply {key!r} exists", field="key")
    row = CannedReply(
        id=new_id("can"), workspace_id=workspace_id, key=key, name=name, body=body, created_at=now, updated_at=now
    )
    session.add(row)
    session.flush()
    return row


def update(session: Session, row: CannedReply, name: str | None, body: str | None, now: datetime) -> CannedReply:
    if body is not None:
        _check(body)
        row.body = body
    if name is not None:
        row.name = name
    row.updated_at = now
    return row


def render(session: Session, row: CannedReply, conversation: Conversation, now: datetime) -> str:
    workspace = session.get(Workspace, conversation.workspace_id)
    assert workspace is not None
    customer, ids = profile_ids(session, conversation.workspace_id, conversation.customer_id)
    context = render_context(
        session,
        workspace,
        customer,
        ids,
        channel=conversation.channel,
        topic=None,
        data={
            "conversation": {"id": conversation.id, "subject": conversation.subject, "channel": conversation.channel}
        },
        now=now,
    )
    context["conversation"] = context["data"]["conversation"]
    text: str = _compiled(row.body).render("chat", context)["text"]
    return text.strip()
