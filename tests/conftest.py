"""Shared fixtures: a real database per test (SQLite and PostgreSQL), apps, live servers, clocks.

`db` is parametrised over both engines. PostgreSQL runs when SHOPKEEPER_TEST_DATABASE_URL points
at a server (any database on it; the suite creates its own database next to it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shopkeeper import clock
from shopkeeper.auth.service import create_workspace
from shopkeeper.clock import FrozenClock
from shopkeeper.db.migrate import upgrade
from shopkeeper.db.models import metadata
from shopkeeper.db.session import Database

PG_URL = os.environ.get("SHOPKEEPER_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test gets a copy of the file (much faster than migrating per test)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("PostgreSQL tests need SHOPKEEPER_TEST_DATABASE_URL")
    base = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"shopkeeper_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()


@dataclass
class TestDatabase:
    url: str
    db: Database

    @property
    def engine_name(self) -> str:
        return self.db.dialect


def _fresh_database(request: pytest.FixtureRequest, directory: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = directory / "shopkeeper.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_database")
    _truncate_all(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _fresh_database(request, tmp_path)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One empty database for a whole test module, for modules whose tests share one live server
    (`shared_live_server`): each test works in its own workspace, as tenants do."""
    return _fresh_database(request, tmp_path_factory.mktemp("module-db"))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def frozen_clock() -> Iterator[FrozenClock]:
    fake = FrozenClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    previous = clock.use(fake)
    try:
        yield fake
    finally:
        clock.use(previous)


@dataclass
class WorkspaceKeys:
    id: str
    slug: str
    write_key: str
    secret_key: str


@pytest.fixture
def make_workspace(db: Database):  # type: ignore[no-untyped-def]
    def factory(name: str = "Acme") -> WorkspaceKeys:
        with db.session(write=True) as session:
            ws, write_key, secret_key = create_workspace(session, f"{name} {uuid.uuid4().hex[:6]}", clock.now())
            return WorkspaceKeys(ws.id, ws.slug, write_key, secret_key)

    return factory


@pytest.fixture
def workspace(make_workspace) -> WorkspaceKeys:  # type: ignore[no-untyped-def]
    return make_workspace("Acme")


@pytest.fixture
def app_client(db_url: str, db: Database) -> Iterator[httpx.Client]:
    """The ASGI app in-process (lifespan and writer thread running) through Starlette's client."""
    from fastapi.testclient import TestClient

    from shopkeeper.app import create_app
    from shopkeeper.config import Settings

    settings = Settings(database_url=db_url, auto_migrate=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(db_url: str, log: Path, **env: str) -> LiveServer:
    """`shopkeeper serve` in a real subprocess on a free loopback port, ready when it answers."""
    port = free_port()
    environ = {
        **os.environ,
        "SHOPKEEPER_DATABASE_URL": db_url,
        "SHOPKEEPER_PORT": str(port),
        "SHOPKEEPER_HOST": "127.0.0.1",
        "SHOPKEEPER_LOG_LEVEL": "warning",
        **env,
    }
    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "shopkeeper", "serve"], env=environ, stdout=handle, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return LiveServer(url, process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


@pytest.fixture
def live_server(db_url: str, db: Database, tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(db_url, tmp_path / "server.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shared_live_server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One `shopkeeper serve` for a whole module (starting one costs seconds of CPU). A module opts
    in by overriding `db_url` with `module_db_url` and `live_server` with this; it suits tests
    that each make their own workspace and look only at it."""
    server = start_server(module_db_url, tmp_path_factory.mktemp("server") / "server.log")
    try:
        yield server
    finally:
        server.stop()
