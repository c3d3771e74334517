"""`shopkeeper demo` on the command line: loads a shop, prints the workspace and its keys,
leaves an existing demo alone with --if-empty, and refuses bad options in one line."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from shopkeeper.cli import app
from shopkeeper.clock import FrozenClock
from shopkeeper.config import get_settings

SMALL = ["--customers", "30", "--events", "600", "--until", "2026-03-01"]


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh SQLite file named by SHOPKEEPER_DATABASE_URL, as a user would set it."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("SHOPKEEPER_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["demo", *args])


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_demo_loads_the_shop_and_prints_the_workspace_and_its_keys(database: str) -> None:
    result = run(*SMALL)
    assert result.exit_code == 0, result.output
    [(workspace_id, slug)] = query(database, "SELECT id, slug FROM workspaces")
    assert slug == "demo-shop"
    assert str(workspace_id) in result.stdout
    assert "write key  wk_" in result.stdout and "secret key sk_" in result.stdout
    [(tracked,)] = query(database, "SELECT count(*) FROM events WHERE type IN ('page', 'track')")
    [(identified,)] = query(database, "SELECT count(DISTINCT value) FROM identities WHERE kind = 'user_id'")
    assert (tracked, identified) == (600, 30)


def test_running_it_again_stores_nothing_new(database: str) -> None:
    assert run(*SMALL).exit_code == 0
    [(before,)] = query(database, "SELECT count(*) FROM events")
    again = run(*SMALL)
    assert again.exit_code == 0, again.output
    assert query(database, "SELECT count(*) FROM events") == [(before,)]
    assert "stored     0 new" in again.stdout
    assert "wk_" not in again.stdout, "keys are only known when the workspace is made"


def test_if_empty_leaves_an_existing_demo_alone(database: str) -> None:
    assert run(*SMALL).exit_code == 0
    [(before,)] = query(database, "SELECT count(*) FROM events")
    result = run("--if-empty", "--seed", "7", *SMALL)
    assert result.exit_code == 0, result.output
    assert "exists already" in result.stdout
    assert query(database, "SELECT count(*) FROM events") == [(before,)]


def test_if_empty_loads_when_there_is_no_demo_yet(database: str) -> None:
    result = run("--if-empty", *SMALL)
    assert result.exit_code == 0, result.output
    [(pages,)] = query(database, "SELECT count(*) FROM events WHERE type = 'page'")
    assert isinstance(pages, int) and pages > 0


def test_another_workspace_name_holds_a_second_demo(database: str) -> None:
    assert run(*SMALL).exit_code == 0
    other = run("--seed", "7", "--workspace-name", "Second Shop", *SMALL)
    assert other.exit_code == 0, other.output
    assert sorted(query(database, "SELECT slug FROM workspaces")) == [("demo-shop",), ("second-shop",)]


def test_until_defaults_to_today_on_the_shopkeeper_clock(database: str, frozen_clock: FrozenClock) -> None:
    result = run("--customers", "10", "--events", "200")
    assert result.exit_code == 0, result.output
    today = frozen_clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    # The shop's own history (segment entries recorded at load time are internal events of today).
    [(first, last)] = query(database, "SELECT min(timestamp), max(timestamp) FROM events WHERE type <> 'internal'")
    first_at = datetime.fromisoformat(str(first)).replace(tzinfo=UTC)
    last_at = datetime.fromisoformat(str(last)).replace(tzinfo=UTC)
    assert today - timedelta(days=366) < first_at <= last_at < today


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--customers", "0"], "--customers"),
        (["--events", "-1"], "--events"),
        (["--customers", "2", "--events", "100000000"], "--events"),
        (["--until", "2026-02-30"], "--until"),
        (["--workspace-name", "  "], "--workspace-name"),
    ],
)
def test_bad_options_fail_with_one_line_naming_the_option(database: str, args: list[str], names: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and names in lines[0], result.stderr
    assert not Path(database.removeprefix("sqlite:///")).exists(), "nothing is written before the options are checked"
