"""Planning a send: the durable outbox row, unique per idempotency key, checked before it is
accepted (a send that could never render is refused now, not failed later)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shopkeeper.consent.service import check_channel, topic_by_key
from shopkeeper.customers.service import canonical
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.errors import Conflict, Invalid, NotFound
from shopkeeper.ids import new_id
from shopkeeper.messaging.models import Send, SendEvent
from shopkeeper.messaging.status import history
from shopkeeper.messaging.template_service import KINDS, check_content, template_by_ref, version_of

SOURCES = ("api", "journey", "campaign", "inbox", "system")
MAX_DATA_BYTES = 64 * 1024


def _fingerprint(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def enqueue(
    session: Session,
    workspace_id: str,
    *,
    customer_id: str,
    channel: str,
    now: datetime,
    template: str | None = None,
    version: int | None = None,
    content: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    kind: str | None = None,
    topic: str | None = None,
    idempotency_key: str | None = None,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    source: str = "api",
    source_ref: str | None = None,
) -> tuple[Send, bool]:
    """The send for this idempotency key: created (True), or the one already planned (False).
    The same key with different content is a Conflict, not a silent second message."""
    check_channel(channel)
    if source not in SOURCES:
        raise Invalid(f"source: one of {', '.join(SOURCES)}", field="source")
    if (template is None) == (content is None):
        raise Invalid("template: give a template or inline content (one of the two)", field="template")
    data = dict(data or {})
    try:
        size = len(orjson.dumps(data, default=str))
    except TypeError:  # an integer beyond 64 bits: no JSON column can keep it
        raise Invalid("data: a number too large to store (beyond 64 bits)", field="data") from None
    if size > MAX_DATA_BYTES:
        raise Invalid(f"data: over {MAX_DATA_BYTES // 1024} KB", field="data")
    if send_at is not None and expires_at is not None and expires_at <= send_at:
        raise Invalid("expires_at: must be after send_at", field="expires_at")
    try:
        customer = canonical(session, workspace_id, customer_id)
    except NotFound:
        raise NotFound(f"customer_id: no customer {customer_id!r}", field="customer_id") from None

    template_id: str | None = None
    template_version: int | None = None
    if template is not None:
        row = template_by_ref(session, workspace_id, template)
        if row.archived_at is not None:
            raise Invalid(f"template: {row.key!r} is archived", field="template")
        chosen = version_of(session, workspace_id, row, version)
        if channel not in chosen.content:
            raise Invalid(f"channel: template {row.key!r} has no {channel} content", field="channel")
        template_id, template_version = row.id, chosen.version
        kind = kind or row.kind
        topic = topic if topic is not None else row.topic
    kind = kind or "transactional"
    if kind not in KINDS:
        raise Invalid(f"kind: one of {', '.join(KINDS)}", field="kind")
    if topic is not None:
        topic_by_key(session, workspace_id, topic)
    if kind == "marketing" and topic is None:
        raise Invalid("topic: a marketing message belongs to a topic", field="topic")
    if content is not None:
        compiled = check_content(session, workspace_id, kind, content)
        if channel not in compiled.channels:
            raise Invalid(f"content.{channel}: the content has no {channel} part", field=f"content.{channel}")

    request = {
        "customer_id": customer.id,
        "channel": channel,
        "template_id": template_id,
        "template_version": template_version,
        "content": dict(content) if content is not None else None,
        "data": data,
        "kind": kind,
        "topic": topic,
    }
    fingerprint = _fingerprint(request)
    key = idempotency_key or new_id("auto")
    existing = session.scalar(scoped(Send, workspace_id).where(Send.idempotency_key == key))
    if existing is not None:
        return _same(existing, fingerprint), False
    send = Send(
        id=new_id("snd"),
        workspace_id=workspace_id,
        idempotency_key=key,
        customer_id=customer.id,
        channel=channel,
        kind=kind,
        topic=topic,
        template_id=template_id,
        template_version=template_version,
        content=request["content"],
        data=data,
        fingerprint=fingerprint,
        source=source,
        source_ref=source_ref,
        status="queued",
        stage="waiting",
        attempts=0,
        next_attempt_at=max(send_at or now, now) if send_at else now,
        expires_at=expires_at,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(send)
            session.flush()
    except IntegrityError:  # planned by a concurrent request with the same key
        existing = session.scalar(scoped(Send, workspace_id).where(Send.idempotency_key == key))
        if existing is None:
            raise
        return _same(existing, fingerprint), False
    history(session, send, "queued", now, f"planned via {source}" + (f" ({source_ref})" if source_ref else ""))
    return send, True


def _same(existing: Send, fingerprint: str) -> Send:
    if existing.fingerprint != fingerprint:
        raise Conflict("idempotency_key: already used for a different message; use a new key", field="idempotency_key")
    return existing


def send_history(session: Session, workspace_id: str, send_id: str) -> tuple[Send, list[SendEvent]]:
    send = get_scoped(session, Send, workspace_id, send_id, "send")
    events = list(
        session.scalars(
            select(SendEvent)
            .where(SendEvent.workspace_id == workspace_id, SendEvent.send_id == send_id)
            .order_by(SendEvent.at, SendEvent.id)
        )
    )
    return send, events
