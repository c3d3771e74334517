"""A refresh finds who entered and who left, and the member count, on each engine — by one FULL
JOIN on PostgreSQL and DuckDB, through a temporary table on SQLite (`membership.difference`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from shopkeeper.segments import membership
from shopkeeper.segments.compiler import SegmentQuery, customers, events, memberships
from shopkeeper.segments.models import Segment
from shopkeeper.segments.reference import RefCustomer, RefData
from shopkeeper.segments.validate import parse
from tests.segments.loading import load
from tests.segments.strategies import NOW

PRO = {"trait": {"key": "plan", "op": "eq", "value": "pro"}}


def _segment(session: Session, ws: str) -> Segment:
    segment = Segment(
        id=f"seg_{ws}"[:40],
        workspace_id=ws,
        key="pro",
        name="Pro",
        description="",
        purpose="marketing",
        version=1,
        definition=PRO,
        windowed=False,
        member_count=0,
        refresh_due_at=NOW,
        refreshed_at=None,
        created_at=NOW,
        updated_at=NOW,
        created_by="test",
        updated_by="test",
        archived_at=None,
    )
    session.add(segment)
    session.flush()
    return segment


def test_a_refresh_records_entries_exits_and_the_count(any_engine: Engine) -> None:
    data = RefData([RefCustomer(f"c{i}", {"plan": "free"}) for i in range(5)] + [RefCustomer("m", {}, "c0")])
    with any_engine.begin() as conn:
        ws, data = load(conn, data, with_workspace=any_engine.dialect.name != "duckdb")
    ids = [c.id for c in data.customers]
    c, merged = ids[:5], ids[5]

    with Session(any_engine) as session:
        segment = _segment(session, ws)
        ref = membership.SegmentRef.of(segment)
        query = SegmentQuery(parse(PRO), ws)

        def plans(**wanted: str) -> None:
            for n, plan in wanted.items():
                who = merged if n == "m" else c[int(n[1:])]
                session.execute(update(customers).where(customers.c.id == who).values(traits={"plan": plan}))

        clock = [NOW]

        def refresh() -> tuple[int, set[str]]:
            clock[0] += timedelta(minutes=1)  # each change is recorded once, by its time
            result = membership.refresh(session, ref, query, clock[0])
            count, entered, exited = membership.difference(session, ref.id, query, NOW)
            assert (count, entered, exited) == (result.members, [], [])  # recorded: nothing left to do
            current = set(
                session.scalars(
                    select(memberships.c.customer_id).where(
                        memberships.c.segment_id == ref.id, memberships.c.exited_at.is_(None)
                    )
                )
            )
            assert len(current) == result.members
            return result.members, current

        # nobody: no members, no current members, still a count
        assert membership.difference(session, ref.id, query, NOW) == (0, [], [])
        assert refresh() == (0, set())

        plans(c0="pro", c1="pro", c2="pro", m="pro")  # a merged-away profile never counts
        count, entered, exited = membership.difference(session, ref.id, query, NOW)
        assert (count, sorted(entered), exited) == (3, sorted(c[:3]), [])  # in no promised order
        assert refresh() == (3, set(c[:3]))
        # nothing changed: the count comes back all the same
        assert membership.difference(session, ref.id, query, NOW) == (3, [], [])

        plans(c1="free", c3="pro")
        count, entered, exited = membership.difference(session, ref.id, query, NOW)
        assert (count, entered, exited) == (3, [c[3]], [c[1]])
        assert refresh() == (3, {c[0], c[2], c[3]})

        plans(c0="free", c2="free", c3="free")
        count, entered, exited = membership.difference(session, ref.id, query, NOW)
        assert (count, entered, sorted(exited)) == (0, [], [c[0], c[2], c[3]])
        assert refresh() == (0, set())

        plans(c1="pro")  # back again: the row is reopened
        assert refresh() == (1, {c[1]})
        session.commit()
        changes: list[Any] = list(
            session.execute(
                select(events.c.customer_id, events.c.name)
                .where(events.c.workspace_id == ws, events.c.type == "internal")
                .order_by(events.c.customer_id, events.c.message_id)
            )
        )
    # one event per change: c1 entered, left and came back
    got = {who: sorted(name for w, name in changes if w == who) for who, _ in changes}
    came_and_went = ["Segment Entered", "Segment Exited"]
    twice = sorted([*came_and_went, "Segment Entered"])
    assert got == {c[0]: came_and_went, c[1]: twice, c[2]: came_and_went, c[3]: came_and_went}
