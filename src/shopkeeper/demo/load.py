"""Writing the demo shop into the store through the real ingest path.

Payloads are validated by `to_inbound` and stored by `events.ingest.store`, exactly as the HTTP
API would store them, so the demo exercises identity resolution (anonymous visitors who sign in,
second devices that get merged) instead of writing rows behind its back. `store` stamps new
profiles with its `now`, so it is called once per day of history: a profile's creation time stays
within a day of its first event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from shopkeeper.auth.models import Workspace
from shopkeeper.auth.service import create_user, create_workspace, slugify
from shopkeeper.customers.identity_cache import IdentityCache
from shopkeeper.db.session import Database
from shopkeeper.demo.generator import DemoShop
from shopkeeper.errors import Conflict
from shopkeeper.events.ingest import IngestBatch, StoreStats, store
from shopkeeper.events.models import Event
from shopkeeper.events.schemas import InboundEvent, to_inbound

CHUNK_SIZE = 5_000
_PROBE = 50  # first messageIds looked up to tell "this demo, resumed" from "another demo"


@dataclass(slots=True)
class DemoWorkspace:
    id: str
    slug: str
    created: bool
    write_key: str | None = None  # only when created now: keys are stored hashed
    secret_key: str | None = None


@dataclass(slots=True)
class LoadStats:
    generated: int = 0
    stored: int = 0
    duplicates: int = 0
    customers_created: int = 0
    merges: int = 0

    def add(self, chunk: int, stats: StoreStats) -> None:
        self.generated += chunk
        self.stored += stats.stored
        self.duplicates += stats.duplicates
        self.customers_created += stats.customers_created
        self.merges += stats.merges


DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "shopkeeper-demo"


def find_workspace(db: Database, name: str) -> Workspace | None:
    """The workspace a demo named `name` lives in (matched by slug, as `create_workspace` does)."""
    with db.session() as session:
        return session.scalar(select(Workspace).where(Workspace.slug == slugify(name)))


def open_workspace(db: Database, name: str, now: datetime) -> DemoWorkspace:
    """The demo's workspace: created with fresh keys, or the existing one to resume into."""
    existing = find_workspace(db, name)
    if existing is not None:
        return DemoWorkspace(existing.id, existing.slug, created=False)
    with db.session(write=True) as session:
        workspace, write_key, secret_key = create_workspace(session, name, now)
        # Someone to log in to the web UI as: a local demo's well-known account, printed by the CLI.
        create_user(
            session, workspace.id, email=DEMO_EMAIL, role="owner", name="Demo Owner", password=DEMO_PASSWORD, now=now
        )
        return DemoWorkspace(workspace.id, workspace.slug, True, write_key, secret_key)


def check_same_demo(db: Database, workspace_id: str, shop: DemoShop) -> None:
    """Refuse to mix two different demos in one workspace; resuming the same one is fine."""
    probe = [str(p["messageId"]) for p in islice(shop.payloads(), _PROBE)]
    with db.session() as session:
        has_events = session.scalar(select(Event.id).where(Event.workspace_id == workspace_id).limit(1))
        if has_events is None or not probe:
            return
        known = session.scalar(
            select(func.count()).where(Event.workspace_id == workspace_id, Event.message_id.in_(probe))
        )
    if not known:
        raise Conflict(
            "the workspace holds another demo (other --seed, --until, --customers or --events)",
            field="workspace_name",
        )


def inbound(payloads: Iterable[dict[str, Any]]) -> Iterator[InboundEvent]:
    """Validated events, received when they happened: this is history being replayed."""
    for payload in payloads:
        yield to_inbound(payload, received_at=datetime.fromisoformat(payload["timestamp"]))


def day_runs(events: Iterable[InboundEvent]) -> Iterator[list[InboundEvent]]:
    """Consecutive events of one UTC day (by timestamp)."""
    run: list[InboundEvent] = []
    for event in events:
        if run and event.timestamp.date() != run[0].timestamp.date():
            yield run
            run = []
        run.append(event)
    if run:
        yield run


def transactions(events: Iterable[InboundEvent], size: int) -> Iterator[list[list[InboundEvent]]]:
    """Whole days grouped into transactions of about `size` events (a large day stands alone)."""
    group: list[list[InboundEvent]] = []
    count = 0
    for run in day_runs(events):
        if group and count + len(run) > size:
            yield group
            group, count = [], 0
        group.append(run)
        count += len(run)
    if group:
        yield group


def write_shop(
    db: Database,
    workspace_id: str,
    shop: DemoShop,
    *,
    chunk_size: int = CHUNK_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> LoadStats:
    """Store every payload of `shop`; events already stored (same messageId) are skipped.

    One `store` call per day, so new profiles are stamped with that day's time; several days per
    transaction, because commits (and WAL checkpoints) are what a bulk load waits on."""
    cache = IdentityCache()
    totals = LoadStats()
    for number, group in enumerate(transactions(inbound(shop.payloads()), chunk_size)):
        with db.session(write=True) as session:
            for run in group:
                now = max(event.timestamp for event in run)
                totals.add(len(run), store(session, [IngestBatch(workspace_id, run)], cache, now))
            if number == 0:
                refresh_statistics(session)
        if on_progress is not None:
            on_progress(sum(len(run) for run in group))
    with db.session(write=True) as session:
        refresh_statistics(session)
    return totals


def refresh_statistics(session: Session) -> None:
    """Tell the query planner how big the tables have become.

    Without statistics SQLite picks `ix_identities_value` (workspace_id, value) for "identities of
    this customer in this workspace", a scan of the whole workspace: each merge then took ~50 ms
    instead of ~1 ms in a 200,000-event load. PostgreSQL's autovacuum would get there eventually;
    a bulk load should not leave the planner guessing until then."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("ANALYZE"))
    else:
        session.execute(text("ANALYZE customers, identities, events, merges"))
