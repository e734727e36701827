"""Shared fixtures: a real Settle server on a loopback port, per database backend.

Every test runs against SQLite, and against PostgreSQL when SETTLE_TEST_DATABASE_URL is set
(otherwise the PostgreSQL variants are reported as skipped, with the reason). Tests isolate
from each other by creating their own project: every query is scoped to a project, so they
cannot see each other's objects.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from settle.app import create_app
from settle.config import Settings
from settle.db.database import connect
from settle.db.migrate import upgrade
from settle.projects import service as projects
from settle.projects.models import IssuedKeys
from tests.pgdb import EVENTS_WAIT, fresh_database

PG_URL = os.environ.get("SETTLE_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgres"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip(
                "PostgreSQL tests need SETTLE_TEST_DATABASE_URL (e.g. "
                "postgresql://postgres@127.0.0.1:5432/test)"
            )
        with fresh_database(PG_URL) as url:
            upgrade(url)
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'settle.db'}"
    upgrade(url)
    yield url


@dataclass
class RunningServer:
    url: str
    settings: Settings
    database_url: str

    def create_project(self, name: str = "test", *, sandbox: bool = True) -> IssuedKeys:
        return create_project(self.database_url, name, sandbox=sandbox)


def create_project(database_url: str, name: str = "test", *, sandbox: bool = True) -> IssuedKeys:
    async def run() -> IssuedKeys:
        db = await connect(database_url)
        try:
            async with db.write() as tx:
                return await projects.create_project(tx, name, sandbox=sandbox)
        finally:
            await db.close()

    return asyncio.run(run())


class ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns the signals
        pass


def start_server(settings: Settings) -> tuple[ThreadedServer, threading.Thread]:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="on",
        loop="asyncio",
        # Longer than httpx's own 5 s keep-alive expiry: with both at 5 s, a client reusing an
        # idle connection as the server closed it got "Server disconnected without sending a
        # response" on a loaded machine (seen in the isolation tests).
        timeout_keep_alive=60,
    )
    server = ThreadedServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return server, thread


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[RunningServer]:
    port = free_port()
    settings = Settings(
        database_url=database_url,
        host="127.0.0.1",
        port=port,
        max_body_bytes=256 * 1024,
        key_cache_seconds=0.0,
        events_settle_seconds=EVENTS_WAIT,
    )
    srv, thread = start_server(settings)
    try:
        yield RunningServer(
            url=f"http://127.0.0.1:{port}", settings=settings, database_url=database_url
        )
    finally:
        srv.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def project(server: RunningServer) -> IssuedKeys:
    return server.create_project()


@pytest.fixture
def client(server: RunningServer, project: IssuedKeys) -> Iterator[httpx.Client]:
    """An HTTP client authenticated as a fresh sandbox project, ProcessOut dialect."""
    with httpx.Client(
        base_url=server.url,
        auth=(project.processout_username, project.processout_password),
        timeout=30,
    ) as c:
        yield c


@pytest.fixture
def anon(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture
def sdk(server: RunningServer, project: IssuedKeys):  # type: ignore[no-untyped-def]
    """The official ProcessOut client, unmodified, pointed at the test server."""
    import processout

    client = processout.ProcessOut(project.processout_username, project.processout_password)
    client.host = server.url
    return client
