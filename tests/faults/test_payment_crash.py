"""Payments across a crash: SIGKILL ``settle serve`` between the gateway's answer and the
transaction that writes it (or before the gateway was called at all), restart, and the invoice
is captured exactly once, and its transaction says so.

A payment operation takes three steps (settle.billing.payments): written ``pending``, the
gateway called outside any database transaction, the outcome written. A crash between the
last two leaves an operation the gateway did but Settle never heard of; recovery (the runtime's
loop, ``SETTLE_PAYMENT_RECOVERY_SECONDS``) asks the gateway by the operation's key and finishes
it; an operation the gateway never saw is sent then (the key makes that safe).

To hit the window deterministically the sandbox gateway is started with an answer delay
(``SETTLE_SANDBOX_ANSWER_DELAY_MS``: it has recorded its outcome and not answered yet, as if
the answer were still on its way back over the network). Per backend, rounds of:

- start the server with that delay, send ``INVOICES`` sales at once (POST
  /invoices/{id}/capture with a card source, each with its own Idempotency-Key);
- SIGKILL the process group once every sale waits in its window: "authorization answered"
  (the sandbox recorded the authorization, Settle has it pending), "capture answered" (the
  authorization written, the capture recorded by the sandbox and pending in Settle), or
  "authorization (capture) before the call" (written pending, not seen by the sandbox yet:
  held open by the sandbox's call delay, ``SETTLE_SANDBOX_CALL_DELAY_MS``, found with the
  sandbox's writes held back, and killed while they are);
- restart without the delay, with a short staleness (1 s), some rounds with two workers (both
  run recovery), wait until no operation is pending, and check: every transaction has exactly
  one succeeded authorization and one succeeded capture (or, if its request died before
  writing anything, none), captured_amount == authorized_amount == amount, exactly one sandbox
  operation per operation key, and a keyed retry of each request answers consistently (the
  recovered payment, or a refusal to capture it again) without a second gateway operation.

The servers under load keep the default staleness (60 s): a request still waiting for the
gateway must not look abandoned. ``SETTLE_PAYMENT_CRASH_ROUNDS`` repeats the rounds for a
longer soak.

The same answer delay holds requests in the gateway's window for two more checks: recovery
taking an operation whose request still waits for a slow answer (both finish it: it must
count once), and a sale sent while an authorization's outcome is being written (it must see
that outcome: capture the authorization, not refuse the invoice as already authorized).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from settle.db.migrate import upgrade
from settle.db.sqlite import sqlite_path
from tests.conftest import PG_URL, create_project, free_port
from tests.dbcheck import pg_dsn, query
from tests.faults.test_crash import assert_clean_start
from tests.pgdb import fresh_database
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.slow

INVOICES = 6
ANSWER_DELAY_MS = 1500  # the window: long enough to kill in, short of any staleness
RECOVERY_SECONDS = 1  # after the restart
REPEAT = int(os.environ.get("SETTLE_PAYMENT_CRASH_ROUNDS", "1"))
# (window, worker processes of the restarted server)
ROUNDS = [
    ("authorization answered", 1),
    ("capture answered", 1),
    ("authorization before the call", 1),
    ("capture before the call", 1),
    ("authorization answered", 2),
    ("capture answered", 2),
    ("authorization before the call", 2),
    ("capture before the call", 2),
] * REPEAT
CARD = "4242424242424242"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'payments.db'}"
        return
    if not PG_URL:
        pytest.skip(
            "PostgreSQL tests need SETTLE_TEST_DATABASE_URL (e.g. "
            "postgresql://postgres@127.0.0.1:5432/test)"
        )
    with fresh_database(PG_URL, prefix="settle_paycrash") as url:
        yield url


# --- looking behind the API ------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    key: str
    type: str
    status: str
    amount: int
    seen_by_gateway: int  # sandbox_operations rows with its key


def operations(url: str, transaction_ids: list[str]) -> dict[str, list[Op]]:
    """Every transaction's operations log (in order), and what the sandbox recorded of each."""
    found: dict[str, list[Op]] = {t: [] for t in transaction_ids}
    if not transaction_ids:
        return found
    marks = ", ".join(f"${i}" for i in range(1, len(transaction_ids) + 1))
    rows = query(
        url,
        "SELECT o.transaction_id, o.operation_key, o.type, o.status, o.amount,"
        " (SELECT count(*) FROM sandbox_operations s WHERE s.operation_key = o.operation_key)"
        f" FROM transaction_operations o WHERE o.transaction_id IN ({marks}) ORDER BY o.seq",
        *transaction_ids,
    )
    for tid, key, kind, status, amount, seen in rows:
        found[tid].append(Op(key, kind, status, int(amount), int(seen)))
    return found


def window_of(log: list[Op]) -> str:
    """Where a sale stands, by its log."""
    if not log:
        return "not started"
    last = log[-1]
    if last.status != "pending":
        return "done" if [o.type for o in log] == ["authorization", "capture"] else "other"
    return f"{last.type} {'answered' if last.seen_by_gateway else 'before the call'}"


class Freeze:
    """Holds the sandbox gateway's writes back (on SQLite, every write: the one lock; on
    PostgreSQL, an EXCLUSIVE lock on sandbox_operations, which its reads pass) while it reads
    through the same connection: what it sees cannot change until it lets go.

    On SQLite it first queues for the lock file the server's writers queue on
    (settle.db.sqlite: ``<database>-writer.lock``): SQLite's own busy handler polls with
    back-off, and against a server that takes the lock batch after batch it would hardly ever
    get in."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite: sqlite3.Connection | None = None
        self.queue = -1
        self.pg: Any = None

    def __enter__(self) -> Freeze:
        if self.url.startswith("sqlite:"):
            path = sqlite_path(self.url)
            self.queue = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.queue, fcntl.LOCK_EX)
            self.sqlite = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.sqlite.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            self.pg = psycopg.connect(pg_dsn(self.url))
            self.pg.execute("LOCK TABLE sandbox_operations IN EXCLUSIVE MODE")
        return self

    def pending_unseen(self, transaction_ids: list[str], kind: str) -> int:
        """Operations of ``kind`` of these transactions written pending that the gateway has
        not seen."""
        mark = "?" if self.sqlite else "%s"
        marks = ", ".join(mark for _ in transaction_ids)
        sql = (
            f"SELECT count(*) FROM transaction_operations o WHERE o.status = 'pending'"
            f" AND o.type = {mark} AND o.transaction_id IN ({marks}) AND NOT EXISTS"
            " (SELECT 1 FROM sandbox_operations s WHERE s.operation_key = o.operation_key)"
        )
        params = [kind, *transaction_ids]
        if self.sqlite is not None:
            return int(self.sqlite.execute(sql, params).fetchone()[0])
        return int(self.pg.execute(sql, params).fetchone()[0])

    def __exit__(self, *exc: object) -> None:
        if self.sqlite is not None:
            self.sqlite.execute("ROLLBACK")
            self.sqlite.close()
            fcntl.flock(self.queue, fcntl.LOCK_UN)
            os.close(self.queue)
        if self.pg is not None:
            self.pg.rollback()
            self.pg.close()


# --- the sales --------------------------------------------------------------------------------


@dataclass
class Sale:
    invoice_id: str
    transaction_id: str
    amount: str
    card_id: str
    answer: httpx.Response | None = None  # None: the kill took it
    window: str = ""  # where it stood when the server was killed

    @property
    def path(self) -> str:
        return f"/invoices/{self.invoice_id}/capture"

    @property
    def key(self) -> str:
        return f"sale-{self.invoice_id}"

    @property
    def body(self) -> dict[str, str]:
        return {"source": self.card_id}


def send(url: str, auth: tuple[str, str], sale: Sale, go: threading.Barrier) -> None:
    with httpx.Client(base_url=url, auth=auth, timeout=60) as client:
        go.wait()
        try:
            sale.answer = client.post(
                sale.path, json=sale.body, headers={"Idempotency-Key": sale.key}
            )
        except httpx.TransportError:
            sale.answer = None  # the server died with it in flight


def new_sales(url: str, auth: tuple[str, str], round_no: int, n: int = INVOICES) -> list[Sale]:
    """``n`` invoices of distinct amounts, each with a card of its own to pay it."""
    sales = []
    with httpx.Client(base_url=url, auth=auth, timeout=30) as client:
        for i in range(n):
            amount = f"{round_no}.{i + 1:02d}"
            made = client.post("/invoices", json={"name": "x", "amount": amount, "currency": "EUR"})
            invoice = made.json()["invoice"]
            card = client.post("/cards", json={"number": CARD, "exp_month": 12, "exp_year": 2031})
            sales.append(
                Sale(invoice["id"], invoice["transaction_id"], amount, card.json()["card"]["id"])
            )
    return sales


def kill_in_window(server: ServerProcess, url: str, sales: list[Sale], window: str) -> None:
    """Wait until the sales stand in ``window``, and SIGKILL the server there."""
    tids = [s.transaction_id for s in sales]
    # Generous: on a loaded 2-core machine the sales move only between the freezes below.
    deadline = time.monotonic() + 90
    while True:
        assert time.monotonic() < deadline, f"the sales never reached {window!r}"
        assert server.proc is not None and server.proc.poll() is None, server.log_text()[-3000:]
        if window.endswith("before the call"):
            with Freeze(url) as frozen:
                if frozen.pending_unseen(tids, window.split()[0]):
                    server.kill()  # the gateway's writes held back: nothing moves meanwhile
                    break
            time.sleep(0.01)  # let the sales move between two freezes
            continue
        logs = operations(url, tids)
        if all(window_of(logs[t]) == window for t in tids):
            server.kill()
            break
        time.sleep(0.005)
    logs = operations(url, tids)
    for sale in sales:
        sale.window = window_of(logs[sale.transaction_id])


# --- after the restart ----------------------------------------------------------------------


def wait_recovered(url: str, sales: list[Sale], timeout: float = 30) -> float:
    began = time.monotonic()
    tids = [s.transaction_id for s in sales]
    while True:
        logs = operations(url, tids)
        if not any(o.status == "pending" for log in logs.values() for o in log):
            return time.monotonic() - began
        assert time.monotonic() - began < timeout, f"still pending: {logs}"
        time.sleep(0.05)


def assert_captured_once(tr: dict[str, Any], sale: Sale, log: list[Op]) -> None:
    where = f"{sale.invoice_id} (killed at {sale.window!r})"
    minor = int(Decimal(sale.amount) * 100)
    assert [(o.type, o.status) for o in log] == [
        ("authorization", "succeeded"),
        ("capture", "succeeded"),
    ], (where, log)
    assert [o.amount for o in log] == [minor, minor], (where, log)
    assert [o.seen_by_gateway for o in log] == [1, 1], (where, log)
    assert tr["status"] == "completed", (where, tr)
    for name in ("amount", "authorized_amount", "captured_amount", "available_amount"):
        assert Decimal(tr[name]) == Decimal(sale.amount), (where, name, tr)
    assert Decimal(tr["refunded_amount"]) == Decimal(tr["voided_amount"]) == 0, (where, tr)
    ops = [(op["type"], op["status"]) for op in tr["operations"]]
    assert ops == [("authorization", "succeeded"), ("capture", "succeeded")], (where, ops)


def gateway_rows(url: str, transaction_ids: list[str]) -> Counter[str]:
    """Sandbox operations per operation key of these transactions (one each, or a double)."""
    marks = ", ".join(f"${i}" for i in range(1, len(transaction_ids) + 1))
    rows = query(
        url,
        "SELECT s.operation_key FROM sandbox_operations s JOIN transaction_operations o"
        f" ON o.operation_key = s.operation_key WHERE o.transaction_id IN ({marks})",
        *transaction_ids,
    )
    return Counter(str(k) for (k,) in rows)


def retry(client: httpx.Client, sale: Sale) -> httpx.Response:
    """The keyed request again, as its client would after losing the answer (a request whose
    key is still claimed by the dead one is refused as in progress until recovery frees it)."""
    deadline = time.monotonic() + 30
    while True:
        answer = client.post(sale.path, json=sale.body, headers={"Idempotency-Key": sale.key})
        if answer.status_code != 400 or answer.json()["error_type"] != (
            "request.idempotency-key.in-progress"
        ):
            return answer
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.1)


@dataclass
class Figures:
    kills: int = 0
    invoices: int = 0
    windows: Counter[str] = field(default_factory=Counter)  # where the sales stood at kills
    retries: Counter[str] = field(default_factory=Counter)  # how keyed retries answered
    recovery_seconds: float = 0.0


def check_round(
    url: str, server: ServerProcess, auth: tuple[str, str], sales: list[Sale], figures: Figures
) -> None:
    tids = [s.transaction_id for s in sales]
    logs = operations(url, tids)
    with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
        # Recovered: each sale done exactly once, or (its request died before writing) not
        # started at all.
        for sale in sales:
            tr = client.get(f"/invoices/{sale.invoice_id}/transactions").json()["transaction"]
            if sale.window == "not started" and not logs[sale.transaction_id]:
                assert tr["status"] == "waiting" and tr["operations"] == [], tr
                continue
            assert_captured_once(tr, sale, logs[sale.transaction_id])
        # The keyed retries: the recovered payment, as the first request would have answered
        # it (or the sale now, if its request died before writing anything); never a refusal
        # of the payment the key itself made, never a second capture.
        for sale in sales:
            answer = retry(client, sale)
            assert answer.status_code == 200, answer.text
            tr = answer.json()["transaction"]
            assert tr["id"] == sale.transaction_id, answer.text
            assert tr["status"] == "completed", answer.text
            assert Decimal(tr["captured_amount"]) == Decimal(sale.amount), answer.text
            replayed = answer.headers.get("idempotent-replayed") == "true"
            assert replayed or sale.window == "not started", (sale.window, answer.text)
            figures.retries["200 replayed" if replayed else "200 fresh"] += 1
            again = retry(client, sale)  # and once more: the same answer
            assert (again.status_code, again.json().get("error_type")) == (
                answer.status_code,
                answer.json().get("error_type"),
            ), (answer.text, again.text)
            tr = client.get(f"/invoices/{sale.invoice_id}/transactions").json()["transaction"]
            assert_captured_once(
                tr, sale, operations(url, [sale.transaction_id])[sale.transaction_id]
            )
    seen = gateway_rows(url, tids)
    assert len(seen) == 2 * len(sales) and set(seen.values()) == {1}, seen


def payment_crash_rounds(url: str, tmp_path: Path) -> Figures:
    upgrade(url)
    keys = create_project(url, "payment crash")
    auth = (keys.processout_username, keys.processout_password)
    log_path = tmp_path / "server.log"
    figures = Figures()
    servers: list[ServerProcess] = []
    try:
        for round_no, (window, workers) in enumerate(ROUNDS, start=1):
            # The window is held open by the sandbox's latency: after it has recorded its
            # answer ("answered"), or before it acts on the call ("before the call").
            delay = (
                "SETTLE_SANDBOX_ANSWER_DELAY_MS"
                if window.endswith("answered")
                else "SETTLE_SANDBOX_CALL_DELAY_MS"
            )
            loaded = ServerProcess(url, free_port(), log_path, env={delay: str(ANSWER_DELAY_MS)})
            servers.append(loaded)
            loaded.start()
            sales = new_sales(loaded.url, auth, round_no)
            go = threading.Barrier(len(sales))
            threads = [
                threading.Thread(target=send, args=(loaded.url, auth, s, go), daemon=True)
                for s in sales
            ]
            for t in threads:
                t.start()
            kill_in_window(loaded, url, sales, window)
            for t in threads:
                t.join(timeout=30)
                assert not t.is_alive()
            figures.kills += 1
            figures.invoices += len(sales)
            figures.windows.update(s.window for s in sales)
            if window.endswith("answered"):
                assert {s.window for s in sales} == {window}, [s.window for s in sales]
            else:
                assert window in {s.window for s in sales}, [s.window for s in sales]
            assert all(s.answer is None for s in sales if s.window != "done"), [
                (s.window, s.answer and s.answer.text) for s in sales
            ]

            restarted = ServerProcess(
                url,
                free_port(),
                log_path,
                extra_args=("--workers", str(workers)),
                env={"SETTLE_PAYMENT_RECOVERY_SECONDS": str(RECOVERY_SECONDS)},
            )
            servers.append(restarted)
            offset = log_path.stat().st_size
            restarted.start()
            figures.recovery_seconds += wait_recovered(url, sales)
            check_round(url, restarted, auth, sales, figures)
            assert_clean_start(log_path.read_text(errors="replace")[offset:])
            restarted.kill()
    finally:
        for server in servers:
            server.kill()
    return figures


def test_a_crash_in_the_gateways_window_captures_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    began = time.monotonic()
    figures = payment_crash_rounds(database_url, tmp_path)
    windows = ", ".join(f"{n} {w}" for w, n in sorted(figures.windows.items()))
    retries = ", ".join(f"{n} x {w}" for w, n in sorted(figures.retries.items()))
    print(
        f"\n{database_url.split(':')[0]}: {figures.kills} kills, {figures.invoices} sales"
        f" ({windows} at the kill); recovered in {figures.recovery_seconds:.1f} s in all;"
        f" keyed retries answered {retries}; {time.monotonic() - began:.1f} s"
    )


def test_recovery_racing_a_slow_answer_captures_once(database_url: str, tmp_path: Path) -> None:
    """A gateway that answers later than the staleness: recovery takes the operation while
    its request still waits for the answer, and both finish it. The invoice must still be
    authorized once and captured once."""
    upgrade(database_url)
    keys = create_project(database_url, "slow gateway")
    auth = (keys.processout_username, keys.processout_password)
    server = ServerProcess(
        database_url,
        free_port(),
        tmp_path / "server.log",
        env={
            "SETTLE_SANDBOX_ANSWER_DELAY_MS": "2500",
            "SETTLE_PAYMENT_RECOVERY_SECONDS": str(RECOVERY_SECONDS),
        },
    )
    try:
        server.start()
        (sale,) = new_sales(server.url, auth, 1, n=1)
        with httpx.Client(base_url=server.url, auth=auth, timeout=60) as client:
            answer = client.post(sale.path, json=sale.body)
            assert answer.status_code == 200, answer.text
            wait_recovered(database_url, [sale])
            tr = client.get(f"/invoices/{sale.invoice_id}/transactions").json()["transaction"]
        sale.window = "slow answer"
        assert_captured_once(
            tr, sale, operations(database_url, [sale.transaction_id])[sale.transaction_id]
        )
    finally:
        server.kill()


@contextmanager
def invoice_held(url: str, invoice_id: str) -> Iterator[Callable[[], int]]:
    """Hold the invoice's row lock (SQLite: every write) from outside; yields a function
    that counts the server's transactions waiting for a lock (SQLite: -1, unknown)."""
    if url.startswith("sqlite:"):
        with Freeze(url):
            yield lambda: -1
        return
    import psycopg

    with psycopg.connect(pg_dsn(url)) as holder, psycopg.connect(pg_dsn(url)) as watcher:
        holder.execute("SELECT id FROM invoices WHERE id = %s FOR UPDATE", [invoice_id])

        def waiting() -> int:
            found = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            ).fetchone()
            watcher.rollback()
            return int(found[0]) if found else 0

        yield waiting
        holder.rollback()


def test_a_sale_sent_while_an_authorization_finishes_captures_it(
    database_url: str, tmp_path: Path
) -> None:
    """POST /invoices/{id}/capture with a source on an invoice whose authorization is being
    written must end as it does after it: a capture of the authorization (a sale only when
    nothing is authorized). A (authorize) waits for the gateway's answer; the invoice is held
    so that A's outcome write queues for it, then B (the sale) arrives and queues behind A."""
    delay = 1.0
    upgrade(database_url)
    keys = create_project(database_url, "ordered")
    auth = (keys.processout_username, keys.processout_password)
    server = ServerProcess(
        database_url,
        free_port(),
        tmp_path / "server.log",
        env={"SETTLE_SANDBOX_ANSWER_DELAY_MS": str(int(delay * 1000))},
    )
    try:
        server.start()
        (sale,) = new_sales(server.url, auth, 1, n=1)
        answers: dict[str, httpx.Response] = {}

        def post(name: str, path: str) -> None:
            with httpx.Client(base_url=server.url, auth=auth, timeout=60) as client:
                answers[name] = client.post(path, json=sale.body)

        a = threading.Thread(target=post, args=("A", f"/invoices/{sale.invoice_id}/authorize"))
        b = threading.Thread(target=post, args=("B", sale.path))
        a.start()
        deadline = time.monotonic() + 20
        tids = [sale.transaction_id]
        while window_of(operations(database_url, tids)[sale.transaction_id]) != (
            "authorization answered"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with invoice_held(database_url, sale.invoice_id) as waiting:
            time.sleep(delay + 0.3)  # A has its answer and waits for the invoice
            assert waiting() in (-1, 1)
            b.start()
            while waiting() not in (-1, 2):  # B too, behind A
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(0.3 if waiting() == -1 else 0)
        a.join(timeout=30)
        b.join(timeout=30)
        assert answers["A"].status_code == 200, answers["A"].text
        assert answers["A"].json()["transaction"]["status"] == "authorized"
        assert answers["B"].status_code == 200, answers["B"].text
        tr = answers["B"].json()["transaction"]
        assert tr["status"] == "completed", tr
        assert Decimal(tr["captured_amount"]) == Decimal(sale.amount), tr
    finally:
        server.kill()
