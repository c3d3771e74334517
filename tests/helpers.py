"""Small builders the tests share: Segment-shaped payloads and a direct path into `store`."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from shopkeeper import clock
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.db.session import Database
from shopkeeper.events.ingest import IngestBatch, StoreStats, store
from shopkeeper.events.schemas import to_inbound

_counter = itertools.count()


def message(kind: str, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"type": kind, "messageId": f"m-{next(_counter)}"}
    payload.update(fields)
    return payload


def ingest(
    db: Database,
    workspace_id: str,
    payloads: list[dict[str, Any]],
    *,
    cache: IdentityCache | None = None,
    received_at: datetime | None = None,
) -> StoreStats:
    """Validate and store payloads in one transaction, as the writer does for one group."""
    when = received_at or clock.now()
    events = [to_inbound(p, received_at=when) for p in payloads]
    with db.session(write=True) as session:
        return store(
            session, [IngestBatch(workspace_id, events)], cache if cache is not None else IdentityCache(1000), when
        )
