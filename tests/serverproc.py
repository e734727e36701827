"""A real ``settle serve`` in a child process, for tests that kill it or read its logs.

Started with ``sys.executable -m settle.cli serve`` so it is the interpreter (and the installed
package) running the tests, in CI as on a workstation.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


class ServerProcess:
    """``entry="cli"``: ``settle serve`` (migrations, then uvicorn); ``entry="asgi"``: the
    documented ASGI entry point, ``uvicorn --factory settle.asgi:app``, configured by
    SETTLE_* variables (it does not migrate). The SETTLE_* variables of the test run are not
    passed on; ``env`` adds variables of the server's own (e.g. SETTLE_RENDER_CACHE_BYTES)."""

    def __init__(
        self,
        database_url: str,
        port: int,
        log_path: Path,
        *,
        extra_args: tuple[str, ...] = (),
        entry: str = "cli",
        env: dict[str, str] | None = None,
    ) -> None:
        assert entry in ("cli", "asgi")
        self.database_url = database_url
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.extra_args = extra_args
        self.entry = entry
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 30.0) -> float:
        """Start and wait until ``/healthz`` answers; returns the seconds it took."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SETTLE_")}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        listen = ["--host", "127.0.0.1", "--port", str(self.port), *self.extra_args]
        if self.entry == "cli":
            args = [sys.executable, "-m", "settle.cli", "serve"]
            args += ["--database-url", self.database_url, *listen]
        else:
            env["SETTLE_DATABASE_URL"] = self.database_url
            env["SETTLE_PORT"] = str(self.port)
            args = [sys.executable, "-m", "uvicorn", "--factory", "settle.asgi:app", *listen]
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = began + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"settle serve exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - began
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"settle serve did not start:\n{self.log_text()[-4000:]}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL to the whole process group (the server and any workers): no shutdown
        handler runs, exactly as in a crash, an OOM kill or a container kill."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM, the graceful stop; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
