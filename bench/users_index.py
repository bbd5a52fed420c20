"""The chat-user index with 10,000 Teleport users: build time, memory, look-up time, and how soon a user
linked in Teleport can use the bot.

Starts a DevTeleport (18.11, Enterprise) whose demo seed is grown to `--users` users, each with a
`slack_user_id` trait, and connects as the bot over mutual TLS on loopback, in one process. Times:
- the listing (`ListUsers`, paginated, 1,000 a page as Teleport caps it) and the index build from it,
  5 times each; the baseline is one Ping round trip;
- the index's memory (tracemalloc, the bytes the index holds after the build);
- `teleport_user()` for every user's Slack ID once, from the index; the baseline is what a look-up
  without an index costs: one `GetUser` round trip (timed 200 times);
- linking: a user's trait set in Teleport (as `tctl users update --set-traits` would), then the time until
  the directory, fed by the `user` events of the watch stream (the watcher's path), resolves the new ID;
  50 times.
Prints medians and p99 and the ratios to the baselines.
Run: `.venv/bin/python bench/users_index.py [--users 10000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

from chatops_bot.demo import BOT_USER, demo_seed_text
from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.seed import load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.directory import TeleportDirectory
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from commands.model import ChatUser, User
from figures import header, percentile  # bench/figures.py

ROUNDS = 5
LINKS = 50


def ms(seconds: float) -> float:
    return seconds * 1000


async def main(user_count: int) -> int:
    print(header())
    seed = load_seed(demo_seed_text())
    for n in range(user_count):
        name = f"user{n:05d}@example.com"
        seed.users[name] = User(name=name, roles=("requester",), traits={"slack_user_id": (f"U{n:08d}",)})
    with tempfile.TemporaryDirectory() as workdir:
        teleport = DevTeleport(seed, cluster_name="bench.example.com")
        addr = await teleport.start("127.0.0.1:0")
        identity = Path(workdir) / f"{BOT_USER}.pem"
        write_identity_file(teleport.identity(BOT_USER), identity)
        bot = TeleportClient(addr, IdentitySource(identity_file=str(identity)), timeout=30)
        try:
            return await measure(teleport, bot, user_count)
        finally:
            await bot.close()
            await teleport.stop()


async def measure(teleport: DevTeleport, bot: TeleportClient, user_count: int) -> int:
    directory = TeleportDirectory(bot, traits={"slack": "slack_user_id"}, user_map={})
    for _ in range(5):
        await bot.ping()
    pings = []
    for _ in range(50):
        started = time.perf_counter()
        await bot.ping()
        pings.append(time.perf_counter() - started)
    listings, builds = [], []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        users = await bot.list_users()
        listed = time.perf_counter()
        directory.users_resynced(users)
        listings.append(listed - started)
        builds.append(time.perf_counter() - listed)
    tracemalloc.start()
    fresh = TeleportDirectory(bot, traits={"slack": "slack_user_id"}, user_map={})
    before = tracemalloc.take_snapshot()
    fresh.users_resynced(users)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    index_bytes = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del fresh

    directory.follow(asyncio.Event())
    assert directory.stream is not None
    directory.stream.set()  # as the watcher does once synced: answer from the index alone
    lookups = []
    for n in range(user_count):
        started = time.perf_counter()
        found = await directory.teleport_user(ChatUser("slack", f"U{n:08d}", ""))
        lookups.append(time.perf_counter() - started)
        if found != f"user{n:05d}@example.com":
            print(f"U{n:08d} resolved to {found!r}", file=sys.stderr)
            return 1
    gets = []
    for n in range(200):
        started = time.perf_counter()
        await bot.get_user(f"user{n:05d}@example.com")
        gets.append(time.perf_counter() - started)

    links = await linking(teleport, bot, directory)

    print(f"devstack Teleport 18.11 on loopback, same process; {user_count:,} users with a slack_user_id trait\n")
    ping = statistics.median(pings)
    print(f"{'what':<44}{'median ms':>10}{'p99 ms':>10}{'x baseline':>11}")
    rows = [
        ("Ping (baseline for listing)", pings, ping),
        (f"ListUsers, every page ({len(users):,} users)", listings, ping),
        ("index build from the listing", builds, ping),
        ("GetUser round trip (baseline for look-up)", gets, statistics.median(gets)),
        ("look-up from the index", lookups, statistics.median(gets)),
        ("linked in Teleport -> resolvable (event)", links, ping),
    ]
    for name, samples, base in rows:
        median = statistics.median(samples)
        print(f"{name:<44}{ms(median):>10.3f}{ms(percentile(samples, 0.99)):>10.3f}{median / base:>11.4g}")
    print(f"\nindex memory: {index_bytes / 1e6:.1f} MB for {user_count:,} users "
          f"({index_bytes / max(user_count, 1):.0f} bytes a user)")
    print(f"look-ups per second from the index: {1 / statistics.median(lookups):,.0f}")
    return 0


async def linking(teleport: DevTeleport, bot: TeleportClient, directory: TeleportDirectory) -> list[float]:
    """Seconds from a trait set in Teleport to the directory resolving it, fed by the watch stream."""
    events = bot.watch_requests(users=True)
    samples = []
    async with contextlib.aclosing(events):
        first = await anext(events)
        assert first.kind == "init"
        for n in range(LINKS):
            chat_id = f"UNEW{n:06d}"
            user = teleport.store.user(f"user{n:05d}@example.com")
            started = time.perf_counter()
            teleport.store.put_user(replace(user, traits={"slack_user_id": (chat_id,)}))
            async for event in events:
                if event.user is not None:
                    directory.user_put(event.user)  # what the watcher does with a user event
                if await directory.teleport_user(ChatUser("slack", chat_id, "")) == user.name:
                    break
            samples.append(time.perf_counter() - started)
    return samples


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    sys.exit(asyncio.run(main(parser.parse_args().users)))
