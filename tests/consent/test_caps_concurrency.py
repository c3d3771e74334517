"""Caps hold when several worker processes send to one customer at the same moment (SPEC §4):
each process reserves through its own connection; the customer's row lock (PostgreSQL) or the
single writer (SQLite) must let exactly `cap` of them through."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier

from sqlalchemy import func, select

from shopkeeper.consent.models import Contact
from shopkeeper.consent.policy import reserve_contact
from shopkeeper.db.session import Database
from tests.conftest import WorkspaceKeys
from tests.consent.factories import make_customer, make_topic, set_policy

AT = datetime(2026, 5, 5, 12, 0, tzinfo=UTC)


def worker(
    url: str,
    workspace_id: str,
    customer_id: str,
    attempts: int,
    barrier: Barrier,
    results: multiprocessing.Queue[str],
) -> None:
    db = Database(url)
    barrier.wait(timeout=60)
    for _ in range(attempts):
        with db.session(write=True) as s:
            decision = reserve_contact(s, workspace_id, customer_id, "email", "offers", "marketing", AT)
        results.put(decision.outcome)
    db.dispose()


def test_concurrent_worker_processes_never_exceed_a_cap(db_url: str, db: Database, workspace: WorkspaceKeys) -> None:
    customer = make_customer(db, workspace.id, "busy", email="busy@example.com")
    make_topic(db, workspace.id, "offers", lawful_basis="legitimate_interest")
    set_policy(db, workspace.id, {"caps": {"email": {"day": 3}}, "quiet_hours": None})

    ctx = multiprocessing.get_context("spawn")
    processes, attempts = 4, 5
    barrier = ctx.Barrier(processes)
    results: multiprocessing.Queue[str] = ctx.Queue()
    workers = [
        ctx.Process(target=worker, args=(db_url, workspace.id, customer, attempts, barrier, results))
        for _ in range(processes)
    ]
    for p in workers:
        p.start()
    outcomes = [results.get(timeout=120) for _ in range(processes * attempts)]
    for p in workers:
        p.join(timeout=60)
        assert p.exitcode == 0

    assert outcomes.count("allow") == 3
    assert outcomes.count("delay") == processes * attempts - 3
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Contact).where(Contact.customer_id == customer)) == 3
