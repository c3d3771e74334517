"""Parse a segment definition from JSON, refusing bad input with the path of the bad node.

Errors read like `conditions.and[2].event.within_days: must be positive` and carry that path as
the error's `field`, so a builder can point at the node. Nothing here touches the database
(segment keys are checked by the service, which knows the workspace).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, NoReturn

from shopkeeper.consent.models import ALL_TOPICS, CHANNELS, STATUSES
from shopkeeper.errors import Invalid
from shopkeeper.segments.definition import (
    COUNT_OPS,
    FILTER_OPS,
    LABEL_SCORE_OPS,
    LABEL_SCORES,
    NUMBER_SCORE_OPS,
    NUMBER_SCORES,
    RELATIVE_DATE_OPS,
    AllOf,
    AnyOf,
    ConsentCondition,
    EventCondition,
    Filter,
    Node,
    Not,
    ScoreCondition,
    SegmentCondition,
    TraitCondition,
)

MAX_NODES = 200
MAX_DEPTH = 12
MAX_ITEMS = 100
MAX_DAYS = 36_500
MAX_COUNT = 1_000_000
MAX_NUMBER = 1e15
# Keys are spliced into JSON paths; quotes, backslashes and control characters could escape them.
_KEY_RE = re.compile(r"^[^\"'\\\x00-\x1f]{1,200}$")
SEGMENT_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")
_KINDS = ("and", "or", "not", "trait", "event", "not_performed", "consent", "segment", "score")


def _fail(path: str, message: str) -> NoReturn:
    raise Invalid(f"{path}: {message}", field=path)


def _object(raw: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(raw, dict):
        _fail(path, "must be an object")
    for name in raw:
        if name not in allowed:
            _fail(f"{path}.{name}", f"unknown field; expected {', '.join(allowed)}")
    for name in required:
        if name not in raw:
            _fail(f"{path}.{name}", "is required")
    return raw


def _key(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or not _KEY_RE.match(raw) or not raw.strip():
        _fail(path, "must be a name of 1 to 200 characters without quotes, backslashes or control characters")
    return raw


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar(value: Any, path: str) -> str | int | float | bool:
    if isinstance(value, bool):
        return value
    if _is_number(value):
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            _fail(path, f"numbers must be finite and at most {MAX_NUMBER:g} in size")
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        if len(value) > 1000:
            _fail(path, "at most 1000 characters")
        return value
    _fail(path, "must be a string, a number or a boolean")


def _comparable(value: Any, path: str) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        _fail(path, "must be a number or a string (an ISO 8601 date compares as text)")
    return _scalar(value, path)


def _positive_days(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, "must be a whole number of days")
    if value <= 0:
        _fail(path, "must be positive")
    if value > MAX_DAYS:
        _fail(path, f"at most {MAX_DAYS} days")
    return value


def parse_filter(raw: Any, path: str, key_name: str) -> Filter:
    body = _object(raw, path, (key_name, "op", "value"), (key_name, "op"))
    key = _key(body[key_name], f"{path}.{key_name}")
    op = body["op"]
    if op not in FILTER_OPS:
        _fail(f"{path}.op", f"unknown operator {op!r}; expected one of {', '.join(FILTER_OPS)}")
    vpath = f"{path}.value"
    if op == "exists":
        if "value" in body:
            _fail(vpath, "exists takes no value (wrap the condition in `not` for 'does not exist')")
        return Filter(key, op)
    if "value" not in body:
        _fail(vpath, "is required")
    value = body["value"]
    if op in ("eq", "neq"):
        return Filter(key, op, _scalar(value, vpath))
    if op == "in":
        if not isinstance(value, list) or not value or len(value) > MAX_ITEMS:
            _fail(vpath, f"must be a list of 1 to {MAX_ITEMS} values")
        return Filter(key, op, tuple(_scalar(v, f"{vpath}[{i}]") for i, v in enumerate(value)))
    if op == "contains":
        if not isinstance(value, str) or not value:
            _fail(vpath, "must be a non-empty string")
        return Filter(key, op, _scalar(value, vpath))
    if op in ("gt", "gte", "lt", "lte"):
        return Filter(key, op, _comparable(value, vpath))
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            _fail(vpath, "must be a list of two values [low, high]")
        low, high = (_comparable(v, f"{vpath}[{i}]") for i, v in enumerate(value))
        if isinstance(low, str) != isinstance(high, str):
            _fail(vpath, "low and high must both be numbers or both be strings")
        if low > high:  # type: ignore[operator]
            _fail(vpath, "low must not be above high")
        return Filter(key, op, (low, high))
    assert op in RELATIVE_DATE_OPS
    return Filter(key, op, _positive_days(value, vpath))


def _since(raw: Any, path: str) -> datetime:
    if not isinstance(raw, str):
        _fail(path, "must be an ISO 8601 date or time, e.g. 2026-01-31 or 2026-01-31T12:00:00Z")
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        _fail(path, "must be an ISO 8601 date or time, e.g. 2026-01-31 or 2026-01-31T12:00:00Z")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # a bare date or time is UTC, as every stored time is
    if not 1970 <= when.year <= 2200:
        _fail(path, "must lie between 1970 and 2200")
    return when.astimezone(UTC)


def _where(raw: Any, path: str) -> tuple[Filter, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_ITEMS:
        _fail(path, f"must be a list of at most {MAX_ITEMS} property conditions")
    return tuple(parse_filter(item, f"{path}[{i}]", "property") for i, item in enumerate(raw))


def _event(raw: Any, path: str, *, negative: bool) -> EventCondition:
    if negative:
        fields: tuple[str, ...] = ("name", "since", "within_days", "where")
    else:
        fields = ("name", "op", "count", "since", "within_days", "where")
    body = _object(raw, path, fields, ("name",))
    name = _key(body["name"], f"{path}.name")
    if "since" in body and "within_days" in body:
        _fail(f"{path}.since", "give either since or within_days, not both")
    within = _positive_days(body["within_days"], f"{path}.within_days") if "within_days" in body else None
    since = _since(body["since"], f"{path}.since") if "since" in body else None
    where = _where(body.get("where", []), f"{path}.where")
    if negative:
        return EventCondition(name, "eq", 0, within, since, where)
    op = body.get("op", "gte")
    if op not in COUNT_OPS:
        _fail(f"{path}.op", f"unknown operator {op!r}; expected one of {', '.join(COUNT_OPS)}")
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
        _fail(f"{path}.count", f"must be a whole number from 0 to {MAX_COUNT}")
    if op == "lt" and count == 0:
        _fail(f"{path}.count", "fewer than 0 times can never match")
    return EventCondition(name, op, count, within, since, where)


def _consent(raw: Any, path: str) -> ConsentCondition:
    body = _object(raw, path, ("channel", "topic", "status"), ("channel", "status"))
    channel = body["channel"]
    if channel not in CHANNELS:
        _fail(f"{path}.channel", f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    topic = body.get("topic")
    if topic == ALL_TOPICS:
        topic = None
    if topic is not None and (not isinstance(topic, str) or not SEGMENT_KEY_RE.match(topic)):
        _fail(f"{path}.topic", "must be a topic key (lower-case letters, digits, '_', '-', '.')")
    status = body["status"]
    if status not in STATUSES:
        _fail(f"{path}.status", f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    if topic is None and status not in ("opted_out", "unknown"):
        _fail(f"{path}.status", "a whole channel is only ever opted_out or unknown; name a topic")
    return ConsentCondition(channel, topic, status)


def _score(raw: Any, path: str) -> ScoreCondition:
    body = _object(raw, path, ("name", "op", "value"), ("name", "op"))
    name = body["name"]
    if name not in NUMBER_SCORES + LABEL_SCORES:
        _fail(f"{path}.name", f"unknown score {name!r}; expected one of {', '.join(NUMBER_SCORES + LABEL_SCORES)}")
    op = body["op"]
    ops = NUMBER_SCORE_OPS if name in NUMBER_SCORES else LABEL_SCORE_OPS
    if op not in ops:
        _fail(f"{path}.op", f"operator {op!r} does not apply to {name}; expected one of {', '.join(ops)}")
    vpath = f"{path}.value"
    if op == "exists":
        if "value" in body:
            _fail(vpath, "exists takes no value")
        return ScoreCondition(name, op)
    if "value" not in body:
        _fail(vpath, "is required")
    value = body["value"]
    if name in LABEL_SCORES:
        if op == "in":
            if not isinstance(value, list) or not value or len(value) > MAX_ITEMS:
                _fail(vpath, f"must be a list of 1 to {MAX_ITEMS} labels")
            if not all(isinstance(v, str) for v in value):
                _fail(vpath, "labels are strings")
            return ScoreCondition(name, op, tuple(value))
        if not isinstance(value, str):
            _fail(vpath, "must be a label (a string)")
        return ScoreCondition(name, op, value)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2 or not all(_is_number(v) for v in value):
            _fail(vpath, "must be a list of two numbers [low, high]")
        low, high = (float(_scalar(v, f"{vpath}[{i}]")) for i, v in enumerate(value))
        if low > high:
            _fail(vpath, "low must not be above high")
        return ScoreCondition(name, op, (low, high))
    if not _is_number(value):
        _fail(vpath, "must be a number")
    return ScoreCondition(name, op, float(_scalar(value, vpath)))


class _Counter:
    def __init__(self) -> None:
        self.nodes = 0


def _node(raw: Any, path: str, depth: int, counter: _Counter) -> Node:
    counter.nodes += 1
    if counter.nodes > MAX_NODES:
        _fail(path, f"a definition has at most {MAX_NODES} conditions")
    if depth > MAX_DEPTH:
        _fail(path, f"conditions nest at most {MAX_DEPTH} deep")
    if not isinstance(raw, dict) or len(raw) != 1:
        _fail(path, f"must be an object with exactly one of {', '.join(_KINDS)}")
    ((kind, body),) = raw.items()
    here = f"{path}.{kind}"
    if kind in ("and", "or"):
        if not isinstance(body, list) or not body or len(body) > MAX_ITEMS:
            _fail(here, f"must be a list of 1 to {MAX_ITEMS} conditions")
        items = tuple(_node(item, f"{here}[{i}]", depth + 1, counter) for i, item in enumerate(body))
        return AllOf(items) if kind == "and" else AnyOf(items)
    if kind == "not":
        return Not(_node(body, here, depth + 1, counter))
    if kind == "trait":
        return TraitCondition(parse_filter(body, here, "key"))
    if kind == "event":
        return _event(body, here, negative=False)
    if kind == "not_performed":
        return _event(body, here, negative=True)
    if kind == "consent":
        return _consent(body, here)
    if kind == "segment":
        seg = _object(body, here, ("key",), ("key",))
        if not isinstance(seg["key"], str) or not SEGMENT_KEY_RE.match(seg["key"]):
            _fail(f"{here}.key", "must be a segment key")
        return SegmentCondition(seg["key"])
    if kind == "score":
        return _score(body, here)
    _fail(path, f"unknown condition {kind!r}; expected one of {', '.join(_KINDS)}")


def parse(raw: Any, path: str = "conditions") -> Node:
    """The condition tree of `raw`, or `Invalid` naming the first bad node by its path."""
    return _node(raw, path, 0, _Counter())
