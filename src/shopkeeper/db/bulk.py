"""Bulk insert that skips rows already present: the one dialect-specific write on the hot path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_duplicates(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], conflict_columns: Sequence[str]
) -> None:
    """INSERT … ON CONFLICT (cols) DO NOTHING, as one executemany (SQLite) or multi-row VALUES
    statements (PostgreSQL, through SQLAlchemy's insertmanyvalues)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    else:  # pragma: no cover - only the two engines above are supported as stores of record
        raise NotImplementedError(dialect)
    session.connection().execute(stmt, list(rows))
