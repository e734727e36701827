"""SQLite backend: one writer connection with group commit, one reader connection.

Why this shape (measured, see bench/README.md): SQLite has a single write lock, and a pool of
connections fighting over it gives seconds of p99 and "database is locked" errors. Here every
write transaction of the process runs on one connection, one after another, each inside its own
SAVEPOINT; the SAVEPOINTs of all requests that arrive while a commit is under way are committed
together by the next COMMIT (one fsync for many requests). A request hears "done" only after
the COMMIT that covers it returned, so a 200 always means durable (synchronous=FULL).

Statements run in the event loop thread: they touch only the page cache and take microseconds.
The slow parts (BEGIN IMMEDIATE, which may wait for another process's lock, and COMMIT, which
fsyncs) run in a dedicated thread; sqlite3 releases the GIL meanwhile.

With several worker processes there are several writers, one per process. SQLite's own lock
makes a waiting writer poll in its busy handler, sleeping 1 to 100 ms between tries: measured,
a create p99 of 60 ms at 10,000 invoices and 540 ms at 1,000,000 with 2 workers. So the
writers first queue on an exclusive ``flock`` of a lock file beside the database: the kernel
wakes the next one the moment the lock is released, and BEGIN IMMEDIATE then finds SQLite's
lock free.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Any

from settle.db.database import DatabaseUnavailable, Lock, Row, UniqueViolation

CHECKPOINT_SECONDS = 0.5
_PARAM_RE = re.compile(r"\$(\d+)")
_UNIQUE_RE = re.compile(r"UNIQUE constraint failed: (.+)")


@lru_cache(maxsize=1024)
def to_sqlite(sql: str) -> str:
    """``$1`` -> ``?1``. (Row locks need no SQL here: the single writer already serialises
    every write transaction, which is the lock ``Lock.UPDATE`` asks for.)"""
    return _PARAM_RE.sub(r"?\1", sql)


def sqlite_path(url: str) -> str:
    """``sqlite:///settle.db`` -> ``settle.db``; ``sqlite:////abs/x.db`` -> ``/abs/x.db``."""
    rest = url.removeprefix("sqlite:")
    path = rest[3:] if rest.startswith("///") else rest.removeprefix("//")
    if not path or path == ":memory:":
        raise ValueError("Settle needs a file-backed SQLite database (sqlite:///PATH)")
    return path


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """Rows as plain dicts, column names read once per query. (sqlite3.Row looks names up by a
    linear, case-insensitive scan: slower than one dict for the ~50-column rows read here.)"""
    rows = cursor.fetchall()
    if not rows:
        return rows
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in rows]


def _open(path: str, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = ON")
    # Read the database file through a memory map (no read() syscall per page, pages shared
    # with the OS cache) and keep a larger private cache for the WAL and hot index pages:
    # measured at 1,000,000 invoices, reads of pages far from the newest were the cost.
    conn.execute("PRAGMA mmap_size = 1073741824")
    conn.execute("PRAGMA cache_size = -16384")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint_loop
    return conn


def constraint_name(conn: sqlite3.Connection, message: str) -> str | None:
    """The schema's name for the constraint SQLite's message describes only by its columns
    ("UNIQUE constraint failed: customers.project_id, customers.sandbox, customers.handle").

    A unique index keeps the name it was created with; a table-level UNIQUE or PRIMARY KEY is
    named by the schema's naming convention (``uq_<table>_<columns>``, ``pk_<table>``), which
    SQLite does not keep. Runs only when a violation happened: a few PRAGMA reads.
    """
    match = _UNIQUE_RE.search(message)
    if match is None:
        return None
    qualified = [c.strip() for c in match.group(1).split(",")]
    table = qualified[0].split(".", 1)[0]
    columns = [c.split(".", 1)[-1] for c in qualified]
    if not table.isidentifier():
        return None
    for _, name, unique, origin, _partial in conn.execute(f"PRAGMA index_list({table})"):
        if not unique:
            continue
        indexed = [row[2] for row in conn.execute(f"PRAGMA index_info({name!r})")]
        if indexed == columns:
            if origin == "c":
                return str(name)
            if origin == "pk":
                return f"pk_{table}"
            return f"uq_{table}_{'_'.join(columns)}"
    # An INTEGER PRIMARY KEY (the rowid) has no index to list.
    return f"pk_{table}"


def _translate(exc: sqlite3.Error, conn: sqlite3.Connection) -> Exception:
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
        return UniqueViolation(str(exc), constraint_name(conn, str(exc)))
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return exc
    return DatabaseUnavailable(str(exc))


class SQLiteTx:
    """Runs statements synchronously; the ``async`` signatures match the PostgreSQL backend.

    ``statements``: how many more statements may run (None: any number), for
    ``read(one_statement=True)``, whose promise is checked on both backends alike.
    """

    __slots__ = ("_conn", "_left")

    def __init__(self, conn: sqlite3.Connection, statements: int | None = None) -> None:
        self._conn = conn
        self._left = statements

    def _run(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        if self._left is not None:
            if self._left <= 0:
                raise RuntimeError("a one-statement read ran a second statement")
            self._left -= 1
        try:
            return self._conn.execute(to_sqlite(sql), args)
        except sqlite3.Error as exc:
            raise _translate(exc, self._conn) from exc

    async def execute(self, sql: str, *args: Any) -> None:
        self._run(sql, args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._conn.executemany(to_sqlite(sql), rows)
        except sqlite3.Error as exc:
            raise _translate(exc, self._conn) from exc

    async def fetchrow(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetch(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> list[Row]:
        try:
            return _dicts(self._run(sql, args))  # type: ignore[return-value]
        except sqlite3.Error as exc:  # raised while stepping through the rows
            raise _translate(exc, self._conn) from exc

    async def fetchval(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> Any:
        try:
            row = self._run(sql, args).fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc, self._conn) from exc
        return None if row is None else row[0]

    async def require(self, sql: str, *args: Any, missing: Exception) -> None:
        # Checked at once: the one writer per database holds every row till the end anyway.
        if await self.fetchrow(sql, *args) is None:
            raise missing

    async def guard(self, sql: str, *args: Any, conflict: Exception) -> None:
        # At once likewise; a refused guard fails the request's whole savepoint (the caller
        # raises out of ``write()``), so nothing it wrote before stays.
        if self._run(sql, args).rowcount == 0:
            raise conflict


class SQLiteDatabase:
    backend = "sqlite"

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._writer = _open(path, readonly=False)
        self._lock_fd = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._flocked = False
        self._reader = _open(path, readonly=True)
        self._reading = asyncio.Lock()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
        self._lock = asyncio.Lock()
        self._pending: list[asyncio.Future[None]] = []
        self._has_pending = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._closed = False

    async def _in_thread(self, fn: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, fn)

    def _begin(self) -> None:
        # Idempotent: a cancelled caller may have left a BEGIN running in the thread.
        if self._writer.in_transaction:
            return
        if not self._flocked:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._flocked = True
        try:
            self._writer.execute("BEGIN IMMEDIATE")
        finally:
            self._unlock_if_idle()

    def _end(self, sql: str) -> None:
        """COMMIT or ROLLBACK the batch, then let the next process's writer in."""
        try:
            self._writer.execute(sql)
        finally:
            self._unlock_if_idle()

    def _commit(self) -> None:
        self._end("COMMIT")

    def _unlock_if_idle(self) -> None:
        if self._flocked and not self._writer.in_transaction:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            self._flocked = False

    @asynccontextmanager
    async def write(self, *, one_statement: bool = False) -> AsyncIterator[SQLiteTx]:
        if self._closed:
            raise DatabaseUnavailable("database is closed")
        loop = asyncio.get_running_loop()
        if self._committer is None:
            self._committer = loop.create_task(self._commit_loop())
            self._checkpointer = loop.create_task(self._checkpoint_loop())
        done: asyncio.Future[None] = loop.create_future()
        async with self._lock:
            conn = self._writer
            if not conn.in_transaction:
                try:
                    await self._in_thread(self._begin)
                except sqlite3.Error as exc:
                    raise DatabaseUnavailable(str(exc)) from exc
            conn.execute("SAVEPOINT request")
            try:
                yield SQLiteTx(conn, statements=1 if one_statement else None)
            except BaseException:
                self._rollback_savepoint()
                raise
            try:
                conn.execute("RELEASE request")
            except sqlite3.Error as exc:
                self._abort_batch(exc)
                raise DatabaseUnavailable(str(exc)) from exc
            self._pending.append(done)
            self._has_pending.set()
        await done

    def _rollback_savepoint(self) -> None:
        try:
            self._writer.execute("ROLLBACK TO request")
            self._writer.execute("RELEASE request")
            if not self._pending:
                # Nothing else in this batch: end it now rather than hold the write lock.
                self._end("ROLLBACK")
        except sqlite3.Error as exc:
            # The whole transaction is gone (e.g. an I/O error): every request of this batch
            # fails, none half-written.
            self._abort_batch(exc)

    def _abort_batch(self, exc: BaseException) -> None:
        if self._writer.in_transaction:
            with suppress(sqlite3.Error):
                self._end("ROLLBACK")
        self._unlock_if_idle()
        pending, self._pending = self._pending, []
        self._has_pending.clear()
        for fut in pending:
            if not fut.done():
                fut.set_exception(DatabaseUnavailable(f"commit failed: {exc}"))

    async def _commit_loop(self) -> None:
        while True:
            await self._has_pending.wait()
            async with self._lock:
                pending, self._pending = self._pending, []
                self._has_pending.clear()
                if not pending:
                    continue
                try:
                    await self._in_thread(self._commit)
                except sqlite3.Error as exc:
                    self._pending = pending
                    self._abort_batch(exc)
                    continue
            for fut in pending:
                if not fut.done():
                    fut.set_result(None)

    async def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database off the write path.

        SQLite's automatic checkpoint runs inside a COMMIT, and with synchronous=FULL it fsyncs
        the database file while every queued request waits: that was this backend's p99. The
        writer's auto-checkpoint is off; a PASSIVE checkpoint on a connection of its own, in a
        thread of its own, runs alongside the writer instead (it never blocks it, and skips
        frames a reader still needs).
        """
        loop = asyncio.get_running_loop()
        conn = _open(self.path, readonly=False)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_SECONDS)
                with suppress(sqlite3.Error):
                    await loop.run_in_executor(
                        executor, conn.execute, "PRAGMA wal_checkpoint(PASSIVE)"
                    )
        finally:
            executor.shutdown(wait=True)
            conn.close()

    @asynccontextmanager
    async def read(self, *, one_statement: bool = False) -> AsyncIterator[SQLiteTx]:
        """One snapshot: a deferred read transaction on the reader connection (it costs
        microseconds: no round trip). Without it each statement saw the database as of its own
        start, and a commit landing between two of them (from this process's commit thread or
        another worker) tore the answer. The lock keeps two reads from sharing the one reader
        transaction; it is never contended in practice, since read bodies run no real I/O
        between their statements and so never yield to the event loop."""
        if one_statement:
            yield SQLiteTx(self._reader, statements=1)
            return
        async with self._reading:
            conn = self._reader
            try:
                conn.execute("BEGIN")
            except sqlite3.Error as exc:
                raise DatabaseUnavailable(str(exc)) from exc
            try:
                yield SQLiteTx(conn)
            finally:
                with suppress(sqlite3.Error):
                    conn.execute("COMMIT")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in (self._committer, self._checkpointer):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        # Requests already past their SAVEPOINT are committed, not lost.
        async with self._lock:
            pending, self._pending = self._pending, []
            if self._writer.in_transaction:
                try:
                    await self._in_thread(self._commit)
                except sqlite3.Error as exc:
                    self._pending = pending
                    self._abort_batch(exc)
                    pending = []
            for fut in pending:
                if not fut.done():
                    fut.set_result(None)
        self._thread.shutdown(wait=True)
        self._writer.close()
        self._reader.close()
        os.close(self._lock_fd)  # releases the flock, were it still held
