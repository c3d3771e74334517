"""Synthetic shop data for `bench segments`, generated inside each engine in SQL.

A million customers and ten million events cannot go through Python in reasonable time, so
each engine makes them itself (SQLite: a recursive CTE; PostgreSQL: generate_series; DuckDB:
range). Every value comes from the same integer hash of the row number, so the three engines
hold identical data — and must find identical members, which the bench checks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, text

EVENT_NAMES = (  # share of events, per 100
    (55, "Page Viewed"),
    (75, "Product Viewed"),
    (87, "Added to Cart"),
    (95, "Order Completed"),
    (100, "Email Opened"),
)
YEAR_SECONDS = 365 * 86400
CHUNK = 1_000_000


_P = 2147483647  # 2³¹ − 1: a square of anything below it fits in a signed 64-bit integer


def _h(i: str, salt: int) -> str:
    """A portable integer hash in [0, 2³¹−1): an affine step then two squarings modulo a prime.

    The squarings matter: with an affine hash alone, two salts differ by a constant, so a
    customer's events would all share one name and fall at evenly spaced times.
    """
    x = f"(({i} * 48271 + {salt * 7919 + 12345}) % {_P})"
    x = f"(({x} * {x} + {salt}) % {_P})"
    return f"(({x} * {x} + 1) % {_P})"


def _pad(dialect: str, prefix: str, expr: str) -> str:
    if dialect == "sqlite":
        return f"'{prefix}' || substr('00000000000000000000000000000000' || ({expr}), -32, 32)"
    return f"'{prefix}' || lpad(CAST({expr} AS VARCHAR), 32, '0')"


def _series(dialect: str, start: int, stop: int) -> str:
    """A FROM clause yielding i in [start, stop)."""
    if dialect == "sqlite":
        return (
            f"(WITH RECURSIVE seq(i) AS (SELECT {start} UNION ALL SELECT i + 1 FROM seq WHERE i < {stop - 1}) "
            "SELECT i FROM seq) AS s"
        )
    if dialect == "postgresql":
        return f"generate_series({start}::bigint, {stop - 1}::bigint) AS s(i)"
    return f"range({start}, {stop}) AS s(i)"


def _json(dialect: str, *pairs: tuple[str, str]) -> str:
    fn = "jsonb_build_object" if dialect == "postgresql" else "json_object"
    args = ", ".join(f"'{k}', {v}" for k, v in pairs)
    return f"{fn}({args})"


def _time(dialect: str, now: datetime, seconds_ago: str) -> str:
    epoch = int(now.timestamp())
    if dialect == "sqlite":
        return f"strftime('%Y-%m-%d %H:%M:%S.000000', {epoch} - ({seconds_ago}), 'unixepoch')"
    if dialect == "postgresql":
        return f"to_timestamp({epoch} - ({seconds_ago}))"
    return f"to_timestamp({epoch} - ({seconds_ago}))"


def _date_text(dialect: str, now: datetime, days_ago: str) -> str:
    epoch = int(now.timestamp())
    if dialect == "sqlite":
        return f"strftime('%Y-%m-%dT00:00:00Z', {epoch} - ({days_ago}) * 86400, 'unixepoch')"
    if dialect == "postgresql":
        return f"to_char(to_timestamp({epoch} - ({days_ago}) * 86400) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T00:00:00Z\"')"
    return f"strftime(to_timestamp({epoch} - ({days_ago}) * 86400), '%Y-%m-%dT00:00:00Z')"


def customer_id_sql(dialect: str, expr: str) -> str:
    return _pad(dialect, "cus_", expr)


def generate(
    conn: Connection,
    dialect: str,
    workspace_id: str,
    customers: int,
    events: int,
    now: datetime,
    advance: Callable[[str, int], None] = lambda _what, _n: None,
) -> None:
    """Insert `customers` customers, `events` events and their subscriptions."""
    ws = f"'{workspace_id}'"
    now_time = _time(dialect, now, "0")
    for start in range(0, customers, CHUNK):
        stop = min(customers, start + CHUNK)
        plan = f"CASE {_h('i', 11)} % 10 WHEN 0 THEN 'enterprise' WHEN 1 THEN 'pro' WHEN 2 THEN 'pro' ELSE 'free' END"
        countries = " ".join(f"WHEN {n} THEN '{c}'" for n, c in enumerate(("FR", "DE", "NL", "GB", "ES", "IT")))
        country = f"CASE {_h('i', 12)} % 8 {countries} ELSE 'US' END"
        traits = _json(
            dialect,
            ("plan", plan),
            ("country", country),
            ("age", f"18 + {_h('i', 13)} % 60"),
            ("signed_up_at", _date_text(dialect, now, f"{_h('i', 14)} % 1000")),
        )
        conn.execute(
            text(
                "INSERT INTO customers "
                "(id, workspace_id, traits, timezone, locale, created_at, updated_at, merged_into) "
                f"SELECT {customer_id_sql(dialect, 'i')}, {ws}, {traits}, NULL, NULL, {now_time}, {now_time}, NULL "
                f"FROM {_series(dialect, start, stop)}"
            )
        )
        conn.execute(
            text(
                "INSERT INTO subscriptions (id, workspace_id, customer_id, channel, topic, status, source, "
                "consent_event_id, updated_at) "
                f"SELECT {_pad(dialect, 'sub_', 'i')}, {ws}, {customer_id_sql(dialect, 'i')}, 'email', "
                f"CASE WHEN {_h('i', 15)} % 20 = 0 THEN '*' ELSE 'newsletter' END, "
                f"CASE WHEN {_h('i', 15)} % 20 = 0 THEN 'opted_out' ELSE 'opted_in' END, 'import', 'bench', {now_time} "
                f"FROM {_series(dialect, start, stop)} WHERE {_h('i', 15)} % 10 < 4"
            )
        )
        advance("customers", stop - start)
    roll = f"{_h('i', 2)} % 100"
    name = "CASE " + " ".join(f"WHEN {roll} < {edge} THEN '{n}'" for edge, n in EVENT_NAMES) + " END"
    total = (
        f"CAST({_h('i', 4)} % 30000 AS DOUBLE PRECISION) / 100"
        if dialect == "postgresql"
        else f"{_h('i', 4)} % 30000 / 100.0"
    )
    path = f"'/p/' || ({_h('i', 5)} % 50)"
    order_props, page_props = _json(dialect, ("total", total)), _json(dialect, ("path", path))
    properties = f"CASE WHEN {roll} >= 87 AND {roll} < 95 THEN {order_props} ELSE {page_props} END"
    when = _time(dialect, now, f"{_h('i', 3)} % {YEAR_SECONDS}")
    owner = customer_id_sql(dialect, f"{_h('i', 1)} % {customers}")
    for start in range(0, events, CHUNK):
        stop = min(events, start + CHUNK)
        conn.execute(
            text(
                "INSERT INTO events (id, workspace_id, customer_id, message_id, type, name, user_id, "
                "anonymous_id, group_id, previous_id, timestamp, original_timestamp, sent_at, received_at, "
                "properties, traits, context) "
                f"SELECT {_pad(dialect, 'evt_', 'i')}, {ws}, {owner}, "
                f"'m' || i, 'track', {name}, NULL, NULL, NULL, NULL, {when}, NULL, NULL, {when}, "
                f"{properties}, NULL, NULL "
                f"FROM {_series(dialect, start, stop)}"
            )
        )
        advance("events", stop - start)
