"""`shopkeeper bench ingest`: durable ingestion over real HTTP, then single-event latency.

Phase 1 sends many events through /v1/batch from several keep-alive connections and counts
only what the server acknowledged with 200 — which, by SPEC §3, means committed — then checks the
database holds exactly those events. Phase 2 sends single /v1/track requests, one at a time and
then from a few senders at once, for the latency a lone client sees. Request bodies are built and
serialised before the clock starts, so the figures measure the server, not the generator.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from shopkeeper.bench.client import REQUEST_ERRORS, ClientKind, Endpoint, open_connection, prepare
from shopkeeper.bench.report import IngestFigures, LatencyFigures, LatencySummary, StoredCheck, ThroughputFigures
from shopkeeper.bench.server import (
    SQLITE_SHORTHAND,
    BenchDatabase,
    ServerProcess,
    fresh_database,
    provision,
    running_server,
)
from shopkeeper.bench.traffic import Traffic
from shopkeeper.errors import Invalid
from shopkeeper.events.limits import MAX_BATCH_BYTES, MAX_EVENT_BYTES

T = TypeVar("T")
# Called when a phase starts with its name and how many events it sends; returns the callable
# that is told how many more events were acknowledged (a progress bar, or nothing).
PhaseHook = Callable[[str, int], Callable[[int], None]]


def _no_progress(_name: str, _total: int) -> Callable[[int], None]:
    return lambda _n: None


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """What to run. `database` is a spec for a fresh database when the bench starts its own
    server, or the URL of the target's database (for the stored-count check) with `target`."""

    database: str | None = SQLITE_SHORTHAND
    target: str | None = None
    write_key: str | None = None
    events: int = 200_000
    batch_size: int = 100
    concurrency: int = 8
    track_requests: int = 2000
    track_senders: int = 4
    people: int = 50_000
    client: ClientKind = "raw"

    def validate(self) -> None:
        """Refuse impossible runs up front with the option's name, before minutes of setup."""
        if self.events < 1:
            raise Invalid("--events: must be at least 1")
        if not 1 <= self.batch_size <= 10_000:
            raise Invalid("--batch-size: must be between 1 and 10000 (the server's limit per batch)")
        if self.concurrency < 1:
            raise Invalid("--concurrency: must be at least 1")
        if self.track_requests < 0:
            raise Invalid("--track-requests: must be 0 or more")
        if self.track_senders < 1:
            raise Invalid("--track-senders: must be at least 1")
        if self.people < 1:
            raise Invalid("--people: must be at least 1")
        if (self.target is None) != (self.write_key is None):
            raise Invalid("--target and --write-key go together: a running server and its workspace's write key")
        if self.target is None and not self.database:
            raise Invalid("--database-url: needed to start a server (use `sqlite` for a temporary file)")


@dataclass(slots=True)
class PhaseResult:
    """Raw outcome of sending a list of prepared requests."""

    acknowledged: int = 0
    ok_requests: int = 0
    requests: int = 0
    errors: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    first_error: str | None = None

    def fail(self, message: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = message[:300]


async def drive(
    kind: ClientKind,
    endpoint: Endpoint,
    items: Sequence[tuple[bytes, int]],
    concurrency: int,
    advance: Callable[[int], None] = lambda _n: None,
) -> PhaseResult:
    """Send `items` (prepared request, events in it) over `concurrency` keep-alive connections,
    each taking the next unsent item as soon as its previous answer is in (closed loop)."""
    result = PhaseResult()
    queue = iter(items)
    connections = [open_connection(kind, endpoint) for _ in range(min(concurrency, len(items)))]
    await asyncio.gather(*(c.connect() for c in connections))

    async def worker(index: int) -> None:
        conn = connections[index]
        clock = time.perf_counter_ns
        for prepared, events in queue:
            result.requests += 1
            started = clock()
            try:
                status, body = await conn.post(prepared)
            except REQUEST_ERRORS as exc:
                result.fail(f"{type(exc).__name__}: {exc}")
                continue
            result.latencies_ns.append(clock() - started)
            if status == 200:
                result.acknowledged += events
                result.ok_requests += 1
                advance(events)
            else:
                result.fail(f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}")

    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        await asyncio.gather(*(worker(i) for i in range(len(connections))))
    finally:
        result.wall_seconds = time.perf_counter() - wall0
        result.cpu_seconds = time.process_time() - cpu0
        await asyncio.gather(*(c.aclose() for c in connections), return_exceptions=True)
    return result


def _run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """uvloop where available: the client's own overhead is part of what it must keep small."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard] on Linux
        return asyncio.run(make())
    return uvloop.run(make())


@dataclass(frozen=True, slots=True)
class Counts:
    events: int
    customers: int
    merges: int


def count_rows(url: str, workspace_id: str) -> Counts:
    """What the workspace holds: events, live (unmerged) customers and merges."""
    from shopkeeper.customers.models import Customer, Merge
    from shopkeeper.db.session import Database
    from shopkeeper.events.models import Event

    db = Database(url)
    try:
        with db.session() as s:
            events = s.scalar(select(func.count()).select_from(Event).where(Event.workspace_id == workspace_id))
            customers = s.scalar(
                select(func.count())
                .select_from(Customer)
                .where(Customer.workspace_id == workspace_id, Customer.merged_into.is_(None))
            )
            merges = s.scalar(select(func.count()).select_from(Merge).where(Merge.workspace_id == workspace_id))
        return Counts(int(events or 0), int(customers or 0), int(merges or 0))
    finally:
        db.dispose()


def workspace_of_key(url: str, write_key: str) -> str:
    """The workspace a write key belongs to, read from the target's database."""
    from shopkeeper.auth.service import principal_for_key
    from shopkeeper.db.session import Database

    db = Database(url)
    try:
        with db.session() as s:
            principal = principal_for_key(s, write_key)
    finally:
        db.dispose()
    if principal is None or principal.key_kind != "write":
        raise Invalid("--write-key: not a valid write key in the database at --database-url")
    return principal.workspace_id


@dataclass(frozen=True, slots=True)
class _Prepared:
    batches: list[tuple[bytes, int]]
    sequential: list[tuple[bytes, int]]
    concurrent: list[tuple[bytes, int]]
    mean_event_bytes: float


def _prepare_requests(options: IngestOptions, batch: Endpoint, track: Endpoint) -> _Prepared:
    traffic = Traffic(options.people)
    batches: list[tuple[bytes, int]] = []
    body_bytes = 0
    for body, n in traffic.batch_bodies(options.events, options.batch_size):
        if len(body) > MAX_BATCH_BYTES:
            raise Invalid(
                f"--batch-size: {n} events make a {len(body) // 1024} KB batch, over the server's "
                f"{MAX_BATCH_BYTES // 1024} KB limit; use a smaller batch"
            )
        body_bytes += len(body)
        batches.append((prepare(options.client, batch, body), n))

    def singles() -> list[tuple[bytes, int]]:
        out = []
        for body in traffic.track_bodies(options.track_requests):
            assert len(body) <= MAX_EVENT_BYTES
            out.append((prepare(options.client, track, body), 1))
        return out

    return _Prepared(batches, singles(), singles(), body_bytes / options.events)


def _check(before: Counts | None, acknowledged: int, url: str | None, workspace_id: str | None) -> StoredCheck | None:
    if before is None or url is None or workspace_id is None:
        return None
    after = count_rows(url, workspace_id)
    return StoredCheck(
        expected=before.events + acknowledged, stored=after.events, customers=after.customers, merges=after.merges
    )


def _latency(p: PhaseResult, senders: int) -> LatencyFigures:
    return LatencyFigures(
        senders=senders,
        requests=p.requests,
        errors=p.errors,
        wall_seconds=p.wall_seconds,
        latency=LatencySummary.from_ns(p.latencies_ns),
        client_cpu_seconds=p.cpu_seconds,
        first_error=p.first_error,
    )


def measure(
    options: IngestOptions,
    base_url: str,
    write_key: str,
    *,
    database: BenchDatabase | None,
    workspace_id: str | None,
    server: ServerProcess | None,
    phase: PhaseHook = _no_progress,
) -> IngestFigures:
    """Both load phases against a running server, with the stored-count checks in between."""
    batch_ep = Endpoint.parse(base_url, "/v1/batch", write_key)
    track_ep = Endpoint.parse(base_url, "/v1/track", write_key)
    prepared = _prepare_requests(options, batch_ep, track_ep)
    figures = IngestFigures(
        engine=database.engine if database else "unknown",
        target=base_url,
        events=options.events,
        batch_size=options.batch_size,
        concurrency=options.concurrency,
        client=options.client,
        mean_event_bytes=prepared.mean_event_bytes,
    )
    url = database.url if database else None
    if url is None or workspace_id is None:
        figures.notes.append("stored-count check skipped: pass --database-url of the target's database")
    before = count_rows(url, workspace_id) if url and workspace_id else None

    def send(endpoint: Endpoint, items: list[tuple[bytes, int]], connections: int, name: str) -> PhaseResult:
        advance = phase(name, sum(n for _, n in items))
        return _run_async(lambda: drive(options.client, endpoint, items, connections, advance))

    # The generator's garbage is collected now, not during the timed phases.
    gc.collect()
    p1 = send(batch_ep, prepared.batches, options.concurrency, "/v1/batch")
    figures.throughput = ThroughputFigures(
        events_sent=options.events,
        events_acknowledged=p1.acknowledged,
        requests=p1.requests,
        errors=p1.errors,
        wall_seconds=p1.wall_seconds,
        events_per_second=p1.acknowledged / p1.wall_seconds if p1.wall_seconds > 0 else 0.0,
        requests_per_second=p1.ok_requests / p1.wall_seconds if p1.wall_seconds > 0 else 0.0,
        latency=LatencySummary.from_ns(p1.latencies_ns),
        client_cpu_seconds=p1.cpu_seconds,
        first_error=p1.first_error,
    )
    figures.throughput_check = _check(before, p1.acknowledged, url, workspace_id)

    if options.track_requests:
        seq = send(track_ep, prepared.sequential, 1, "/v1/track, 1 sender")
        figures.track_sequential = _latency(seq, 1)
        conc = send(track_ep, prepared.concurrent, options.track_senders, f"/v1/track, {options.track_senders} senders")
        figures.track_concurrent = _latency(conc, options.track_senders)
        acknowledged = p1.acknowledged + seq.acknowledged + conc.acknowledged
        figures.final_check = _check(before, acknowledged, url, workspace_id)

    if server is not None:
        memory = server.memory()
        if memory is not None:
            figures.server_rss_bytes = memory.rss_bytes
            figures.server_peak_rss_bytes = memory.peak_rss_bytes
        code = server.process.poll()
        if code is not None:
            figures.notes.append(f"the server exited during the run with code {code}")
    else:
        figures.notes.append("server RSS not measured: the bench did not start the server")
    return figures


def run_ingest_bench(
    options: IngestOptions,
    *,
    phase: PhaseHook = _no_progress,
    on_server: Callable[[ServerProcess], None] | None = None,
) -> IngestFigures:
    """Set up (fresh database and own server, or the given target), measure, clean up.

    `on_server` is called with the started server before any load (e.g. to attach a profiler).
    """
    options.validate()
    if options.target is not None:
        assert options.write_key is not None
        database = _existing_database(options.database) if options.database else None
        workspace_id = workspace_of_key(database.url, options.write_key) if database else None
        figures = measure(
            options,
            options.target,
            options.write_key,
            database=database,
            workspace_id=workspace_id,
            server=None,
            phase=phase,
        )
        if database is not None:
            figures.database_bytes = database.size_bytes()
        return figures

    assert options.database is not None
    with (
        tempfile.TemporaryDirectory(prefix="shopkeeper-bench-") as tmp,
        fresh_database(options.database, Path(tmp)) as database,
    ):
        workspace = provision(database.url)
        with running_server(database.url, Path(tmp) / "server.log") as server:
            if on_server is not None:
                on_server(server)
            figures = measure(
                options,
                server.url,
                workspace.write_key,
                database=database,
                workspace_id=workspace.id,
                server=server,
                phase=phase,
            )
        # After the server stopped: SQLite has checkpointed its WAL into the file by then.
        figures.database_bytes = database.size_bytes()
        return figures


def _existing_database(url: str) -> BenchDatabase:
    if url == SQLITE_SHORTHAND:
        raise Invalid("--database-url: with --target, give the URL of the target's database")
    if url.startswith("sqlite"):
        path = make_url(url).database
        if not path or not Path(path).exists():
            raise Invalid(f"--database-url: no SQLite file at {path}")
        return BenchDatabase(url, "sqlite", Path(path))
    return BenchDatabase(url, "postgresql")
