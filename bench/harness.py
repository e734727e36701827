"""Shared plumbing of the benchmarks: databases, the server under test, wrk, reports.

Everything targets 127.0.0.1 only and every wait is bounded. Each server runs in its own
process group (uvicorn's supervisor and its workers) and is stopped when its ``with`` block
ends, on Ctrl-C and on exceptions too; an ``atexit`` hook catches whatever is left.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WRK_SCRIPT = BENCH_DIR / "wrk.lua"
INVOICE_BODY = BENCH_DIR / "invoice_body.json"
RESULTS_DIR = BENCH_DIR / "results"
HOST = "127.0.0.1"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# The only PostgreSQL database the benchmarks create, reset and drop. Never "test" (the test
# suite's) or any other.
# BENCH_PG_DB names another one, for sessions that share a PostgreSQL server: two benchmarks
# on one database drop it under each other (seen: "project could not be found" mid-run).
PG_BENCH_DB = os.environ.get("BENCH_PG_DB", "settle_bench")
assert PG_BENCH_DB.startswith("settle_bench"), "BENCH_PG_DB must start with settle_bench"
assert PG_BENCH_DB not in ("test", "postgres", "template0", "template1")


def settle_command() -> list[str]:
    """The ``settle`` console script of the interpreter running the benchmarks (the venv)."""
    script = Path(sys.executable).parent / "settle"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "settle.cli"]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- databases --------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    backend: str  # "sqlite" or "postgres"
    url: str  # what `settle --database-url` takes
    sqlite_path: Path | None = None

    def sample_ids(self, path: Path, n: int = 100_000) -> Path:
        """Write up to ``n`` random invoice ids to ``path``, one a line (for wrk.lua)."""
        query = f"SELECT id FROM invoices ORDER BY random() LIMIT {int(n)}"
        if self.sqlite_path is not None:
            uri = f"file:{self.sqlite_path}?mode=ro"
            with closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
                ids = [r[0] for r in conn.execute(query)]
        else:
            with psycopg.connect(self.url, connect_timeout=10) as conn:
                ids = [r[0] for r in conn.execute(query)]
        path.write_text("".join(f"{i}\n" for i in ids))
        return path

    def rows(self, query: str) -> list[str]:
        """The first column of ``query``'s rows (a separate, read-only connection)."""
        if self.sqlite_path is not None:
            uri = f"file:{self.sqlite_path}?mode=ro"
            with closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
                return [str(r[0]) for r in conn.execute(query)]
        with psycopg.connect(self.url, connect_timeout=10) as conn:
            return [str(r[0]) for r in conn.execute(query)]

    def count(self, table: str = "invoices") -> int:
        """Rows in ``table`` (read from a separate connection; committed rows only)."""
        if self.sqlite_path is not None:
            uri = f"file:{self.sqlite_path}?mode=ro"
            with closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
                return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        with psycopg.connect(self.url, connect_timeout=10) as conn:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert row is not None
            return int(row[0])


def fresh_sqlite(tmpdir: Path, name: str) -> Database:
    path = tmpdir / f"{name}.db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return Database("sqlite", f"sqlite:///{path}", path)


def pg_urls(base: str) -> tuple[str, str]:
    """(maintenance database URL, settle_bench URL) for a server URL on the loopback."""
    parts = urlsplit(base)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SystemExit(f"--pg-url must be a postgresql:// URL, not {base!r}")
    if parts.hostname not in LOOPBACK:
        raise SystemExit(f"the benchmarks only target the loopback, not {parts.hostname!r}")
    admin = urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))
    bench = urlunsplit(("postgresql", parts.netloc, f"/{PG_BENCH_DB}", parts.query, ""))
    return admin, bench


def fresh_postgres(base: str) -> Database:
    """Drop and recreate ``settle_bench`` (only that database) and return it."""
    admin, bench = pg_urls(base)
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_BENCH_DB}"')
    return Database("postgres", bench)


def fresh_database(backend: str, tmpdir: Path, pg_base: str, name: str) -> Database:
    if backend == "sqlite":
        return fresh_sqlite(tmpdir, name)
    if backend == "postgres":
        return fresh_postgres(pg_base)
    raise SystemExit(f"unknown backend {backend!r} (use sqlite, postgres)")


def drop_postgres(base: str) -> None:
    admin, _ = pg_urls(base)
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')


# --- projects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    project_id: str
    username: str
    password: str
    reepay_key: str = ""  # the Reepay dialect's private key (user name; empty password)

    @property
    def authorization(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"

    def authorization_for(self, dialect: str) -> str:
        if dialect == "reepay":
            return "Basic " + base64.b64encode(f"{self.reepay_key}:".encode()).decode()
        return self.authorization


def create_project(db: Database, env: dict[str, str] | None = None) -> Credentials:
    """``settle projects create --name bench --json`` (which also applies the migrations).
    ``env``: added to the command's environment (e.g. another source tree's PYTHONPATH)."""
    done = subprocess.run(
        [
            *settle_command(),
            *("projects", "create", "--name", "bench", "--json"),
            "--database-url",
            db.url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**_clean_env(), **(env or {})},
    )
    if done.returncode != 0:
        raise RuntimeError(f"settle projects create failed:\n{done.stderr[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Credentials(
        project_id=data["project_id"],
        username=data["processout"]["username"],
        password=data["processout"]["password"],
        reepay_key=data["reepay"]["private_key"],
    )


# --- the server under test --------------------------------------------------------------

_LIVE: set[subprocess.Popen[bytes]] = set()


def _clean_env() -> dict[str, str]:
    """The environment without SETTLE_* variables: the flags alone configure the server."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SETTLE_")}


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (supervisor + workers), SIGKILL after a grace."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # Workers left behind by a supervisor that died first still carry the group id.
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    _LIVE.discard(proc)


@atexit.register
def _stop_all() -> None:
    for proc in list(_LIVE):
        _stop_group(proc)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return sorted(found)


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def memory_kib(pid: int) -> dict[str, int]:
    """From /proc/<pid>/status, in KiB: VmRSS (resident now), VmHWM (peak resident), and
    VmRSS split into RssAnon (the process's own heap) and RssFile (mapped files: code, and
    a database file read through mmap -- page cache the kernel can drop, shared)."""
    out = {}
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


class Server:
    """``settle serve`` as a subprocess on a free loopback port, ready when the block starts."""

    def __init__(
        self, db: Database, workers: int, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.db = db
        self.workers = workers
        self.log_path = log_path
        self.env = env or {}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    *settle_command(),
                    *("serve", "--database-url", self.db.url, "--host", HOST),
                    *("--port", str(self.port), "--workers", str(self.workers)),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as one
                env={**_clean_env(), **self.env},
                cwd=self.log_path.parent,
            )
        _LIVE.add(self.proc)
        try:
            self._wait_ready(timeout=90)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"settle serve exited:\n{self._log_text()[-3000:]}")
            # Every worker must have started, not just the first to answer /healthz.
            if self._log_text().count("Application startup complete.") >= self.workers:
                url = f"{self.base}/healthz"
                with suppress(OSError), urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        return
            time.sleep(0.2)
        raise RuntimeError(f"settle serve not ready in {timeout}s:\n{self._log_text()[-3000:]}")

    def worker_pids(self) -> list[int]:
        """The processes serving requests: uvicorn's spawned children, or the main process
        itself with one worker (uvicorn then serves in-process)."""
        assert self.proc is not None
        kids = [p for p in _children(self.proc.pid) if "spawn_main" in _cmdline(p)]
        return kids or [self.proc.pid]

    def memory(self) -> list[dict[str, int]]:
        return [{"pid": pid, **memory_kib(pid)} for pid in self.worker_pids()]

    def request(
        self, method: str, path: str, creds: Credentials, body: bytes | None = None
    ) -> dict[str, Any]:
        req = urllib.request.Request(
            f"{self.base}{path}",
            data=body,
            method=method,
            headers={"Authorization": creds.authorization, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data


# --- CPU used by others -----------------------------------------------------------------
# The machine is shared (other sessions may run tests on it): each measurement reports how
# much CPU went to processes outside the benchmark, i.e. all busy CPU time (/proc/stat,
# including steal) minus the server's process group, the PostgreSQL backends serving
# settle_bench, wrk and this script.

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, first[1:9])
    return user + nice + system + irq + softirq + steal


def _proc_ticks(pid: int) -> int:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return 0
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def pg_backend_cpu(admin: psycopg.Connection[Any], dbname: str) -> float:
    """CPU seconds so far of the Settle connections (application_name=settle) to ``dbname``:
    not ``admin``'s own, nor a maintenance process's. The server must be on this machine."""
    pids = [
        r[0]
        for r in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s"
            " AND backend_type = 'client backend' AND application_name = 'settle'",
            (dbname,),
        )
    ]
    return sum(_proc_ticks(pid) for pid in pids) / CLK_TCK


def _bench_pids(server: Server) -> dict[int, str]:
    """pid -> role: "server" (the process group) or "postgres" (backends on settle_bench)."""
    assert server.proc is not None
    pids, todo = {}, [server.proc.pid]
    while todo:
        pid = todo.pop()
        pids[pid] = "server"
        todo.extend(_children(pid))
    marker = f" {PG_BENCH_DB} "
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmd = _cmdline(int(entry.name))
            if cmd.startswith("postgres: ") and marker in cmd:
                pids[int(entry.name)] = "postgres"
    return pids


@dataclass
class CpuSample:
    at: float
    busy: int
    ours: dict[int, tuple[str, int]]  # pid -> (role, CPU ticks)
    children: float  # CPU seconds of this process and its reaped children (wrk)
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    @classmethod
    def take(cls, server: Server) -> CpuSample:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            at=time.monotonic(),
            busy=_busy_ticks(),
            ours={pid: (role, _proc_ticks(pid)) for pid, role in _bench_pids(server).items()},
            children=me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
        )

    def usage(self, later: CpuSample) -> dict[str, float]:
        """CPU used between the two samples, in cores: by the server, by its PostgreSQL
        backends, by the load generator (wrk + this script), and by everything else; plus
        ``others_pct``, everything else as a % of the machine."""
        seconds = max(later.at - self.at, 1e-9)
        by_role = {"server": 0, "postgres": 0}
        for pid, (role, ticks) in later.ours.items():
            by_role[role] += ticks - self.ours.get(pid, (role, 0))[1]
        load = round((later.children - self.children) * CLK_TCK)
        others = max(0, later.busy - self.busy - sum(by_role.values()) - load)
        cores = {k: v / CLK_TCK / seconds for k, v in by_role.items()}
        return {
            "server_cores": round(cores["server"], 2),
            "postgres_cores": round(cores["postgres"], 2),
            "load_generator_cores": round(load / CLK_TCK / seconds, 2),
            "others_cores": round(others / CLK_TCK / seconds, 2),
            "others_pct": round(others / CLK_TCK / seconds / self.cores * 100, 1),
        }

    def others_pct(self, later: CpuSample) -> float:
        """% of the whole machine's CPU used by processes outside the benchmark."""
        return self.usage(later)["others_pct"]


def wait_for_quiet(server: Server, max_wait: float, threshold_pct: float = 10.0) -> float:
    """Wait (at most ``max_wait`` s) until others use < ``threshold_pct`` of the machine over
    one second; returns the last reading."""
    deadline = time.monotonic() + max_wait
    while True:
        before = CpuSample.take(server)
        time.sleep(1.0)
        pct = before.others_pct(CpuSample.take(server))
        if pct < threshold_pct or time.monotonic() >= deadline:
            return pct
        log(f"  machine busy: others use {pct:.0f}% of the CPU; waiting")


# --- wrk --------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    command: str
    output: str = field(repr=False)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def others_cpu_pct(self) -> float:
        return self.cpu.get("others_pct", 0.0)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def errors_text(self) -> str:
        if not self.error_count:
            return "0"
        names = {"status": "non-2xx"}
        parts = ", ".join(f"{names.get(k, k)} {v}" for k, v in self.errors.items() if v)
        return f"{self.error_count} ({parts})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "rps": round(self.rps, 1),
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "errors": self.errors,
            "others_cpu_pct": self.others_cpu_pct,
            "cpu_cores": self.cpu,
            "command": self.command,
        }


@dataclass(frozen=True)
class WrkOptions:
    threads: int = 2
    connections: int = 32
    timeout_s: int = 5


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (done.stdout + done.stderr).strip().splitlines()[0]
    match = re.match(r"(wrk \S+)", first)
    return match.group(1) if match else first


def run_wrk(
    server: Server,
    path: str,
    creds: Credentials,
    *,
    duration: float,
    options: WrkOptions,
    body: Path | None = None,
    ids: Path | None = None,
    paths: Path | None = None,
    quota: int = 0,
    stop_when: Callable[[], bool] | None = None,
    dialect: str = "processout",
    unique_prefix: str = "",
) -> WrkResult:
    """Run wrk against ``server``; ``stop_when`` (polled each second) ends it early.
    ``dialect``: whose credentials the requests carry. ``unique_prefix``: each request's body
    gets its own ``{handle}`` (``<prefix>-<thread>-<n>``), for creates whose handle is unique."""
    cmd = [
        "wrk",
        f"-t{options.threads}",
        f"-c{options.connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={options.timeout_s}s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        f"{server.base}{path}",
    ]
    env = {
        **os.environ,
        "BENCH_AUTH": creds.authorization_for(dialect),
        "BENCH_UNIQUE_PREFIX": unique_prefix,
        "BENCH_BODY_FILE": str(body) if body else "",
        "BENCH_QUOTA": str(quota),
        "BENCH_IDS_FILE": str(ids) if ids else "",
        "BENCH_PATHS_FILE": str(paths) if paths else "",
        "BENCH_THREADS": str(options.threads),
        "BENCH_CONNECTIONS": str(options.connections),
    }
    cpu_before = CpuSample.take(server)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + duration + 60
    interrupted = False
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"wrk did not stop: {' '.join(cmd)}") from None
                if stop_when is not None and not interrupted and stop_when():
                    proc.send_signal(signal.SIGINT)  # wrk stops and prints its summary
                    interrupted = True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    cpu = cpu_before.usage(CpuSample.take(server))
    text = out.decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"no result from wrk:\n{text}\n{err.decode(errors='replace')}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    return WrkResult(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=data["errors"],
        command=" ".join([*cmd[:-1], f"http://{HOST}:PORT{path}"]),
        output=text,
        cpu=cpu,
    )


# --- py-spy ----------------------------------------------------------------------------


def start_profilers(
    server: Server, seconds: float, prefix: Path
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """``py-spy record`` (sampling, non-blocking, collapsed stacks) on every worker."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        log("py-spy not found next to the interpreter: no profile")
        return []
    prefix.parent.mkdir(parents=True, exist_ok=True)
    started = []
    for pid in server.worker_pids():
        out = prefix.with_name(f"{prefix.name}-pid{pid}.txt")
        proc = subprocess.Popen(
            [
                *(str(spy), "record", "-p", str(pid), "-d", str(max(1, round(seconds)))),
                *(
                    "-r",
                    os.environ.get("BENCH_PY_SPY_RATE", "100"),
                    "-f",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(out),
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append((proc, out))
    return started


def finish_profilers(started: list[tuple[subprocess.Popen[bytes], Path]]) -> list[Path]:
    done = []
    for proc, out in started:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if out.exists():
            done.append(out)
    return done


def top_functions(collapsed: Path, n: int = 8) -> list[tuple[float, str]]:
    """The ``n`` functions with the most self time in a py-spy raw (collapsed) profile."""
    own: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        leaf = re.sub(r":\d+\)$", ")", stack.rsplit(";", 1)[-1])
        own[leaf] = own.get(leaf, 0) + int(count)
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:n]
    return [(c / total * 100, name) for name, c in ranked] if total else []


# --- durability evidence ----------------------------------------------------------------


def filesystem_of(path: Path) -> str:
    """The mount point and type holding ``path`` (a tmpfs would make fsync meaningless)."""
    best = ("", "?")
    target = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        _dev, mount, fstype, *_ = line.split()
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best[0]):
            best = (mount, fstype)
    return f"{best[1]} (mounted at {best[0]})"


def sqlite_durability(db: Database) -> dict[str, str]:
    """The settings on a connection opened the way the server opens its writer."""
    from settle.db.sqlite import _open  # the function SQLiteDatabase uses for its writer

    assert db.sqlite_path is not None
    conn = _open(str(db.sqlite_path), readonly=False)
    try:
        sync = int(conn.execute("PRAGMA synchronous").fetchone()[0])
        journal = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()
    levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {
        "synchronous": levels.get(sync, str(sync)),
        "journal_mode": journal,
        "filesystem": filesystem_of(db.sqlite_path),
        "how": "PRAGMA read on a connection opened by settle.db.sqlite._open, the function "
        "the server's writer connection is opened with; journal_mode is stored in the file",
    }


def pg_settings(db: Database) -> dict[str, Any]:
    """Server-wide durability settings, and the server's own connections (while it runs)."""
    with psycopg.connect(db.url, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN"
            " ('synchronous_commit', 'fsync', 'full_page_writes', 'wal_sync_method')"
        ).fetchall()
        settle_conns = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = 'settle'",
            (PG_BENCH_DB,),
        ).fetchone()
    return {
        "server_defaults": dict(rows),
        "settle_connections": int(settle_conns[0]) if settle_conns else 0,
    }


def pg_session_synchronous_commit(db: Database) -> str:
    """``SHOW synchronous_commit`` through a pool opened by the server's own code path."""
    from settle.db.postgres import PostgresDatabase

    async def probe() -> str:
        pg = await PostgresDatabase.open(db.url, min_size=1, max_size=1)
        try:
            async with pg.read() as tx:
                return str(await tx.fetchval("SHOW synchronous_commit"))
        finally:
            await pg.close()

    return asyncio.run(probe())


def pg_wal_syncs(db: Database) -> int:
    """pg_stat_wal.wal_sync: WAL fsyncs (counted for fdatasync/fsync sync methods)."""
    with psycopg.connect(db.url, connect_timeout=10) as conn:
        row = conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()
        assert row is not None
        return int(row[0])


def pg_wal(db: Database) -> dict[str, int]:
    """pg_stat_wal counters (whole cluster): records, full-page images, bytes, fsyncs."""
    with psycopg.connect(db.url, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT wal_records, wal_fpi, wal_bytes, wal_sync FROM pg_stat_wal"
        ).fetchone()
    assert row is not None
    return dict(zip(("records", "fpi", "bytes", "syncs"), map(int, row), strict=True))


def pg_commits(db: Database) -> int:
    with psycopg.connect(db.url, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (PG_BENCH_DB,)
        ).fetchone()
        assert row is not None
        return int(row[0])


def pg_scans(db: Database) -> dict[str, tuple[int, int]]:
    """table -> (sequential scans, rows read by them) for the tables that grow, from
    pg_stat_user_tables (projects and api_keys hold a few rows: scanning them is right).
    Backends publish these about once a second, so a delta over a figure is approximate."""
    with psycopg.connect(db.url, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT relname, coalesce(seq_scan, 0), coalesce(seq_tup_read, 0)"
            " FROM pg_stat_user_tables WHERE relname IN ('invoices', 'transactions', 'customers')"
        ).fetchall()
    return {name: (int(scans), int(read)) for name, scans, read in rows}


def pg_scans_delta(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, list[int]]:
    out = {}
    for table, (scans, read) in after.items():
        s0, r0 = before.get(table, (0, 0))
        if scans - s0:
            out[table] = [scans - s0, read - r0]
    return out


def pg_analyze(db: Database) -> None:
    """What autovacuum does on a live server (and does not do here while it is off)."""
    with psycopg.connect(db.url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("ANALYZE")


def pg_server_settings(pg_base: str) -> dict[str, str]:
    with psycopg.connect(pg_urls(pg_base)[0], connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('server_version',"
            " 'autovacuum', 'shared_buffers', 'max_connections', 'plan_cache_mode')"
        ).fetchall()
    return dict(rows)


# --- the machine and the report ---------------------------------------------------------


def environment(pg_base: str | None) -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    env: dict[str, Any] = {
        "load_generator": wrk_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "src_digest": src_digest(),
        "git_dirty": bool(_git("status", "--porcelain", "--", "src")),
    }
    if pg_base:
        with suppress(psycopg.Error):
            settings = pg_server_settings(pg_base)
            env["postgresql"] = settings.pop("server_version", "?")
            env["postgresql_settings"] = settings
    return env


def src_digest() -> str:
    """A digest of src/ as it is on disk: the figures belong to exactly this code."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _git(*args: str) -> str:
    if shutil.which("git") is None:
        return "?"
    done = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
    )
    return done.stdout.strip()


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    lines = [fmt(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [fmt(r) for r in cells[1:]]
    return "\n".join(lines)


def save_results(kind: str, payload: dict[str, Any]) -> Path:
    """bench/results/<kind>-<time>.json; the caller writes the .md next to it."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C does, so every ``with Server`` block stops its
    server."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
