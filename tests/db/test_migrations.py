"""The migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from shopkeeper.db.migrate import upgrade
from shopkeeper.db.models import metadata
from shopkeeper.db.session import Database


def test_migrated_schema_matches_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite pragmas")
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_consent_migration_gives_existing_workspaces_secrets_and_sensitive_traits(tmp_path: Path) -> None:
    """On SQLite, `workspaces` is rebuilt by copy: nothing that references it may be lost."""
    url = f"sqlite:///{tmp_path}/upgrade.db"
    upgrade(url, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("PRAGMA foreign_keys=ON"))
        conn.execute(
            text(
                "INSERT INTO workspaces (id, name, slug, settings, identity_epoch, created_at) "
                "VALUES ('ws_old', 'Old', 'old', '{}', 0, '2026-01-01 00:00:00.000000')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO api_keys (id, workspace_id, kind, name, prefix, key_hash, created_at) "
                "VALUES ('key_1', 'ws_old', 'secret', 'k', 'sk_x', 'hash', '2026-01-01 00:00:00.000000')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO customers (id, workspace_id, traits, created_at, updated_at) "
                "VALUES ('cus_1', 'ws_old', '{}', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')"
            )
        )
    upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM api_keys")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM customers")).scalar() == 1
        signing, hashing = conn.execute(
            text("SELECT signing_secret, hashing_secret FROM workspaces WHERE id = 'ws_old'")
        ).one()
        traits = {r[0] for r in conn.execute(text("SELECT name FROM sensitive_traits WHERE workspace_id = 'ws_old'"))}
    engine.dispose()
    assert len(signing) == 64 and len(hashing) == 64 and signing != hashing
    assert {"health", "religion", "precise_location"} <= traits
