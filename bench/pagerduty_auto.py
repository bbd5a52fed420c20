"""How fast PagerDuty on-call approves a request: creation in Teleport to the bot's automatic approval.

Two processes on loopback. This one is the outside world: the devstack Teleport (mutual TLS; alice has her
e-mail in the `email` trait, the bot may review `dba`), the devstack PagerDuty (alice on call for DBA
primary, level 1) and the Slack stand-in, and alice, who creates the requests with her own Teleport client
(`CREATORS` at a time). The other is the bot as deployed: `chatops-bot serve` with a `pagerduty` section
whose one rule approves `dba` for DBA primary's level 1. After a warm-up request it creates `--requests`
requests for `dba` and waits until every one is approved, after `ALONE` requests made one at a time (each
approved before the next). Per request, latency runs from Teleport's creation
time to the time of the bot's review (one clock, one machine). Prints the median and p99 (nearest rank),
the PagerDuty calls per request, and checks that each request got exactly one review, naming the rule.
Run: `.venv/bin/python bench/pagerduty_auto.py [--requests 200]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from chatops_bot.demo import BOT_USER, demo_seed_text
from chatops_bot.devstack.pagerduty import TOKEN, DevPagerDuty, demo_account
from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.seed import load_seed
from chatops_bot.devstack.slack import DevSlack
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from commands.model import RequestState
from figures import free_port, header, percentile  # bench/figures.py

CREATORS = 20
ALONE = 50
REASON = "on call: DBA primary (PagerDuty schedule P1X2Y3), level 1 (rule dba-primary: dba)"
BIN = shutil.which("chatops-bot", path=str(Path(sys.executable).parent)) or "chatops-bot"
AUTOMATIC = """
---
kind: role
version: v7
metadata: {name: chatops-bot-automatic}
spec: {allow: {review_requests: {roles: [dba]}}}
"""


def seed_text() -> str:
    text = demo_seed_text().replace("traits: {slack_user_id: [U0ALICE]",
                                    "traits: {email: [alice@example.com], slack_user_id: [U0ALICE]")
    return text.replace("roles: [chatops-bot]", "roles: [chatops-bot, chatops-bot-automatic]") + AUTOMATIC


def config(workdir: Path, teleport: DevTeleport, slack: DevSlack, pagerduty: DevPagerDuty, port: int) -> Path:
    identity = workdir / f"{BOT_USER}.pem"
    write_identity_file(teleport.identity(BOT_USER), identity)
    path = workdir / "config.json"  # JSON is YAML
    path.write_text(json.dumps({
        "teleport": {"addr": teleport.addr, "identity_file": str(identity)},
        "server": {"listen": f"127.0.0.1:{port}"},
        "slack": {"bot_token": "xoxb-devstack", "signing_secret": slack.signing_secret, "api_url": slack.api_url},
        "routing": {"role_to_recipients": {"slack": {"*": ["#access-requests"]}}},
        "review": {"mode": "as_bot"},
        "pagerduty": {"api_url": pagerduty.root_url, "token": TOKEN, "auto_approve": [
            {"name": "dba-primary", "roles": ["dba"], "schedules": ["P1X2Y3"], "max_level": 1}]},
    }))
    return path


async def create(alice: TeleportClient, count: int, creators: int = CREATORS) -> dict[str, float]:
    """Request ID -> Teleport's creation time, for `count` new requests, `creators` at a time."""
    slots = asyncio.Semaphore(creators)

    async def one(index: int) -> tuple[str, float]:
        async with slots:
            request = await alice.create_request(user="alice", roles=["dba"], reason=f"bench {index}")
        assert request.created is not None
        return request.id, request.created.timestamp()

    return dict(await asyncio.gather(*(one(i) for i in range(count))))


async def approved(teleport: DevTeleport, ids: set[str], bot: asyncio.subprocess.Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(teleport.store.requests[i].state is not RequestState.APPROVED for i in ids):
        if bot.returncode is not None:
            raise RuntimeError(f"the bot exited with {bot.returncode}")
        if time.monotonic() > deadline:
            left = sum(teleport.store.requests[i].state is not RequestState.APPROVED for i in ids)
            raise TimeoutError(f"{left} requests still not approved after {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def main(count: int) -> int:
    print(header())
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        teleport = DevTeleport(load_seed(seed_text()), cluster_name="bench.example.com")
        await teleport.start("127.0.0.1:0")
        pagerduty, slack = DevPagerDuty(), DevSlack()
        demo_account(pagerduty, datetime.now(UTC))
        await pagerduty.start()
        await slack.start()
        write_identity_file(teleport.identity("alice"), workdir / "alice.pem")
        alice = TeleportClient(teleport.addr, IdentitySource(identity_file=str(workdir / "alice.pem")))
        bot = await asyncio.create_subprocess_exec(
            BIN, "serve", "-c", str(config(workdir, teleport, slack, pagerduty, free_port())),
            stdin=asyncio.subprocess.DEVNULL)
        try:
            await approved(teleport, set(await create(alice, 1)), bot, 30)
            calls_before = len(pagerduty.requests)
            alone: dict[str, float] = {}
            for _ in range(ALONE):  # one request at a time: what a person waits
                one = await create(alice, 1)
                await approved(teleport, set(one), bot, 30)
                alone.update(one)
            created = await create(alice, count)
            await approved(teleport, set(created), bot, 600)
            calls = len(pagerduty.requests) - calls_before
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGTERM)
            await bot.wait()
            await alice.close()
            await slack.stop()
            await pagerduty.stop()
            await teleport.stop()
    reviews = {i: teleport.store.requests[i].reviews for i in {**alone, **created}}
    wrong = [i for i, found in reviews.items() if [(r.author, r.reason) for r in found] != [(BOT_USER, REASON)]]

    def latencies(made: dict[str, float]) -> list[float]:
        return [reviews[i][0].created.timestamp() - at for i, at in made.items()  # type: ignore[union-attr]
                if reviews[i] and reviews[i][0].created]

    print(f"alice on call for DBA primary (level 1) in the devstack PagerDuty; the bot in its own process, "
          f"review.mode as_bot; {ALONE} requests one at a time, then {count} created {CREATORS} at a time\n")
    for what, samples in (("one at a time", latencies(alone)), (f"{count} in a burst", latencies(created))):
        print(f"creation -> automatic approval, {what}: median {statistics.median(samples) * 1000:.0f} ms, "
              f"p99 {percentile(samples, 0.99) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms")
    print(f"PagerDuty calls per request: {calls / (count + ALONE):.2f}")
    print(f"requests without exactly one review by the bot naming the rule: {len(wrong)}")
    return 1 if wrong else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    sys.exit(asyncio.run(main(parser.parse_args().requests)))
