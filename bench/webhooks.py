"""Webhook delivery under load: ``POST /invoices`` at full speed (wrk) while the server's
delivery worker sends every ``invoice.created`` to a local receiver (bench/receiver.py, uvicorn
in its own process). Reports create req/s without and with a webhook URL set (what delivery
costs the requests), webhooks delivered per second during the load, and the lag from the
event's commit (``fired_at``) to its arrival at the receiver, p50 and p99.

    .venv/bin/python bench/run.py --webhooks [--backends sqlite] [--duration 10]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import harness as h

RECEIVER = h.BENCH_DIR / "receiver.py"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _set_url(db: h.Database, creds: h.Credentials, url: str) -> None:
    done = subprocess.run(
        [*h.settle_command(), "webhooks", "set-url", "--database-url", db.url,
         "--project", creds.username, *([url] if url else [])],
        capture_output=True, text=True, timeout=120, check=False, env=h._clean_env(),
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"settle webhooks set-url failed:\n{done.stderr[-2000:]}")


def _receiver(port: int, out: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(h.BENCH_DIR), "receiver:app",
             "--host", h.HOST, "--port", str(port), "--no-access-log", "--log-level", "warning",
             "--loop", "uvloop", "--http", "httptools"],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            env={**h._clean_env(), "BENCH_RECEIVED": str(out)},
        )  # fmt: skip
    deadline = time.monotonic() + 30
    import socket

    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((h.HOST, port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the receiver did not start: {log.read_text()[-2000:]}")


def run_webhooks(
    *,
    backends: list[str],
    duration: float,
    options: h.WrkOptions,
    tmpdir: Path,
    pg_base: str,
) -> list[dict[str, Any]]:
    results = []
    for backend in backends:
        h.log(f"webhooks: {backend}")
        db = h.fresh_database(backend, tmpdir, pg_base, f"hooks-{backend}")
        creds = h.create_project(db)
        port = h.free_port()
        received = tmpdir / f"received-{backend}.txt"
        received.touch()
        receiver = _receiver(port, received, tmpdir / f"receiver-{backend}.log")
        env = {"SETTLE_WEBHOOKS_ALLOW_PRIVATE": "1"}
        try:
            with h.Server(db, 1, tmpdir / f"server-hooks-{backend}.log", env=env) as server:
                # Without a URL: events are recorded and fanned out to nobody.
                plain = h.run_wrk(
                    server, "/invoices", creds, duration=duration, options=options,
                    body=h.INVOICE_BODY,
                )  # fmt: skip
                _set_url(db, creds, f"http://{h.HOST}:{port}/hooks")
                time.sleep(1.0)  # past the key and endpoint caches
                began_ns = time.time_ns()
                loaded = h.run_wrk(
                    server, "/invoices", creds, duration=duration, options=options,
                    body=h.INVOICE_BODY,
                )  # fmt: skip
                ended_ns = time.time_ns()
                # Let the worker catch up, then read what arrived.
                expected = int(
                    db.rows(
                        "SELECT count(*) FROM events WHERE type = 'invoice.created'"
                        f" AND fired_at >= {began_ns // 1000}"
                    )[0]
                )
                deadline = time.monotonic() + 120
                arrivals: dict[str, int] = {}
                while time.monotonic() < deadline:
                    arrivals = {}
                    for line in received.read_text().splitlines():
                        event_id, at = line.split()
                        arrivals.setdefault(event_id, int(at))
                    fired = {
                        event_id: int(at)
                        for event_id, at in (
                            row.split()
                            for row in db.rows(
                                "SELECT id || ' ' || fired_at FROM events"
                                " WHERE type = 'invoice.created'"
                                f" AND fired_at >= {began_ns // 1000}"
                            )
                        )
                    }
                    if len(set(fired) & set(arrivals)) >= expected:
                        break
                    time.sleep(0.5)
        finally:
            receiver.terminate()
            receiver.wait(timeout=20)
        lags = [(arrivals[e] // 1000 - f) / 1000 for e, f in fired.items() if e in arrivals]
        during = [e for e in fired if e in arrivals and began_ns <= arrivals[e] <= ended_ns]
        results.append(
            {
                "backend": backend,
                "create_rps_without_url": round(plain.requests / plain.duration_s),
                "create_rps_with_url": round(loaded.requests / loaded.duration_s),
                "events": len(fired),
                "delivered": len(lags),
                "delivered_per_s_during_load": round(len(during) / ((ended_ns - began_ns) / 1e9)),
                "lag_p50_ms": round(_percentile(lags, 0.50), 1),
                "lag_p99_ms": round(_percentile(lags, 0.99), 1),
                "lag_max_ms": round(max(lags, default=float("nan")), 1),
            }
        )
        h.log(f"webhooks {backend}: {results[-1]}")
    return results


def render(results: list[dict[str, Any]]) -> str:
    headers = [
        "backend", "create req/s, no URL", "create req/s, URL set", "delivered/s during load",
        "lag p50 ms", "lag p99 ms", "lag max ms", "delivered / events",
    ]  # fmt: skip
    rows = [
        [r["backend"], r["create_rps_without_url"], r["create_rps_with_url"],
         r["delivered_per_s_during_load"], r["lag_p50_ms"], r["lag_p99_ms"], r["lag_max_ms"],
         f"{r['delivered']} / {r['events']}"]
        for r in results
    ]  # fmt: skip
    return h.markdown_table(headers, rows)


def render_payload(payload: dict[str, Any]) -> str:
    return render(payload["webhooks"])
