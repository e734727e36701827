"""Settings from the environment (and CLI flags, which override it)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

import msgspec

DEFAULT_DATABASE_URL: Final = "sqlite:///settle.db"


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected 1 or 0 (true or false), not {raw!r}")


# SETTLE_<NAME> variables of the webhook settings, and how each is read.
_WEBHOOK_SETTINGS: Final[dict[str, Callable[[str], object]]] = {
    "webhooks_allow_private": _flag,
    "webhooks_deliver": _flag,
    "webhooks_backoff_seconds": float,
    "webhooks_backoff_max_seconds": float,
    "webhooks_retry_seconds": float,
    "webhooks_concurrency": int,
    "webhooks_timeout_seconds": float,
    "webhooks_poll_seconds": float,
}


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    # Where clients reach this server (hosted checkout links); defaults to http://host:port.
    public_url: str | None = None
    max_body_bytes: int = 1 << 20
    key_cache_seconds: float = 30.0
    # Rendered invoices kept per worker (about 2 KiB each); 0 turns the cache off.
    render_cache_entries: int = 20_000
    # A payment operation pending this long was cut off by a crash: recovery finishes it by
    # asking the gateway. Above any gateway call's own timeout.
    payment_recovery_seconds: float = 60.0
    # A 3-D Secure challenge no payer has answered after this long is given up: the gateway
    # declines it, and its invoice can be paid again (settle.billing.recovery.CHALLENGE_US).
    three_d_s_expiry_seconds: float = 600.0
    # ... and at most this many bytes of them per worker (renderings plus 320 bytes of
    # bookkeeping each); 0 turns the cache off too. The cache is for hot list pages: 20,000
    # typical renderings (~2 KiB; 3.3 KiB with five lines and shipping) take 45-69 MiB, so at
    # 64 MiB the entry count still binds for most invoices, and the bytes bind only for large
    # ones, which without this bound could reach ~19 GB per worker (20,000 of ~1 MB).
    # Renderings over a 16th of it (4 MiB) are not kept.
    render_cache_bytes: int = 64 << 20
    # The sandbox gateway waits this long between recording an operation's outcome and
    # answering it (the answer's trip back over the network): for fault tests that crash
    # Settle in that window. 0 in any real use.
    sandbox_answer_delay_ms: float = 0.0
    # ... and before it acts on a call (the request's trip): the window before the call.
    sandbox_call_delay_ms: float = 0.0
    # How long GET /events waits for committed events that an older open transaction (any on
    # the PostgreSQL server) holds back from the gap-free feed, before answering without them
    # (settle.events.service.list_events): long enough for a request or the delivery worker's
    # fan-out to end, short for a client's poll.
    events_settle_seconds: float = 0.1
    # Webhooks (settle.events.worker). Outbound requests go to public addresses only, unless
    # this is set (tests, and self-hosters whose receiver runs on the same machine or LAN).
    webhooks_allow_private: bool = False
    # Deliver webhooks from inside this server (each worker process runs a delivery loop); off
    # when ``settle webhooks deliver`` runs on its own.
    webhooks_deliver: bool = True
    # The first retry waits about this long, each next one twice as long, up to the maximum;
    # retries stop after the retry window (3 days) and the delivery is marked failed. Tests
    # shorten the backoff (0.05 s) instead of sleeping for minutes.
    webhooks_backoff_seconds: float = 30.0
    webhooks_backoff_max_seconds: float = 6 * 3600.0
    webhooks_retry_seconds: float = 3 * 86400.0
    # Deliveries in flight at once per delivery loop, and the whole request's deadline: only a
    # 2xx answered within it counts. A URL's throughput is at most its slots over its answer
    # time: measured on PostgreSQL (2 cores, creates at full speed, a local receiver), 32
    # slots delivered 509-610 webhooks/s against 700-820 creates/s (lag p99 2.7-2.9 s) and
    # 128 delivered 635-845/s, as fast as the creates (lag p99 0.4-0.6 s). A slow or dead URL
    # still holds a quarter of them at most (worker.DeliveryWorker.per_url).
    webhooks_concurrency: int = 128
    webhooks_timeout_seconds: float = 10.0
    # How often an idle delivery loop looks for new events and due retries.
    webhooks_poll_seconds: float = 0.1

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        if "SETTLE_DATABASE_URL" in env:
            values["database_url"] = env["SETTLE_DATABASE_URL"]
        if "SETTLE_HOST" in env:
            values["host"] = env["SETTLE_HOST"]
        if "SETTLE_PORT" in env:
            values["port"] = int(env["SETTLE_PORT"])
        if "SETTLE_WORKERS" in env:
            values["workers"] = int(env["SETTLE_WORKERS"])
        if "SETTLE_PUBLIC_URL" in env:
            values["public_url"] = env["SETTLE_PUBLIC_URL"]
        if "SETTLE_MAX_BODY_BYTES" in env:
            values["max_body_bytes"] = int(env["SETTLE_MAX_BODY_BYTES"])
        if "SETTLE_PAYMENT_RECOVERY_SECONDS" in env:
            values["payment_recovery_seconds"] = float(env["SETTLE_PAYMENT_RECOVERY_SECONDS"])
        if "SETTLE_THREE_D_S_EXPIRY_SECONDS" in env:
            values["three_d_s_expiry_seconds"] = float(env["SETTLE_THREE_D_S_EXPIRY_SECONDS"])
        if "SETTLE_SANDBOX_ANSWER_DELAY_MS" in env:
            values["sandbox_answer_delay_ms"] = float(env["SETTLE_SANDBOX_ANSWER_DELAY_MS"])
        if "SETTLE_SANDBOX_CALL_DELAY_MS" in env:
            values["sandbox_call_delay_ms"] = float(env["SETTLE_SANDBOX_CALL_DELAY_MS"])
        if "SETTLE_EVENTS_SETTLE_SECONDS" in env:
            values["events_settle_seconds"] = float(env["SETTLE_EVENTS_SETTLE_SECONDS"])
        if "SETTLE_RENDER_CACHE_ENTRIES" in env:
            values["render_cache_entries"] = int(env["SETTLE_RENDER_CACHE_ENTRIES"])
        if "SETTLE_RENDER_CACHE_BYTES" in env:
            values["render_cache_bytes"] = int(env["SETTLE_RENDER_CACHE_BYTES"])
        for name, kind in _WEBHOOK_SETTINGS.items():
            raw = env.get(f"SETTLE_{name.upper()}")
            if raw is not None:
                values[name] = kind(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return msgspec.convert(values, cls)
