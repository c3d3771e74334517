"""Fresh databases and `shopkeeper serve` subprocesses for benchmarks.

A bench must measure the server a user runs — a separate process behind a real socket, on a
database nobody else writes to — and must leave nothing behind. Every bench uses these helpers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shopkeeper import clock
from shopkeeper.db.engine import normalise_url
from shopkeeper.errors import Invalid, Unavailable

SQLITE_SHORTHAND = "sqlite"


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """A database made for one bench run: its URL, its engine and, for SQLite, its file."""

    url: str
    engine: str
    path: Path | None = None

    def size_bytes(self) -> int | None:
        """Bytes on disk: the SQLite file with its WAL and shared-memory files, or PostgreSQL's
        `pg_database_size` (what `du` would say of the database's directory)."""
        if self.path is not None:
            files = [self.path.with_name(self.path.name + suffix) for suffix in ("", "-wal", "-shm")]
            return sum(f.stat().st_size for f in files if f.exists())
        engine = create_engine(normalise_url(self.url))
        try:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
        finally:
            engine.dispose()


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


@contextmanager
def fresh_database(spec: str, workdir: Path) -> Iterator[BenchDatabase]:
    """A new, empty database for `spec`, removed afterwards.

    `sqlite` means a file in `workdir`; `sqlite:///dir/name.db` a new file in `dir` (to bench a
    particular disk); a PostgreSQL URL a new database on that server, created next to the one
    named, because a benchmark must neither read nor disturb someone's data.
    """
    if spec == SQLITE_SHORTHAND:
        path = workdir / "bench.db"
        try:
            yield BenchDatabase(f"sqlite:///{path}", "sqlite", path)
        finally:
            _remove_sqlite(path)
        return
    if spec.startswith("sqlite"):
        given = make_url(spec).database
        if not given or given == ":memory:":
            raise Invalid("--database-url: a SQLite bench needs a file (use `sqlite` for a temporary one)")
        directory = Path(given).expanduser().resolve().parent
        if not directory.is_dir():
            raise Invalid(f"--database-url: directory {directory} does not exist")
        path = directory / f"shopkeeper-bench-{uuid.uuid4().hex[:8]}.db"
        try:
            yield BenchDatabase(f"sqlite:///{path}", "sqlite", path)
        finally:
            _remove_sqlite(path)
        return
    if spec.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        with _fresh_postgres(spec) as url:
            yield BenchDatabase(url, "postgresql")
        return
    raise Invalid("--database-url: expected `sqlite`, a sqlite:/// URL or a postgresql:// URL")


@contextmanager
def _fresh_postgres(spec: str) -> Iterator[str]:
    base = make_url(normalise_url(spec))
    name = f"shopkeeper_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any driver error becomes one clear line
        admin.dispose()
        raise Unavailable(f"--database-url: cannot create a database on {base.host}: {exc}".splitlines()[0]) from None
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True, slots=True)
class BenchWorkspace:
    id: str
    write_key: str


def provision(url: str) -> BenchWorkspace:
    """Migrate the database and create a workspace, returning its write key (shown only once)."""
    from shopkeeper.auth.service import create_workspace
    from shopkeeper.db.migrate import upgrade
    from shopkeeper.db.session import Database

    upgrade(url)
    db = Database(url)
    try:
        with db.session(write=True) as session:
            ws, write_key, _ = create_workspace(session, f"Bench {uuid.uuid4().hex[:6]}", clock.now())
            return BenchWorkspace(ws.id, write_key)
    finally:
        db.dispose()


def free_port() -> int:
    """A TCP port free on loopback right now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ProcessMemory:
    rss_bytes: int
    peak_rss_bytes: int


def process_memory(pid: int) -> ProcessMemory | None:
    """VmRSS and VmHWM (the peak) from /proc; None where /proc is missing or the process ended."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024  # reported in kB
    if "VmRSS" not in values or "VmHWM" not in values:
        return None
    return ProcessMemory(values["VmRSS"], values["VmHWM"])


@dataclass
class ServerProcess:
    """`python -m shopkeeper serve` running as a child process, answering on `url`."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def memory(self) -> ProcessMemory | None:
        return process_memory(self.pid)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, so uvicorn runs the lifespan shutdown (the writer drains its queue)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _log_tail(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def start_server(
    db_url: str, log_path: Path, *, env: Mapping[str, str] | None = None, timeout: float = 60
) -> ServerProcess:
    """Start the server on a free loopback port and return once GET /health answers 200."""
    port = free_port()
    environ = {
        **os.environ,
        "SHOPKEEPER_DATABASE_URL": db_url,
        "SHOPKEEPER_HOST": "127.0.0.1",
        "SHOPKEEPER_PORT": str(port),
        "SHOPKEEPER_LOG_LEVEL": "warning",
        **(env or {}),
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shopkeeper", "serve"], env=environ, stdout=log, stderr=subprocess.STDOUT
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"the server exited at start (log {log_path}): {_log_tail(log_path)}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop()
    raise Unavailable(f"the server did not answer /health within {timeout:.0f} s (log {log_path})")


@contextmanager
def running_server(db_url: str, log_path: Path, *, env: Mapping[str, str] | None = None) -> Iterator[ServerProcess]:
    server = start_server(db_url, log_path, env=env)
    try:
        yield server
    finally:
        server.stop()
