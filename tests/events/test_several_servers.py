"""SPEC §10: several server processes share one store. Two servers taking events for the same
new people at the same moment must neither fail requests nor create a person twice."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import httpx
from sqlalchemy import func, select

from shopkeeper.customers.models import Customer, Identity
from shopkeeper.db.session import Database
from shopkeeper.events.models import Event
from tests.conftest import WorkspaceKeys, start_server


def test_two_servers_resolving_the_same_new_people_concurrently(
    db_url: str, db: Database, workspace: WorkspaceKeys, tmp_path: Path
) -> None:
    servers = [start_server(db_url, tmp_path / f"server{i}.log") for i in range(2)]
    failures: list[str] = []
    senders, rounds, per_round = 4, 8, 80
    people = [f"r{r}-person-{n}" for r in range(rounds) for n in range(per_round)]
    start_together = threading.Barrier(senders)

    def sender(index: int) -> None:
        with httpx.Client(base_url=servers[index % 2].url, auth=(workspace.write_key, ""), timeout=30) as http:
            for round_ in range(rounds):
                batch = []
                # Every round brings people nobody has seen, sent by all senders to both servers
                # at the same instant: each new identifier is raced for.
                for person in people[round_ * per_round : (round_ + 1) * per_round]:
                    batch.append(
                        {
                            "type": "track",
                            "anonymousId": f"anon-{person}",
                            "event": "Seen",
                            "messageId": uuid.uuid4().hex,
                        }
                    )
                    batch.append(
                        {
                            "type": "identify",
                            "userId": person,
                            "anonymousId": f"anon-{person}",
                            "traits": {"email": f"{person}@example.com"},
                            "messageId": uuid.uuid4().hex,
                        }
                    )
                start_together.wait(timeout=60)
                r = http.post("/v1/batch", json={"batch": batch})
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")

    try:
        threads = [threading.Thread(target=sender, args=(i,)) for i in range(senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for server in servers:
            server.stop()

    assert failures == []
    with db.session() as s:
        events = s.scalar(select(func.count()).select_from(Event).where(Event.workspace_id == workspace.id))
        live = s.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.workspace_id == workspace.id, Customer.merged_into.is_(None))
        )
        per_user = dict(
            s.execute(
                select(Identity.value, Identity.customer_id).where(
                    Identity.workspace_id == workspace.id, Identity.kind == "user_id"
                )
            ).all()
        )
        anon_owner = dict(
            s.execute(
                select(Identity.value, Identity.customer_id).where(
                    Identity.workspace_id == workspace.id, Identity.kind == "anonymous_id"
                )
            ).all()
        )
    assert events == senders * len(people) * 2
    assert live == len(people)
    assert set(per_user) == set(people)
    assert all(anon_owner[f"anon-{p}"] == per_user[p] for p in people)
