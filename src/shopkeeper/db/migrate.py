"""Applying Alembic migrations from code (`shopkeeper db upgrade`, server start, tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from shopkeeper.db.engine import normalise_url


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "shopkeeper.db:migrations")
    # ConfigParser interpolation would eat the % of URL-encoded passwords.
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from shopkeeper.db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
