"""Throwaway PostgreSQL databases for tests, one per use, on the server SETTLE_TEST_DATABASE_URL
names: concurrent test runs on one machine (a developer's and CI's, or two helpers') never share
a schema, and nothing is left behind."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from tests.dbcheck import pg_dsn

# How long a test's events list waits for events held back from the gap-free feed
# (settle.events.service): the horizon is the oldest running transaction of the whole server,
# and another run's test may hold one open for seconds on purpose, which held the 100 ms of
# production past (seen: 5 tests of one run of tests/events and the API's events tests, while
# another worktree's suite ran). A list waits only while events are held, so tests stay fast.
EVENTS_WAIT = 10.0


def _admin(url: str) -> str:
    return urlunsplit(urlsplit(pg_dsn(url))._replace(path="/postgres"))


@contextmanager
def fresh_database(url: str, prefix: str = "settle_test") -> Iterator[str]:
    """A new, empty database beside the one ``url`` names; dropped on exit."""
    import psycopg

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(pg_dsn(url))._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(_admin(url), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
