"""Direct, synchronous reads of a Settle database for tests that must look behind the API.

SQL is written in PostgreSQL's ``$n`` style, as in the server; for SQLite it is rewritten to
``?n``. Rows come back as tuples. Opening a second connection is safe while a server runs
(SQLite in WAL mode; PostgreSQL sees committed rows only).
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from typing import Any

from settle.db.sqlite import sqlite_path

_PARAM_RE = re.compile(r"\$(\d+)")


def pg_dsn(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def query(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    if database_url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(database_url))
        try:
            return list(conn.execute(_PARAM_RE.sub(r"?\1", sql), params).fetchall())
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(pg_dsn(database_url), autocommit=True) as pg:
        cur = pg.execute(_PARAM_RE.sub("%s", sql), _pg_params(sql, params))
        return list(cur.fetchall()) if cur.description else []


def execute(database_url: str, sql: str, *params: Any) -> None:
    """A write behind the API's back (tests that age or damage rows), committed."""
    if database_url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(database_url), timeout=30)
        try:
            with conn:
                conn.execute(_PARAM_RE.sub(r"?\1", sql), params)
        finally:
            conn.close()
        return
    query(database_url, sql, *params)


def _pg_params(sql: str, params: tuple[Any, ...]) -> list[Any]:
    """psycopg takes positional ``%s``: repeat parameters in the order ``$n`` appear."""
    return [params[int(n) - 1] for n in _PARAM_RE.findall(sql)]


def table_names(database_url: str) -> set[str]:
    if database_url.startswith("sqlite:"):
        rows = query(database_url, "SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = query(
            database_url,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        )
    return {r[0] for r in rows}


def files_containing(paths: list[str], needles: list[str]) -> list[str]:
    """Searched by another process: opening and closing a database file in this one would drop
    the POSIX locks the in-process server's SQLite holds on it, which can corrupt it (see
    https://sqlite.org/howtocorrupt.html, 2.2)."""
    code = (
        "import sys\n"
        "paths, needles = sys.argv[1].split('\\n'), sys.argv[2].split('\\n')\n"
        "for p in paths:\n"
        "    data = open(p, 'rb').read()\n"
        "    if any(n.encode() in data for n in needles):\n"
        "        print(p)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "\n".join(paths), "\n".join(needles)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()
