"""Apply the Alembic migrations (the only way the schema changes)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from settle.db.postgres import asyncpg_dsn
from settle.db.sqlite import sqlite_path

MIGRATIONS = Path(__file__).with_name("migrations")


def sync_url(url: str) -> str:
    """The SQLAlchemy URL Alembic uses (a sync driver) for a Settle database URL."""
    if url.startswith("sqlite:"):
        path = Path(sqlite_path(url))
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    return "postgresql+psycopg://" + asyncpg_dsn(url).removeprefix("postgresql://")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # '%' is ConfigParser interpolation syntax; URLs may contain it (escaped passwords).
    cfg.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
