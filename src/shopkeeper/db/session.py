"""The Database handle: one engine per process, a session per unit of work, committed at its end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shopkeeper.db.engine import make_engine, normalise_url


class Database:
    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL", background_checkpoint: bool = False) -> None:
        self.url = normalise_url(url)
        self.background_checkpoint = background_checkpoint and self.url.startswith("sqlite")
        self.engine: Engine = make_engine(
            self.url, sqlite_synchronous=sqlite_synchronous, sqlite_autocheckpoint=not self.background_checkpoint
        )
        # Writers take SQLite's write lock at BEGIN; on PostgreSQL the option is ignored.
        self.write_engine: Engine = self.engine.execution_options(sqlite_immediate=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back if it raises."""
        with Session(self.write_engine if write else self.engine, expire_on_commit=False) as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()
