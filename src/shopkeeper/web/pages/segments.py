"""Segments: the list, the condition builder with its live count, a segment's members (paged,
and exported as CSV), new versions, refresh and archive.

The builder is rendered on the server: its fields are named by the validator's paths, every
edit posts the form (htmx) and gets back the count and first members of the unsaved definition
— or the error, shown at the node its path names — and structural edits (add, remove, change a
kind) get the builder back as well. Everything goes through `segments.service`, scoped to the
session's workspace.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.service import audit
from shopkeeper.consent.models import CHANNELS, STATUSES, Topic
from shopkeeper.customers.models import Customer
from shopkeeper.customers.service import identities_of
from shopkeeper.db.scoping import scoped
from shopkeeper.db.session import Database
from shopkeeper.errors import Invalid, ShopkeeperError
from shopkeeper.journeys.models import Journey
from shopkeeper.runtime import get_runtime
from shopkeeper.segments import service
from shopkeeper.segments.definition import PURPOSES
from shopkeeper.segments.models import Segment, SegmentMembership
from shopkeeper.web import segment_form as sf
from shopkeeper.web.render import fragment, page
from shopkeeper.web.session import Viewer, Web

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
PREVIEW_LIMIT = 10
PAGE_SIZE = 50
EXPORT_BATCH = 1000
CSV_COLUMNS = ("customer_id", "email", "phone", "first_name", "last_name", "entered_at")


async def _posted(request: Request) -> dict[str, str]:
    """The posted form as plain strings (the builder's field names are its paths)."""
    form = await request.form()
    return {name: value for name, value in form.multi_items() if isinstance(value, str)}


Posted = Annotated[dict[str, str], Depends(_posted)]


def _db(request: Request) -> Database:
    return get_runtime(request).db


def can_edit(web: Web) -> bool:
    try:
        web.principal.require("marketer")
    except ShopkeeperError:
        return False
    return True


def customer_label(customer: Customer) -> str:
    traits = customer.traits or {}
    name = " ".join(str(traits[k]) for k in ("first_name", "last_name") if traits.get(k)) or traits.get("name")
    email = traits.get("email")
    if name and email:
        return f"{name} <{email}>"
    return str(name or email or customer.id)


# -- checking a draft ------------------------------------------------------------------------
@dataclass
class Check:
    """What the builder shows beside the tree: the live count, or why there is none."""

    conditions: Any = None
    count: int | None = None
    customers: list[Customer] = field(default_factory=list)
    milliseconds: float = 0.0
    error: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    empty: bool = False


def _at_node(message: str, error_field: str | None, node: str) -> str:
    """The message as seen from its node: `conditions.and[0].trait.key: …` → `trait.key: …`."""
    if error_field and message.startswith(f"{error_field}: "):
        rest = error_field[len(node) :].lstrip(".") if error_field.startswith(node) else ""
        text = message[len(error_field) + 2 :]
        return f"{rest}: {text}" if rest else text
    return message


def failed(draft: sf.Draft, exc: ShopkeeperError, conditions: Any = None) -> Check:
    node = sf.place_error(draft, exc.field, exc.message)
    if node is None:
        return Check(conditions=conditions, error=exc.message)
    return Check(conditions=conditions, errors={node: _at_node(exc.message, exc.field, node)})


def evaluate(session: Session, workspace_id: str, draft: sf.Draft, purpose: str) -> Check:
    if draft.kind in sf.GROUPS and not draft.children:
        return Check(conditions={draft.kind: []}, empty=True)
    conditions = None
    try:
        conditions = sf.to_json(draft)
        result = service.preview(session, workspace_id, conditions, purpose, limit=PREVIEW_LIMIT, now=clock.now())
    except ShopkeeperError as exc:
        return failed(draft, exc, conditions)
    return Check(conditions, result.count, result.customers, result.milliseconds)


def _choices(session: Session, workspace_id: str, current_key: str | None) -> dict[str, Any]:
    segments = [(s.key, s.name) for s in service.active_segments(session, workspace_id) if s.key != current_key]
    topics = [
        t.key
        for t in session.scalars(
            scoped(Topic, workspace_id).where(Topic.archived_at.is_(None)).order_by(Topic.key).limit(500)
        )
    ]
    return {"segment_choices": segments, "topic_choices": topics}


def _builder_context(
    session: Session, web: Web, draft: sf.Draft, check: Check, *, current_key: str | None, focus: str | None = None
) -> dict[str, Any]:
    return {
        "draft": draft,
        "check": check,
        "focus": focus,
        "sf": sf,
        "channels": CHANNELS,
        "statuses": STATUSES,
        "tree_json": _pretty(check.conditions),
        "paths": sf.node_paths(draft),
        "label": customer_label,
        **_choices(session, web.workspace_id, current_key),
    }


def _pretty(conditions: Any) -> str:
    if conditions is None:
        return ""
    return orjson.dumps(conditions, option=orjson.OPT_INDENT_2).decode()


# -- the list --------------------------------------------------------------------------------
@router.get("/segments")
def segments_list(request: Request, web: Viewer, archived: bool = False) -> HTMLResponse:
    with _db(request).session() as s:
        query = scoped(Segment, web.workspace_id)
        if not archived:
            query = query.where(Segment.archived_at.is_(None))
        rows = list(s.scalars(query.order_by(Segment.key).limit(1000)))
    return page(
        request,
        web,
        "app/segments/list.html",
        section="segments",
        segments=rows,
        archived=archived,
        can_edit=can_edit(web),
    )


# -- the editor ------------------------------------------------------------------------------
def _editor(
    request: Request,
    web: Web,
    *,
    segment: Segment | None,
    meta: dict[str, str],
    draft: sf.Draft,
    check: Check | None = None,
    status: int = 200,
    notice: str | None = None,
) -> HTMLResponse:
    with _db(request).session() as s:
        if check is None:
            check = evaluate(s, web.workspace_id, draft, meta.get("purpose", "marketing"))
        context = _builder_context(s, web, draft, check, current_key=segment.key if segment else None)
    return page(
        request,
        web,
        "app/segments/edit.html",
        section="segments",
        status=status,
        segment=segment,
        meta=meta,
        purposes=PURPOSES,
        notice=notice,
        **context,
    )


def _meta(form: dict[str, str], segment: Segment | None = None) -> dict[str, str]:
    defaults = {
        "key": segment.key if segment else "",
        "name": segment.name if segment else "",
        "description": segment.description if segment else "",
        "purpose": segment.purpose if segment else "marketing",
    }
    return {k: form.get(k, v) for k, v in defaults.items()}


@router.get("/segments/new")
def new_segment(request: Request, web: Viewer) -> HTMLResponse:
    web.principal.require("marketer")
    return _editor(request, web, segment=None, meta=_meta({}), draft=sf.Draft("and", children=[sf.new("trait")]))


@router.post("/segments/new")
def create_segment(request: Request, web: Viewer, form: Posted, background: BackgroundTasks) -> Response:
    web.principal.require("marketer")
    meta = _meta(form)
    draft = sf.read(form)
    now = clock.now()
    db = _db(request)
    try:
        conditions = sf.to_json(draft)
        with db.session(write=True) as s:
            segment = service.create(
                s,
                web.workspace_id,
                key=meta["key"].strip(),
                name=meta["name"],
                description=meta["description"],
                purpose=meta["purpose"],
                conditions=conditions,
                actor=web.principal.actor,
                now=now,
            )
            audit(
                s,
                web.principal,
                "segment.create",
                subject_type="segment",
                subject_id=segment.id,
                now=now,
                details={"key": segment.key, "version": segment.version, "purpose": segment.purpose},
            )
            segment_id = segment.id
    except ShopkeeperError as exc:
        return _refused(request, web, None, meta, draft, exc)
    background.add_task(_refresh_quietly, db, web.workspace_id, segment_id)
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)


def _refused(
    request: Request, web: Web, segment: Segment | None, meta: dict[str, str], draft: sf.Draft, exc: ShopkeeperError
) -> HTMLResponse:
    """The editor again, as it was sent, with the refusal at its node (or above the form)."""
    check = failed(draft, exc)
    if exc.field in ("key", "name", "purpose", "description", "id"):
        check = Check(errors={})
    notice = f"Not saved: {exc.message}"
    return _editor(request, web, segment=segment, meta=meta, draft=draft, check=check, status=exc.status, notice=notice)


def _refresh_quietly(db: Database, workspace_id: str, segment_id: str) -> None:
    """Build the membership after the answer has gone (at 1M customers a first build takes
    seconds to a minute), so the new version's members show without waiting for the schedule;
    the segment's page polls until it is done. The schedule would build it anyway, so a
    failure here is not the save's."""
    try:
        with db.session(write=True) as s:
            service.refresh(s, service.get(s, workspace_id, segment_id), clock.now())
    except Exception:
        log.exception("segments: refresh after save failed")


@router.post("/segments/builder")
def builder(request: Request, web: Viewer, form: Posted) -> HTMLResponse:
    """A structural edit (add, remove, change a kind, paste JSON): the builder drawn again,
    with the count of the result."""
    draft = sf.read(form)
    op = form.get("op", "")
    focus = None
    json_error = None
    if op == "json":
        try:
            draft = sf.parse_json_text(form.get("json", ""))
        except Invalid as exc:
            json_error = exc.message
    elif op:
        focus = sf.apply(draft, op, form)
    segment_id = form.get("segment_id") or None
    with _db(request).session() as s:
        current_key = service.get(s, web.workspace_id, segment_id).key if segment_id else None
        check = evaluate(s, web.workspace_id, draft, form.get("purpose", "marketing"))
        context = _builder_context(s, web, draft, check, current_key=current_key, focus=focus)
    return fragment("app/segments/_builder_response.html", web=web, json_error=json_error, **context)


@router.post("/segments/preview")
def preview(request: Request, web: Viewer, form: Posted) -> HTMLResponse:
    """The live count: the form's tree, evaluated unsaved; errors go to their nodes."""
    draft = sf.read(form)
    with _db(request).session() as s:
        check = evaluate(s, web.workspace_id, draft, form.get("purpose", "marketing"))
    return fragment(
        "app/segments/_preview_response.html",
        web=web,
        check=check,
        paths=sf.node_paths(draft),
        sf=sf,
        label=customer_label,
        errors_oob=True,
        tree_json=_pretty(check.conditions),
    )


# -- one segment -----------------------------------------------------------------------------
@router.get("/segments/{segment_id}")
def segment_page(request: Request, web: Viewer, segment_id: str, after: str | None = None) -> HTMLResponse:
    with _db(request).session() as s:
        segment = service.get(s, web.workspace_id, segment_id)
        rows = service.members_page(s, web.workspace_id, segment_id, after=after, limit=PAGE_SIZE + 1)
        members = rows[:PAGE_SIZE]
        ids = [m.customer_id for m in members]
        customers = {c.id: c for c in s.scalars(scoped(Customer, web.workspace_id).where(Customer.id.in_(ids)))}
        versions = service.versions(s, web.workspace_id, segment_id)
        users = [
            (j.id, j.name)
            for j in s.scalars(
                scoped(Journey, web.workspace_id)
                .where(
                    Journey.trigger_kind.in_(("segment_entered", "segment_exited", "schedule")),
                    Journey.trigger_event == segment.key,
                )
                .limit(50)
            )
        ]
    return page(
        request,
        web,
        "app/segments/show.html",
        section="segments",
        segment=segment,
        members=[(m, customers.get(m.customer_id)) for m in members],
        label=customer_label,
        next_after=members[-1].customer_id if len(rows) > PAGE_SIZE else None,
        after=after,
        versions=versions,
        journeys=users,
        definition=_pretty(segment.definition),
        pending=segment.refresh_due_at is not None and segment.archived_at is None,
        can_edit=can_edit(web),
    )


@router.get("/segments/{segment_id}/edit")
def edit_segment(request: Request, web: Viewer, segment_id: str) -> HTMLResponse:
    web.principal.require("marketer")
    with _db(request).session() as s:
        segment = service.get(s, web.workspace_id, segment_id)
    notice = None
    if not sf.faithful(segment.definition):
        notice = (
            "The builder cannot show this definition exactly (a list mixing text and numbers, or text with "
            "commas): edit it as JSON below, or saving from the builder will change it."
        )
    return _editor(
        request,
        web,
        segment=segment,
        meta=_meta({}, segment),
        draft=sf.from_json(segment.definition),
        notice=notice,
    )


@router.post("/segments/{segment_id}/edit")
def save_segment(request: Request, web: Viewer, segment_id: str, form: Posted, background: BackgroundTasks) -> Response:
    web.principal.require("marketer")
    db = _db(request)
    with db.session() as s:
        segment = service.get(s, web.workspace_id, segment_id)
    meta = _meta(form, segment)
    draft = sf.read(form)
    now = clock.now()
    try:
        conditions = sf.to_json(draft)
        with db.session(write=True) as s:
            before = service.get(s, web.workspace_id, segment_id).version
            saved = service.update(
                s,
                web.workspace_id,
                segment_id,
                name=meta["name"],
                description=meta["description"],
                conditions=conditions,
                purpose=meta["purpose"],
                actor=web.principal.actor,
                now=now,
            )
            audit(
                s,
                web.principal,
                "segment.update",
                subject_type="segment",
                subject_id=saved.id,
                now=now,
                details={"version": saved.version},
            )
            changed = saved.version != before
    except ShopkeeperError as exc:
        return _refused(request, web, segment, meta, draft, exc)
    if changed:
        background.add_task(_refresh_quietly, db, web.workspace_id, segment_id)
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)


@router.post("/segments/{segment_id}/refresh")
def refresh_segment(request: Request, web: Viewer, segment_id: str) -> Response:
    web.principal.require("marketer")
    with _db(request).session(write=True) as s:
        segment = service.get(s, web.workspace_id, segment_id)
        if segment.archived_at is None:
            service.refresh(s, segment, clock.now())
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)


@router.post("/segments/{segment_id}/archive")
def archive_segment(request: Request, web: Viewer, segment_id: str) -> Response:
    web.principal.require("marketer")
    now = clock.now()
    with _db(request).session(write=True) as s:
        segment = service.archive(s, web.workspace_id, segment_id, actor=web.principal.actor, now=now)
        audit(s, web.principal, "segment.archive", subject_type="segment", subject_id=segment.id, now=now)
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)


# -- export ----------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _export_rows(db: Database, workspace_id: str, segment_id: str) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    after: str | None = None
    while True:
        buffer.seek(0)
        buffer.truncate()
        with db.session() as s:  # one short read per batch: a long export holds no transaction
            batch: list[SegmentMembership] = service.members_page(
                s, workspace_id, segment_id, after=after, limit=EXPORT_BATCH
            )
            if not batch:
                return
            ids = [m.customer_id for m in batch]
            customers = {c.id: c for c in s.scalars(scoped(Customer, workspace_id).where(Customer.id.in_(ids)))}
            identities = identities_of(s, workspace_id, ids)
        for m in batch:
            traits = customers[m.customer_id].traits if m.customer_id in customers else {}
            found = {i.kind: i.value for i in reversed(identities.get(m.customer_id, []))}
            writer.writerow(
                [
                    _cell(m.customer_id),
                    _cell(found.get("email") or traits.get("email")),
                    _cell(found.get("phone") or traits.get("phone")),
                    _cell(traits.get("first_name")),
                    _cell(traits.get("last_name")),
                    m.entered_at.isoformat(),
                ]
            )
        yield buffer.getvalue()
        after = batch[-1].customer_id


@router.get("/segments/{segment_id}/members.csv")
def export_members(request: Request, web: Viewer, segment_id: str) -> StreamingResponse:
    db = _db(request)
    with db.session() as s:
        segment = service.get(s, web.workspace_id, segment_id)
        key = segment.key
    return StreamingResponse(
        _export_rows(db, web.workspace_id, segment_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{key}.csv"', "Cache-Control": "no-store"},
    )
