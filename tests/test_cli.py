"""The `shopkeeper` command: workspaces and keys, import, and one-line errors with exit code 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server


def shopkeeper(db_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOPKEEPER_DATABASE_URL": db_url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "shopkeeper", *args], env=env, capture_output=True, text=True, timeout=120, input=stdin
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cli.db"


def test_workspace_create_prints_keys_that_work(sqlite_url: str, tmp_path: Path) -> None:
    out = shopkeeper(sqlite_url, "workspace", "create", "Corner Shop")
    assert out.returncode == 0, out.stderr
    write_key = re.search(r"write key\s+(wk_\S+)", out.stdout)
    secret_key = re.search(r"secret key\s+(sk_\S+)", out.stdout)
    assert write_key and secret_key
    assert "corner-shop" in out.stdout

    server = start_server(sqlite_url, tmp_path / "server.log")
    try:
        r = httpx.post(f"{server.url}/v1/track", auth=(write_key[1], ""), json={"userId": "u", "event": "E"})
        assert r.status_code == 200
        r = httpx.get(f"{server.url}/api/v1/workspace", headers={"Authorization": f"Bearer {secret_key[1]}"})
        assert r.json()["slug"] == "corner-shop"
    finally:
        server.stop()

    again = shopkeeper(sqlite_url, "workspace", "create", "Corner Shop")
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "exists already" in again.stderr


def test_key_and_user_commands(sqlite_url: str) -> None:
    assert shopkeeper(sqlite_url, "workspace", "create", "Keys").returncode == 0
    key = shopkeeper(sqlite_url, "key", "create", "keys", "--kind", "write", "--name", "website")
    assert key.returncode == 0 and re.search(r"write key key_\w+: wk_", key.stdout)
    bad_kind = shopkeeper(sqlite_url, "key", "create", "keys", "--kind", "root")
    assert bad_kind.returncode == 2 and "kind" in bad_kind.stderr
    user = shopkeeper(
        sqlite_url,
        "user",
        "create",
        "keys",
        "--email",
        "Agent@Example.com",
        "--role",
        "agent",
        "--password",
        "correct horse battery",
    )
    assert user.returncode == 0 and "agent@example.com (agent)" in user.stdout
    weak = shopkeeper(sqlite_url, "user", "create", "keys", "--email", "b@example.com", "--password", "short")
    assert weak.returncode == 2 and "password" in weak.stderr
    missing = shopkeeper(sqlite_url, "key", "create", "no-such-workspace")
    assert missing.returncode == 2 and "no workspace" in missing.stderr


def test_import_reports_bad_lines_and_stores_the_rest(sqlite_url: str, tmp_path: Path) -> None:
    assert shopkeeper(sqlite_url, "workspace", "create", "Imports").returncode == 0
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "track", "userId": "u1", "event": "Imported"}\n{"type": "track", "event": "No id"}\n')
    out = shopkeeper(sqlite_url, "import", "events", str(events), "--workspace", "imports")
    assert out.returncode == 2
    assert "1 stored" in out.stdout and "1 rejected" in out.stdout
    assert "line 2: userId or anonymousId is required" in out.stderr
    again = shopkeeper(sqlite_url, "import", "events", str(events), "--workspace", "imports")
    assert "0 stored, 1 already there" in again.stdout
    nothing = shopkeeper(sqlite_url, "import", "customers", str(tmp_path / "missing.csv"), "--workspace", "imports")
    assert nothing.returncode == 2 and "no such file" in nothing.stderr and "Traceback" not in nothing.stderr
