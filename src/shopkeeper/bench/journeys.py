"""`shopkeeper bench journeys`: how fast an event becomes a journey's send, and how many steps a
second the executor takes (SPEC §11: event → send decision p99 < 100 ms).

Two figures:
- **decision latency**: a real `shopkeeper serve` with an active journey triggered by an event,
  whose first step is a send. `/v1/track` requests go out at a steady rate (open loop: each at
  its own moment, whether or not earlier ones were answered), and a poller watches the outbox;
  the latency of an event is from the start of its POST to the moment its send row is visible
  (committed) in the database. The poller's interval is the figure's resolution.
- **steps/s**: `runs` customers put into a journey of cheap and typical steps (split,
  update_trait, branch on a trait, send, wait), all due now, bulk-written; the journeys
  executor's rounds (`JourneyWorker.run_once`, as the worker runs them) are timed until every run
  rests at its wait. With `workers` > 1, that many worker processes share the runs.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert, select

from shopkeeper import clock
from shopkeeper.bench.report import LatencySummary
from shopkeeper.bench.server import free_port, fresh_database, provision, running_server
from shopkeeper.errors import Invalid

Phase = Callable[[str, int], Callable[[int], None]]
TRIGGER_EVENT = "Order Completed"
DECISION_JOURNEY: dict[str, Any] = {
    "trigger": {"type": "event", "event": TRIGGER_EVENT, "where": [{"property": "total", "op": "gt", "value": 0}]},
    "reentry": {"policy": "always"},
    "steps": [{"id": "receipt", "type": "send", "channel": "email", "template": "receipt"}],
}
STEPS_JOURNEY: dict[str, Any] = {
    "trigger": {"type": "api"},
    "steps": [
        {
            "id": "split",
            "type": "split",
            "variants": [{"name": "a", "weight": 50, "next": "tag"}, {"name": "b", "weight": 50, "next": "tag"}],
        },
        {"id": "tag", "type": "update_trait", "traits": {"stage": "welcomed"}},
        {
            "id": "check",
            "type": "branch",
            "cases": [{"condition": {"trait": {"key": "vip", "op": "eq", "value": True}}, "next": "hello"}],
            "else": "hello",
        },
        {"id": "hello", "type": "send", "channel": "email", "template": "receipt"},
        {"id": "later", "type": "wait", "duration": "1d"},
    ],
}
STEPS_PER_RUN = 5  # split, update_trait, branch, send, wait (its start)
TEMPLATE = {
    "email": {
        "subject": "Thank you, {{ customer.first_name | default: 'friend' }}",
        "text": "Your order of {{ data.trigger.properties.total }} is on its way.",
        "html": "<p>Your order of <b>{{ data.trigger.properties.total }}</b> is on its way.</p>",
    }
}
POLL_SECONDS = 0.002


@dataclass
class JourneyOptions:
    database: str = "sqlite"
    events: int = 1000  # /v1/track events in the latency run
    rate: float = 50.0  # events per second
    connections: int = 4
    runs: int = 100_000
    batch: int = 500
    workers: int = 1
    latency: bool = True
    steps: bool = True
    seconds: float = 0.0  # stop the steps run after this long (0: when every run rests)

    def validate(self) -> None:
        if not 1 <= self.events <= 1_000_000:
            raise Invalid("--events: between 1 and 1,000,000")
        if not 0 < self.rate <= 10_000:
            raise Invalid("--rate: more than 0, at most 10,000 events/s")
        if not 1 <= self.connections <= 64:
            raise Invalid("--connections: between 1 and 64")
        if not 1 <= self.runs <= 5_000_000:
            raise Invalid("--runs: between 1 and 5,000,000")
        if not 1 <= self.batch <= 10_000:
            raise Invalid("--batch: between 1 and 10,000")
        if not 1 <= self.workers <= 16:
            raise Invalid("--workers: between 1 and 16")
        if not 0 <= self.seconds <= 86_400:
            raise Invalid("--seconds: between 0 (no limit) and 86,400")
        if not (self.latency or self.steps):
            raise Invalid("nothing to measure: both --no-latency and --no-steps")


@dataclass
class JourneyFigures:
    engine: str
    events: int = 0
    rate: float = 0.0
    decided: int = 0  # events whose send appeared
    track_errors: int = 0
    decision: LatencySummary | None = None
    track: LatencySummary | None = None
    late_starts: int = 0  # requests that left more than 5 ms after their moment (the client fell behind)
    runs: int = 0
    batch: int = 0
    workers: int = 0
    seed_seconds: float = 0.0
    steps: int = 0
    steps_seconds: float = 0.0
    steps_per_second: float = 0.0
    rounds: int = 0
    resting: int = 0  # runs at their wait after the steps run
    seconds_limit: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        latency_ok = self.decision is None or (self.decided == self.events and self.track_errors == 0)
        # Each run goes from its first step to its wait within one round, so the steps done are
        # exactly five per resting run; and without a time limit every run must be resting.
        steps_ok = self.runs == 0 or (
            self.steps == self.resting * STEPS_PER_RUN and (self.seconds_limit > 0 or self.resting == self.runs)
        )
        return latency_ok and steps_ok

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


# -- shared set-up -------------------------------------------------------------------------------
def _customers(url: str, workspace_id: str, start: int, count: int, phase: Phase, name: str) -> list[str]:
    """Customers with an email address and a user id, written in bulk."""
    from shopkeeper.customers.models import Customer, Identity
    from shopkeeper.db.session import Database
    from shopkeeper.ids import new_id

    db = Database(url)
    now = clock.now()
    ids: list[str] = []
    advance = phase(name, count)
    try:
        for first in range(start, start + count, 5000):
            customers, identities = [], []
            for n in range(first, min(start + count, first + 5000)):
                cid = new_id("cus")
                ids.append(cid)
                email = f"c{n}@example.com"
                traits = {"first_name": f"Customer{n}", "email": email}
                customers.append(
                    {"id": cid, "workspace_id": workspace_id, "traits": traits, "created_at": now, "updated_at": now}
                )
                for kind, value in (("email", email), ("user_id", f"u{n}")):
                    identities.append(
                        {
                            "id": new_id("idn"),
                            "workspace_id": workspace_id,
                            "kind": kind,
                            "value": value,
                            "customer_id": cid,
                            "source": "bench",
                            "created_at": now,
                        }
                    )
            with db.session(write=True) as session:
                session.execute(insert(Customer), customers)
                session.execute(insert(Identity), identities)
            advance(len(customers))
    finally:
        db.dispose()
    return ids


def _journey(url: str, workspace_id: str, key: str, definition: dict[str, Any]) -> tuple[str, int]:
    from shopkeeper.db.session import Database
    from shopkeeper.journeys import service
    from shopkeeper.messaging import template_service
    from shopkeeper.messaging.models import Template

    db = Database(url)
    now = clock.now()
    try:
        with db.session(write=True) as session:
            if session.scalar(select(Template.id).where(Template.workspace_id == workspace_id)) is None:
                template_service.create_template(
                    session,
                    workspace_id,
                    key="receipt",
                    name="Receipt",
                    kind="transactional",
                    topic=None,
                    content=TEMPLATE,
                    actor="bench",
                    now=now,
                )
            journey = service.create(session, workspace_id, key=key, name=key, raw=definition, actor="bench", now=now)
            service.activate(session, journey, "bench", now)
            assert journey.live_version is not None
            return journey.id, journey.live_version
    finally:
        db.dispose()


# -- decision latency ----------------------------------------------------------------------------
def warmup(options: JourneyOptions) -> int:
    """About a second of events before the measured ones."""
    return max(10, min(1000, round(options.rate)))


class OutboxPoller(threading.Thread):
    """Notes when each event's send first becomes visible, by the `bench` number the event carried."""

    def __init__(self, url: str, workspace_id: str) -> None:
        super().__init__(name="outbox-poller", daemon=True)
        from shopkeeper.db.session import Database

        self.db = Database(url)
        self.workspace_id = workspace_id
        self.seen_ns: dict[int, int] = {}
        self._ids: set[str] = set()
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
        self.db.dispose()

    def run(self) -> None:
        from shopkeeper.messaging.models import Send

        # Ids sort by creation time: re-read a short window below the newest seen, because two
        # sends made in the same millisecond by different transactions may commit out of order.
        floor = ""
        try:
            with self.db.engine.connect() as conn:
                while not self._halt.is_set():
                    rows = conn.execute(
                        select(Send.id, Send.data).where(Send.workspace_id == self.workspace_id, Send.id > floor)
                    ).all()
                    conn.rollback()  # a fresh snapshot for the next poll
                    now_ns = time.perf_counter_ns()
                    for send_id, data in rows:
                        if send_id in self._ids:
                            continue
                        self._ids.add(send_id)
                        number = (((data or {}).get("trigger") or {}).get("properties") or {}).get("bench")
                        if isinstance(number, int):
                            self.seen_ns.setdefault(number, now_ns)
                    if rows:
                        newest = max(r[0] for r in rows)
                        prefix, stamp = newest[:4], int(newest[4:16], 16)
                        floor = max(floor, f"{prefix}{max(stamp - 200, 0):012x}")
                    time.sleep(POLL_SECONDS)
        except BaseException as exc:  # noqa: BLE001 - reported with the figures
            self.error = exc


async def _track_at_rate(
    base_url: str, write_key: str, options: JourneyOptions, advance: Callable[[int], None]
) -> tuple[dict[int, int], list[int], int, int, str | None]:
    """POST one /v1/track per event at its moment; the start of each POST (perf_counter ns)."""
    from shopkeeper.bench.client import Endpoint, RawConnection

    endpoint = Endpoint.parse(base_url, "/v1/track", write_key)
    pool: asyncio.Queue[RawConnection] = asyncio.Queue()
    for _ in range(options.connections):
        conn = RawConnection(endpoint)
        await conn.connect()
        pool.put_nowait(conn)
    started: dict[int, int] = {}
    acks: list[int] = []
    errors = 0
    late = 0
    first_error: str | None = None
    # The first second's events warm the server up (connections, caches, the journey's watch)
    # and are left out of the figures: they carry negative numbers.
    numbers = list(range(-warmup(options), options.events))
    prepared = {
        n: endpoint.wire(
            orjson.dumps(
                {
                    "userId": f"u{n + warmup(options)}",
                    "event": TRIGGER_EVENT,
                    "messageId": f"bench-{n}",
                    "properties": {"bench": n, "total": 20 + n % 80},
                }
            )
        )
        for n in numbers
    }

    async def one(n: int) -> None:
        nonlocal errors, first_error
        conn = await pool.get()
        begin = time.perf_counter_ns()
        if n >= 0:
            started[n] = begin
        try:
            status, body = await conn.post(prepared[n])
            if status != 200:
                errors += 1
                first_error = first_error or f"HTTP {status}: {body[:200]!r}"
            elif n >= 0:
                acks.append(time.perf_counter_ns() - begin)
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
        finally:
            pool.put_nowait(conn)
            advance(1)

    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.05
    tasks = []
    for i, n in enumerate(numbers):
        moment = t0 + i / options.rate
        delay = moment - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005 and n >= 0:
            late += 1
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        await pool.get_nowait().aclose()
    return started, acks, errors, late, first_error


def _decision_latency(
    url: str,
    workspace_id: str,
    write_key: str,
    options: JourneyOptions,
    phase: Phase,
    workdir: Path,
    figures: JourneyFigures,
) -> None:
    import uvloop

    _customers(url, workspace_id, 0, warmup(options) + options.events, phase, "customers (latency)")
    _journey(url, workspace_id, "bench-decision", DECISION_JOURNEY)
    port = free_port()
    count_file = workdir / "sink.count"
    sink = subprocess.Popen(
        [sys.executable, "-m", "shopkeeper.bench.smtp_sink", str(port), str(count_file), "lean"],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert sink.stdout is not None
        if sink.stdout.readline().strip() != b"ready":
            raise Invalid("the SMTP sink did not start")
        _provider(url, workspace_id, port)
        with running_server(url, workdir / "server.log") as server:
            poller = OutboxPoller(url, workspace_id)
            poller.start()
            try:
                advance = phase("events → sends", warmup(options) + options.events)
                started, acks, errors, late, first_error = uvloop.run(
                    _track_at_rate(server.url, write_key, options, advance)
                )
                deadline = time.monotonic() + 30
                while sum(n in poller.seen_ns for n in started) < len(started) - errors:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
            finally:
                poller.stop()
    finally:
        sink.terminate()
        sink.wait(timeout=30)
    if poller.error is not None:
        figures.notes.append(f"the outbox poller failed: {poller.error!r}")
    seen = poller.seen_ns
    figures.events, figures.rate = options.events, options.rate
    figures.decided = sum(1 for n in started if n in seen)
    figures.track_errors = errors
    figures.late_starts = late
    figures.decision = LatencySummary.from_ns([seen[n] - started[n] for n in started if n in seen])
    figures.track = LatencySummary.from_ns(acks)
    if first_error:
        figures.notes.append(f"first /v1/track error: {first_error}")
    if figures.decided < options.events:
        figures.notes.append(f"{options.events - figures.decided} events got no send within 30 s")


def _provider(url: str, workspace_id: str, port: int) -> None:
    from shopkeeper.db.session import Database
    from shopkeeper.messaging import provider_service

    db = Database(url)
    try:
        with db.session(write=True) as session:
            settings = {"host": "127.0.0.1", "port": port, "from_email": "shop@example.com"}
            provider_service.create_provider(
                session,
                workspace_id,
                {"channel": "email", "name": "sink", "type": "smtp", "settings": settings},
                clock.now(),
            )
    finally:
        db.dispose()


# -- steps/s -------------------------------------------------------------------------------------
def _runs(url: str, workspace_id: str, journey_id: str, version: int, customer_ids: list[str], phase: Phase) -> None:
    from shopkeeper.db.session import Database
    from shopkeeper.ids import new_id
    from shopkeeper.journeys.models import JourneyRun

    db = Database(url)
    now = clock.now()
    advance = phase("runs", len(customer_ids))
    try:
        for first in range(0, len(customer_ids), 5000):
            rows = [
                {
                    "id": new_id("run"),
                    "workspace_id": workspace_id,
                    "journey_id": journey_id,
                    "version": version,
                    "customer_id": cid,
                    "entry_key": f"bench:{cid}",
                    "state": "active",
                    "step_id": "split",
                    "next_run_at": now,
                    "wait_event": None,
                    "holdout": False,
                    "context": {"journey_key": "bench-steps", "trigger": {"api": True, "data": {}}},
                    "steps_taken": 0,
                    "entered_at": now,
                    "updated_at": now,
                }
                for cid in customer_ids[first : first + 5000]
            ]
            with db.session(write=True) as session:
                session.execute(insert(JourneyRun), rows)
            advance(len(rows))
    finally:
        db.dispose()


def _work(url: str, batch: int, seconds: float, start: Any, results: Any) -> None:
    """One worker: rounds until no run is due or `seconds` are up (here or in a spawned process)."""
    from shopkeeper.db.session import Database
    from shopkeeper.journeys.worker import JourneyWorker

    db = Database(url)
    worker = JourneyWorker(db, batch=batch)
    steps = rounds = idle = 0
    try:
        start.wait()
        stop_at = time.perf_counter() + seconds if seconds > 0 else float("inf")
        while time.perf_counter() < stop_at:
            report = worker.run_once(sweep=False)
            steps += report.steps
            rounds += 1
            if report.runs:
                idle = 0
                continue
            idle += 1  # on PostgreSQL the others may hold the last runs: look again briefly
            if idle >= 3:
                break
            time.sleep(0.01)
    finally:
        db.dispose()
    results.put((steps, rounds, time.perf_counter()))


def _analyse(url: str) -> None:
    """PostgreSQL: table statistics for the rows just bulk-written, as autovacuum would gather
    within the minute (without them the planner guesses, and may scan and sort every run)."""
    from sqlalchemy import text

    from shopkeeper.db.session import Database

    db = Database(url)
    try:
        if db.dialect == "postgresql":
            with db.session(write=True) as session:
                session.execute(text("ANALYZE journey_runs, customers, identities"))
    finally:
        db.dispose()


def _steps(url: str, workspace_id: str, options: JourneyOptions, phase: Phase, figures: JourneyFigures) -> None:
    import queue

    from sqlalchemy import func

    from shopkeeper.db.session import Database
    from shopkeeper.journeys.models import JourneyRun

    journey_id, version = _journey(url, workspace_id, "bench-steps", STEPS_JOURNEY)
    t = time.perf_counter()
    customer_ids = _customers(url, workspace_id, 10_000_000, options.runs, phase, "customers (steps)")
    _runs(url, workspace_id, journey_id, version, customer_ids, phase)
    _analyse(url)
    figures.seed_seconds = time.perf_counter() - t
    figures.runs, figures.batch, figures.workers = options.runs, options.batch, options.workers
    figures.seconds_limit = options.seconds
    results: Any
    if options.workers == 1:
        start: Any = threading.Event()
        results = queue.Queue()
        start.set()
        began = time.perf_counter()
        _work(url, options.batch, options.seconds, start, results)
        outcomes = [results.get()]
    else:
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Event()
        results = ctx.Queue()
        procs = [
            ctx.Process(target=_work, args=(url, options.batch, options.seconds, start, results))
            for _ in range(options.workers)
        ]
        for p in procs:
            p.start()
        time.sleep(3.0)  # let them import and connect; the clock starts when they all may go
        began = time.perf_counter()
        start.set()
        outcomes = [results.get(timeout=3600) for _ in procs]
        for p in procs:
            p.join(timeout=60)
    # Each worker's last round found nothing: the work ended when the last real round did.
    finished = max(at for _, _, at in outcomes)
    figures.steps = sum(s for s, _, _ in outcomes)
    figures.rounds = sum(r for _, r, _ in outcomes)
    figures.steps_seconds = finished - began
    figures.steps_per_second = figures.steps / figures.steps_seconds if figures.steps_seconds > 0 else 0.0
    db = Database(url)
    try:
        with db.session() as session:
            figures.resting = int(
                session.scalar(
                    select(func.count())
                    .select_from(JourneyRun)
                    .where(JourneyRun.journey_id == journey_id, JourneyRun.step_id == "later")
                )
                or 0
            )
    finally:
        db.dispose()


def run_journeys_bench(options: JourneyOptions, phase: Phase) -> JourneyFigures:
    options.validate()
    with (
        tempfile.TemporaryDirectory(prefix="shopkeeper-bench-journeys-") as tmp,
        fresh_database(options.database, Path(tmp)) as bench_db,
    ):
        figures = JourneyFigures(bench_db.engine)
        workspace = provision(bench_db.url)
        if options.latency:
            _decision_latency(bench_db.url, workspace.id, workspace.write_key, options, phase, Path(tmp), figures)
        if options.steps:
            _steps(bench_db.url, workspace.id, options, phase, figures)
        return figures


def render_journeys(figures: JourneyFigures, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"bench journeys — {figures.engine}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    if figures.decision is not None:
        d = figures.decision
        table.add_row(
            f"event → send decision, {figures.events:,} events at {figures.rate:,.0f}/s",
            f"p50 {d.p50_ms:.1f} ms · p90 {d.p90_ms:.1f} · p99 [bold]{d.p99_ms:.1f}[/bold] · max {d.max_ms:.1f}",
        )
        if figures.track is not None:
            t = figures.track
            table.add_row("/v1/track answered", f"p50 {t.p50_ms:.1f} ms · p99 {t.p99_ms:.1f} ms")
        table.add_row("events with a send / errors", f"{figures.decided:,} / {figures.track_errors}")
    if figures.runs:
        table.add_row(
            f"steps/s, {figures.runs:,} runs due, batch {figures.batch}, {figures.workers} worker(s)",
            f"[bold]{figures.steps_per_second:,.0f}[/bold] ({figures.steps:,} steps in {figures.steps_seconds:.1f} s)",
        )
        table.add_row("runs resting at their wait", f"{figures.resting:,} / {figures.runs:,}")
    console.print(table)
    for note in figures.notes:
        console.print(f"note: {note}")
