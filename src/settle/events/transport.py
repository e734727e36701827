"""Outbound HTTP for webhooks: an ``httpx`` transport that reaches public addresses only.

A webhook URL is written by a project; sent as is, it could make Settle probe its own network
(``http://127.0.0.1:5432``, ``http://169.254.169.254/`` cloud metadata, a LAN admin page).
So only ``http`` and ``https`` are sent, and every address the host name resolves to must be
global (not private, loopback, link-local, shared, reserved, multicast or unspecified), unless
``SETTLE_WEBHOOKS_ALLOW_PRIVATE=1``.

The check is made on the resolved addresses at connect time, inside the connection pool's
network backend: the name is resolved once, every address checked (one bad answer refuses the
whole name: a resolver that mixes a public and a private answer is an attack), and the socket
connects to a checked address, never to the name again, so a DNS answer that changes between
a check and the connect (DNS rebinding) cannot slip through. TLS still verifies the certificate
against the host name, and the Host header is the URL's, because only the socket's address is
replaced. Proxies from the environment are not used: a proxy would connect on our behalf,
past the check.

Tests inject any ``httpx.AsyncBaseTransport`` (e.g. ``httpx.MockTransport``) instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from typing import Any, Final

import httpcore
import httpx

SCHEMES: Final = ("http", "https")


class AddressRefused(httpcore.ConnectError):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


def public_address(address: str) -> bool:
    """Whether ``address`` (an IP literal) is one a webhook may reach without the setting."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 reaches 127.0.0.1; 2002::/16 (6to4) embeds an IPv4 address too.
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None and not public_address(str(mapped)):
            return False
    return ip.is_global and not ip.is_multicast


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to a checked address (see the module's docstring)."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[str]:
        try:  # an address already: no lookup (getaddrinfo runs in the loop's small thread
            # pool, where lookups of names that do not resolve wait seconds each; measured,
            # they held up every delivery to a receiver named by its address)
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolve(host, port)
        if not self.allow_private:
            refused = [a for a in addresses if not public_address(a)]
            if refused or not addresses:
                raise AddressRefused(
                    f"{host} resolves to {', '.join(refused) or 'nothing'}, not a public "
                    "address (SETTLE_WEBHOOKS_ALLOW_PRIVATE=1 allows it)"
                )
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpcore's exceptions as httpx's (what httpx's own transport does, privately).
_MAPPED: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.NetworkError, httpx.NetworkError),
)


class _Stream(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self):  # type: ignore[no-untyped-def]  # an async generator
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncHTTPTransport`` with a ``GuardedBackend`` under its connection pool."""

    def __init__(self, *, allow_private: bool, max_connections: int = 100) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections // 5 or 1,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(allow_private=allow_private),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in SCHEMES:
            raise httpx.UnsupportedProtocol(
                f"webhooks are sent over http or https, not {request.url.scheme!r}",
                request=request,
            )
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(core)
        except Exception as exc:
            for theirs, ours in _MAPPED:
                if isinstance(exc, theirs):
                    raise ours(str(exc) or type(exc).__name__, request=request) from exc
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Stream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def outbound_client(
    *, allow_private: bool, timeout: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The client deliveries are sent with: no redirects followed (a 3xx is not a 2xx, and a
    redirect would lead past the check of the first URL to wherever it points), no cookies or
    environment proxies, connect and read timeouts within the whole request's deadline."""
    return httpx.AsyncClient(
        transport=transport or GuardedTransport(allow_private=allow_private),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "Settle-Webhooks/1"},
    )
