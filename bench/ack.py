"""How fast the bot acks a signed `/access list` from Slack, against a bare endpoint that only checks the signature.

Three processes on loopback: the devstack Teleport (mutual TLS); the servers (the bot as `chatops-bot
serve` assembles it, `runtime.services`: the Slack adapter's real Starlette app, and the watcher, whose
copy of the requests answers the listing once it is synced; beside it a bare Starlette endpoint that
verifies the signature with slack_sdk's `SignatureVerifier` and answers 200); and this one, which stands
in for Slack (the Web API stand-in for `auth.test`, and the client sending signed commands). Each round
sends 50 `/access list` commands as bob at once, signed as Slack signs them, and times each from send to
response over one of 50 kept-alive connections (a bare-bones HTTP/1.1 client, so the client's own cost
stays small). After one warm-up round (connections, the directory's user index, bolt's `auth.test`) it
runs `--rounds` rounds against each endpoint and prints p50 and p99 in ms and the bot/bare p50 ratio.
`--requests N` has alice ask for dba N times first (over gRPC, as `tsh` would), so bob's list has N
lines to filter and the first page to render.
Run: `.venv/bin/python bench/ack.py [--rounds 10] [--requests 0]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

import uvicorn
from figures import header, percentile  # bench/figures.py
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CONCURRENT = 50
CHANNEL = "C0ACCESS"


# --- process 1: the devstack Teleport ----------------------------------------------------------------


def run_teleport(workdir: str, ready: Connection, stop: Event) -> None:
    asyncio.run(_teleport(workdir, ready, stop))


async def _teleport(workdir: str, ready: Connection, stop: Event) -> None:
    from chatops_bot.demo import BOT_USER, demo_seed_text
    from chatops_bot.devstack.pki import write_identity_file
    from chatops_bot.devstack.seed import load_seed
    from chatops_bot.devstack.teleport import DevTeleport

    teleport = DevTeleport(load_seed(demo_seed_text()), cluster_name="bench.example.com")
    addr = await teleport.start("127.0.0.1:0")
    for user in (BOT_USER, "alice"):
        write_identity_file(teleport.identity(user), Path(workdir) / f"{user}.pem")
    ready.send((addr, str(Path(workdir) / f"{BOT_USER}.pem")))
    await asyncio.to_thread(stop.wait)
    await teleport.stop()


# --- process 2: the bot and the bare endpoint ---------------------------------------------------------


def run_servers(teleport_addr: str, identity: str, api_url: str, ready: Connection, stop: Event) -> None:
    asyncio.run(_servers(teleport_addr, identity, api_url, ready, stop))


async def _servers(teleport_addr: str, identity: str, api_url: str, ready: Connection, stop: Event) -> None:
    from chatops_bot.config import Settings
    from chatops_bot.devstack.slack import BOT_TOKEN, SIGNING_SECRET
    from chatops_bot.runtime import WatcherService, services
    from chatops_bot.server import build_app
    from chatops_bot.wiring import teleport_client

    settings = Settings.model_validate({
        "teleport": {"addr": teleport_addr, "identity_file": identity},
        "slack": {"bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET, "api_url": api_url},
    })
    client = teleport_client(settings)
    bot = services(settings, client)  # what `chatops-bot serve` runs, the watcher included
    for service in bot:
        await service.start()
    for service in bot:
        if isinstance(service, WatcherService):
            await asyncio.wait_for(service.watcher.synced.wait(), 30)
    verifier = SignatureVerifier(SIGNING_SECRET)

    async def bare(request: Request) -> Response:
        body = await request.body()
        try:
            valid = verifier.is_valid_request(body, dict(request.headers))
        except ValueError:
            valid = False
        return Response(status_code=200 if valid else 401)

    bot_server = _server(build_app(bot))
    bare_server = _server(Starlette(routes=[Route("/slack/events", bare, methods=["POST"])]))
    tasks = [asyncio.create_task(s.serve()) for s in (bot_server, bare_server)]
    while not (bot_server.started and bare_server.started):
        await asyncio.sleep(0.01)
    ready.send((_url(bot_server), _url(bare_server)))
    await asyncio.to_thread(stop.wait)
    for server in (bot_server, bare_server):
        server.should_exit = True
    await asyncio.gather(*tasks)
    for service in reversed(bot):
        await service.stop()
    await client.close()


def _server(app: Starlette) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                         access_log=False))


def _url(server: uvicorn.Server) -> str:
    return f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/slack/events"


# --- this process: Slack -----------------------------------------------------------------------------


class Client:
    """One kept-alive HTTP/1.1 connection, as lean as a client can be, so the servers' time dominates."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Client:
        host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def post(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
        return int(lines[0].split()[1]), await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def signed_command(slack: object, url: str) -> bytes:
    """The raw HTTP request Slack would send for bob's `/access list`, signed now."""
    from chatops_bot.devstack.slack import DevSlack

    assert isinstance(slack, DevSlack)
    body = slack.slash_command_body("U0BOB", "list", CHANNEL)
    host, path = url.split("//", 1)[1].split("/", 1)
    headers = {**slack.signed_headers(body), "Host": host, "Content-Length": str(len(body))}
    head = f"POST /{path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + body


async def one_round(connections: list[Client], url: str, slack: object) -> tuple[list[float], list[str]]:
    """`CONCURRENT` signed `/access list` commands as bob at once; (ms each, what each ack said)."""
    requests = [signed_command(slack, url) for _ in connections]  # built before the clock starts

    async def send(connection: Client, request: bytes) -> tuple[float, str]:
        started = time.perf_counter()
        status, body = await connection.post(request)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            return elapsed, f"HTTP {status}"
        return elapsed, json.loads(body).get("text", "") if body else ""

    results = await asyncio.gather(*(send(c, r) for c, r in zip(connections, requests)))
    return [ms for ms, _ in results], [text for _, text in results]


async def alice_asks(addr: str, workdir: str, count: int) -> None:
    """`count` pending requests from alice for dba, which bob may review."""
    from chatops_bot.teleport.client import IdentitySource, TeleportClient

    alice = TeleportClient(addr, IdentitySource(identity_file=str(Path(workdir) / "alice.pem")))
    try:
        for number in range(count):
            await alice.create_request(user="alice", roles=["dba"], reason=f"INC-{number} replica lag")
    finally:
        await alice.close()


async def main(rounds: int, requests: int) -> int:
    from chatops_bot.devstack.slack import DevSlack
    from commands import listing, messages

    print(header())
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    slack = DevSlack()
    api_url = await slack.start()
    with tempfile.TemporaryDirectory() as workdir:
        teleport_end, teleport_ready = spawn.Pipe()
        teleport = spawn.Process(target=run_teleport, args=(workdir, teleport_ready, stop), daemon=True)
        teleport.start()
        addr, identity = await asyncio.to_thread(teleport_end.recv)
        await alice_asks(addr, workdir, requests)
        servers_end, servers_ready = spawn.Pipe()
        servers = spawn.Process(target=run_servers, args=(addr, identity, api_url, servers_ready, stop), daemon=True)
        servers.start()
        bot_url, bare_url = await asyncio.to_thread(servers_end.recv)
        pools: dict[str, list[Client]] = {}
        try:
            for url in (bot_url, bare_url):
                pools[url] = [await Client.open(url) for _ in range(CONCURRENT)]
                await one_round(pools[url], url, slack)  # warm-up, not counted
            results: dict[str, list[float]] = {bot_url: [], bare_url: []}
            acks: list[str] = []
            for _ in range(rounds):
                for url in (bot_url, bare_url):
                    samples, texts = await one_round(pools[url], url, slack)
                    results[url] += samples
                    if url == bot_url:
                        acks += texts
        finally:
            for pool in pools.values():
                for connection in pool:
                    await connection.close()
            stop.set()
            await asyncio.to_thread(servers.join, 15)
            await asyncio.to_thread(teleport.join, 15)
            await slack.stop()

    expected = messages.nothing_listed("pending")
    if requests:
        expected = messages.list_header("pending", 1, math.ceil(requests / listing.PAGE_SIZE), requests)
    answered = sum(1 for text in acks if text.startswith(expected))
    working = sum(1 for text in acks if text == messages.working_on_it())
    print(f"devstack Teleport, the bot and this load generator in three processes on loopback; "
          f"{rounds} rounds of {CONCURRENT} concurrent signed `/access list` as bob per endpoint "
          f"({rounds * CONCURRENT} samples each, after one warm-up round); {requests} pending requests "
          f"in Teleport\n")
    print(f"{'endpoint':<52}{'p50 ms':>9}{'p99 ms':>9}")
    rows = (("bot: /access list, answered in the ack", bot_url),
            ("bare: SignatureVerifier check, empty 200", bare_url))
    for name, url in rows:
        samples = results[url]
        print(f"{name:<52}{statistics.median(samples):>9.2f}{percentile(samples, 0.99):>9.2f}")
    ratio = statistics.median(results[bot_url]) / statistics.median(results[bare_url])
    print(f"\nbot/bare p50 ratio: {ratio:.1f}")
    print(f"bot acks: {answered} with the list, {working} with 'Working on it', "
          f"{len(acks) - answered - working} other")
    return 0 if answered == len(acks) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds per endpoint (default 10)")
    parser.add_argument("--requests", type=int, default=0,
                        help="pending requests alice makes first, for bob's list to show (default 0)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.rounds, args.requests)))
