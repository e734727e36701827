"""The webhook client against real servers on loopback ports: refusals (schemes, private
addresses, a name that resolves to one), keep-alive reuse, answers that end by length, by
chunks or by closing, a kept-alive connection the receiver closed meanwhile, HTTPS with the
certificate verified (an unknown issuer and a certificate for another name are refused);
receivers that misbehave: bytes sent on an idle connection, bytes past the answer, an answer
before the request is all sent."""

from __future__ import annotations

import asyncio
import base64
import gc
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Final

import pytest

from settle.events import transport
from settle.events.transport import AddressRefused, WebhookClient, WebhookError


async def test_other_schemes_and_private_hosts_are_refused() -> None:
    async with WebhookClient(allow_private=False) as client:
        for url in ("ftp://example.com/x", "file:///etc/passwd", "http:///nohost"):
            with pytest.raises(WebhookError):
                await client.post(url, b"{}", {})
        for url in ("http://127.0.0.1:9/", "http://[::1]:9/", "https://10.0.0.1/x"):
            with pytest.raises(AddressRefused, match="not a public address"):
                await client.post(url, b"{}", {})
        # A name is checked on the address it resolves to.
        with pytest.raises(AddressRefused, match="not a public address"):
            await client.post("http://localhost:9/", b"{}", {})


@pytest.mark.parametrize(
    "host",
    [
        "[::127.0.0.1]",  # IPv4-compatible
        "[::ffff:0:127.0.0.1]",  # IPv4-translated (SIIT)
        "[64:ff9b::127.0.0.1]",  # NAT64 of a loopback,
        "[64:ff9b::10.0.0.1]",  # of a private,
        "[64:ff9b::169.254.169.254]",  # of a link-local address (cloud metadata)
        "[64:ff9b:1::8.8.8.8]",  # local-use NAT64
        "[fec0::1]",  # site-local
        "2130706433",  # 127.0.0.1 as one number, in octal, in hex, shortened: resolved first
        "0177.0.0.1",
        "0x7f.1",
        "127.1",
        "0",
    ],
)
async def test_other_spellings_of_private_addresses_are_refused(host: str) -> None:
    # The IPv6 ones were taken for public (ipaddress calls them global) and connected to:
    # found by a probe of the transport. On a host with a NAT64 translator, the NAT64 ones
    # reach the IPv4 address they embed.
    async with WebhookClient(allow_private=False) as client:
        with pytest.raises(AddressRefused, match="not a public address"):
            await client.post(f"http://{host}:9/", b"{}", {})


# An answer, or the parts of one, sent apart.
Answerer = Callable[[bytes], bytes | tuple[bytes, ...]]


@contextmanager
def raw_server(
    answer: Answerer,
    *,
    close_after: int = 0,
    tls: ssl.SSLContext | None = None,
    closed: list[int] | None = None,
) -> Iterator[tuple[int, list[int]]]:
    """A TCP server answering each request (read up to the end of its body) with
    ``answer(request)``; ``close_after``: close a connection after that many answers (0:
    never); ``tls``: speak TLS with this context; ``closed``: gets the index of each connection
    the client closed. Yields the port and, per connection, how many requests it carried."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    per_connection: list[int] = []

    def serve(conn: socket.socket) -> None:
        if tls is not None:
            try:
                conn = tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                conn.close()  # the client refused our certificate
                return
        index = len(per_connection)
        per_connection.append(0)
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        if closed is not None:
                            closed.append(index)
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                buffer = rest[length:]
                # Counted before the answer goes out: a test reads the counts as soon as its
                # client has the answer (counted after, the test saw [1] for [2] now and then).
                per_connection[index] += 1
                parts = answer(head + b"\r\n\r\n" + rest[:length])
                for i, part in enumerate([parts] if isinstance(parts, bytes) else parts):
                    if i:
                        time.sleep(0.05)  # parts arrive apart, each in a read of its own
                    conn.sendall(part)
                if close_after and per_connection[index] >= close_after:
                    return

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield port, per_connection
    finally:
        listener.close()


def ok(request: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_connections_are_kept_alive_and_reused() -> None:
    with raw_server(ok) as (port, per_connection):
        async with WebhookClient(allow_private=True) as client:
            for _ in range(5):
                answer = await client.post(f"http://127.0.0.1:{port}/h?a=b", b"{}", {})
                assert (answer.status, answer.body) == (200, b"ok")
    assert per_connection == [5]


async def test_the_request_carries_host_headers_and_body() -> None:
    seen: list[bytes] = []

    def record(request: bytes) -> bytes:
        seen.append(request)
        return ok(request)

    with raw_server(record) as (port, _):
        async with WebhookClient(allow_private=True) as client:
            await client.post(
                f"http://127.0.0.1:{port}/a path?x=1", b'{"a":1}', {"X-Sig": "t=1,v1=ab"}
            )
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /a%20path?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}".encode() in lines
    assert b"X-Sig: t=1,v1=ab" in lines
    assert b"Content-Length: 7" in lines
    assert body == b'{"a":1}'


async def test_credentials_in_the_url_are_sent_as_basic_auth() -> None:
    # Dropped since the client replaced httpx (which sent them), so a receiver that asks for
    # them refused every delivery: found by a probe of the transport.
    seen: list[bytes] = []

    def record(request: bytes) -> bytes:
        seen.append(request)
        return ok(request)

    with raw_server(record) as (port, _):
        async with WebhookClient(allow_private=True) as client:
            await client.post(f"http://us%40er:p%3Ass@127.0.0.1:{port}/h", b"{}", {})
            await client.post(f"http://127.0.0.1:{port}/h", b"{}", {})
    lines = seen[0].split(b"\r\n\r\n")[0].split(b"\r\n")
    assert lines[0] == b"POST /h HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}".encode() in lines
    assert b"Authorization: Basic " + base64.b64encode(b"us@er:p:ss") in lines
    assert b"authorization:" not in seen[1].lower()  # the same origin without: none


@pytest.mark.parametrize(
    ("raw", "status", "body"),
    [
        (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
         201, b"abc"),
        (b"HTTP/1.0 500 Oops\r\n\r\nbroken", 500, b"broken"),  # ends by closing
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + b"x" * 3000, 200, b"x" * 1024),
    ],
)  # fmt: skip
async def test_answers_of_every_framing(raw: bytes, status: int, body: bytes) -> None:
    closes = b"HTTP/1.0" in raw
    with raw_server(lambda request: raw, close_after=1 if closes else 0) as (port, _):
        async with WebhookClient(allow_private=True) as client:
            answer = await client.post(f"http://127.0.0.1:{port}/", b"{}", {})
    assert (answer.status, answer.body) == (status, body)


async def test_an_interim_answer_is_not_the_answer() -> None:
    # 100 Continue (which some servers send unasked) and 103 Early Hints come before the
    # answer. Taken for it when the final answer came in a later read, the attempt was
    # recorded as "answered 103", and the connection, kept alive with the final answer still
    # unread, gave that answer to the next delivery sent on it: found by a probe.
    def hints(request: bytes) -> tuple[bytes, ...]:
        body = b"for " + request.rpartition(b"\r\n\r\n")[2]
        return (
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
            b"HTTP/1.1 202 Accepted\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
        )

    with raw_server(hints) as (port, per_connection):
        async with WebhookClient(allow_private=True) as client:
            for n in (b"1", b"2"):
                answer = await client.post(f"http://127.0.0.1:{port}/", n, {})
                assert (answer.status, answer.body) == (202, b"for " + n)
    assert per_connection == [2]


async def test_idle_connections_of_every_origin_are_closed_after_their_keep_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An idle connection was closed only when its own origin was posted to again: one not
    # posted to again held its socket for good (a probe posted once to each of 200 receivers:
    # 200 sockets still open long after, whether the receivers had closed theirs or not).
    monkeypatch.setattr(transport, "KEEPALIVE_SECONDS", 0.2)
    closed: list[list[int]] = [[], [], []]
    with (
        raw_server(ok, closed=closed[0]) as (a, _),
        raw_server(ok, closed=closed[1]) as (b, _),
        raw_server(ok, closed=closed[2]) as (c, _),
    ):
        async with WebhookClient(allow_private=True) as client:
            for port in (a, b):
                await client.post(f"http://127.0.0.1:{port}/", b"{}", {})
            await asyncio.sleep(0.3)
            await client.post(f"http://127.0.0.1:{c}/", b"{}", {})
            await asyncio.sleep(0.05)  # the closes reach the servers
            assert closed == [[0], [0], []]


async def test_a_kept_alive_connection_closed_by_the_receiver_is_replaced() -> None:
    with raw_server(ok, close_after=1) as (port, per_connection):
        async with WebhookClient(allow_private=True) as client:
            for _ in range(3):
                assert (await client.post(f"http://127.0.0.1:{port}/", b"{}", {})).status == 200
                await asyncio.sleep(0.05)  # the server's close reaches the client
    assert per_connection == [1, 1, 1]


# Receivers that misbehave in one exact way, on asyncio's streams in the test's own loop: a
# connection's handler gets its reader, its writer and the connection's index.
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@asynccontextmanager
async def asyncio_server(handle: Handler) -> AsyncIterator[tuple[int, list[int]]]:
    """A receiver serving each connection with ``handle``; yields its port and the indexes of
    the connections it accepted. A handler whose client went away just ends; those still
    running at the end are cancelled. Then, unless the test failed, nothing the loop reported
    (an exception never retrieved, a callback's error) and no task left but the test's."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    handlers: set[asyncio.Task[None]] = set()
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        try:
            await handle(reader, writer, index)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.transport.abort()

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, its task our own: asyncio's task for a coroutine callback reports
        # its cancellation as an error.
        handlers.add(asyncio.create_task(serve(reader, writer, len(connections))))
        connections.append(len(connections))

    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], connections
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        gc.collect()  # a task or future never retrieved is reported when collected
        assert reported == []
        assert asyncio.all_tasks() == {asyncio.current_task()}
    finally:
        loop.set_exception_handler(previous)
        server.close()
        for task in handlers:
            task.cancel()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """A request's body, read up to its end."""
    head = await reader.readuntil(b"\r\n\r\n")
    found = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    assert found is not None
    return await reader.readexactly(int(found[1]))


def answer_for(body: bytes, head: bytes = b"") -> bytes:
    """A 200 whose body names the request's: which request an answer was taken for."""
    return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\nfor %s" % (head, len(body) + 4, body)


@pytest.mark.parametrize(
    "stale",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale",  # a buggy receiver's extra answer
        b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    ],
)
async def test_a_connection_that_spoke_while_idle_is_not_reused(stale: bytes) -> None:
    # An idle connection was dropped only once the receiver had closed it and every byte it
    # sent had been read: bytes that came while it sat in the pool were read by the next
    # request sent on it as its answer (a stale 200 counted as a delivery; a 408 sent before
    # closing, for a request the receiver never saw, as its failure).
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        writer.write(answer_for(await read_request(reader)))
        await asyncio.sleep(0.05)
        writer.write(stale)
        if b" 408 " in stale:
            return  # and closed
        await reader.read()  # answers nothing more

    async with (
        asyncio_server(handle) as (port, connections),
        WebhookClient(allow_private=True) as client,
    ):
        answers = []
        for n in (b"1", b"2"):
            async with asyncio.timeout(5):  # on the stale connection, nothing answers
                answer = await client.post(f"http://127.0.0.1:{port}/", n, {})
            answers.append((answer.status, answer.body))
            await asyncio.sleep(0.2)  # the stale bytes reach the client meanwhile
    assert answers == [(200, b"for 1"), (200, b"for 2")]
    assert connections == [0, 1]


@pytest.mark.parametrize(
    ("head", "past"),
    [
        (b"", b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nbad"),
        (b"", b"HTTP/1.1 100 Continue\r\n\r\n"),
        (b"", b"garbage"),
        (b"Connection: close\r\n", b"HTTP/1.1 500 Internal Server Error\r\n\r\n"),
    ],
)
async def test_the_answer_ends_with_its_first_message(head: bytes, past: bytes) -> None:
    # Bytes after the answer in the same read were parsed on, as the same answer: a second
    # message's body appended to the first's and its status taken, garbage (or anything after
    # a "Connection: close" answer) made the answer "not an HTTP answer". And a connection
    # with bytes past its answer cannot be trusted with another request.
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            writer.write(answer_for(await read_request(reader), head) + past)  # in one read

    async with (
        asyncio_server(handle) as (port, connections),
        WebhookClient(allow_private=True) as client,
    ):
        for n in (b"1", b"2"):
            async with asyncio.timeout(5):
                answer = await client.post(f"http://127.0.0.1:{port}/", n, {})
            assert (answer.status, answer.body) == (200, b"for " + n)
    assert connections == [0, 1]


# Past every socket buffer between the client and a receiver that reads none of it.
LARGE: Final = b"x" * (16 << 20)


async def test_an_answer_before_the_request_is_all_sent_is_its_answer() -> None:
    # The client read the answer only once the whole request was sent: a receiver that
    # answered after the head (413, 401) and read no more left it waiting in ``drain()``
    # until the attempt's timeout. Such a connection, with the rest of its request unsent,
    # is not reused (it would lead the next request), and is dropped, rest and all: closed
    # gracefully, it stayed open until the receiver had read it all.
    go = asyncio.Event()
    drained: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big!")
        await go.wait()  # reads nothing more until the client is done
        read = 0
        while data := await reader.read(1 << 20):
            read += len(data)
        drained.append(read)

    async with (
        asyncio_server(handle) as (port, connections),
        WebhookClient(allow_private=True) as client,
    ):
        async with asyncio.timeout(5):
            for _ in range(2):
                answer = await client.post(f"http://127.0.0.1:{port}/", LARGE, {})
                assert (answer.status, answer.body) == (413, b"too big!")
            go.set()
            while len(drained) < 2:  # both closed by the client, not kept
                await asyncio.sleep(0.01)
    assert connections == [0, 1]
    assert max(drained) < len(LARGE)


async def test_an_attempt_given_up_while_sending_drops_its_connection() -> None:
    # Cancelled in ``drain()`` (the caller's timeout), the connection was closed gracefully:
    # open, with the rest of the request in its buffer, until the receiver read it all.
    go = asyncio.Event()
    drained: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await go.wait()  # reads nothing more, answers nothing
        read = 0
        while data := await reader.read(1 << 20):
            read += len(data)
        drained.append(read)

    async with (
        asyncio_server(handle) as (port, _),
        WebhookClient(allow_private=True) as client,
    ):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await client.post(f"http://127.0.0.1:{port}/", LARGE, {})
        go.set()
        async with asyncio.timeout(5):
            while not drained:
                await asyncio.sleep(0.01)
    assert drained[0] < len(LARGE)


async def test_no_answer_is_an_error() -> None:
    with raw_server(lambda request: b"", close_after=1) as (port, _):
        async with WebhookClient(allow_private=True) as client:
            with pytest.raises(WebhookError, match="closed before any answer"):
                await client.post(f"http://127.0.0.1:{port}/", b"{}", {})
    with raw_server(lambda request: b"NOT HTTP\r\n\r\n") as (port, _):
        async with WebhookClient(allow_private=True) as client:
            with pytest.raises(WebhookError, match="not an HTTP answer"):
                await client.post(f"http://127.0.0.1:{port}/", b"{}", {})
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    async with WebhookClient(allow_private=True) as client:
        with pytest.raises(WebhookError, match="cannot connect"):
            await client.post(f"http://127.0.0.1:{port}/", b"{}", {})


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA, and two certificates it signed: for the address 127.0.0.1, and for
    another name only."""
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=Settle test CA", cwd=d)  # fmt: skip
    for name, san in (("ip", "IP:127.0.0.1"), ("other", "DNS:other.example")):
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", f"/CN={name}", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                 f"{name}.ext", cwd=d)  # fmt: skip
    return d


def _tls(certificates: Path, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / f"{name}.pem", certificates / f"{name}.key")
    return context


async def test_https_verifies_the_receiver_s_certificate(
    certificates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver whose certificate no trusted issuer signed gets nothing; trusted (here by
    SSL_CERT_FILE, which OpenSSL's default paths honour: also how a self-hoster adds a
    private CA), it gets the POST over TLS; a trusted certificate for another name is
    refused."""
    with raw_server(ok, tls=_tls(certificates, "ip")) as (port, per_connection):
        async with WebhookClient(allow_private=True) as client:
            with pytest.raises(WebhookError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.post(f"https://127.0.0.1:{port}/h", b"{}", {})
        assert per_connection == []
        monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))
        async with WebhookClient(allow_private=True) as client:
            for _ in range(2):
                answer = await client.post(f"https://127.0.0.1:{port}/h", b"{}", {})
                assert (answer.status, answer.body) == (200, b"ok")
        assert per_connection == [2]  # kept alive over TLS too
    with raw_server(ok, tls=_tls(certificates, "other")) as (port, per_connection):
        async with WebhookClient(allow_private=True) as client:
            with pytest.raises(WebhookError, match=r"IP address mismatch|doesn't match"):
                await client.post(f"https://127.0.0.1:{port}/h", b"{}", {})
        assert per_connection == []


async def test_a_names_lookups_are_shared_remembered_and_off_the_loops_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every delivery waiting on one name shares one lookup, run in the client's own threads
    (a name whose name servers never answer held the loop's small default pool, shared with
    the whole process, for seconds per lookup), and its answer or failure is kept a while."""
    calls: list[tuple[str, str]] = []

    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[object]:
        calls.append((host, threading.current_thread().name))
        time.sleep(0.1)  # a slow name server
        if host == "nowhere.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    async with WebhookClient(allow_private=False) as client:
        found = await asyncio.gather(*(client.resolve("receiver.test", 443) for _ in range(20)))
        assert found == [["93.184.216.34"]] * 20
        assert await client.resolve("receiver.test", 443) == ["93.184.216.34"]
        for _ in range(2):
            with pytest.raises(WebhookError, match=r"cannot resolve nowhere\.test"):
                await client.resolve("nowhere.test", 443)
        assert [host for host, _ in calls] == ["receiver.test", "nowhere.test"]
        assert all(thread.startswith("webhook-dns") for _, thread in calls)
        monkeypatch.setattr(transport, "RESOLVED_SECONDS", 0.0)
        await client.resolve("receiver.test", 443)
        assert len(calls) == 3  # looked up again once its answer is old
