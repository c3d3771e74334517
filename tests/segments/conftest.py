"""Fixtures for segment tests: an SQLAlchemy engine on each of the three engines."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from shopkeeper.db.session import Database
from shopkeeper.segments.engines import create_duckdb_schema, duckdb_engine
from tests.conftest import _truncate_all


@pytest.fixture(params=["sqlite", "postgresql", "duckdb"])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """SQLite and PostgreSQL migrated by Alembic (as the `db` fixture does); DuckDB in memory,
    its schema made from the same metadata."""
    if request.param == "duckdb":
        engine = duckdb_engine()
        create_duckdb_schema(engine)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "shopkeeper.db"
        shutil.copyfile(template, target)
        url = f"sqlite:///{target}"
    else:
        url = request.getfixturevalue("pg_database")
        _truncate_all(url)
    database = Database(url)
    try:
        yield database.engine
    finally:
        database.dispose()
