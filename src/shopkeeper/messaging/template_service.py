"""Templates: save (checked: Liquid syntax with line and column, sensitive traits), version,
look up the compiled form a send renders, and preview against a real customer."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.consent.service import topic_by_key
from shopkeeper.customers.models import Customer
from shopkeeper.customers.service import profile_ids
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.errors import Conflict, Invalid, NotFound
from shopkeeper.ids import new_id
from shopkeeper.messaging.context import render_context
from shopkeeper.messaging.models import Template, TemplateVersion
from shopkeeper.messaging.templates import CompiledContent, TemplateError, compile_content
from shopkeeper.privacy.guard import check_trait_use

KINDS = ("marketing", "transactional")
# Roots under which a template reads customer traits (`customer.traits.first_name`, or the
# shorthand `traits.first_name`).
_TRAIT_ROOTS = ("customer.traits.", "traits.")


def traits_read(compiled: CompiledContent) -> set[str]:
    found: set[str] = set()
    for path in compiled.variables():
        for root in _TRAIT_ROOTS:
            if path.startswith(root):
                found.add(path[len(root) :].split(".", 1)[0])
    return found


def check_content(session: Session, workspace_id: str, kind: str, content: Mapping[str, Any]) -> CompiledContent:
    compiled = compile_content(content)
    check_trait_use(session, workspace_id, traits_read(compiled), "template", kind)
    return compiled


def _check_kind_topic(session: Session, workspace_id: str, kind: str, topic: str | None) -> None:
    if kind not in KINDS:
        raise Invalid(f"kind: one of {', '.join(KINDS)}", field="kind")
    if topic is not None:
        topic_by_key(session, workspace_id, topic)
    if kind == "marketing" and topic is None:
        raise Invalid("topic: a marketing template belongs to a topic", field="topic")


def create_template(
    session: Session,
    workspace_id: str,
    *,
    key: str,
    name: str,
    kind: str,
    topic: str | None,
    content: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> tuple[Template, TemplateVersion]:
    _check_kind_topic(session, workspace_id, kind, topic)
    check_content(session, workspace_id, kind, content)
    if session.scalar(scoped(Template, workspace_id).where(Template.key == key)) is not None:
        raise Conflict(f"key: a template {key!r} exists already", field="key")
    template = Template(
        id=new_id("tpl"),
        workspace_id=workspace_id,
        key=key,
        name=name,
        kind=kind,
        topic=topic,
        current_version=1,
        created_at=now,
        updated_at=now,
    )
    version = TemplateVersion(
        id=new_id("tpv"),
        workspace_id=workspace_id,
        template_id=template.id,
        version=1,
        content=dict(content),
        created_at=now,
        created_by=actor,
    )
    session.add_all([template, version])
    session.flush()
    return template, version


def update_template(
    session: Session,
    workspace_id: str,
    template_id: str,
    *,
    changes: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> tuple[Template, TemplateVersion]:
    """Name, kind and topic change in place; new content is a new version (old ones stay, so a
    send's history still shows what it rendered)."""
    template = get_scoped(session, Template, workspace_id, template_id, "template")
    kind = changes.get("kind") or template.kind
    topic = changes.get("topic", template.topic)
    _check_kind_topic(session, workspace_id, kind, topic)
    current = version_of(session, workspace_id, template, None)
    content = changes.get("content")
    check_content(session, workspace_id, kind, content if content is not None else current.content)
    if changes.get("name"):
        template.name = changes["name"]
    template.kind, template.topic = kind, topic
    if "archived" in changes and changes["archived"] is not None:
        template.archived_at = now if changes["archived"] else None
    if content is not None and dict(content) != current.content:
        template.current_version += 1
        current = TemplateVersion(
            id=new_id("tpv"),
            workspace_id=workspace_id,
            template_id=template.id,
            version=template.current_version,
            content=dict(content),
            created_at=now,
            created_by=actor,
        )
        session.add(current)
    template.updated_at = now
    session.flush()
    return template, current


def template_by_ref(session: Session, workspace_id: str, ref: str, field: str = "template") -> Template:
    """By id or by key."""
    found = session.scalar(scoped(Template, workspace_id).where((Template.id == ref) | (Template.key == ref)).limit(1))
    if found is None:
        raise NotFound(f"{field}: no template {ref!r}", field=field)
    return found


def version_of(session: Session, workspace_id: str, template: Template, version: int | None) -> TemplateVersion:
    wanted = template.current_version if version is None else version
    row = session.scalar(
        scoped(TemplateVersion, workspace_id).where(
            TemplateVersion.template_id == template.id, TemplateVersion.version == wanted
        )
    )
    if row is None:
        raise NotFound(f"version: template {template.key!r} has no version {wanted}", field="version")
    return row


def versions(session: Session, workspace_id: str, template_id: str) -> list[TemplateVersion]:
    get_scoped(session, Template, workspace_id, template_id, "template")
    return list(
        session.scalars(
            scoped(TemplateVersion, workspace_id)
            .where(TemplateVersion.template_id == template_id)
            .order_by(TemplateVersion.version.desc())
        )
    )


@dataclass(frozen=True, slots=True)
class Preview:
    customer: Customer
    rendered: dict[str, dict[str, str]]
    errors: dict[str, str]  # channel → why it cannot render


def preview(
    session: Session,
    workspace: Workspace,
    compiled: CompiledContent,
    customer_id: str,
    *,
    channels: Sequence[str],
    topic: str | None,
    data: Mapping[str, Any],
    now: datetime,
    base_url: str | None,
) -> Preview:
    """Renders content (saved or not) for a real customer of the workspace, channel by channel,
    with what a send would see; a channel that fails to render gives its error instead."""
    customer, ids = profile_ids(session, workspace.id, customer_id)
    rendered: dict[str, dict[str, str]] = {}
    errors: dict[str, str] = {}
    for channel in channels:
        context = render_context(
            session, workspace, customer, ids, channel=channel, topic=topic, data=data, now=now, base_url=base_url
        )
        try:
            rendered[channel] = compiled.render(channel, context)
        except TemplateError as exc:
            errors[channel] = exc.message
    return Preview(customer, rendered, errors)


class CompiledCache:
    """Parsed versions by id: versions never change, so a parse is reused until evicted."""

    def __init__(self, size: int = 512) -> None:
        self._items: OrderedDict[str, CompiledContent] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, session: Session, workspace_id: str, template_id: str, version: int) -> CompiledContent:
        key = f"{template_id}:{version}"
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        content = session.scalar(
            select(TemplateVersion.content).where(
                TemplateVersion.workspace_id == workspace_id,
                TemplateVersion.template_id == template_id,
                TemplateVersion.version == version,
            )
        )
        if content is None:
            raise NotFound(f"template {template_id} version {version} not found", field="template")
        compiled = compile_content(content)
        with self._lock:
            self._items[key] = compiled
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return compiled


compiled_cache = CompiledCache()
