"""A real webhook receiver: an HTTP server on a loopback port, in a thread, that records every
request and answers with the statuses it is told to (then 200)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int = 0
    # Called per request (the request, how many came before it): the status to answer.
    answer: Callable[[Received, int], int] = lambda request, before: 200
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                request = Received(self.path, dict(self.headers.items()), body, 0, time.time())
                with receiver._lock:
                    status = receiver.answer(request, len(receiver.received))
                    receiver.received.append(
                        Received(request.path, request.headers, body, status, request.at)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def bodies(self, status: int | None = 200) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.received if status is None or r.status == status]

    async def until(self, done: Callable[[Receiver], bool], timeout: float = 30.0) -> None:
        """``wait_for`` for a test whose event loop runs the worker: it must not block."""
        import asyncio

        deadline = time.monotonic() + timeout
        while not done(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver: not done after {timeout} s: {self.bodies(None)}")
            await asyncio.sleep(0.02)

    def wait_for(self, done: Callable[[Receiver], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not done(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver: not done after {timeout} s: {self.bodies(None)}")
            time.sleep(0.02)


@contextmanager
def receiving(
    answer: Callable[[Received, int], int] | None = None, port: int = 0
) -> Iterator[Receiver]:
    receiver = Receiver(port=port) if answer is None else Receiver(port=port, answer=answer)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
