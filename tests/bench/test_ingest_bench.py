"""`shopkeeper bench ingest` end to end on SQLite: a real server, real HTTP, the stored count checked."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from shopkeeper.bench.ingest import IngestOptions, run_ingest_bench
from shopkeeper.bench.server import fresh_database, provision, running_server
from shopkeeper.cli import app


def test_bench_ingest_stores_exactly_what_was_acknowledged_and_reports_positive_figures(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    result = CliRunner().invoke(
        app,
        [
            "bench", "ingest", "--database-url", "sqlite", "--events", "2000", "--batch-size", "100",
            "--concurrency", "2", "--track-requests", "50", "--people", "300", "--json", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = orjson.loads(out.read_bytes())
    assert data["ok"] is True
    assert data["throughput"]["events_acknowledged"] == 2000
    assert data["throughput"]["errors"] == 0
    assert data["throughput"]["events_per_second"] > 0
    assert data["throughput"]["latency"]["count"] == 20
    assert 0 < data["throughput"]["latency"]["p50_ms"] <= data["throughput"]["latency"]["p99_ms"]
    assert data["throughput_check"] == {**data["throughput_check"], "expected": 2000, "stored": 2000, "ok": True}
    assert data["track_sequential"]["latency"]["count"] == 50
    assert data["track_concurrent"]["senders"] == 4
    assert data["final_check"]["stored"] == 2100
    assert data["final_check"]["ok"] is True
    assert data["server_peak_rss_bytes"] >= data["server_rss_bytes"] > 0
    assert data["database_bytes"] > 0
    assert "events/s durable" in result.output


def test_bench_against_a_running_target_checks_its_database(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as database:
        workspace = provision(database.url)
        with running_server(database.url, tmp_path / "server.log") as server:
            options = IngestOptions(
                database=database.url,
                target=server.url,
                write_key=workspace.write_key,
                events=300,
                batch_size=50,
                concurrency=2,
                track_requests=10,
                people=50,
            )
            first = run_ingest_bench(options)
            second = run_ingest_bench(options)  # new message ids: stored again, counted from where it was
    assert first.ok and second.ok
    assert second.final_check is not None and second.final_check.stored == 2 * (300 + 20)
    assert second.server_rss_bytes is None


def test_impossible_options_end_with_one_line_and_exit_code_2() -> None:
    runner = CliRunner()
    for args in (["--events", "0"], ["--target", "http://127.0.0.1:9"], ["--client", "curl"],
                 ["--batch-size", "20000"]):  # fmt: skip
        result = runner.invoke(app, ["bench", "ingest", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output
