"""The segment builder's form: a condition tree as form fields named by the validator's paths.

A node at `conditions.and[0]` is a field of that name holding its kind ("trait"), and its values
are fields under it (`conditions.and[0].trait.key`), so a validation error's `field` names the
node it belongs to. `read` turns a posted form into a `Draft` (lenient: what the user typed, for
re-rendering), `to_json` a draft into the definition (strict: a number that is not one is an
error at its path), `from_json` a saved definition into a draft. Structural edits (add, remove,
change a kind) are done on drafts, and the builder is rendered again from the result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from shopkeeper.errors import Invalid
from shopkeeper.segments.definition import (
    COUNT_OPS,
    FILTER_OPS,
    LABEL_SCORE_OPS,
    LABEL_SCORES,
    NUMBER_SCORE_OPS,
    NUMBER_SCORES,
    RELATIVE_DATE_OPS,
)
from shopkeeper.segments.validate import MAX_DEPTH, MAX_ITEMS, MAX_NODES, parse

ROOT = "conditions"
GROUPS = ("and", "or")
LEAVES = ("trait", "event", "not_performed", "consent", "segment", "score")
KINDS = (*GROUPS, "not", *LEAVES)
KIND_LABELS = {
    "and": "All of these",
    "or": "Any of these",
    "not": "Not",
    "trait": "Trait",
    "event": "Performed event",
    "not_performed": "Has not performed",
    "consent": "Consent",
    "segment": "In segment",
    "score": "Score",
}
OP_LABELS = {
    "eq": "is",
    "neq": "is not",
    "in": "is one of",
    "contains": "contains",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "exists": "exists",
    "between": "is between",
    "within_last_days": "within the last … days",
    "more_than_days_ago": "more than … days ago",
}
COUNT_LABELS = {"gte": "at least", "gt": "more than", "eq": "exactly", "lte": "at most", "lt": "fewer than"}
WINDOWS = {"all": "ever", "within_days": "in the last … days", "since": "since a date"}
VALUE_TYPES = {"text": "text", "number": "number", "boolean": "true / false"}
SCORE_LABELS = {
    "rfm_segment": ("champions", "loyal", "new", "cant_lose", "at_risk", "hibernating", "needs_attention"),
    "clv_tier": ("high", "medium", "low"),
    "nps_group": ("promoter", "passive", "detractor"),
}
_INT_RE = re.compile(r"^[+-]?\d{1,18}$")


@dataclass
class FilterDraft:
    """`key op value` of a trait condition or an event's property filter, as typed."""

    key: str = ""
    op: str = "eq"
    type: str = "text"
    value: str = ""
    low: str = ""
    high: str = ""


@dataclass
class Draft:
    kind: str
    children: list[Draft] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    filter: FilterDraft | None = None
    where: list[FilterDraft] = field(default_factory=list)


def new(kind: str) -> Draft:
    """A fresh node of this kind, with the defaults the builder starts from."""
    if kind in GROUPS:
        return Draft(kind)
    if kind == "not":
        return Draft(kind, children=[new("trait")])
    if kind == "trait":
        return Draft(kind, filter=FilterDraft())
    if kind == "event":
        return Draft(kind, values={"name": "", "op": "gte", "count": "1", "window": "all"})
    if kind == "not_performed":
        return Draft(kind, values={"name": "", "window": "all"})
    if kind == "consent":
        return Draft(kind, values={"channel": "email", "topic": "", "status": "opted_in"})
    if kind == "segment":
        return Draft(kind, values={"key": ""})
    return Draft("score", values={"name": "rfm_segment", "op": "eq", "value": ""})


def convert(node: Draft, kind: str) -> Draft:
    """The node as another kind, keeping what carries over (children into a group, a leaf into
    a `not`, an event's name and window between performed and not performed)."""
    if kind == node.kind:
        return node
    if kind in GROUPS:
        if node.kind in GROUPS or node.kind == "not":
            return Draft(kind, children=node.children)
        return Draft(kind, children=[node])
    if kind == "not":
        return Draft(kind, children=[node])
    fresh = new(kind)
    if {kind, node.kind} == {"event", "not_performed"}:
        for name in ("name", "window", "within_days", "since"):
            if name in node.values:
                fresh.values[name] = node.values[name]
        fresh.where = node.where
    return fresh


# -- reading a posted form -------------------------------------------------------------------
def _filter(form: Mapping[str, str], base: str, key_name: str) -> FilterDraft:
    op = form.get(f"{base}.op", "eq")
    return FilterDraft(
        key=form.get(f"{base}.{key_name}", ""),
        op=op if op in FILTER_OPS else "eq",
        type=form.get(f"{base}.type", "text") if form.get(f"{base}.type") in VALUE_TYPES else "text",
        value=form.get(f"{base}.value", ""),
        low=form.get(f"{base}.value[0]", ""),
        high=form.get(f"{base}.value[1]", ""),
    )


def _indices(form: Mapping[str, str], prefix: str, suffix: str = "") -> list[int]:
    pattern = re.compile(rf"^{re.escape(prefix)}\[(\d{{1,4}})\]{re.escape(suffix)}$")
    found = sorted({int(m.group(1)) for name in form if (m := pattern.match(name))})
    return found[: MAX_ITEMS + 1]


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0


def _read(form: Mapping[str, str], path: str, depth: int, budget: _Budget) -> Draft:
    budget.nodes += 1
    kind = form.get(path, "and")
    kind = kind if kind in KINDS else "and"
    was = form.get(f"{path}.was", kind)
    was = was if was in KINDS else kind
    node = Draft(was)
    if was in GROUPS:
        if depth <= MAX_DEPTH:
            for i in _indices(form, f"{path}.{was}"):
                if budget.nodes > MAX_NODES:
                    break
                node.children.append(_read(form, f"{path}.{was}[{i}]", depth + 1, budget))
    elif was == "not":
        child = f"{path}.not"
        node.children = [
            _read(form, child, depth + 1, budget) if child in form and depth <= MAX_DEPTH else new("trait")
        ]
    elif was == "trait":
        node.filter = _filter(form, f"{path}.trait", "key")
    elif was in ("event", "not_performed"):
        base = f"{path}.{was}"
        names = ("name", "window", "within_days", "since") + (("op", "count") if was == "event" else ())
        node.values = {n: form[f"{base}.{n}"] for n in names if f"{base}.{n}" in form}
        node.values.setdefault("window", "all")
        node.where = [_filter(form, f"{base}.where[{i}]", "property") for i in _indices(form, f"{base}.where", ".op")]
    elif was == "consent":
        node.values = {n: form.get(f"{path}.consent.{n}", "") for n in ("channel", "topic", "status")}
    elif was == "segment":
        node.values = {"key": form.get(f"{path}.segment.key", "")}
    else:
        base = f"{path}.score"
        node.values = {
            "name": form.get(f"{base}.name", ""),
            "op": form.get(f"{base}.op", "eq"),
            "value": form.get(f"{base}.value", ""),
            "low": form.get(f"{base}.value[0]", ""),
            "high": form.get(f"{base}.value[1]", ""),
        }
    return convert(node, kind) if kind != was else node


def read(form: Mapping[str, str]) -> Draft:
    """The tree the form describes, as typed (never refused: the builder shows it again)."""
    if ROOT not in form:
        return Draft("and")
    return _read(form, ROOT, 0, _Budget())


# -- the draft as a definition ---------------------------------------------------------------
def _number(text: str, path: str) -> int | float:
    text = text.strip()
    if _INT_RE.match(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        raise Invalid(f"{path}: must be a number", field=path) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise Invalid(f"{path}: must be a number", field=path)
    return value


def _typed(text: str, kind: str, path: str) -> Any:
    if kind == "number":
        return _number(text, path)
    if kind == "boolean":
        if text not in ("true", "false"):
            raise Invalid(f"{path}: choose true or false", field=path)
        return text == "true"
    return text


def _days(text: str, path: str) -> Any:
    value = _number(text, path) if text.strip() else text
    return value


def _filter_json(f: FilterDraft, base: str, key_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {key_name: f.key.strip(), "op": f.op}
    vpath = f"{base}.value"
    if f.op == "exists":
        return out
    if f.op in RELATIVE_DATE_OPS:
        out["value"] = _days(f.value, vpath)
    elif f.op == "between":
        out["value"] = [_typed(f.low, f.type, f"{vpath}[0]"), _typed(f.high, f.type, f"{vpath}[1]")]
    elif f.op == "in":
        items = [part.strip() for part in f.value.split(",") if part.strip()]
        out["value"] = [_typed(v, f.type, f"{vpath}[{i}]") for i, v in enumerate(items)]
    else:
        out["value"] = _typed(f.value if f.type == "text" else f.value.strip(), f.type, vpath)
    return out


def _event_json(node: Draft, base: str) -> dict[str, Any]:
    v = node.values
    body: dict[str, Any] = {"name": v.get("name", "").strip()}
    if node.kind == "event":
        op = v.get("op", "gte")
        count = v.get("count", "1").strip() or "1"
        if op != "gte":
            body["op"] = op
        if op != "gte" or count != "1":
            body["count"] = _number(count, f"{base}.count")
    window = v.get("window", "all")
    if window == "within_days":
        body["within_days"] = _days(v.get("within_days", ""), f"{base}.within_days")
    elif window == "since":
        body["since"] = v.get("since", "").strip()
    if node.where:
        body["where"] = [_filter_json(f, f"{base}.where[{i}]", "property") for i, f in enumerate(node.where)]
    return body


def to_json(node: Draft, path: str = ROOT) -> Any:
    """The definition this draft stands for; Invalid at the path of a value of the wrong type."""
    if node.kind in GROUPS:
        return {node.kind: [to_json(c, f"{path}.{node.kind}[{i}]") for i, c in enumerate(node.children)]}
    if node.kind == "not":
        return {"not": to_json(node.children[0], f"{path}.not")}
    base = f"{path}.{node.kind}"
    v = node.values
    if node.kind == "trait":
        assert node.filter is not None
        return {"trait": _filter_json(node.filter, base, "key")}
    if node.kind in ("event", "not_performed"):
        return {node.kind: _event_json(node, base)}
    if node.kind == "consent":
        body = {"channel": v.get("channel", ""), "status": v.get("status", "")}
        if v.get("topic"):
            body["topic"] = v["topic"]
        return {"consent": body}
    if node.kind == "segment":
        return {"segment": {"key": v.get("key", "")}}
    name, op = v.get("name", ""), v.get("op", "eq")
    score: dict[str, Any] = {"name": name, "op": op}
    vpath = f"{base}.value"
    labels = name in LABEL_SCORES
    if op == "between":
        score["value"] = [_number(v.get("low", ""), f"{vpath}[0]"), _number(v.get("high", ""), f"{vpath}[1]")]
    elif op == "in":
        score["value"] = [part.strip() for part in v.get("value", "").split(",") if part.strip()]
    elif op != "exists":
        score["value"] = v.get("value", "").strip() if labels else _number(v.get("value", ""), vpath)
    return {"score": score}


# -- a saved definition as a draft -----------------------------------------------------------
def _text_of(value: Any) -> tuple[str, str]:
    """(type, text) of a JSON scalar."""
    if isinstance(value, bool):
        return "boolean", "true" if value else "false"
    if isinstance(value, int | float):
        return "number", str(value)
    return "text", str(value)


def _filter_from(body: Mapping[str, Any], key_name: str) -> FilterDraft:
    f = FilterDraft(key=str(body.get(key_name, "")), op=str(body.get("op", "eq")))
    value = body.get("value")
    if f.op == "exists" or value is None:
        return f
    if f.op in RELATIVE_DATE_OPS:
        f.value = str(value)
    elif f.op == "between" and isinstance(value, list) and len(value) == 2:
        f.type, f.low = _text_of(value[0])
        _, f.high = _text_of(value[1])
    elif f.op == "in" and isinstance(value, list):
        f.type = _text_of(value[0])[0] if value else "text"
        f.value = ", ".join(_text_of(v)[1] for v in value)
    else:
        f.type, f.value = _text_of(value)
    return f


def from_json(raw: Any) -> Draft:
    """The builder's draft of a definition (one that `validate.parse` accepts)."""
    ((kind, body),) = raw.items()
    if kind in GROUPS:
        return Draft(kind, children=[from_json(item) for item in body])
    if kind == "not":
        return Draft(kind, children=[from_json(body)])
    if kind == "trait":
        return Draft(kind, filter=_filter_from(body, "key"))
    if kind in ("event", "not_performed"):
        values = {"name": str(body["name"]), "window": "all"}
        if kind == "event":
            values["op"] = str(body.get("op", "gte"))
            values["count"] = str(body.get("count", 1))
        if "within_days" in body:
            values["window"], values["within_days"] = "within_days", str(body["within_days"])
        elif "since" in body:
            values["window"], values["since"] = "since", str(body["since"])
        return Draft(kind, values=values, where=[_filter_from(w, "property") for w in body.get("where", [])])
    if kind == "consent":
        topic = body.get("topic") or ""
        return Draft(
            kind, values={"channel": body["channel"], "topic": "" if topic == "*" else topic, "status": body["status"]}
        )
    if kind == "segment":
        return Draft(kind, values={"key": body["key"]})
    values = {"name": body["name"], "op": body["op"], "value": "", "low": "", "high": ""}
    value = body.get("value")
    if isinstance(value, list) and body["op"] == "between":
        values["low"], values["high"] = (_text_of(v)[1] for v in value)
    elif isinstance(value, list):
        values["value"] = ", ".join(str(v) for v in value)
    elif value is not None:
        values["value"] = _text_of(value)[1]
    return Draft("score", values=values)


def faithful(raw: Any) -> bool:
    """Whether the builder shows this definition exactly (a list mixing types it cannot)."""
    try:
        return parse(to_json(from_json(raw))) == parse(raw)
    except (Invalid, ValueError, KeyError, TypeError):
        return False


def parse_json_text(text: str) -> Draft:
    """A definition pasted as JSON: checked in full, then shown in the builder."""
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"json: not valid JSON ({exc.msg} at character {exc.pos})", field="json") from None
    parse(raw)
    return from_json(raw)


# -- structural edits ------------------------------------------------------------------------
_STEP_RE = re.compile(r"\.(and|or)\[(\d+)\]|\.not")


def locate(root: Draft, path: str) -> tuple[Draft, Draft | None, int]:
    """(node, parent, index in parent's children) of the node at `path`."""
    if path == ROOT:
        return root, None, 0
    if not path.startswith(ROOT):
        raise KeyError(path)
    rest, node = path[len(ROOT) :], root
    parent: Draft | None = None
    index = 0
    while rest:
        m = _STEP_RE.match(rest)
        if m is None:
            raise KeyError(path)
        if m.group(0) == ".not":
            if node.kind != "not":
                raise KeyError(path)
            parent, index, node = node, 0, node.children[0]
        else:
            i = int(m.group(2))
            if node.kind != m.group(1) or i >= len(node.children):
                raise KeyError(path)
            parent, index, node = node, i, node.children[i]
        rest = rest[m.end() :]
    return node, parent, index


def child_path(path: str, node: Draft, index: int) -> str:
    return f"{path}.not" if node.kind == "not" else f"{path}.{node.kind}[{index}]"


def apply(root: Draft, op: str, form: Mapping[str, str]) -> str | None:
    """Do one edit (`add:<group>`, `remove:<node>`, `add-where:<node>`, `remove-where:<node>:<i>`);
    the id of the field to focus afterwards."""
    action, _, target = op.partition(":")
    try:
        if action == "add":
            group, _, _ = locate(root, target)
            kind = form.get(f"{target}.add", "trait")
            if group.kind in GROUPS and kind in KINDS and len(group.children) < MAX_ITEMS:
                group.children.append(new(kind))
                added = f"{target}.{group.kind}[{len(group.children) - 1}]"
                return first_field(group.children[-1], added)
            return field_id(f"{target}.add")
        if action == "remove":
            _, parent, index = locate(root, target)
            if parent is not None and parent.kind in GROUPS:
                parent.children.pop(index)
                parent_path = target[: target.rfind(".")]
                return field_id(f"{parent_path}.add")
            return None
        if action == "add-where":
            node, _, _ = locate(root, target)
            if node.kind in ("event", "not_performed") and len(node.where) < MAX_ITEMS:
                node.where.append(FilterDraft())
                return field_id(f"{target}.{node.kind}.where[{len(node.where) - 1}].property")
            return None
        if action == "remove-where":
            path, _, raw_index = target.rpartition(":")
            node, _, _ = locate(root, path)
            if raw_index.isdigit() and int(raw_index) < len(node.where):
                node.where.pop(int(raw_index))
            return field_id(f"{path}.{node.kind}.add-where")
    except KeyError:
        return None
    return None


def first_field(node: Draft, path: str) -> str:
    """The id of a node's first input: where the keyboard goes when it is added."""
    if node.kind in GROUPS:
        return field_id(f"{path}.add")
    if node.kind == "not":
        return first_field(node.children[0], f"{path}.not")
    first = {"trait": "key", "event": "name", "not_performed": "name", "consent": "channel", "segment": "key"}
    return field_id(f"{path}.{node.kind}.{first.get(node.kind, 'name')}")


def field_id(name: str) -> str:
    """An element id from a field name (`conditions.and[0].trait.key` → f-conditions-and-0-trait-key)."""
    return "f-" + re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")


def node_paths(root: Draft) -> list[str]:
    """Every node's path and every property filter's, parents first: where errors are shown."""
    out: list[str] = []

    def walk(node: Draft, path: str) -> None:
        out.append(path)
        if node.kind in ("event", "not_performed"):
            out.extend(f"{path}.{node.kind}.where[{i}]" for i in range(len(node.where)))
        for i, child in enumerate(node.children):
            walk(child, child_path(path, node, i))

    walk(root, ROOT)
    return out


_SEGMENT_REF_RE = re.compile(r"^conditions: segment '([a-z0-9_.-]+)' ")


def _segment_node(root: Draft, key: str) -> str | None:
    def walk(node: Draft, path: str) -> str | None:
        if node.kind == "segment" and node.values.get("key") == key:
            return path
        for i, child in enumerate(node.children):
            found = walk(child, child_path(path, node, i))
            if found is not None:
                return found
        return None

    return walk(root, ROOT)


def place_error(root: Draft, error_field: str | None, message: str = "") -> str | None:
    """The node (or filter) an error's path belongs to: the deepest one that contains it (a
    segment that does not exist, or would contain itself, at the condition that names it)."""
    if not error_field:
        return None
    if error_field == ROOT and (m := _SEGMENT_REF_RE.match(message)):
        return _segment_node(root, m.group(1)) or ROOT
    best = None
    for path in node_paths(root):
        inside = error_field == path or error_field.startswith((f"{path}.", f"{path}["))
        if inside and (best is None or len(path) > len(best)):
            best = path
    return best


def ops_for_score(name: str) -> tuple[str, ...]:
    return LABEL_SCORE_OPS if name in LABEL_SCORES else NUMBER_SCORE_OPS


SCORE_NAMES = NUMBER_SCORES + LABEL_SCORES
FILTER_OP_CHOICES = FILTER_OPS
COUNT_OP_CHOICES = COUNT_OPS
