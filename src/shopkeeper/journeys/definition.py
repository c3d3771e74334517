"""The journey definition language: JSON (or YAML) in, immutable values out.

A definition is checked whole before it is stored, and every error names the bad node by its
path, with the step's id where there is one (`steps[2] (wait-a-day).duration: …`), so an editor
can point at it. Checks that need the workspace (templates, segments, endpoints, teams) are in
`service.check`; this module needs nothing but the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import yaml
from croniter import croniter

from shopkeeper.consent.models import CHANNELS
from shopkeeper.errors import Invalid
from shopkeeper.segments.definition import Filter, Node
from shopkeeper.segments.validate import parse as parse_condition
from shopkeeper.segments.validate import parse_filter

TRIGGERS = ("event", "segment_entered", "segment_exited", "schedule", "api")
STEP_TYPES = (
    "send",
    "wait",
    "branch",
    "split",
    "holdout",
    "update_trait",
    "webhook",
    "create_conversation",
    "goal",
)
REENTRY = ("never", "always", "after_exit")
# Channels a journey may send a message on; `auto` lets the optimiser choose among them.
MESSAGE_CHANNELS = ("email", "sms", "push", "whatsapp", "chat")
ENGAGEMENTS = ("delivered", "opened", "clicked", "replied")
PRIORITIES = ("low", "normal", "high", "urgent")
END = "end"
MAX_STEPS = 200
MAX_WAIT = timedelta(days=365)
STEP_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
_DURATION_RE = re.compile(r"^(\d{1,6})\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CLOCK_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _fail(path: str, message: str) -> NoReturn:
    raise Invalid(f"{path}: {message}", field=path)


def _object(raw: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(raw, dict):
        _fail(path, "must be an object")
    for name in raw:
        if name not in allowed:
            _fail(f"{path}.{name}", f"unknown field; expected one of {', '.join(allowed)}")
    for name in required:
        if name not in raw:
            _fail(f"{path}.{name}", "is required")
    return raw


def _text(raw: Any, path: str, limit: int = 200) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > limit:
        _fail(path, f"must be a non-empty string of at most {limit} characters")
    return raw


def duration(raw: Any, path: str, *, maximum: timedelta = MAX_WAIT) -> timedelta:
    """`90` (seconds), "30m", "2h", "3d", "1w"."""
    if isinstance(raw, bool):
        _fail(path, 'must be a duration such as "30m", "2h", "3d" or a number of seconds')
    if isinstance(raw, int):
        seconds = raw
    elif isinstance(raw, str) and (match := _DURATION_RE.match(raw.strip())):
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    else:
        _fail(path, 'must be a duration such as "30m", "2h", "3d" or a number of seconds')
    if seconds <= 0:
        _fail(path, "must be more than zero")
    value = timedelta(seconds=seconds)
    if value > maximum:
        _fail(path, f"must be at most {maximum.days} days")
    return value


def clock_time(raw: Any, path: str) -> time:
    if not isinstance(raw, str) or not (match := _CLOCK_RE.match(raw)):
        _fail(path, 'must be a time of day "HH:MM" (24-hour)')
    return time(int(match.group(1)), int(match.group(2)))


def zone(raw: Any, path: str) -> str:
    if not isinstance(raw, str):
        _fail(path, "must be an IANA time zone such as Europe/Paris")
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        _fail(path, f"{raw!r} is not an IANA time zone")
    return raw


@dataclass(frozen=True, slots=True)
class EventMatch:
    """An event by name whose properties match every filter."""

    name: str
    where: tuple[Filter, ...] = ()


def _event_match(raw: Any, path: str) -> EventMatch:
    body = _object(raw, path, ("event", "where"), ("event",))
    name = _text(body["event"], f"{path}.event")
    where = body.get("where", [])
    if not isinstance(where, list) or len(where) > 20:
        _fail(f"{path}.where", "must be a list of at most 20 property filters")
    return EventMatch(name, tuple(parse_filter(f, f"{path}.where[{i}]", "property") for i, f in enumerate(where)))


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: str
    event: EventMatch | None = None
    segment: str | None = None
    cron: str | None = None
    at: datetime | None = None
    timezone: str = "UTC"
    # Broadcasts: deliver at this local time of each customer's day (their own time zone).
    local_time: time | None = None
    per_minute: int | None = None


def _trigger(raw: Any, path: str) -> Trigger:
    if not isinstance(raw, dict) or raw.get("type") not in TRIGGERS:
        _fail(f"{path}.type", f"must be one of {', '.join(TRIGGERS)}")
    kind = raw["type"]
    if kind == "event":
        body = _object(raw, path, ("type", "event", "where"), ("event",))
        return Trigger(kind, event=_event_match({k: v for k, v in body.items() if k != "type"}, path))
    if kind in ("segment_entered", "segment_exited"):
        body = _object(raw, path, ("type", "segment"), ("segment",))
        return Trigger(kind, segment=_text(body["segment"], f"{path}.segment", 80))
    if kind == "api":
        _object(raw, path, ("type",))
        return Trigger(kind)
    body = _object(raw, path, ("type", "cron", "at", "timezone", "segment", "local_time", "per_minute"), ("segment",))
    if ("cron" in body) == ("at" in body):
        _fail(f"{path}.cron", "a schedule has either `cron` (repeating) or `at` (once), not both")
    tz = zone(body.get("timezone", "UTC"), f"{path}.timezone")
    cron = at = None
    if "cron" in body:
        cron = _text(body["cron"], f"{path}.cron", 100)
        if not croniter.is_valid(cron):
            _fail(f"{path}.cron", f"{cron!r} is not a cron expression (minute hour day month weekday)")
    else:
        at = _instant(body["at"], f"{path}.at")
    local = clock_time(body["local_time"], f"{path}.local_time") if "local_time" in body else None
    per_minute = body.get("per_minute")
    if per_minute is not None and (
        not isinstance(per_minute, int) or isinstance(per_minute, bool) or not 1 <= per_minute <= 1_000_000
    ):
        _fail(f"{path}.per_minute", "must be a whole number of messages per minute, 1 to 1,000,000")
    return Trigger(
        kind,
        segment=_text(body["segment"], f"{path}.segment", 80),
        cron=cron,
        at=at,
        timezone=tz,
        local_time=local,
        per_minute=per_minute,
    )


def _instant(raw: Any, path: str) -> datetime:
    if not isinstance(raw, str):
        _fail(path, "must be an ISO 8601 time with its offset, e.g. 2026-12-01T09:00:00Z")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        _fail(path, "must be an ISO 8601 time with its offset, e.g. 2026-12-01T09:00:00Z")
    if value.tzinfo is None:
        _fail(path, "needs a time zone offset (e.g. Z or +01:00)")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Reentry:
    policy: str = "never"
    # after_exit: how long after leaving before the customer may enter again (None: at once).
    cooldown: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Goal:
    event: EventMatch
    within: timedelta
    exit: bool = True  # a customer who converts leaves the journey


@dataclass(frozen=True, slots=True)
class Monitor:
    """Circuit-breaker thresholds: rates over the journey's recent sends."""

    bounce_rate: float = 0.05
    complaint_rate: float = 0.003
    failure_rate: float = 0.2
    min_sends: int = 50
    window: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Send:
    channel: str  # a channel, or "auto"
    template: str
    candidates: tuple[str, ...] = ()
    kind: str | None = None
    topic: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    value: float = 1.0
    send_time: str = "now"  # now | optimal
    expires: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Wait:
    duration: timedelta | None = None
    until_time: time | None = None
    days: tuple[int, ...] = ()  # allowed weekdays for until_time (0 = Monday); empty: any
    until_event: EventMatch | None = None
    timeout: timedelta | None = None
    on_timeout: str | None = None


@dataclass(frozen=True, slots=True)
class Case:
    next: str
    condition: Node | None = None
    raw_condition: Any = None
    engaged_step: str | None = None
    engaged_status: str | None = None


@dataclass(frozen=True, slots=True)
class Branch:
    cases: tuple[Case, ...]
    otherwise: str


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    weight: float
    next: str


@dataclass(frozen=True, slots=True)
class Split:
    variants: tuple[Variant, ...]


@dataclass(frozen=True, slots=True)
class Holdout:
    percent: float


@dataclass(frozen=True, slots=True)
class UpdateTrait:
    traits: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Webhook:
    endpoint: str
    body: str  # a Liquid template rendering to JSON


@dataclass(frozen=True, slots=True)
class CreateConversation:
    team: str | None = None
    priority: str = "normal"
    tags: tuple[str, ...] = ()
    note: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class GoalCheck:
    """Has the customer met the journey's goal yet? Yes: convert (and leave); no: go on."""


Config = Send | Wait | Branch | Split | Holdout | UpdateTrait | Webhook | CreateConversation | GoalCheck


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    type: str
    config: Config
    next: str  # the step that follows (a step id, or "end")
    path: str

    def targets(self) -> list[str]:
        """Every step this one can lead to."""
        out = [self.next]
        cfg = self.config
        if isinstance(cfg, Branch):
            out = [c.next for c in cfg.cases] + [cfg.otherwise]
        elif isinstance(cfg, Split):
            out = [v.next for v in cfg.variants]
        elif isinstance(cfg, Wait) and cfg.on_timeout is not None:
            out.append(cfg.on_timeout)
        return out


@dataclass(frozen=True, slots=True)
class Definition:
    trigger: Trigger
    reentry: Reentry
    exits: tuple[EventMatch, ...]
    goal: Goal | None
    monitor: Monitor
    steps: dict[str, Step]
    first: str

    def event_names(self) -> set[str]:
        """Every event name this definition reacts to (entry, exit, goal, waits)."""
        names = {m.name for m in self.exits}
        if self.trigger.event is not None:
            names.add(self.trigger.event.name)
        if self.goal is not None:
            names.add(self.goal.event.name)
        for step in self.steps.values():
            if isinstance(step.config, Wait) and step.config.until_event is not None:
                names.add(step.config.until_event.name)
        return names


# -- steps ---------------------------------------------------------------------------------
_COMMON = ("id", "type", "next", "name")


def _send(body: dict[str, Any], path: str) -> Send:
    _object(
        body,
        path,
        (*_COMMON, "channel", "channels", "template", "kind", "topic", "data", "value", "send_time", "expires"),
        ("channel", "template"),
    )
    channel = body["channel"]
    if channel != "auto" and channel not in MESSAGE_CHANNELS:
        _fail(f"{path}.channel", f"must be auto or one of {', '.join(MESSAGE_CHANNELS)}")
    candidates: tuple[str, ...] = ()
    if "channels" in body:
        if channel != "auto":
            _fail(f"{path}.channels", "only with channel auto (the channels it may choose from)")
        raw = body["channels"]
        if not isinstance(raw, list) or not raw or len(set(raw)) != len(raw):
            _fail(f"{path}.channels", "must be a list of distinct channels")
        for i, c in enumerate(raw):
            if c not in MESSAGE_CHANNELS:
                _fail(f"{path}.channels[{i}]", f"must be one of {', '.join(MESSAGE_CHANNELS)}")
        candidates = tuple(raw)
    kind = body.get("kind")
    if kind is not None and kind not in ("marketing", "transactional"):
        _fail(f"{path}.kind", "must be marketing or transactional")
    topic = _text(body["topic"], f"{path}.topic", 80) if body.get("topic") is not None else None
    data = body.get("data", {})
    if not isinstance(data, dict):
        _fail(f"{path}.data", "must be an object")
    value = body.get("value", 1.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1e9:
        _fail(f"{path}.value", "must be a number from 0 (what an engagement is worth)")
    send_time = body.get("send_time", "now")
    if send_time not in ("now", "optimal"):
        _fail(f"{path}.send_time", "must be now or optimal")
    expires = duration(body["expires"], f"{path}.expires") if "expires" in body else None
    return Send(
        channel=channel,
        template=_text(body["template"], f"{path}.template", 80),
        candidates=candidates,
        kind=kind,
        topic=topic,
        data=data,
        value=float(value),
        send_time=send_time,
        expires=expires,
    )


def _wait(body: dict[str, Any], path: str) -> Wait:
    _object(body, path, (*_COMMON, "duration", "until_time", "days", "until_event", "timeout", "on_timeout"))
    modes = [m for m in ("duration", "until_time", "until_event") if m in body]
    if len(modes) != 1:
        _fail(path, "a wait has exactly one of duration, until_time, until_event")
    if "duration" in body:
        return Wait(duration=duration(body["duration"], f"{path}.duration"))
    if "until_time" in body:
        days: tuple[int, ...] = ()
        if "days" in body:
            raw = body["days"]
            if not isinstance(raw, list) or not raw or any(d not in DAYS for d in raw):
                _fail(f"{path}.days", f"must be a list of days from {', '.join(DAYS)}")
            days = tuple(sorted({DAYS.index(d) for d in raw}))
        return Wait(until_time=clock_time(body["until_time"], f"{path}.until_time"), days=days)
    if "timeout" not in body:
        _fail(f"{path}.timeout", "is required: how long to wait for the event before going on")
    on_timeout = body.get("on_timeout")
    if on_timeout is not None:
        on_timeout = _target(on_timeout, f"{path}.on_timeout")
    return Wait(
        until_event=_event_match(body["until_event"], f"{path}.until_event"),
        timeout=duration(body["timeout"], f"{path}.timeout"),
        on_timeout=on_timeout,
    )


def _target(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or not (raw == END or STEP_ID_RE.match(raw)):
        _fail(path, 'must be a step id or "end"')
    return raw


def _branch(body: dict[str, Any], path: str) -> Branch:
    _object(body, path, (*_COMMON, "cases", "else"), ("cases", "else"))
    raw_cases = body["cases"]
    if not isinstance(raw_cases, list) or not 1 <= len(raw_cases) <= 20:
        _fail(f"{path}.cases", "must be a list of 1 to 20 cases")
    cases = []
    for i, raw in enumerate(raw_cases):
        cpath = f"{path}.cases[{i}]"
        case = _object(raw, cpath, ("condition", "engaged", "next"), ("next",))
        if ("condition" in case) == ("engaged" in case):
            _fail(cpath, "a case has either a condition (on the customer) or engaged (with a message sent earlier)")
        target = _target(case["next"], f"{cpath}.next")
        if "condition" in case:
            node = parse_condition(case["condition"], f"{cpath}.condition")
            cases.append(Case(target, condition=node, raw_condition=case["condition"]))
        else:
            engaged = _object(case["engaged"], f"{cpath}.engaged", ("step", "status"), ("step",))
            status = engaged.get("status", "opened")
            if status not in ENGAGEMENTS:
                _fail(f"{cpath}.engaged.status", f"must be one of {', '.join(ENGAGEMENTS)}")
            step = _target(engaged["step"], f"{cpath}.engaged.step")
            cases.append(Case(target, engaged_step=step, engaged_status=status))
    return Branch(tuple(cases), _target(body["else"], f"{path}.else"))


def _split(body: dict[str, Any], path: str) -> Split:
    _object(body, path, (*_COMMON, "variants"), ("variants",))
    raw = body["variants"]
    if not isinstance(raw, list) or not 2 <= len(raw) <= 10:
        _fail(f"{path}.variants", "must be a list of 2 to 10 variants")
    variants = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        vpath = f"{path}.variants[{i}]"
        v = _object(item, vpath, ("name", "weight", "next"), ("name", "next"))
        name = _text(v["name"], f"{vpath}.name", 60)
        if name in names:
            _fail(f"{vpath}.name", f"{name!r} is used twice")
        names.add(name)
        weight = v.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= 1e6:
            _fail(f"{vpath}.weight", "must be a number above zero")
        variants.append(Variant(name, float(weight), _target(v["next"], f"{vpath}.next")))
    return Split(tuple(variants))


def _holdout(body: dict[str, Any], path: str) -> Holdout:
    _object(body, path, (*_COMMON, "percent"), ("percent",))
    pct = body["percent"]
    if isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 < pct < 100:
        _fail(f"{path}.percent", "must be a number between 0 and 100 (the share kept back as a control group)")
    return Holdout(float(pct))


def _update_trait(body: dict[str, Any], path: str) -> UpdateTrait:
    _object(body, path, (*_COMMON, "traits"), ("traits",))
    traits = body["traits"]
    if not isinstance(traits, dict) or not traits:
        _fail(f"{path}.traits", "must be an object of trait names and values (null removes one)")
    return UpdateTrait(dict(traits))


def _webhook(body: dict[str, Any], path: str) -> Webhook:
    _object(body, path, (*_COMMON, "endpoint", "body"), ("endpoint",))
    raw = body.get("body", '{"customer_id": {{ customer.id | json }}}')
    if isinstance(raw, dict | list):
        raw = orjson.dumps(raw).decode()
    return Webhook(_text(body["endpoint"], f"{path}.endpoint", 40), _text(raw, f"{path}.body", 64 * 1024))


def _create_conversation(body: dict[str, Any], path: str) -> CreateConversation:
    _object(body, path, (*_COMMON, "team", "priority", "tags", "note", "subject"))
    priority = body.get("priority", "normal")
    if priority not in PRIORITIES:
        _fail(f"{path}.priority", f"must be one of {', '.join(PRIORITIES)}")
    tags = body.get("tags", [])
    if not isinstance(tags, list) or any(not isinstance(t, str) or not t or len(t) > 60 for t in tags):
        _fail(f"{path}.tags", "must be a list of tags (1 to 60 characters)")
    return CreateConversation(
        team=_text(body["team"], f"{path}.team", 80) if body.get("team") is not None else None,
        priority=priority,
        tags=tuple(tags),
        note=_text(body["note"], f"{path}.note", 5000) if body.get("note") is not None else None,
        subject=_text(body["subject"], f"{path}.subject", 300) if body.get("subject") is not None else None,
    )


def _goal(body: dict[str, Any], path: str) -> GoalCheck:
    _object(body, path, _COMMON)
    return GoalCheck()


_PARSERS: dict[str, Callable[[dict[str, Any], str], Config]] = {
    "send": _send,
    "wait": _wait,
    "branch": _branch,
    "split": _split,
    "holdout": _holdout,
    "update_trait": _update_trait,
    "webhook": _webhook,
    "create_conversation": _create_conversation,
    "goal": _goal,
}


def _steps(raw: Any) -> tuple[dict[str, Step], str]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_STEPS:
        _fail("steps", f"must be a list of 1 to {MAX_STEPS} steps")
    ids: list[str] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            _fail(f"steps[{i}]", "must be an object")
        sid = item.get("id", f"step-{i + 1}")
        if not isinstance(sid, str) or not STEP_ID_RE.match(sid) or sid == END:
            _fail(f"steps[{i}].id", 'must be lower-case letters, digits, - or _ (not "end"), at most 60')
        if sid in ids:
            _fail(f"steps[{i}].id", f"{sid!r} is used by an earlier step")
        ids.append(sid)
    steps: dict[str, Step] = {}
    for i, item in enumerate(raw):
        path = f"steps[{i}] ({ids[i]})"
        kind = item.get("type")
        if kind not in _PARSERS:
            _fail(f"{path}.type", f"must be one of {', '.join(STEP_TYPES)}")
        config = _PARSERS[kind](item, path)
        default_next = ids[i + 1] if i + 1 < len(ids) else END
        nxt = _target(item["next"], f"{path}.next") if "next" in item else default_next
        steps[ids[i]] = Step(ids[i], kind, config, nxt, path)
    for step in steps.values():
        for target in step.targets():
            if target != END and target not in steps:
                _fail(step.path, f"leads to step {target!r}, which does not exist")
        cfg = step.config
        if isinstance(cfg, Branch):
            for j, case in enumerate(cfg.cases):
                if case.engaged_step is not None:
                    sent = steps.get(case.engaged_step)
                    if sent is None or sent.type != "send":
                        _fail(f"{step.path}.cases[{j}].engaged.step", f"{case.engaged_step!r} is not a send step")
    _no_busy_loop(steps)
    return steps, ids[0]


def _no_busy_loop(steps: dict[str, Step]) -> None:
    """A cycle must pass through a wait: otherwise a customer would loop without end."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(sid: str, trail: list[str]) -> None:
        state[sid] = 1
        step = steps[sid]
        if step.type != "wait":
            for target in step.targets():
                if target == END:
                    continue
                if state.get(target) == 1:
                    loop = [*trail[trail.index(target) :], sid] if target in trail else [sid, target]
                    _fail(step.path, f"loops back to {target!r} without a wait ({' → '.join([*loop, target])})")
                if target not in state:
                    visit(target, [*trail, sid])
        state[sid] = 2

    for sid in steps:
        if sid not in state:
            visit(sid, [])


def parse_document(raw: Any) -> Any:
    """A definition given as YAML text becomes the same JSON value."""
    if isinstance(raw, str):
        try:
            raw = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            _fail("definition", f"is not valid YAML{where}")
    return raw


def parse(raw: Any) -> Definition:
    raw = parse_document(raw)
    body = _object(raw, "definition", ("trigger", "reentry", "exit", "goal", "monitor", "steps"), ("trigger", "steps"))
    trigger = _trigger(body["trigger"], "trigger")
    reentry = Reentry()
    if "reentry" in body:
        r = _object(body["reentry"], "reentry", ("policy", "cooldown"), ("policy",))
        if r["policy"] not in REENTRY:
            _fail("reentry.policy", f"must be one of {', '.join(REENTRY)}")
        cooldown = duration(r["cooldown"], "reentry.cooldown") if "cooldown" in r else None
        if cooldown is not None and r["policy"] != "after_exit":
            _fail("reentry.cooldown", "only with policy after_exit")
        reentry = Reentry(r["policy"], cooldown)
    exits: tuple[EventMatch, ...] = ()
    if "exit" in body:
        raw_exits = body["exit"]
        if not isinstance(raw_exits, list) or len(raw_exits) > 20:
            _fail("exit", "must be a list of at most 20 events that take a customer out of the journey")
        exits = tuple(_event_match(e, f"exit[{i}]") for i, e in enumerate(raw_exits))
    goal = None
    if "goal" in body:
        g = _object(body["goal"], "goal", ("event", "where", "within", "exit"), ("event", "within"))
        ge = _event_match({k: v for k, v in g.items() if k in ("event", "where")}, "goal")
        leave = g.get("exit", True)
        if not isinstance(leave, bool):
            _fail("goal.exit", "must be true or false")
        goal = Goal(ge, duration(g["within"], "goal.within"), leave)
    monitor = Monitor()
    if "monitor" in body:
        m = _object(
            body["monitor"], "monitor", ("bounce_rate", "complaint_rate", "failure_rate", "min_sends", "window")
        )
        values: dict[str, Any] = {}
        for name in ("bounce_rate", "complaint_rate", "failure_rate"):
            if name in m:
                v = m[name]
                if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 1:
                    _fail(f"monitor.{name}", "must be a rate above 0 and at most 1 (0.05 = 5 %)")
                values[name] = float(v)
        if "min_sends" in m:
            v = m["min_sends"]
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1_000_000:
                _fail("monitor.min_sends", "must be a whole number from 1")
            values["min_sends"] = v
        if "window" in m:
            values["window"] = duration(m["window"], "monitor.window", maximum=timedelta(days=30))
        monitor = Monitor(**values)
    steps, first = _steps(body["steps"])
    if trigger.kind == "schedule" and reentry.policy == "never" and trigger.cron is not None:
        # A repeating broadcast reaches its audience at every occurrence.
        reentry = Reentry("always")
    return Definition(trigger, reentry, exits, goal, monitor, steps, first)


def kind_of(definition: Definition) -> str:
    """A broadcast campaign is a journey with a schedule trigger over a segment (SPEC §8)."""
    return "campaign" if definition.trigger.kind == "schedule" else "journey"


def channels_of(step: Send) -> tuple[str, ...]:
    if step.channel != "auto":
        return (step.channel,)
    return step.candidates or MESSAGE_CHANNELS


assert set(MESSAGE_CHANNELS) <= set(CHANNELS)
