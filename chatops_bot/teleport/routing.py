"""Reaching Auth through the Proxy's TLS routing: route detection and a loopback forwarder for grpc.

A Teleport Proxy (Teleport Cloud's `tenant.teleport.sh:443`, or any proxy with TLS routing) reads the
ALPN list of a TLS ClientHello without terminating TLS; a first protocol `teleport-auth@<hex(cluster)>
.teleport.cluster.local` makes it pipe the raw connection to an Auth server, so the TLS session (cluster
CA, client certificate, SNI `teleport.cluster.local`) is end to end with Auth (teleport-wire.md §4.3).
grpcio cannot choose its ALPN protocols, so grpc talks plaintext HTTP/2 to a `Forwarder` on loopback,
which opens that TLS session for it and copies bytes both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from chatops_bot.teleport.identity import Identity

logger = logging.getLogger(__name__)

# Teleport's constants (api/constants/constants.go ALPNSNIAuthProtocol and APIDomain, api/utils/cluster.go
# EncodeClusterName): the cluster name is hex-encoded so that its dots cannot look like DNS labels.
AUTH_ALPN_PREFIX = "teleport-auth@"
SERVER_NAME = "teleport.cluster.local"
HTTP2 = "h2"
CHUNK = 64 * 1024  # bytes read per hop; with the write high-water mark, what one connection buffers
_WRITE_HIGH_WATER = 256 * 1024
CLOSE_GRACE = 1.0
# Failures that say nothing answered on that address at all: no TLS handshake tells Auth from a Proxy.
_NETWORK_ERRNOS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}


class Route(enum.Enum):
    DIRECT = "directly to the Auth service"
    PROXY = "through the Proxy's TLS routing"


@dataclass(frozen=True)
class Detection:
    """Which route answered; else why neither did, and whether TLS was tried at all (`conclusive`)."""

    route: Route | None
    reason: str = ""
    # True when the server answered TCP but both TLS handshakes failed: the identity does not fit that
    # server, and calling again will not change that. False when the address did not answer at all.
    conclusive: bool = False


def auth_alpn(cluster_name: str) -> str:
    """The ALPN protocol that asks a Proxy to route the connection to `cluster_name`'s Auth service."""
    return f"{AUTH_ALPN_PREFIX}{cluster_name.encode().hex()}.{SERVER_NAME}"


def cluster_name_of(identity: Identity) -> str:
    """The cluster that issued the identity: the subject CN of the CA that signed its certificate."""
    issuer = identity.certificate.issuer
    for ca in x509.load_pem_x509_certificates(identity.ca_pems):
        if ca.subject == issuer:
            names = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if names:
                return str(names[0].value)
    return identity.cluster_name


def client_context(identity: Identity, *, alpn: Sequence[str]) -> ssl.SSLContext:
    """mTLS as Teleport's Go client does it: the identity's certificate, its CAs as the only roots."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the name by default
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # As lenient as Go and grpc about CA certificate extensions (Python 3.13 turns strict mode on).
    context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    context.load_verify_locations(cadata=identity.ca_pems.decode())
    _load_client_certificate(context, identity)
    context.set_alpn_protocols(list(alpn))
    return context


def _load_client_certificate(context: ssl.SSLContext, identity: Identity) -> None:
    """`load_cert_chain` reads only files: hand it an anonymous memory file where there is one, else a
    0600 temporary file that is removed as soon as OpenSSL has read it."""
    pem = identity.cert_pem + b"\n" + identity.private_key_pem
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        descriptor = os.memfd_create("teleport-identity", os.MFD_CLOEXEC)
        try:
            os.write(descriptor, pem)
            context.load_cert_chain(f"/proc/self/fd/{descriptor}")
        finally:
            os.close(descriptor)
        return
    descriptor, path = tempfile.mkstemp(prefix=".teleport-identity-")  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)


def split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{addr!r} is not host:port")
    return host.strip("[]"), int(port)


# --- which route -----------------------------------------------------------------------------------


async def detect_route(addr: str, identity: Identity, *, timeout: float) -> Detection:
    """Directly first (ALPN `h2`, as grpc would); if that handshake fails, the ALPN-routed handshake.

    A Proxy answers an `h2`-only ClientHello with its web certificate, which the cluster CA did not sign,
    so the direct handshake fails verification; that is what tells the two apart.
    """
    host, port = split_addr(addr)
    direct = await _handshake(host, port, client_context(identity, alpn=[HTTP2]), timeout)
    if direct is None:
        return Detection(Route.DIRECT)
    if _is_network_failure(direct):
        return Detection(None, f"{addr}: {describe_failure(direct, timeout)}")
    cluster = cluster_name_of(identity)
    routed_context = client_context(identity, alpn=[auth_alpn(cluster), HTTP2])
    routed = await _handshake(host, port, routed_context, timeout)
    if routed is None:
        return Detection(Route.PROXY)
    reason = (
        f"{addr} is neither an Auth service nor a Proxy with TLS routing for cluster {cluster!r} that "
        f"accepts this identity: directly, TLS handshake failed: {describe_failure(direct, timeout)}; "
        f"through TLS routing, {describe_failure(routed, timeout)}"
    )
    return Detection(None, reason, conclusive=not _is_network_failure(routed))


async def _handshake(host: str, port: int, context: ssl.SSLContext, timeout: float) -> BaseException | None:
    """None when a TLS handshake with `teleport.cluster.local` verified against the cluster CA completes."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=SERVER_NAME, ssl_handshake_timeout=timeout
            )
    except (OSError, EOFError, TimeoutError) as err:
        return err
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


def _is_network_failure(err: BaseException) -> bool:
    if isinstance(err, TimeoutError | socket.gaierror):
        return True
    return isinstance(err, OSError) and not isinstance(err, ssl.SSLError) and err.errno in _NETWORK_ERRNOS


def describe_failure(err: BaseException, timeout: float | None = None) -> str:
    """One line for the log and the error detail; OpenSSL's reason stays in (CERTIFICATE_VERIFY_FAILED…)."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"the server's certificate is not from the identity's cluster CA ({err})"
    if isinstance(err, ssl.SSLEOFError | EOFError | ConnectionResetError | BrokenPipeError):
        return "the server closed the connection during the TLS handshake"
    if isinstance(err, ssl.SSLError):
        return f"TLS alert or error from the server ({err})"
    if isinstance(err, TimeoutError):
        return f"no TLS answer within {timeout:g}s" if timeout else "timed out"
    if isinstance(err, socket.gaierror):
        return f"cannot resolve the host ({err.strerror})"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, OSError):
        return err.strerror or type(err).__name__
    return type(err).__name__


# --- the forwarder ---------------------------------------------------------------------------------


class Relay:
    """A TCP server whose every accepted connection is a task it tracks, so `close` ends them all: the
    loopback forwarder here and the devstack Proxy both are one. Subclasses handle a connection in
    `_handle`."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.addr = ""

    async def _listen(self, host: str, port: int) -> str:
        self._server = await asyncio.start_server(self._accepted, host, port, limit=CHUNK)
        self.addr = f"{host}:{self._server.sockets[0].getsockname()[1]}"
        return self.addr

    async def close(self) -> None:
        """Stop listening and drop every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def connections(self) -> int:
        """Connections being handled now."""
        return len(self._tasks)

    async def drained(self) -> None:
        """Returns once every connection open now has ended."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # asyncio runs each accepted connection as a task of its own
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await self._handle(reader, writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class Forwarder(Relay):
    """Plaintext on 127.0.0.1, TLS-routed to Auth through the Proxy: one upstream connection per
    accepted connection, so grpc's own reconnects and keep-alives reach all the way to Auth."""

    def __init__(self, proxy_addr: str, identity: Identity, *, connect_timeout: float = 10.0) -> None:
        super().__init__()
        self.proxy_host, self.proxy_port = split_addr(proxy_addr)
        self.proxy_addr = proxy_addr
        self.connect_timeout = connect_timeout
        self.last_failure = ""  # why the last upstream connection could not be made; "" after one was
        self._context = self._build_context(identity)

    def use_identity(self, identity: Identity) -> None:
        """New connections present the renewed certificate; open ones keep the session they have."""
        self._context = self._build_context(identity)

    @staticmethod
    def _build_context(identity: Identity) -> ssl.SSLContext:
        return client_context(identity, alpn=[auth_alpn(cluster_name_of(identity)), HTTP2])

    async def start(self) -> str:
        await self._listen("127.0.0.1", 0)
        logger.info("forwarding %s to Teleport's Auth service through the Proxy at %s", self.addr,
                    self.proxy_addr)
        return self.addr

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with ended_quietly():
            upstream = None
            try:
                upstream = await self._connect()
            finally:
                if upstream is None:
                    # grpc sees its connection close and reports UNAVAILABLE; the client adds `last_failure`.
                    writer.close()
            if upstream is not None:
                await pipe((reader, writer), upstream)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                upstream = await asyncio.open_connection(
                    self.proxy_host, self.proxy_port, ssl=self._context, server_hostname=SERVER_NAME,
                    ssl_handshake_timeout=self.connect_timeout, limit=CHUNK,
                )
        except (OSError, EOFError, TimeoutError) as err:
            failure = f"{self.proxy_addr}: {describe_failure(err, self.connect_timeout)}"
            # One line per change of cause: grpc retries every few seconds while the Proxy is away.
            log = logger.warning if failure != self.last_failure else logger.debug
            log("cannot reach Teleport's Auth service through the Proxy: %s", failure)
            self.last_failure = failure
            return None
        if self.last_failure:
            logger.info("reaching Teleport's Auth service through the Proxy at %s again", self.proxy_addr)
        self.last_failure = ""
        return upstream


@contextlib.contextmanager
def ended_quietly() -> Iterator[None]:
    """For connection handlers that `close()` cancels: end them without an error, since Python 3.11's
    `start_server` logs a handler task that ends cancelled as an unhandled exception."""
    try:
        yield
    except asyncio.CancelledError:
        pass


async def pipe(
    first: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    second: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """Copies both ways until either side ends, then closes both (HTTP/2 needs no half-close)."""
    for _, writer in (first, second):
        writer.transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
    copies = [
        asyncio.ensure_future(_copy(first[0], second[1])),
        asyncio.ensure_future(_copy(second[0], first[1])),
    ]
    try:
        await asyncio.wait(copies, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for copy in copies:
            copy.cancel()
        await asyncio.gather(*copies, return_exceptions=True)
        await _close_both(first[1], second[1])


async def _close_both(*writers: asyncio.StreamWriter) -> None:
    """Closes gracefully (TLS close_notify) unless we are being cancelled, but waits for a peer's
    close_notify only briefly: a grpc server may never send one, and asyncio would wait 30 seconds."""
    task = asyncio.current_task()
    if task is None or not task.cancelling():
        for writer in writers:
            writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(CLOSE_GRACE):
                for writer in writers:
                    await writer.wait_closed()
    for writer in writers:
        writer.transport.abort()  # a no-op for what has closed; ends what has not


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()  # waits while the other side is slower: the buffer stays bounded
