"""`shopkeeper bench segments`: segment refresh and real-time evaluation at 1M customers / 10M events.

For one engine (SQLite, PostgreSQL or DuckDB) on a fresh database: generate the shop in SQL,
build the indexes, compute RFM scores, save five typical segments, then time

- a refresh of each segment: the first (building the membership, writing every entry and its
  event) and a second one (the steady state: evaluate, compare, nothing to write);
- the incremental evaluation of one event: a purchase is stored for a random customer, then
  the segments that depend on purchases are re-checked for that customer and the changes are
  committed — timed per event (p50/p99), and per event when 100 are evaluated together;

and report the process's peak RSS. Time is fixed (the data is generated relative to it), so the
three engines hold the same rows and must find the same members.
"""

from __future__ import annotations

import multiprocessing
import queue
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, text

from shopkeeper.auth.models import Workspace
from shopkeeper.bench.report import LatencySummary
from shopkeeper.bench.segments_data import customer_id_sql, generate
from shopkeeper.bench.server import fresh_database
from shopkeeper.db.session import Database
from shopkeeper.errors import Invalid
from shopkeeper.events.models import Event
from shopkeeper.ids import new_id

ENGINES = ("sqlite", "postgresql", "duckdb")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACTOR = "bench"
# Five segments a shop typically keeps: traits only; a windowed count with a property filter; a
# lapse (performed, but not lately); consent and engagement; scores and another segment.
SEGMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "pro_in_europe": (
        "Pro plan in FR/DE/NL",
        {
            "and": [
                {"trait": {"key": "plan", "op": "eq", "value": "pro"}},
                {"trait": {"key": "country", "op": "in", "value": ["FR", "DE", "NL"]}},
            ]
        },
    ),
    "recent_big_buyers": (
        "2+ orders over 50 in 90 days",
        {
            "event": {
                "name": "Order Completed",
                "op": "gte",
                "count": 2,
                "within_days": 90,
                "where": [{"property": "total", "op": "gt", "value": 50}],
            }
        },
    ),
    "lapsed_buyers": (
        "Bought before, not in 120 days",
        {
            "and": [
                {"event": {"name": "Order Completed"}},
                {"not_performed": {"name": "Order Completed", "within_days": 120}},
            ]
        },
    ),
    "engaged_subscribers": (
        "Newsletter opt-in, opened an email in 30 days",
        {
            "and": [
                {"consent": {"channel": "email", "topic": "newsletter", "status": "opted_in"}},
                {"event": {"name": "Email Opened", "within_days": 30}},
            ]
        },
    ),
    "best_not_lapsed": (
        "RFM champions or loyal, not lapsed",
        {
            "and": [
                {"score": {"name": "rfm_segment", "op": "in", "value": ["champions", "loyal"]}},
                {"not": {"segment": {"key": "lapsed_buyers"}}},
            ]
        },
    ),
}
PurchaseHook = Callable[[str, int], Callable[[int], None]]


def _no_progress(_name: str, _total: int) -> Callable[[int], None]:
    return lambda _n: None


@dataclass(frozen=True, slots=True)
class SegmentBenchOptions:
    engine: str = "sqlite"
    customers: int = 1_000_000
    events: int = 10_000_000
    incremental: int = 1000
    postgresql_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    workdir: Path | None = None

    def validate(self) -> None:
        if self.engine not in ENGINES:
            raise Invalid(f"--engine: one of {', '.join(ENGINES)}", field="engine")
        if self.customers < 10:
            raise Invalid("--customers: at least 10", field="customers")
        if self.events < 0:
            raise Invalid("--events: 0 or more", field="events")
        if not 1 <= self.incremental <= 100_000:
            raise Invalid("--incremental: between 1 and 100000", field="incremental")


@dataclass(frozen=True, slots=True)
class RefreshFigure:
    key: str
    members: int
    first_seconds: float
    again_seconds: float
    entered_first: int
    changed_again: int
    preview_seconds: float = 0.0  # the builder's live count and first 10 members, unsaved


@dataclass(slots=True)
class SegmentFigures:
    engine: str
    customers: int
    events: int
    generate_seconds: float = 0.0
    index_seconds: float = 0.0
    rfm_seconds: float = 0.0
    refresh: list[RefreshFigure] = field(default_factory=list)
    incremental: LatencySummary | None = None
    incremental_batched_ms_per_event: float = 0.0
    incremental_changes: int = 0
    peak_rss_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _DuckDatabase(Database):
    """DuckDB behind the `Database` interface (one file, no pool tuning, no pragmas)."""

    def __init__(self, path: Path) -> None:
        from shopkeeper.segments.engines import duckdb_engine

        self.url = f"duckdb:///{path}"
        self.background_checkpoint = False
        self.engine = duckdb_engine(str(path))
        self.write_engine = self.engine


@contextmanager
def _database_url(options: SegmentBenchOptions, workdir: Path) -> Iterator[str]:
    """A fresh, migrated database (DuckDB: a file with the same tables), removed afterwards."""
    from shopkeeper.db.migrate import upgrade

    if options.engine == "duckdb":
        from shopkeeper.segments.engines import create_duckdb_schema, duckdb_engine

        path = workdir / "bench.duckdb"
        engine = duckdb_engine(str(path))
        create_duckdb_schema(engine, keyless=("customers", "events", "subscriptions"))
        engine.dispose()
        yield f"duckdb:///{path}"
        return
    spec = "sqlite" if options.engine == "sqlite" else options.postgresql_url
    with fresh_database(spec, workdir) as bench_db:
        upgrade(bench_db.url)
        yield bench_db.url


def _open(url: str) -> Database:
    if url.startswith("duckdb:///"):
        return _DuckDatabase(Path(url.removeprefix("duckdb:///")))
    return Database(url)


_EVENT_INDEXES = {
    "ix_events_customer_time": "(workspace_id, customer_id, timestamp)",
    "ix_events_name_time_customer": "(workspace_id, name, timestamp, customer_id)",
    "ix_events_name_customer_time": "(workspace_id, name, customer_id, timestamp)",
}


def _load_child(url: str, options: SegmentBenchOptions, workspace_id: str, out: Any) -> None:
    """In a child process, so that the parent's peak RSS is that of the segment work alone
    (building ten million index entries takes SQLite a gigabyte of sort memory)."""
    figures = SegmentFigures(options.engine, options.customers, options.events)

    def phase(name: str, _total: int) -> Callable[[int], None]:
        return lambda n: out.put(("advance", name, n))

    db = _open(url)
    try:
        _load(db, options, workspace_id, figures, phase)
    finally:
        db.dispose()
    out.put(("done", figures.generate_seconds, figures.index_seconds))


def _load_elsewhere(
    url: str, options: SegmentBenchOptions, workspace_id: str, figures: SegmentFigures, phase: PurchaseHook
) -> None:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=_load_child, args=(url, options, workspace_id, out), daemon=True)
    child.start()
    bars = {name: phase(name, total) for name, total in (("customers", options.customers), ("events", options.events))}
    while True:
        try:
            message = out.get(timeout=1)
        except queue.Empty:
            if not child.is_alive():
                raise RuntimeError(f"loading the bench data failed (exit code {child.exitcode})") from None
            continue
        if message[0] == "advance":
            bars[message[1]](message[2])
        else:
            figures.generate_seconds, figures.index_seconds = message[1], message[2]
            break
    child.join()


def _load(
    db: Database, options: SegmentBenchOptions, workspace_id: str, figures: SegmentFigures, phase: PurchaseHook
) -> None:
    dialect = db.dialect
    with db.engine.begin() as conn:
        conn.execute(
            insert(Workspace.__table__),  # type: ignore[arg-type]
            [
                {
                    "id": workspace_id,
                    "name": "Bench",
                    "slug": workspace_id,
                    "settings": {},
                    "identity_epoch": 0,
                    "signing_secret": "bench",
                    "hashing_secret": "bench",
                    "created_at": NOW,
                }
            ],
        )
        if dialect != "duckdb":
            for name in _EVENT_INDEXES:
                conn.execute(text(f"DROP INDEX {name}"))
    customers_done = phase("customers", options.customers)
    events_done = phase("events", options.events)

    def advance(what: str, n: int) -> None:
        (customers_done if what == "customers" else events_done)(n)

    started = time.perf_counter()
    with db.engine.begin() as conn:
        generate(conn, dialect, workspace_id, options.customers, options.events, NOW, advance)
    figures.generate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with db.engine.begin() as conn:
        if dialect != "duckdb":
            for name, columns in _EVENT_INDEXES.items():
                conn.execute(text(f"CREATE INDEX {name} ON events {columns}"))
    if dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    elif dialect == "sqlite":
        with db.engine.begin() as conn:
            conn.execute(text("PRAGMA analysis_limit=1000"))
            conn.execute(text("ANALYZE"))
    figures.index_seconds = time.perf_counter() - started


def _incremental(
    db: Database, options: SegmentBenchOptions, workspace_id: str, figures: SegmentFigures, phase: PurchaseHook
) -> None:
    from shopkeeper.segments.realtime import DependencyIndex, evaluate

    with db.session() as session:
        index = DependencyIndex.build(session, workspace_id)
    affected = index.by_event.get("Order Completed", [])
    dialect = db.dialect
    picks = [(i * 7919 + 17) % options.customers for i in range(options.incremental + 100)]
    with db.engine.connect() as conn:
        ids = [conn.execute(text(f"SELECT {customer_id_sql(dialect, str(p))}")).scalar_one() for p in picks]
    events: Any = Event.__table__

    def purchase(customer_id: str, n: int) -> dict[str, Any]:
        at = NOW - timedelta(minutes=1) + timedelta(microseconds=n)
        return {
            "id": new_id("evt"),
            "workspace_id": workspace_id,
            "customer_id": customer_id,
            "message_id": new_id("msg"),
            "type": "track",
            "name": "Order Completed",
            "user_id": None,
            "anonymous_id": None,
            "group_id": None,
            "previous_id": None,
            "timestamp": at,
            "original_timestamp": None,
            "sent_at": None,
            "received_at": at,
            "properties": {"total": 80.0},
            "traits": None,
            "context": None,
        }

    done = phase("incremental", options.incremental + 100)
    samples: list[int] = []
    for n, customer_id in enumerate(ids[: options.incremental]):
        with db.session(write=True) as session:
            session.execute(insert(events), [purchase(customer_id, n)])
        started = time.perf_counter_ns()
        with db.session(write=True) as session:
            changes = evaluate(session, index, {sid: {customer_id} for sid in affected}, NOW)
        samples.append(time.perf_counter_ns() - started)
        figures.incremental_changes += len(changes)
        done(1)
    figures.incremental = LatencySummary.from_ns(samples)
    batch = ids[options.incremental : options.incremental + 100]
    with db.session(write=True) as session:
        session.execute(insert(events), [purchase(c, 10_000 + n) for n, c in enumerate(batch)])
    batch_started = time.perf_counter()
    with db.session(write=True) as session:
        evaluate(session, index, {sid: set(batch) for sid in affected}, NOW)
    figures.incremental_batched_ms_per_event = (time.perf_counter() - batch_started) * 1000 / len(batch)
    done(100)


def run_segments_bench(options: SegmentBenchOptions, *, phase: PurchaseHook = _no_progress) -> SegmentFigures:
    options.validate()
    figures = SegmentFigures(options.engine, options.customers, options.events)
    workspace_id = new_id("ws")
    with (
        tempfile.TemporaryDirectory(prefix="shopkeeper-bench-", dir=options.workdir) as tmp,
        _database_url(options, Path(tmp)) as url,
    ):
        _load_elsewhere(url, options, workspace_id, figures, phase)
        db = _open(url)
        try:
            _segment_work(db, options, workspace_id, figures, phase)
        finally:
            db.dispose()
    # The data was generated by a child process: this is the peak of the segment work alone.
    figures.peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return figures


def _segment_work(
    db: Database, options: SegmentBenchOptions, workspace_id: str, figures: SegmentFigures, phase: PurchaseHook
) -> None:
    from shopkeeper.segments import service
    from shopkeeper.segments.scores import rfm

    started = time.perf_counter()
    with db.session(write=True) as session:
        rfm.compute(session, workspace_id, NOW)
    figures.rfm_seconds = time.perf_counter() - started
    with db.session(write=True) as session:
        for key, (name, definition) in SEGMENTS.items():
            service.create(session, workspace_id, key=key, name=name, conditions=definition, actor=ACTOR, now=NOW)
    done = phase("refresh", len(SEGMENTS))
    with db.session() as session:
        ordered = [(s.id, s.key) for s in service.refresh_order(service.active_segments(session, workspace_id))]
    for segment_id, key in ordered:
        runs = []
        for _ in range(2):
            with db.session(write=True) as session:
                runs.append(service.refresh(session, service.get(session, workspace_id, segment_id), NOW))
        first, again = runs
        started = time.perf_counter()
        with db.session() as session:
            preview = service.preview(session, workspace_id, SEGMENTS[key][1], "marketing", limit=10, now=NOW)
        preview_seconds = time.perf_counter() - started
        assert preview.count == again.members
        figures.refresh.append(
            RefreshFigure(
                key,
                again.members,
                first.seconds,
                again.seconds,
                first.entered,
                again.entered + again.exited,
                preview_seconds,
            )
        )
        done(1)
    if db.dialect != "duckdb":
        # What the server's maintenance thread does as tables grow: memberships and scores were
        # empty when the data was analysed, and plans made for empty tables are wrong ones.
        from shopkeeper.db.maintenance import Maintenance

        Maintenance(db).refresh_statistics()
    _incremental(db, options, workspace_id, figures, phase)


def render(figures: SegmentFigures, console: Console) -> None:
    table = Table(title=f"bench segments — {figures.engine}", header_style="bold")
    table.add_column("figure")
    table.add_column("value", overflow="fold")
    table.add_row("data", f"{figures.customers:,} customers, {figures.events:,} events")
    table.add_row("generate / index+analyze", f"{figures.generate_seconds:.1f} s / {figures.index_seconds:.1f} s")
    table.add_row("RFM scores", f"{figures.rfm_seconds:.2f} s")
    for r in figures.refresh:
        mark = "[green]<2 s[/green]" if r.again_seconds < 2 else "[red]≥2 s[/red]"
        table.add_row(
            f"refresh {r.key}",
            f"{r.members:,} members; first {r.first_seconds:.2f} s ({r.entered_first:,} entered), "
            f"again {r.again_seconds:.3f} s {mark}; preview {r.preview_seconds:.3f} s",
        )
    if figures.incremental is not None:
        s = figures.incremental
        table.add_row("incremental per event p50 / p99", f"{s.p50_ms:.3f} / {s.p99_ms:.3f} ms ({s.count:,} events)")
        table.add_row("incremental, 100 at once", f"{figures.incremental_batched_ms_per_event:.3f} ms per event")
    table.add_row("peak RSS (scores, refreshes, real time)", f"{figures.peak_rss_bytes / 2**20:,.0f} MiB")
    for note in figures.notes:
        table.add_row("note", note)
    console.print(table)


def write_json(figures: SegmentFigures, path: Path) -> None:
    path.write_bytes(orjson.dumps(figures.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
