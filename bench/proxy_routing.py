"""What reaching Auth through the Proxy's TLS routing adds per call, against reaching it directly.

Starts a DevTeleport and its devstack Proxy on loopback, and times Ping 200 times in sequence three ways:
directly to Auth (grpc's own TLS); through the loopback forwarder straight to Auth (the forwarder's own
cost: one more hop and TLS in Python's ssl); and through the forwarder and the devstack Proxy (the path a
Teleport Cloud install takes, with a Proxy that adds its own hop). Everything shares one process and
event loop, so the Proxy's copying competes with the client's: a real Proxy runs elsewhere.
Run: `.venv/bin/python bench/proxy_routing.py`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import grpc

from chatops_bot.demo import BOT_USER, demo_seed_text
from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.seed import load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from chatops_bot.teleport.gen import authservice_pb2, authservice_pb2_grpc
from chatops_bot.teleport.routing import Forwarder
from figures import header, percentile, timed  # bench/figures.py

CALLS = 200
WARMUP = 10


async def main() -> int:
    print(header())
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as workdir:
        teleport = DevTeleport(load_seed(demo_seed_text()), cluster_name="bench.example.com")
        auth = await teleport.start("127.0.0.1:0")
        proxy = await teleport.start_proxy("127.0.0.1:0")
        path = Path(workdir) / f"{BOT_USER}.pem"
        identity = teleport.identity(BOT_USER)
        write_identity_file(identity, path)
        forwarder = Forwarder(auth, identity)
        await forwarder.start()
        direct = TeleportClient(auth, IdentitySource(identity_file=str(path)))
        proxied = TeleportClient(proxy, IdentitySource(identity_file=str(path)))
        channel = grpc.aio.insecure_channel(forwarder.addr)
        stub = authservice_pb2_grpc.AuthServiceStub(channel)

        async def forwarder_only() -> object:
            return await stub.Ping(authservice_pb2.PingRequest(), timeout=10)

        try:
            for name, call in (
                ("directly to Auth", direct.ping),
                ("forwarder -> Auth", forwarder_only),
                ("forwarder -> Proxy -> Auth", proxied.ping),
            ):
                await timed(call, WARMUP)  # route detection, connect and handshakes outside the figures
                results[name] = await timed(call, CALLS)
        finally:
            await channel.close()
            await direct.close()
            await proxied.close()
            await forwarder.close()
            await teleport.stop_proxy()
            await teleport.stop()

    print(f"Ping, {CALLS} sequential calls each, one process and event loop\n")
    base = statistics.median(results["directly to Auth"])
    print(f"{'path':<28}{'median ms':>10}{'p99 ms':>10}{'+ median ms':>13}")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"{name:<28}{median:>10.3f}{percentile(samples, 0.99):>10.3f}{median - base:>13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
