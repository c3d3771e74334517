"""SPEC §3: the Segment HTTP Tracking API — auth, validation, limits, batches, idempotency, skew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from shopkeeper.db.session import Database
from shopkeeper.events.models import Event
from tests.conftest import WorkspaceKeys


def _count(db: Database, **where: str) -> int:
    with db.session() as s:
        query = select(func.count()).select_from(Event)
        for column, value in where.items():
            query = query.where(getattr(Event, column) == value)
        return int(s.scalar(query) or 0)


def test_track_with_write_key_as_basic_auth_user_is_stored(
    app_client: httpx.Client, db: Database, workspace: WorkspaceKeys
) -> None:
    r = app_client.post(
        "/v1/track",
        auth=(workspace.write_key, ""),
        json={"userId": "u-1", "event": "Order Completed", "properties": {"total": 42}},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True}
    with db.session() as s:
        event = s.scalars(select(Event)).one()
    assert (event.type, event.name, event.user_id, event.workspace_id) == ("track", "Order Completed", "u-1", workspace.id)
    assert event.properties == {"total": 42}
