"""Settings › Topics: the workspace's subscription topics with their purpose, lawful basis,
channels and double opt-in; add, change (the key and lawful basis are fixed once made, as the
consent log cites them), archive. Marketers and above change them, as in the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from shopkeeper import clock
from shopkeeper.auth.service import audit
from shopkeeper.consent import service
from shopkeeper.consent.models import CHANNELS, LAWFUL_BASES, Topic
from shopkeeper.consent.schemas import TopicIn, TopicPatch
from shopkeeper.db.scoping import get_scoped
from shopkeeper.errors import Conflict, Invalid
from shopkeeper.runtime import get_runtime
from shopkeeper.web.forms import Form, checked, field_errors, many, text, validated, values_of
from shopkeeper.web.session import Viewer, Web
from shopkeeper.web.settings.common import done, may, show

router = APIRouter()
PATH = "/settings/topics"
ROLE = "marketer"
FIELDS = ("key", "name", "description", "purpose", "lawful_basis", "channels", "double_opt_in")
MESSAGES = {
    "lawful_basis": f"one of {', '.join(LAWFUL_BASES)}",
    "purpose": "say what the messages of this topic are for (at most 500 characters)",
}
BASES = (
    ("consent", "Consent (an opt-in is needed)"),
    ("contract", "Contract (needed to serve the customer)"),
    ("legitimate_interest", "Legitimate interest (until they opt out)"),
)


def _channels(form: FormData) -> list[str]:
    chosen = many(form, "channels")
    if not chosen:
        raise Invalid("channels: tick at least one channel", field="channels")
    return chosen


def _render(
    request: Request, web: Web, *, status: int = 200, errors: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    with get_runtime(request).db.session() as s:
        topics = service.topics(s, web.workspace_id, include_archived=True)
    context.setdefault("values", {"lawful_basis": "consent", "channels": ["email"]})
    return show(
        request,
        web,
        "topics",
        current="topics",
        status=status,
        errors=errors,
        topics=topics,
        channel_options=[(c, c) for c in CHANNELS],
        bases=BASES,
        can_change=may(web, ROLE),
        **context,
    )


@router.get(PATH)
def topics_page(request: Request, web: Viewer) -> HTMLResponse:
    return _render(request, web)


@router.post(PATH)
def add_topic(request: Request, web: Viewer, form: Form) -> Response:
    web.principal.require(ROLE)
    now = clock.now()
    try:
        body = validated(
            TopicIn,
            {
                "key": text(form, "key"),
                "name": text(form, "name"),
                "description": text(form, "description"),
                "purpose": text(form, "purpose"),
                "lawful_basis": text(form, "lawful_basis"),
                "channels": _channels(form),
                "double_opt_in": checked(form, "double_opt_in"),
            },
            MESSAGES,
        )
        with get_runtime(request).db.session(write=True) as s:
            topic = service.create_topic(s, web.workspace_id, now=now, **body.model_dump())
            audit(
                s,
                web.principal,
                "topic.create",
                subject_type="topic",
                subject_id=topic.id,
                details=body.model_dump(),
                now=now,
            )
    except (Invalid, Conflict) as exc:
        values = values_of(form) | {"channels": many(form, "channels")}
        return _render(request, web, status=exc.status, errors=field_errors(exc, FIELDS), values=values)
    return done(PATH, "topic-added")


def _topic_page(
    request: Request,
    web: Web,
    topic_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> HTMLResponse:
    with get_runtime(request).db.session() as s:
        topic = get_scoped(s, Topic, web.workspace_id, topic_id, "topic")
        s.expunge(topic)
    if values is None:
        values = {
            "name": topic.name,
            "description": topic.description,
            "purpose": topic.purpose,
            "channels": list(topic.channels),
            "double_opt_in": "1" if topic.double_opt_in else "",
        }
    return show(
        request,
        web,
        "topic",
        current="topics",
        status=status,
        errors=errors,
        values=values,
        topic=topic,
        channel_options=[(c, c) for c in CHANNELS],
        bases=dict(BASES),
        can_change=may(web, ROLE),
    )


@router.get(PATH + "/{topic_id}")
def topic_page(request: Request, web: Viewer, topic_id: str) -> HTMLResponse:
    return _topic_page(request, web, topic_id)


@router.post(PATH + "/{topic_id}")
def save_topic(request: Request, web: Viewer, topic_id: str, form: Form) -> Response:
    web.principal.require(ROLE)
    now = clock.now()
    try:
        body = validated(
            TopicPatch,
            {
                "name": text(form, "name"),
                "description": text(form, "description"),
                "purpose": text(form, "purpose"),
                "channels": _channels(form),
                "double_opt_in": checked(form, "double_opt_in"),
            },
            MESSAGES,
        )
        with get_runtime(request).db.session(write=True) as s:
            topic = get_scoped(s, Topic, web.workspace_id, topic_id, "topic")
            changes = body.model_dump(exclude_unset=True)
            topic.name = body.name or topic.key
            topic.description = body.description or ""
            topic.purpose = body.purpose or topic.purpose
            topic.double_opt_in = bool(body.double_opt_in)
            topic.channels = sorted(set(body.channels or topic.channels))
            audit(s, web.principal, "topic.update", subject_type="topic", subject_id=topic.id, details=changes, now=now)
    except (Invalid, Conflict) as exc:
        values = values_of(form) | {"channels": many(form, "channels")}
        return _topic_page(request, web, topic_id, status=exc.status, errors=field_errors(exc, FIELDS), values=values)
    return done(PATH, "topic-saved")


@router.post(PATH + "/{topic_id}/archived")
def archive_topic(request: Request, web: Viewer, topic_id: str, form: Form) -> Response:
    web.principal.require(ROLE)
    now = clock.now()
    archived = checked(form, "archived")
    with get_runtime(request).db.session(write=True) as s:
        topic = get_scoped(s, Topic, web.workspace_id, topic_id, "topic")
        topic.archived_at = now if archived else None
        audit(
            s,
            web.principal,
            "topic.update",
            subject_type="topic",
            subject_id=topic.id,
            details={"archived": archived},
            now=now,
        )
    return done(PATH, "topic-archived" if archived else "topic-restored")
