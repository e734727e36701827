"""PostgreSQL backend: asyncpg directly, no ORM on the hot path (measured on the 2-core test
machine: one insert + commit took 0.52 ms, 0.13 ms of it CPU, through asyncpg; 1.6 ms, 1.06 ms
CPU, through the SQLAlchemy ORM on asyncpg).

Round trips are the cost that matters here (each one wakes a server process), so a
transaction is opened lazily and plain INSERTs are deferred:

- Plain INSERTs and UPDATEs are queued, not sent. When the request's work succeeds, the queue
  goes out as ONE statement (chained as data-modifying CTEs), which PostgreSQL runs atomically
  in its own implicit transaction: creating an invoice with its lines and its transaction is
  one round trip instead of six (BEGIN, 4 INSERTs, COMMIT). Inside a real transaction the queue
  goes out likewise before the next read and before COMMIT: a payment step's four UPDATEs
  (operation, card checks, transaction, invoice) are one round trip instead of four.
- Anything that needs a real transaction starts one first, then flushes the queue inside it:
  a DELETE, a locking read (``FOR UPDATE``, which guards a check-then-write), or any read
  while writes are queued (so reads always see the request's own writes).
- Only statements that read no other table are queued (``deferrable``): the parts of one
  statement all see the snapshot from before it, so an UPDATE with a sub-SELECT could miss a
  row queued beside it. And a table takes part at most once per chained statement (two
  UPDATEs of one table would not see each other): otherwise the queue runs one by one.
- ``require()`` (a share lock taken for a reference alone) waits with the queue and goes out
  as the chained statement's main query (``required``): creating a customer's invoice is one
  round trip instead of four (BEGIN, SELECT ... FOR SHARE, the writes, COMMIT). In a real
  transaction it is held at once, as a locking read would be.

Reads that happen before any write run in autocommit, as they would at the start of a READ
COMMITTED transaction; correctness of check-then-write never relied on BEGIN alone (that needs
a lock at any isolation level PostgreSQL defaults to), and locks start a real transaction here.

Since INSERTs may be sent only at commit, a unique violation may surface there: it is raised as
the same ``UniqueViolation`` (with the constraint's name) as at a statement, and callers handle
it where the transaction ends (``settle.api.lifecycle``), not around one INSERT.

``read()`` is a REPEATABLE READ, READ ONLY transaction, begun at its first statement: every
statement of one response sees the same snapshot (READ COMMITTED would give each its own, and
an answer built from two of them could tear). ``read(one_statement=True)`` runs its one
statement in autocommit: one statement is one snapshot, and BEGIN and COMMIT would cost two
round trips per request.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from settle.db.database import DatabaseUnavailable, Lock, Row, UniqueViolation

# PostgreSQL's wire protocol carries at most 32767 parameters in one statement.
_MAX_PARAMS: Final = 30_000
_PARAM_RE: Final = re.compile(r"\$(\d+)")

if TYPE_CHECKING:
    Connection: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]


def asyncpg_dsn(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation(str(exc), exc.constraint_name)
    if isinstance(exc, asyncpg.PostgresError) and not isinstance(
        exc, asyncpg.exceptions.PostgresConnectionError | asyncpg.InsufficientResourcesError
    ):
        return exc
    return DatabaseUnavailable(str(exc))


_READS_OTHERS: Final = re.compile(r"\b(SELECT|FROM|RETURNING)\b", re.I)


@lru_cache(maxsize=1024)
def deferrable(sql: str) -> bool:
    """A write that may wait in the queue: an INSERT or UPDATE that reads no other table (no
    sub-SELECT, no ``FROM``) and returns nothing (no ``RETURNING``)."""
    head = sql.lstrip()[:6].upper()
    return head in ("INSERT", "UPDATE") and _READS_OTHERS.search(sql) is None


@lru_cache(maxsize=1024)
def _is_insert(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "INSERT"


@lru_cache(maxsize=1024)
def _is_plain_read(sql: str) -> bool:
    """A statement that changes nothing (``INSERT ... RETURNING`` read through ``fetch`` is a
    write, and must run inside the transaction, not in autocommit before it)."""
    text = sql.lstrip().upper()
    if text.startswith("SELECT"):
        return True
    return text.startswith("WITH") and not re.search(r"\b(INSERT|UPDATE|DELETE)\b", text)


def _renumbered(statements: Sequence[str]) -> list[str]:
    """Each statement's ``$n`` shifted past the parameters of those before it, so that they
    can be parts of one statement taking all their arguments in order."""
    parts: list[str] = []
    offset = 0
    for sql in statements:
        count = 0

        def renumber(m: re.Match[str], base: int = offset) -> str:
            nonlocal count
            n = int(m.group(1))
            count = max(count, n)
            return f"${n + base}"

        parts.append(_PARAM_RE.sub(renumber, sql))
        offset += count
    return parts


@lru_cache(maxsize=512)
def combine(statements: tuple[str, ...]) -> str:
    """``("INSERT a ($1)", "INSERT b ($1, $2)")`` ->
    ``"WITH w0 AS (INSERT a ($1)) INSERT b ($2, $3)"``: one atomic statement."""
    parts = _renumbered(statements)
    if len(parts) == 1:
        return parts[0]
    ctes = ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(parts[:-1]))
    return f"WITH {ctes} {parts[-1]}"


# What settle_require() (migration 0013) raises: no_data_found, this message, the index of the
# failed check as its detail.
_REQUIRED: Final = "settle_require"


@lru_cache(maxsize=256)
def required(checks: tuple[str, ...]) -> str:
    """``Tx.require``'s checks as one SELECT that holds each row it finds (``FOR SHARE``) and
    fails unless each finds one. As the last part of a chained statement it runs before the
    data-modifying parts (PostgreSQL runs those to completion after the main query), so a
    failed check leaves them unrun, and in any case the one statement is atomic.

    A check waiting for a row that a concurrent transaction is deleting (its ``FOR UPDATE``)
    re-reads the row once that commits and finds it gone: the order is the serial one."""
    parts = _renumbered(checks)
    tests = (f"{_REQUIRED}(EXISTS ({sql}{Lock.SHARE.value}), '{i}')" for i, sql in enumerate(parts))
    return "SELECT " + " AND ".join(tests)


@lru_cache(maxsize=256)
def chained(writes: tuple[str, ...], guards: tuple[str, ...], checks: tuple[str, ...]) -> str:
    """The queued ``writes``, ``Tx.guard``'s conditional UPDATEs and ``Tx.require``'s checks
    as one statement: each guard a CTE returning the rows it changed, the main query failing
    (``settle_require``) unless each guard changed a row and each check found one.

    The main query is what PostgreSQL runs first; a guard runs when the main query reads it,
    before the writes, which run to completion only after the main query (so a failed guard or
    check leaves them unrun, and the one statement is atomic in any case). A guard's UPDATE
    that meets a row a concurrent transaction holds waits for it and re-checks its WHERE on the
    row's newest version (READ COMMITTED): if that transaction changed what the guard states,
    the guard changes nothing and the statement fails. Its row is locked before the writes',
    the order in which a locking reader (``FOR UPDATE``, then the writes) takes them."""
    parts = _renumbered((*writes, *guards, *checks))
    ctes = [f"w{i} AS ({sql})" for i, sql in enumerate(parts[: len(writes)])]
    guarded = parts[len(writes) : len(writes) + len(guards)]
    ctes += [f"g{i} AS ({sql} RETURNING 1)" for i, sql in enumerate(guarded)]
    tests = [f"{_REQUIRED}(EXISTS (SELECT 1 FROM g{i}), 'g{i}')" for i in range(len(guards))]
    tests += [
        f"{_REQUIRED}(EXISTS ({sql}{Lock.SHARE.value}), '{i}')"
        for i, sql in enumerate(parts[len(writes) + len(guards) :])
    ]
    head = f"WITH {', '.join(ctes)} " if ctes else ""
    return f"{head}SELECT {' AND '.join(tests)}"


def _changed(status: str) -> int:
    """The row count of a command status ("UPDATE 1")."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


_VALUES_RE: Final = re.compile(
    r"(INSERT INTO (\w+) \([^)]*\) VALUES )\((\$\d+(?:, \$\d+)*)\)(.*)", re.S
)


@lru_cache(maxsize=512)
def multirow(sql: str, rows: int) -> str | None:
    """``INSERT INTO t (a, b) VALUES ($1, $2)`` for ``rows`` rows: one statement whose rows
    take their identity values in the order given; None if ``sql`` is of another shape."""
    match = _VALUES_RE.fullmatch(sql.strip())
    if match is None:
        return None
    head, _, marks, tail = match.groups()
    width = len(marks.split(", "))
    values = ", ".join(
        "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")" for r in range(rows)
    )
    return f"{head}{values}{tail}"


# From this many rows of one INSERT text on, they go out as arrays, one per column
# (``unnested``), rather than as a VALUES list of rows. A VALUES list is a new statement for
# each row count, parsed and planned afresh with a parameter per value; the arrays' statement
# is the same for any count, with a parameter per column. Measured on PostgreSQL inserting the
# webhook fan-out's rows (15 columns, 7 indexes), 500 rows per statement: 33-51 us per row
# (wall, client and server) as VALUES, 23-31 us as arrays.
UNNEST_MIN_ROWS: Final = 16
# Parameter types the arrays may be cast to: PostgreSQL's own (a type of the project's own
# schema would need quoting; none is used).
_PLAIN_TYPE_RE: Final = re.compile(r"[a-z][a-z0-9_]*")


@lru_cache(maxsize=256)
def unnested(sql: str, types: tuple[str, ...]) -> str | None:
    """``INSERT INTO t (a, b) VALUES ($1, $2) <tail>`` as ``INSERT INTO t (a, b) SELECT *
    FROM unnest($1::<type of a>[], $2::<type of b>[]) <tail>``: any number of rows, each
    column's values in one array, inserted (and their identity values taken) in array order.
    ``types``: the parameters' type names, as PostgreSQL prepared the one-row statement. None
    if ``sql`` is of another shape (parameters not $1..$n in order, or a type of another
    schema)."""
    match = _VALUES_RE.fullmatch(sql.strip())
    if match is None or not all(_PLAIN_TYPE_RE.fullmatch(t) for t in types):
        return None
    head, _, marks, tail = match.groups()
    if marks.split(", ") != [f"${i}" for i in range(1, len(types) + 1)]:
        return None
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start=1))
    return f"{head.removesuffix('VALUES ')}SELECT * FROM unnest({arrays}){tail}"


_UPDATE_RE: Final = re.compile(r"\s*UPDATE\s+(\w+)", re.I)


@lru_cache(maxsize=512)
def _table(sql: str) -> str:
    match = _VALUES_RE.fullmatch(sql.strip()) or _UPDATE_RE.match(sql)
    if match is None:
        return sql
    return match.group(2) if match.re is _VALUES_RE else match.group(1)


def batch(
    queue: Sequence[tuple[str, Sequence[Any]]],
    types: Mapping[str, tuple[str, ...]] | None = None,
) -> list[tuple[str, list[Any]]] | None:
    """The queued INSERTs as statements to chain into one, or None when one statement could
    not keep their order. ``types``: the parameter types of INSERT texts queued for at least
    ``UNNEST_MIN_ROWS`` rows, whose rows then go out as arrays (``unnested``).

    Why: the parts of one statement (its data-modifying CTEs and the main INSERT) run in no
    defined order, so two rows of one table queued apart could take their ``seq`` (the
    listing order) the wrong way round, as they did (reversed) before this. The rows of one
    INSERT text become one multi-row INSERT, which assigns them in order; different tables
    may run in any order (their ``seq`` are unrelated). A table queued under two different
    INSERT texts cannot be ordered so: those run one by one.
    """
    groups: dict[str, list[Sequence[Any]]] = {}
    tables: dict[str, str] = {}
    for sql, args in queue:
        table = _table(sql)
        if tables.setdefault(table, sql) != sql:
            return None
        if sql in groups and not _is_insert(sql):
            return None  # one UPDATE text twice: the second would not see the first
        groups.setdefault(sql, []).append(args)
    statements: list[tuple[str, list[Any]]] = []
    for sql, rows in groups.items():
        if len(rows) == 1:
            statements.append((sql, list(rows[0])))
            continue
        columns = types.get(sql) if types is not None and len(rows) >= UNNEST_MIN_ROWS else None
        arrays = unnested(sql, columns) if columns is not None else None
        if arrays is not None:
            statements.append((arrays, [list(column) for column in zip(*rows, strict=True)]))
            continue
        many = multirow(sql, len(rows))
        if many is None:
            return None
        statements.append((many, [a for row in rows for a in row]))
    return statements


# The parameter types of INSERT texts (``_types``): the same on every connection.
_PARAM_TYPES: dict[str, tuple[str, ...]] = {}


Check: TypeAlias = tuple[str, Sequence[Any], Exception]


class PostgresTx:
    __slots__ = ("_conn", "_guards", "_queue", "_required", "_tr")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._queue: list[tuple[str, Sequence[Any]]] = []
        # Tx.require's checks not made yet: they go out with the queue, or first thing in
        # the real transaction once one starts.
        self._required: list[Check] = []
        # Tx.guard's conditional writes not sent yet: likewise.
        self._guards: list[Check] = []
        self._tr: Transaction | None = None

    async def _begin(self) -> None:
        if self._tr is None:
            self._tr = self._conn.transaction()
            await self._tr.start()
        # The writes first: a check may be of a row this transaction wrote.
        await self._flush()
        await self._check_required()

    async def _check_required(self) -> None:
        checks, self._required = self._required, []
        if checks:
            await self._guarded([], checks, required(tuple(c for c, _, _ in checks)), _args(checks))

    async def _guarded(
        self, guards: list[Check], checks: list[Check], sql: str, args: list[Any]
    ) -> None:
        """Run ``sql``, whose main query tests ``guards`` and ``checks`` (``chained`` or
        ``required``); a failed one raises its own error."""
        try:
            await self._conn.execute(sql, *args)
        except asyncpg.NoDataFoundError as exc:
            detail = str(getattr(exc, "detail", None))
            if exc.args and str(exc.args[0]) == _REQUIRED:
                if detail.isdigit():
                    raise checks[int(detail)][2] from None
                if detail[:1] == "g" and detail[1:].isdigit():
                    raise guards[int(detail[1:])][2] from None
            raise

    async def _guard_now(self, sql: str, args: Sequence[Any], conflict: Exception) -> None:
        if _changed(await self._conn.execute(sql, *args)) == 0:
            raise conflict

    async def _types(
        self, queue: Sequence[tuple[str, Sequence[Any]]]
    ) -> dict[str, tuple[str, ...]]:
        """The parameter types of the INSERT texts queued for ``UNNEST_MIN_ROWS`` rows or
        more, asked of PostgreSQL once per text (a prepare) and kept."""
        counts: dict[str, int] = {}
        for sql, _ in queue:
            counts[sql] = counts.get(sql, 0) + 1
        types: dict[str, tuple[str, ...]] = {}
        for sql, count in counts.items():
            if count < UNNEST_MIN_ROWS or not _is_insert(sql):
                continue
            if sql not in _PARAM_TYPES:
                statement = await self._conn.prepare(sql)
                _PARAM_TYPES[sql] = tuple(t.name for t in statement.get_parameters())
            types[sql] = _PARAM_TYPES[sql]
        return types

    async def _flush(self) -> None:
        queue, checks, guards = self._queue, self._required, self._guards
        if not queue and not checks and not guards:
            return
        statements = batch(
            queue, await self._types(queue) if len(queue) >= UNNEST_MIN_ROWS else None
        )
        written = {_table(s) for s, _ in queue}
        guarded = [_table(g) for g, _, _ in guards]
        if (
            statements is None
            or sum(len(args) for _, args in queue) > _MAX_PARAMS
            # A check of a row the same statement writes would not see that write.
            or (checks and {_read_table(c) for c, _, _ in checks} & written)
            # Nor would a guard, nor a second guard of its table the first's write.
            or (guards and (written & set(guarded) or len(set(guarded)) < len(guarded)))
        ):
            # One by one, atomically, inside a real transaction: the guards first (their rows
            # locked first, as a locking reader's are), then the writes in order, then checks.
            if self._tr is None:
                self._tr = self._conn.transaction()
                await self._tr.start()
            self._queue, self._guards = [], []
            for sql, args, conflict in guards:
                await self._guard_now(sql, args, conflict)
            for sql, args in queue:
                await self._conn.execute(sql, *args)
            await self._check_required()
            return
        self._queue = []
        if not checks and not guards:
            sql = combine(tuple(s for s, _ in statements))
            await self._conn.execute(sql, *(a for _, args in statements for a in args))
            return
        # The writes and what guards them: one statement, one round trip.
        self._required, self._guards = [], []
        sql = chained(
            tuple(s for s, _ in statements),
            tuple(g for g, _, _ in guards),
            tuple(c for c, _, _ in checks),
        )
        args = [*(a for _, args in statements for a in args), *_args(guards), *_args(checks)]
        await self._guarded(guards, checks, sql, args)

    async def _run(self, coro: Any) -> Any:
        try:
            return await coro
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc

    async def execute(self, sql: str, *args: Any) -> None:
        if deferrable(sql):
            self._queue.append((sql, args))
            return
        await self._run(self._begin())
        await self._run(self._conn.execute(sql, *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        # Queued only if the rows can go out as one multi-row INSERT: any other statement
        # queued for several rows was sent at commit one row per round trip (measured: the
        # webhook fan-out's 1,000 delivery rows, an INSERT ... ON CONFLICT, took 0.2-0.4 s
        # idle and 2-3 s under load). asyncpg's executemany sends them in one pipeline.
        if deferrable(sql) and _is_insert(sql) and (len(rows) < 2 or multirow(sql, 2)):
            self._queue.extend((sql, row) for row in rows)
            return
        if not rows:
            return
        await self._run(self._begin())
        await self._run(self._conn.executemany(sql, rows))

    async def require(self, sql: str, *args: Any, missing: Exception) -> None:
        self._required.append((sql, args, missing))
        if self._tr is not None:  # a real transaction: hold the row now
            await self._run(self._begin())

    async def guard(self, sql: str, *args: Any, conflict: Exception) -> None:
        if self._tr is None:
            self._guards.append((sql, args, conflict))
            return
        await self._run(self._begin())  # a real transaction: write it now, after the queue
        await self._run(self._guard_now(sql, args, conflict))

    async def _before_read(self, sql: str, lock: Lock) -> str:
        if (
            self._queue
            or self._guards  # a guard is a write: the read must see it
            or (self._tr is None and (lock is not Lock.NONE or not _is_plain_read(sql)))
        ):
            await self._run(self._begin())
        return sql + lock.value if lock is not Lock.NONE else sql

    async def fetchrow(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> Row | None:
        sql = await self._before_read(sql, lock)
        row: Row | None = await self._run(self._conn.fetchrow(sql, *args))
        return row

    async def fetch(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> list[Row]:
        sql = await self._before_read(sql, lock)
        return list(await self._run(self._conn.fetch(sql, *args)))

    async def fetchval(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> Any:
        sql = await self._before_read(sql, lock)
        return await self._run(self._conn.fetchval(sql, *args))

    async def commit(self) -> None:
        # One statement is atomic on its own; a flush that needs several opens a transaction.
        await self._run(self._flush())
        if self._tr is not None:
            await self._run(self._tr.commit())

    async def rollback(self) -> None:
        self._queue.clear()
        self._required.clear()
        self._guards.clear()
        if self._tr is not None and not self._conn.is_closed():
            await self._tr.rollback()


_FROM_RE: Final = re.compile(r"\bFROM\s+(\w+)", re.I)


@lru_cache(maxsize=256)
def _read_table(sql: str) -> str:
    match = _FROM_RE.search(sql)
    return match.group(1) if match else sql


def _args(checks: list[Check]) -> list[Any]:
    return [a for _, args, _ in checks for a in args]


class PostgresOneStatement:
    """The ``Tx`` of ``write(one_statement=True)``: its one statement runs in autocommit,
    atomic and durable by itself, without the BEGIN and COMMIT round trips (two of three for
    a single INSERT ... RETURNING)."""

    __slots__ = ("_conn", "_used")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._used = False

    def _once(self, lock: Lock) -> None:
        if self._used:
            raise RuntimeError("a one-statement write ran a second statement")
        if lock is not Lock.NONE:
            raise RuntimeError("a one-statement write has no transaction to hold a lock in")
        self._used = True

    async def execute(self, sql: str, *args: Any) -> None:
        self._once(Lock.NONE)
        try:
            await self._conn.execute(sql, *args)
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise RuntimeError("executemany is several statements: use write()")

    async def require(self, sql: str, *args: Any, missing: Exception) -> None:
        raise RuntimeError("a one-statement write has no transaction to hold a row in")

    async def guard(self, sql: str, *args: Any, conflict: Exception) -> None:
        raise RuntimeError("a one-statement write has no transaction to guard")

    async def fetchrow(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> Row | None:
        self._once(lock)
        try:
            row: Row | None = await self._conn.fetchrow(sql, *args)
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc
        return row

    async def fetch(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> list[Row]:
        self._once(lock)
        try:
            return list(await self._conn.fetch(sql, *args))
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc

    async def fetchval(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> Any:
        self._once(lock)
        try:
            return await self._conn.fetchval(sql, *args)
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc


class PostgresSnapshot:
    """The ``Tx`` of ``read()``: reads only, from one snapshot (see the module docstring)."""

    __slots__ = ("_conn", "_left", "_tr")

    def __init__(self, conn: Connection, statements: int | None) -> None:
        self._conn = conn
        self._left = statements
        self._tr: Transaction | None = None

    async def _ready(self, lock: Lock) -> None:
        if lock is not Lock.NONE:
            raise RuntimeError("a read cannot lock rows: lock inside a write()")
        if self._left is not None:
            if self._left <= 0:
                raise RuntimeError("a one-statement read ran a second statement")
            self._left -= 1
        elif self._tr is None:
            self._tr = self._conn.transaction(isolation="repeatable_read", readonly=True)
            try:
                await self._tr.start()
            except (asyncpg.PostgresError, OSError) as exc:
                self._tr = None
                raise _translate(exc) from exc

    async def execute(self, sql: str, *args: Any) -> None:
        raise RuntimeError("read() is for reads: write inside a write()")

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise RuntimeError("read() is for reads: write inside a write()")

    async def require(self, sql: str, *args: Any, missing: Exception) -> None:
        raise RuntimeError("a read cannot hold rows: require inside a write()")

    async def guard(self, sql: str, *args: Any, conflict: Exception) -> None:
        raise RuntimeError("read() is for reads: write inside a write()")

    async def fetchrow(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> Row | None:
        await self._ready(lock)
        try:
            row: Row | None = await self._conn.fetchrow(sql, *args)
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc
        return row

    async def fetch(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> list[Row]:
        await self._ready(lock)
        try:
            return list(await self._conn.fetch(sql, *args))
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc

    async def fetchval(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> Any:
        await self._ready(lock)
        try:
            return await self._conn.fetchval(sql, *args)
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc

    async def end(self, *, failed: bool = False) -> None:
        tr, self._tr = self._tr, None
        if tr is None or self._conn.is_closed():
            return
        try:
            # Read only, so COMMIT and ROLLBACK keep the same; after an error, ROLLBACK.
            await (tr.rollback() if failed else tr.commit())
        except (asyncpg.PostgresError, OSError) as exc:
            if not failed:
                raise _translate(exc) from exc


async def _keep_session(conn: Connection) -> None:
    return None


class PostgresDatabase:
    backend = "postgresql"

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, *, min_size: int = 2, max_size: int = 16) -> PostgresDatabase:
        try:
            pool = await asyncpg.create_pool(
                asyncpg_dsn(url),
                min_size=min_size,
                max_size=max_size,
                statement_cache_size=512,
                # Settle keeps no session state (no SET, LISTEN or advisory locks), so the
                # default reset query on every release would only cost a round trip per
                # request. Open transactions are still rolled back by the pool.
                reset=_keep_session,
                # Durable commits whatever the server default says: a 200 means on disk.
                server_settings={"synchronous_commit": "on", "application_name": "settle"},
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        return cls(pool)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        try:
            cm = self._pool.acquire()
            conn = await cm.__aenter__()
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        try:
            yield conn
        finally:
            await cm.__aexit__(None, None, None)

    @asynccontextmanager
    async def write(
        self, *, one_statement: bool = False
    ) -> AsyncIterator[PostgresTx | PostgresOneStatement]:
        async with self._connection() as conn:
            if one_statement:
                yield PostgresOneStatement(conn)
                return
            tx = PostgresTx(conn)
            try:
                yield tx
            except BaseException:
                await tx.rollback()
                raise
            await tx.commit()

    @asynccontextmanager
    async def read(self, *, one_statement: bool = False) -> AsyncIterator[PostgresSnapshot]:
        async with self._connection() as conn:
            snapshot = PostgresSnapshot(conn, 1 if one_statement else None)
            try:
                yield snapshot
            except BaseException:
                await snapshot.end(failed=True)
                raise
            await snapshot.end()

    async def close(self) -> None:
        await self._pool.close()
