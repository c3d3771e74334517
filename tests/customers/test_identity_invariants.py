"""Property test: whatever order identifiers arrive in, the identity graph stays consistent."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.auth.service import create_workspace
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.customers.models import Customer, Identity
from shopkeeper.db.session import Database
from shopkeeper.events.models import Event
from tests.helpers import ingest, message

USER_IDS = [None, "u1", "u2", "u3"]
ANON_IDS = [None, "a1", "a2", "a3", "a4"]
EMAILS = [None, "p@example.com", "q@example.com", "r@example.com"]


@st.composite
def an_event(draw: st.DrawFn) -> dict[str, Any]:
    user_id = draw(st.sampled_from(USER_IDS))
    anon = draw(st.sampled_from(ANON_IDS if user_id else ANON_IDS[1:]))
    fields: dict[str, Any] = {}
    if user_id:
        fields["userId"] = user_id
    if anon:
        fields["anonymousId"] = anon
    email = draw(st.sampled_from(EMAILS))
    if email:
        return message("identify", traits={"email": email}, **fields)
    return message("track", event="Tick", **fields)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(an_event(), min_size=1, max_size=6), min_size=1, max_size=6))
def test_identity_graph_invariants(db: Database, batches: list[list[dict[str, Any]]]) -> None:
    with db.session(write=True) as s:
        ws, _, _ = create_workspace(s, f"prop {uuid.uuid4().hex[:8]}", clock.now())
    cache = IdentityCache(100)
    for batch in batches:
        ingest(db, ws.id, batch, cache=cache)

    with db.session() as s:
        customers = {c.id: c for c in s.scalars(select(Customer).where(Customer.workspace_id == ws.id))}
        identities = list(s.scalars(select(Identity).where(Identity.workspace_id == ws.id)))
        events = list(s.scalars(select(Event).where(Event.workspace_id == ws.id)))

    live = {cid for cid, c in customers.items() if c.merged_into is None}
    # Every identifier points at a live profile, and merged-away profiles point at live ones.
    assert all(i.customer_id in live for i in identities)
    assert all(c.merged_into in live for c in customers.values() if c.merged_into is not None)
    # Merge protection: no profile holds two user ids.
    user_ids: dict[str, set[str]] = defaultdict(set)
    for i in identities:
        if i.kind == "user_id":
            user_ids[i.customer_id].add(i.value)
    assert all(len(v) == 1 for v in user_ids.values())
    # Every event sits on a live profile, and all events of one userId on the same one.
    assert all(e.customer_id in live for e in events)
    owner_of_uid = {next(iter(v)): cid for cid, v in user_ids.items()}
    for e in events:
        if e.user_id is not None:
            assert e.customer_id == owner_of_uid[e.user_id]
    # Nothing was lost: one row per message.
    assert len(events) == sum(len(b) for b in batches)
