"""Writing a workspace's scores: replace one set of names in one statement per name, in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Double, Integer, MetaData, String, Table, delete, insert, literal, text, update
from sqlalchemy.orm import Session

from shopkeeper.ids import new_id
from shopkeeper.segments.models import CustomerScore, ScoreRun, Segment

scores: Table = CustomerScore.__table__  # type: ignore[assignment]
# The score each purchase-based model reads, by default (Segment's e-commerce spec).
PURCHASE_EVENT = "Order Completed"
AMOUNT_PROPERTY = "total"


def replace(session: Session, workspace_id: str, names: Sequence[str]) -> None:
    session.execute(delete(scores).where(scores.c.workspace_id == workspace_id, scores.c.name.in_(list(names))))


def insert_from(session: Session, select_customer_value_label: Any, params: dict[str, Any] | None = None) -> None:
    """Insert (customer_id, name, workspace_id, value, label, computed_at) rows from a SELECT."""
    columns = ["customer_id", "name", "workspace_id", "value", "label", "computed_at"]
    session.execute(insert(scores).from_select(columns, select_customer_value_label), params or {})


def record_run(
    session: Session,
    workspace_id: str,
    kind: str,
    params: dict[str, Any],
    stats: dict[str, Any],
    customers: int,
    now: datetime,
) -> ScoreRun:
    run = ScoreRun(
        id=new_id("scr"),
        workspace_id=workspace_id,
        kind=kind,
        params=params,
        stats=stats,
        customers=customers,
        computed_at=now,
    )
    session.add(run)
    # Segments that read scores see new values: rebuild them soon (the schedule does it).
    session.execute(
        update(Segment)
        .where(Segment.workspace_id == workspace_id, Segment.archived_at.is_(None))
        .values(refresh_due_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return run


def const(value: Any) -> Any:
    return literal(value)


def scratch(session: Session, name: str, **columns: str) -> Table:
    """An empty temporary table (customer_id plus `columns`, SQL types) for this transaction."""
    session.execute(text(f"DROP TABLE IF EXISTS {name}"))
    spec = ", ".join(f"{c} {t}" for c, t in columns.items())
    session.execute(text(f"CREATE TEMPORARY TABLE {name} (customer_id VARCHAR(40) PRIMARY KEY, {spec})"))
    kinds: dict[str, Any] = {"INTEGER": Integer(), "DOUBLE PRECISION": Double(), "VARCHAR(40)": String(40)}
    return Table(
        name, MetaData(), Column("customer_id", String(40)), *(Column(c, kinds[t]) for c, t in columns.items())
    )


def drop_scratch(session: Session, table: Table) -> None:
    session.execute(text(f"DROP TABLE IF EXISTS {table.name}"))


_SCORE_COLUMNS = ("customer_id", "name", "workspace_id", "value", "label", "computed_at")


def insert_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Many score rows at once. PostgreSQL: one `unnest` of typed arrays (db.bulk sends a float
    column as text[], which PostgreSQL refuses for double precision); elsewhere as events are."""
    from shopkeeper.segments.membership import write_rows

    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        write_rows(session, scores, rows, ("customer_id", "name"))
        return
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    columns = [[row[c] for row in rows] for c in _SCORE_COLUMNS]
    cursor = raw.cursor()
    try:
        cursor.execute(
            "INSERT INTO customer_scores (customer_id, name, workspace_id, value, label, computed_at) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[], %s::text[], %s::timestamptz[])",
            columns,
        )
    finally:
        cursor.close()
