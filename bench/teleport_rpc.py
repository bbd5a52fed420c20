"""How long the bot's Teleport calls take over gRPC and mutual TLS on loopback, against the devstack Auth.

Starts a DevTeleport with the demo seed, connects as the bot, and times, each 100 times in sequence:
Ping (the baseline: one round trip, no work), CreateAccessRequestV2 (the bot filing for alice) and
`list_requests()` over ListAccessRequests once those 100 requests exist. Prints median and p99 in ms,
and each median as a multiple of Ping's. Server and client share one process and event loop, so each
figure is the whole round trip: client encode, TLS, server work, client decode.
Run: `.venv/bin/python bench/teleport_rpc.py`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

from chatops_bot.demo import BOT_USER, demo_seed_text
from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.seed import load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from figures import header, percentile, timed  # bench/figures.py

CALLS = 100
WARMUP = 5


async def main() -> int:
    print(header())
    with tempfile.TemporaryDirectory() as workdir:
        teleport = DevTeleport(load_seed(demo_seed_text()), cluster_name="bench.example.com")
        addr = await teleport.start("127.0.0.1:0")
        identity = Path(workdir) / f"{BOT_USER}.pem"
        write_identity_file(teleport.identity(BOT_USER), identity)
        bot = TeleportClient(addr, IdentitySource(identity_file=str(identity)))
        try:
            await timed(bot.ping, WARMUP)  # connect and handshake outside the measurement

            async def create() -> object:
                return await bot.create_request(user="alice", roles=["dba"], reason="bench")

            ping = await timed(bot.ping, CALLS)
            creates = await timed(create, CALLS)
            listed = await bot.list_requests()
            if len(listed) != CALLS:
                print(f"expected {CALLS} requests, the bot lists {len(listed)}", file=sys.stderr)
                return 1
            lists = await timed(bot.list_requests, CALLS)
        finally:
            await bot.close()
            await teleport.stop()

    print(f"devstack Teleport on {addr} (same process and event loop), mutual TLS, "
          f"{CALLS} sequential calls each\n")
    base = statistics.median(ping)
    print(f"{'call':<34}{'median ms':>10}{'p99 ms':>10}{'x Ping':>9}")
    for name, samples in (
        ("Ping (baseline)", ping),
        ("CreateAccessRequestV2 (bot->alice)", creates),
        (f"list_requests() ({CALLS} requests)", lists),
    ):
        median = statistics.median(samples)
        print(f"{name:<34}{median:>10.3f}{percentile(samples, 0.99):>10.3f}{median / base:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
