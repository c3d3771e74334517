"""Alembic environment: our engine factory (same pragmas as the app) and every model's metadata."""

from __future__ import annotations

from alembic import context

from shopkeeper.db.engine import make_engine
from shopkeeper.db.models import metadata

config = context.config


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # Batch migrations rebuild a table by copy, drop and rename. With foreign keys on,
                # dropping `workspaces` would cascade-delete every row that references it. The
                # pragma only works outside a transaction, so it goes straight to the driver.
                raw = connection.connection.dbapi_connection
                assert raw is not None
                raw.execute("PRAGMA foreign_keys=OFF")
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                if connection.dialect.name == "sqlite":
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")
    finally:
        engine.dispose()


run_migrations()
