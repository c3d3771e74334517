"""Write a reference data set into any engine (SQLite, PostgreSQL, DuckDB) under a fresh
workspace, so the SQL and the reference evaluator read the very same rows."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import Connection, insert

from shopkeeper.auth.models import Workspace
from shopkeeper.segments.compiler import customers, events, memberships, scores, subscriptions
from shopkeeper.segments.reference import RefCustomer, RefData, RefEvent, RefSubscription
from tests.segments.strategies import NOW

_counter = itertools.count()


def prefixed(data: RefData, p: str) -> RefData:
    """The same data with every customer id made unique to one workspace."""
    return RefData(
        [RefCustomer(p + c.id, c.traits, p + c.merged_into if c.merged_into else None) for c in data.customers],
        [RefEvent(p + e.customer_id, e.name, e.timestamp, e.properties) for e in data.events],
        [
            RefSubscription(p + s.customer_id, s.channel, s.topic, s.status, s.updated_at, p + s.id)
            for s in data.subscriptions
        ],
        {sid: {p + c for c in ids} for sid, ids in data.members.items()},
        {(p + c, name): v for (c, name), v in data.scores.items()},
    )


def load(conn: Connection, data: RefData, *, with_workspace: bool = True) -> tuple[str, RefData]:
    n = next(_counter)
    ws = f"ws_eq{n}_{id(data)}"[:40]
    data = prefixed(data, f"{n}-")
    if with_workspace:
        conn.execute(
            insert(Workspace.__table__),  # type: ignore[arg-type]
            [
                {
                    "id": ws,
                    "name": ws,
                    "slug": ws,
                    "settings": {},
                    "identity_epoch": 0,
                    "signing_secret": "s",
                    "hashing_secret": "h",
                    "created_at": NOW,
                }
            ],
        )
    conn.execute(
        insert(customers),
        [
            {
                "id": c.id,
                "workspace_id": ws,
                "traits": c.traits or {},
                "created_at": NOW,
                "updated_at": NOW,
                "merged_into": c.merged_into,
                "timezone": None,
                "locale": None,
            }
            for c in data.customers
        ],
    )
    rows: list[dict[str, Any]] = [
        {
            "id": f"{ws}-e{i}",
            "workspace_id": ws,
            "customer_id": e.customer_id,
            "message_id": f"{ws}-m{i}",
            "type": "track",
            "name": e.name,
            "timestamp": e.timestamp,
            "received_at": NOW,
            "properties": e.properties,
        }
        for i, e in enumerate(data.events)
    ]
    if rows:
        conn.execute(insert(events), rows)
    if data.subscriptions:
        conn.execute(
            insert(subscriptions),
            [
                {
                    "id": s.id,
                    "workspace_id": ws,
                    "customer_id": s.customer_id,
                    "channel": s.channel,
                    "topic": s.topic,
                    "status": s.status,
                    "source": "api",
                    "consent_event_id": "cev",
                    "updated_at": s.updated_at,
                }
                for i, s in enumerate(data.subscriptions)
            ],
        )
    member_rows = []
    for segment_id, ids in data.members.items():
        for c in data.customers:
            if c.id in ids:
                member_rows.append(
                    {
                        "segment_id": segment_id,
                        "customer_id": c.id,
                        "workspace_id": ws,
                        "entered_at": NOW,
                        "exited_at": None,
                        "version": 1,
                    }
                )
            elif hash((segment_id, c.id)) % 3 == 0:  # some former members, who must not count
                member_rows.append(
                    {
                        "segment_id": segment_id,
                        "customer_id": c.id,
                        "workspace_id": ws,
                        "entered_at": NOW,
                        "exited_at": NOW,
                        "version": 1,
                    }
                )
    if member_rows:
        conn.execute(insert(memberships), member_rows)
    if data.scores:
        conn.execute(
            insert(scores),
            [
                {"customer_id": c, "name": name, "workspace_id": ws, "value": value, "label": label, "computed_at": NOW}
                for (c, name), (value, label) in data.scores.items()
            ],
        )
    return ws, data
