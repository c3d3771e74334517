"""What each step kind does to one run, inside the worker's transaction.

`advance` walks a run from its current step until it must wait (a wait step, a send timed for
later) or ends, writing each step's effect and its log row as it goes. Nothing here commits:
the caller's transaction holds the run's new state and every effect together, so a worker
killed at any point leaves either all of a step or none of it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified, set_committed_value

from shopkeeper.auth.models import Workspace
from shopkeeper.customers.models import Customer
from shopkeeper.customers.service import canonical, update_profile
from shopkeeper.errors import ShopkeeperError
from shopkeeper.journeys import definition as d
from shopkeeper.journeys.models import Journey, JourneyRun, JourneyStep
from shopkeeper.messaging import send_service
from shopkeeper.messaging.models import ENGAGEMENT_ORDER, Send
from shopkeeper.segments.compiler import SegmentQuery
from shopkeeper.segments.service import segment_ids

MAX_STEPS_PER_ROUND = 50
_rng = random.Random()


class StepFailed(Exception):
    """The step cannot be done as defined (a template archived, an endpoint deleted): the run
    fails with this reason instead of retrying for ever."""

    # The step that failed (set by `advance`): the run's own step_id is rolled back with the
    # savepoint to where the round found it, which may be an earlier step.
    step_id: str | None = None


def bucket(*parts: str) -> float:
    """A stable number in [0, 100) for these parts: the same customer always lands in the same
    split variant and on the same side of a holdout, on every worker and every version."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


# Where `log_step` puts its rows while the executor holds them for one multi-row insert.
LOG_BUFFER = "journey_step_rows"


_PROCESS = random.getrandbits(32)
_LOG_SEQUENCE = itertools.count()
os.register_at_fork(after_in_child=lambda: globals().update(_PROCESS=random.getrandbits(32)))


def log_id() -> str:
    """Step rows of one round share their time (`at`); their ids keep the order they were taken
    in (milliseconds, this process, a counter), so a run's trace reads in order."""
    return f"jst_{time.time_ns() // 1_000_000:012x}{_PROCESS:08x}{next(_LOG_SEQUENCE) % 2**48:012x}"


def log_step(session: Session, run: JourneyRun, step_id: str, outcome: str, now: datetime, **detail: Any) -> None:
    row = {
        "id": log_id(),
        "workspace_id": run.workspace_id,
        "journey_id": run.journey_id,
        "run_id": run.id,
        "customer_id": run.customer_id,
        "step_id": step_id,
        "outcome": outcome,
        "detail": detail,
        "at": now,
    }
    rows: list[dict[str, Any]] | None = session.info.get(LOG_BUFFER)
    if rows is not None:  # inside executor.run_due: written with the round, in its transaction
        rows.append(row)
    else:
        session.add(JourneyStep(**row))


def finish(run: JourneyRun, state: str, now: datetime, reason: str | None = None) -> None:
    run.state = state
    run.step_id = None
    run.next_run_at = None
    run.wait_event = None
    run.finished_at = now
    run.exit_reason = reason
    run.updated_at = now


def zone_of(session: Session, customer: Customer) -> ZoneInfo:
    name = customer.timezone
    if not name:
        workspace = session.get(Workspace, customer.workspace_id)
        name = ((workspace.settings or {}).get("timezone") if workspace is not None else None) or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def next_local_time(now: datetime, at: Any, days: tuple[int, ...], zone: ZoneInfo) -> datetime:
    """The first instant after `now` that is `at` on the customer's wall clock (an allowed day)."""
    local = now.astimezone(zone)
    for offset in range(0, 9):
        day = (local + timedelta(days=offset)).date()
        if days and day.weekday() not in days:
            continue
        wall = datetime.combine(day, at)
        # fold=0 and a round trip through UTC: a time skipped by the spring change moves on
        # to the first valid instant after it, never before.
        candidate = wall.replace(tzinfo=zone).astimezone(UTC)
        if candidate.astimezone(zone).replace(tzinfo=None) < wall:
            candidate = (wall + timedelta(hours=1)).replace(tzinfo=zone).astimezone(UTC)
        if candidate > now:
            return candidate
    raise AssertionError("a weekday always comes within 8 days")


@dataclass
class Context:
    """What the steps of one round share: the journey row, its definition, and caches."""

    session: Session
    journey: Journey
    definition: d.Definition
    now: datetime
    source: str  # journey | campaign
    segment_queries: dict[tuple[str, int], SegmentQuery]


def _data(run: JourneyRun, extra: dict[str, Any]) -> dict[str, Any]:
    trigger = run.context.get("trigger") or {}
    return {"journey": run.context.get("journey_key"), "trigger": trigger, **extra}


def _remember_send(run: JourneyRun, step_id: str, send_id: str) -> None:
    context = dict(run.context)
    sends = dict(context.get("sends") or {})
    sends[step_id] = send_id
    context["sends"] = sends
    run.context = context


def _template_channels(session: Session, template: Any) -> set[str]:
    from shopkeeper.messaging.template_service import version_of

    return set(version_of(session, template.workspace_id, template, None).content)


def _do_send(ctx: Context, run: JourneyRun, step: d.Step, cfg: d.Send) -> str:
    session, now = ctx.session, ctx.now
    channel = cfg.channel
    choice = None
    if channel == "auto":
        from shopkeeper.journeys import optimiser
        from shopkeeper.messaging.template_service import template_by_ref

        try:
            # The consent check asks what the message will be: the step's kind and topic, else
            # its template's (as the send itself will take them).
            template = template_by_ref(session, run.workspace_id, cfg.template)
            choice = optimiser.choose_channel(
                session,
                run.workspace_id,
                run.customer_id,
                candidates=[c for c in d.channels_of(cfg) if c in _template_channels(session, template)],
                kind=cfg.kind or template.kind,
                topic=cfg.topic if cfg.topic is not None else template.topic,
                now=now,
                value=cfg.value,
                rng=_rng,
            )
        except ShopkeeperError as exc:
            raise StepFailed(f"send: {exc.message}") from None
        if choice.channel is None:
            log_step(session, run, step.id, "skipped", now, reason=choice.reason)
            return "skipped"
        channel = choice.channel
    send_at = None
    timing = None
    if cfg.send_time == "optimal":
        from shopkeeper.journeys import send_time

        timing = send_time.best_send_time(session, run.workspace_id, run.customer_id, now)
        send_at = timing.at if timing.at > now else None
    try:
        send, _ = send_service.enqueue(
            session,
            run.workspace_id,
            customer_id=run.customer_id,
            channel=channel,
            now=now,
            template=cfg.template,
            data=_data(run, cfg.data),
            kind=cfg.kind,
            topic=cfg.topic,
            # Unique per run, step and visit: a retried round finds the same send.
            idempotency_key=f"journey:{run.id}:{step.id}:{run.steps_taken}",
            send_at=send_at,
            expires_at=(send_at or now) + cfg.expires if cfg.expires else None,
            source=ctx.source,
            source_ref=f"{run.journey_id}:{step.id}",
        )
    except ShopkeeperError as exc:
        raise StepFailed(f"send: {exc.message}") from None
    if choice is not None:
        from shopkeeper.journeys import optimiser

        optimiser.record_decision(session, choice, send)
    _remember_send(run, step.id, send.id)
    detail: dict[str, Any] = {"send_id": send.id, "channel": channel}
    if choice is not None:
        detail["why"] = choice.reason
    if timing is not None:
        detail["send_at"] = (send_at or now).isoformat()
        detail["send_time"] = timing.reason
    log_step(session, run, step.id, "sent", now, **detail)
    return "sent"


def _start_wait(ctx: Context, run: JourneyRun, step: d.Step, cfg: d.Wait) -> bool:
    """True when the run is now waiting (the round ends); False when the wait is over."""
    context = dict(run.context)
    if context.get("wait") == step.id:
        return False
    now = ctx.now
    if cfg.duration is not None:
        wake = now + cfg.duration
    elif cfg.until_time is not None:
        customer = canonical(ctx.session, run.workspace_id, run.customer_id)
        wake = next_local_time(now, cfg.until_time, cfg.days, zone_of(ctx.session, customer))
    else:
        assert cfg.until_event is not None and cfg.timeout is not None
        wake = now + cfg.timeout
        run.state = "waiting"
        run.wait_event = cfg.until_event.name
    context["wait"] = step.id
    context["wait_since"] = now.isoformat()
    context.pop("wait_result", None)
    run.context = context
    run.next_run_at = wake
    run.updated_at = now
    log_step(ctx.session, run, step.id, "waiting", now, until=wake.isoformat())
    return True


def _end_wait(run: JourneyRun) -> str | None:
    context = dict(run.context)
    result = context.pop("wait_result", None)
    context.pop("wait", None)
    context.pop("wait_since", None)
    run.context = context
    run.state = "active"
    run.wait_event = None
    return result if isinstance(result, str) else None


def _engaged(ctx: Context, run: JourneyRun, case: d.Case) -> bool:
    send_id = (run.context.get("sends") or {}).get(case.engaged_step)
    if not send_id:
        return False
    status = ctx.session.scalar(select(Send.status).where(Send.workspace_id == run.workspace_id, Send.id == send_id))
    if status is None or status not in ENGAGEMENT_ORDER:
        return False
    return ENGAGEMENT_ORDER[status] >= ENGAGEMENT_ORDER[case.engaged_status or "opened"]


def _holds(ctx: Context, run: JourneyRun, step: d.Step, index: int, case: d.Case) -> bool:
    if case.engaged_step is not None:
        return _engaged(ctx, run, case)
    assert case.condition is not None
    key = (f"{run.journey_id}:{run.version}:{step.id}", index)
    query = ctx.segment_queries.get(key)
    if query is None:
        ids = segment_ids(ctx.session, run.workspace_id)
        query = ctx.segment_queries[key] = SegmentQuery(case.condition, run.workspace_id, ids, restricted=True)
    found = ctx.session.execute(query.statement, query.params(ctx.now, [run.customer_id])).first()
    return found is not None


def goal_met(session: Session, run: JourneyRun, goal: d.Goal, now: datetime) -> datetime | None:
    """When the customer first met the goal since entering (within its window), if they have."""
    from shopkeeper.events.models import Event
    from shopkeeper.segments.reference import matches

    rows = session.execute(
        select(Event.timestamp, Event.properties)
        .where(
            Event.workspace_id == run.workspace_id,
            Event.customer_id == run.customer_id,
            Event.name == goal.event.name,
            Event.timestamp >= run.entered_at,
            Event.timestamp <= min(now, run.entered_at + goal.within),
        )
        .order_by(Event.timestamp)
        .limit(200)
    )
    for at, properties in rows:
        if all(matches(properties or {}, f, now) for f in goal.event.where):
            when: datetime = at
            return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return None


def convert(session: Session, run: JourneyRun, at: datetime, now: datetime) -> None:
    """The goal reached: counted once, credited to the run's last send (the optimiser learns)."""
    if run.converted_at is not None:
        return
    run.converted_at = at
    run.updated_at = now
    sends = run.context.get("sends") or {}
    if sends and not run.holdout:
        from shopkeeper.journeys import optimiser

        last = sorted(sends.values())[-1]
        optimiser.record_conversion(session, run.workspace_id, last, at)


def _step(ctx: Context, run: JourneyRun, step: d.Step) -> str | None:
    """Do one step; the id of the step to go to, or None when the run stops here for now."""
    session, now = ctx.session, ctx.now
    cfg = step.config
    if isinstance(cfg, d.Wait):
        if _start_wait(ctx, run, step, cfg):
            return None
        result = _end_wait(run)
        if cfg.until_event is not None and result != "event":
            log_step(session, run, step.id, "timeout", now)
            return cfg.on_timeout or step.next
        log_step(session, run, step.id, result or "waited", now)
        return step.next
    if isinstance(cfg, d.Send):
        _do_send(ctx, run, step, cfg)
        return step.next
    if isinstance(cfg, d.Branch):
        for i, case in enumerate(cfg.cases):
            if _holds(ctx, run, step, i, case):
                log_step(session, run, step.id, f"case:{i}", now, next=case.next)
                return case.next
        log_step(session, run, step.id, "else", now, next=cfg.otherwise)
        return cfg.otherwise
    if isinstance(cfg, d.Split):
        point = bucket(run.journey_id, step.id, run.customer_id) / 100 * sum(v.weight for v in cfg.variants)
        chosen = cfg.variants[-1]
        for variant in cfg.variants:
            if point < variant.weight:
                chosen = variant
                break
            point -= variant.weight
        context = dict(run.context)
        context["variants"] = {**(context.get("variants") or {}), step.id: chosen.name}
        run.context = context
        log_step(session, run, step.id, f"variant:{chosen.name}", now)
        return chosen.next
    if isinstance(cfg, d.Holdout):
        if bucket(run.journey_id, "holdout", run.customer_id) < cfg.percent:
            run.holdout = True
            log_step(session, run, step.id, "control", now)
            finish(run, "exited", now, "holdout")
            return None
        log_step(session, run, step.id, "treatment", now)
        return step.next
    if isinstance(cfg, d.UpdateTrait):
        customer = canonical(session, run.workspace_id, run.customer_id)
        try:
            changes = update_profile(
                session,
                run.workspace_id,
                customer,
                traits=dict(cfg.traits),
                timezone=None,
                locale=None,
                actor=f"journey:{ctx.journey.key}",
                now=now,
                default_region=None,
            )
        except ShopkeeperError as exc:
            raise StepFailed(f"update_trait: {exc.message}") from None
        log_step(session, run, step.id, "updated", now, traits=changes.get("traits"))
        return step.next
    if isinstance(cfg, d.Webhook):
        try:
            send, _ = send_service.enqueue(
                session,
                run.workspace_id,
                customer_id=run.customer_id,
                channel="webhook",
                now=now,
                content={"webhook": {"body": cfg.body}},
                data={**_data(run, {}), "endpoint_id": cfg.endpoint},
                kind="transactional",
                idempotency_key=f"journey:{run.id}:{step.id}:{run.steps_taken}",
                source=ctx.source,
                source_ref=f"{run.journey_id}:{step.id}",
            )
        except ShopkeeperError as exc:
            raise StepFailed(f"webhook: {exc.message}") from None
        _remember_send(run, step.id, send.id)
        log_step(session, run, step.id, "queued", now, send_id=send.id)
        return step.next
    if isinstance(cfg, d.CreateConversation):
        from shopkeeper.inbox import conversations

        team_id = None
        try:
            if cfg.team is not None:
                team_id = conversations.team_by_key(session, run.workspace_id, cfg.team, "team").id
            customer = canonical(session, run.workspace_id, run.customer_id)
            conversation = conversations.open_for_customer(
                session,
                run.workspace_id,
                customer.id,
                channel="email",
                actor=f"journey:{ctx.journey.key}",
                now=now,
                subject=cfg.subject or f"From journey {ctx.journey.name}",
                team_id=team_id,
                priority=cfg.priority,
                tags=cfg.tags,
                note_text=cfg.note,
                data={"journey_id": run.journey_id, "run_id": run.id},
            )
        except ShopkeeperError as exc:
            raise StepFailed(f"create_conversation: {exc.message}") from None
        log_step(session, run, step.id, "created", now, conversation_id=conversation.id)
        return step.next
    assert isinstance(cfg, d.GoalCheck)
    goal = ctx.definition.goal
    met = goal_met(session, run, goal, now) if goal is not None else None
    if met is not None:
        convert(session, run, met, now)
        log_step(session, run, step.id, "converted", now)
        finish(run, "completed", now, "goal")
        return None
    log_step(session, run, step.id, "not_yet", now)
    return step.next


def _hold(run: JourneyRun, held: set[str]) -> None:
    """Keep the run's changes so far out of the flushes that the next step's queries cause.

    Every step moves the run, and every query of the next step (a customer, a template, a
    segment condition) flushes what is pending, so a five-step round wrote the run five times.
    Its changes are marked clean here and written once when it stops (`_release`). No step
    reads journey_runs, so nothing needs them flushed sooner. If a step raises, the caller
    must expire the run: its savepoint rolled back changes the session no longer tracks.
    """
    state = inspect(run)
    for key in list(state.committed_state):
        held.add(key)
        set_committed_value(run, key, getattr(run, key))


def _release(run: JourneyRun, held: set[str]) -> None:
    for key in held:
        flag_modified(run, key)


def advance(ctx: Context, run: JourneyRun) -> int:
    """Take the run as far as it goes now; the number of steps done. When it raises, the
    caller rolls back the run's savepoint and must expire the run (see `_hold`)."""
    done = 0
    held: set[str] = set()
    while run.state in ("active", "waiting") and run.step_id is not None:
        if done >= MAX_STEPS_PER_ROUND:  # a long chain: give others a turn, go on next round
            run.next_run_at = ctx.now
            break
        step = ctx.definition.steps.get(run.step_id)
        if step is None:
            finish(run, "failed", ctx.now, f"step {run.step_id!r} is not in version {run.version}")
            break
        try:
            target = _step(ctx, run, step)
        except StepFailed as exc:
            exc.step_id = step.id
            raise
        done += 1
        run.steps_taken += 1
        run.updated_at = ctx.now
        if target is None:
            break
        if target == d.END:
            log_step(ctx.session, run, d.END, "completed", ctx.now)
            finish(run, "completed", ctx.now)
            break
        run.step_id = target
        run.next_run_at = ctx.now
        _hold(run, held)
    _release(run, held)
    return done
