"""A small `shopkeeper bench send`: both stages deliver every message exactly once, with either
receiving server, and the figures are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import shopkeeper


@pytest.mark.parametrize("sink", ["lean", "aiosmtpd"])
def test_bench_send_delivers_every_message_once_and_writes_its_figures(tmp_path: Path, sink: str) -> None:
    out = shopkeeper(
        f"sqlite:///{tmp_path}/unused.db",
        "bench",
        "send",
        "--messages",
        "60",
        "--connections",
        "2",
        "--sink",
        sink,
        "--json",
        str(tmp_path / "figures.json"),
    )
    assert out.returncode == 0, out.stderr
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["sink"] == sink and figures["handoff_connections"] == 2
    assert figures["sent"] == 60
    # 60 from the render + hand-off stage, 60 through the pipeline, no Message-ID seen twice.
    assert figures["received"] == figures["distinct_message_ids"] == 120
    assert figures["handoff_per_second"] > 0 and figures["pipeline_per_second"] > 0


def test_bench_send_refuses_an_unknown_sink(tmp_path: Path) -> None:
    out = shopkeeper(f"sqlite:///{tmp_path}/unused.db", "bench", "send", "--sink", "postfix")
    assert out.returncode == 2 and "--sink: one of lean, aiosmtpd" in out.stderr
