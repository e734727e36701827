"""A webhook receiver for the benchmark: an ASGI app (run by uvicorn in its own process) that
answers 200 at once and logs ``<event_id> <arrival ns>`` per delivery to BENCH_RECEIVED."""

from __future__ import annotations

import json
import os
import time
from typing import Any

# Line-buffered: each arrival is in the file when the benchmark reads it.
_out = open(os.environ["BENCH_RECEIVED"], "a", buffering=1)  # noqa: SIM115


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _out.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    _out.write(f"{json.loads(body)['event_id']} {time.time_ns()}\n")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
