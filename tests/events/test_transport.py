"""The webhook client against real servers on loopback ports: refusals (schemes, private
addresses, a name that resolves to one), keep-alive reuse, answers that end by length, by
chunks or by closing, a kept-alive connection the receiver closed meanwhile, HTTPS with the
certificate verified (an unknown issuer and a certificate for another name are refused)."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

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
