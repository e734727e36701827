"""A test server of its own database whose delivery worker may reach loopback receivers
(``webhooks_allow_private``) and retries fast: the session server's worker must not reach
them (it would refuse the address and record that), so this one has its own database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from settle.config import Settings
from settle.db.migrate import upgrade
from tests.conftest import PG_URL, RunningServer, free_port, start_server
from tests.pgdb import fresh_database


@pytest.fixture(name="hook_server", scope="module", params=["sqlite", "postgres"])
def hook_server_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip(
                "PostgreSQL tests need SETTLE_TEST_DATABASE_URL (e.g. "
                "postgresql://postgres@127.0.0.1:5432/test)"
            )
        with fresh_database(PG_URL, prefix="settle_hooks") as url:
            yield from _serve(url)
        return
    yield from _serve(f"sqlite:///{tmp_path_factory.mktemp('hooks') / 'settle.db'}")


def _serve(url: str) -> Iterator[RunningServer]:
    upgrade(url)
    port = free_port()
    settings = Settings(
        database_url=url,
        host="127.0.0.1",
        port=port,
        key_cache_seconds=0.0,
        webhooks_allow_private=True,
        webhooks_backoff_seconds=0.05,
        webhooks_backoff_max_seconds=0.2,
        webhooks_poll_seconds=0.02,
    )
    srv, thread = start_server(settings)
    try:
        yield RunningServer(url=f"http://127.0.0.1:{port}", settings=settings, database_url=url)
    finally:
        srv.should_exit = True
        thread.join(timeout=20)
