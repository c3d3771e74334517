"""Journeys and campaigns: create, change (a new version), activate, pause, resume, archive,
and enter a customer by API.

`check` validates a definition against the workspace (templates, topics, segments, webhook
endpoints, teams, the sensitive-data guard) before anything is stored: a definition that could
not run is refused with the path of the bad node, never saved to fail later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shopkeeper.consent.service import topic_by_key
from shopkeeper.customers.service import canonical
from shopkeeper.db.scoping import by_key, scoped
from shopkeeper.errors import Conflict, Invalid, NotFound
from shopkeeper.ids import new_id
from shopkeeper.inbox.models import Team
from shopkeeper.journeys import broadcast
from shopkeeper.journeys import definition as d
from shopkeeper.journeys.entry import Entered, enter
from shopkeeper.journeys.models import LIVE_STATES, Alert, Journey, JourneyRun, JourneyVersion
from shopkeeper.messaging.models import WebhookEndpoint
from shopkeeper.messaging.template_service import template_by_ref, version_of
from shopkeeper.segments import service as segments

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")
MAX_DEFINITION_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Checked:
    definition: d.Definition
    document: dict[str, Any]


def _template_channels(session: Session, workspace_id: str, step: d.Step, cfg: d.Send) -> None:
    try:
        template = template_by_ref(session, workspace_id, cfg.template)
    except NotFound:
        raise Invalid(f"{step.path}.template: no template {cfg.template!r}", field=f"{step.path}.template") from None
    if template.archived_at is not None:
        raise Invalid(f"{step.path}.template: {cfg.template!r} is archived", field=f"{step.path}.template")
    content = version_of(session, workspace_id, template, None).content
    wanted = d.channels_of(cfg)
    present = [c for c in wanted if c in content]
    if not present:
        what = "has no content for any of" if cfg.channel == "auto" else "has no content for"
        raise Invalid(
            f"{step.path}.template: {cfg.template!r} {what} {', '.join(wanted)}", field=f"{step.path}.template"
        )
    kind = cfg.kind or template.kind
    topic = cfg.topic if cfg.topic is not None else template.topic
    if topic is not None:
        try:
            topic_by_key(session, workspace_id, topic)
        except NotFound:
            raise Invalid(f"{step.path}.topic: no topic {topic!r}", field=f"{step.path}.topic") from None
    if kind == "marketing" and topic is None:
        raise Invalid(
            f"{step.path}.topic: a marketing message belongs to a topic (on the step or its template)",
            field=f"{step.path}.topic",
        )


def check(session: Session, workspace_id: str, raw: Any) -> Checked:
    document = d.parse_document(raw)
    import orjson

    try:
        size = len(orjson.dumps(document))
    except TypeError:
        raise Invalid("definition: holds a value JSON cannot store", field="definition") from None
    if size > MAX_DEFINITION_BYTES:
        raise Invalid(f"definition: over {MAX_DEFINITION_BYTES // 1024} KB", field="definition")
    definition = d.parse(document)
    trigger = definition.trigger
    known = segments.segment_ids(session, workspace_id)
    if trigger.segment is not None and trigger.segment not in known:
        raise Invalid(f"trigger.segment: no segment {trigger.segment!r}", field="trigger.segment")
    for step in definition.steps.values():
        cfg = step.config
        if isinstance(cfg, d.Send):
            _template_channels(session, workspace_id, step, cfg)
        elif isinstance(cfg, d.Branch):
            for i, case in enumerate(cfg.cases):
                if case.raw_condition is not None:
                    try:
                        segments.check(session, workspace_id, case.raw_condition, "marketing")
                    except Invalid as exc:
                        path = f"{step.path}.cases[{i}].{exc.field or 'condition'}"
                        raise Invalid(f"{path}: {exc.message.split(': ', 1)[-1]}", field=path) from None
        elif isinstance(cfg, d.Webhook):
            endpoint = session.scalar(scoped(WebhookEndpoint, workspace_id).where(WebhookEndpoint.id == cfg.endpoint))
            if endpoint is None:
                raise Invalid(
                    f"{step.path}.endpoint: no webhook endpoint {cfg.endpoint!r}", field=f"{step.path}.endpoint"
                )
        elif isinstance(cfg, d.CreateConversation) and cfg.team is not None:
            if by_key(session, Team, workspace_id, cfg.team) is None:
                raise Invalid(f"{step.path}.team: no team {cfg.team!r}", field=f"{step.path}.team")
        elif isinstance(cfg, d.GoalCheck) and definition.goal is None:
            raise Invalid(f"{step.path}: a goal step needs the journey's `goal`", field=step.path)
    return Checked(definition, document)


def get(session: Session, workspace_id: str, key: str) -> Journey:
    journey = by_key(session, Journey, workspace_id, key)
    if journey is None:
        raise NotFound(f"journey {key!r} not found", field="key")
    return journey


def _new_version(session: Session, journey: Journey, document: dict[str, Any], actor: str, now: datetime) -> None:
    session.add(
        JourneyVersion(
            id=new_id("jver"),
            workspace_id=journey.workspace_id,
            journey_id=journey.id,
            version=journey.latest_version,
            definition=document,
            created_at=now,
            created_by=actor,
        )
    )


def _index_trigger(journey: Journey, definition: d.Definition) -> None:
    trigger = definition.trigger
    journey.kind = d.kind_of(definition)
    journey.trigger_kind = trigger.kind
    journey.trigger_event = trigger.event.name if trigger.event is not None else trigger.segment


def create(session: Session, workspace_id: str, *, key: str, name: str, raw: Any, actor: str, now: datetime) -> Journey:
    if not KEY_RE.match(key):
        raise Invalid("key: lower-case letters, digits, '.', '_' or '-', at most 80", field="key")
    if by_key(session, Journey, workspace_id, key) is not None:
        raise Conflict(f"key: a journey {key!r} already exists", field="key")
    checked = check(session, workspace_id, raw)
    journey = Journey(
        id=new_id("jny"),
        workspace_id=workspace_id,
        key=key,
        name=name,
        status="draft",
        latest_version=1,
        live_version=None,
        created_at=now,
        updated_at=now,
    )
    _index_trigger(journey, checked.definition)
    session.add(journey)
    _new_version(session, journey, checked.document, actor, now)
    session.flush()
    return journey


def change(session: Session, journey: Journey, raw: Any, actor: str, now: datetime) -> Journey:
    """A new version. A live journey switches to it for new entrants at once; customers already
    inside finish on the version they entered."""
    if journey.status == "archived":
        raise Conflict("status: an archived journey cannot change", field="status")
    checked = check(session, journey.workspace_id, raw)
    journey.latest_version += 1
    _new_version(session, journey, checked.document, actor, now)
    _index_trigger(journey, checked.definition)
    if journey.status in ("active", "paused"):
        journey.live_version = journey.latest_version
        _schedule(journey, checked.definition, now)
    journey.updated_at = now
    session.flush()
    return journey


def _schedule(journey: Journey, definition: d.Definition, now: datetime) -> None:
    trigger = definition.trigger
    if trigger.kind != "schedule":
        journey.next_fire_at = None
        return
    if journey.next_fire_at is None or trigger.at is not None:
        journey.next_fire_at = broadcast.first_occurrence(trigger, now)
    else:
        journey.next_fire_at = broadcast.next_occurrence(trigger, now)


def activate(session: Session, journey: Journey, actor: str, now: datetime) -> Journey:
    if journey.status == "archived":
        raise Conflict("status: an archived journey cannot be activated", field="status")
    if journey.status == "active":
        return journey
    if journey.status == "paused":
        raise Conflict("status: a paused journey is resumed, not activated", field="status")
    from shopkeeper.journeys.entry import definition_of

    journey.live_version = journey.latest_version
    definition = definition_of(session, journey.id, journey.live_version)
    check(session, journey.workspace_id, _document(session, journey))  # templates may have gone since
    journey.status = "active"
    journey.activated_at = now
    journey.watch_from = now
    journey.updated_at = now
    _schedule(journey, definition, now)
    session.flush()
    return journey


def _document(session: Session, journey: Journey) -> dict[str, Any]:
    raw = session.scalar(
        select(JourneyVersion.definition).where(
            JourneyVersion.journey_id == journey.id, JourneyVersion.version == journey.latest_version
        )
    )
    assert raw is not None
    return dict(raw)


def pause(session: Session, journey: Journey, *, reason: str, actor: str, now: datetime) -> Journey:
    if journey.status != "active":
        raise Conflict(f"status: only an active journey can be paused (it is {journey.status})", field="status")
    journey.status = "paused"
    journey.paused_reason = reason[:500]
    journey.paused_by = actor
    journey.updated_at = now
    session.flush()
    return journey


def resume(session: Session, journey: Journey, actor: str, now: datetime) -> Journey:
    """A person resumes; the monitor's window starts afresh, and its open alerts are closed."""
    if journey.status != "paused":
        raise Conflict(f"status: only a paused journey can be resumed (it is {journey.status})", field="status")
    journey.status = "active"
    journey.paused_reason = None
    journey.paused_by = None
    journey.watch_from = now
    journey.updated_at = now
    session.execute(
        update(Alert)
        .where(Alert.workspace_id == journey.workspace_id, Alert.subject_id == journey.id, Alert.resolved_at.is_(None))
        .values(resolved_at=now, resolved_by=actor)
    )
    session.flush()
    return journey


def archive(session: Session, journey: Journey, actor: str, now: datetime) -> int:
    """Archived: nobody enters, and customers inside leave. The number of runs ended."""
    if journey.status == "archived":
        return 0
    journey.status = "archived"
    journey.archived_at = now
    journey.next_fire_at = None
    journey.updated_at = now
    result = session.execute(
        update(JourneyRun)
        .where(JourneyRun.journey_id == journey.id, JourneyRun.state.in_(LIVE_STATES))
        .values(
            state="exited",
            step_id=None,
            next_run_at=None,
            wait_event=None,
            finished_at=now,
            exit_reason=f"journey archived by {actor}",
            updated_at=now,
        )
    )
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def enter_by_api(
    session: Session,
    journey: Journey,
    customer_id: str,
    *,
    idempotency_key: str | None,
    data: dict[str, Any],
    now: datetime,
) -> Entered:
    if journey.trigger_kind != "api":
        raise Conflict(
            f"trigger: journey {journey.key!r} starts from its {journey.trigger_kind} trigger, not by API",
            field="trigger",
        )
    if journey.status != "active":
        raise Conflict(f"status: journey {journey.key!r} is {journey.status}; activate it first", field="status")
    try:
        customer = canonical(session, journey.workspace_id, customer_id)
    except NotFound:
        raise NotFound(f"customer_id: no customer {customer_id!r}", field="customer_id") from None
    key = f"api:{idempotency_key}" if idempotency_key else f"api:{new_id('req')}"
    return enter(session, journey, customer.id, entry_key=key, now=now, trigger={"api": True, "data": data})


def runs_of(
    session: Session, journey: Journey, *, state: str | None, customer_id: str | None, after: str | None, limit: int
) -> list[JourneyRun]:
    query = scoped(JourneyRun, journey.workspace_id).where(JourneyRun.journey_id == journey.id)
    if state is not None:
        query = query.where(JourneyRun.state == state)
    if customer_id is not None:
        query = query.where(JourneyRun.customer_id == customer_id)
    if after is not None:
        query = query.where(JourneyRun.id > after)
    return list(session.scalars(query.order_by(JourneyRun.id).limit(limit)))
