"""How fast requests made in Teleport reach both chat platforms: 1,000 requests, creation to last card posted.

Two processes on loopback. This one is the outside world: the devstack Teleport (mutual TLS), the Slack
Web API and Mattermost REST stand-ins, and alice, who creates the requests with her own Teleport client
(`CREATORS` at a time). The other is the bot as deployed: `chatops-bot serve` with a config
file routing every role to `#access-requests` on Slack and `ops/access-requests` on Mattermost, so each
request gets a card on each platform plus a DM to its suggested reviewer (bob) on each. After a warm-up
request (the stream open, the channels resolved) it creates `--requests` requests and waits until every
one has its card on both platforms. Per request, latency runs from Teleport's creation time to the later
of its two cards' post times (Slack's `ts`, Mattermost's `create_at`; one clock, one machine). Prints the
median and p99 (nearest rank) and requests per second from the first creation to the last card, and
checks that no card was posted twice. Run: `.venv/bin/python bench/fanout.py [--requests 1000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from chatops_bot.demo import BOT_USER, demo_seed_text
from chatops_bot.devstack.mattermost import DevMattermost, MMChannel, MMTeam, MMUser
from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.seed import load_seed
from chatops_bot.devstack.slack import DevSlack
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from figures import free_port, header, percentile  # bench/figures.py

CREATORS = 50
TEAM = MMTeam("team".ljust(26, "0"), "ops", "Ops")
USERS = [MMUser(f"{name}mmid".ljust(26, "0"), name, f"{name}@example.com") for name in ("alice", "bob")]
CHANNEL = MMChannel("chanaccess".ljust(26, "0"), TEAM.id, "access-requests")
BIN = shutil.which("chatops-bot", path=str(Path(sys.executable).parent)) or "chatops-bot"


def slack_cards(slack: DevSlack) -> dict[str, list[float]]:
    """Request ID -> post times of its cards in #access-requests (the Approve button carries the ID)."""
    found: dict[str, list[float]] = {}
    for message in slack.messages.get("C0ACCESS", []):
        for block in message["blocks"]:
            for element in block.get("elements", []) if block["type"] == "actions" else []:
                if element.get("action_id") == "access_approve":
                    found.setdefault(element["value"], []).append(float(message["ts"]))
    return found


def mattermost_cards(mm: DevMattermost) -> dict[str, list[float]]:
    """Request ID -> post times of its cards in ops/access-requests (the Request field, Markdown-escaped)."""
    found: dict[str, list[float]] = {}
    for post in mm.posts_in(CHANNEL.id):
        if post["root_id"]:
            continue
        for attachment in post["props"].get("attachments") or []:
            for field in attachment["fields"]:
                if field["title"] == "Request":
                    found.setdefault(field["value"].replace("\\", ""), []).append(post["create_at"] / 1000)
    return found


def config(workdir: Path, teleport: DevTeleport, slack: DevSlack, mm: DevMattermost, port: int) -> Path:
    identity = workdir / f"{BOT_USER}.pem"
    write_identity_file(teleport.identity(BOT_USER), identity)
    path = workdir / "config.json"  # JSON is YAML
    path.write_text(json.dumps({
        "teleport": {"addr": teleport.addr, "identity_file": str(identity)},
        "server": {"listen": f"127.0.0.1:{port}"},
        "slack": {"bot_token": "xoxb-devstack", "signing_secret": slack.signing_secret,
                  "api_url": slack.api_url},
        "mattermost": {"url": mm.url, "bot_token": mm.bot_token, "command_tokens": ["k3" * 13],
                       "action_secret": "an action secret of at least thirty-two characters",
                       "public_url": f"http://127.0.0.1:{port}"},
        "routing": {"role_to_recipients": {"slack": {"*": ["#access-requests"]},
                                           "mattermost": {"*": ["ops/access-requests"]}}},
    }))
    return path


def cards_posted(slack: DevSlack, mm: DevMattermost) -> int:
    """Cards accepted so far on the platform that has fewer: a cheap count from the recorded calls."""
    on_slack = sum(1 for call in slack.calls_to("chat.postMessage") if call.error is None
                   and call.params.get("channel") == "C0ACCESS" and not call.params.get("thread_ts"))
    on_mm = sum(1 for call in mm.calls if call.method == "POST" and call.path == "/api/v4/posts"
                and call.status == 201 and call.json.get("channel_id") == CHANNEL.id
                and not call.json.get("root_id"))
    return min(on_slack, on_mm)


Cards = dict[str, list[float]]


async def wait_for_cards(slack: DevSlack, mm: DevMattermost, ids: set[str], timeout: float,
                         bot: asyncio.subprocess.Process, *, warm_up: bool = False) -> tuple[Cards, Cards]:
    """Polls the cheap count (so that measuring takes little from the stand-ins), then reads every card."""
    deadline = time.monotonic() + timeout
    while True:
        if cards_posted(slack, mm) >= len(ids) + (0 if warm_up else 1):  # the warm-up's card too
            on_slack, on_mm = slack_cards(slack), mattermost_cards(mm)
            if ids <= set(on_slack) and ids <= set(on_mm):
                return on_slack, on_mm
        if bot.returncode is not None:
            raise RuntimeError(f"the bot exited with {bot.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {cards_posted(slack, mm)} cards after {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def create(alice: TeleportClient, count: int) -> list[tuple[str, float]]:
    """(request ID, Teleport's creation time) for `count` new requests, `CREATORS` at a time."""
    slots = asyncio.Semaphore(CREATORS)

    async def one(index: int) -> tuple[str, float]:
        async with slots:
            request = await alice.create_request(user="alice", roles=["dba"], reason=f"bench {index}")
        assert request.created is not None
        return request.id, request.created.timestamp()

    return await asyncio.gather(*(one(i) for i in range(count)))


async def main(count: int) -> int:
    print(header())
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        teleport = DevTeleport(load_seed(demo_seed_text()), cluster_name="bench.example.com")
        await teleport.start("127.0.0.1:0")
        slack, mm = DevSlack(), DevMattermost(team=TEAM, users=USERS, channels=[CHANNEL])
        await slack.start()
        await mm.start()
        write_identity_file(teleport.identity("alice"), workdir / "alice.pem")
        alice = TeleportClient(teleport.addr, IdentitySource(identity_file=str(workdir / "alice.pem")))
        bot = await asyncio.create_subprocess_exec(
            BIN, "serve", "-c", str(config(workdir, teleport, slack, mm, free_port())),
            stdin=asyncio.subprocess.DEVNULL)
        try:
            warm = await create(alice, 1)
            await wait_for_cards(slack, mm, {warm[0][0]}, 30, bot, warm_up=True)
            started = time.monotonic()
            created = dict(await create(alice, count))
            creating = time.monotonic() - started
            on_slack, on_mm = await wait_for_cards(slack, mm, set(created), 600, bot)
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGTERM)
            await bot.wait()
            await alice.close()
            await slack.stop()
            await mm.stop()
            await teleport.stop()
    doubled = [i for i in created if len(on_slack[i]) != 1 or len(on_mm[i]) != 1]
    latencies = [max(on_slack[i][0], on_mm[i][0]) - at for i, at in created.items()]
    span = max(max(on_slack[i][0], on_mm[i][0]) for i in created) - min(created.values())
    print(f"{count} requests created by alice ({CREATORS} at a time) in {creating:.1f} s; the bot in its own "
          "process; one card per platform and one DM to bob per platform each\n")
    print(f"creation -> last card on both platforms: median {statistics.median(latencies) * 1000:.0f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    print(f"throughput: {count / span:.1f} requests/s "
          f"({span:.1f} s from the first creation to the last card)")
    bot_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    world_cpu = resource.getrusage(resource.RUSAGE_SELF)
    print(f"CPU seconds: the bot {bot_cpu.ru_utime + bot_cpu.ru_stime:.1f}, the stand-ins and alice "
          f"{world_cpu.ru_utime + world_cpu.ru_stime:.1f} (both on this machine, start to end)")
    print(f"cards posted twice: {len(doubled)}")
    return 1 if doubled else 0



if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    sys.exit(asyncio.run(main(parser.parse_args().requests)))
