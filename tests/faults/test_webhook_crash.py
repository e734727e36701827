"""Webhooks across crashes and between competing workers, with real processes and a real
receiver on a loopback port, on each backend.

- The receiver is down while ``settle serve`` records events (its deliveries fail and are
  retried), the server is killed with SIGKILL, the receiver comes up, the server is restarted:
  the receiver gets every event, and the events of each object in the order they happened.
- Two ``settle webhooks deliver`` processes on one database (``serve`` delivering nothing):
  every event is delivered once, none twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from settle.db.migrate import upgrade
from tests.conftest import PG_URL, create_project, free_port
from tests.dbcheck import query
from tests.events.receiver import Received, receiving
from tests.faults.test_crash import assert_clean_start
from tests.pgdb import fresh_database
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.slow

INVOICES = 6
CHANGES = 3  # updates of each invoice after its creation
FAST_RETRIES = {
    "SETTLE_WEBHOOKS_ALLOW_PRIVATE": "1",
    "SETTLE_WEBHOOKS_BACKOFF_SECONDS": "0.05",
    "SETTLE_WEBHOOKS_BACKOFF_MAX_SECONDS": "0.3",
    "SETTLE_WEBHOOKS_POLL_SECONDS": "0.05",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'webhooks.db'}"
        return
    if not PG_URL:
        pytest.skip(
            "PostgreSQL tests need SETTLE_TEST_DATABASE_URL (e.g. "
            "postgresql://postgres@127.0.0.1:5432/test)"
        )
    with fresh_database(PG_URL, prefix="settle_hookcrash") as url:
        yield url


def set_url(database_url: str, project: str, url: str) -> dict[str, object]:
    """The project's ProcessOut webhook URL, set through the CLI."""
    done = subprocess.run(
        [sys.executable, "-m", "settle.cli", "webhooks", "set-url", "--database-url",
         database_url, "--project", project, url],
        capture_output=True, text=True, check=True, env=_env(),
    )  # fmt: skip
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def _env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SETTLE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(more)
    return env


def make_changes(base_url: str, auth: tuple[str, str], invoices: int) -> list[str]:
    """Invoices, each changed ``CHANGES`` times (one request each): their events."""
    ids = []
    with httpx.Client(base_url=base_url, auth=auth, timeout=30) as client:
        for n in range(invoices):
            created = client.post("/invoices", json={"name": f"n{n}", "amount": "1.00",
                                                     "currency": "EUR"})  # fmt: skip
            assert created.status_code == 200, created.text
            invoice_id = created.json()["invoice"]["id"]
            for change in range(CHANGES):
                changed = client.put(f"/invoices/{invoice_id}", json={"amount": f"{change + 2}.00"})
                assert changed.status_code == 200, changed.text
            ids.append(invoice_id)
    return ids


def sent_events(database_url: str, project_id: str) -> list[tuple[str, str]]:
    """(event id, order key) of every event of the project the ProcessOut dialect sends,
    in the order they happened."""
    from settle.api.processout.events import SENT

    names = ", ".join(f"'{t.value}'" for t in SENT)
    rows = query(
        database_url,
        f"SELECT id, order_key FROM events WHERE project_id = $1 AND type IN ({names})"
        " ORDER BY seq",
        project_id,
    )
    return [(r[0], r[1]) for r in rows]


def first_deliveries(received: list[Received]) -> list[str]:
    """Event ids in the order of their first successful delivery."""
    seen: dict[str, None] = {}
    for r in received:
        if r.status == 200:
            seen.setdefault(r.json()["event_id"], None)
    return list(seen)


def test_a_receiver_down_across_a_crash_still_gets_every_event_in_order(
    database_url: str, tmp_path: Path
) -> None:
    upgrade(database_url)
    keys = create_project(database_url, "webhook crash")
    auth = (keys.processout_username, keys.processout_password)
    receiver_port = free_port()
    set_url(database_url, keys.processout_username, f"http://127.0.0.1:{receiver_port}/hooks")
    server = ServerProcess(database_url, free_port(), tmp_path / "server.log", env=FAST_RETRIES)
    try:
        server.start()
        make_changes(server.url, auth, INVOICES)
        # The receiver is down: attempts fail (connection refused) and are retried.
        deadline = time.monotonic() + 30
        while query(database_url, "SELECT count(*) FROM delivery_attempts")[0][0] < INVOICES:
            assert time.monotonic() < deadline, "no delivery was attempted"
            time.sleep(0.05)
        server.kill()
        expected = sent_events(database_url, keys.project.id)
        assert len(expected) >= INVOICES * (1 + CHANGES)
        delivered_before = query(
            database_url, "SELECT count(*) FROM deliveries WHERE state = 'delivered'"
        )[0][0]
        assert delivered_before == 0
        restarted_at = len(server.log_text())
        with receiving(port=receiver_port) as receiver:
            server.start()
            receiver.wait_for(
                lambda r: set(first_deliveries(r.received)) >= {e for e, _ in expected},
                timeout=60,
            )
        assert_clean_start(server.log_text()[restarted_at:])
    finally:
        server.kill()
    order = first_deliveries(receiver.received)
    for key in {k for _, k in expected}:
        of_object = [e for e, k in expected if k == key]
        assert [e for e in order if e in of_object] == of_object, key
    for request in receiver.received:
        assert request.path == "/hooks"
        assert request.headers["Settle-Signature"].startswith("t=")


def test_two_delivery_workers_deliver_each_event_once(database_url: str, tmp_path: Path) -> None:
    upgrade(database_url)
    keys = create_project(database_url, "two workers")
    auth = (keys.processout_username, keys.processout_password)

    def slow(request: Received, before: int) -> int:
        time.sleep(0.01)  # long enough for both workers to have deliveries in flight
        return 200

    with receiving(slow) as receiver:
        set_url(database_url, keys.processout_username, receiver.url)
        server = ServerProcess(
            database_url,
            free_port(),
            tmp_path / "server.log",
            env={**FAST_RETRIES, "SETTLE_WEBHOOKS_DELIVER": "0"},
        )
        workers: list[subprocess.Popen[bytes]] = []
        try:
            server.start()
            make_changes(server.url, auth, 20)
            expected = {e for e, _ in sent_events(database_url, keys.project.id)}
            for n in range(2):
                with (tmp_path / f"worker{n}.log").open("wb") as log:
                    workers.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "settle.cli", "webhooks", "deliver",
                             "--database-url", database_url],
                            stdout=log, stderr=subprocess.STDOUT, env=_env(**FAST_RETRIES),
                        )
                    )  # fmt: skip
            receiver.wait_for(lambda r: set(first_deliveries(r.received)) >= expected, 60)
            time.sleep(0.5)  # time for a second delivery of anything to show
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(timeout=20)
            server.kill()
    got = [r.json()["event_id"] for r in receiver.received]
    assert sorted(got) == sorted(expected), "each event delivered once"
    assert [w.returncode for w in workers] == [0, 0]
    rows = query(database_url, "SELECT state, attempts FROM deliveries")
    assert {(state, attempts) for state, attempts in rows} == {("delivered", 1)}
