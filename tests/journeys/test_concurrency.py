"""SPEC §10: any number of workers run journeys side by side on PostgreSQL; each step happens once.

Several journey workers, each a thread with its own engine and connections (so each is its own
PostgreSQL session, as separate processes would be), start on the same moment and share the same
customers: every worker's fast path is handed the very same ingest batch (the worst case: more
than one process reacting to one event) while the first round also sweeps the event log, and
then they all execute the due runs together, claiming them `FOR UPDATE SKIP LOCKED`. Afterwards
every customer has exactly one run, that run went through every step exactly once (one log row
per run, step and outcome), and each send exists once under its idempotency key.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shopkeeper import clock
from shopkeeper.clock import FrozenClock
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.customers.models import Customer
from shopkeeper.db.session import Database
from shopkeeper.events.ingest import IngestBatch, store
from shopkeeper.events.schemas import to_inbound
from shopkeeper.journeys.models import JourneyRun, JourneyStep
from shopkeeper.journeys.worker import JourneyWorker, WorkerReport
from shopkeeper.messaging.models import Send
from tests.conftest import WorkspaceKeys
from tests.helpers import ingest, message
from tests.journeys.factories import make_journey
from tests.messaging.factories import make_template

CUSTOMERS = 300
WORKERS = 4
JOURNEY = {
    "trigger": {"type": "event", "event": "Signed Up"},
    "steps": [
        {"id": "split", "type": "split", "variants": [{"name": "a", "next": "tag"}, {"name": "b", "next": "tag"}]},
        {"id": "tag", "type": "update_trait", "traits": {"welcomed": "yes"}},
        {"id": "hello", "type": "send", "channel": "email", "template": "welcome"},
        {"id": "pause", "type": "wait", "duration": "1h"},
        {
            "id": "check",
            "type": "branch",
            "cases": [{"condition": {"trait": {"key": "welcomed", "op": "eq", "value": "yes"}}, "next": "nudge"}],
            "else": "end",
        },
        {"id": "nudge", "type": "send", "channel": "email", "template": "welcome"},
    ],
}
# (step, outcome) each run logs once; the split's variant is checked apart.
TRACE = {
    ("entry", "entered"),
    ("tag", "updated"),
    ("hello", "sent"),
    ("pause", "waiting"),
    ("pause", "waited"),
    ("check", "case:0"),
    ("nudge", "sent"),
    ("end", "completed"),
}
STEPS_PER_RUN = 7  # split, tag, hello, pause (start), pause (end), check, nudge


class Workers:
    """WORKERS journey workers, each on its own Database, driven in lock step by a barrier."""

    def __init__(self, url: str) -> None:
        self.dbs = [Database(url) for _ in range(WORKERS)]
        self.workers = [JourneyWorker(db, batch=20) for db in self.dbs]
        self.steps = [0] * WORKERS
        self.runs = [0] * WORKERS
        self.errors: list[BaseException] = []

    def close(self) -> None:
        for db in self.dbs:
            db.dispose()

    def due(self) -> int:
        with self.dbs[0].session() as s:
            now = clock.now()
            count = s.scalar(
                select(func.count())
                .select_from(JourneyRun)
                .where(JourneyRun.state.in_(("active", "waiting")), JourneyRun.next_run_at <= now)
            )
        return int(count or 0)

    def run_together(self, *, sweep: bool) -> None:
        """Every worker runs rounds at once until no run is due."""
        barrier = threading.Barrier(WORKERS)

        def work(i: int) -> None:
            try:
                barrier.wait(timeout=30)
                first = True
                while True:
                    report: WorkerReport = self.workers[i].run_once(sweep=sweep and first)
                    first = False
                    self.steps[i] += report.steps
                    self.runs[i] += report.runs
                    if report.runs == 0 and report.events == 0:
                        if self.due() == 0:  # not only locked by the others: nothing left
                            return
                        time.sleep(0.002)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a worker did not finish"
        assert self.errors == [], self.errors


# SQLite has one writer: there, workers take turns and this would prove nothing.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_workers_side_by_side_do_each_step_exactly_once(
    db_url: str, db: Database, workspace: WorkspaceKeys, frozen_clock: FrozenClock
) -> None:
    make_template(db, workspace.id)
    journey_id = make_journey(db, workspace.id, JOURNEY)
    ingest(
        db,
        workspace.id,
        [message("identify", userId=f"c{n}", traits={"email": f"c{n}@example.com"}) for n in range(CUSTOMERS)],
    )
    # The sign-ups stored once, and the same batch handed to every worker's fast path.
    now = frozen_clock.now()
    signups = IngestBatch(
        workspace.id,
        [to_inbound(message("track", userId=f"c{n}", event="Signed Up"), received_at=now) for n in range(CUSTOMERS)],
    )
    with db.session(write=True) as s:
        store(s, [signups], IdentityCache(1000), now)

    pool = Workers(db_url)
    try:
        for worker in pool.workers:
            worker.enqueue([signups])
        pool.run_together(sweep=True)  # entries, then each run up to its wait
        frozen_clock.advance(timedelta(hours=1, seconds=1))
        pool.run_together(sweep=False)  # the wait is over: the branch, the second send, the end
    finally:
        pool.close()

    busy = [n for n in pool.runs if n > 0]
    assert len(busy) >= 2, f"only one worker got any work: {pool.runs}"
    # Each step counted by exactly one worker: no step was done twice, none skipped.
    assert sum(pool.steps) == CUSTOMERS * STEPS_PER_RUN, pool.steps

    with db.session() as s:
        runs = list(s.scalars(select(JourneyRun).where(JourneyRun.journey_id == journey_id)))
        rows = s.execute(
            select(JourneyStep.run_id, JourneyStep.step_id, JourneyStep.outcome).where(
                JourneyStep.journey_id == journey_id
            )
        )
        logged = Counter((run_id, step, outcome) for run_id, step, outcome in rows)
        sends = list(s.scalars(select(Send).where(Send.source_ref.like(f"{journey_id}:%"))))
        traits = [c.traits for c in s.scalars(select(Customer).where(Customer.workspace_id == workspace.id))]

    # One run per customer (the batch seen by every worker and by the sweep entered each once).
    assert len(runs) == CUSTOMERS and len({r.customer_id for r in runs}) == CUSTOMERS
    assert len(traits) == CUSTOMERS and all(t.get("welcomed") == "yes" for t in traits)
    assert all(r.state == "completed" and r.exit_reason is None for r in runs), Counter(r.state for r in runs)
    # Each run logged each (step, outcome) exactly once.
    assert [key for key, n in logged.items() if n != 1] == []
    for run in runs:
        mine = {(step, outcome) for (run_id, step, outcome) in logged if run_id == run.id}
        variants = {pair for pair in mine if pair[0] == "split"}
        assert mine - variants == TRACE, (run.id, sorted(mine))
        assert len(variants) == 1 and variants <= {("split", "variant:a"), ("split", "variant:b")}
    # One send per run and send step, each under its own idempotency key, named by the run.
    keys = Counter(send.idempotency_key for send in sends)
    assert len(sends) == 2 * CUSTOMERS and all(n == 1 for n in keys.values())
    by_run = Counter((send.idempotency_key.split(":")[1], send.source_ref) for send in sends)
    assert by_run == Counter({(r.id, f"{journey_id}:{step}"): 1 for r in runs for step in ("hello", "nudge")})
