"""SPEC §11 (incremental evaluation < 1 ms per event): the real-time path must probe the touched
customers' events, whatever the planner's statistics say. Measured at 1M customers / 10M events,
reading the workspace's whole name index instead took 2.6 s for 100 customers instead of 6 ms."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from shopkeeper.bench.segments import SEGMENTS
from shopkeeper.segments.compiler import SegmentQuery
from shopkeeper.segments.validate import parse
from tests.segments.strategies import NOW

# What `ANALYZE` with `PRAGMA analysis_limit=1000` (the maintenance thread's) wrote for the bench
# shop: ~1,000 rows behind the one workspace id, which made a scan of the workspace's entries in
# the covering name index look cheaper than probing 100 customers.
SAMPLED_STATS = [
    ("events", "ix_events_name_time_customer", "8650752 1001 1001 1 1"),
    ("events", "ix_events_name_customer_time", "6804000 1001 1001 11 1"),
    ("events", "ix_events_customer_time", "10478160 1001 11 1"),
    ("customers", "ix_customers_workspace_id_desc", "935594 1001 1"),
    ("customers", "sqlite_autoindex_customers_1", "784350 1"),
]


def _plan(conn: Connection, statement: object, params: dict[str, object]) -> list[str]:
    lines: list[str] = []

    def explain(_c: object, _cursor: object, sql: str, parameters: object, _ctx: object, _many: bool) -> object:
        return "EXPLAIN QUERY PLAN " + sql, parameters

    event.listen(conn, "before_cursor_execute", explain, retval=True)
    try:
        lines = [row[3] for row in conn.execute(statement, params)]  # type: ignore[call-overload]
    finally:
        event.remove(conn, "before_cursor_execute", explain)
    return lines


def test_real_time_evaluation_reads_events_by_customer_on_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "plans.db"
    shutil.copyfile(sqlite_template, path)
    raw = sqlite3.connect(path)
    raw.execute("ANALYZE")
    raw.execute("DELETE FROM sqlite_stat1")
    raw.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", SAMPLED_STATS)
    raw.commit()
    raw.close()
    engine = create_engine(f"sqlite:///{path}")
    customers = [f"cus_{n:032d}" for n in range(100)]
    try:
        with engine.connect() as conn:
            for key in ("recent_big_buyers", "lapsed_buyers", "engaged_subscribers"):
                query = SegmentQuery(parse(SEGMENTS[key][1]), "ws_x", restricted=True)
                plan = _plan(conn, query.statement, query.params(NOW, customers))
                reads = [line for line in plan if line.startswith(("SCAN events", "SEARCH events"))]
                assert reads, (key, plan)
                assert all(
                    "USING INDEX ix_events_customer_time (workspace_id=? AND customer_id=?" in r for r in reads
                ), (
                    key,
                    plan,
                )
            # The whole workspace still reads the name index (a range of one name's events).
            whole = SegmentQuery(parse(SEGMENTS["recent_big_buyers"][1]), "ws_x")
            plan = _plan(conn, whole.statement, whole.params(NOW))
            assert any("ix_events_name_time_customer" in line for line in plan), plan
    finally:
        engine.dispose()


def test_bought_before_but_not_since_is_one_pass_over_the_purchases_in_customer_order(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """`lapsed_buyers` at 1M customers read 800,000 purchases into one list and 263,000 into
    another, then probed both for every customer; one grouped pass reads them once, in customer
    order, and aggregates as it reads (no sort) — never through `ix_events_customer_time`, the
    whole workspace in customer order (two minutes), whatever the statistics say."""
    query = SegmentQuery(parse(SEGMENTS["lapsed_buyers"][1]), "ws_x")
    sql = str(query.statement.compile(dialect=sqlite.dialect()))
    assert sql.count("FROM events") == 1 and "max(events_by_name_customer.timestamp) <" in sql, sql
    path = tmp_path / "plans.db"
    shutil.copyfile(sqlite_template, path)
    raw = sqlite3.connect(path)
    raw.execute("ANALYZE")
    raw.execute("DELETE FROM sqlite_stat1")
    raw.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", SAMPLED_STATS)
    raw.commit()
    raw.close()
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            plan = _plan(conn, query.statement, query.params(NOW))
    finally:
        engine.dispose()
    reads = [line for line in plan if line.startswith(("SCAN events", "SEARCH events"))]
    assert len(reads) == 1 and "COVERING INDEX ix_events_name_customer_time (workspace_id=? AND name=?)" in reads[0], (
        plan
    )
    assert not any("TEMP B-TREE" in line for line in plan), plan
