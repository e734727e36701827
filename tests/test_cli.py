"""The command line: project creation, first start, and the README's promises."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from settle.projects.keys import hash_secret
from tests.conftest import free_port
from tests.serverproc import ServerProcess


def settle(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "settle.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_projects_create_prints_one_json_object_with_fresh_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    first = json.loads(
        settle(
            "projects", "create", "--name", "Shop", "--json", "--database-url", url, cwd=tmp_path
        ).stdout
    )
    second = json.loads(
        settle(
            "projects", "create", "--name", "Shop", "--json", "--database-url", url, cwd=tmp_path
        ).stdout
    )
    assert re.fullmatch(r"proj_[A-Za-z0-9]{32}", first["project_id"])
    assert first["sandbox"] is True
    assert first["processout"]["username"] == "test-" + first["project_id"]
    password = first["processout"]["password"]
    assert re.fullmatch(r"key_sandbox_[A-Za-z0-9]{32,}", password)
    assert re.fullmatch(r"priv_[A-Za-z0-9]{32,}", first["reepay"]["private_key"])
    assert first["project_id"] != second["project_id"]
    assert password != second["processout"]["password"]

    # Stored hashed: the secret appears nowhere in the database, its SHA-256 does.
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("cli.db*"))
    assert password.encode() not in raw
    assert first["reepay"]["private_key"].encode() not in raw
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        hashes = {row[0] for row in conn.execute("SELECT secret_hash FROM api_keys")}
    assert hash_secret(password) in hashes


def test_live_projects_get_live_keys(tmp_path: Path) -> None:
    out = json.loads(
        settle(
            "projects",
            "create",
            "--name",
            "Live",
            "--live",
            "--json",
            "--database-url",
            f"sqlite:///{tmp_path / 'l.db'}",
            cwd=tmp_path,
        ).stdout
    )
    assert out["sandbox"] is False
    assert out["processout"]["username"] == out["project_id"]
    assert out["processout"]["password"].startswith("key_live_")


def test_the_database_url_also_comes_from_the_environment(tmp_path: Path) -> None:
    env_db = tmp_path / "env.db"
    subprocess.run(
        [sys.executable, "-m", "settle.cli", "projects", "create", "--name", "E", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**__import__("os").environ, "SETTLE_DATABASE_URL": f"sqlite:///{env_db}"},
    )
    assert env_db.exists()
    assert not (tmp_path / "settle.db").exists()


def test_first_start_creates_a_sandbox_project_and_its_credentials_work(tmp_path: Path) -> None:
    db = tmp_path / "first.db"
    server = ServerProcess(f"sqlite:///{db}", free_port(), tmp_path / "serve.log")
    server.start()
    try:
        log = (tmp_path / "serve.log").read_text()
        creds = json.loads(log[log.index("{") : log.index("\n}") + 2])
        auth = (creds["processout"]["username"], creds["processout"]["password"])
        made = httpx.post(
            f"{server.url}/invoices",
            auth=auth,
            json={"name": "first", "amount": "1.00", "currency": "EUR"},
        )
        assert made.status_code == 200, made.text
        assert made.json()["invoice"]["sandbox"] is True
    finally:
        server.stop()
    # A second start reuses the project: no new credentials are printed.
    server.start()
    server.stop()
    assert (tmp_path / "serve.log").read_text().count("Created a sandbox project") == 1


def test_webhooks_set_url_sets_a_projects_urls_per_mode_and_dialect(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    made = json.loads(
        settle(
            "projects", "create", "--name", "H", "--json", "--database-url", url, cwd=tmp_path
        ).stdout
    )
    user = made["processout"]["username"]  # test-proj_...: the sandbox mode

    def set_url(*args: str) -> dict[str, object]:
        out = settle("webhooks", "set-url", "--database-url", url, *args, cwd=tmp_path).stdout
        result: dict[str, object] = json.loads(out)
        return result

    first = set_url("--project", user, "https://shop.example/hooks", "http://127.0.0.1:9/h")
    assert first["project_id"] == made["project_id"] and first["sandbox"] is True
    assert first["dialect"] == "processout" and first["disabled"] is False
    assert first["urls"] == ["https://shop.example/hooks", "http://127.0.0.1:9/h"]
    secret = first["secret"]
    assert isinstance(secret, str) and re.fullmatch(r"[A-Za-z0-9]{32}", secret)
    # The same project by its id: the URLs are replaced, the secret kept.
    again = set_url("--project", made["project_id"], "--disable", "https://shop.example/2")
    assert again == {**first, "urls": ["https://shop.example/2"], "disabled": True}
    live = set_url("--project", made["project_id"], "--live", "--secret", "s3cret-s3cret")
    assert live["sandbox"] is False and live["urls"] == [] and live["secret"] == "s3cret-s3cret"
    reepay = set_url("--project", user, "--dialect", "reepay", "https://shop.example/r")
    assert reepay["dialect"] == "reepay" and reepay["secret"] != secret
    with sqlite3.connect(tmp_path / "hooks.db") as conn:
        rows = sorted(conn.execute("SELECT sandbox, dialect, urls FROM webhook_endpoints"))
    assert rows == [
        (0, "processout", "[]"),
        (1, "processout", '["https://shop.example/2"]'),
        (1, "reepay", '["https://shop.example/r"]'),
    ]

    for bad, message in (
        (["--project", user, "ftp://shop.example/"], "not a valid http(s) URL"),
        (["--project", "proj_" + "0" * 32, "https://shop.example/"], "could not be found"),
    ):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "settle.cli",
                "webhooks",
                "set-url",
                "--database-url",
                url,
                *bad,
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 1 and message in done.stderr, done.stderr
