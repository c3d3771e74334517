"""A consent condition means what the consent domain means: for every sequence of changes made
through `consent.service.set_status`, the segment's status equals `standing()`'s effective one
(the channel-wide opt-out first, then the topic's status)."""

from __future__ import annotations

import random
from datetime import timedelta

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.consent import service
from shopkeeper.consent.models import ALL_TOPICS
from shopkeeper.consent.service import Proof
from shopkeeper.db.session import Database
from shopkeeper.segments.compiler import SegmentQuery
from shopkeeper.segments.definition import ConsentCondition
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, make_topic


def test_consent_conditions_agree_with_standing(
    frozen_clock: FrozenClock, db: Database, workspace: WorkspaceKeys
) -> None:
    make_topic(db, workspace.id, "news")
    people = [make_customer(db, workspace.id, f"u{n}", email=f"u{n}@example.com") for n in range(4)]
    rng = random.Random(5)
    for _ in range(40):
        who = rng.choice(people)
        topic = rng.choice(["news", ALL_TOPICS])
        status = rng.choice(
            ["opted_out", "unknown"] if topic == ALL_TOPICS else ["opted_in", "opted_out", "pending", "unknown"]
        )
        with db.session(write=True) as session:
            service.set_status(session, workspace.id, who, "email", topic, status, Proof("api"), clock.now())
        frozen_clock.advance(timedelta(minutes=rng.choice([0, 1])))

        with db.session() as session:
            for topic_key in ("news", None):
                statuses = ["opted_in", "opted_out", "pending", "unknown"] if topic_key else ["opted_out", "unknown"]
                for status in statuses:
                    query = SegmentQuery(ConsentCondition("email", topic_key, status), workspace.id)
                    members = set(session.scalars(query.statement, query.params(clock.now())))
                    for person in people:
                        s = service.standing(session, workspace.id, [person], "email", topic_key)
                        effective = (
                            "opted_out" if s.channel_wide == "opted_out" else (s.status if topic_key else "unknown")
                        )
                        assert (person in members) == (effective == status), (person, topic_key, status, s)
