"""Admin API for messaging: templates (versions, preview), sends (plan, list, history), providers,
and the interactions every channel records."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import Select
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.auth.service import audit
from shopkeeper.customers.service import profile_ids
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.errors import Invalid
from shopkeeper.messaging import provider_service, send_service, template_service, timeline  # noqa: F401
from shopkeeper.messaging.models import ChannelProvider, Interaction, Send, Template
from shopkeeper.messaging.schemas import (
    InteractionOut,
    InteractionPage,
    PreviewIn,
    PreviewOut,
    ProviderIn,
    ProviderOut,
    ProviderPatch,
    SendEventOut,
    SendIn,
    SendOut,
    SendPage,
    TemplateIn,
    TemplateOut,
    TemplatePatch,
    VersionOut,
)
from shopkeeper.messaging.templates import compile_content
from shopkeeper.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_time_cursor, encode_cursor

router = APIRouter(prefix="/api/v1", tags=["messaging"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _template_out(session: Session, workspace_id: str, template: Template) -> TemplateOut:
    version = template_service.version_of(session, workspace_id, template, None)
    out = TemplateOut.model_validate(template)
    out.content = version.content
    out.variables = sorted(compile_content(version.content).variables())
    return out


@router.get("/templates", summary="Message templates")
def list_templates(runtime: RuntimeDep, caller: Caller, include_archived: bool = False) -> list[TemplateOut]:
    with runtime.db.session() as session:
        query = scoped(Template, caller.workspace_id).order_by(Template.key)
        if not include_archived:
            query = query.where(Template.archived_at.is_(None))
        return [_template_out(session, caller.workspace_id, t) for t in session.scalars(query)]


@router.post("/templates", status_code=201, summary="Create a template (checked: Liquid errors name line and column)")
def create_template(runtime: RuntimeDep, caller: Caller, body: TemplateIn) -> TemplateOut:
    caller.require("marketer")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        template, _ = template_service.create_template(
            session, caller.workspace_id, **body.model_dump(), actor=caller.actor, now=now
        )
        audit(session, caller, "template.create", subject_type="template", subject_id=template.id, now=now)
        return _template_out(session, caller.workspace_id, template)


@router.get("/templates/{template_id}", summary="One template with its current content")
def get_template(runtime: RuntimeDep, caller: Caller, template_id: str) -> TemplateOut:
    with runtime.db.session() as session:
        template = get_scoped(session, Template, caller.workspace_id, template_id, "template")
        return _template_out(session, caller.workspace_id, template)


@router.patch("/templates/{template_id}", summary="Change a template; new content becomes a new version")
def patch_template(runtime: RuntimeDep, caller: Caller, template_id: str, body: TemplatePatch) -> TemplateOut:
    caller.require("marketer")
    now = clock.now()
    changes = body.model_dump(exclude_unset=True)
    with runtime.db.session(write=True) as session:
        template, version = template_service.update_template(
            session, caller.workspace_id, template_id, changes=changes, actor=caller.actor, now=now
        )
        audit(
            session,
            caller,
            "template.update",
            subject_type="template",
            subject_id=template.id,
            details={"version": version.version, "changed": sorted(changes)},
            now=now,
        )
        return _template_out(session, caller.workspace_id, template)


@router.get("/templates/{template_id}/versions", summary="Every version of a template, newest first")
def template_versions(runtime: RuntimeDep, caller: Caller, template_id: str) -> list[VersionOut]:
    with runtime.db.session() as session:
        return [
            VersionOut.model_validate(v) for v in template_service.versions(session, caller.workspace_id, template_id)
        ]


@router.post("/templates/{template_id}/preview", summary="Render a template for a real customer")
def preview_template(runtime: RuntimeDep, caller: Caller, template_id: str, body: PreviewIn) -> PreviewOut:
    now = clock.now()
    with runtime.db.session() as session:
        template = get_scoped(session, Template, caller.workspace_id, template_id, "template")
        version = template_service.version_of(session, caller.workspace_id, template, body.version)
        compiled = compile_content(version.content)
        channels = [body.channel] if body.channel else compiled.channels
        if body.channel and body.channel not in compiled.channels:
            raise Invalid(f"channel: the template has no {body.channel} content", field="channel")
        workspace = session.get(Workspace, caller.workspace_id)
        assert workspace is not None
        shown = template_service.preview(
            session,
            workspace,
            compiled,
            body.customer_id,
            channels=channels,
            topic=template.topic,
            data=body.data,
            now=now,
            base_url=runtime.settings.public_url,
        )
        return PreviewOut(
            template_id=template.id,
            version=version.version,
            customer_id=shown.customer.id,
            rendered=shown.rendered,
            errors=shown.errors,
        )


@router.post("/sends", status_code=201, summary="Plan a send (idempotent per idempotency_key)")
def create_send(runtime: RuntimeDep, caller: Caller, body: SendIn, response: Response) -> SendOut:
    caller.require("marketer")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        send, created = send_service.enqueue(session, caller.workspace_id, now=now, **body.model_dump())
        out = SendOut.model_validate(send)
    if not created:
        response.status_code = 200
    runtime.delivery.wake()
    return out


def _newest_first(
    session: Session, query: Select[Any], model: Any, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """One keyset page on (created_at, id), newest first, and the cursor of the next one."""
    if cursor:
        at, id_ = decode_time_cursor(cursor)
        query = query.where((model.created_at < at) | ((model.created_at == at) & (model.id < id_)))
    rows = list(session.scalars(query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    return page, encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None


@router.get("/sends", summary="Sends, newest first")
def list_sends(
    runtime: RuntimeDep,
    caller: Caller,
    customer_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    channel: Annotated[str | None, Query(max_length=20)] = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> SendPage:
    with runtime.db.session() as session:
        query = scoped(Send, caller.workspace_id)
        if customer_id:
            _, ids = profile_ids(session, caller.workspace_id, customer_id)
            query = query.where(Send.customer_id.in_(ids))
        if status:
            query = query.where(Send.status == status)
        if channel:
            query = query.where(Send.channel == channel)
        page, next_cursor = _newest_first(session, query, Send, cursor, limit)
        return SendPage(data=[SendOut.model_validate(s) for s in page], next_cursor=next_cursor)


@router.get("/sends/{send_id}", summary="One send with its status history")
def get_send(runtime: RuntimeDep, caller: Caller, send_id: str) -> SendOut:
    with runtime.db.session() as session:
        send, events = send_service.send_history(session, caller.workspace_id, send_id)
        out = SendOut.model_validate(send)
        out.history = [SendEventOut.model_validate(e) for e in events]
        return out


def _provider_out(row: ChannelProvider) -> ProviderOut:
    out = ProviderOut.model_validate(row)
    out.settings = provider_service.redacted(row.settings)
    return out


@router.get("/providers", summary="Provider accounts per channel (failover order)")
def list_providers(runtime: RuntimeDep, caller: Caller) -> list[ProviderOut]:
    with runtime.db.session() as session:
        rows = session.scalars(
            scoped(ChannelProvider, caller.workspace_id).order_by(
                ChannelProvider.channel, ChannelProvider.priority, ChannelProvider.name
            )
        )
        return [_provider_out(r) for r in rows]


@router.post("/providers", status_code=201, summary="Add a provider account")
def create_provider(runtime: RuntimeDep, caller: Caller, body: ProviderIn) -> ProviderOut:
    caller.require("admin")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        row = provider_service.create_provider(session, caller.workspace_id, body.model_dump(), now)
        audit(session, caller, "provider.create", subject_type="provider", subject_id=row.id, now=now)
        return _provider_out(row)


@router.patch("/providers/{provider_id}", summary="Change a provider account")
def patch_provider(runtime: RuntimeDep, caller: Caller, provider_id: str, body: ProviderPatch) -> ProviderOut:
    caller.require("admin")
    now = clock.now()
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    with runtime.db.session(write=True) as session:
        row = provider_service.update_provider(session, caller.workspace_id, provider_id, changes, now)
        audit(
            session,
            caller,
            "provider.update",
            subject_type="provider",
            subject_id=row.id,
            details={"changed": sorted(changes)},
            now=now,
        )
        return _provider_out(row)


@router.delete("/providers/{provider_id}", summary="Remove a provider account")
def delete_provider(runtime: RuntimeDep, caller: Caller, provider_id: str) -> ProviderOut:
    caller.require("admin")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        row = get_scoped(session, ChannelProvider, caller.workspace_id, provider_id, "provider")
        out = _provider_out(row)
        session.delete(row)
        audit(session, caller, "provider.delete", subject_type="provider", subject_id=provider_id, now=now)
        return out


@router.get("/interactions", summary="Messages that crossed, either way, on any channel; newest first")
def list_interactions(
    runtime: RuntimeDep,
    caller: Caller,
    customer_id: Annotated[str | None, Query(max_length=40)] = None,
    channel: Annotated[str | None, Query(max_length=20)] = None,
    direction: Annotated[str | None, Query(pattern="^(in|out)$")] = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> InteractionPage:
    with runtime.db.session() as session:
        query = scoped(Interaction, caller.workspace_id)
        if customer_id:
            _, ids = profile_ids(session, caller.workspace_id, customer_id)
            query = query.where(Interaction.customer_id.in_(ids))
        if channel:
            query = query.where(Interaction.channel == channel)
        if direction:
            query = query.where(Interaction.direction == direction)
        rows, next_cursor = _newest_first(session, query, Interaction, cursor, limit)
        return InteractionPage(data=[InteractionOut.model_validate(i) for i in rows], next_cursor=next_cursor)
