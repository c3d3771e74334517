"""Real-time membership: after each ingest commit, re-check the touched customers against only
the segments an event can change, off the ingest hot path.

The ingest writer hands this a reference to the batches it just committed (no query, no copy:
the hot path stays as fast as before). A worker thread then, per workspace and in one write
transaction per round: finds each event's customer by its messageId, picks the segments that
name the event (or, for identify calls, a trait it carries), re-evaluates them with the
compiled query restricted to those customers, records entries and exits, and carries changes
on to segments that contain those segments.

The queue lives in memory: if the process dies between the commit and the evaluation, the
scheduler's periodic reconciliation (schedule.py) catches the change up. Real time is the fast
path; the schedule is the guarantee.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.db.session import Database
from shopkeeper.events.ingest import IngestBatch
from shopkeeper.events.models import Event
from shopkeeper.segments import membership, service
from shopkeeper.segments.compiler import SegmentQuery
from shopkeeper.segments.definition import Dependencies, dependencies
from shopkeeper.segments.membership import SegmentRef
from shopkeeper.segments.validate import parse

log = logging.getLogger(__name__)
_LOOKUP_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Watched:
    ref: SegmentRef
    deps: Dependencies
    query: SegmentQuery


@dataclass
class DependencyIndex:
    """Which segments of a workspace each kind of change can affect, in refresh order."""

    ordered: list[Watched]
    by_event: dict[str, list[str]] = field(default_factory=dict)
    by_trait: dict[str, list[str]] = field(default_factory=dict)
    dependents: dict[str, list[str]] = field(default_factory=dict)  # segment key → ids using it
    generation: int = 0
    built: float = 0.0

    @classmethod
    def build(cls, session: Session, workspace_id: str) -> DependencyIndex:
        segments = service.refresh_order(service.active_segments(session, workspace_id))
        ids = {s.key: s.id for s in segments}
        ordered = []
        index = cls([], generation=service.generation(), built=time.monotonic())
        for segment in segments:
            node = parse(segment.definition)
            deps = dependencies(node)
            ordered.append(
                Watched(SegmentRef.of(segment), deps, SegmentQuery(node, workspace_id, ids, restricted=True))
            )
            for name in deps.event_names:
                index.by_event.setdefault(name, []).append(segment.id)
            for key in deps.trait_keys:
                index.by_trait.setdefault(key, []).append(segment.id)
            for key in deps.segment_keys:
                index.dependents.setdefault(key, []).append(segment.id)
        index.ordered = ordered
        return index


@dataclass(frozen=True, slots=True)
class Change:
    segment_id: str
    customer_id: str
    entered: bool


def evaluate(
    session: Session, index: DependencyIndex, touched: dict[str, set[str]], now: datetime | None = None
) -> list[Change]:
    """Re-check `touched` (segment id → customer ids) in dependency order, cascading changes to
    the segments that contain a changed one; returns every entry and exit recorded."""
    when = clock.now() if now is None else now
    changes: list[Change] = []
    for watched in index.ordered:
        customers = touched.get(watched.ref.id)
        if not customers:
            continue
        entered, exited = membership.reevaluate(session, watched.ref, watched.query, sorted(customers), when)
        changes += [Change(watched.ref.id, c, True) for c in entered]
        changes += [Change(watched.ref.id, c, False) for c in exited]
        moved = set(entered) | set(exited)
        if moved:
            for dependent in index.dependents.get(watched.ref.key, []):
                touched.setdefault(dependent, set()).update(moved)
    return changes


class RealtimeSegments:
    """The queue fed after each ingest commit and the worker thread that drains it."""

    def __init__(self, db: Database, *, max_events: int = 5000, index_ttl: float = 10.0) -> None:
        self.db = db
        self.max_events = max_events
        self.index_ttl = index_ttl
        self._queue: deque[IngestBatch] = deque()
        self._cv = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._indexes: dict[str, DependencyIndex] = {}
        self.evaluated_events = 0
        self.changes = 0

    # -- fed by the ingest writer (after commit, on its thread: must stay cheap) -------------
    def enqueue(self, batches: Sequence[IngestBatch]) -> None:
        with self._cv:
            self._queue.extend(batches)
            self._cv.notify()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="segments-realtime", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once everything queued so far has been evaluated (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(remaining)
        return True

    def _take(self) -> list[IngestBatch] | None:
        with self._cv:
            while not self._queue:
                if self._stopping:
                    return None
                self._cv.wait()
            taken: list[IngestBatch] = []
            size = 0
            while self._queue and size < self.max_events:
                batch = self._queue.popleft()
                taken.append(batch)
                size += len(batch.events)
            self._busy = True
            return taken

    def _run(self) -> None:
        while (batches := self._take()) is not None:
            try:
                self.process(batches)
            except Exception:  # the schedule reconciles what was missed
                log.exception("segments: real-time evaluation failed; the schedule will catch up")
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    # -- the work --------------------------------------------------------------------------
    def index(self, session: Session, workspace_id: str) -> DependencyIndex:
        current = self._indexes.get(workspace_id)
        fresh = (
            current is not None
            and current.generation == service.generation()
            and time.monotonic() - current.built < self.index_ttl
        )
        if not fresh:
            current = self._indexes[workspace_id] = DependencyIndex.build(session, workspace_id)
        assert current is not None
        return current

    def process(self, batches: Sequence[IngestBatch]) -> list[Change]:
        """Reads first; a write transaction (on SQLite, the one write lock the ingest writer also
        needs) only when some segment may change."""
        by_workspace: dict[str, list[IngestBatch]] = {}
        for batch in batches:
            by_workspace.setdefault(batch.workspace_id, []).append(batch)
        changes: list[Change] = []
        for workspace_id, group in by_workspace.items():
            with self.db.session() as session:
                index = self.index(session, workspace_id)
                touched = self._touched(session, workspace_id, index, group) if index.ordered else {}
            if touched:
                with self.db.session(write=True) as session:
                    changes += evaluate(session, index, touched)
            self.evaluated_events += sum(len(b.events) for b in group)
        self.changes += len(changes)
        return changes

    def _touched(
        self, session: Session, workspace_id: str, index: DependencyIndex, batches: list[IngestBatch]
    ) -> dict[str, set[str]]:
        """segment id → customers whose events can change it."""
        wanted: dict[str, set[str]] = {}  # messageId → segment ids
        for batch in batches:
            for event in batch.events:
                segments: set[str] = set()
                if event.name is not None and event.name in index.by_event:
                    segments.update(index.by_event[event.name])
                if event.type == "identify" and event.traits:
                    for key in event.traits:
                        segments.update(index.by_trait.get(key, ()))
                if segments and event.message_id is not None:
                    wanted.setdefault(event.message_id, set()).update(segments)
        touched: dict[str, set[str]] = {}
        ids = list(wanted)
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            rows = session.execute(
                select(Event.message_id, Event.customer_id).where(
                    Event.workspace_id == workspace_id, Event.message_id.in_(chunk)
                )
            )
            for message_id, customer_id in rows:
                for segment_id in wanted[message_id]:
                    touched.setdefault(segment_id, set()).add(customer_id)
        return touched
