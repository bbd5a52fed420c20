"""A stand-in for the Teleport Proxy's TLS routing listener: Auth-bound TLS passes through untouched.

It mirrors what the real Proxy does (gravitational/teleport, read at OpensourceTeleportProject/teleport18-dev):
- lib/srv/alpnproxy/proxy.go `readHelloMessageWithoutTLSTermination`, `getHandleDescBasedOnALPNVal`: read
  the ClientHello without terminating TLS, walk the client's ALPN list in order (none means HTTP) and take
  the first route that matches; a route with `ForwardTLS` gets the raw connection, the rest are terminated
  with the web certificate (`WebTLSConfig`);
- lib/srv/alpnproxy/common/protocols.go `ProtocolAuth = "teleport-auth@"`, matched as a prefix
  (lib/service/service.go `MatchByALPNPrefix(ProtocolAuth)` with `ForwardTLS: true`);
- lib/srv/alpnproxy/auth/auth_proxy.go `getClusterName`: the cluster comes from the *first* ALPN protocol,
  `teleport-auth@` + api/utils/cluster.go `EncodeClusterName` (hex(name) + ".teleport.cluster.local");
  an unknown cluster is "not found" and the connection is closed.
Not mirrored: leaf clusters over reverse tunnels, the signed PROXY header to Auth, Kubernetes SNI routes,
database protocols, ALPN connection upgrade behind L7 load balancers.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from chatops_bot.devstack.pki import ClusterCA
from chatops_bot.teleport.routing import AUTH_ALPN_PREFIX, SERVER_NAME, Relay, ended_quietly, pipe, split_addr

logger = logging.getLogger(__name__)

_HANDSHAKE_RECORD = 22
_CLIENT_HELLO = 1
_EXT_SERVER_NAME = 0
_EXT_ALPN = 16
_MAX_HELLO = 64 * 1024  # far above any real ClientHello; a peer sending more is not speaking TLS
_WEB_PROTOCOLS = ("h2", "http/1.1")


class NotTLS(ValueError):
    """The first bytes are not a well-formed TLS ClientHello."""


@dataclass(frozen=True)
class ClientHello:
    """What the router looks at, and the raw bytes read so far (to be replayed to whoever handles it)."""

    server_name: str
    alpn: tuple[str, ...]
    raw: bytes = field(repr=False)


async def read_client_hello(reader: asyncio.StreamReader) -> ClientHello:
    """Reads TLS records until the whole ClientHello handshake message is in, without answering."""
    raw = b""
    message = b""
    needed: int | None = None
    while needed is None or len(message) < needed:
        header = await reader.readexactly(5)
        kind, _version, length = struct.unpack("!BHH", header)
        if kind != _HANDSHAKE_RECORD or not 0 < length <= 16384 + 2048:
            raise NotTLS("not a TLS handshake record")
        body = await reader.readexactly(length)
        raw += header + body
        message += body
        if len(raw) > _MAX_HELLO:
            raise NotTLS("ClientHello too large")
        if needed is None and len(message) >= 4:
            if message[0] != _CLIENT_HELLO:
                raise NotTLS("the first handshake message is not a ClientHello")
            needed = 4 + int.from_bytes(message[1:4], "big")
    assert needed is not None
    server_name, alpn = parse_client_hello(message[4:needed])
    return ClientHello(server_name=server_name, alpn=alpn, raw=raw)


def parse_client_hello(body: bytes) -> tuple[str, tuple[str, ...]]:
    """(SNI host name, ALPN protocols) from a ClientHello body (RFC 8446 §4.1.2, RFC 6066 §3, RFC 7301)."""
    cursor = _Cursor(body)
    cursor.take(2 + 32)  # legacy_version, random
    cursor.vector(1)  # legacy_session_id
    cursor.vector(2)  # cipher_suites
    cursor.vector(1)  # legacy_compression_methods
    server_name, alpn = "", ()
    if cursor.remaining() == 0:
        return server_name, alpn  # no extensions at all
    extensions = _Cursor(cursor.vector(2))
    while extensions.remaining():
        kind = extensions.uint(2)
        data = _Cursor(extensions.vector(2))
        if kind == _EXT_SERVER_NAME:
            names = _Cursor(data.vector(2))
            while names.remaining():
                name_type = names.uint(1)
                name = names.vector(2)
                if name_type == 0:  # host_name
                    server_name = name.decode("ascii", "replace")
        elif kind == _EXT_ALPN:
            protocols = _Cursor(data.vector(2))
            found = []
            while protocols.remaining():
                found.append(protocols.vector(1).decode("ascii", "replace"))
            alpn = tuple(found)
    return server_name, alpn


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def remaining(self) -> int:
        return len(self.data) - self.at

    def take(self, count: int) -> bytes:
        if count > self.remaining():
            raise NotTLS("truncated ClientHello")
        chunk = self.data[self.at : self.at + count]
        self.at += count
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        return self.take(self.uint(length_size))


def cluster_from_alpn(protocol: str) -> str | None:
    """`teleport-auth@<hex>.teleport.cluster.local` -> the cluster name; None if not that shape."""
    if not protocol.startswith(AUTH_ALPN_PREFIX):
        return None
    encoded = protocol.removeprefix(AUTH_ALPN_PREFIX)
    suffix = "." + SERVER_NAME
    if not encoded.endswith(suffix):
        return None
    try:
        return bytes.fromhex(encoded.removesuffix(suffix)).decode()
    except ValueError:
        return None


def web_context(web_ca: ClusterCA) -> ssl.SSLContext:
    """The web listener's TLS: a certificate from a CA that is not the cluster's (like a public web cert)."""
    key, cert = web_ca.server_credentials()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:  # load_cert_chain reads files only; these are throwaway
        key_path, cert_path = Path(folder, "web.key"), Path(folder, "web.crt")
        key_path.write_bytes(key)
        cert_path.write_bytes(cert)
        context.load_cert_chain(cert_path, key_path)
    context.set_alpn_protocols(list(_WEB_PROTOCOLS))
    return context


class DevProxy(Relay):
    """The Proxy's TLS-routing port in front of one devstack Auth: `teleport-auth@` is piped, the rest is web."""

    def __init__(self, *, cluster_name: str, auth_addr: str, web_ca: ClusterCA | None = None,
                 hello_timeout: float = 5.0) -> None:
        super().__init__()
        self.cluster_name = cluster_name
        self.auth_addr = auth_addr
        self.hello_timeout = hello_timeout
        self._web = web_context(web_ca or ClusterCA.generate("proxy web CA"))
        self.routes: list[tuple[tuple[str, ...], str]] = []  # (ALPN offered, what was done), for tests

    async def start(self, listen: str = "127.0.0.1:0") -> str:
        """Listen on `listen` (port 0 picks one, then reused on restart); returns `host:port`."""
        if self.addr and listen.endswith(":0"):
            listen = self.addr
        return await self._listen(*split_addr(listen))

    async def stop(self) -> None:
        """Stop listening and drop every open connection, as a Proxy shutting down does."""
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with ended_quietly():
                await self._route(reader, writer)
        except (OSError, EOFError, TimeoutError, NotTLS, ssl.SSLError) as err:
            logger.debug("devstack proxy: connection ended: %s", err)
        finally:
            writer.close()

    async def _route(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(self.hello_timeout):
            hello = await read_client_hello(reader)
        protocols = hello.alpn or ("http/1.1",)  # no ALPN is treated as HTTP, as Teleport does
        for protocol in protocols:
            if protocol.startswith(AUTH_ALPN_PREFIX):
                await self._to_auth(hello, reader, writer)
                return
            if protocol in _WEB_PROTOCOLS:
                self.routes.append((hello.alpn, "web"))
                await self._web_listener(hello, reader, writer)
                return
        self.routes.append((hello.alpn, "no route"))

    async def _to_auth(self, hello: ClientHello, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        cluster = cluster_from_alpn(hello.alpn[0])  # Teleport reads the cluster from the first protocol
        if cluster != self.cluster_name:
            self.routes.append((hello.alpn, f"unknown cluster {cluster!r}"))
            logger.info("devstack proxy: auth server for %r cluster name not found", cluster)
            return
        self.routes.append((hello.alpn, "auth"))
        host, port = split_addr(self.auth_addr)
        auth_reader, auth_writer = await asyncio.open_connection(host, port)
        auth_writer.write(hello.raw)  # the ClientHello already read goes first: TLS stays end to end
        await pipe((reader, writer), (auth_reader, auth_writer))

    async def _web_listener(self, hello: ClientHello, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        """Terminates TLS with the web certificate (feeding it the ClientHello already read) and answers 404."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self._web.wrap_bio(incoming, outgoing, server_side=True)
        incoming.write(hello.raw)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                writer.write(outgoing.read())
                await writer.drain()
                data = await reader.read(16384)
                if not data:
                    return
                incoming.write(data)
        tls.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        writer.write(outgoing.read())
        await writer.drain()
