"""`shopkeeper segments refresh|scores` and a small `shopkeeper bench segments` on each engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shopkeeper.db.session import Database
from shopkeeper.segments import service
from tests.helpers import ingest, message
from tests.test_cli import shopkeeper


def test_segments_refresh_and_scores_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    created = shopkeeper(url, "workspace", "create", "Corner Shop")
    assert created.returncode == 0, created.stderr
    ws = re.search(r"workspace\s+(ws_\S+)", created.stdout)
    assert ws
    db = Database(url)
    try:
        ingest(
            db,
            ws[1],
            [message("track", userId=f"u{n}", event="Order Completed", properties={"total": 9}) for n in range(3)],
        )
        with db.session(write=True) as session:
            from shopkeeper import clock

            service.create(
                session,
                ws[1],
                key="buyers",
                name="Buyers",
                conditions={"event": {"name": "Order Completed"}},
                actor="test",
                now=clock.now(),
            )
    finally:
        db.dispose()
    out = shopkeeper(url, "segments", "refresh", "--workspace", "corner-shop")
    assert out.returncode == 0, out.stderr
    assert re.search(r"buyers\s+3 members\s+\+3 −0", out.stdout), out.stdout
    again = shopkeeper(url, "segments", "refresh", "--workspace", "corner-shop", "--segment", "buyers")
    assert re.search(r"buyers\s+3 members\s+\+0 −0", again.stdout), again.stdout
    missing = shopkeeper(url, "segments", "refresh", "--workspace", "corner-shop", "--segment", "nope")
    assert missing.returncode == 2 and "no live segment 'nope'" in missing.stderr
    scores = shopkeeper(url, "segments", "scores", "--workspace", "corner-shop")
    assert scores.returncode == 0, scores.stderr
    assert "RFM            3 buyers scored" in scores.stdout


def test_bench_segments_command_writes_its_figures_and_cleans_up(tmp_path: Path) -> None:
    args = [
        "bench",
        "segments",
        "--engine",
        "duckdb",
        "--customers",
        "2000",
        "--events",
        "20000",
        "--incremental",
        "20",
        "--workdir",
        str(tmp_path),
        "--json",
        str(tmp_path / "figures.json"),
    ]
    out = shopkeeper(f"sqlite:///{tmp_path}/unused.db", *args)
    assert out.returncode == 0, out.stderr
    assert "refresh lapsed_buyers" in out.stdout
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert [r["key"] for r in figures["refresh"]][-1] == "best_not_lapsed"  # after the segment it uses
    assert all(r["changed_again"] == 0 for r in figures["refresh"])
    assert figures["incremental"]["count"] == 20
    assert not list(tmp_path.glob("shopkeeper-bench-*")), "the bench left its files behind"


def test_the_three_engines_find_the_same_members_in_the_bench_shop(tmp_path: Path) -> None:
    """The data is generated in SQL from one hash on every engine, so the members must agree."""
    import os

    from shopkeeper.bench.segments import SegmentBenchOptions, run_segments_bench

    engines = ["sqlite", "duckdb"]
    pg = os.environ.get("SHOPKEEPER_TEST_DATABASE_URL")
    if pg:
        engines.append("postgresql")
    found = {}
    for engine in engines:
        options = SegmentBenchOptions(engine, 3000, 30_000, 5, pg or "", tmp_path)
        figures = run_segments_bench(options)
        found[engine] = {r.key: r.members for r in figures.refresh}
    first = found["sqlite"]
    assert all(count > 0 for count in first.values()), first
    assert all(members == first for members in found.values()), found
