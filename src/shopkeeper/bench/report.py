"""Figures of a bench run: percentiles, the summary records, the Rich table and the JSON file.

Kept apart from the load generators so the arithmetic can be tested on known inputs and so every
bench prints and saves its figures the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

_NS_PER_MS = 1_000_000


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 ≤ q ≤ 100) of already sorted values, by linear interpolation
    between the two nearest ranks (numpy's default), so p50 of [1, 2] is 1.5, not 1 or 2."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(sorted_values[low])
    weight = rank - low
    return float(sorted_values[low]) * (1 - weight) + float(sorted_values[high]) * weight


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency of requests in milliseconds; `count` is how many samples it was computed from."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def from_ns(cls, samples_ns: Sequence[int]) -> LatencySummary:
        """Summarise raw `perf_counter_ns` durations; an empty sample gives zeros, not an error,
        because a run where every request failed must still print its (error) figures."""
        if not samples_ns:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        ms = sorted(s / _NS_PER_MS for s in samples_ns)
        return cls(
            count=len(ms),
            p50_ms=percentile(ms, 50),
            p90_ms=percentile(ms, 90),
            p99_ms=percentile(ms, 99),
            max_ms=ms[-1],
            mean_ms=math.fsum(ms) / len(ms),
        )


@dataclass(frozen=True, slots=True)
class ThroughputFigures:
    """Load phase 1: many events through /v1/batch, as fast as the server acknowledges them."""

    events_sent: int
    events_acknowledged: int
    requests: int
    errors: int
    wall_seconds: float
    events_per_second: float
    requests_per_second: float
    latency: LatencySummary
    client_cpu_seconds: float
    first_error: str | None = None


@dataclass(frozen=True, slots=True)
class LatencyFigures:
    """Load phase 2: single /v1/track requests, `senders` of them in flight at a time."""

    senders: int
    requests: int
    errors: int
    wall_seconds: float
    latency: LatencySummary
    client_cpu_seconds: float = 0.0
    first_error: str | None = None


@dataclass(frozen=True, slots=True)
class StoredCheck:
    """What the database holds for the workspace compared with what the server acknowledged."""

    expected: int
    stored: int
    customers: int
    merges: int

    @property
    def ok(self) -> bool:
        return self.expected == self.stored


@dataclass(slots=True)
class IngestFigures:
    """Everything `shopkeeper bench ingest` measured, as printed and as written with --json."""

    engine: str
    target: str
    events: int
    batch_size: int
    concurrency: int
    client: str
    mean_event_bytes: float
    throughput: ThroughputFigures | None = None
    throughput_check: StoredCheck | None = None
    track_sequential: LatencyFigures | None = None
    track_concurrent: LatencyFigures | None = None
    final_check: StoredCheck | None = None
    server_rss_bytes: int | None = None
    server_peak_rss_bytes: int | None = None
    database_bytes: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no request failed and every stored-count check that ran matched."""
        checks = [c for c in (self.throughput_check, self.final_check) if c is not None]
        errors = sum(f.errors for f in (self.throughput, self.track_sequential, self.track_concurrent) if f is not None)
        return errors == 0 and all(c.ok for c in checks)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("throughput_check", "final_check"):
            check = getattr(self, key)
            if check is not None:
                data[key]["ok"] = check.ok
        data["ok"] = self.ok
        return data


def write_json(figures: IngestFigures, path: Path) -> None:
    path.write_bytes(orjson.dumps(figures.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")


def _mib(n: int | None) -> str:
    return "–" if n is None else f"{n / 2**20:,.1f} MiB"


def _lat(s: LatencySummary) -> str:
    return f"{s.p50_ms:.2f} / {s.p90_ms:.2f} / {s.p99_ms:.2f} / {s.max_ms:.2f}"


def _check(c: StoredCheck | None) -> str:
    if c is None:
        return "[dim]not checked (no database)[/dim]"
    mark = "[green]ok[/green]" if c.ok else "[red]MISMATCH[/red]"
    return f"{mark}: {c.stored:,} stored, {c.expected:,} acknowledged"


def _latency_row(table: Table, label: str, f: LatencyFigures | None) -> None:
    if f is None:
        return
    errors = f"  [red]{f.errors} errors[/red] {f.first_error or ''}" if f.errors else ""
    rps = f.requests / f.wall_seconds if f.wall_seconds > 0 else 0.0
    table.add_row(label, f"{_lat(f.latency)} ms  ({f.requests:,} requests, {rps:,.0f}/s){errors}")


def render(figures: IngestFigures, console: Console) -> None:
    """One table: the headline figure first, then latency, checks and resources."""
    table = Table(title=f"bench ingest — {figures.engine}", show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("value", overflow="fold")
    table.add_row(
        "load",
        f"{figures.events:,} events, batches of {figures.batch_size}, {figures.concurrency} connections, "
        f"~{figures.mean_event_bytes:,.0f} B/event, client {figures.client}",
    )
    t = figures.throughput
    if t is not None:
        table.add_row("events/s durable", f"[bold]{t.events_per_second:,.0f}[/bold]")
        table.add_row("requests/s", f"{t.requests_per_second:,.1f}")
        table.add_row("/v1/batch latency p50/p90/p99/max", f"{_lat(t.latency)} ms")
        errors = f"[red]{t.errors}[/red]  {t.first_error or ''}" if t.errors else "0"
        table.add_row("errors", errors)
        table.add_row("wall time / client CPU", f"{t.wall_seconds:.2f} s / {t.client_cpu_seconds:.2f} s")
        table.add_row("stored after batches", _check(figures.throughput_check))
    _latency_row(table, "/v1/track sequential p50/p90/p99/max", figures.track_sequential)
    if figures.track_concurrent is not None:
        label = f"/v1/track {figures.track_concurrent.senders} senders p50/p90/p99/max"
        _latency_row(table, label, figures.track_concurrent)
    if figures.final_check is not None:
        table.add_row("stored at the end", _check(figures.final_check))
        table.add_row("customers / merges", f"{figures.final_check.customers:,} / {figures.final_check.merges:,}")
    rss = f"{_mib(figures.server_rss_bytes)} / {_mib(figures.server_peak_rss_bytes)}"
    table.add_row("server RSS (now / peak)", rss)
    table.add_row("database on disk", _mib(figures.database_bytes))
    for note in figures.notes:
        table.add_row("note", note)
    console.print(table)
