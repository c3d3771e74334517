"""Templates: the list, and an editor for a template's content on each channel — saving makes a
new version (checked first: a Liquid error is shown at its field and nothing is written), and a
live preview renders the unsaved content for a real customer, channel by channel."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from shopkeeper import clock
from shopkeeper.auth.models import User
from shopkeeper.auth.principal import ROLE_RANK
from shopkeeper.auth.service import audit
from shopkeeper.consent import service as consent
from shopkeeper.customers.models import Customer
from shopkeeper.customers.service import identities_of, profile_ids
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.errors import Invalid, ShopkeeperError
from shopkeeper.messaging import template_service
from shopkeeper.messaging.models import Template, TemplateVersion
from shopkeeper.messaging.templates import CHANNEL_PARTS, REQUIRED_PARTS, TemplateError, compile_content
from shopkeeper.runtime import get_runtime
from shopkeeper.web.pages.customers import display_name, find_customers
from shopkeeper.web.render import fragment, page
from shopkeeper.web.session import Viewer, Web

router = APIRouter(include_in_schema=False)
# The editor's order: the channels people write for most first.
CHANNELS = ("email", "sms", "push", "whatsapp", "chat", "webhook", "voice", "messenger", "telegram")
CHANNEL_NAMES = {
    "email": "Email",
    "sms": "SMS",
    "push": "Push",
    "whatsapp": "WhatsApp",
    "chat": "Chat",
    "webhook": "Webhook",
    "voice": "Voice",
    "messenger": "Messenger",
    "telegram": "Telegram",
}
KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")
PICKER_SIZE = 8
# What each part is, for its label and the preview.
PART_LABELS = {
    "subject": "subject",
    "html": "HTML body",
    "text": "text",
    "title": "title",
    "body": "body",
    "url": "link",
    "script": "script",
}


def content_from(form: FormData) -> dict[str, dict[str, str]]:
    """The editor's fields as template content: a channel with every part blank is left out, and
    the browser's CRLF line breaks are stored as LF (so an unchanged text is no new version)."""
    content: dict[str, dict[str, str]] = {}
    for channel in CHANNELS:
        parts = {}
        for part in CHANNEL_PARTS[channel]:
            value = form.get(f"content.{channel}.{part}")
            if isinstance(value, str) and value.strip():
                parts[part] = value.replace("\r\n", "\n")
        if parts:
            content[channel] = parts
    return content


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _may_edit(web: Web) -> bool:
    return ROLE_RANK[web.principal.role] >= ROLE_RANK["marketer"]


def _authors(session: Session, ws: str, versions: list[TemplateVersion]) -> dict[str, str]:
    """ "user:<id>" → the person's name (API keys and tests stay as they are)."""
    ids = {v.created_by.removeprefix("user:") for v in versions if v.created_by.startswith("user:")}
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.name, User.email).where(User.workspace_id == ws, User.id.in_(ids)))
    return {f"user:{uid}": name or email for uid, name, email in rows}


def _default_customer(session: Session, ws: str) -> Customer | None:
    return session.scalar(
        scoped(Customer, ws).where(Customer.merged_into.is_(None)).order_by(Customer.id.desc()).limit(1)
    )


def _customer_choice(session: Session, ws: str, customer: Customer) -> dict[str, str]:
    return {"id": customer.id, "name": display_name(customer, identities_of(session, ws, [customer.id])[customer.id])}


def _preview(
    request: Request,
    session: Session,
    web: Web,
    content: Mapping[str, Mapping[str, str]],
    channel: str,
    customer_id: str | None,
    topic: str | None,
) -> dict[str, Any]:
    """What the preview pane shows: one channel's parts rendered for the customer, or why not."""
    shown: dict[str, Any] = {"channel": channel, "customer": None, "rendered": None, "error": None}
    if customer_id is None:
        shown["error"] = "Choose a customer to preview with (this workspace has none yet)."
        return shown
    customer, _ = profile_ids(session, web.workspace_id, customer_id)  # another workspace's: 404
    shown["customer"] = _customer_choice(session, web.workspace_id, customer)
    parts = content.get(channel)
    if not parts:
        shown["error"] = f"The template has no {channel} content yet."
        return shown
    try:
        compiled = compile_content({channel: parts})
    except TemplateError as exc:
        shown["error"] = exc.message
        return shown
    result = template_service.preview(
        session,
        web.workspace,
        compiled,
        customer.id,
        channels=[channel],
        topic=topic,
        data={},
        now=clock.now(),
        base_url=get_runtime(request).settings.public_url,
    )
    shown["rendered"] = result.rendered.get(channel)
    shown["error"] = result.errors.get(channel)
    return shown


def _editor(
    request: Request,
    session: Session,
    web: Web,
    *,
    template: Template | None,
    fields: dict[str, Any],
    content: Mapping[str, Mapping[str, str]],
    error: ShopkeeperError | None = None,
    notice: str | None = None,
    preview_channel: str | None = None,
    customer_id: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    ws = web.workspace_id
    versions = template_service.versions(session, ws, template.id) if template else []
    if customer_id is None and (newest := _default_customer(session, ws)) is not None:
        customer_id = newest.id
    # The first channel in the editor's order (PostgreSQL's JSONB keeps no key order).
    channel = preview_channel if preview_channel in CHANNELS else next((c for c in CHANNELS if c in content), "email")
    return page(
        request,
        web,
        "app/templates/edit.html",
        section="templates",
        status=status,
        template=template,
        fields=fields,
        content=content,
        channels=CHANNELS,
        channel_names=CHANNEL_NAMES,
        parts=CHANNEL_PARTS,
        required=REQUIRED_PARTS,
        labels=PART_LABELS,
        topics=consent.topics(session, ws),
        versions=versions,
        authors=_authors(session, ws, versions),
        error=error,
        error_field=error.field if error else None,
        notice=notice,
        may_edit=_may_edit(web),
        preview=_preview(request, session, web, content, channel, customer_id, fields.get("topic")),
        choices=[],
        q="",
    )


@router.get("/templates")
def templates(request: Request, web: Viewer, archived: bool = False) -> HTMLResponse:
    with get_runtime(request).db.session() as s:
        query = scoped(Template, web.workspace_id).order_by(Template.key)
        if not archived:
            query = query.where(Template.archived_at.is_(None))
        rows = list(s.scalars(query))
        current = (
            select(TemplateVersion.template_id, TemplateVersion.content)
            .join(
                Template,
                (Template.id == TemplateVersion.template_id) & (Template.current_version == TemplateVersion.version),
            )
            .where(TemplateVersion.workspace_id == web.workspace_id, Template.workspace_id == web.workspace_id)
        )
        contents: dict[str, dict[str, Any]] = {tid: content for tid, content in s.execute(current)}  # noqa: C416
    listed = [{"template": t, "channels": [c for c in CHANNELS if c in contents.get(t.id, {})]} for t in rows]
    return page(
        request,
        web,
        "app/templates/list.html",
        section="templates",
        rows=listed,
        archived=archived,
        may_edit=_may_edit(web),
    )


@router.get("/templates/new")
def new_template(request: Request, web: Viewer) -> HTMLResponse:
    web.principal.require("marketer")
    fields = {"key": "", "name": "", "kind": "transactional", "topic": None}
    with get_runtime(request).db.session() as s:
        return _editor(request, s, web, template=None, fields=fields, content={})


@router.get("/templates/customers")
def pick_customer(
    request: Request,
    web: Viewer,
    q: Annotated[str, Query(max_length=512)] = "",
    customer_id: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """The preview's customer picker: the chosen customer first, then who matches the search."""
    with get_runtime(request).db.session() as s:
        found, _ = find_customers(s, web, q or None, [], None, PICKER_SIZE)
        choices = [{"id": c["id"], "name": c["name"]} for c in found]
        if customer_id and customer_id not in {c["id"] for c in choices}:
            chosen = get_scoped(s, Customer, web.workspace_id, customer_id, "customer")
            choices.insert(0, _customer_choice(s, web.workspace_id, chosen))
    return fragment("app/templates/_picker.html", choices=choices, chosen=customer_id, q=q)


def _preview_response(request: Request, web: Web, form: FormData, topic: str | None) -> HTMLResponse:
    channel = _text(form, "preview_channel", 20)
    customer_id = _text(form, "customer_id", 40) or None
    with get_runtime(request).db.session() as s:
        shown = _preview(
            request, s, web, content_from(form), channel if channel in CHANNELS else "email", customer_id, topic
        )
    return fragment("app/templates/_preview.html", preview=shown, labels=PART_LABELS, channel_names=CHANNEL_NAMES)


@router.post("/templates/new/preview")
async def preview_new(request: Request, web: Viewer) -> HTMLResponse:
    form = await request.form()
    return _preview_response(request, web, form, _text(form, "topic", 80) or None)


@router.post("/templates/{template_id}/preview")
async def preview_template(request: Request, web: Viewer, template_id: str) -> HTMLResponse:
    """Renders the editor's unsaved content (sent as the user types) for the chosen customer."""
    form = await request.form()
    with get_runtime(request).db.session() as s:
        template = get_scoped(s, Template, web.workspace_id, template_id, "template")
        topic = template.topic
    return _preview_response(request, web, form, _text(form, "topic", 80) or topic)


@router.get("/templates/{template_id}")
def edit_template(
    request: Request,
    web: Viewer,
    template_id: str,
    version: Annotated[int | None, Query(ge=1)] = None,
    saved: Annotated[int | None, Query(ge=1)] = None,
    unchanged: bool = False,
) -> HTMLResponse:
    ws = web.workspace_id
    with get_runtime(request).db.session() as s:
        template = get_scoped(s, Template, ws, template_id, "template")
        shown = template_service.version_of(s, ws, template, version)
        notice = None
        if saved is not None:
            notice = f"Saved as version {saved}."
        elif unchanged:
            notice = f"Saved; the content did not change, so it is still version {template.current_version}."
        if version is not None and version != template.current_version:
            notice = f"Showing version {version}; saving it makes it version {template.current_version + 1}."
        fields = {"key": template.key, "name": template.name, "kind": template.kind, "topic": template.topic}
        return _editor(request, s, web, template=template, fields=fields, content=shown.content, notice=notice)


def _form_fields(form: FormData, template: Template | None) -> dict[str, Any]:
    return {
        "key": template.key if template else _text(form, "key", 80),
        "name": _text(form, "name", 200),
        "kind": _text(form, "kind", 20) or "transactional",
        "topic": _text(form, "topic", 80) or None,
    }


def _refused(
    request: Request, web: Web, template: Template | None, form: FormData, error: ShopkeeperError
) -> HTMLResponse:
    """The editor again with what was typed and the error at its field; nothing was written."""
    with get_runtime(request).db.session() as s:
        return _editor(
            request,
            s,
            web,
            template=template,
            fields=_form_fields(form, template),
            content=content_from(form),
            error=error,
            preview_channel=_text(form, "preview_channel", 20) or None,
            customer_id=_text(form, "customer_id", 40) or None,
            status=error.status if error.status in (400, 409, 422) else 400,
        )


@router.post("/templates")
async def create_template(request: Request, web: Viewer) -> Response:
    web.principal.require("marketer")
    form = await request.form()
    fields = _form_fields(form, None)
    now = clock.now()
    try:
        if not KEY.match(fields["key"]):
            raise Invalid(
                "key: lower-case letters, digits, '.', '_' and '-', starting with a letter or digit (80 at most)",
                field="key",
            )
        with get_runtime(request).db.session(write=True) as s:
            template, _ = template_service.create_template(
                s,
                web.workspace_id,
                key=fields["key"],
                name=fields["name"] or fields["key"],
                kind=fields["kind"],
                topic=fields["topic"],
                content=content_from(form),
                actor=web.principal.actor,
                now=now,
            )
            audit(s, web.principal, "template.create", subject_type="template", subject_id=template.id, now=now)
            template_id = template.id
    except ShopkeeperError as exc:
        return _refused(request, web, None, form, exc)
    return RedirectResponse(f"/templates/{template_id}?saved=1", status_code=303)


@router.post("/templates/{template_id}")
async def save_template(request: Request, web: Viewer, template_id: str) -> Response:
    """New content becomes a new version; name, kind and topic change in place."""
    web.principal.require("marketer")
    form = await request.form()
    with get_runtime(request).db.session() as s:
        template = get_scoped(s, Template, web.workspace_id, template_id, "template")
    fields = _form_fields(form, template)
    changes = {
        "name": fields["name"],
        "kind": fields["kind"],
        "topic": fields["topic"],
        "content": content_from(form),
    }
    now = clock.now()
    try:
        with get_runtime(request).db.session(write=True) as s:
            before = get_scoped(s, Template, web.workspace_id, template_id, "template").current_version
            saved, version = template_service.update_template(
                s, web.workspace_id, template_id, changes=changes, actor=web.principal.actor, now=now
            )
            audit(
                s,
                web.principal,
                "template.update",
                subject_type="template",
                subject_id=saved.id,
                details={"version": version.version, "changed": sorted(changes)},
                now=now,
            )
            created = version.version != before
    except ShopkeeperError as exc:
        return _refused(request, web, template, form, exc)
    if not created:
        return RedirectResponse(f"/templates/{template_id}?unchanged=1", status_code=303)
    return RedirectResponse(f"/templates/{template_id}?saved={version.version}", status_code=303)
