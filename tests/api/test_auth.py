"""Authentication: timing-safe key checks, secrets stored only as hashes, no secret in logs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from string import hexdigits
from typing import Any

import httpx
import pytest

from settle.errors import AuthenticationError
from settle.projects import service as projects
from settle.projects.keys import hash_secret, new_processout_secret
from settle.projects.models import Scope
from tests.conftest import RunningServer, create_project, free_port
from tests.dbcheck import files_containing, query, table_names
from tests.serverproc import ServerProcess

CARD = "4242424242424242"
CVC = "737"


# --- timing-safe comparison -------------------------------------------------------------------


class _Tx:
    def __init__(self, rows: dict[str, dict[str, Any]], seen: list[tuple[Any, ...]]) -> None:
        self._rows = rows
        self._seen = seen

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        self._seen.append(args)
        assert "secret_hash = $1" in sql
        return self._rows.get(args[0])


class _Db:
    """Just enough of a Database for KeyRing: one key, and a record of what was asked."""

    def __init__(self, secret: str, project_id: str) -> None:
        self.seen: list[tuple[Any, ...]] = []
        self._rows = {hash_secret(secret): {"project_id": project_id, "sandbox": True}}

    @asynccontextmanager
    async def read(self) -> AsyncIterator[_Tx]:
        yield _Tx(self._rows, self.seen)


def test_key_check_is_a_hash_lookup_then_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secret is looked up by its SHA-256 only (an index lookup on a hash leaks nothing
    about the secret), and the username is compared with hmac.compare_digest, on every path:
    right key, wrong username, and a secret that matches no key at all."""
    secret = new_processout_secret(True)
    db = _Db(secret, "proj_A")
    ring = projects.KeyRing(db, ttl=0)  # type: ignore[arg-type]
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)

    async def attempts() -> list[Scope | str]:
        results: list[Scope | str] = []
        for username, password in (
            ("test-proj_A", secret),
            ("test-proj_B", secret),
            ("proj_A", secret),
            ("test-proj_A", secret[:-1] + ("x" if secret[-1] != "x" else "y")),
            ("test-proj_A", "key_sandbox_" + "0" * 40),
        ):
            try:
                results.append(await ring.processout(username, password))
            except AuthenticationError as exc:
                results.append(exc.code)
        return results

    results = asyncio.run(attempts())
    assert results[0] == Scope(project_id="proj_A", sandbox=True)
    assert results[1:] == ["request.authentication.invalid"] * 4
    assert len(compared) == 5, "every attempt goes through compare_digest"
    # The database is only ever asked for a hash, never for the secret itself.
    assert db.seen and all(args[0] != secret for args in db.seen)
    assert all(len(args[0]) == 64 and set(args[0]) <= set(hexdigits) for args in db.seen)
    source = inspect.getsource(projects.KeyRing)
    assert "hmac.compare_digest" in source and "hash_secret(secret)" in source


def _basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_every_wrong_credential_gets_the_identical_401(
    server: RunningServer, anon: httpx.Client
) -> None:
    a = server.create_project("A")
    b = server.create_project("B")
    wrong_secret = new_processout_secret(True)
    attempts = {
        "wrong secret": (a.processout_username, wrong_secret),
        "wrong username (another project's)": (b.processout_username, a.processout_password),
        "wrong username (live form of a sandbox key)": (a.project.id, a.processout_password),
        "unknown username": ("test-proj_" + "x" * 32, a.processout_password),
        "both wrong": ("test-proj_nobody", wrong_secret),
        "empty secret": (a.processout_username, ""),
        "empty username": ("", a.processout_password),
        "secret as username": (a.processout_password, a.processout_username),
    }
    answers = {}
    for what, (username, password) in attempts.items():
        for path, method in (("/invoices", "GET"), ("/invoices", "POST"), ("/customers/x", "GET")):
            response = anon.request(method, path, headers=_basic(username, password), json={})
            assert response.status_code == 401, (what, path, response.text)
            answers[(what, method, path)] = (
                response.content,
                tuple(sorted((k, v) for k, v in response.headers.items() if k.lower() != "date")),
            )
    distinct = set(answers.values())
    assert len(distinct) == 1, distinct
    (body, _), *_ = distinct
    assert a.processout_password.encode() not in body
    # And the right credentials work, so the 401s above were about the credentials.
    ok = anon.get("/invoices", headers=_basic(a.processout_username, a.processout_password))
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Bearer key_sandbox_xxx",
        "basic",
        "Digest username=x",
    ],
)
def test_malformed_authorization_is_401(anon: httpx.Client, header: str) -> None:
    response = anon.get("/invoices", headers={"Authorization": header})
    assert response.status_code == 401, response.text
    assert response.json()["success"] is False
    assert response.headers["www-authenticate"].startswith("Basic")


# --- secrets stored hashed -------------------------------------------------------------------


def _all_text(database_url: str) -> str:
    """Every row of every table, as text."""
    chunks: list[str] = []
    for table in sorted(table_names(database_url)):
        if database_url.startswith("sqlite:"):
            rows = query(database_url, f'SELECT * FROM "{table}"')
        else:
            rows = query(database_url, f'SELECT t::text FROM "{table}" t')
        chunks.extend(repr(r) for r in rows)
    return "\n".join(chunks)


def test_secrets_are_stored_hashed(server: RunningServer) -> None:
    issued = server.create_project("hashed")
    secrets = [issued.processout_password, issued.reepay_private_key]
    rows = query(
        server.database_url,
        "SELECT dialect, secret_hash, secret_hint FROM api_keys WHERE project_id = $1"
        " ORDER BY dialect",
        issued.project.id,
    )
    assert [r[0] for r in rows] == ["processout", "reepay"]
    by_dialect = {r[0]: r for r in rows}
    for dialect, secret in (("processout", secrets[0]), ("reepay", secrets[1])):
        _, stored_hash, hint = by_dialect[dialect]
        assert stored_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert hint.endswith(secret[-4:]) and len(hint) < 24
    # No column of any table holds a secret, nor the random part of one.
    everything = _all_text(server.database_url)
    for secret in secrets:
        assert secret not in everything
        assert secret.rsplit("_", 1)[1][:-4] not in everything
    # Nor do the SQLite files on disk (the database, its WAL), byte for byte.
    if server.database_url.startswith("sqlite:"):
        db_file = Path(server.database_url.removeprefix("sqlite:///"))
        paths = [str(p) for p in (db_file, db_file.with_name(db_file.name + "-wal")) if p.exists()]
        assert files_containing(paths, secrets) == []


# --- no key or card data in logs --------------------------------------------------------------


def test_no_key_or_card_data_in_the_logs(database_url: str, tmp_path: Path) -> None:
    """Run the real server with its access log, send good and bad credentials, card numbers
    and failing requests, then read everything it logged."""
    # Created before the server starts, so it prints no first-start credentials.
    issued = create_project(database_url, "logs")
    other = create_project(database_url, "logs")
    secrets = [
        issued.processout_password,
        issued.reepay_private_key,
        other.processout_password,
        other.reepay_private_key,
    ]
    log_path = tmp_path / "server.log"
    server = ServerProcess(database_url, free_port(), log_path, extra_args=("--access-log",))
    server.start()
    try:
        good = (issued.processout_username, issued.processout_password)
        wrong = new_processout_secret(True)
        secrets.append(wrong)
        with httpx.Client(base_url=server.url, timeout=30) as c:
            card_body = {
                "amount": "10.00",
                "currency": "EUR",
                "name": f"card {CARD}",
                "metadata": {"card": CARD, "cvc": CVC, "secret": issued.processout_password},
            }
            assert c.post("/invoices", json=card_body, auth=good).status_code == 200
            assert c.get("/invoices", auth=good).status_code == 200
            for auth in (
                (issued.processout_username, wrong),
                (other.processout_username, issued.processout_password),
                (issued.processout_password, issued.processout_password),
                ("", issued.reepay_private_key),
            ):
                assert c.get("/invoices", auth=auth).status_code == 401
                assert c.post("/invoices", json=card_body, auth=auth).status_code == 401
            assert c.get("/invoices").status_code == 401
            # Failures: validation echoing a card number and a secret, 404, 405, 413.
            bad = {"amount": CARD, "currency": issued.processout_password, "email": CARD}
            assert c.post("/invoices", json=bad, auth=good).status_code == 400
            assert c.post("/customers", json={"email": CARD}, auth=good).status_code == 400
            assert c.get("/invoices/iv_missing", auth=good).status_code == 404
            # A card with its number and CVC: refused (no expiry), then accepted.
            card: dict[str, object] = {"number": CARD, "cvc2": CVC}
            assert c.post("/cards", json=card, auth=good).status_code == 400
            card |= {"exp_month": 12, "exp_year": 2034, "name": "Card Holder"}
            assert c.post("/cards", json=card, auth=good).status_code == 200
            assert c.patch("/invoices", json=card_body, auth=good).status_code == 405
            big = {"metadata": {"card": CARD * 100_000}}
            assert c.post("/invoices", json=big, auth=good).status_code == 413
            raw = b'{"name": "\xff' + CARD.encode() + b'"}'
            assert c.post("/invoices", content=raw, auth=good).status_code == 400
    finally:
        server.stop()
    log = server.log_text()
    # The capture works: the access log has the requests.
    assert '"POST /invoices HTTP/1.1" 200' in log, log[-2000:]
    assert '"GET /invoices HTTP/1.1" 401' in log, log[-2000:]
    for secret in secrets:
        assert secret not in log
        assert secret.rsplit("_", 1)[1][:12] not in log
        assert base64.b64encode(secret.encode()).decode()[:16] not in log
    assert CARD not in log
    assert "Traceback" not in log
