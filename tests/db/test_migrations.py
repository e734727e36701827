"""Alembic migrations are the only way the schema changes: they must match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from settle.db.migrate import sync_url, upgrade
from settle.db.schema import metadata


def test_migrations_match_the_schema(database_url: str) -> None:
    upgrade(database_url)  # idempotent at head
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()
