"""The server's database upkeep: planner statistics follow the data, SQLite's WAL is checkpointed."""

from __future__ import annotations

import time
from pathlib import Path

from shopkeeper.db.maintenance import Maintenance
from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.helpers import ingest, message


def test_tables_that_grew_are_analysed_once(db: Database, workspace: WorkspaceKeys) -> None:
    maintenance = Maintenance(db)
    maintenance.refresh_statistics()  # whatever the fixtures left
    ingest(db, workspace.id, [message("track", anonymousId=f"a{i % 300}", event="E") for i in range(3000)])

    analysed: list[str] = []
    deadline = time.monotonic() + 10  # PostgreSQL publishes table statistics within about a second
    while "events" not in analysed and time.monotonic() < deadline:
        analysed += maintenance.refresh_statistics()
        time.sleep(0.2)
    assert "events" in analysed
    assert "events" not in maintenance.refresh_statistics()  # nothing changed since


def test_sqlite_wal_is_checkpointed_by_the_server_not_by_commits(tmp_path: Path) -> None:
    from shopkeeper.db.migrate import upgrade

    url = f"sqlite:///{tmp_path}/wal.db"
    upgrade(url)
    db = Database(url, background_checkpoint=True)
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        maintenance = Maintenance(db)
        result = maintenance.checkpoint("PASSIVE")
        assert result is not None and result[0] == 0
    finally:
        db.dispose()
