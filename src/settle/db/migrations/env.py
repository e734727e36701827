"""Alembic environment: runs online against the URL given by ``settle.db.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from settle.db.schema import include_object, metadata

config = context.config


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object(connection.dialect.name),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
