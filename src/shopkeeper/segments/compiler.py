"""Compile a condition tree to one SQLAlchemy Core query that runs where the data lives.

`SegmentQuery` is built once per definition and run many times: the workspace, the customers
to restrict to (real-time evaluation) and every time cut-off are bound parameters, computed
from the injectable clock at execution — never `now()` in SQL, so tests can move time and the
statement text (and the engine's plan cache) stays the same.

Shapes, chosen so the engines use their indexes:
- an event count is `customers.id IN (SELECT customer_id FROM events WHERE name = … AND
  timestamp >= :cut … GROUP BY customer_id HAVING count(*) >= n)` (a plain semi-join when
  n is 1), read through `ix_events_name_time_customer`; counts that include zero ("fewer than 3
  times", "has not performed") are the same subquery under NOT IN;
- "performed X (n times) but not since Y" — an `and` holding an event count ≥ n (or = n) and
  "none since Y" of the same event with the same `where` — is one grouped pass over X's events,
  `GROUP BY customer_id HAVING count(*) >= n AND max(timestamp) < :y`, read in customer order
  through `ix_events_name_customer_time`, instead of a semi-join and an anti-join that each read
  (and hash, or sort) the events (see `_lapse`);
- restricted to some customers, every subquery also filters `customer_id IN (:cids)`, which
  turns each into a few lookups on `ix_events_customer_time`;
- consent reads `subscriptions` through the profiles merged into each customer;
- another segment and scores are read from their stored tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Float,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    false,
    func,
    not_,
    or_,
    select,
    true,
)

from shopkeeper.consent.models import ALL_TOPICS, Subscription
from shopkeeper.customers.models import Customer
from shopkeeper.db.base import UTCDateTime
from shopkeeper.events.models import Event
from shopkeeper.segments.definition import (
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
from shopkeeper.segments.dialect import (
    by_customer,
    by_name_customer,
    group_key,
    json_array_has,
    json_bool,
    json_number,
    json_present,
    json_string,
    text_contains,
)
from shopkeeper.segments.models import CustomerScore, SegmentMembership

customers: Table = Customer.__table__  # type: ignore[assignment]
events: Table = Event.__table__  # type: ignore[assignment]
subscriptions: Table = Subscription.__table__  # type: ignore[assignment]
memberships: Table = SegmentMembership.__table__  # type: ignore[assignment]
scores: Table = CustomerScore.__table__  # type: ignore[assignment]


def iso_text(when: datetime) -> str:
    """How a time is compared with a date trait: ISO 8601 text in UTC, to the second."""
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _strict(expr: ColumnElement[Any]) -> ColumnElement[bool]:
    """TRUE or FALSE, never NULL: a missing trait must not make NOT(...) unknown."""
    return func.coalesce(expr, false())


class SegmentQuery:
    """The members of a definition as one SELECT of customer ids, with its parameters."""

    def __init__(
        self,
        node: Node,
        workspace_id: str,
        segment_ids: Mapping[str, str] | None = None,
        *,
        restricted: bool = False,
    ) -> None:
        self.workspace_id = workspace_id
        self.segment_ids = dict(segment_ids or {})
        self.restricted = restricted
        self._ws = bindparam("ws", type_=String())
        self._cids = bindparam("cids", expanding=True, type_=String())
        # bind name → how far before now (relative windows), as a time or as date text
        self._times: dict[str, timedelta] = {}
        self._texts: dict[str, timedelta] = {}
        condition = self.condition(node)
        query = select(customers.c.id).where(
            customers.c.workspace_id == self._ws, customers.c.merged_into.is_(None), condition
        )
        if restricted:
            query = query.where(customers.c.id.in_(self._cids))
        self.statement: Select[Any] = query

    # -- parameters --------------------------------------------------------------------------
    def params(self, now: datetime, customer_ids: Sequence[str] | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {"ws": self.workspace_id}
        for name, delta in self._times.items():
            values[name] = now - delta
        for name, delta in self._texts.items():
            values[name] = iso_text(now - delta)
        if self.restricted:
            if customer_ids is None:
                raise ValueError("a restricted segment query needs the customer ids")
            values["cids"] = list(customer_ids)
        return values

    def _time(self, delta: timedelta) -> BindParameter[Any]:
        name = f"t_{int(delta.total_seconds())}"
        self._times[name] = delta
        return bindparam(name, type_=UTCDateTime())

    def _text_time(self, delta: timedelta) -> BindParameter[Any]:
        name = f"s_{int(delta.total_seconds())}"
        self._texts[name] = delta
        return bindparam(name, type_=String())

    def _restrict(self, column: Any) -> ColumnElement[bool]:
        return column.in_(self._cids) if self.restricted else true()

    # -- conditions --------------------------------------------------------------------------
    def condition(self, node: Node) -> ColumnElement[bool]:
        if isinstance(node, AllOf):
            return self._all_of(node.items)
        if isinstance(node, AnyOf):
            return or_(*(self.condition(n) for n in node.items))
        if isinstance(node, Not):
            return not_(self.condition(node.item))
        if isinstance(node, TraitCondition):
            return self.filter(customers.c.traits, node.filter)
        if isinstance(node, EventCondition):
            return self._event(node)
        if isinstance(node, ConsentCondition):
            return self._consent(node)
        if isinstance(node, SegmentCondition):
            return self._segment(node)
        if isinstance(node, ScoreCondition):
            return self._score(node)
        raise TypeError(f"not a condition: {node!r}")  # pragma: no cover - the parser makes only these

    def filter(self, column: Any, f: Filter) -> ColumnElement[bool]:
        """`key op value` on a JSON column, TRUE or FALSE (never NULL)."""
        key, op, value = f.key, f.op, f.value
        if op == "exists":
            return json_present(column, key)
        if op == "eq":
            return _strict(_equals(column, key, value))
        if op == "neq":
            return not_(_strict(_equals(column, key, value)))
        if op == "in":
            return _strict(or_(*(_equals(column, key, v) for v in value)))
        if op == "contains":
            needle = bindparam(None, value, type_=String(), unique=True)
            return _strict(or_(text_contains(json_string(column, key), needle), json_array_has(column, key, value)))
        if op in ("gt", "gte", "lt", "lte"):
            return _strict(_compare(_typed(column, key, value), op, _bound(value)))
        if op == "between":
            low, high = value
            target = _typed(column, key, low)
            return _strict(and_(target >= _bound(low), target <= _bound(high)))
        text = json_string(column, key)
        cut = self._text_time(timedelta(days=value))
        if op == "within_last_days":
            return _strict(and_(text >= cut, text <= self._text_time(timedelta(0))))
        assert op == "more_than_days_ago"
        return _strict(text < cut)

    def _event(self, node: EventCondition) -> ColumnElement[bool]:
        # count op n  →  (positive, at least): membership of the customers with ≥ `at least`.
        op, n = node.op, node.count
        if op == "gt":
            op, n = "gte", n + 1
        elif op == "lt":
            op, n = "lte", n - 1
        if op == "gte":
            return true() if n <= 0 else customers.c.id.in_(self._performers(node, n, exact=False))
        if op == "lte":
            return not_(customers.c.id.in_(self._performers(node, n + 1, exact=False)))
        assert op == "eq"
        if n == 0:
            return not_(customers.c.id.in_(self._performers(node, 1, exact=False)))
        return customers.c.id.in_(self._performers(node, n, exact=True))

    def _all_of(self, items: Sequence[Node]) -> ColumnElement[bool]:
        """AND of the items, with each "performed X, but none since Y" pair as one `_lapse`."""
        conditions: list[ColumnElement[bool]] = []
        used: set[int] = set()
        for i, item in enumerate(items):
            performed = _performed(item)
            if performed is None:
                continue
            for j, other in enumerate(items):
                absent = _absent(other)
                if j != i and j not in used and absent is not None and _same_events(performed[0], absent):
                    conditions.append(self._lapse(*performed, absent))
                    used |= {i, j}
                    break
        conditions += [self.condition(item) for k, item in enumerate(items) if k not in used]
        return and_(*conditions)

    def _lapse(self, node: EventCondition, n: int, exact: bool, absent: EventCondition) -> ColumnElement[bool]:
        """Performed (count ≥ n, or = n) in `node`'s window, and not since `absent`'s start.

        Over A, the customer's events of that name and `where` in `node`'s window, this is
        "count(A) ≥ n (= n) and max(A.timestamp) < start": an event since `start` that is in A
        breaks the maximum, and one that is not in A starts before `node`'s window, so is later
        than no event of A — there is an event of A only if `start` is later than the window's
        own start, else both sides are false. One pass, no anti-join: `lapsed_buyers` at 1M
        customers read 800,000 index entries into a hash (or a sorted list) and 263,000 more
        into another, and probed both for every customer."""
        # In customer order (`ix_events_name_customer_time`), so that each customer's events
        # come together and the engines aggregate as they read instead of sorting or hashing
        # them first; a few customers' events are read by customer as everywhere else.
        e = by_customer(events) if self.restricted else by_name_customer(events)
        query = self._event_rows(node, e)
        count = func.count()
        lapsed = func.max(e.c.timestamp) < self._window_start(absent)
        if exact or n > 1:  # a group has one row at least
            lapsed = and_(count == n if exact else count >= n, lapsed)
        return customers.c.id.in_(query.group_by(e.c.customer_id).having(lapsed))

    def _window_start(self, node: EventCondition) -> BindParameter[Any]:
        if node.within_days is not None:
            return self._time(timedelta(days=node.within_days))
        assert node.since is not None
        return bindparam(None, node.since, type_=UTCDateTime(), unique=True)

    def _event_rows(self, node: EventCondition, e: Any) -> Select[Any]:
        """The customer ids of `node`'s events in `e` (events or an alias): its name, window
        and `where`."""
        query = select(e.c.customer_id).where(
            e.c.workspace_id == self._ws, e.c.name == node.name, self._restrict(e.c.customer_id)
        )
        if node.within_days is not None or node.since is not None:
            query = query.where(e.c.timestamp >= self._window_start(node))
        for f in node.where:
            query = query.where(self.filter(e.c.properties, f))
        return query

    def _performers(self, node: EventCondition, n: int, *, exact: bool) -> Select[Any]:
        # A few customers: their events by customer (ix_events_customer_time), whatever SQLite's
        # planner would guess from its statistics.
        e = by_customer(events) if self.restricted else events
        query = self._event_rows(node, e)
        if n == 1 and not exact:
            return query
        count = func.count()
        key = e.c.customer_id if self.restricted else group_key(events.c.customer_id)
        return query.group_by(key).having(count == n if exact else count >= n)

    def _consent_picked(self, channel: str, topics: Sequence[str]) -> Any:
        """Per (customer, topic): the row `consent.service.standing` picks among the profile and
        those merged into it — the latest change; at the same instant an opt-out; then the
        greatest id (so that ties are decided the same way everywhere)."""
        # A row's owner is its customer, or the survivor of a merged-away one. Merged profiles
        # are few: looked up through their partial index instead of joining every customer.
        merged = customers.alias("consent_merged")
        survivor = customers.alias("consent_survivor")
        merged_ids = select(merged.c.id).where(merged.c.workspace_id == self._ws, merged.c.merged_into.is_not(None))
        survivor_of = (
            select(survivor.c.merged_into).where(survivor.c.id == subscriptions.c.customer_id).scalar_subquery()
        )
        who = case((subscriptions.c.customer_id.in_(merged_ids), survivor_of), else_=subscriptions.c.customer_id)
        is_out = case((subscriptions.c.status == "opted_out", 1), else_=0)
        query = select(
            who.label("owner"),
            subscriptions.c.topic,
            subscriptions.c.status,
            func.row_number()
            .over(
                partition_by=(who, subscriptions.c.topic),
                order_by=(subscriptions.c.updated_at.desc(), is_out.desc(), subscriptions.c.id.desc()),
            )
            .label("rank"),
        ).where(
            subscriptions.c.workspace_id == self._ws,
            subscriptions.c.channel == channel,
            subscriptions.c.topic.in_(list(topics)),
        )
        if self.restricted:
            absorbed = customers.alias("consent_absorbed")
            query = query.where(
                or_(
                    subscriptions.c.customer_id.in_(self._cids),
                    subscriptions.c.customer_id.in_(
                        select(absorbed.c.id).where(
                            absorbed.c.workspace_id == self._ws, absorbed.c.merged_into.in_(self._cids)
                        )
                    ),
                )
            )
        return query.subquery("consent_latest")

    def _consent_is(self, channel: str, topic: str, statuses: Sequence[str]) -> ColumnElement[bool]:
        picked = self._consent_picked(channel, [topic])
        # `rank <= 1`, not `= 1` (the same rows: row_number starts at 1): PostgreSQL guesses 1/200
        # of the rows for `=` on a window result and 1/3 for `<=`. With 350,000 opt-ins at 1M
        # customers it expected 1,700, and probed each one's events in a nested loop (4 s)
        # instead of hashing them (1 s).
        chosen = select(picked.c.owner).where(picked.c.rank <= 1, picked.c.status.in_(list(statuses)))
        return customers.c.id.in_(chosen)

    def _consent(self, node: ConsentCondition) -> ColumnElement[bool]:
        ch = node.channel
        channel_out = self._consent_is(ch, ALL_TOPICS, ["opted_out"])
        if node.topic is None:
            return channel_out if node.status == "opted_out" else not_(channel_out)
        t = node.topic
        if node.status == "opted_out":
            return or_(channel_out, self._consent_is(ch, t, ["opted_out"]))
        if node.status in ("opted_in", "pending"):
            return and_(not_(channel_out), self._consent_is(ch, t, [node.status]))
        assert node.status == "unknown"
        return and_(not_(channel_out), not_(self._consent_is(ch, t, ["opted_out", "opted_in", "pending"])))

    def _segment(self, node: SegmentCondition) -> ColumnElement[bool]:
        segment_id = self.segment_ids.get(node.key)
        if segment_id is None:
            return false()
        query = select(memberships.c.customer_id).where(
            memberships.c.workspace_id == self._ws,
            memberships.c.segment_id == bindparam(None, segment_id, type_=String(), unique=True),
            memberships.c.exited_at.is_(None),
            self._restrict(memberships.c.customer_id),
        )
        return customers.c.id.in_(query)

    def _score(self, node: ScoreCondition) -> ColumnElement[bool]:
        def having(test: ColumnElement[bool]) -> ColumnElement[bool]:
            query = select(scores.c.customer_id).where(
                scores.c.workspace_id == self._ws,
                scores.c.name == node.name,
                self._restrict(scores.c.customer_id),
                test,
            )
            return customers.c.id.in_(query)

        value, label, op = scores.c.value, scores.c.label, node.op
        if op == "exists":
            return having(or_(value.is_not(None), label.is_not(None)))
        if isinstance(node.value, tuple) and op == "in":
            return having(label.in_(list(node.value)))
        if isinstance(node.value, str):
            test = label == node.value
        elif op == "between":
            low, high = node.value
            return having(and_(value >= _bound(low), value <= _bound(high)))
        elif op in ("eq", "neq"):
            test = value == _bound(node.value)
        else:
            return having(_compare(value, op, _bound(node.value)))
        return not_(having(test)) if op == "neq" else having(test)


def _performed(node: Node) -> tuple[EventCondition, int, bool] | None:
    """(event, n, exact) if the node means "performed it ≥ n times" (exact: "= n"), n ≥ 1."""
    if not isinstance(node, EventCondition):
        return None
    op, n = node.op, node.count
    if op == "gt":
        op, n = "gte", n + 1
    if op in ("gte", "eq") and n >= 1:
        return node, n, op == "eq"
    return None


def _absent(node: Node) -> EventCondition | None:
    """The event if the node means "has not performed it since a time" (a window: without one,
    "never" beside "performed" is simply false, and left as it is)."""
    if isinstance(node, Not) and isinstance(node.item, EventCondition):
        inner = node.item
        positive = (inner.op == "gte" and inner.count == 1) or (inner.op == "gt" and inner.count == 0)
        event = inner if positive else None
    elif isinstance(node, EventCondition):
        zero = (node.op, node.count) in (("eq", 0), ("lte", 0), ("lt", 1))
        event = node if zero else None
    else:
        event = None
    if event is None or (event.within_days is None and event.since is None):
        return None
    return event


def _same_events(a: EventCondition, b: EventCondition) -> bool:
    return a.name == b.name and a.where == b.where


def _bound(value: Any) -> BindParameter[Any]:
    if isinstance(value, str):
        return bindparam(None, value, type_=String(), unique=True)
    return bindparam(None, float(value), type_=Float(), unique=True)


def _typed(column: Any, key: str, value: Any) -> ColumnElement[Any]:
    """The JSON value read as the type of the value it is compared with."""
    if isinstance(value, str):
        return json_string(column, key)
    return json_number(column, key)


def _equals(column: Any, key: str, value: Any) -> ColumnElement[bool]:
    if isinstance(value, bool):
        return json_bool(column, key) == ("true" if value else "false")
    return _typed(column, key, value) == _bound(value)


def _compare(left: ColumnElement[Any], op: str, right: Any) -> ColumnElement[bool]:
    if op == "gt":
        return left > right  # type: ignore[no-any-return]
    if op == "gte":
        return left >= right  # type: ignore[no-any-return]
    if op == "lt":
        return left < right  # type: ignore[no-any-return]
    assert op == "lte"
    return left <= right  # type: ignore[no-any-return]
