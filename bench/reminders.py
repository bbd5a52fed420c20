"""Reminders at scale: 10,000 approved requests whose access ends over the next hour.

Two processes on loopback. This one is the outside world: the devstack Teleport (mutual TLS), holding
`--requests` approved dba requests of alice's whose access ends uniformly over the next hour, and the Slack
Web API stand-in (alice is linked there). The other is `chatops-bot serve` with `reminders.before_expiry:
[15m, 5m]` and `on_expiry: true`, JSON logs. It prints:

- rebuild: the bot's own figures from its log — listing every request from Teleport, then deriving and
  scheduling the reminder jobs — and the wall time from starting the process to its schedule being built;
- catch-up: reminders already due at start-up (their access ends within 15 minutes) are sent at once, late
  by design; how many, and how long until the last of them went out;
- lateness of the reminders that fell due after start-up, over `--watch` seconds: when Slack received the
  DM minus when it was due (expiry - lead, or the expiry itself for "ended"), p50 and p99;
- the bot process's peak RSS (VmHWM), read before it is stopped; and any reminder sent twice.

Run: `.venv/bin/python bench/reminders.py [--requests 10000] [--watch 120]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chatops_bot.demo import BOT_USER, demo_seed_text
from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.seed import load_seed
from chatops_bot.devstack.slack import DevSlack
from chatops_bot.devstack.store import uuid7
from chatops_bot.devstack.teleport import DevTeleport
from commands.model import AccessRequest, RequestState, Review
from figures import free_port, header, percentile  # bench/figures.py

BIN = shutil.which("chatops-bot", path=str(Path(sys.executable).parent)) or "chatops-bot"
LEADS = {"15m": timedelta(minutes=15), "5m": timedelta(minutes=5)}
SENT = re.compile(r"^Your dba access \((?P<id>[0-9a-f]{8})\) (?P<what>ends in|ended)")


def load(teleport: DevTeleport, count: int, now: datetime) -> dict[str, AccessRequest]:
    """`count` approved requests, approved an hour ago, whose access ends uniformly over the next hour."""
    made: dict[str, AccessRequest] = {}
    for index in range(count):
        ends = now + timedelta(seconds=3600 * (index + random.random()) / count)
        request = AccessRequest(
            id=uuid7(), user="alice", roles=("dba",), state=RequestState.APPROVED,
            created=now - timedelta(hours=1), access_expires=ends, max_duration=ends, session_ttl=ends,
            resource_expiry=ends, reason=f"bench {index}", suggested_reviewers=("bob",),
            reviews=(Review("bob", RequestState.APPROVED, "ok", now - timedelta(minutes=59)),),
        )
        teleport.store.requests[request.id] = request
        made[request.id[-8:]] = request
    return made


def config(workdir: Path, teleport: DevTeleport, slack: DevSlack, port: int) -> Path:
    identity = workdir / f"{BOT_USER}.pem"
    write_identity_file(teleport.identity(BOT_USER), identity)
    path = workdir / "config.json"  # JSON is YAML
    path.write_text(json.dumps({
        "teleport": {"addr": teleport.addr, "identity_file": str(identity)},
        "server": {"listen": f"127.0.0.1:{port}"},
        "slack": {"bot_token": "xoxb-devstack", "signing_secret": slack.signing_secret, "api_url": slack.api_url},
        "reminders": {"before_expiry": list(LEADS), "on_expiry": True},
        "logging": {"format": "json", "level": "INFO"},
    }))
    return path


async def read_log(stream: asyncio.StreamReader, found: dict[str, float], lines: list[str]) -> None:
    """Keeps the figures the bot logs about its listing and its schedule, with when they were seen."""
    while line := await stream.readline():
        text = line.decode(errors="replace")
        lines.append(text)
        try:
            message = str(json.loads(text).get("message", ""))
        except ValueError:
            continue
        if listed := re.search(r"resynced (\d+) \(listed in ([\d.]+) s\)", message):
            found.setdefault("listed", float(listed.group(2)))
        if scheduled := re.search(r"reminders: (\d+) jobs for (\d+) requests, scheduled in ([\d.]+) s", message):
            found.setdefault("jobs", float(scheduled.group(1)))
            found.setdefault("scheduled", float(scheduled.group(3)))
            found.setdefault("ready_at", time.time())


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def due_times(request: AccessRequest) -> dict[str, list[float]]:
    ends = request.access_expires
    assert ends is not None
    return {"ends in": [(ends - lead).timestamp() for lead in LEADS.values()], "ended": [ends.timestamp()]}


async def main(count: int, watch: float, log: str) -> int:
    print(header())
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        teleport = DevTeleport(load_seed(demo_seed_text()), cluster_name="bench.example.com")
        await teleport.start("127.0.0.1:0")
        slack = DevSlack()
        await slack.start()
        requests = load(teleport, count, datetime.now(UTC))
        found: dict[str, float] = {}
        lines: list[str] = []
        spawned = time.time()
        bot = await asyncio.create_subprocess_exec(
            BIN, "serve", "-c", str(config(workdir, teleport, slack, free_port())),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert bot.stderr is not None
        reader = asyncio.create_task(read_log(bot.stderr, found, lines))
        try:
            deadline = time.monotonic() + 120
            while "ready_at" not in found:
                if bot.returncode is not None or time.monotonic() > deadline:
                    sys.stderr.write("".join(lines[-20:]))
                    raise RuntimeError("the bot did not build its schedule")
                await asyncio.sleep(0.05)
            await asyncio.sleep(watch)
            rss = peak_rss_mb(bot.pid)
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGTERM)
            await bot.wait()
            await reader
            if log:
                Path(log).write_text("".join(lines))
            await slack.stop()
            await teleport.stop()

    ready = found["ready_at"]
    on_time: list[float] = []
    by_due: list[tuple[float, float]] = []  # (seconds after start-up it fell due, lateness)
    catch_up: list[float] = []
    seen: Counter[tuple[str, str, float]] = Counter()
    for call in slack.calls_to("chat.postMessage"):
        sent = SENT.match(str(call.params.get("text", ""))) if call.error is None else None
        if sent is None or sent["id"] not in requests:
            continue
        dues = [d for d in due_times(requests[sent["id"]])[sent["what"]] if d <= call.at + 0.5]
        if not dues:
            print(f"sent before it was due: {sent['id']} {sent['what']} at {call.at}")
            return 1
        due = max(dues)
        seen[(sent["id"], sent["what"], due)] += 1
        if seen[(sent["id"], sent["what"], due)] > 1:
            print(f"sent twice: {sent['id']} {sent['what']} due {due:.3f}, again at {call.at:.3f}")
        if due >= ready:
            on_time.append(call.at - due)
            by_due.append((due - ready, call.at - due))
        else:
            catch_up.append(call.at)
    twice = sum(1 for n in seen.values() if n > 1)
    print(f"{count} approved requests, access ending uniformly over the next hour; reminders 15m and 5m ahead "
          "and at the end; the bot in its own process, Slack only\n")
    print(f"rebuild: listing {found['listed']:.2f} s + scheduling {found['scheduled']:.2f} s "
          f"({found['jobs']:.0f} jobs) = {found['listed'] + found['scheduled']:.2f} s; "
          f"{ready - spawned:.2f} s from starting the process")
    last = max(catch_up, default=ready)
    print(f"catch-up: {len(catch_up)} reminders already due at start-up, all sent {last - ready:.1f} s after "
          "the schedule was built")
    if on_time:
        print(f"lateness of {len(on_time)} reminders due in the {watch:.0f} s after start-up: "
              f"p50 {statistics.median(on_time) * 1000:.0f} ms, p99 {percentile(on_time, 0.99) * 1000:.0f} ms, "
              f"max {max(on_time) * 1000:.0f} ms")
        settled = [late for after, late in by_due if ready + after > last]
        if settled:
            print(f"  of which {len(settled)} fell due after the catch-up was sent: p50 "
                  f"{statistics.median(settled) * 1000:.0f} ms, p99 {percentile(settled, 0.99) * 1000:.0f} ms")
    print(f"peak RSS of the bot: {rss:.0f} MB")
    print(f"reminders sent twice: {twice}")
    return 1 if twice or not on_time else 0



if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--watch", type=float, default=120.0, help="seconds to watch reminders fall due")
    parser.add_argument("--log", default="", help="write the bot's log to this file")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.requests, args.watch, args.log)))
