"""The segment schedule: what real time cannot see, re-checked on a timer.

- Windowed segments ("in the last 30 days", relative dates) change with time alone: they are
  refreshed every `windowed_every`.
- New and changed definitions are built at once (`refresh_due_at`).
- Every segment is reconciled every `full_every`: trait edits through the admin API, consent
  changes, merges and any real-time evaluation lost in a crash are caught up there.

Safe with several servers on one database: a tick runs only while its process holds the lease
row (`segment_leases`), taken by a conditional UPDATE that succeeds for one holder at a time and
renewed between segments; a crashed holder's lease simply expires.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from shopkeeper import clock
from shopkeeper.db.session import Database
from shopkeeper.ids import new_id
from shopkeeper.segments import service
from shopkeeper.segments.membership import RefreshResult
from shopkeeper.segments.models import Segment, SegmentLease

log = logging.getLogger(__name__)
LEASE = "segments.schedule"


class SegmentSchedule:
    def __init__(
        self,
        db: Database,
        *,
        interval: float = 30.0,
        windowed_every: timedelta = timedelta(minutes=15),
        full_every: timedelta = timedelta(hours=6),
        lease_for: timedelta = timedelta(minutes=2),
        holder: str | None = None,
    ) -> None:
        self.db = db
        self.interval = interval
        self.windowed_every = windowed_every
        self.full_every = full_every
        self.lease_for = lease_for
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{new_id('h')[-8:]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="segments-schedule", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # retried next tick
                log.exception("segments: scheduled refresh failed")

    # -- the lease ---------------------------------------------------------------------------
    def acquire(self, now: datetime) -> bool:
        """Take or renew the lease; False while another live holder has it."""
        with self.db.session(write=True) as session:
            if session.get(SegmentLease, LEASE) is None:
                try:
                    with session.begin_nested():
                        session.add(SegmentLease(name=LEASE, holder="", expires_at=now - timedelta(seconds=1)))
                except IntegrityError:
                    pass  # another server made it first
            taken = session.execute(
                update(SegmentLease)
                .where(
                    SegmentLease.name == LEASE,
                    or_(SegmentLease.holder == self.holder, SegmentLease.expires_at < now),
                )
                .values(holder=self.holder, expires_at=now + self.lease_for)
                .execution_options(synchronize_session=False)
            )
            return bool(taken.rowcount)  # type: ignore[attr-defined]

    def release(self) -> None:
        with self.db.session(write=True) as session:
            session.execute(
                update(SegmentLease)
                .where(SegmentLease.name == LEASE, SegmentLease.holder == self.holder)
                .values(expires_at=clock.now() - timedelta(seconds=1))
                .execution_options(synchronize_session=False)
            )

    # -- one round -----------------------------------------------------------------------------
    def due(self, now: datetime) -> list[tuple[str, str]]:
        """(workspace id, segment id) of the segments to refresh now."""
        with self.db.session() as session:
            rows = session.execute(
                select(Segment.workspace_id, Segment.id).where(
                    Segment.archived_at.is_(None),
                    or_(
                        Segment.refresh_due_at <= now,
                        Segment.refreshed_at.is_(None),
                        Segment.refreshed_at <= now - self.full_every,
                        (Segment.windowed.is_(True)) & (Segment.refreshed_at <= now - self.windowed_every),
                    ),
                )
            )
            return [(ws, sid) for ws, sid in rows]

    def tick(self, now: datetime | None = None) -> list[RefreshResult]:
        when = now or clock.now()
        if not self.acquire(when):
            return []
        due = self.due(when)
        by_workspace: dict[str, set[str]] = {}
        for ws, sid in due:
            by_workspace.setdefault(ws, set()).add(sid)
        results: list[RefreshResult] = []
        for workspace_id, ids in by_workspace.items():
            with self.db.session() as session:
                ordered = [
                    s for s in service.refresh_order(service.active_segments(session, workspace_id)) if s.id in ids
                ]
            for segment in ordered:
                if not self.acquire(when):  # renewed between segments; lost only if we stalled
                    return results
                with self.db.session(write=True) as session:
                    fresh = service.get(session, workspace_id, segment.id)
                    results.append(service.refresh(session, fresh, when))
        return results
