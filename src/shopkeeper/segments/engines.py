"""DuckDB as an analytical engine for segments: the same tables, made from the same metadata.

PostgreSQL and SQLite get their schema from the migrations; DuckDB (an analytical copy, for
heavy segment queries and the bench) gets it here. Its JSON functions are built in (nothing is
installed at run time). Foreign keys are left out (DuckDB cannot cascade), and for bulk loads
so are keys and unique constraints, which DuckDB checks row by row through ART indexes.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Column, Engine, MetaData, Table, create_engine
from sqlalchemy.schema import CreateTable

from shopkeeper.db.models import metadata

SEGMENT_TABLES = (
    "workspaces",
    "customers",
    "events",
    "subscriptions",
    "segments",
    "segment_versions",
    "segment_memberships",
    "customer_scores",
    "score_runs",
    "sensitive_traits",
    "sensitive_allowances",
)


def duckdb_engine(path: str = ":memory:") -> Engine:
    return create_engine(f"duckdb:///{path}")


def create_duckdb_schema(
    engine: Engine, tables: Iterable[str] = SEGMENT_TABLES, *, keyless: Iterable[str] = ()
) -> None:
    """Create the tables; those in `keyless` without keys or unique constraints (bulk loads)."""
    wanted = set(tables)
    bare_ones = set(keyless)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if table.name not in wanted:
                continue
            if table.name not in bare_ones:
                conn.execute(CreateTable(table, include_foreign_key_constraints=[]))
            else:
                bare = Table(
                    table.name, MetaData(), *(Column(c.name, c.type, nullable=c.nullable) for c in table.columns)
                )
                conn.execute(CreateTable(bare))
