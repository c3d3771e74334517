"""Admin API for journeys and broadcast campaigns (/api/v1/journeys): create, validate, change
(a new version), activate, pause, resume, archive, enter a customer, read runs and stats; and
the alerts the monitor raised (/api/v1/alerts).

Marketers change journeys; viewers read them. A definition is JSON, or YAML sent as a string.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.auth.service import audit
from shopkeeper.db.scoping import scoped
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.errors import Invalid
from shopkeeper.journeys import definition as d
from shopkeeper.journeys import monitor, service, worker
from shopkeeper.journeys.models import RUN_STATES, Alert, Journey, JourneyRun, JourneyStep, JourneyVersion
from shopkeeper.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor

router = APIRouter(prefix="/api/v1", tags=["journeys"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


class JourneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=80)
    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any] | str


class DefinitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    definition: dict[str, Any] | str


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="paused by a person", min_length=1, max_length=500)


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(min_length=1, max_length=40)
    data: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class JourneyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    key: str
    name: str
    kind: str
    status: str
    latest_version: int
    live_version: int | None
    trigger_kind: str
    next_fire_at: datetime | None
    paused_reason: str | None
    paused_by: str | None
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None
    archived_at: datetime | None


class JourneyPage(BaseModel):
    data: list[JourneyOut]
    next_cursor: str | None


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    version: int
    definition: dict[str, Any]
    created_at: datetime
    created_by: str


class ValidOut(BaseModel):
    valid: bool
    kind: str
    trigger: str
    steps: list[dict[str, Any]]


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    customer_id: str
    version: int
    state: str
    step_id: str | None
    next_run_at: datetime | None
    wait_event: str | None
    holdout: bool
    entered_at: datetime
    finished_at: datetime | None
    exit_reason: str | None
    converted_at: datetime | None
    context: dict[str, Any]


class RunPage(BaseModel):
    data: list[RunOut]
    next_cursor: str | None


class StepLogOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    step_id: str
    outcome: str
    detail: dict[str, Any]
    at: datetime


class RunDetail(RunOut):
    steps: list[StepLogOut]


class EntryOut(BaseModel):
    entered: bool
    reason: str
    run: RunOut | None


class LiftOut(BaseModel):
    treatment: int
    treatment_converted: int
    control: int
    control_converted: int
    difference: float | None
    low: float | None
    high: float | None
    relative: float | None


class StatsOut(BaseModel):
    journey: JourneyOut
    entered: int
    states: dict[str, int]
    converted: int
    messages: dict[str, int]
    cost: float
    steps: dict[str, dict[str, Any]]
    lift: LiftOut | None
    rates: dict[str, float]
    rate_window_sends: int


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    subject_type: str
    subject_id: str
    kind: str
    message: str
    value: float
    threshold: float
    sends: int
    action: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None


class AlertPage(BaseModel):
    data: list[AlertOut]


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    value = decode_cursor(cursor, 1)[0]
    return value if isinstance(value, str) else None


def _summary(definition: d.Definition) -> ValidOut:
    return ValidOut(
        valid=True,
        kind=d.kind_of(definition),
        trigger=definition.trigger.kind,
        steps=[{"id": s.id, "type": s.type, "next": s.targets()} for s in definition.steps.values()],
    )


@router.post("/journeys/validate", summary="Check a definition without saving it")
def validate_journey(runtime: RuntimeDep, caller: Caller, body: DefinitionIn) -> ValidOut:
    caller.require("viewer")
    with runtime.db.session() as session:
        return _summary(service.check(session, caller.workspace_id, body.definition).definition)


@router.post("/journeys", status_code=201, summary="Create a journey or campaign (a draft, version 1)")
def create_journey(runtime: RuntimeDep, caller: Caller, body: JourneyIn) -> JourneyOut:
    caller.require("marketer")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        journey = service.create(
            session, caller.workspace_id, key=body.key, name=body.name, raw=body.definition, actor=caller.actor, now=now
        )
        audit(
            session,
            caller,
            "journey.create",
            subject_type="journey",
            subject_id=journey.id,
            now=now,
            details={"key": journey.key},
        )
        out = JourneyOut.model_validate(journey)
    worker.changed()
    return out


@router.get("/journeys", summary="List journeys and campaigns")
def list_journeys(
    runtime: RuntimeDep,
    caller: Caller,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    kind: Annotated[str | None, Query(pattern="^(journey|campaign)$")] = None,
    status: Annotated[str | None, Query(pattern="^(draft|active|paused|archived)$")] = None,
) -> JourneyPage:
    caller.require("viewer")
    after = _after(cursor)
    with runtime.db.session() as session:
        query = scoped(Journey, caller.workspace_id)
        if kind is not None:
            query = query.where(Journey.kind == kind)
        if status is not None:
            query = query.where(Journey.status == status)
        if after is not None:
            query = query.where(Journey.id > after)
        rows = list(session.scalars(query.order_by(Journey.id).limit(limit + 1)))
    page = rows[:limit]
    return JourneyPage(
        data=[JourneyOut.model_validate(j) for j in page],
        next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None,
    )


@router.get("/journeys/{journey_key}", summary="One journey")
def get_journey(runtime: RuntimeDep, caller: Caller, journey_key: str) -> JourneyOut:
    caller.require("viewer")
    with runtime.db.session() as session:
        return JourneyOut.model_validate(service.get(session, caller.workspace_id, journey_key))


@router.get("/journeys/{journey_key}/versions/{version}", summary="One version's definition")
def get_version(runtime: RuntimeDep, caller: Caller, journey_key: str, version: int) -> VersionOut:
    caller.require("viewer")
    with runtime.db.session() as session:
        journey = service.get(session, caller.workspace_id, journey_key)
        row = session.scalar(
            scoped(JourneyVersion, caller.workspace_id).where(
                JourneyVersion.journey_id == journey.id, JourneyVersion.version == version
            )
        )
        if row is None:
            raise Invalid(f"version: journey {journey_key!r} has no version {version}", field="version")
        return VersionOut.model_validate(row)


@router.put("/journeys/{journey_key}/definition", summary="Change the definition (a new version)")
def change_journey(runtime: RuntimeDep, caller: Caller, journey_key: str, body: DefinitionIn) -> JourneyOut:
    caller.require("marketer")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        journey = service.change(
            session, service.get(session, caller.workspace_id, journey_key), body.definition, caller.actor, now
        )
        audit(
            session,
            caller,
            "journey.change",
            subject_type="journey",
            subject_id=journey.id,
            now=now,
            details={"version": journey.latest_version},
        )
        out = JourneyOut.model_validate(journey)
    worker.changed()
    return out


def _transition(runtime: RuntimeDep, caller: Caller, journey_key: str, action: str, **extra: Any) -> JourneyOut:
    caller.require("marketer")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        journey = service.get(session, caller.workspace_id, journey_key)
        details: dict[str, Any] = {}
        if action == "activate":
            service.activate(session, journey, caller.actor, now)
        elif action == "pause":
            service.pause(session, journey, reason=extra["reason"], actor=caller.actor, now=now)
            details["reason"] = extra["reason"]
        elif action == "resume":
            service.resume(session, journey, caller.actor, now)
        else:
            details["runs_ended"] = service.archive(session, journey, caller.actor, now)
        audit(
            session,
            caller,
            f"journey.{action}",
            subject_type="journey",
            subject_id=journey.id,
            now=now,
            details=details,
        )
        out = JourneyOut.model_validate(journey)
    worker.changed()
    return out


@router.post("/journeys/{journey_key}/activate", summary="Start: new entrants get the latest version")
def activate_journey(runtime: RuntimeDep, caller: Caller, journey_key: str) -> JourneyOut:
    return _transition(runtime, caller, journey_key, "activate")


@router.post("/journeys/{journey_key}/pause", summary="Pause: nobody enters or moves on until resumed")
def pause_journey(runtime: RuntimeDep, caller: Caller, journey_key: str, body: PauseIn | None = None) -> JourneyOut:
    return _transition(runtime, caller, journey_key, "pause", reason=(body or PauseIn()).reason)


@router.post("/journeys/{journey_key}/resume", summary="Resume a paused journey (also after the circuit breaker)")
def resume_journey(runtime: RuntimeDep, caller: Caller, journey_key: str) -> JourneyOut:
    return _transition(runtime, caller, journey_key, "resume")


@router.post("/journeys/{journey_key}/archive", summary="Archive: customers inside leave")
def archive_journey(runtime: RuntimeDep, caller: Caller, journey_key: str) -> JourneyOut:
    return _transition(runtime, caller, journey_key, "archive")


@router.post("/journeys/{journey_key}/entries", summary="Enter a customer (journeys with an api trigger)")
def enter_journey(runtime: RuntimeDep, caller: Caller, journey_key: str, body: EntryIn) -> EntryOut:
    caller.require("marketer")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        journey = service.get(session, caller.workspace_id, journey_key)
        entered = service.enter_by_api(
            session, journey, body.customer_id, idempotency_key=body.idempotency_key, data=body.data, now=now
        )
        run = RunOut.model_validate(entered.run) if entered.run is not None else None
    runtime.journeys.wake()
    return EntryOut(entered=entered.reason == "entered", reason=entered.reason, run=run)


@router.get("/journeys/{journey_key}/runs", summary="Customers' runs, by state or customer")
def list_runs(
    runtime: RuntimeDep,
    caller: Caller,
    journey_key: str,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    state: str | None = None,
    customer_id: str | None = None,
) -> RunPage:
    caller.require("viewer")
    if state is not None and state not in RUN_STATES:
        raise Invalid(f"state: one of {', '.join(RUN_STATES)}", field="state")
    with runtime.db.session() as session:
        journey = service.get(session, caller.workspace_id, journey_key)
        rows = service.runs_of(
            session, journey, state=state, customer_id=customer_id, after=_after(cursor), limit=limit + 1
        )
    page = rows[:limit]
    return RunPage(
        data=[RunOut.model_validate(r) for r in page],
        next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None,
    )


@router.get("/journeys/{journey_key}/runs/{run_id}", summary="One run with every step it took")
def get_run(runtime: RuntimeDep, caller: Caller, journey_key: str, run_id: str) -> RunDetail:
    caller.require("viewer")
    with runtime.db.session() as session:
        journey = service.get(session, caller.workspace_id, journey_key)
        run = session.scalar(
            scoped(JourneyRun, caller.workspace_id).where(JourneyRun.journey_id == journey.id, JourneyRun.id == run_id)
        )
        if run is None:
            from shopkeeper.errors import NotFound

            raise NotFound(f"run {run_id!r} not found", field="run_id")
        steps = session.scalars(
            select(JourneyStep)
            .where(JourneyStep.workspace_id == caller.workspace_id, JourneyStep.run_id == run.id)
            .order_by(JourneyStep.at, JourneyStep.id)
        )
        return RunDetail(**RunOut.model_validate(run).model_dump(), steps=[StepLogOut.model_validate(s) for s in steps])


@router.get("/journeys/{journey_key}/stats", summary="Funnel per journey and step, cost, lift, rates")
def journey_stats(runtime: RuntimeDep, caller: Caller, journey_key: str) -> StatsOut:
    caller.require("viewer")
    now = clock.now()
    with runtime.db.session() as session:
        journey = service.get(session, caller.workspace_id, journey_key)
        result = monitor.stats(session, journey)
        outcomes, measured = monitor.rates(session, journey, now)
        return StatsOut(
            journey=JourneyOut.model_validate(journey),
            entered=result.entered,
            states=result.states,
            converted=result.converted,
            messages=result.sends,
            cost=result.cost,
            steps=result.steps,
            lift=LiftOut(**result.lift.__dict__) if result.lift is not None else None,
            rates={k: round(v, 6) for k, v in measured.items()},
            rate_window_sends=outcomes,
        )


@router.get("/alerts", summary="Alerts raised by the monitor (open first)")
def list_alerts(
    runtime: RuntimeDep, caller: Caller, open_only: bool = False, limit: Limit = DEFAULT_LIMIT
) -> AlertPage:
    caller.require("viewer")
    with runtime.db.session() as session:
        query = scoped(Alert, caller.workspace_id)
        if open_only:
            query = query.where(Alert.resolved_at.is_(None))
        rows = session.scalars(query.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit))
        return AlertPage(data=[AlertOut.model_validate(a) for a in rows])
