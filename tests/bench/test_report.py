"""The bench's arithmetic on known inputs: percentiles, latency summaries, the pass/fail verdict."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shopkeeper.bench.report import (
    IngestFigures,
    LatencyFigures,
    LatencySummary,
    StoredCheck,
    ThroughputFigures,
    percentile,
    write_json,
)


def test_percentile_interpolates_between_the_two_nearest_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 90) == pytest.approx(3.7)
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_one_to_a_hundred_matches_numpy_linear() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 90) == pytest.approx(90.1)
    assert percentile(values, 99) == pytest.approx(99.01)


def test_percentile_refuses_no_values_and_out_of_range_q() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary_converts_nanoseconds_to_milliseconds_whatever_the_order() -> None:
    samples_ns = [ms * 1_000_000 for ms in (5, 1, 4, 2, 3)]
    s = LatencySummary.from_ns(samples_ns)
    assert (s.count, s.p50_ms, s.max_ms, s.mean_ms) == (5, 3.0, 5.0, 3.0)
    assert s.p90_ms == pytest.approx(4.6)
    assert s.p99_ms == pytest.approx(4.96)


def test_latency_summary_of_no_samples_is_zero_not_an_error() -> None:
    assert LatencySummary.from_ns([]) == LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _figures(errors: int = 0, stored: int = 1000) -> IngestFigures:
    lat = LatencySummary.from_ns([1_000_000, 2_000_000])
    figures = IngestFigures("sqlite", "http://127.0.0.1:1", 1000, 100, 2, "raw", 980.0)
    figures.throughput = ThroughputFigures(1000, 1000 - errors * 100, 10, errors, 0.5, 2000.0, 20.0, lat, 0.01)
    figures.throughput_check = StoredCheck(expected=1000 - errors * 100, stored=stored, customers=10, merges=0)
    figures.track_sequential = LatencyFigures(1, 5, 0, 0.01, lat)
    return figures


def test_a_run_is_ok_only_without_errors_and_with_matching_counts() -> None:
    assert _figures().ok
    assert not _figures(stored=999).ok
    assert not _figures(errors=1, stored=900).ok


def test_json_holds_every_figure_and_the_verdicts(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_json(_figures(stored=999), path)
    data = orjson.loads(path.read_bytes())
    assert data["ok"] is False
    assert data["throughput_check"] == {"expected": 1000, "stored": 999, "customers": 10, "merges": 0, "ok": False}
    assert data["throughput"]["events_per_second"] == 2000.0
    assert data["throughput"]["latency"]["p50_ms"] == 1.5
    assert data["track_sequential"]["senders"] == 1
    assert data["track_concurrent"] is None
