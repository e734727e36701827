"""Outbound HTTP for webhooks: a small HTTP/1.1 client that reaches public addresses only.

A webhook URL is written by a project; sent as is, it could make Settle probe its own network
(``http://127.0.0.1:5432``, ``http://169.254.169.254/`` cloud metadata, a LAN admin page).
So only ``http`` and ``https`` are sent, and every address the host name resolves to must be
global (not private, loopback, link-local, shared, reserved, multicast or unspecified, nor an
IPv6 address that embeds such an IPv4 address: mapped, 6to4, NAT64), unless
``SETTLE_WEBHOOKS_ALLOW_PRIVATE=1``.

The check is made on the resolved addresses at connect time: the name is resolved once, every
address checked (one bad answer refuses the whole name: a resolver that mixes a public and a
private answer is an attack), and the socket connects to a checked address, never to the name
again, so a DNS answer that changes between a check and the connect (DNS rebinding) cannot
slip through. TLS still verifies the certificate against the host name, and the Host header is
the URL's. No proxy is used: a proxy would connect on our behalf, past the check. Redirects are
not followed (a 3xx is not a 2xx, and would lead past the check of the first URL).

Why not httpx (used here before): measured on this machine against a local receiver, 32
requests in flight, httpx + httpcore cost 2.2-2.9 ms of CPU per POST (0.9 ms one at a time):
its connection pool's bookkeeping, anyio cancel scopes around every read, and, without the
optional ``sniffio`` package, a failed ``import sniffio`` (~110 us of sys.path search) on every
pool operation. That is two to three times the CPU of the create request whose event it
delivers, inside the same server worker. This client writes the request in one ``write`` and
parses the answer with httptools (the server's own HTTP parser), fed by the connection's own
asyncio protocol: 0.24 ms per POST in the same test. It does only what a webhook needs: one
POST, a status, the start of the answer's body, keep-alive connections per origin.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Final, cast
from urllib.parse import quote, unquote, urlsplit

import httptools

SCHEMES: Final = ("http", "https")
CONNECT_TIMEOUT_SECONDS: Final = 5.0
# An idle connection is dropped after this long: receivers close theirs (uvicorn after 5 s),
# and a connection closed under us costs a retry.
KEEPALIVE_SECONDS: Final = 4.0
# Host names are looked up in a thread pool of the client's own: the event loop's default pool
# is small (cores + 4) and shared with the rest of the process, and a name whose name servers
# do not answer holds a thread for seconds (glibc's 5 s per try), so a project's slow names
# stalled everyone's lookups. One lookup per name at a time, however many deliveries wait on
# it, and its answer (or failure) is kept ``RESOLVED_SECONDS``: a slow name holds one thread,
# once per half minute, whatever its traffic.
RESOLVER_THREADS: Final = 8
RESOLVED_SECONDS: Final = 30.0
RESOLVED_KEPT: Final = 10_000  # names remembered at most (all forgotten past it)
IDLE_PER_ORIGIN: Final = 32
# An answer's body is read to its end (so the connection can be used again) up to this much;
# past it the connection is closed instead.
BODY_READ_LIMIT: Final = 64 * 1024


_SAFE: Final = "/?&=%:@!$'()*+,;~-._[]"
USER_AGENT: Final = "Settle-Webhooks/1"


class WebhookError(Exception):
    """An attempt that got no HTTP answer (refused address, unreachable, broken answer)."""


class AddressRefused(WebhookError):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


# IPv6 prefixes that ipaddress (Python 3.11) calls global, but that lead to an IPv4 address
# or a local network all the same: never reached.
_NOT_PUBLIC_V6: Final = tuple(
    ipaddress.IPv6Network(prefix)
    for prefix in (
        "::/96",  # IPv4-compatible (deprecated, RFC 4291): ::127.0.0.1
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT, RFC 2765): ::ffff:0:127.0.0.1
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): translated to the site's own IPv4
        "fec0::/10",  # site-local (deprecated, RFC 3879)
    )
)
# The well-known NAT64 prefix (RFC 6052): on an IPv6-only host, 64:ff9b::10.0.0.1 reaches
# 10.0.0.1 through the site's translator. Its public addresses are what DNS64 answers for an
# IPv4-only receiver, so it is judged by the IPv4 address in its last 32 bits.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


def public_address(address: str) -> bool:
    """Whether ``address`` (an IP literal) is one a webhook may reach without the setting."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in prefix for prefix in _NOT_PUBLIC_V6):
            return False
        # ::ffff:127.0.0.1 reaches 127.0.0.1; 2002::/16 (6to4) and NAT64 embed one too.
        mapped = ip.ipv4_mapped or ip.sixtofour
        if ip in _NAT64:
            mapped = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if mapped is not None and not public_address(str(mapped)):
            return False
    return ip.is_global and not ip.is_multicast


def redacted(url: str) -> str:
    """``url`` fit for a log line: without the credentials it may carry (sent as Basic auth)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


class Answer:
    """What a receiver answered: its status and the start of its body."""

    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body


class _Target:
    """A URL taken apart: where to connect, what to send as Host and request target."""

    __slots__ = ("authorization", "host", "host_header", "origin", "port", "scheme", "target")

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise WebhookError(f"not a valid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise WebhookError(f"webhooks are sent over http or https, not {scheme!r}")
        host = parts.hostname or ""
        if not host:
            raise WebhookError("the URL names no host")
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise WebhookError(f"not a valid host name: {exc}") from None
        default = 443 if scheme == "https" else 80
        self.scheme = scheme
        self.host = ascii_host
        self.port = port or default
        shown = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
        self.host_header = shown if self.port == default else f"{shown}:{self.port}"
        # Percent-encoded where the URL was not (a space would end the request line).
        self.target = quote(
            (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_SAFE
        )
        self.origin = (scheme, ascii_host, self.port)
        # Credentials in the URL (https://user:pass@host/) go as Basic auth, as httpx (this
        # client's predecessor), curl and browsers send them: dropped, the receiver that
        # asks for them would refuse every delivery.
        self.authorization: str | None = None
        if parts.username is not None or parts.password is not None:
            credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            self.authorization = "Basic " + base64.b64encode(credentials.encode()).decode()


class _Connection(asyncio.Protocol):
    """One connection to an origin, as its transport's protocol: each read's bytes go straight
    to the parser of the answer awaited, if any.

    A protocol of our own rather than asyncio's streams, for two reasons. Bytes that arrive
    while no answer is awaited (the connection idle in the pool, or the answer already
    complete) must make the connection unusable, or the next request sent on it takes them
    for its answer (a receiver's unsolicited ``408 Request Timeout`` before it closes, a buggy
    receiver's second answer: a stale 200 counted as a delivery). A ``StreamReader`` only
    buffers them, and says so through its private ``_buffer`` alone (``at_eof()`` is false
    while bytes are buffered); here ``data_received`` sees them as they come. And the answer
    is read while the request is still being sent, without a task: the transport sends its
    buffer on its own (``drain()`` only waits for that, as flow control), so a receiver that
    answers early (a 413 after the head of a large body) and stops reading is heard at once.
    """

    __slots__ = ("answer", "reusable", "transport", "used_at")

    def __init__(self) -> None:
        self.transport: asyncio.Transport
        self.answer: _Parsed | None = None  # the answer awaited, while a request is out
        # False once the connection may not carry another request: closed (by either side),
        # or bytes came that no request asked for.
        self.reusable = True
        self.used_at = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        answer = self.answer
        if answer is None or answer.done.done():
            # Idle, or past an answer already taken: the bytes belong to no request of ours.
            self.close()
            return
        answer.feed(data, self.transport)

    def eof_received(self) -> bool | None:
        self.reusable = False
        if self.answer is not None:
            self.answer.ended(None)
        return None  # closed on our side too: no request is sent on a half-closed connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self.answer is not None:
            self.answer.ended(exc)

    def close(self) -> None:
        self.reusable = False
        if self.transport.get_write_buffer_size():
            # Part of the request is still unsent (an early answer, a cancelled attempt, a
            # receiver that stopped reading): ``close()`` would keep the socket open until
            # the receiver reads it all, which it may never do. Dropped instead.
            self.transport.abort()
        else:
            self.transport.close()


class _PastTheEnd(Exception):
    """Raised in httptools' ``on_message_begin`` to stop at the end of the answer."""


class _Parsed:
    """The answer awaited on a connection: httptools' callbacks (the body's start, the first
    complete final answer) and ``done``, set when the answer is known (or there is none)."""

    __slots__ = (
        "body",
        "complete",
        "done",
        "keep_alive",
        "kept",
        "parser",
        "read",
        "received",
        "sent",
        "status",
    )

    def __init__(self, kept: int, done: asyncio.Future[None]) -> None:
        self.body = bytearray()
        self.kept = kept
        self.done = done
        self.received = 0  # bytes of the answer received
        self.read = 0  # bytes of its body
        self.status = 0
        self.complete = False
        self.keep_alive = False
        # Whether the whole request had been handed to the transport's lower layer when the
        # answer came (over TLS: to the TLS layer, under which up to the socket transport's
        # high-water mark may still wait; those bytes are sent in order all the same).
        self.sent = False
        self.parser = httptools.HttpResponseParser(self)

    def on_message_begin(self) -> None:
        if self.complete:
            # A message after the answer, in the same read (a second answer, pipelined
            # garbage): not this request's. Raising stops the parser here; ``feed`` sees the
            # error with the answer complete. (Blank lines between messages are skipped by
            # llhttp without a callback: consumed here, they cannot mislead the next answer.)
            raise _PastTheEnd

    def on_headers_complete(self) -> None:
        # Asked here: once the message is complete the parser has reset its flags.
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, data: bytes) -> None:
        self.read += len(data)
        if len(self.body) < self.kept:
            self.body += data[: self.kept - len(self.body)]

    def on_message_complete(self) -> None:
        # An interim answer (100 Continue, 103 Early Hints) is not the answer: the final one
        # follows on the same connection (101 is an upgrade: httptools raises it).
        status = self.parser.get_status_code()
        if status >= 200:
            self.complete = True
            self.status = status

    def feed(self, data: bytes, transport: asyncio.Transport) -> None:
        """A read's bytes, until ``done``."""
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if not self.complete:
                self._failed(WebhookError(f"not an HTTP answer: {exc}"), exc)
                return
            # Bytes past the end of the answer (``_PastTheEnd``, or llhttp's "data after
            # Connection: close"): the answer stands, the connection is not used again.
            self.keep_alive = False
        if self.complete:
            # Asked now, when the answer is complete: a request whose end was not yet
            # handed on was answered early (the receiver may not read the rest), and its
            # rest would lead the next request on the connection.
            self.sent = transport.get_write_buffer_size() == 0
            self.done.set_result(None)
        elif self.read > BODY_READ_LIMIT:  # enough: the rest is not read
            self.status = self.parser.get_status_code()
            self.keep_alive = False
            self.done.set_result(None)

    def ended(self, exc: Exception | None) -> None:
        """The connection was closed (``exc`` None: by the receiver, or by us)."""
        if self.done.done():  # answered already, or the attempt was given up
            return
        self.keep_alive = False
        if self.received == 0 and (exc is None or isinstance(exc, _RESET)):
            self._failed(_ClosedBeforeAnswer(), exc)
        elif exc is not None:
            self._failed(WebhookError(_describe(exc)), exc)
        else:
            try:
                status = self.parser.get_status_code()
            except httptools.HttpParserError:
                status = 0
            if status:  # an answer read until the connection closed: it is complete
                self.status = status
                self.done.set_result(None)
            else:
                self._failed(WebhookError("the connection was closed in the middle of the answer"))

    def _failed(self, error: Exception, cause: BaseException | None = None) -> None:
        error.__cause__ = cause
        self.done.set_exception(error)


class WebhookClient:
    """POSTs to webhook URLs over keep-alive connections (one pool per origin). The caller
    bounds the whole attempt's time (``asyncio.timeout``); connecting has its own bound."""

    def __init__(
        self, *, allow_private: bool, kept_bytes: int = 1024, idle_per_origin: int = IDLE_PER_ORIGIN
    ) -> None:
        self.allow_private = allow_private
        self.kept_bytes = kept_bytes
        # Connections kept open per origin: as many as may be in flight to it (fewer, and a
        # burst's connections past them were closed, then opened again by the next burst).
        self.idle_per_origin = idle_per_origin
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._swept_at = time.monotonic()
        self._ssl: ssl.SSLContext | None = None
        self._resolver: ThreadPoolExecutor | None = None
        # (host, port) -> (when looked up, the addresses or the failure's message)
        self._resolved: dict[tuple[str, int], tuple[float, list[str] | str]] = {}
        self._resolving: dict[tuple[str, int], asyncio.Future[list[str] | str]] = {}

    async def __aenter__(self) -> WebhookClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
        if self._resolver is not None:
            self._resolver.shutdown(wait=False, cancel_futures=True)
            self._resolver = None

    async def resolve(self, host: str, port: int) -> list[str]:
        try:  # an address already: no lookup (getaddrinfo runs in the loop's small thread
            # pool, where lookups of names that do not resolve wait seconds each; measured,
            # they held up every delivery to a receiver named by its address)
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        key = (host, port)
        known = self._resolved.get(key)
        if known is None or time.monotonic() - known[0] >= RESOLVED_SECONDS:
            lookup = self._resolving.get(key)
            if lookup is None:
                lookup = asyncio.ensure_future(self._lookup(host, port))
                self._resolving[key] = lookup
                lookup.add_done_callback(lambda _: self._resolving.pop(key, None))
            # Shielded: a delivery that gives up (its deadline) leaves the lookup to the others.
            found = await asyncio.shield(lookup)
        else:
            found = known[1]
        if isinstance(found, str):
            raise WebhookError(found)
        return found

    async def _lookup(self, host: str, port: int) -> list[str] | str:
        """The addresses of ``host``, or why there are none; remembered either way."""
        if self._resolver is None:
            self._resolver = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="webhook-dns")
        loop = asyncio.get_running_loop()
        found: list[str] | str
        try:
            infos = await loop.run_in_executor(
                self._resolver, partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
            )
            found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        except OSError as exc:
            found = f"cannot resolve {host}: {exc}"
        if len(self._resolved) >= RESOLVED_KEPT:
            self._resolved.clear()
        self._resolved[(host, port)] = (time.monotonic(), found)
        return found

    async def _connect(self, target: _Target) -> _Connection:
        addresses = await self.resolve(target.host, target.port)
        if not self.allow_private:
            refused = [a for a in addresses if not public_address(a)]
            if refused or not addresses:
                raise AddressRefused(
                    f"{target.host} resolves to {', '.join(refused) or 'nothing'}, not a public "
                    "address (SETTLE_WEBHOOKS_ALLOW_PRIVATE=1 allows it)"
                )
        context: ssl.SSLContext | None = None
        if target.scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        last: Exception | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                    _, connection = await asyncio.get_running_loop().create_connection(
                        _Connection,
                        address,
                        target.port,
                        ssl=context,
                        server_hostname=target.host if context else None,
                    )
                return connection
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                last = exc
        assert last is not None
        raise WebhookError(
            f"cannot connect to {target.host}:{target.port}: {_describe(last)}"
        ) from last

    def _checkout(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            # ``reusable`` is false once the receiver closed its end or sent anything while
            # the connection was idle: that would be read as the next request's answer.
            if now - connection.used_at < KEEPALIVE_SECONDS and connection.reusable:
                return connection
            connection.close()
        return None

    def _checkin(self, origin: tuple[str, str, int], connection: _Connection) -> None:
        now = time.monotonic()
        if now - self._swept_at >= KEEPALIVE_SECONDS:
            self._sweep(now)
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self.idle_per_origin:
            connection.close()
            return
        connection.used_at = time.monotonic()
        idle.append(connection)

    def _sweep(self, now: float) -> None:
        """Close the idle connections past their keep-alive, of every origin. ``_checkout``
        does so only for the origin it is asked for: an origin not posted to again (a
        project's receivers on many host names, an invoice's own ``webhook_url``) held its
        sockets open for good, one file descriptor each, closed by the receiver or not."""
        self._swept_at = now
        for origin, idle in list(self._idle.items()):
            fresh = [c for c in idle if now - c.used_at < KEEPALIVE_SECONDS and c.reusable]
            for connection in idle:
                if now - connection.used_at >= KEEPALIVE_SECONDS:
                    connection.close()
            if fresh:
                self._idle[origin] = fresh
            else:
                del self._idle[origin]

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST ``body`` to ``url``; the answer's status and the first ``kept_bytes`` of its
        body. Raises ``WebhookError`` when there is no answer."""
        target = _Target(url)
        head = [
            f"POST {target.target} HTTP/1.1",
            f"Host: {target.host_header}",
            f"User-Agent: {USER_AGENT}",
        ]
        if target.authorization is not None:
            head.append(f"Authorization: {target.authorization}")
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        reused = self._checkout(target.origin)
        connection = reused or await self._connect(target)
        try:
            answer, keep = await self._exchange(connection, request)
        except _ClosedBeforeAnswer:
            connection.close()
            if reused is None:
                raise WebhookError("the connection was closed before any answer") from None
            # A kept-alive connection the receiver had closed meanwhile: once more, on a new
            # one (nothing of the request was answered, so nothing was acted on for sure; a
            # repeat is what at-least-once allows anyway).
            connection = await self._connect(target)
            try:
                answer, keep = await self._exchange(connection, request)
            except BaseException:
                connection.close()
                raise
        except BaseException:
            connection.close()
            raise
        if keep:
            self._checkin(target.origin, connection)
        else:
            connection.close()
        return answer

    async def _exchange(self, connection: _Connection, request: bytes) -> tuple[Answer, bool]:
        """Send ``request`` and read its answer; whether the connection may carry another."""
        if not connection.reusable:  # closed, or it spoke first, before it was even asked
            raise _ClosedBeforeAnswer
        parsed = _Parsed(self.kept_bytes, asyncio.get_running_loop().create_future())
        connection.answer = parsed
        try:
            # Not drained: the transport sends what the socket did not take at once by
            # itself, while the answer is read; an answer that comes before the request is
            # all sent is the answer (the connection is then not kept: ``parsed.sent``).
            # Errors in sending close the connection, which ends the wait.
            connection.transport.write(request)
            await parsed.done
        finally:
            connection.answer = None
        keep = parsed.keep_alive and parsed.sent and connection.reusable
        return Answer(parsed.status, bytes(parsed.body)), keep


class _ClosedBeforeAnswer(Exception):
    pass


# What a closed connection's send or read fails with.
_RESET: Final = (ConnectionResetError, BrokenPipeError)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
