"""Shared fixtures: the devstack Teleport on loopback over mutual TLS, and clients for its users."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
import socket
from pathlib import Path

import pytest

from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.pki import ClusterCA, write_identity_file
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.directory import TeleportDirectory
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from commands.context import CommandConfig, Context


@pytest.fixture(scope="session")
def cluster_ca() -> ClusterCA:
    """One CA for the whole run: key generation is the slow part of starting a devstack."""
    return ClusterCA.generate("devstack.example.com")


@pytest.fixture
def seed() -> Seed:
    return load_seed(demo_seed_text())


@pytest.fixture
async def teleport(seed: Seed, cluster_ca: ClusterCA) -> AsyncIterator[DevTeleport]:
    server = DevTeleport(seed, cluster_name="devstack.example.com", ca=cluster_ca)
    await server.start("127.0.0.1:0")
    yield server
    await server.stop()


ClientFactory = Callable[..., TeleportClient]


@pytest.fixture
async def client_for(teleport: DevTeleport, tmp_path: Path) -> AsyncIterator[ClientFactory]:
    """`client_for("alice")`: a TeleportClient holding that user's identity file, closed afterwards."""
    made: list[TeleportClient] = []

    def make(user: str, **identity_kwargs: object) -> TeleportClient:
        path = tmp_path / f"{user}-{len(made)}.pem"
        write_identity_file(teleport.identity(user, **identity_kwargs), path)
        client = TeleportClient(teleport.addr, IdentitySource(identity_file=str(path)), timeout=5.0)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def bot(client_for: ClientFactory) -> TeleportClient:
    return client_for("chatops-bot")


class Unchanged:
    """`with Unchanged(teleport):` asserts Teleport's requests and audit log are the same afterwards."""

    def __init__(self, teleport: DevTeleport) -> None:
        self.teleport = teleport

    def __enter__(self) -> None:
        self.requests = dict(self.teleport.store.requests)
        self.audit = list(self.teleport.store.audit)

    def __exit__(self, *exc: object) -> None:
        assert self.teleport.store.requests == self.requests
        assert self.teleport.store.audit == self.audit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FixedClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


@pytest.fixture
def make_context(bot: TeleportClient) -> Callable[..., Context]:
    """A command context on the bot's client; the console platform maps names to Teleport users."""

    def make(**config: object) -> Context:
        directory = TeleportDirectory(bot, traits={}, user_map={})
        return Context(backend=bot, directory=directory, clock=FixedClock(), config=CommandConfig(**config))  # type: ignore[arg-type]

    return make


AsyncFactory = Callable[..., Awaitable[object]]
