"""What one server process holds: settings, the database, caches and the ingest writer."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from shopkeeper.auth.http import KeyAuthenticator
from shopkeeper.config import Settings
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.db.maintenance import Maintenance
from shopkeeper.db.session import Database
from shopkeeper.events.writer import IngestWriter
from shopkeeper.inbox.triage import InboxWorker
from shopkeeper.journeys.worker import JourneyWorker
from shopkeeper.messaging.pipeline import DeliveryWorker
from shopkeeper.segments.realtime import RealtimeSegments
from shopkeeper.segments.schedule import SegmentSchedule


@dataclass
class Runtime:
    settings: Settings
    db: Database
    identity_cache: IdentityCache
    writer: IngestWriter
    keys: KeyAuthenticator
    maintenance: Maintenance
    segments: RealtimeSegments
    segment_schedule: SegmentSchedule
    delivery: DeliveryWorker
    inbox: InboxWorker
    journeys: JourneyWorker

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous, background_checkpoint=True)
        cache = IdentityCache(settings.identity_cache_size)
        writer = IngestWriter(db, cache, max_group=settings.ingest_max_group)
        segments = RealtimeSegments(db)
        writer.on_commit.append(segments.enqueue)
        journeys = JourneyWorker(db)
        writer.on_commit.append(journeys.enqueue)
        return cls(
            settings=settings,
            db=db,
            identity_cache=cache,
            writer=writer,
            keys=KeyAuthenticator(db),
            maintenance=Maintenance(db),
            segments=segments,
            segment_schedule=SegmentSchedule(db),
            delivery=DeliveryWorker(db, base_url=settings.public_url),
            inbox=InboxWorker(db),
            journeys=journeys,
        )


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
