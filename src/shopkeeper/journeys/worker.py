"""The journeys worker: one thread in `shopkeeper serve` and `shopkeeper worker` that feeds
events to journeys, fires broadcasts, executes due runs and runs the circuit breaker.

Woken by the ingest writer after each commit, so an event becomes a send decision within
milliseconds; otherwise it polls. Any number of processes may run it side by side on
PostgreSQL (the feed's cursor and each due run are locked by one process at a time).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from shopkeeper import clock
from shopkeeper.db.session import Database
from shopkeeper.events.ingest import IngestBatch
from shopkeeper.journeys import broadcast, executor, feed, monitor
from shopkeeper.journeys.models import Journey

log = logging.getLogger(__name__)
_generation = [0]


def changed() -> None:
    """A journey was created, changed or switched on or off: rebuild what the feed watches."""
    _generation[0] += 1


@dataclass
class WorkerReport:
    events: int = 0
    entered: int = 0
    exited: int = 0
    converted: int = 0
    resumed: int = 0
    broadcast: int = 0
    runs: int = 0
    steps: int = 0
    failed: int = 0
    paused: int = 0

    def add_feed(self, r: feed.FeedReport) -> None:
        self.events += r.events
        self.entered += r.entered
        self.exited += r.exited
        self.converted += r.converted
        self.resumed += r.resumed

    @property
    def busy(self) -> bool:
        return bool(self.events or self.broadcast or self.runs)


class JourneyWorker:
    def __init__(
        self,
        db: Database,
        *,
        batch: int = 500,
        poll_seconds: float = 0.5,
        sweep_seconds: float = 5.0,
        monitor_seconds: float = 30.0,
        watch_ttl: float = 3.0,
    ) -> None:
        self.db = db
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.sweep_seconds = sweep_seconds
        self.monitor_seconds = monitor_seconds
        self.watch_ttl = watch_ttl
        self._queue: deque[IngestBatch] = deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._watches: dict[str, tuple[int, feed.Watch]] = {}
        self._last_sweep = 0.0
        self._last_monitor = 0.0

    # -- fed by the ingest writer after each commit (its thread: must stay cheap) ------------
    def enqueue(self, batches: Sequence[IngestBatch]) -> None:
        with self._cv:
            self._queue.extend(batches)
            self._cv.notify()

    def wake(self) -> None:
        """Something is due now (an API entry): run a round without waiting for the poll."""
        with self._cv:
            self._cv.notify()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="journeys-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while True:
            with self._cv:
                if self._stopping:
                    return
            try:
                report = self.run_once()
            except Exception:
                log.exception("journeys worker: round failed; trying again")
                report = WorkerReport()
            if report.busy:
                continue
            with self._cv:
                if not self._queue and not self._stopping:
                    self._cv.wait(self.poll_seconds)

    # -- one round ---------------------------------------------------------------------------
    def watch(self, workspace_id: str) -> feed.Watch:
        cached = self._watches.get(workspace_id)
        if cached is not None and cached[0] == _generation[0] and time.monotonic() - cached[1].built < self.watch_ttl:
            return cached[1]
        with self.db.session() as session:
            built = feed.build_watch(session, workspace_id)
        self._watches[workspace_id] = (_generation[0], built)
        return built

    def run_once(self, now: datetime | None = None, *, sweep: bool | None = None) -> WorkerReport:
        report = WorkerReport()
        when = now or clock.now()
        self._fast_path(when, report)
        if sweep if sweep is not None else time.monotonic() - self._last_sweep >= self.sweep_seconds:
            self._sweep(when, report)
        with self.db.session() as session:  # no write lock unless there is something to do
            fire = broadcast.any_due(session, when)
            due = executor.any_due(session, when)
        if fire:
            with self.db.session(write=True) as session:
                report.broadcast = broadcast.fire_due(session, when)
            if report.broadcast:
                changed()
            due = True
        if due:
            with self.db.session(write=True) as session:
                done = executor.run_due(session, when, limit=self.batch)
            report.runs, report.steps, report.failed = done.runs, done.steps, done.failed
        if time.monotonic() - self._last_monitor >= self.monitor_seconds or now is not None:
            self._last_monitor = time.monotonic()
            with self.db.session(write=True) as session:
                report.paused = len(monitor.check(session, when))
            if report.paused:
                changed()
        return report

    def drain(self, now: datetime | None = None, rounds: int = 50) -> WorkerReport:
        """Rounds until nothing is left to do now (tests, `shopkeeper journeys run`)."""
        total = WorkerReport()
        for i in range(rounds):
            report = self.run_once(now, sweep=i == 0)
            for name in total.__dataclass_fields__:
                setattr(total, name, getattr(total, name) + getattr(report, name))
            if not report.busy:
                break
        return total

    def _fast_path(self, now: datetime, report: WorkerReport) -> None:
        with self._cv:
            taken = list(self._queue)
            self._queue.clear()
        by_workspace: dict[str, list[IngestBatch]] = {}
        for batch in taken:
            by_workspace.setdefault(batch.workspace_id, []).append(batch)
        for workspace_id, batches in by_workspace.items():
            watch = self.watch(workspace_id)
            if not watch.names:
                continue
            with self.db.session() as session:
                events = feed.events_of_batches(session, watch, batches)
            if events:
                with self.db.session(write=True) as session:
                    report.add_feed(feed.apply(session, watch, events, now))

    def _sweep(self, now: datetime, report: WorkerReport) -> None:
        self._last_sweep = time.monotonic()
        with self.db.session(write=True) as session:
            cursor = feed.read_cursor(session, now)
            workspaces = list(
                session.scalars(select(Journey.workspace_id).where(Journey.status.in_(("active", "paused"))).distinct())
            )
            for workspace_id in workspaces:
                watch = self.watch(workspace_id)
                events = feed.sweep_events(session, workspace_id, watch, cursor - feed.OVERLAP, now)
                if events:
                    report.add_feed(feed.apply(session, watch, events, now))
            feed.move_cursor(session, max(cursor, now - timedelta(seconds=1)), now)
