"""A small `shopkeeper bench journeys` on SQLite: every tracked event becomes its send through a
real server, every run reaches its wait with its five steps, and the figures are written."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import shopkeeper


def test_bench_journeys_times_every_decision_and_every_step(tmp_path: Path) -> None:
    figures_path = tmp_path / "figures.json"
    out = shopkeeper(
        f"sqlite:///{tmp_path}/unused.db",
        "bench", "journeys", "--events", "30", "--rate", "40", "--connections", "2",
        "--runs", "300", "--batch", "100", "--json", str(figures_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr + out.stdout
    figures = json.loads(figures_path.read_text())
    assert figures["ok"] is True and figures["engine"] == "sqlite"
    # Each measured event (the warm-up second is left out) got its send, and was timed.
    assert figures["events"] == figures["decided"] == figures["decision"]["count"] == 30
    assert figures["track_errors"] == 0
    assert 0 < figures["decision"]["p50_ms"] <= figures["decision"]["p99_ms"] <= figures["decision"]["max_ms"]
    assert figures["track"]["count"] == 30
    # 300 runs × (split, update_trait, branch, send, wait).
    assert figures["steps"] == 1500 and figures["resting"] == 300
    assert figures["steps_per_second"] > 0
    assert "event → send decision" in out.stdout


def test_bench_journeys_refuses_a_rate_of_nothing(tmp_path: Path) -> None:
    out = shopkeeper(f"sqlite:///{tmp_path}/unused.db", "bench", "journeys", "--rate", "0")
    assert out.returncode == 2 and "--rate: more than 0" in out.stderr
