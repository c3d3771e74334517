"""Group commit: one thread owns the write transaction and takes whatever requests are queued.

A request waits on a future that is resolved only after the transaction holding its events has
committed, so the HTTP 200 means "durable". Under load many requests share one commit; alone, a
request is committed at once, which keeps single-event latency low.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, IntegrityError

from shopkeeper import clock
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.db.session import Database
from shopkeeper.errors import Unavailable
from shopkeeper.events.ingest import IngestBatch, store
from shopkeeper.events.schemas import InboundEvent

log = logging.getLogger(__name__)
_RETRIES = 6


@dataclass(slots=True)
class _Pending:
    batch: IngestBatch
    done: Callable[[BaseException | None], None]


class IngestWriter:
    def __init__(self, db: Database, cache: IdentityCache, *, max_group: int = 5000) -> None:
        self.db = db
        self.cache = cache
        self.max_group = max_group
        self._queue: deque[_Pending] = deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.commits = 0
        # Told about the batches of every committed group, on this thread, after the acks: must
        # be cheap (the segments' real-time queue keeps a reference and returns).
        self.on_commit: list[Callable[[list[IngestBatch]], None]] = []

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return  # one writer per runtime, even if the app's lifespan is entered twice
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    async def submit(self, workspace_id: str, events: list[InboundEvent]) -> None:
        """Return once `events` are committed; raise `Unavailable` if they could not be."""
        if not events:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def settle(exc: BaseException | None) -> None:
            if future.done():
                return  # the client went away; its events are stored all the same
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)

        def done(exc: BaseException | None) -> None:
            loop.call_soon_threadsafe(settle, exc)

        with self._cv:
            if self._stopping:
                raise Unavailable("the server is shutting down; retry")
            self._queue.append(_Pending(IngestBatch(workspace_id, events), done))
            self._cv.notify()
        await future

    def _take_group(self) -> list[_Pending] | None:
        with self._cv:
            while not self._queue:
                if self._stopping:
                    return None
                self._cv.wait()
            group = [self._queue.popleft()]
            size = len(group[0].batch.events)
            while self._queue and size + len(self._queue[0].batch.events) <= self.max_group:
                item = self._queue.popleft()
                size += len(item.batch.events)
                group.append(item)
            return group

    def _run(self) -> None:
        while (group := self._take_group()) is not None:
            self._commit(group)

    def _commit(self, group: list[_Pending]) -> None:
        try:
            self._write([p.batch for p in group])
        except Exception:
            self.cache.clear()
            if len(group) > 1:
                for item in group:
                    self._commit([item])
                return
            log.exception("ingest: could not store a batch of %d events", len(group[0].batch.events))
            group[0].done(Unavailable("the events could not be stored; retry"))
            return
        # Listeners first (they only enqueue): once a caller has its acknowledgement, whatever
        # follows from its events is already queued, so "wait until idle" means what it says.
        for listener in self.on_commit:
            try:
                listener([p.batch for p in group])
            except Exception:  # a listener must never fail ingestion
                log.exception("ingest: an on-commit listener failed")
        for item in group:
            item.done(None)

    def _write(self, batches: list[IngestBatch]) -> None:
        for attempt in range(_RETRIES):
            try:
                with self.db.session(write=True) as session:
                    store(session, batches, self.cache, clock.now())
                self.commits += 1
                return
            except (IntegrityError, DBAPIError) as exc:
                # Another process got there first (several servers on PostgreSQL: a deadlock
                # on profile rows during a merge, say) or a lock timed out: forget cached
                # identities, wait a moment (with jitter, so the two do not collide again)
                # and resolve again from what is committed now.
                self.cache.clear()
                if attempt == _RETRIES - 1:
                    raise
                log.info("ingest: retrying after %s", type(exc.orig or exc).__name__)
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
