"""Shared by the concurrency guards (tests/api/test_races.py, tests/api/test_snapshots.py): a real
``settle serve --workers N`` child process per configuration, and a lean HTTP client for load.

Configurations are both backends x 1 and 2 worker processes. A child process (not the
in-process server of conftest.py) in every configuration, so that the server's event loop never
shares the GIL with the load generated here, and 1 and 2 workers run the same code path. The
PostgreSQL configurations run in a throwaway database of their own and are skipped, with the
reason, when SETTLE_TEST_DATABASE_URL is not set.

With 2 workers, the kernel hands most new connections to one worker (measured: 19 of 22),
which would quietly make the 2-worker configuration a 1-worker one. The client therefore
opens its pool with as many connections on each worker (it finds the worker that accepted a
connection in /proc), and ``Client.together`` sends concurrent requests through different
workers in turn; each ``Reply`` says which worker answered.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Awaitable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import pytest

from settle.projects.models import IssuedKeys
from tests.conftest import PG_URL, create_project, free_port
from tests.pgdb import fresh_database
from tests.serverproc import ServerProcess

T = TypeVar("T")

CONFIGS = [
    pytest.param(("sqlite", 1), id="sqlite-1w"),
    pytest.param(("sqlite", 2), id="sqlite-2w"),
    pytest.param(("postgres", 1), id="postgres-1w", marks=pytest.mark.postgres),
    pytest.param(("postgres", 2), id="postgres-2w", marks=pytest.mark.postgres),
]
"""``params`` of a module-scoped fixture: (backend, workers)."""


@dataclass
class Target:
    """A running server in one configuration, and one project on it."""

    backend: str
    workers: int
    url: str
    database_url: str
    server: ServerProcess
    keys: IssuedKeys
    stats: dict[str, Any] = field(default_factory=dict)  # figures for the closing summary

    @property
    def label(self) -> str:
        return f"{self.backend}-{self.workers}w"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.keys.processout_username, self.keys.processout_password)

    @property
    def reepay_auth(self) -> tuple[str, str]:
        """The Reepay dialect's: the private key as the user name, an empty password."""
        return (self.keys.reepay_private_key, "")

    def client(self, connections: int = 16, *, auth: tuple[str, str] | None = None) -> Client:
        placer = _Placer(self.server, self.workers) if self.workers > 1 else None
        return Client(self.url, auth or self.auth, connections, placer)


@contextmanager
def serve(backend: str, workers: int, tmp_path: Path) -> Iterator[Target]:
    """``settle serve --workers N`` on a fresh database, with one sandbox project."""
    with ExitStack() as stack:
        if backend == "postgres":
            if not PG_URL:
                pytest.skip(
                    "PostgreSQL tests need SETTLE_TEST_DATABASE_URL (e.g. "
                    "postgresql://postgres@127.0.0.1:5432/test)"
                )
            url = stack.enter_context(fresh_database(PG_URL, prefix="settle_conc"))
        else:
            url = f"sqlite:///{tmp_path / 'settle.db'}"
        server = ServerProcess(
            url, free_port(), tmp_path / "server.log", extra_args=("--workers", str(workers))
        )
        stack.callback(server.kill)  # SIGKILL: a graceful stop takes seconds, and tests nothing
        server.start()  # which migrates the database first
        keys = create_project(url, "concurrency")
        yield Target(backend, workers, server.url, url, server, keys)


async def gather_limited(jobs: Iterable[Awaitable[T]], limit: int = 8) -> list[T]:
    """``asyncio.gather`` with at most ``limit`` jobs in flight; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(j) for j in jobs)))


# --- which worker accepted a connection -----------------------------------------------------


class _Placer:
    """Finds the worker process holding the server end of a loopback connection (Linux
    /proc; elsewhere, or if anything is unreadable, it answers None and nothing is balanced)."""

    def __init__(self, server: ServerProcess, workers: int) -> None:
        self.server, self.workers = server, workers
        self.port = server.port
        self._pids: list[int] = []

    def pids(self) -> list[int]:
        if len(self._pids) < self.workers and self.server.proc is not None:
            parent = self.server.proc.pid
            found = []
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        stat = Path(f"/proc/{entry}/stat").read_text()
                    except OSError:
                        continue
                    if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                        found.append(int(entry))
            self._pids = sorted(found)
        return self._pids

    def workers_of(self, client_ports: Iterable[int]) -> dict[int, int]:
        """client port -> pid of the worker holding the server end (ports not found are left
        out). One pass over /proc/net/tcp, which can hold thousands of TIME_WAIT lines."""
        wanted = set(client_ports)
        try:
            inodes: dict[str, int] = {}
            for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
                cols = line.split()
                local, remote = int(cols[1].split(":")[1], 16), int(cols[2].split(":")[1], 16)
                if local == self.port and remote in wanted and cols[9] != "0":
                    inodes[f"socket:[{cols[9]}]"] = remote
            found = {}
            for pid in self.pids():
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    try:
                        link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    except OSError:
                        continue
                    if link in inodes:
                        found[inodes[link]] = pid
            return found
        except (OSError, ValueError, IndexError):
            return {}


# --- a lean HTTP/1.1 client --------------------------------------------------------------------


@dataclass
class Reply:
    """An HTTP answer, with the attributes of ``httpx.Response`` the tests use."""

    status_code: int
    headers: dict[str, str]  # names in lower case
    content: bytes
    worker: int | None = None  # the pid of the worker that answered, when known

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = time.monotonic()
        self.reusable = True
        self.worker: int | None = None

    async def reply(self) -> Reply:
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        assert "transfer-encoding" not in headers, f"chunked answers are not read here: {head}"
        content = await self.reader.readexactly(int(headers.get("content-length", "0")))
        self.reusable = headers.get("connection", "").lower() != "close"
        self.used = time.monotonic()
        return Reply(int(status_line.split(" ", 2)[1]), headers, content, self.worker)

    def close(self) -> None:
        self.reusable = False
        self.writer.close()


class Client:
    """A minimal HTTP/1.1 keep-alive client for the load these tests make.

    httpx's AsyncClient costs ~2.8 ms of CPU per request here, 15 times what the server
    spends on a ping: on a 2-core machine the load generator, not the server, set the pace.
    This one writes requests on pooled connections and reads ``Content-Length`` answers,
    nothing more. ``together`` puts several requests on their sockets back to back, each on
    its own connection taken before the first is written: they leave within microseconds.
    """

    IDLE_SECONDS = 4.0  # uvicorn closes idle keep-alive connections after 5 s

    def __init__(
        self,
        url: str,
        auth: tuple[str, str],
        connections: int = 16,
        placer: _Placer | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        self.common = f"Host: {parts.netloc}\r\nAuthorization: Basic {token}\r\n"
        self.limit = connections
        self.placer = placer
        self.idle: list[_Connection] = []
        self.workers: list[int] = []  # the workers the balanced pool reaches
        self.open = 0
        self.freed = asyncio.Condition()

    async def __aenter__(self) -> Client:
        if self.placer is not None:
            await self._balance(self.placer)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()

    async def _connect(self) -> _Connection:
        return _Connection(*await asyncio.open_connection(self.host, self.port))

    async def _balance(self, placer: _Placer) -> None:
        """Open the pool with ``limit / workers`` connections on each worker. Connections
        opened one after the other (each answered before the next) mostly alternate between
        workers; a few more rounds make up for the rest."""
        quota = -(-self.limit // placer.workers)
        per: dict[int, list[_Connection]] = {}
        for _ in range(6):
            missing = placer.workers * quota - sum(len(v) for v in per.values())
            if missing <= 0:
                break
            batch = []
            for _ in range(missing + 2):
                conn = await self._connect()
                conn.writer.write(f"GET /healthz HTTP/1.1\r\n{self.common}\r\n".encode())
                await conn.reply()  # answered: a worker has accepted it
                batch.append(conn)
            owners = placer.workers_of(c.writer.get_extra_info("sockname")[1] for c in batch)
            if not owners:  # /proc says nothing: no balancing
                self.idle = batch
                break
            for conn in batch:
                conn.worker = owners.get(conn.writer.get_extra_info("sockname")[1])
                mine = per.setdefault(conn.worker, []) if conn.worker is not None else None
                if mine is not None and len(mine) < quota:
                    mine.append(conn)
                else:
                    conn.close()
        # Interleaved, so that consecutive takes alternate between workers.
        columns = list(per.values())
        while any(columns):
            for col in columns:
                if col:
                    self.idle.append(col.pop())
        for conn in self.idle[self.limit :]:
            conn.close()
        self.idle = self.idle[: self.limit]
        self.open = len(self.idle)
        self.workers = sorted(per)

    async def _take(self, worker: int | None = None) -> _Connection:
        async with self.freed:
            while True:
                fresh = [c for c in self.idle if time.monotonic() - c.used < self.IDLE_SECONDS]
                for stale in set(self.idle) - set(fresh):
                    stale.close()
                    self.open -= 1
                self.idle = fresh
                if self.idle:
                    pick = next((c for c in self.idle if c.worker == worker), self.idle[0])
                    self.idle.remove(pick)
                    return pick
                if self.open < self.limit:
                    self.open += 1
                    break
                await self.freed.wait()
        try:
            return await self._connect()
        except BaseException:
            self.open -= 1
            raise

    async def _give_back(self, conn: _Connection) -> None:
        async with self.freed:
            if conn.reusable:
                self.idle.append(conn)
            else:
                conn.close()
                self.open -= 1
            self.freed.notify()

    def _encode(
        self,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str] | None,
        params: dict[str, str] | None,
    ) -> bytes:
        target = f"{path}?{urlencode(params)}" if params else path
        head = f"{method} {target} HTTP/1.1\r\n{self.common}"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        data = b"" if body is None else json.dumps(body).encode()
        if body is not None:
            head += "Content-Type: application/json\r\n"
        return f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        (reply,) = await self.together([(method, path, json, headers or {})], params)
        return reply

    async def get(self, path: str, params: dict[str, str] | None = None) -> Reply:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, json: Any) -> Reply:
        return await self.request("POST", path, json=json)

    async def together(
        self,
        requests: list[tuple[str, str, Any, dict[str, str]]],
        params: dict[str, str] | None = None,
        *,
        rotate: int = 0,
    ) -> list[Reply]:
        """Send ``(method, path, JSON body or None, headers)`` requests at once, on as many
        connections (through each worker in turn when the pool is balanced, starting with the
        ``rotate``-th), and read their answers."""
        assert len(requests) <= self.limit
        raws = [self._encode(m, p, b, h, params) for m, p, b, h in requests]
        workers = self.workers if len(requests) > 1 else []
        conns: list[_Connection] = []
        try:
            for i in range(len(requests)):
                worker = workers[(i + rotate) % len(workers)] if workers else None
                conns.append(await self._take(worker))
            for conn, raw in zip(conns, raws, strict=True):
                conn.writer.write(raw)
            return list(await asyncio.gather(*(c.reply() for c in conns)))
        except BaseException:
            for conn in conns:
                conn.close()
            raise
        finally:
            for conn in conns:
                await self._give_back(conn)
