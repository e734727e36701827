"""Throughput at 10,000 and 1,000,000 stored invoices, and the query plans behind it.

Run through ``bench/run.py --scale`` (see bench/README.md). For each backend:

1. a fresh database and a ``bench`` project; one invoice is created through the API with
   bench/invoice_body.json: it is the *template*;
2. the tables are filled up to each size by bulk inserts that copy the template's rows
   (invoices, their lines in the row, + transactions, exactly what
   ``billing.service.create_invoice`` wrote) with fresh ids from ``settle.ids.new_id`` and
   fresh timestamps, in the bench project: executemany on SQLite, COPY on PostgreSQL
   (followed by VACUUM ANALYZE, which autovacuum would do by itself on a live server). The
   server is stopped while filling;
3. at each size, for each worker count: ``GET /ping`` (the ceiling), ``GET /invoices?limit=10``,
   the same from a random stored invoice (``start_after``: pages all over the table, the
   server's render cache cold) then ``POST /invoices`` (lists first, so they see exactly that
   many rows; create adds rows);
4. the statements of list and lookup requests are captured from the real app, served
   in-process through httpx's ASGI transport with a recording wrapper around its database,
   and explained: ``EXPLAIN QUERY PLAN`` on SQLite,
   ``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL; a full scan is flagged.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from starlette.types import Receive, Scope, Send

import harness as h
from settle.api.lifecycle import RUNTIME_KEY
from settle.app import create_app
from settle.clock import now_us
from settle.config import Settings
from settle.db.database import Database as SettleDatabase
from settle.db.database import Lock, Row, Tx
from settle.ids import new_id
from settle.projects.service import KeyRing
from settle.runtime import Runtime

TABLES = ("invoices", "transactions")
SLOW_MS = 5.0
_SQLITE_SCAN = re.compile(r"SCAN (invoices|transactions|customers)\b")
# Per table: the column -> which fresh value replaces the template's.
FRESH = {
    "invoices": {"id": "iv", "transaction_id": "tr", "created_at": "ts", "updated_at": "ts"},
    "transactions": {"id": "tr", "invoice_id": "iv", "created_at": "ts", "updated_at": "ts"},
}
TEMPLATE_KEY = {"invoices": "id", "transactions": "invoice_id"}


@dataclass
class Template:
    table: str
    columns: list[str]  # every column but seq (the database numbers rows itself)
    rows: list[list[Any]]  # SQLite: values; PostgreSQL: COPY text fields


def _batch(templates: Sequence[Template], n: int, *, text: bool) -> dict[str, list[list[Any]]]:
    """Rows for ``n`` new invoices, each a copy of the template with fresh ids and times."""
    out: dict[str, list[list[Any]]] = {t.table: [] for t in templates}
    plans = [
        (t, [(t.columns.index(c), kind) for c, kind in FRESH[t.table].items()]) for t in templates
    ]
    base = now_us()
    for i in range(n):
        ts = base + i
        fresh = {"iv": new_id("iv_"), "tr": new_id("tr_"), "ts": str(ts) if text else ts}
        for template, slots in plans:
            rows = out[template.table]
            for trow in template.rows:
                row = list(trow)
                for index, kind in slots:
                    row[index] = fresh[kind]
                rows.append(row)
    return out


# --- SQLite -----------------------------------------------------------------------------


def fill_sqlite(path: Path, template_id: str, target: int, batch: int = 20_000) -> int:
    """Insert copies of the template invoice until ``target`` invoices are stored.

    Bulk-load settings (synchronous=OFF, a big page cache) apply to this connection only;
    the server's writer keeps synchronous=FULL.
    """
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -524288")  # 512 MiB
        templates = []
        for table in TABLES:
            cur = conn.execute(
                f"SELECT * FROM {table} WHERE {TEMPLATE_KEY[table]} = ? ORDER BY seq",
                (template_id,),
            )
            columns = [d[0] for d in cur.description]
            keep = [i for i, c in enumerate(columns) if c != "seq"]
            rows = [[row[i] for i in keep] for row in cur.fetchall()]
            templates.append(Template(table, [columns[i] for i in keep], rows))
        have = int(conn.execute("SELECT count(*) FROM invoices").fetchone()[0])
        start, added = time.monotonic(), 0
        while have < target:
            n = min(batch, target - have)
            new_rows = _batch(templates, n, text=False)
            conn.execute("BEGIN")
            for t in templates:
                marks = ", ".join("?" for _ in t.columns)
                conn.executemany(
                    f"INSERT INTO {t.table} ({', '.join(t.columns)}) VALUES ({marks})",
                    new_rows[t.table],
                )
            conn.execute("COMMIT")
            have, added = have + n, added + n
            _progress(have, n, target, added, start)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return have
    finally:
        conn.close()


# --- PostgreSQL -------------------------------------------------------------------------


def fill_postgres(url: str, template_id: str, target: int, batch: int = 50_000) -> int:
    """The same with COPY (text format: the template rows are read back with COPY TO, so
    every value keeps PostgreSQL's own text form). synchronous_commit=off for this session
    only; VACUUM ANALYZE afterwards, as autovacuum would."""
    with psycopg.connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        templates = []
        for table in TABLES:
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = 'public' AND table_name = %s AND column_name <> 'seq'"
                    " ORDER BY ordinal_position",
                    (table,),
                ).fetchall()
            ]
            query = sql.SQL("COPY (SELECT {} FROM {} WHERE {} = {} ORDER BY seq) TO STDOUT").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.Identifier(table),
                sql.Identifier(TEMPLATE_KEY[table]),
                sql.Literal(template_id),
            )
            data = b""
            with conn.cursor().copy(query) as copy:
                for chunk in copy:
                    data += bytes(chunk)
            rows = [line.split("\t") for line in data.decode().splitlines()]
            templates.append(Template(table, columns, rows))
        conn.commit()
        row = conn.execute("SELECT count(*) FROM invoices").fetchone()
        have = int(row[0]) if row else 0
        start, added = time.monotonic(), 0
        while have < target:
            n = min(batch, target - have)
            new_rows = _batch(templates, n, text=True)
            with conn.transaction(), conn.cursor() as cur:
                for t in templates:
                    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                        sql.Identifier(t.table),
                        sql.SQL(", ").join(map(sql.Identifier, t.columns)),
                    )
                    with cur.copy(statement) as copy:
                        copy.write("".join("\t".join(r) + "\n" for r in new_rows[t.table]))
            have, added = have + n, added + n
            _progress(have, n, target, added, start)
    with psycopg.connect(url, autocommit=True) as conn:
        for table in TABLES:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
    return have


def _progress(have: int, n: int, target: int, added: int, start: float) -> None:
    """Log at the end and each time another 100,000 invoices are stored."""
    if have == target or have // 100_000 != (have - n) // 100_000:
        rate = added / max(time.monotonic() - start, 1e-9)
        h.log(f"  filled {have:,}/{target:,} invoices ({rate:,.0f} invoices/s)")


def trim(db: h.Database, keep: int) -> int:
    """Delete every invoice (with its lines and transaction) beyond the ``keep`` oldest.

    The create figures add tens of thousands of invoices; without this, the next worker count
    and the next size would start from a larger table than the one they are labelled with.
    """
    statements = [
        f"DELETE FROM {table} WHERE {key} IN (SELECT id FROM invoices WHERE seq > $1)"
        for table, key in TEMPLATE_KEY.items()
        if table != "invoices"
    ] + ["DELETE FROM invoices WHERE seq > $1"]
    if db.sqlite_path is not None:
        with closing(sqlite3.connect(db.sqlite_path, timeout=30)) as conn, conn:
            (cut,) = conn.execute(
                "SELECT seq FROM invoices ORDER BY seq LIMIT 1 OFFSET ?", (keep - 1,)
            ).fetchone()
            for statement in statements:
                conn.execute(statement.replace("$1", "?"), (cut,))
            return int(conn.execute("SELECT count(*) FROM invoices").fetchone()[0])
    with psycopg.connect(db.url) as pg:
        row = pg.execute(
            "SELECT seq FROM invoices ORDER BY seq LIMIT 1 OFFSET %s", (keep - 1,)
        ).fetchone()
        assert row is not None
        for statement in statements:
            pg.execute(statement.replace("$1", "%s"), (row[0],))
        pg.commit()
    with psycopg.connect(db.url, autocommit=True) as pg:
        for table in TABLES:
            pg.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
    return db.count()


def fill(db: h.Database, template_id: str, target: int) -> float:
    start = time.monotonic()
    if db.sqlite_path is not None:
        fill_sqlite(db.sqlite_path, template_id, target)
    else:
        fill_postgres(db.url, template_id, target)
    return time.monotonic() - start


# --- query plans ------------------------------------------------------------------------


class _RecordingTx:
    """A Tx that notes each statement (with its arguments) before running it."""

    def __init__(self, tx: Tx, seen: list[tuple[str, tuple[Any, ...]]]) -> None:
        self._tx, self._seen = tx, seen

    async def execute(self, sql: str, *args: Any) -> None:
        self._seen.append((sql, args))
        await self._tx.execute(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._seen.append((sql, tuple(rows[0]) if rows else ()))
        await self._tx.executemany(sql, rows)

    async def fetchrow(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> Row | None:
        self._seen.append((sql + lock.value, args))
        return await self._tx.fetchrow(sql, *args, lock=lock)

    async def fetch(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> list[Row]:
        self._seen.append((sql + lock.value, args))
        return await self._tx.fetch(sql, *args, lock=lock)

    async def fetchval(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> Any:
        self._seen.append((sql + lock.value, args))
        return await self._tx.fetchval(sql, *args, lock=lock)

    async def require(self, sql: str, *args: Any, missing: Exception) -> None:
        self._seen.append((sql + Lock.SHARE.value, args))
        await self._tx.require(sql, *args, missing=missing)

    async def guard(self, sql: str, *args: Any, conflict: Exception) -> None:
        self._seen.append((sql, args))
        await self._tx.guard(sql, *args, conflict=conflict)


class _RecordingDatabase:
    def __init__(self, db: SettleDatabase, seen: list[tuple[str, tuple[Any, ...]]]) -> None:
        self.backend = db.backend
        self._db, self._seen = db, seen

    @asynccontextmanager
    async def write(self, *, one_statement: bool = False) -> AsyncIterator[_RecordingTx]:
        async with self._db.write(one_statement=one_statement) as tx:
            yield _RecordingTx(tx, self._seen)

    @asynccontextmanager
    async def read(self, *, one_statement: bool = False) -> AsyncIterator[_RecordingTx]:
        async with self._db.read(one_statement=one_statement) as tx:
            yield _RecordingTx(tx, self._seen)

    async def close(self) -> None:
        await self._db.close()


async def _explain(db: h.Database, creds: h.Credentials) -> list[dict[str, Any]]:
    """Serve a few requests through the real app in-process (httpx's ASGI transport), its
    database wrapped to note every statement, then explain each distinct statement."""
    import httpx  # a test dependency of the project (pip install -e '.[test]')

    app = create_app(Settings(database_url=db.url))
    async with app.router.lifespan_context(app) as state:
        assert state is not None
        runtime: Runtime = state[RUNTIME_KEY]
        seen: list[tuple[str, tuple[Any, ...]]] = []
        recording = _RecordingDatabase(runtime.db, seen)
        # ttl=0: the key lookup runs (and is recorded) on every request.
        recorded = replace(runtime, db=recording, keys=KeyRing(recording, ttl=0))

        async def app_recording(scope: Scope, receive: Receive, send: Send) -> None:
            # The lifespan state a server would hand each request, with the recording runtime.
            scope["state"] = {RUNTIME_KEY: recorded}
            await app(scope, receive, send)

        async with runtime.db.read() as tx:
            total = int(await tx.fetchval("SELECT count(*) FROM invoices"))
            middle = await tx.fetchval(
                "SELECT id FROM invoices ORDER BY seq LIMIT 1 OFFSET $1", total // 2
            )
        steps: list[tuple[str, list[tuple[str, tuple[Any, ...]]]]] = []
        transport = httpx.ASGITransport(app=app_recording)
        auth = (creds.username, creds.password)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name, path in (
                ("GET /invoices?limit=10", "/invoices?limit=10"),
                (
                    "GET /invoices?limit=10&start_after=<id in the middle>",
                    f"/invoices?limit=10&start_after={middle}",
                ),
                ("GET /invoices/{id}", f"/invoices/{middle}"),
            ):
                seen.clear()
                response = await client.get(path, auth=auth)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                steps.append((name, list(seen)))
        statements: list[tuple[str, str, tuple[Any, ...]]] = []
        done: set[str] = set()
        for name, seen in steps:
            for statement, args in seen:
                if statement not in done:
                    done.add(statement)
                    statements.append((name, statement, args))
    plans = []
    for name, statement, args in statements:
        if db.backend == "postgres":
            lines = _pg_plan(db, statement, args)
            full_scan = any("Seq Scan" in ln for ln in lines)
            times = [float(m) for m in re.findall(r"Execution Time: ([\d.]+) ms", "\n".join(lines))]
        else:
            assert db.sqlite_path is not None
            lines, seconds = _sqlite_plan(db.sqlite_path, statement, args)
            # "SCAN <table>" walks a whole table ("SCAN <cte>" only the CTE's few rows).
            full_scan = any(_SQLITE_SCAN.match(ln.strip()) for ln in lines)
            times = [seconds * 1000]
            lines.append(f"Execution Time: {seconds * 1000:.3f} ms (best of 3)")
        plans.append(
            {
                "request": name,
                "sql": _short(statement),
                "plan": lines,
                "full_scan": full_scan,
                # An index can be used and still walk the whole table (e.g. an index on the
                # scope columns only): a statement serving one page must take well under 5 ms.
                "slow": max(times, default=0.0) > SLOW_MS,
                "execution_ms": max(times, default=0.0),
                "stored_invoices": total,
            }
        )
    return plans


def _pg_plan(db: h.Database, statement: str, args: Sequence[Any]) -> list[str]:
    """EXPLAIN ANALYZE of the statement as the server runs it: a prepared statement, whose
    plan PostgreSQL may make generic after five executions. Both plans are shown."""
    lines = []
    with psycopg.connect(db.url, autocommit=True) as conn:
        for mode in ("force_custom_plan", "force_generic_plan"):
            conn.execute(sql.SQL("SET plan_cache_mode = {}").format(sql.SQL(mode)))
            conn.execute(sql.SQL("PREPARE bench_q AS {}").format(sql.SQL(statement)))
            try:
                rows = conn.execute(
                    sql.SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q ({})").format(
                        sql.SQL(", ").join(map(sql.Literal, args))
                    )
                ).fetchall()
            finally:
                conn.execute("DEALLOCATE bench_q")
            lines.append(f"[{mode.removeprefix('force_').replace('_', ' ')}]")
            lines += [str(r[0]) for r in rows]
    return lines


def _sqlite_plan(path: Path, statement: str, args: Sequence[Any]) -> tuple[list[str], float]:
    """EXPLAIN QUERY PLAN, and the best of three timed executions (seconds)."""
    from settle.db.sqlite import to_sqlite  # the server's own $n -> ?n rewriting

    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        text = to_sqlite(statement)
        plan = _sqlite_tree(conn.execute(f"EXPLAIN QUERY PLAN {text}", tuple(args)).fetchall())
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            conn.execute(text, tuple(args)).fetchall()
            best = min(best, time.perf_counter() - start)
        return plan, best


def _sqlite_tree(rows: Sequence[sqlite3.Row]) -> list[str]:
    depth: dict[int, int] = {0: -1}
    out = []
    for r in rows:
        d = depth.get(r["parent"], -1) + 1
        depth[r["id"]] = d
        out.append("  " * d + str(r["detail"]))
    return out


def _short(statement: str) -> str:
    """The statement with its long column list elided, for printing."""
    head, sep, rest = statement.partition(" FROM ")
    if sep and len(head) > 60:
        head = head[:40] + " ... "
    return f"{head}{sep}{rest}"


def explain(db: h.Database, creds: h.Credentials) -> list[dict[str, Any]]:
    return asyncio.run(_explain(db, creds))


_DETAILS = ("Buffers:", "Planning", "Heap Blocks:", "Sort Method:", "Recheck Cond:")


def _detail(line: str) -> bool:
    """Plan lines left out of the printed summary (they stay in the JSON)."""
    return line.strip().startswith(_DETAILS)


def plans_text(plans: Sequence[dict[str, Any]]) -> str:
    out = []
    for p in plans:
        verdict = (
            "FULL SCAN"
            if p["full_scan"]
            else f"SLOW: {p['execution_ms']:.1f} ms"
            if p.get("slow")
            else "index"
        )
        out.append(f"-- {p['request']} [{verdict}] at {p['stored_invoices']:,} invoices")
        out.append(f"   {p['sql']}")
        out.extend(f"     {line}" for line in p["plan"] if not _detail(line))
    return "\n".join(out)


# --- the scale benchmark ----------------------------------------------------------------


ENDPOINTS = (
    ("ping", "GET /ping (ceiling)", "/ping", None),
    ("list", "GET /invoices?limit=10", "/invoices?limit=10", None),
    ("list_random", "GET /invoices?limit=10&start_after=<random>", "/invoices?limit=10", None),
    ("create", "POST /invoices", "/invoices", h.INVOICE_BODY),
)


NO_RENDER_CACHE = {"SETTLE_RENDER_CACHE_ENTRIES": "0"}
LIST_RANDOM_NOCACHE = "GET /invoices?limit=10&start_after=<random>, render cache off"


def run_scale(
    *,
    backends: Sequence[str],
    workers_list: Sequence[int],
    sizes: Sequence[int],
    duration: float,
    warmup: float,
    options: h.WrkOptions,
    tmpdir: Path,
    pg_base: str,
    wait_idle: float = 0,
    rounds: int = 3,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Returns (measurements, plans)."""
    results: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    for backend in backends:
        db = h.fresh_database(backend, tmpdir, pg_base, f"scale-{backend}")
        creds = h.create_project(db)
        with h.Server(db, 1, tmpdir / f"scale-{backend}-template.log") as server:
            created = server.request("POST", "/invoices", creds, h.INVOICE_BODY.read_bytes())
        template_id = created["invoice"]["id"]
        for size in sizes:
            if db.count() > size:  # the previous size's creates
                trim(db, size)
            h.log(f"{backend}: filling to {size:,} invoices")
            seconds = fill(db, template_id, size)
            h.log(f"{backend}: {db.count():,} invoices stored (fill took {seconds:.0f} s)")
            ids = db.sample_ids(tmpdir / f"scale-{backend}-{size}.ids")
            for workers in workers_list:
                log_path = tmpdir / f"scale-{backend}-{size}-w{workers}.log"
                stored = trim(db, size) if db.count() > size else db.count()
                labels = _labels(backend, workers, size, stored, seconds)
                results.extend(
                    _measure_size(
                        db,
                        creds,
                        workers,
                        log_path,
                        ids,
                        labels,
                        rounds,
                        duration,
                        warmup,
                        options,
                        wait_idle,
                    )
                )
            h.log(f"{backend}: query plans at {db.count():,} invoices")
            plans.extend({"backend": backend, "size": size, **p} for p in explain(db, creds))
        if backend == "postgres":
            h.drop_postgres(pg_base)
    return results, plans


def _labels(
    backend: str, workers: int, size: int, stored: int, fill_seconds: float
) -> dict[str, Any]:
    return {
        "backend": backend,
        "workers": workers,
        "size": size,
        "stored_invoices": stored,
        "fill_seconds": round(fill_seconds, 1),
    }


def _measure_size(
    db: h.Database,
    creds: h.Credentials,
    workers: int,
    log_path: Path,
    ids: Path,
    labels: dict[str, Any],
    rounds: int,
    duration: float,
    warmup: float,
    options: h.WrkOptions,
    wait_idle: float,
) -> list[dict[str, Any]]:
    """Every figure of one size and worker count, in interleaved rounds.

    This machine's speed drifts by 10-30 % from one minute to the next (other tenants of the
    host, CPU frequency). So each round measures the ceiling and then each read endpoint, and
    the reported row is the round with the median ratio to that round's ceiling; every
    round's figures stay in the JSON. Reads go first: creates grow the table, so they come
    last, once per round, after every read of every round.

    The random page is also measured on a second server with the render cache off: the cache
    holds every invoice of a 10,000-invoice table and almost none of a 1,000,000 one, so the
    cached random page compares a cached page with an uncached one, while without the cache
    every page is read and rendered at every size, and its change is the table's own cost.
    """
    tag = f"{labels['backend']} {labels['size']:,} x{workers}"
    seen: dict[str, list[dict[str, Any]]] = {}

    def measure(server: h.Server, key: str, label: str, path: str, body: Path | None) -> None:
        h.log(f"{tag}: {label} ({db.count():,} stored)")
        if wait_idle:
            h.wait_for_quiet(server, wait_idle)
        random_ids = ids if key.startswith("list_random") else None
        row = _figure(server, db, creds, path, body, random_ids, duration, warmup, options)
        row.update(endpoint=key, label=label, **labels)
        seen.setdefault(key, []).append(row)

    reads = [e for e in ENDPOINTS if e[0] != "create"]
    creates = [e for e in ENDPOINTS if e[0] == "create"]
    with h.Server(db, workers, log_path) as server:
        for _ in range(rounds):
            for key, label, path, body in reads:
                measure(server, key, label, path, body)
            with h.Server(
                db, workers, log_path.with_suffix(".nocache.log"), env=NO_RENDER_CACHE
            ) as uncached:
                measure(
                    uncached, "list_random_nocache", LIST_RANDOM_NOCACHE, "/invoices?limit=10", None
                )
        for _ in range(rounds):
            # A ceiling of its own for each create round: the reads took minutes meanwhile.
            measure(server, "ping_before_create", "GET /ping (ceiling)", "/ping", None)
            for key, label, path, body in creates:
                measure(server, key, label, path, body)
    ceilings = {"reads": seen.pop("ping"), "create": seen.pop("ping_before_create")}
    for rows in ceilings.values():
        for row in rows:
            row["ratio"] = 1.0
    for key, rows in seen.items():
        base = ceilings["create" if key == "create" else "reads"]
        for row, ceiling in zip(rows, base, strict=True):
            row["ratio"] = row["rps"] / ceiling["rps"] if ceiling["rps"] else None
    order = ("list", "list_random", "list_random_nocache", "create")
    return [_median(ceilings["reads"], "rps")] + [_median(seen[k], "ratio") for k in order]


def _median(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The row of the median round by ``key``, carrying every round's req/s and ratio."""
    ordered = sorted(rows, key=lambda r: r[key] or 0.0)
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["rounds"] = [{"rps": r["rps"], "ratio": r["ratio"]} for r in rows]
    return chosen


def _figure(
    server: h.Server,
    db: h.Database,
    creds: h.Credentials,
    path: str,
    body: Path | None,
    ids: Path | None,
    duration: float,
    warmup: float,
    options: h.WrkOptions,
) -> dict[str, Any]:
    h.run_wrk(server, path, creds, duration=warmup, options=options, body=body, ids=ids)
    pg = db.backend == "postgres"
    scans = h.pg_scans(db) if pg else {}
    wal = h.pg_wal(db) if pg else {}
    r = h.run_wrk(server, path, creds, duration=duration, options=options, body=body, ids=ids)
    row = r.as_dict()
    note = ""
    if pg:
        time.sleep(1.2)  # statistics are published about once a second
        row["pg_seq_scans"] = h.pg_scans_delta(scans, h.pg_scans(db))
        after = h.pg_wal(db)
        # WAL written per request (whole cluster): grows when inserts land on random index
        # pages that must be logged whole (full-page images) after each checkpoint.
        row["pg_wal_per_request"] = {
            k: round((after[k] - wal[k]) / max(r.requests, 1), 2) for k in after
        }
        note = f", seq scans {row['pg_seq_scans'] or 0}, WAL/request {row['pg_wal_per_request']}"
    h.log(
        f"  {r.rps:,.0f} req/s, p99 {r.p99_ms:.1f} ms, errors {r.errors_text()},"
        f" others' CPU {r.others_cpu_pct:.0f}%{note}"
    )
    return row


def scale_table(results: Sequence[dict[str, Any]]) -> str:
    first: dict[tuple[str, int, str], dict[str, Any]] = {}
    rows = []
    for r in results:
        key = (r["backend"], r["workers"], r["endpoint"])
        base = first.setdefault(key, r)
        if base is r:
            change = change_ratio = "(base)"
        else:
            change = _pct(r["rps"], base["rps"])
            change_ratio = _pct(r["ratio"], base["ratio"]) if r["ratio"] and base["ratio"] else "-"
        rows.append(
            [
                r["backend"],
                r["workers"],
                r["label"],
                f"{r['stored_invoices']:,}",
                f"{r['rps']:,.0f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                _errors(r["errors"]),
                f"{r['ratio']:.2f}" if r["ratio"] else "-",
                change,
                change_ratio,
                _seq_scans(r),
                _wal(r),
                f"{r['others_cpu_pct']:.0f}%",
            ]
        )
    return h.markdown_table(
        [
            "backend",
            "workers",
            "endpoint",
            "stored invoices",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "ratio to ceiling",
            "req/s change",
            "ratio change",
            "seq scans",
            "WAL bytes (FPI)/req",
            "others' CPU",
        ],
        rows,
    )


FLAT_WITHIN = 0.15  # issue 3: throughput within 15% from 10,000 to 1,000,000 invoices
FLAT_ENDPOINTS = ("list", "create", "list_random_nocache")


def flatness_text(results: Sequence[dict[str, Any]]) -> str:
    """Smallest against largest size, per backend, workers and endpoint, against the target.

    Both changes are given: req/s, and the ratio to the ceiling measured by the same server
    in the same minute (this machine's speed drifts by 10-30 % between minutes; the ratio
    cancels most of that drift).
    """
    lines = []
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in results:
        if r["endpoint"] in FLAT_ENDPOINTS:
            groups.setdefault((r["backend"], r["workers"], r["endpoint"]), []).append(r)
    for (backend, workers, _endpoint), rows in groups.items():
        small = min(rows, key=lambda r: r["size"])
        large = max(rows, key=lambda r: r["size"])
        if small is large:
            continue
        rps = (large["rps"] - small["rps"]) / small["rps"]
        ratio = (
            (large["ratio"] - small["ratio"]) / small["ratio"]
            if small["ratio"] and large["ratio"]
            else None
        )
        if sum(small["errors"].values()) or sum(large["errors"].values()):
            lines.append(f"- {backend} x{workers}, {small['label']}: errors, no verdict")
            continue
        ok_rps = rps >= -FLAT_WITHIN
        ok_ratio = ratio is not None and ratio >= -FLAT_WITHIN
        verdict = (
            "flat"
            if ok_rps and ok_ratio
            else "flat by the ratio, not by req/s"
            if ok_ratio
            else "flat by req/s, not by the ratio"
            if ok_rps
            else "NOT flat"
        )
        ratio_text = f"{ratio * 100:+.1f}%" if ratio is not None else "-"
        lines.append(
            f"- {backend} x{workers}, {small['label']}: {small['rps']:,.0f} -> {large['rps']:,.0f}"
            f" req/s from {small['size']:,} to {large['size']:,} invoices ({rps * 100:+.1f}%,"
            f" ratio to ceiling {ratio_text}): {verdict}"
        )
    return "\n".join(lines)


def _seq_scans(r: dict[str, Any]) -> str:
    """PostgreSQL: sequential scans of Settle's tables during the figure (rows read)."""
    if "pg_seq_scans" not in r:
        return "-"
    scans = r["pg_seq_scans"]
    if not scans:
        return "0"
    return ", ".join(f"{t} {n}x ({rows:,} rows)" for t, (n, rows) in scans.items())


def _wal(r: dict[str, Any]) -> str:
    """PostgreSQL, create: WAL bytes and full-page images written per request."""
    wal = r.get("pg_wal_per_request")
    if not wal or r["endpoint"] != "create":
        return "-"
    return f"{wal['bytes']:,.0f} ({wal['fpi']:.2f})"


def _pct(new: float, old: float) -> str:
    return f"{(new - old) / old * 100:+.1f}%" if old else "-"


def _errors(errors: dict[str, int]) -> str:
    total = sum(errors.values())
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{k} {v}" for k, v in errors.items() if v) + ")"
