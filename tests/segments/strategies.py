"""Hypothesis strategies: small random shops and random segment definitions (as raw JSON, so
the parser is exercised too), drawn from small pools so that conditions often match."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from shopkeeper.segments.reference import RefCustomer, RefData, RefEvent, RefSubscription

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SEGMENT_IDS = {"s1": "seg_one", "s2": "seg_two"}
TRAIT_KEYS = ["plan", "age", "tags", "a.b"]
PROPERTY_KEYS = ["total", "path"]
EVENT_NAMES = ["Order Completed", "Page Viewed", "Signed Up"]
STRINGS = ["pro", "ab", "b", "é", "2026-02-20T00:00:00", "2026-01-01", "2025-12-01T10:00:00Z"]
NUMBERS = st.sampled_from([0, 1, 3, 2.5, -0.5, 10.0, 60])
SCALARS = st.one_of(st.sampled_from(STRINGS), NUMBERS, st.booleans())
JSON_VALUES = st.one_of(
    SCALARS,
    SCALARS,
    st.none(),
    st.lists(st.one_of(st.sampled_from(STRINGS), NUMBERS), max_size=3),
    st.just({"nested": 1}),
    st.just(""),
)


def _objects(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), JSON_VALUES, min_size=1, max_size=5)


@st.composite
def filters(draw: st.DrawFn, key_name: str, keys: list[str]) -> dict[str, Any]:
    key = draw(st.sampled_from(keys))
    op = draw(
        st.sampled_from(
            [
                "eq",
                "neq",
                "in",
                "contains",
                "gt",
                "gte",
                "lt",
                "lte",
                "exists",
                "between",
                "within_last_days",
                "more_than_days_ago",
            ]
        )
    )
    out: dict[str, Any] = {key_name: key, "op": op}
    if op in ("eq", "neq"):
        out["value"] = draw(SCALARS)
    elif op == "in":
        out["value"] = draw(st.lists(SCALARS, min_size=1, max_size=3))
    elif op == "contains":
        out["value"] = draw(st.sampled_from(["a", "b", "pro", "ab", "é", "2026"]))
    elif op in ("gt", "gte", "lt", "lte"):
        out["value"] = draw(st.one_of(NUMBERS, st.sampled_from(STRINGS)))
    elif op == "between":
        pair = draw(
            st.one_of(
                st.lists(NUMBERS, min_size=2, max_size=2), st.lists(st.sampled_from(STRINGS), min_size=2, max_size=2)
            )
        )
        out["value"] = sorted(pair)
    elif op in ("within_last_days", "more_than_days_ago"):
        out["value"] = draw(st.integers(1, 120))
    return out


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["trait", "event", "not_performed", "consent", "segment", "score"]))
    if kind == "trait":
        return {"trait": draw(filters("key", TRAIT_KEYS))}
    if kind in ("event", "not_performed"):
        body: dict[str, Any] = {"name": draw(st.sampled_from(EVENT_NAMES))}
        if kind == "event":
            op = draw(st.sampled_from(["eq", "gt", "gte", "lt", "lte"]))
            body["op"] = op
            body["count"] = draw(st.integers(1 if op == "lt" else 0, 3))
        window = draw(st.sampled_from(["none", "within", "since"]))
        if window == "within":
            body["within_days"] = draw(st.integers(1, 60))
        elif window == "since":
            body["since"] = (NOW - timedelta(days=draw(st.integers(0, 70)))).date().isoformat()
        body["where"] = draw(st.lists(filters("property", PROPERTY_KEYS), max_size=2))
        return {kind: body}
    if kind == "consent":
        topic = draw(st.sampled_from([None, "news", "offers"]))
        statuses = ["opted_out", "unknown"] if topic is None else ["opted_in", "opted_out", "pending", "unknown"]
        consent: dict[str, Any] = {
            "channel": draw(st.sampled_from(["email", "sms"])),
            "status": draw(st.sampled_from(statuses)),
        }
        if topic is not None:
            consent["topic"] = topic
        return {"consent": consent}
    if kind == "segment":
        return {"segment": {"key": draw(st.sampled_from(["s1", "s2", "gone"]))}}
    name = draw(st.sampled_from(["rfm", "p_alive", "clv_tier"]))
    if name == "clv_tier":
        op = draw(st.sampled_from(["eq", "neq", "in", "exists"]))
        label_value: Any = (
            draw(st.lists(st.sampled_from(["high", "low", "medium"]), min_size=1, max_size=2))
            if op == "in"
            else draw(st.sampled_from(["high", "low"]))
        )
        return {"score": {"name": name, "op": op} | ({} if op == "exists" else {"value": label_value})}
    op = draw(st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "between", "exists"]))
    value: Any = (
        sorted(draw(st.lists(st.integers(0, 600), min_size=2, max_size=2)))
        if op == "between"
        else draw(st.sampled_from([0, 111, 345, 555, 0.5]))
    )
    return {"score": {"name": name, "op": op} | ({} if op == "exists" else {"value": value})}


def definitions() -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        leaves(),
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda xs: {"and": xs}),
            st.lists(children, min_size=1, max_size=3).map(lambda xs: {"or": xs}),
            children.map(lambda x: {"not": x}),
        ),
        max_leaves=6,
    )


@st.composite
def datasets(draw: st.DrawFn) -> RefData:
    n = draw(st.integers(4, 12))
    ids = [f"c{i}" for i in range(n)]
    customers = []
    for i, cid in enumerate(ids):
        merged = draw(st.sampled_from(ids[:2])) if i >= 3 and draw(st.integers(0, 4)) == 0 else None
        customers.append(RefCustomer(cid, draw(_objects(TRAIT_KEYS)), merged))
    events = [
        RefEvent(
            draw(st.sampled_from(ids)),
            draw(st.sampled_from(EVENT_NAMES)),
            NOW - timedelta(hours=draw(st.integers(-24, 24 * 80))),
            draw(st.one_of(st.none(), _objects(PROPERTY_KEYS))),
        )
        for _ in range(draw(st.integers(0, 40)))
    ]
    subs: dict[tuple[str, str, str], RefSubscription] = {}
    for number in range(draw(st.integers(0, 10))):
        cid = draw(st.sampled_from(ids))
        channel = draw(st.sampled_from(["email", "sms"]))
        topic = draw(st.sampled_from(["*", "news", "offers"]))
        status = draw(
            st.sampled_from(
                ["opted_out", "unknown"] if topic == "*" else ["opted_in", "opted_out", "pending", "unknown"]
            )
        )
        # Few distinct times, so that merged profiles often changed the same topic at once.
        when = NOW - timedelta(days=draw(st.integers(0, 2)))
        subs[(cid, channel, topic)] = RefSubscription(cid, channel, topic, status, when, f"s{number}")
    members = {sid: set(draw(st.lists(st.sampled_from(ids), max_size=4))) for sid in SEGMENT_IDS.values()}
    scores: dict[tuple[str, str], tuple[float | None, str | None]] = {}
    for cid in draw(st.lists(st.sampled_from(ids), max_size=6)):
        scores[(cid, "rfm")] = (float(draw(st.sampled_from([111, 345, 555, 0]))), None)
        scores[(cid, "p_alive")] = (draw(st.sampled_from([0.5, 0.25, 0.0])), None)
        scores[(cid, "clv_tier")] = (None, draw(st.sampled_from(["high", "low", "medium"])))
    return RefData(customers, events, list(subs.values()), members, scores)


@st.composite
def _window(draw: st.DrawFn, *, required: bool) -> dict[str, Any]:
    kinds = ["within", "since"] if required else ["none", "within", "since"]
    kind = draw(st.sampled_from(kinds))
    if kind == "within":
        return {"within_days": draw(st.integers(1, 60))}
    if kind == "since":
        return {"since": (NOW - timedelta(days=draw(st.integers(0, 70)))).date().isoformat()}
    return {}


@st.composite
def lapses(draw: st.DrawFn) -> dict[str, Any]:
    """Performed X (n times, in a window) but not since Y — an `and` holding an event count that
    is at least one and a "none since" of the same event and `where`, in each way the language
    can say either, beside other conditions; sometimes with the `where` or the name differing
    (then it must not be compiled as one)."""
    name = draw(st.sampled_from(EVENT_NAMES))
    where = draw(st.lists(filters("property", PROPERTY_KEYS), max_size=1))
    op, count = draw(st.sampled_from([("gte", 1), ("gte", 2), ("gt", 0), ("gt", 1), ("eq", 1), ("eq", 2)]))
    performed = {"event": {"name": name, "op": op, "count": count, "where": where} | draw(_window(required=False))}
    if draw(st.integers(0, 5)) == 0:
        name = draw(st.sampled_from(EVENT_NAMES))
    if draw(st.integers(0, 5)) == 0:
        where = draw(st.lists(filters("property", PROPERTY_KEYS), max_size=1))
    body = {"name": name, "where": where} | draw(_window(required=True))
    absent = draw(
        st.sampled_from(
            [
                {"not_performed": body},
                {"not": {"event": body}},
                {"not": {"event": body | {"op": "gt", "count": 0}}},
                {"event": body | {"op": "eq", "count": 0}},
                {"event": body | {"op": "lt", "count": 1}},
                {"event": body | {"op": "lte", "count": 0}},
            ]
        )
    )
    items = [performed, absent, *draw(st.lists(leaves(), max_size=2))]
    node: dict[str, Any] = {"and": draw(st.permutations(items))}
    wrap = draw(st.sampled_from(["none", "not", "or"]))
    if wrap == "not":
        return {"not": node}
    if wrap == "or":
        return {"or": [node, draw(leaves())]}
    return node
