"""Journeys and campaigns: the list with entries and conversions, creating one, its definition
edited as YAML or JSON (checked as you type, saved as a new version), the journey drawn as a
graph with each step's counts (refreshed while the page is open), the funnel, the lift against
the holdout with its confidence interval, its alerts, and activate / pause / resume / archive.

Everything goes through `journeys.service` and `journeys.monitor`, scoped to the session's
workspace; another workspace's journey is not found.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import orjson
import yaml
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.service import audit
from shopkeeper.db.scoping import get_scoped, scoped
from shopkeeper.errors import ShopkeeperError
from shopkeeper.journeys import definition as d
from shopkeeper.journeys import monitor, service, worker
from shopkeeper.journeys.entry import definition_of
from shopkeeper.journeys.models import Alert, Journey, JourneyRun, JourneyVersion
from shopkeeper.runtime import get_runtime
from shopkeeper.web import journey_graph
from shopkeeper.web.charts import bar_chart
from shopkeeper.web.render import fragment, page
from shopkeeper.web.session import Viewer, Web

router = APIRouter(include_in_schema=False)
STATUS_ORDER = {"active": 0, "paused": 1, "draft": 2, "archived": 3}
POLL_SECONDS = 3
MAX_TEXT = 300_000
EXAMPLE = """\
trigger: {type: event, event: Cart Abandoned}
reentry: {policy: after_exit, cooldown: 7d}
goal: {event: Order Completed, within: 7d}
steps:
  - {id: control, type: holdout, percent: 10}
  - {id: wait-an-hour, type: wait, duration: 1h}
  - {id: bought, type: goal}
"""
Text = Annotated[str, Form(max_length=MAX_TEXT)]


def can_edit(web: Web) -> bool:
    try:
        web.principal.require("marketer")
    except ShopkeeperError:
        return False
    return True


def _journey(session: Session, web: Web, journey_id: str) -> Journey:
    return get_scoped(session, Journey, web.workspace_id, journey_id, "journey")


def as_yaml(document: dict[str, Any]) -> str:
    """A stored definition as YAML to edit: the usual keys first, each step's id and type first."""
    top = ("trigger", "reentry", "exit", "goal", "monitor", "steps")
    ordered = {k: document[k] for k in top if k in document} | {k: v for k, v in document.items() if k not in top}
    if isinstance(ordered.get("steps"), list):
        ordered["steps"] = [
            {k: s[k] for k in ("id", "type") if k in s} | {k: v for k, v in s.items() if k not in ("id", "type")}
            if isinstance(s, dict)
            else s
            for s in ordered["steps"]
        ]
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)


@dataclass
class Problem:
    """A refused definition, said for people: which step, which field, what is wrong."""

    message: str
    field: str | None
    step: str | None
    where: str | None
    text: str


_STEP_RE = re.compile(r"^steps\[(\d+)\] \(([^)]+)\)\.?(.*)$")


def problem(exc: ShopkeeperError) -> Problem:
    field = exc.field
    text = exc.message
    if field and text.startswith(f"{field}: "):
        text = text[len(field) + 2 :]
    step = where = None
    if field and (m := _STEP_RE.match(field)):
        step, where = m.group(2), m.group(3) or None
    elif field:
        where = field
    return Problem(exc.message, field, step, where, text)


# -- the list --------------------------------------------------------------------------------
@router.get("/journeys")
def journeys_list(request: Request, web: Viewer, kind: str | None = None) -> HTMLResponse:
    kind = kind if kind in ("journey", "campaign") else None
    with get_runtime(request).db.session() as s:
        query = scoped(Journey, web.workspace_id)
        if kind is not None:
            query = query.where(Journey.kind == kind)
        rows = sorted(s.scalars(query.limit(1000)), key=lambda j: (STATUS_ORDER.get(j.status, 9), j.name.lower()))
        counts = {
            journey_id: (int(entered), int(converted))
            for journey_id, entered, converted in s.execute(
                select(JourneyRun.journey_id, func.count(), func.count(JourneyRun.converted_at))
                .where(JourneyRun.workspace_id == web.workspace_id)
                .group_by(JourneyRun.journey_id)
            )
        }
        alerts = list(
            s.scalars(
                scoped(Alert, web.workspace_id)
                .where(Alert.resolved_at.is_(None))
                .order_by(Alert.created_at.desc())
                .limit(50)
            )
        )
        names = {j.id: j.name for j in rows}
        missing = {a.subject_id for a in alerts} - set(names)
        if missing:
            names |= {j.id: j.name for j in s.scalars(scoped(Journey, web.workspace_id).where(Journey.id.in_(missing)))}
    return page(
        request,
        web,
        "app/journeys/list.html",
        section="journeys",
        journeys=rows,
        counts=counts,
        alerts=alerts,
        names=names,
        kind=kind,
        can_edit=can_edit(web),
    )


# -- creating one ----------------------------------------------------------------------------
@router.get("/journeys/new")
def new_journey(request: Request, web: Viewer) -> HTMLResponse:
    web.principal.require("marketer")
    return page(
        request,
        web,
        "app/journeys/new.html",
        section="journeys",
        journey_key="",
        journey_name="",
        text=EXAMPLE,
        error=None,
        problem=None,
    )


@router.post("/journeys/new")
def create_journey(
    request: Request,
    web: Viewer,
    key: Annotated[str, Form(max_length=200)],
    name: Annotated[str, Form(max_length=200)],
    definition: Text,
) -> Response:
    web.principal.require("marketer")
    now = clock.now()
    try:
        if not name.strip():
            from shopkeeper.errors import Invalid

            raise Invalid("name: give the journey a name", field="name")
        with get_runtime(request).db.session(write=True) as s:
            journey = service.create(
                s,
                web.workspace_id,
                key=key.strip(),
                name=name.strip(),
                raw=definition,
                actor=web.principal.actor,
                now=now,
            )
            audit(
                s,
                web.principal,
                "journey.create",
                subject_type="journey",
                subject_id=journey.id,
                now=now,
                details={"key": journey.key},
            )
            journey_id = journey.id
    except ShopkeeperError as exc:
        return page(
            request,
            web,
            "app/journeys/new.html",
            section="journeys",
            status=exc.status,
            journey_key=key,
            journey_name=name,
            text=definition,
            error=exc.message,
            problem=problem(exc),
        )
    worker.changed()
    return RedirectResponse(f"/journeys/{journey_id}", status_code=303)


@router.post("/journeys/validate")
def validate(
    request: Request, web: Viewer, definition: Text, draw: Annotated[str, Form(max_length=1)] = ""
) -> HTMLResponse:
    """Checked as the definition is typed: what it is (drawn, for a new one), or the step and
    field at fault."""
    with get_runtime(request).db.session() as s:
        try:
            checked = service.check(s, web.workspace_id, definition)
        except ShopkeeperError as exc:
            return fragment("app/journeys/_check.html", problem=problem(exc), checked=None, graph=None)
    graph = journey_graph.layout(checked.definition) if draw else None
    return fragment("app/journeys/_check.html", problem=None, checked=checked.definition, graph=graph, d=d)


# -- one journey -----------------------------------------------------------------------------
@dataclass
class Panel:
    stats: monitor.Stats
    rates: dict[str, float]
    rate_sends: int
    graph: journey_graph.Graph
    funnel: dict[str, Any]
    lift_chart: dict[str, Any] | None
    digest: str


def _panel(session: Session, journey: Journey) -> Panel:
    version = journey.live_version or journey.latest_version
    definition = definition_of(session, journey.id, version)
    stats = monitor.stats(session, journey)
    outcomes, rates = monitor.rates(session, journey, clock.now())
    graph = journey_graph.layout(definition, stats.steps)
    stages = ("entered", "sent", "delivered", "opened", "clicked", "replied", "converted")
    values = [stats.entered, *(stats.sends.get(s, 0) for s in stages[1:-1]), stats.converted]
    funnel = bar_chart(
        "Funnel: customers entered, messages by furthest status, conversions", "Stage", stages, {"count": values}
    )
    lift_chart = None
    if stats.lift is not None and stats.lift.treatment and stats.lift.control:
        lift = stats.lift
        lift_chart = bar_chart(
            "Conversion rate of treated customers and of the holdout (%)",
            "Group",
            ["treated", "holdout"],
            {
                "conversion %": [
                    round(100 * lift.treatment_converted / lift.treatment, 2),
                    round(100 * lift.control_converted / lift.control, 2),
                ]
            },
        )
    digest_source = {"stats": asdict(stats), "rates": rates, "status": journey.status, "version": version}
    digest = hashlib.sha256(orjson.dumps(digest_source, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return Panel(stats, rates, outcomes, graph, funnel, lift_chart, digest)


def ci_scale(lift: monitor.Lift) -> dict[str, float] | None:
    """Positions (0–100 %) of the interval, the estimate and zero on a shared axis."""
    if lift.difference is None or lift.low is None or lift.high is None:
        return None
    low, high = min(lift.low, 0.0), max(lift.high, 0.0)
    pad = (high - low) * 0.1 or 0.01
    low, high = low - pad, high + pad

    def at(v: float) -> float:
        return round(100 * (v - low) / (high - low), 2)

    return {
        "low": at(lift.low),
        "high": at(lift.high),
        "estimate": at(lift.difference),
        "zero": at(0.0),
        "axis_low": low,
        "axis_high": high,
    }


def _panel_context(panel: Panel, journey: Journey) -> dict[str, Any]:
    return {
        "journey": journey,
        "panel": panel,
        "ci": ci_scale(panel.stats.lift) if panel.stats.lift is not None else None,
        "poll": POLL_SECONDS,
    }


def _detail(
    request: Request,
    web: Web,
    journey_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    text: str | None = None,
    edit_problem: Problem | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    with get_runtime(request).db.session() as s:
        journey = _journey(s, web, journey_id)
        panel = _panel(s, journey)
        document = s.scalar(
            select(JourneyVersion.definition).where(
                JourneyVersion.workspace_id == web.workspace_id,
                JourneyVersion.journey_id == journey.id,
                JourneyVersion.version == journey.latest_version,
            )
        )
        alerts = list(
            s.scalars(
                scoped(Alert, web.workspace_id)
                .where(Alert.subject_id == journey.id)
                .order_by(Alert.resolved_at.is_not(None), Alert.created_at.desc())
                .limit(20)
            )
        )
        definition = definition_of(s, journey.id, journey.live_version or journey.latest_version)
    return page(
        request,
        web,
        "app/journeys/show.html",
        section="journeys",
        status=status,
        error=error,
        notice=notice,
        text=text if text is not None else as_yaml(dict(document or {})),
        problem=edit_problem,
        alerts=alerts,
        trigger=journey_graph.trigger_summary(definition.trigger),
        can_edit=can_edit(web),
        **_panel_context(panel, journey),
    )


@router.get("/journeys/{journey_id}")
def journey_page(request: Request, web: Viewer, journey_id: str, done: str | None = None) -> HTMLResponse:
    notices = {
        "activate": "Activated: new customers enter from now on.",
        "pause": "Paused: nobody enters or moves on until it is resumed.",
        "resume": "Resumed.",
        "archive": "Archived: customers inside have left.",
        "saved": "Saved as a new version.",
    }
    return _detail(request, web, journey_id, notice=notices.get(done or ""))


@router.get("/journeys/{journey_id}/stats")
def journey_stats(request: Request, web: Viewer, journey_id: str, v: str | None = None) -> Response:
    """The counts panel, polled by the page: 204 (nothing to redraw) while nothing changed."""
    with get_runtime(request).db.session() as s:
        journey = _journey(s, web, journey_id)
        panel = _panel(s, journey)
    if v is not None and v == panel.digest:
        return Response(status_code=204)
    return fragment("app/journeys/_stats.html", **_panel_context(panel, journey))


@router.post("/journeys/{journey_id}/definition")
def save_definition(request: Request, web: Viewer, journey_id: str, definition: Text) -> Response:
    web.principal.require("marketer")
    now = clock.now()
    try:
        with get_runtime(request).db.session(write=True) as s:
            journey = service.change(s, _journey(s, web, journey_id), definition, web.principal.actor, now)
            audit(
                s,
                web.principal,
                "journey.change",
                subject_type="journey",
                subject_id=journey.id,
                now=now,
                details={"version": journey.latest_version},
            )
    except ShopkeeperError as exc:
        if exc.status == 404:
            raise
        return _detail(
            request, web, journey_id, status=exc.status, text=definition, edit_problem=problem(exc), error=exc.message
        )
    worker.changed()
    return RedirectResponse(f"/journeys/{journey_id}?done=saved", status_code=303)


def _transition(request: Request, web: Web, journey_id: str, action: str, reason: str = "") -> Response:
    web.principal.require("marketer")
    now = clock.now()
    try:
        with get_runtime(request).db.session(write=True) as s:
            journey = _journey(s, web, journey_id)
            details: dict[str, Any] = {}
            if action == "activate":
                service.activate(s, journey, web.principal.actor, now)
            elif action == "pause":
                service.pause(s, journey, reason=reason, actor=web.principal.actor, now=now)
                details["reason"] = reason
            elif action == "resume":
                service.resume(s, journey, web.principal.actor, now)
            else:
                details["runs_ended"] = service.archive(s, journey, web.principal.actor, now)
            audit(
                s,
                web.principal,
                f"journey.{action}",
                subject_type="journey",
                subject_id=journey.id,
                now=now,
                details=details,
            )
    except ShopkeeperError as exc:
        if exc.status == 404:
            raise
        return _detail(request, web, journey_id, status=exc.status, error=exc.message)
    worker.changed()
    return RedirectResponse(f"/journeys/{journey_id}?done={action}", status_code=303)


@router.post("/journeys/{journey_id}/activate")
def activate(request: Request, web: Viewer, journey_id: str) -> Response:
    return _transition(request, web, journey_id, "activate")


@router.post("/journeys/{journey_id}/pause")
def pause(
    request: Request,
    web: Viewer,
    journey_id: str,
    reason: Annotated[str, Form(max_length=500)] = "paused by a person",
) -> Response:
    return _transition(request, web, journey_id, "pause", reason.strip() or "paused by a person")


@router.post("/journeys/{journey_id}/resume")
def resume(request: Request, web: Viewer, journey_id: str) -> Response:
    return _transition(request, web, journey_id, "resume")


@router.post("/journeys/{journey_id}/archive")
def archive(request: Request, web: Viewer, journey_id: str) -> Response:
    return _transition(request, web, journey_id, "archive")
